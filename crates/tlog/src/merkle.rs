//! RFC 6962 / RFC 9162 Merkle tree: tree heads, inclusion and consistency proofs.
//!
//! Proof generation never rehashes the log: it first plans which complete subtrees it needs
//! ([`NodeAddress`]es), reads their stored hashes through a [`HashReader`] in one batch, and only
//! combines the few hashes of the ragged right edge of the tree. Verification follows the
//! algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.
//!
//! | case | inclusion | consistency |
//! |---|---|---|
//! | tree size 0 | [`ProofError::IndexOutOfRange`]: nothing is in the empty tree | `old = new = 0`: both roots must be the empty tree hash |
//! | tree size 1 | index 0, empty proof, leaf hash = root | `old = new = 1`: empty proof, equal roots |
//! | `old = 0 < new` | — | [`ProofError::ConsistencyFromEmptyTree`] |
//! | `old = new` | — | empty proof and equal roots; a non-empty proof is [`ProofError::WrongProofLength`] |
//! | `old > new` | — | [`ProofError::OldSizeExceedsNewSize`] |
//! | `index ≥ size` | [`ProofError::IndexOutOfRange`] | — |
//! | proof too short or too long | [`ProofError::WrongProofLength`] | [`ProofError::WrongProofLength`] |
//! | hash of the wrong length | cannot be represented: [`crate::Hash::from_slice`] fails | same |

use crate::hash::{Hash, node_hash};

/// The largest number of hashes in any inclusion or consistency proof for a tree of at most 2^64 - 1 leaves.
pub const PROOF_HASHES_MAX: usize = 64;

/// A complete, aligned subtree: the `2^level` leaves starting at leaf `index * 2^level`.
///
/// Level 0 nodes are leaves. Stores keep the hash of every complete subtree (directly, or as tiles),
/// so that every proof element is one read or a combination of a few reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddress {
    pub level: u8,
    pub index: u64,
}

impl NodeAddress {
    pub fn new(level: u8, index: u64) -> NodeAddress {
        NodeAddress { level, index }
    }

    /// The first leaf index covered by this node.
    pub fn first_leaf(&self) -> u64 {
        self.index << self.level
    }
}

/// Why stored hashes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HashReadError {
    #[error("no stored hash for the node at level {}, index {}", .0.level, .0.index)]
    Missing(NodeAddress),
    #[error("no stored tile {}", .0.path())]
    MissingTile(crate::tiles::Tile),
    #[error("stored tile data has the wrong length: expected {expected_bytes} bytes, got {actual_bytes}")]
    WrongTileLength { expected_bytes: usize, actual_bytes: usize },
    #[error("reader returned {actual} results for {expected} requests")]
    WrongResultCount { expected: usize, actual: usize },
    #[error("reading stored hashes failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Reads the stored hashes of complete subtrees.
///
/// Implementations answer in the order asked, one hash per address, and fail rather than guess:
/// a missing hash is [`HashReadError::Missing`]. Asking for many addresses at once lets a database
/// answer a whole proof in one query.
pub trait HashReader {
    fn read_hashes(&self, addresses: &[NodeAddress]) -> Result<Vec<Hash>, HashReadError>;
}

/// A proof failed to generate or to verify. Every variant is a rejection; none is a partial success.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old_size} exceeds new tree size {new_size}")]
    OldSizeExceedsNewSize { old_size: u64, new_size: u64 },
    #[error("consistency from the empty tree has no proof (every tree extends it; check the old size first)")]
    ConsistencyFromEmptyTree,
    #[error("proof has {actual} hashes, expected {expected}")]
    WrongProofLength { expected: usize, actual: usize },
    #[error("computed root hash does not match the expected root hash")]
    RootMismatch,
    #[error("computed old root hash does not match the old root hash")]
    OldRootMismatch,
    #[error("computed new root hash does not match the new root hash")]
    NewRootMismatch,
    #[error("reading stored hashes for the proof failed")]
    Read(#[from] HashReadError),
}

/// A contiguous leaf range `[start, end)` whose RFC 6962 hash (MTH) a proof needs.
///
/// Ranges in proofs are always a complete aligned subtree, or the ragged right edge
/// `[start, size)` of a tree whose `start` is aligned to a power of two at least `end - start`.
/// Such a range is a sequence of complete subtrees of strictly decreasing size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LeafRange {
    start: u64,
    end: u64,
}

