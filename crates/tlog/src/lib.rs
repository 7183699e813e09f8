//! The pure core of Keten's verifiable transparency log: no IO, no database, no clock, no randomness.
//!
//! - [`hash`]: RFC 6962 leaf and node hashes.
//! - [`merkle`]: tree heads, inclusion and consistency proofs (generated from stored hashes, verified per RFC 9162).
//! - [`compact`]: compact ranges, to extend a tree's root without its earlier leaves.
//! - [`tiles`]: C2SP tlog-tiles coordinates, paths, entry bundles, and proofs read from tiles.
//! - [`memory`]: in-memory hash and tile stores (the reference for database stores).
//! - [`note`]: C2SP signed-note with Ed25519 signatures and verifier/signer key encodings.
//! - [`cosignature`]: C2SP tlog-cosignature (timestamped Ed25519 cosignatures, type 0x04).
//! - [`checkpoint`]: C2SP tlog-checkpoint parsing, printing, and a verification policy.
//! - [`proof_bundle`]: C2SP tlog-proof, the offline-verifiable proof of an entry.

pub mod checkpoint;
pub mod compact;
pub mod cosignature;
pub mod hash;
pub mod memory;
pub mod merkle;
pub mod note;
pub mod proof_bundle;
pub mod tiles;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointPolicy, VerifiedCheckpoint};
pub use compact::{CompactRange, CompactRangeError};
pub use cosignature::{CosignatureError, Cosigner};
pub use hash::{HASH_SIZE_BYTES, Hash, HashError, leaf_hash, node_hash};
pub use memory::{MemoryHashStore, MemoryTileStore};
pub use merkle::{
    HashReadError, HashReader, NodeAddress, ProofError, ProofPlan, consistency_proof, inclusion_proof, tree_hash,
    verify_consistency, verify_inclusion,
};
pub use note::{KeyError, Note, NoteError, NoteSignature, NoteSigner, SignatureKind, VerifiedSignature, VerifierKey};
pub use proof_bundle::{ProofBundle, ProofBundleError};
pub use tiles::{Tile, TileError, TileHashReader, TileReader, TileResource};
