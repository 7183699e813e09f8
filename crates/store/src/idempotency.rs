//! How the first answer to an idempotent request is stored: compressed (LZ4) when that makes it
//! smaller, with its encoding beside it (`idempotency_keys.response_encoding`).
//!
//! A placed order's answer is the whole order view, about 2.3 KB of JSON, written with every order
//! and read only when a client retries. As it was, each row filled a 4 KiB page of SQLite's
//! table on its own (two did not fit): a page written to the WAL per order, a seventh of a batch's
//! pages in `keten bench orders`. LZ4 keeps about half of it (the view repeats its keys and codes),
//! so three answers share a page (docs/benchmarks.md, Orders, "idempotent answers compressed").
//!
//! The block format with its uncompressed length first; that length is checked against
//! [`RESPONSE_BODY_BYTES_MAX`] before anything is allocated, so a damaged row is refused as corrupt
//! instead of asking for any amount of memory. The writer decodes an answer only to replay it: a
//! damaged one fails that retry alone, not the batch it came in.

/// Stored as it is.
pub(crate) const IDENTITY: &str = "identity";
/// LZ4 block, its uncompressed length first (4 bytes, little-endian).
pub(crate) const LZ4: &str = "lz4";

/// Answers shorter than this are stored as they are: most of them are a few hundred bytes that
/// LZ4 would barely shrink.
pub const COMPRESSED_FROM_BYTES: usize = 512;

/// The largest answer stored compressed; a larger one is stored as it is. A stored LZ4 body
/// claiming more than this is corrupt.
pub const RESPONSE_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The encoding and bytes to store for an answer's body.
pub(crate) fn encode(body: &[u8]) -> (&'static str, Vec<u8>) {
    if (COMPRESSED_FROM_BYTES..=RESPONSE_BODY_BYTES_MAX).contains(&body.len()) {
        let compressed = lz4_flex::compress_prepend_size(body);
        if compressed.len() < body.len() {
            return (LZ4, compressed);
        }
    }
    (IDENTITY, body.to_vec())
}

/// The body as it was answered, from its stored encoding and bytes.
pub(crate) fn decode(encoding: &str, stored: Vec<u8>) -> Result<Vec<u8>, String> {
    match encoding {
        IDENTITY => Ok(stored),
        LZ4 => {
            let (length, block) =
                lz4_flex::block::uncompressed_size(&stored).map_err(|error| format!("idempotent answer: {error}"))?;
            if length > RESPONSE_BODY_BYTES_MAX {
                return Err(format!(
                    "idempotent answer claims {length} bytes, more than the {RESPONSE_BODY_BYTES_MAX} stored compressed"
                ));
            }
            let body = lz4_flex::decompress(block, length).map_err(|error| format!("idempotent answer: {error}"))?;
            if body.len() != length {
                return Err(format!("idempotent answer: {} bytes where {length} were stored", body.len()));
            }
            Ok(body)
        }
        other => Err(format!("idempotent answer in an unknown encoding {other:?}")),
    }
}

/// On SQLite, the writer extends the keys' index (`idempotency_keys_by_key`, migration 0029) once
/// this many keys wait in the tail: each extension is one sorted insert that writes each of the
/// index's pages it touches once, instead of a page for every key in every commit. It also bounds
/// what a reader walks to find a key of the tail (at about 9,000 orders a second, about a second
/// of keys).
pub const KEYS_UNINDEXED_MAX: usize = 8_192;

/// On SQLite, the keys written since the keys' index was last extended (the tail), as the one
/// writer remembers them: each key with the time it was stored, so that the writer finds a
/// retry's answer in the tail by one probe of the primary key (tenant, time, key) instead of a
/// walk.
///
/// Not known at the writer's start, after a rolled-back batch, nor after another process wrote
/// the file: the next batch then extends the index over the whole tail first
/// ([`catch_up_keys_index`]), and once it commits the tail is empty and known again. (Not
/// before: writes applied ahead meanwhile read the index as committed, without those keys, and
/// would find them nowhere.)
#[derive(Debug, Default)]
pub(crate) struct KeysTail {
    pub(crate) known: bool,
    keys: std::collections::HashMap<(String, String), i64>,
}

impl KeysTail {
    /// When a key of the tail was stored, if it is in the tail.
    pub(crate) fn stored_at(&self, tenant: &str, key: &str) -> Option<i64> {
        self.keys.get(&(tenant.to_owned(), key.to_owned())).copied()
    }

    /// The index holds every key (caught up, or just extended), once that batch committed.
    pub(crate) fn indexed(&mut self) {
        *self = KeysTail::indexed_now();
    }

