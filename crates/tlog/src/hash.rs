//! RFC 6962 hashing: the 32-byte [`struct@Hash`], leaf hashes and interior node hashes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};

/// Size of every hash in the log: SHA-256.
pub const HASH_SIZE_BYTES: usize = 32;

/// Domain separation prefix of a leaf hash (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain separation prefix of an interior node hash (RFC 6962 §2.1).
const NODE_PREFIX: u8 = 0x01;

/// A SHA-256 Merkle tree hash. Always exactly 32 bytes: a hash of any other length cannot be built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_SIZE_BYTES]);

/// A byte string or base64 text that is not a 32-byte hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("a hash is {HASH_SIZE_BYTES} bytes, got {length_bytes}")]
    WrongLength { length_bytes: usize },
    #[error("hash is not valid base64")]
    Base64,
}

impl Hash {
    /// The hash of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
    pub fn empty_tree() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// Takes a hash from a byte slice; any length other than 32 is an error.
    pub fn from_slice(bytes: &[u8]) -> Result<Hash, HashError> {
        let array: [u8; HASH_SIZE_BYTES] =
            bytes.try_into().map_err(|_| HashError::WrongLength { length_bytes: bytes.len() })?;
        Ok(Hash(array))
    }

    /// Decodes standard, padded base64 (RFC 4648 §4) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Hash, HashError> {
        let bytes = BASE64.decode(text).map_err(|_| HashError::Base64)?;
        Hash::from_slice(&bytes)
    }

    /// Standard, padded base64 (44 characters).
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; HASH_SIZE_BYTES] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Hash({self})")
    }
}

/// Lowercase hex.
impl fmt::Display for Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(formatter, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The leaf hash of a log entry: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    Hash(hasher.finalize().into())
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_leaf(entry: &[u8], expected_hex: &str) {
        assert_eq!(leaf_hash(entry).to_string(), expected_hex);
    }

    #[test]
    fn leaf_hashes_match_rfc6962_reference_values() {
        // Leaves of the RFC 6962 reference tree used by Certificate Transparency test suites.
        check_leaf(b"", "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        check_leaf(&[0x00], "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7");
        check_leaf(&[0x10], "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7");
    }

    #[test]
    fn empty_tree_hash_is_sha256_of_nothing() {
        assert_eq!(Hash::empty_tree().to_string(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn node_hash_is_domain_separated() {
        let left = leaf_hash(b"a");
        let right = leaf_hash(b"b");
        let mut concatenated = Vec::new();
        concatenated.push(0x01);
        concatenated.extend_from_slice(&left.0);
        concatenated.extend_from_slice(&right.0);
        assert_eq!(node_hash(&left, &right).0, <[u8; 32]>::from(Sha256::digest(&concatenated)));
        assert_ne!(node_hash(&left, &right), node_hash(&right, &left));
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        for length_bytes in [0, 1, 31, 33, 64] {
            assert_eq!(Hash::from_slice(&vec![0; length_bytes]), Err(HashError::WrongLength { length_bytes }));
        }
        assert_eq!(Hash::from_base64("ZG9uJ3QgY2FyZSAy"), Err(HashError::WrongLength { length_bytes: 12 }));
        assert_eq!(Hash::from_base64("not base64!"), Err(HashError::Base64));
        assert_eq!(Hash::from_base64(""), Err(HashError::WrongLength { length_bytes: 0 }));
    }

    #[test]
    fn base64_round_trips() {
        let hash = leaf_hash(b"entry");
        assert_eq!(Hash::from_base64(&hash.to_base64()), Ok(hash));
        assert_eq!(hash.to_base64().len(), 44);
    }
}