impl LeafRange {
    /// The complete subtrees making up this range, left to right, largest first.
    fn nodes(self) -> Vec<NodeAddress> {
        let mut nodes = Vec::new();
        let mut start = self.start;
        while start < self.end {
            let remaining = self.end - start;
            // Largest power of two that divides `start` (any, when start is 0) and fits in the remainder.
            let alignment_level = if start == 0 { 63 } else { start.trailing_zeros() };
            let fit_level = 63 - remaining.leading_zeros();
            let level = alignment_level.min(fit_level);
            nodes.push(NodeAddress::new(level as u8, start >> level));
            start += 1u64 << level;
        }
        debug_assert!(
            nodes.windows(2).all(|pair| pair[0].level > pair[1].level),
            "proof range {self:?} is not a left-aligned sequence of shrinking subtrees"
        );
        nodes
    }
}

/// The largest power of two strictly less than `size`; `size` must be at least 2.
fn split_point(size: u64) -> u64 {
    debug_assert!(size >= 2);
    1u64 << (63 - (size - 1).leading_zeros())
}

/// Ranges of the inclusion path of leaf `index` in a tree of `size` (RFC 9162 §2.1.3.1), leaf sibling first.
fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<LeafRange>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut ranges = Vec::new();
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let middle = start + split_point(end - start);
        if index < middle {
            ranges.push(LeafRange { start: middle, end });
            end = middle;
        } else {
            ranges.push(LeafRange { start, end: middle });
            start = middle;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// Ranges of the consistency proof from `old_size` to `new_size` (RFC 9162 §2.1.4.1), deepest first.
fn consistency_ranges(old_size: u64, new_size: u64) -> Result<Vec<LeafRange>, ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNewSize { old_size, new_size });
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    if old_size == 0 {
        return Err(ProofError::ConsistencyFromEmptyTree);
    }
    // SUBPROOF(m, D[start:end], start_from_old_root), unrolled.
    let mut ranges = Vec::new();
    let (mut start, mut end) = (0u64, new_size);
    let mut old_root_is_known = true;
    while old_size != end {
        let middle = start + split_point(end - start);
        if old_size <= middle {
            ranges.push(LeafRange { start: middle, end });
            end = middle;
        } else {
            ranges.push(LeafRange { start, end: middle });
            start = middle;
            old_root_is_known = false;
        }
    }
    if !old_root_is_known {
        ranges.push(LeafRange { start, end });
    }
    ranges.reverse();
    Ok(ranges)
}

/// Which stored hashes a proof or tree head needs, and how to combine them.
///
/// Planning is pure: [`crate::tiles::tiles_for_nodes`] turns [`ProofPlan::nodes`] into the tiles
/// a client must fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    /// One entry per proof hash: the complete subtrees whose hashes fold (right to left) into it.
    parts: Vec<Vec<NodeAddress>>,
}

impl ProofPlan {
    /// The plan of the inclusion proof of leaf `index` in the tree of `size` leaves.
    pub fn inclusion(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
        Ok(ProofPlan::from_ranges(inclusion_ranges(index, size)?))
    }

    /// The plan of the consistency proof from tree size `old_size` to `new_size`.
    pub fn consistency(old_size: u64, new_size: u64) -> Result<ProofPlan, ProofError> {
        Ok(ProofPlan::from_ranges(consistency_ranges(old_size, new_size)?))
    }

    /// The plan of the root hash of the tree of `size` leaves: one part (none for the empty tree).
    pub fn tree_hash(size: u64) -> ProofPlan {
        if size == 0 {
            return ProofPlan { parts: Vec::new() };
        }
        ProofPlan::from_ranges(vec![LeafRange { start: 0, end: size }])
    }

    fn from_ranges(ranges: Vec<LeafRange>) -> ProofPlan {
        ProofPlan { parts: ranges.into_iter().map(LeafRange::nodes).collect() }
    }

    /// Number of hashes the plan produces.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Every stored hash the plan reads, in reading order, each once (the parts cover disjoint leaves).
    pub fn nodes(&self) -> Vec<NodeAddress> {
        self.parts.iter().flatten().copied().collect()
    }

