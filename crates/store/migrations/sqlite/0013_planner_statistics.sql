-- Statistics for SQLite's query planner, seeded for the ledger's tables (docs/benchmarks.md,
-- "Reads by lot").
--
-- Every tenant table's key starts with tenant_id. Without statistics SQLite takes `tenant_id = ?`
-- as selective, so it preferred walking a tenant's whole primary-key range over the index that
-- names the rows wanted: a recall's `gtin = ? AND lot = ?` read every movement of the tenant, and
-- so did the lapsed holds under `/v1/promise`, a cost that grew with the journal. These rows tell
-- the planner the shape of a large network instead: one tenant may hold every row; a GTIN has
-- about a thousand movements, a lot two hundred, a reservation three lines; few reservations are
-- due at once. They are written only where no statistics exist yet: an `ANALYZE` run by hand
-- replaces them with measured ones.
ANALYZE sqlite_schema; -- creates sqlite_stat1 if it does not exist yet

INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT seed.column1, seed.column2, seed.column3
FROM (VALUES
    ('stock_movements', 'stock_movements', '1000000 1000000 3 1'),
    ('stock_movements', 'stock_movements_by_lot', '1000000 1000000 1000 200 200 2'),
    ('reservations', 'reservations', '300000 300000 1'),
    ('reservations', 'reservations_due', '1000 2'),
    ('order_events', 'order_events', '1000000 1000000 4 1'),
    ('order_events', 'order_events_by_time', '1000000 1000000 2 1 1')
) AS seed
WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 measured WHERE measured.tbl = seed.column1);

ANALYZE sqlite_schema; -- loads them
