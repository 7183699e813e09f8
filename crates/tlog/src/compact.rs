//! A compact range: the roots of the perfect subtrees that cover leaves `0..size` (one per set
//! bit of `size`, largest first). Enough to append leaves and compute every later root without
//! the earlier leaves: what a monitor keeps between runs to re-hash only the new entries.

use crate::hash::{Hash, node_hash};

/// The compact range of a tree of `size` leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// (height, hash), heights strictly decreasing.
    subtrees: Vec<(u32, Hash)>,
}

/// A compact range whose hashes do not match its size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a compact range of size {size} has {expected} subtree hashes, not {actual}")]
pub struct CompactRangeError {
    pub size: u64,
    pub expected: usize,
    pub actual: usize,
}

impl CompactRange {
    /// The range of the empty tree.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// Rebuilds a range from its size and its subtree hashes, largest subtree first.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<CompactRange, CompactRangeError> {
        let heights: Vec<u32> = (0..64).rev().filter(|height| size & (1u64 << height) != 0).collect();
        if heights.len() != hashes.len() {
            return Err(CompactRangeError { size, expected: heights.len(), actual: hashes.len() });
        }
        Ok(CompactRange { size, subtrees: heights.into_iter().zip(hashes).collect() })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree hashes, largest subtree first.
    pub fn hashes(&self) -> Vec<Hash> {
        self.subtrees.iter().map(|(_, hash)| *hash).collect()
    }

    /// Appends one leaf hash.
    pub fn append(&mut self, leaf_hash: Hash) {
        let mut carry = (0u32, leaf_hash);
        while let Some(&(height, hash)) = self.subtrees.last() {
            if height != carry.0 {
                break;
            }
            self.subtrees.pop();
            carry = (height + 1, node_hash(&hash, &carry.1));
        }
        self.subtrees.push(carry);
        self.size += 1;
    }

    /// The RFC 6962 root of the tree of `size` leaves.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some((_, last)) = subtrees.next() else { return Hash::empty_tree() };
        subtrees.fold(*last, |right, (_, left)| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::root_from_leaf_hashes;

    #[test]
    fn roots_match_the_tree_at_every_size_and_survive_a_round_trip() {
        let leaves: Vec<Hash> = (0u32..300).map(|index| leaf_hash(&index.to_be_bytes())).collect();
        let mut range = CompactRange::new();
        assert_eq!(range.root(), Hash::empty_tree());
        for (index, leaf) in leaves.iter().enumerate() {
            range.append(*leaf);
            assert_eq!(range.root(), root_from_leaf_hashes(&leaves[..=index]), "size {}", index + 1);
            let rebuilt = CompactRange::from_parts(range.size(), range.hashes()).unwrap();
            assert_eq!(rebuilt, range);
        }
        assert_eq!(range.hashes().len(), 300u64.count_ones() as usize);
        assert!(CompactRange::from_parts(300, vec![leaves[0]]).is_err());
    }
}
