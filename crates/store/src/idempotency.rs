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
