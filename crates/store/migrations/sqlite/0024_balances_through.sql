-- How far `stock_balances` is written (SQLite only; see `fulfilment::BalancesBehind`).
--
-- While the one writer is busy, a batch that only places orders leaves the units they reserve
-- out of `stock_balances` (a balance's page was about a third of each commit's pages): its
-- reserve movements are the record. `reserved` in the table holds every reserve movement with
-- `at_unix_ms <= balances_through_unix_ms`; the reserves after it (the tail, at most
-- `fulfilment::BALANCES_BEHIND_MAX` of them) are added by every read of a balance, and written
-- into the table by the first batch that is not only orders, when the tail grows old, or when the
-- writer falls idle. Every other batch moves it to its own time in the statement that takes that
-- time (batch times only increase on SQLite), so its own reserves are not counted twice.
ALTER TABLE writer_clock ADD COLUMN balances_through_unix_ms INTEGER NOT NULL DEFAULT 0;

-- Everything written so far is in the table; the next batch comes after all of it.
UPDATE writer_clock SET last_batch_unix_ms =
    MAX(COALESCE((SELECT MAX(at_unix_ms) FROM stock_movements), 0), last_batch_unix_ms);
UPDATE writer_clock SET balances_through_unix_ms = last_batch_unix_ms;
