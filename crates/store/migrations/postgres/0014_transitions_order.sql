-- The order of the transitions the merchants' webhooks deliver (order transitions and alarm
-- transitions). As with the movement journal (0011), several API nodes write at once, each with
-- its own clock and batches that commit in any order, so a webhook's cursor cannot be a time: a
-- transition committed late with an earlier time would sort before the cursor and never be
-- delivered. Each row carries the id of the transaction that wrote it, webhooks page by (tx, at,
-- …), and read only rows of transactions older than every transaction of this database still
-- running (`store::fulfilment::settled_transactions`). Rows written before this migration keep 0
-- and come first, as do the cursors of the webhooks that exist now; a webhook created later
-- starts at its creating transaction.
ALTER TABLE order_events ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE order_events ALTER COLUMN tx SET DEFAULT (CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT));
DROP INDEX order_events_by_time;
CREATE INDEX order_events_by_tx ON order_events (tenant_id, tx, at_unix_ms, order_id, seq);

ALTER TABLE alarm_events ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alarm_events ALTER COLUMN tx SET DEFAULT (CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT));
CREATE INDEX alarm_events_by_tx ON alarm_events (tenant_id, tx, at_unix_ms, alarm_id, step);

ALTER TABLE order_webhooks ADD COLUMN after_tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE order_webhooks ALTER COLUMN after_tx SET DEFAULT (CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT));
ALTER TABLE order_webhooks ADD COLUMN alarm_after_tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE order_webhooks ALTER COLUMN alarm_after_tx SET DEFAULT (CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT));
