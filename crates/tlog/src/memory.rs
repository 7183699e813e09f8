//! In-memory stores: the reference behaviour that database-backed stores must match, and test doubles.

use std::collections::HashMap;

use crate::hash::{Hash, leaf_hash, node_hash};
use crate::merkle::{HashReadError, HashReader, NodeAddress, tree_hash};
use crate::tiles::{TILE_HEIGHT, TILE_WIDTH_MAX, Tile, TileContent, TileReader};

/// Every complete-subtree hash of an append-only tree, level by level.
///
/// Appending a leaf stores its hash and the hash of every subtree it completes (amortised two
/// hashes per leaf), so proofs are reads. Implements [`HashReader`] directly and [`TileReader`] by
/// cutting tiles out of its levels.
#[derive(Debug, Clone, Default)]
pub struct MemoryHashStore {
    /// `levels[k][n]` is the hash of the complete subtree [`NodeAddress`] `(k, n)`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryHashStore {
    pub fn new() -> Self {
        MemoryHashStore::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Appends an entry (hashing it as a leaf) and returns its index.
    pub fn append_entry(&mut self, entry: &[u8]) -> u64 {
        self.append_leaf_hash(leaf_hash(entry))
    }

    /// Appends a leaf hash and returns its index.
    pub fn append_leaf_hash(&mut self, hash: Hash) -> u64 {
        let index = self.size();
        let mut level = 0;
        let mut carried = hash;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(carried);
            let count = self.levels[level].len();
            if count % 2 == 1 {
                break;
            }
            carried = node_hash(&self.levels[level][count - 2], &self.levels[level][count - 1]);
            level += 1;
        }
        index
    }

    /// The current root hash.
    pub fn root_hash(&self) -> Hash {
        tree_hash(self.size(), self).expect("a store holds every complete subtree of its own tree")
    }

    /// The leaf hash at `index`, if present.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(usize::try_from(index).ok()?).copied()
    }
}

impl HashReader for MemoryHashStore {
    fn read_hashes(&self, addresses: &[NodeAddress]) -> Result<Vec<Hash>, HashReadError> {
        addresses
            .iter()
            .map(|address| {
                self.levels
                    .get(usize::from(address.level))
                    .and_then(|level| level.get(usize::try_from(address.index).ok()?))
                    .copied()
                    .ok_or(HashReadError::Missing(*address))
            })
            .collect()
    }
}

impl TileReader for MemoryHashStore {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, HashReadError> {
        tiles
            .iter()
            .map(|tile| {
                let level = usize::from(tile.level()) * TILE_HEIGHT as usize;
                let hashes = usize::try_from(tile.index())
                    .ok()
                    .and_then(|index| index.checked_mul(usize::from(TILE_WIDTH_MAX)))
                    .and_then(|first| {
                        let level_hashes = self.levels.get(level)?;
                        level_hashes.get(first..first.checked_add(usize::from(tile.width()))?)
                    })
                    .ok_or(HashReadError::MissingTile(*tile))?;
                Ok(hashes.iter().flat_map(|hash| hash.0).collect())
            })
            .collect()
    }
}

/// Tiles by coordinates, as a tile-based log stores them (full tiles and partial tiles).
#[derive(Debug, Clone, Default)]
pub struct MemoryTileStore {
    tiles: HashMap<Tile, Vec<u8>>,
}

impl MemoryTileStore {
    pub fn new() -> Self {
        MemoryTileStore::default()
    }

    /// Stores tiles, replacing any stored with the same coordinates.
    pub fn write(&mut self, contents: impl IntoIterator<Item = TileContent>) {
        for content in contents {
            self.tiles.insert(content.tile, content.data);
        }
    }

    /// Number of stored tiles.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    /// The stored data of a tile.
    pub fn get(&self, tile: &Tile) -> Option<&[u8]> {
        self.tiles.get(tile).map(Vec::as_slice)
    }
}

impl TileReader for MemoryTileStore {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, HashReadError> {
        tiles.iter().map(|tile| self.tiles.get(tile).cloned().ok_or(HashReadError::MissingTile(*tile))).collect()
    }
}
