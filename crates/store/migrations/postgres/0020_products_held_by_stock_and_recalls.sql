-- A product's stock and its recalled lots name it for good: deleting the product is refused
-- while either exists (`Mutation::DeleteProduct`). The writer checks that with a read, which on
-- several API nodes does not see another node's receipt or recall that has not committed yet;
-- and that node's receipt may have read the product before the deletion committed. These keys
-- settle both races in the database: the first write of a balance or a recalled lot holds the
-- product's row (FOR KEY SHARE) until it commits, so a deletion waits for it and then fails, and
-- a write after a deletion fails. Either failure rolls the batch back, and the write applied
-- again alone reads afresh and is refused cleanly (409 `in-use`, or the product unknown).
-- SQLite has one writer, whose checks see every write before them.
--
-- Rows written before this migration are checked too; a row naming a product already deleted
-- (left by such a race) is reported as a warning and the key kept for new rows.
ALTER TABLE stock_balances ADD CONSTRAINT stock_balances_product
    FOREIGN KEY (tenant_id, gtin) REFERENCES products (tenant_id, gtin) NOT VALID;
ALTER TABLE recalled_lots ADD CONSTRAINT recalled_lots_product
    FOREIGN KEY (tenant_id, gtin) REFERENCES products (tenant_id, gtin) NOT VALID;

DO $$
DECLARE
    name TEXT;
BEGIN
    FOREACH name IN ARRAY ARRAY['stock_balances:stock_balances_product', 'recalled_lots:recalled_lots_product'] LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', split_part(name, ':', 1), split_part(name, ':', 2));
        EXCEPTION WHEN foreign_key_violation THEN
            RAISE WARNING '% names products deleted before this migration; the key holds for new rows', name;
        END;
    END LOOP;
END
$$;
