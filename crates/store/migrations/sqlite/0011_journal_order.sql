-- The movement journal's order. A reader pages the journal by (tx, at_unix_ms, operation_id,
-- line); a row committed after a page was read must sort after that page's last row. On SQLite
-- the one writer gives every batch a later time than the one before (`WriterCache::batch_time`),
-- so `tx` stays 0 and time orders the journal. (On PostgreSQL `tx` is the writing transaction's
-- id; see the PostgreSQL migration.)
ALTER TABLE stock_movements ADD COLUMN tx INTEGER NOT NULL DEFAULT 0;
DROP INDEX stock_movements_by_lot;
CREATE INDEX stock_movements_by_lot ON stock_movements (tenant_id, gtin, lot, tx, at_unix_ms);
