-- The idempotency keys' index is built in bulk (store::idempotency, docs/benchmarks.md, entry
-- "2026-12-06, 07:35–09:05 UTC").
--
-- Each key landed in the primary key's index at its own place: a page of that index written in
-- every commit for every key, a quarter of the pages an order wrote. Now, as for the reserves'
-- lot index (0018):
-- - `idempotency_keys` holds the answers keyed by (tenant, time, key): each tenant's are appended;
-- - `idempotency_keys_by_key` holds exactly the keys with `created_unix_ms <= through_unix_ms` of
--   `idempotency_keys_indexed`, each pointing at its row. The writer extends it in one sorted
--   insert once enough keys wait (`idempotency::KEYS_UNINDEXED_MAX`), touching each page once;
-- - the keys after it (the tail) are found by time: the writer remembers them with their time and
--   probes the primary key; a reader walks the tenant's tail on it.
-- Batch times only increase on SQLite (`writer_clock`), so a new key always lands in the tail.

ALTER TABLE idempotency_keys RENAME TO idempotency_keys_before_0029;

CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    idempotency_key TEXT NOT NULL,
    request_sha256 BLOB NOT NULL,
    response_status INTEGER NOT NULL,
    response_body BLOB NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    response_encoding TEXT NOT NULL DEFAULT 'identity' CHECK (response_encoding IN ('identity', 'lz4')),
    PRIMARY KEY (tenant_id, created_unix_ms, idempotency_key)
) STRICT;

INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_sha256, response_status, response_body,
    created_unix_ms, response_encoding)
    SELECT tenant_id, idempotency_key, request_sha256, response_status, response_body, created_unix_ms, response_encoding
    FROM idempotency_keys_before_0029 ORDER BY created_unix_ms;

DROP TABLE idempotency_keys_before_0029;

-- The tail across tenants (the index's extension) and the expired keys (the purge), by time.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_unix_ms);

CREATE TABLE idempotency_keys_by_key (
    tenant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    key_row INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
) WITHOUT ROWID, STRICT;

CREATE TABLE idempotency_keys_indexed (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    through_unix_ms INTEGER NOT NULL
) STRICT;

INSERT INTO idempotency_keys_indexed (singleton, through_unix_ms)
    SELECT 1, MAX(COALESCE((SELECT MAX(created_unix_ms) FROM idempotency_keys), 0),
        (SELECT last_batch_unix_ms FROM writer_clock));
INSERT INTO idempotency_keys_by_key (tenant_id, idempotency_key, key_row)
    SELECT tenant_id, idempotency_key, rowid FROM idempotency_keys ORDER BY tenant_id, idempotency_key;
-- Every later batch, and so every later key, comes after the mark (a key stored before the batch
-- clock existed, 0012, may be newer than the clock's first time).
UPDATE writer_clock SET last_batch_unix_ms = MAX(last_batch_unix_ms, (SELECT through_unix_ms FROM idempotency_keys_indexed));

-- Statistics gathered on the old table's key (by an ANALYZE run by hand) do not describe the new one.
DELETE FROM sqlite_stat1 WHERE tbl = 'idempotency_keys';
ANALYZE sqlite_schema; -- loads what is left
