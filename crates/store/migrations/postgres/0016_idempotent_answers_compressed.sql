-- An idempotent request's first answer may be stored compressed (store::idempotency): LZ4's
-- block format with its uncompressed length first. Answers stored before stay as they are.
ALTER TABLE idempotency_keys ADD COLUMN response_encoding TEXT NOT NULL DEFAULT 'identity'
    CHECK (response_encoding IN ('identity', 'lz4'));