    /// Reads the stored hashes in one batch and combines them.
    pub fn execute(&self, reader: &impl HashReader) -> Result<Vec<Hash>, HashReadError> {
        let nodes = self.nodes();
        let hashes = reader.read_hashes(&nodes)?;
        if hashes.len() != nodes.len() {
            return Err(HashReadError::WrongResultCount { expected: nodes.len(), actual: hashes.len() });
        }
        let mut remaining = hashes.as_slice();
        let mut proof = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let (part_hashes, rest) = remaining.split_at(part.len());
            remaining = rest;
            proof.push(fold_right_edge(part_hashes));
        }
        Ok(proof)
    }
}

/// MTH of a left-aligned sequence of complete subtrees of shrinking size: fold from the right.
fn fold_right_edge(hashes: &[Hash]) -> Hash {
    let (last, rest) = hashes.split_last().expect("a proof range covers at least one leaf");
    rest.iter().rev().fold(*last, |right, left| node_hash(left, &right))
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves, from stored hashes.
pub fn inclusion_proof(index: u64, size: u64, reader: &impl HashReader) -> Result<Vec<Hash>, ProofError> {
    Ok(ProofPlan::inclusion(index, size)?.execute(reader)?)
}

/// The consistency proof from `old_size` to `new_size`, from stored hashes. Empty when the sizes are equal.
pub fn consistency_proof(old_size: u64, new_size: u64, reader: &impl HashReader) -> Result<Vec<Hash>, ProofError> {
    Ok(ProofPlan::consistency(old_size, new_size)?.execute(reader)?)
}

/// The root hash of the tree of `size` leaves, from stored hashes (the empty tree hash for size 0).
pub fn tree_hash(size: u64, reader: &impl HashReader) -> Result<Hash, HashReadError> {
    let hashes = ProofPlan::tree_hash(size).execute(reader)?;
    Ok(hashes.first().copied().unwrap_or_else(Hash::empty_tree))
}

/// MTH (RFC 6962 §2.1) of a list of leaf hashes, computed in memory. For tiles and tests; logs use [`tree_hash`].
pub fn root_from_leaf_hashes(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes.len() {
        0 => Hash::empty_tree(),
        1 => leaf_hashes[0],
        length => {
            let middle = split_point(length as u64) as usize;
            node_hash(&root_from_leaf_hashes(&leaf_hashes[..middle]), &root_from_leaf_hashes(&leaf_hashes[middle..]))
        }
    }
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size` leaves.
pub fn inclusion_proof_length(index: u64, size: u64) -> Result<usize, ProofError> {
    Ok(inclusion_ranges(index, size)?.len())
}

/// Number of hashes in the consistency proof from `old_size` to `new_size`.
pub fn consistency_proof_length(old_size: u64, new_size: u64) -> Result<usize, ProofError> {
    Ok(consistency_ranges(old_size, new_size)?.len())
}

/// The root hash that an inclusion proof implies for `leaf_hash` at `index` in a tree of `size` (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(leaf_hash: &Hash, index: u64, size: u64, proof: &[Hash]) -> Result<Hash, ProofError> {
    let expected = inclusion_proof_length(index, size)?;
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength { expected, actual: proof.len() });
    }
    let mut first_node = index;
    let mut last_node = size - 1;
    let mut result = *leaf_hash;
    for sibling in proof {
        // Unreachable after the length check; kept because it is the RFC's own guard.
        if last_node == 0 {
            return Err(ProofError::WrongProofLength { expected, actual: proof.len() });
        }
        if first_node & 1 == 1 || first_node == last_node {
            result = node_hash(sibling, &result);
            while first_node & 1 == 0 && first_node != 0 {
                first_node >>= 1;
                last_node >>= 1;
            }
        } else {
            result = node_hash(&result, sibling);
        }
        first_node >>= 1;
        last_node >>= 1;
    }
    if last_node != 0 {
        return Err(ProofError::WrongProofLength { expected, actual: proof.len() });
    }
    Ok(result)
}

/// Checks that `leaf_hash` is the leaf at `index` of the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of `old_size`
/// leaves with root `old_root` (RFC 9162 §2.1.4.2). See the module table for the edge cases.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let expected = consistency_proof_length(old_size, new_size)?;
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength { expected, actual: proof.len() });
    }
    if old_size == new_size {
        if old_size == 0 && *old_root != Hash::empty_tree() {
            return Err(ProofError::OldRootMismatch);
        }
        if old_root != new_root {
            return Err(ProofError::NewRootMismatch);
        }
        return Ok(());
    }
    // Here 0 < old_size < new_size and the proof is non-empty.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let mut first_node = old_size - 1;
    let mut last_node = new_size - 1;
    while first_node & 1 == 1 {
        first_node >>= 1;
        last_node >>= 1;
    }
    let mut old_result = path[0];
    let mut new_result = path[0];
    for sibling in &path[1..] {
        if last_node == 0 {
            return Err(ProofError::WrongProofLength { expected, actual: proof.len() });
        }
        if first_node & 1 == 1 || first_node == last_node {
            old_result = node_hash(sibling, &old_result);
            new_result = node_hash(sibling, &new_result);
            while first_node & 1 == 0 && first_node != 0 {
                first_node >>= 1;
                last_node >>= 1;
            }
        } else {
            new_result = node_hash(&new_result, sibling);
        }
        first_node >>= 1;
        last_node >>= 1;
    }
    if last_node != 0 {
        return Err(ProofError::WrongProofLength { expected, actual: proof.len() });
    }
    if old_result != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if new_result != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use crate::hash::leaf_hash;
    use crate::memory::MemoryHashStore;

    /// The eight leaves of the RFC 6962 reference tree used across Certificate Transparency test suites.
    fn reference_entries() -> Vec<Vec<u8>> {
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
            .iter()
            .map(|entry| hex::decode(entry).unwrap())
            .collect()
    }

    fn reference_store() -> MemoryHashStore {
        let mut store = MemoryHashStore::new();
        for entry in reference_entries() {
            store.append_entry(&entry);
        }
        store
    }

    /// A larger tree shared by the property tests: its complete subtrees serve every smaller size.
    const LARGE_TREE_SIZE: u64 = 1100;

    fn large_store() -> &'static MemoryHashStore {
        static STORE: OnceLock<MemoryHashStore> = OnceLock::new();
        STORE.get_or_init(|| {
            let mut store = MemoryHashStore::new();
            for index in 0..LARGE_TREE_SIZE {
                store.append_entry(&index.to_be_bytes());
            }
            store
        })
    }

    fn hash_from_hex(text: &str) -> Hash {
        Hash::from_slice(&hex::decode(text).unwrap()).unwrap()
    }

    fn check_root(size: u64, expected_hex: &str) {
        let store = reference_store();
        assert_eq!(tree_hash(size, &store).unwrap(), hash_from_hex(expected_hex), "size {size}");
        let leaves: Vec<Hash> = reference_entries()[..size as usize].iter().map(|entry| leaf_hash(entry)).collect();
        assert_eq!(root_from_leaf_hashes(&leaves), hash_from_hex(expected_hex), "size {size}");
    }

    #[test]
    fn roots_of_the_reference_tree() {
        check_root(0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        check_root(1, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        check_root(2, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
        check_root(3, "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77");
        check_root(4, "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7");
        check_root(5, "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4");
        check_root(6, "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef");
        check_root(7, "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c");
        check_root(8, "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
    }

    fn check_inclusion_proof(index: u64, size: u64, expected_hex: &[&str]) {
        let proof = inclusion_proof(index, size, &reference_store()).unwrap();
        let expected: Vec<Hash> = expected_hex.iter().map(|text| hash_from_hex(text)).collect();
        assert_eq!(proof, expected, "inclusion of {index} in {size}");
    }

    #[test]
    fn inclusion_proofs_of_the_reference_tree() {
        check_inclusion_proof(0, 1, &[]);
        check_inclusion_proof(
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        );
        check_inclusion_proof(
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        );
        check_inclusion_proof(2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]);
        check_inclusion_proof(
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        );
    }

    fn check_consistency_proof(old_size: u64, new_size: u64, expected_hex: &[&str]) {
        let proof = consistency_proof(old_size, new_size, &reference_store()).unwrap();
        let expected: Vec<Hash> = expected_hex.iter().map(|text| hash_from_hex(text)).collect();
        assert_eq!(proof, expected, "consistency {old_size} to {new_size}");
    }

    #[test]
    fn consistency_proofs_of_the_reference_tree() {
        check_consistency_proof(1, 1, &[]);
        check_consistency_proof(
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        );
        check_consistency_proof(
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        );
        check_consistency_proof(
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        );
    }

    /// The edge cases of the module table: (description, result of verification).
    fn check_consistency_answer(old_size: u64, new_size: u64, proof_length: usize, expected: &str) {
        let store = large_store();
        let root = |size: u64| {
            if size <= LARGE_TREE_SIZE { tree_hash(size, store).unwrap() } else { Hash([7; 32]) }
        };
        let proof = vec![Hash([1; 32]); proof_length];
        let answer = match verify_consistency(old_size, new_size, &root(old_size), &root(new_size), &proof) {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("{error:?}"),
        };
        assert!(answer.starts_with(expected), "{old_size} to {new_size}: {answer}");
    }

    #[test]
    fn consistency_edge_cases_have_defined_answers() {
        check_consistency_answer(0, 0, 0, "ok");
        check_consistency_answer(1, 1, 0, "ok");
        check_consistency_answer(5, 5, 0, "ok");
        check_consistency_answer(5, 5, 1, "WrongProofLength { expected: 0, actual: 1 }");
        check_consistency_answer(0, 1, 0, "ConsistencyFromEmptyTree");
        check_consistency_answer(0, 1, 1, "ConsistencyFromEmptyTree");
        check_consistency_answer(3, 2, 0, "OldSizeExceedsNewSize { old_size: 3, new_size: 2 }");
        check_consistency_answer(u64::MAX, 1, 0, "OldSizeExceedsNewSize");
        check_consistency_answer(1, 2, 0, "WrongProofLength { expected: 1, actual: 0 }");
        check_consistency_answer(1, 2, 2, "WrongProofLength { expected: 1, actual: 2 }");
        check_consistency_answer(3, 7, 4, "OldRootMismatch");
        check_consistency_answer(4, 7, 1, "NewRootMismatch");
    }

    #[test]
    fn equal_sizes_compare_roots() {
        let empty = Hash::empty_tree();
        let other = Hash([3; 32]);
        assert!(verify_consistency(0, 0, &empty, &empty, &[]).is_ok());
        assert!(matches!(verify_consistency(0, 0, &other, &other, &[]), Err(ProofError::OldRootMismatch)));
        assert!(matches!(verify_consistency(4, 4, &empty, &other, &[]), Err(ProofError::NewRootMismatch)));
        assert!(verify_consistency(4, 4, &other, &other, &[]).is_ok());
    }

    fn check_inclusion_answer(index: u64, size: u64, proof_length: usize, expected: &str) {
        let proof = vec![Hash([1; 32]); proof_length];
        let answer = match verify_inclusion(&Hash([2; 32]), index, size, &proof, &Hash([2; 32])) {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("{error:?}"),
        };
        assert!(answer.starts_with(expected), "{index} in {size}: {answer}");
    }

    #[test]
    fn inclusion_edge_cases_have_defined_answers() {
        check_inclusion_answer(0, 0, 0, "IndexOutOfRange { index: 0, size: 0 }");
        check_inclusion_answer(0, 1, 0, "ok");
        check_inclusion_answer(0, 1, 1, "WrongProofLength { expected: 0, actual: 1 }");
        check_inclusion_answer(1, 1, 0, "IndexOutOfRange { index: 1, size: 1 }");
        check_inclusion_answer(u64::MAX, u64::MAX, 0, "IndexOutOfRange");
        check_inclusion_answer(7, 8, 2, "WrongProofLength { expected: 3, actual: 2 }");
        check_inclusion_answer(7, 8, 3, "RootMismatch");
        check_inclusion_answer(u64::MAX - 1, u64::MAX, 63, "RootMismatch");
        check_inclusion_answer(u64::MAX - 1, u64::MAX, 64, "WrongProofLength { expected: 63, actual: 64 }");
    }

    #[test]
    fn generation_rejects_what_verification_rejects() {
        let store = reference_store();
        assert!(matches!(inclusion_proof(8, 8, &store), Err(ProofError::IndexOutOfRange { .. })));
        assert!(matches!(inclusion_proof(0, 0, &store), Err(ProofError::IndexOutOfRange { .. })));
        assert!(matches!(consistency_proof(0, 3, &store), Err(ProofError::ConsistencyFromEmptyTree)));
        assert!(matches!(consistency_proof(4, 3, &store), Err(ProofError::OldSizeExceedsNewSize { .. })));
        assert!(matches!(
            inclusion_proof(3, 9, &store),
            Err(ProofError::Read(HashReadError::Missing(NodeAddress { level: 0, index: 8 })))
        ));
    }

    #[test]
    fn proof_lengths_are_bounded() {
        assert_eq!(inclusion_proof_length(0, u64::MAX).unwrap(), PROOF_HASHES_MAX);
        assert!(consistency_proof_length(1, u64::MAX).unwrap() <= PROOF_HASHES_MAX);
        assert!(consistency_proof_length(u64::MAX - 1, u64::MAX).unwrap() <= PROOF_HASHES_MAX);
    }

    #[test]
    fn plans_read_complete_subtrees_only() {
        let plan = ProofPlan::inclusion(0, 7).unwrap();
        assert_eq!(
            plan.nodes(),
            vec![NodeAddress::new(0, 1), NodeAddress::new(1, 1), NodeAddress::new(1, 2), NodeAddress::new(0, 6)]
        );
        assert_eq!(plan.len(), 3);
        assert!(ProofPlan::tree_hash(0).is_empty());
        assert_eq!(ProofPlan::tree_hash(1100).nodes().len(), 1100u64.count_ones() as usize);
    }

    fn flip_bit(hash: &Hash, bit: usize) -> Hash {
        let mut flipped = *hash;
        flipped.0[bit / 8] ^= 1 << (bit % 8);
        flipped
    }

    proptest! {
        #[test]
        fn every_inclusion_proof_verifies_and_any_flipped_bit_fails(
            (size, index) in (1..=LARGE_TREE_SIZE).prop_flat_map(|size| (Just(size), 0..size)),
            bit in 0usize..256,
            target in 0usize..66,
        ) {
            let store = large_store();
            let root = tree_hash(size, store).unwrap();
            let leaf = store.leaf_hash(index).unwrap();
            let proof = inclusion_proof(index, size, store).unwrap();
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());
            // Flip one bit of the leaf, the root, or one proof hash.
            let (mut leaf_flipped, mut root_flipped, mut proof_flipped) = (leaf, root, proof.clone());
            match target {
                0 => leaf_flipped = flip_bit(&leaf, bit),
                1 => root_flipped = flip_bit(&root, bit),
                _ if proof.is_empty() => leaf_flipped = flip_bit(&leaf, bit),
                position => {
                    let position = (position - 2) % proof.len();
                    proof_flipped[position] = flip_bit(&proof[position], bit);
                }
            }
            prop_assert!(verify_inclusion(&leaf_flipped, index, size, &proof_flipped, &root_flipped).is_err());
            if size > 1 {
                let other_index = (index + 1) % size;
                prop_assert!(verify_inclusion(&leaf, other_index, size, &proof, &root).is_err());
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_any_flipped_bit_fails(
            (old_size, new_size) in (1..=LARGE_TREE_SIZE).prop_flat_map(|new_size| (1..=new_size, Just(new_size))),
            bit in 0usize..256,
            target in 0usize..66,
        ) {
            let store = large_store();
            let old_root = tree_hash(old_size, store).unwrap();
            let new_root = tree_hash(new_size, store).unwrap();
            let proof = consistency_proof(old_size, new_size, store).unwrap();
            prop_assert_eq!(proof.len(), consistency_proof_length(old_size, new_size).unwrap());
            prop_assert!(verify_consistency(old_size, new_size, &old_root, &new_root, &proof).is_ok());
            let (mut old_flipped, mut new_flipped, mut proof_flipped) = (old_root, new_root, proof.clone());
            match target {
                0 => old_flipped = flip_bit(&old_root, bit),
                1 => new_flipped = flip_bit(&new_root, bit),
                _ if proof.is_empty() => old_flipped = flip_bit(&old_root, bit),
                position => {
                    let position = (position - 2) % proof.len();
                    proof_flipped[position] = flip_bit(&proof[position], bit);
                }
            }
            prop_assert!(verify_consistency(old_size, new_size, &old_flipped, &new_flipped, &proof_flipped).is_err());
        }

        #[test]
        fn stored_roots_match_recomputed_roots(size in 0..=LARGE_TREE_SIZE) {
            let store = large_store();
            let leaves: Vec<Hash> = (0..size).map(|index| store.leaf_hash(index).unwrap()).collect();
            prop_assert_eq!(tree_hash(size, store).unwrap(), root_from_leaf_hashes(&leaves));
        }
    }
}
