-- The order of the transitions the merchants' webhooks deliver (order transitions and alarm
-- transitions): webhooks page by (tx, at, …). On SQLite the one writer gives every batch a later
-- time than the one before (`WriterCache::batch_time`), so `tx` stays 0 and time orders them.
-- (On PostgreSQL `tx` is the writing transaction's id; see the PostgreSQL migration.)
ALTER TABLE order_events ADD COLUMN tx INTEGER NOT NULL DEFAULT 0;
DROP INDEX order_events_by_time;
CREATE INDEX order_events_by_tx ON order_events (tenant_id, tx, at_unix_ms, order_id, seq);

ALTER TABLE alarm_events ADD COLUMN tx INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alarm_events_by_tx ON alarm_events (tenant_id, tx, at_unix_ms, alarm_id, step);

ALTER TABLE order_webhooks ADD COLUMN after_tx INTEGER NOT NULL DEFAULT 0;
ALTER TABLE order_webhooks ADD COLUMN alarm_after_tx INTEGER NOT NULL DEFAULT 0;

-- Dropping the index dropped its statistics. Where they were 0013's seed (not measured by an
-- ANALYZE run by hand, which the next one replaces), the new index gets the same shape.
INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT 'order_events', 'order_events_by_tx', '1000000 1000000 1000000 2 1 1'
WHERE EXISTS (SELECT 1 FROM sqlite_stat1 WHERE tbl = 'order_events' AND idx = 'order_events' AND stat = '1000000 1000000 4 1')
  AND NOT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE idx = 'order_events_by_tx');
ANALYZE sqlite_schema; -- loads them
