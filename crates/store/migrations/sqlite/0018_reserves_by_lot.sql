-- Reserve movements leave the lot index; their own lot index is built in bulk (docs/benchmarks.md,
-- "The reserves' lot index, built in bulk").
--
-- An order writes one `reserve` movement a line. Each landed on the lot index at its lot's place, a
-- page of its own per lot, in every batch: about a third of the order path's time on SQLite. Now:
-- - `stock_movements_by_lot` indexes every movement except reserves;
-- - `reserves_by_lot` holds exactly the reserve movements with `at_unix_ms <= through_unix_ms` of
--   `reserves_indexed`, in the lot index's order. The writer extends it in one sorted insert every
--   few seconds (`fulfilment::RESERVES_INDEX_INTERVAL`), touching each lot's page once;
-- - the reserves after it (the tail: at most that interval's) are found by time,
--   `stock_movements_reserved_since`, appended like the journal.
-- A read of a lot's movements is the union of the three (`sqlite_reserves_of_lot!` in store::fulfilment). Batch times
-- only increase on SQLite (`writer_clock`), so a new reserve always lands in the tail.

DROP INDEX stock_movements_by_lot;
CREATE INDEX stock_movements_by_lot ON stock_movements (tenant_id, gtin, lot, tx, at_unix_ms)
    WHERE kind <> 'reserve';

CREATE TABLE reserves_by_lot (
    tenant_id TEXT NOT NULL,
    gtin TEXT NOT NULL,
    lot TEXT NOT NULL,
    tx INTEGER NOT NULL,
    at_unix_ms INTEGER NOT NULL,
    operation_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, gtin, lot, tx, at_unix_ms, operation_id, line)
) WITHOUT ROWID, STRICT;

CREATE TABLE reserves_indexed (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    through_unix_ms INTEGER NOT NULL
) STRICT;

-- `kind` is in it so that the tail's rows of a lot are found on the index alone (covering), and
-- only those are read from the table.
CREATE INDEX stock_movements_reserved_since ON stock_movements (at_unix_ms, tenant_id, gtin, lot, kind)
    WHERE kind = 'reserve';

INSERT INTO reserves_indexed (singleton, through_unix_ms)
    SELECT 1, MAX(COALESCE((SELECT MAX(at_unix_ms) FROM stock_movements), 0), (SELECT last_batch_unix_ms FROM writer_clock));
INSERT INTO reserves_by_lot (tenant_id, gtin, lot, tx, at_unix_ms, operation_id, line)
    SELECT tenant_id, gtin, lot, tx, at_unix_ms, operation_id, line FROM stock_movements
    WHERE kind = 'reserve' AND at_unix_ms <= (SELECT through_unix_ms FROM reserves_indexed)
    ORDER BY tenant_id, gtin, lot, tx, at_unix_ms, operation_id, line;

-- The planner's statistics for the new shapes (as in 0013: written only where none exist). Few
-- reserves share a time, so the tail is read by its range of times (a skip-scan over every time
-- ever written would grow with the journal).
DELETE FROM sqlite_stat1 WHERE tbl = 'stock_movements' AND idx = 'stock_movements_by_lot'
    AND stat = '1000000 1000000 1000 200 200 2';
INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT seed.column1, seed.column2, seed.column3
FROM (VALUES
    ('stock_movements', 'stock_movements_by_lot', '300000 300000 300 60 60 2'),
    ('stock_movements', 'stock_movements_reserved_since', '700000 2 2 2 1 1'),
    ('reserves_by_lot', 'reserves_by_lot', '700000 700000 700 140 140 2 1 1')
) AS seed
WHERE EXISTS (SELECT 1 FROM sqlite_stat1 WHERE tbl = 'stock_movements' AND idx = 'stock_movements' AND stat = '1000000 1000000 3 1')
  AND NOT EXISTS (SELECT 1 FROM sqlite_stat1 measured WHERE measured.idx = seed.column2);
ANALYZE sqlite_schema; -- loads them
