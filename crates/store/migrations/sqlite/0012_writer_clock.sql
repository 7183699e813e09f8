-- The time of the last batch the writer committed. Each batch takes a time after it (the wall
-- clock, or this plus one millisecond when the clock stands still or stepped back), in its own
-- transaction, so the movement journal's time order is the commit order across restarts and
-- across processes writing the same file. Starts from the latest movement stored.
CREATE TABLE writer_clock (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_batch_unix_ms INTEGER NOT NULL
) STRICT;
INSERT INTO writer_clock (singleton, last_batch_unix_ms)
    SELECT 1, COALESCE(MAX(at_unix_ms), 0) FROM stock_movements;
