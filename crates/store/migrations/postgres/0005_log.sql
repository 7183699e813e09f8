-- The transparency log: one RFC 6962 Merkle tree for the whole platform (platform tables, not
-- tenant tables: the log is public and one). Every event captured from this migration on is
-- appended in its capture transaction.

-- The log index of an event and the secret seed of its commitment (salts and decoys derive from
-- it; see the epcis crate's commitment module). Events captured before the log existed have none.
ALTER TABLE epcis_events ADD COLUMN log_index BIGINT;
ALTER TABLE epcis_events ADD COLUMN commitment_seed BYTEA;

-- The entries, in log order: the public commitment, and (never served) whose event it is.
CREATE TABLE log_entries (
    entry_index BIGINT NOT NULL PRIMARY KEY,
    entry BYTEA NOT NULL,
    tenant_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL
);

-- C2SP tlog-tiles hash tiles: one row per tile, rewritten as a partial tile widens; a full tile
-- (width 256) never changes again. A partial tile of width W is the first W hashes of the row.
CREATE TABLE log_tiles (
    level BIGINT NOT NULL,
    tile_index BIGINT NOT NULL,
    width BIGINT NOT NULL CHECK (width BETWEEN 1 AND 256),
    hashes BYTEA NOT NULL,
    PRIMARY KEY (level, tile_index)
);

-- The tree's size and root after the last committed append.
CREATE TABLE log_state (
    singleton BIGINT NOT NULL PRIMARY KEY CHECK (singleton = 1),
    size BIGINT NOT NULL,
    root_hash BYTEA NOT NULL
);
INSERT INTO log_state (singleton, size, root_hash) VALUES (1, 0, decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'));

-- Signed checkpoints (C2SP tlog-checkpoint as signed notes), one per tree size.
CREATE TABLE log_checkpoints (
    size BIGINT NOT NULL PRIMARY KEY,
    note TEXT NOT NULL,
    created_unix_ms BIGINT NOT NULL
);

-- Witness cosignatures (C2SP tlog-cosignature signature lines) of checkpoints.
CREATE TABLE log_cosignatures (
    size BIGINT NOT NULL,
    witness TEXT NOT NULL,
    signature_line TEXT NOT NULL,
    created_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (size, witness)
);