    /// An empty tail, known: what the transaction that caught the index up sees.
    pub(crate) fn indexed_now() -> KeysTail {
        KeysTail { known: true, keys: std::collections::HashMap::new() }
    }

    /// A batch that stored `keys` at `stored_unix_ms` committed; `indexed` says whether it also
    /// extended the index (which then holds them and every key before).
    pub(crate) fn committed(&mut self, keys: Vec<(String, String)>, stored_unix_ms: i64, indexed: bool) {
        if indexed {
            self.indexed();
        } else if self.known {
            self.keys.extend(keys.into_iter().map(|key| (key, stored_unix_ms)));
        }
    }

    /// Whether the batch that stores `new_keys` more extends the index.
    pub(crate) fn index_due(&self, new_keys: usize) -> bool {
        self.keys.len().saturating_add(new_keys) >= KEYS_UNINDEXED_MAX
    }
}

/// On SQLite, the stored keys (`$1` tenant) among a list, found by the index: `{condition}` is
/// the list's test on `i.idempotency_key` (see `writer::fetch_for_keys`). A row whose key no longer
/// matches (deleted, its rowid taken again) is not its answer.
pub(crate) fn sqlite_indexed_keys_sql(tenant: &str, condition: &str) -> String {
    format!(
        "SELECT k.idempotency_key, k.request_sha256, k.response_status, k.response_encoding, k.response_body, \
         k.created_unix_ms FROM idempotency_keys_by_key i JOIN idempotency_keys k ON k.rowid = i.key_row \
         AND k.tenant_id = i.tenant_id AND k.idempotency_key = i.idempotency_key \
         WHERE i.tenant_id = {tenant} AND i.idempotency_key {condition}"
    )
}

/// On SQLite, a key of the tail (`$1` tenant, `$2` key, `$3` when it was stored), by one probe of
/// the primary key.
pub(crate) const SQLITE_TAIL_KEY_SQL: &str = "SELECT idempotency_key, request_sha256, response_status, \
     response_encoding, response_body, created_unix_ms FROM idempotency_keys \
     WHERE tenant_id = $1 AND created_unix_ms = $3 AND idempotency_key = $2";

/// On SQLite, a key's answer for a reader (`$1` tenant, `$2` key, `$3` the oldest time still
/// valid): by the index, or by a walk of the tenant's tail on the primary key (at most about
/// [`KEYS_UNINDEXED_MAX`] entries, which hold the key). The newest, should an expired key's new answer wait in
/// the tail while the index still points at the old one's row.
pub(crate) const SQLITE_KEY_ANSWER_SQL: &str = "SELECT request_sha256, response_status, response_encoding, \
     response_body FROM (\
     SELECT k.created_unix_ms, k.request_sha256, k.response_status, k.response_encoding, k.response_body \
     FROM idempotency_keys_by_key i JOIN idempotency_keys k ON k.rowid = i.key_row AND k.tenant_id = i.tenant_id \
     AND k.idempotency_key = i.idempotency_key WHERE i.tenant_id = $1 AND i.idempotency_key = $2 \
     UNION ALL \
     SELECT created_unix_ms, request_sha256, response_status, response_encoding, response_body \
     FROM idempotency_keys \
     WHERE tenant_id = $1 AND created_unix_ms > (SELECT through_unix_ms FROM idempotency_keys_indexed) \
     AND idempotency_key = $2) \
     WHERE created_unix_ms >= $3 ORDER BY created_unix_ms DESC LIMIT 1";

/// On SQLite, the tail (the keys after the index's mark, up to `$1`) into the index, in its order.
/// A key already there keeps its entry while that entry's row is its answer (the first answer
/// stands; an expired key used again had its entry deleted with its row); an entry whose row is
/// gone points at the new row.
const SQLITE_EXTEND_KEYS_INDEX_SQL: &str = "INSERT INTO idempotency_keys_by_key (tenant_id, idempotency_key, key_row) \
     SELECT tenant_id, idempotency_key, rowid FROM idempotency_keys INDEXED BY idempotency_keys_by_age \
     WHERE created_unix_ms > (SELECT through_unix_ms FROM idempotency_keys_indexed) AND created_unix_ms <= $1 \
     ORDER BY tenant_id, idempotency_key, created_unix_ms \
     ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET key_row = excluded.key_row \
     WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.rowid = idempotency_keys_by_key.key_row \
     AND k.tenant_id = idempotency_keys_by_key.tenant_id AND k.idempotency_key = idempotency_keys_by_key.idempotency_key)";

