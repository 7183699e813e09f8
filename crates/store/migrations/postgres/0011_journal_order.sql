-- The movement journal's order. A reader pages the journal by (tx, at_unix_ms, operation_id,
-- line); a row committed after a page was read must sort after that page's last row. Several
-- API nodes write at once, each with its own clock and batches that commit in any order, so
-- time cannot order the journal here: each row carries the id of the transaction that wrote it,
-- and readers see only rows of transactions older than every transaction of this database
-- still running (`store::fulfilment::settled_transactions`). Every later row then has a larger id.
-- Rows written before this migration keep 0 and come first.
ALTER TABLE stock_movements ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE stock_movements ALTER COLUMN tx SET DEFAULT (CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT));
DROP INDEX stock_movements_by_lot;
CREATE INDEX stock_movements_by_lot ON stock_movements (tenant_id, gtin, lot, tx, at_unix_ms);