/// On SQLite, extends the keys' index over the tail up to `through_unix_ms` (this batch's time,
/// its own keys written), in the batch's transaction, and moves the mark there. When
/// [`KeysTail::index_due`].
pub(crate) async fn extend_keys_index(
    connection: &mut sqlx::SqliteConnection,
    through_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(SQLITE_EXTEND_KEYS_INDEX_SQL).bind(through_unix_ms).execute(&mut *connection).await?;
    sqlx::query("UPDATE idempotency_keys_indexed SET through_unix_ms = $1 WHERE through_unix_ms < $1")
        .bind(through_unix_ms)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// On SQLite, extends the keys' index over the whole tail, when the writer does not know it (at
/// its start, after a rollback, after another process wrote): every key stored is at or before the
/// last batch's time. Run before the batch takes its time.
pub(crate) async fn catch_up_keys_index(connection: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let (last,): (i64,) =
        sqlx::query_as("SELECT last_batch_unix_ms FROM writer_clock").fetch_one(&mut *connection).await?;
    extend_keys_index(connection, last).await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn order_view(lines: usize) -> Vec<u8> {
        let picks: Vec<String> = (0..lines)
            .map(|line| {
                format!(
                    r#"{{"line":{line},"gtin":"871234500000{line:02}","zone":"chill","lot":"L{line}-30","expiry":"2027-01-12","quantity":3}}"#
                )
            })
            .collect();
        format!(
            r#"{{"order_id":"ord_01a23f75149ff8b0dc3e47fc4a7b","status":"allocated","picks":[{}]}}"#,
            picks.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn an_order_view_is_stored_compressed_and_read_back_as_answered() {
        let body = order_view(20);
        assert!(body.len() > 2_000);
        let (encoding, stored) = encode(&body);
        assert_eq!(encoding, LZ4);
        assert!(stored.len() * 2 < body.len(), "{} of {} bytes", stored.len(), body.len());
        assert_eq!(decode(encoding, stored).unwrap(), body);
    }

    #[test]
    fn short_or_incompressible_answers_are_stored_as_they_are() {
        let short = br#"{"status":"ok"}"#.to_vec();
        assert_eq!(encode(&short), (IDENTITY, short.clone()));
        // Bytes without repeats: LZ4 would only add its framing.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4_096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert_eq!(encode(&noise), (IDENTITY, noise.clone()));
        assert_eq!(decode(IDENTITY, noise.clone()).unwrap(), noise);
    }

    #[test]
    fn damaged_or_unknown_stored_answers_are_refused() {
        let (_, mut stored) = encode(&order_view(20));
        // A length beyond the limit is refused before anything is allocated.
        stored[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(LZ4, stored.clone()).unwrap_err().contains("more than"));
        // A length that does not match the block.
        stored[..4].copy_from_slice(&10_u32.to_le_bytes());
        assert!(decode(LZ4, stored).is_err());
        assert!(decode(LZ4, vec![1, 2]).is_err());
        assert!(decode("gzip", b"{}".to_vec()).unwrap_err().contains("unknown encoding"));
    }

    #[test]
    fn the_tail_is_remembered_once_known_and_emptied_when_indexed() {
        let mut tail = KeysTail::default();
        let key = |name: &str| ("acme".to_owned(), name.to_owned());
        // Not known (a writer just started): a batch committed adds nothing to remember.
        tail.committed(vec![key("a")], 10, false);
        assert!(!tail.known && tail.stored_at("acme", "a").is_none());
        tail.indexed();
        tail.committed(vec![key("a"), key("b")], 20, false);
        assert_eq!((tail.stored_at("acme", "a"), tail.stored_at("acme", "b")), (Some(20), Some(20)));
        assert_eq!(tail.stored_at("other", "a"), None);
        // An expired key used again is remembered at its new time.
        tail.committed(vec![key("a")], 30, false);
        assert_eq!(tail.stored_at("acme", "a"), Some(30));
        assert!(!tail.index_due(KEYS_UNINDEXED_MAX - 3));
        assert!(tail.index_due(KEYS_UNINDEXED_MAX - 2));
        // The batch that extended the index leaves nothing in the tail, its own keys included.
        tail.committed(vec![key("c")], 40, true);
        assert!(tail.known && tail.stored_at("acme", "a").is_none() && tail.stored_at("acme", "c").is_none());
    }

    proptest! {
        #[test]
        fn every_body_reads_back_as_it_was_answered(body in proptest::collection::vec(any::<u8>(), 0..3_000), repeats in 1_usize..8) {
            let body = body.repeat(repeats);
            let (encoding, stored) = encode(&body);
            prop_assert!(stored.len() <= body.len());
            prop_assert_eq!(decode(encoding, stored).unwrap(), body);
        }
    }
}
