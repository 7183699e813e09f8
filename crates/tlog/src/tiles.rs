//! C2SP tlog-tiles: tile coordinates, paths, entry bundles, and proofs read from tiles.
//!
//! A tile at level `L` and index `N` holds up to 256 consecutive hashes of complete subtrees of
//! `256^L` leaves each; level 0 tiles hold leaf hashes. A node of the Merkle tree at tree level `k`
//! lives in the tile at level `k / 8`, as the root of `2^(k % 8)` consecutive tile hashes.

use std::collections::BTreeSet;
use std::fmt;

use crate::hash::{HASH_SIZE_BYTES, Hash};
use crate::merkle::{HashReadError, HashReader, NodeAddress, root_from_leaf_hashes};

/// Tree levels covered by one tile: a tile is a subtree of height 8.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile (and entries in a full entry bundle).
pub const TILE_WIDTH_MAX: u16 = 256;
/// Bytes in a full tile: 256 hashes of 32 bytes.
pub const TILE_SIZE_MAX_BYTES: usize = TILE_WIDTH_MAX as usize * HASH_SIZE_BYTES;
/// Highest tile level a path may name (the spec's limit).
pub const TILE_LEVEL_MAX: u8 = 63;
/// Largest entry an entry bundle can hold: its length prefix is a big-endian uint16.
pub const ENTRY_SIZE_MAX_BYTES: usize = u16::MAX as usize;

/// The coordinates of a tile: level, index within the level, and width (256 for a full tile,
/// 1 to 255 for a partial tile). Entry bundles use level 0 coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    level: u8,
    index: u64,
    width: u16,
}

/// Tile coordinates or a tile path that the spec does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("tile level {level} exceeds {TILE_LEVEL_MAX}")]
    LevelTooHigh { level: u64 },
    #[error("tile width {width} is not between 1 and {TILE_WIDTH_MAX}")]
    WidthOutOfRange { width: u64 },
    #[error("tile path {path:?} is malformed: {reason}")]
    MalformedPath { path: String, reason: &'static str },
    #[error("tile data is {actual_bytes} bytes, a tile of width {width} is {expected_bytes} bytes")]
    WrongDataLength { width: u16, expected_bytes: usize, actual_bytes: usize },
}

impl Tile {
    pub fn new(level: u8, index: u64, width: u16) -> Result<Tile, TileError> {
        if level > TILE_LEVEL_MAX {
            return Err(TileError::LevelTooHigh { level: level.into() });
        }
        if width == 0 || width > TILE_WIDTH_MAX {
            return Err(TileError::WidthOutOfRange { width: width.into() });
        }
        Ok(Tile { level, index, width })
    }

    /// A full tile (256 hashes wide).
    pub fn full(level: u8, index: u64) -> Result<Tile, TileError> {
        Tile::new(level, index, TILE_WIDTH_MAX)
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of hashes in the tile (entries, for an entry bundle).
    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH_MAX
    }

    /// Size of the tile's data.
    pub fn size_bytes(&self) -> usize {
        usize::from(self.width) * HASH_SIZE_BYTES
    }

    /// The tile at `level` containing hash number `position` of that level, as wide as it is in the
    /// tree of `tree_size` leaves; `None` when that hash is not in the tree (its subtree is incomplete).
    pub fn containing(level: u8, position: u64, tree_size: u64) -> Option<Tile> {
        let level_hash_count = level_hash_count(level, tree_size);
        if position >= level_hash_count {
            return None;
        }
        let index = position / u64::from(TILE_WIDTH_MAX);
        let first_position = index * u64::from(TILE_WIDTH_MAX);
        let width = (level_hash_count - first_position).min(u64::from(TILE_WIDTH_MAX)) as u16;
        Some(Tile { level, index, width })
    }

    /// The rightmost tile of `level` in the tree of `tree_size` leaves if it is partial.
    pub fn partial_at(level: u8, tree_size: u64) -> Option<Tile> {
        let level_hash_count = level_hash_count(level, tree_size);
        let width = (level_hash_count % u64::from(TILE_WIDTH_MAX)) as u16;
        (width > 0).then(|| Tile { level, index: level_hash_count / u64::from(TILE_WIDTH_MAX), width })
    }

    /// Whether a tree of `tree_size` leaves has every hash of this tile (a full tile only once it is
    /// full; a partial tile also at every later size, as it is the prefix of a wider tile).
    pub fn is_within(&self, tree_size: u64) -> bool {
        let first_position = u128::from(self.index) * u128::from(TILE_WIDTH_MAX);
        first_position + u128::from(self.width) <= u128::from(level_hash_count(self.level, tree_size))
    }

    /// `tile/<L>/<N>[.p/<W>]`, relative to the log prefix.
    pub fn path(&self) -> String {
        format!("tile/{}/{}", self.level, self.index_and_width_path())
    }

    /// `tile/entries/<N>[.p/<W>]`, the entry bundle with this tile's level 0 coordinates.
    pub fn entries_path(&self) -> String {
        format!("tile/entries/{}", self.index_and_width_path())
    }

    fn index_and_width_path(&self) -> String {
        let mut path = encode_tile_index(self.index);
        if !self.is_full() {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// Splits tile data into its hashes; the data must be exactly `width * 32` bytes.
    pub fn hashes(&self, data: &[u8]) -> Result<Vec<Hash>, TileError> {
        if data.len() != self.size_bytes() {
            return Err(TileError::WrongDataLength {
                width: self.width,
                expected_bytes: self.size_bytes(),
                actual_bytes: data.len(),
            });
        }
        Ok(data
            .chunks_exact(HASH_SIZE_BYTES)
            .map(|chunk| Hash::from_slice(chunk).expect("chunks are hash-sized"))
            .collect())
    }
}

/// Number of complete `256^level`-leaf subtrees in a tree of `tree_size` leaves.
fn level_hash_count(level: u8, tree_size: u64) -> u64 {
    tree_size.checked_shr(u32::from(level) * TILE_HEIGHT).unwrap_or(0)
}

/// A resource of the tlog-tiles API, as named by its path below the log prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileResource {
    /// `tile/<L>/<N>[.p/<W>]`
    Hashes(Tile),
    /// `tile/entries/<N>[.p/<W>]` (the tile has level 0)
    Entries(Tile),
}

impl TileResource {
    /// Parses a path such as `tile/1/x001/x234/067.p/8` or `tile/entries/000`. Only the canonical
    /// encoding is accepted: no leading zeros in levels or widths, no all-zero leading index groups,
    /// no `.p/256`.
    pub fn parse(path: &str) -> Result<TileResource, TileError> {
        let malformed = |reason| TileError::MalformedPath { path: path.to_owned(), reason };
        let rest = path.strip_prefix("tile/").ok_or_else(|| malformed("does not start with tile/"))?;
        let (kind, rest) = rest.split_once('/').ok_or_else(|| malformed("no tile index"))?;
        let (index_path, width) = match rest.split_once(".p/") {
            Some((index_path, width_text)) => {
                let width = parse_canonical_decimal(width_text).ok_or_else(|| malformed("width is not a decimal"))?;
                if width == 0 || width >= u64::from(TILE_WIDTH_MAX) {
                    return Err(TileError::WidthOutOfRange { width });
                }
                (index_path, width as u16)
            }
            None => (rest, TILE_WIDTH_MAX),
        };
        let index = decode_tile_index(index_path).ok_or_else(|| malformed("index is not x-prefixed 3-digit groups"))?;
        if kind == "entries" {
            return Ok(TileResource::Entries(Tile { level: 0, index, width }));
        }
        let level = parse_canonical_decimal(kind).ok_or_else(|| malformed("level is not a decimal"))?;
        if level > u64::from(TILE_LEVEL_MAX) {
            return Err(TileError::LevelTooHigh { level });
        }
        Ok(TileResource::Hashes(Tile { level: level as u8, index, width }))
    }

    pub fn tile(&self) -> Tile {
        match self {
            TileResource::Hashes(tile) | TileResource::Entries(tile) => *tile,
        }
    }
}

impl fmt::Display for TileResource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TileResource::Hashes(tile) => formatter.write_str(&tile.path()),
            TileResource::Entries(tile) => formatter.write_str(&tile.entries_path()),
        }
    }
}

/// ASCII decimal without leading zeros (`0` itself is allowed), fitting in a u64.
fn parse_canonical_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// Encodes a tile index as zero-padded 3-digit groups, all but the last prefixed with `x`:
/// 1234067 is `x001/x234/067`, 5 is `005`.
pub fn encode_tile_index(index: u64) -> String {
    let mut groups = Vec::new();
    let mut remaining = index;
    loop {
        groups.push(remaining % 1000);
        remaining /= 1000;
        if remaining == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(position, group)| if position == last { format!("{group:03}") } else { format!("x{group:03}") })
        .collect::<Vec<_>>()
        .join("/")
}

/// Decodes [`encode_tile_index`]'s form; anything else, including a leading `x000` group, is `None`.
pub fn decode_tile_index(path: &str) -> Option<u64> {
    let groups: Vec<&str> = path.split('/').collect();
    let (last, leading) = groups.split_last()?;
    let mut index: u64 = 0;
    for group in leading {
        let digits = group.strip_prefix('x')?;
        index = index.checked_mul(1000)?.checked_add(three_digits(digits)?)?;
    }
    index = index.checked_mul(1000)?.checked_add(three_digits(last)?)?;
    (encode_tile_index(index) == path).then_some(index)
}

fn three_digits(text: &str) -> Option<u64> {
    (text.len() == 3 && text.bytes().all(|byte| byte.is_ascii_digit())).then(|| text.parse().ok())?
}

/// Where a node's hash is stored: its tile and the tile hashes it is the subtree root of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeInTile {
    tile: Tile,
    offset: usize,
    count: usize,
}

fn locate_node(node: NodeAddress, tree_size: u64) -> Option<NodeInTile> {
    let tile_level = (u32::from(node.level) / TILE_HEIGHT) as u8;
    let height_in_tile = u32::from(node.level) % TILE_HEIGHT;
    let first_position = node.index.checked_shl(height_in_tile)?;
    if first_position >> height_in_tile != node.index {
        return None;
    }
    let count = 1usize << height_in_tile;
    let last_position = first_position.checked_add(count as u64 - 1)?;
    let tile = Tile::containing(tile_level, last_position, tree_size)?;
    Some(NodeInTile { tile, offset: (first_position % u64::from(TILE_WIDTH_MAX)) as usize, count })
}

/// The tiles holding the given nodes in the tree of `tree_size` leaves, sorted and without
/// repetition: what a client fetches (in parallel) to compute a proof or tree hash.
/// A node that is not a complete subtree of that tree is [`HashReadError::Missing`].
pub fn tiles_for_nodes(nodes: &[NodeAddress], tree_size: u64) -> Result<Vec<Tile>, HashReadError> {
    let mut tiles = BTreeSet::new();
    for node in nodes {
        let located = locate_node(*node, tree_size).ok_or(HashReadError::Missing(*node))?;
        tiles.insert(located.tile);
    }
    Ok(tiles.into_iter().collect())
}

/// Reads stored tiles (full or partial) as raw bytes, in the order asked.
///
/// Tile hashes never change once written, so a request for a partial tile of width `W` may be
/// answered with the first `W` hashes of any wider stored version of that tile (a log may delete
/// partial tiles once the full tile exists). Answers of the wrong length are rejected by the callers.
pub trait TileReader {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, HashReadError>;
}

/// A [`HashReader`] over tiles, for the tree of a given size: every node hash is one tile read
/// plus at most 255 hash computations inside the tile.
#[derive(Debug)]
pub struct TileHashReader<'reader, R: TileReader> {
    reader: &'reader R,
    tree_size: u64,
}

impl<'reader, R: TileReader> TileHashReader<'reader, R> {
    pub fn new(reader: &'reader R, tree_size: u64) -> Self {
        TileHashReader { reader, tree_size }
    }
}

impl<R: TileReader> HashReader for TileHashReader<'_, R> {
    fn read_hashes(&self, nodes: &[NodeAddress]) -> Result<Vec<Hash>, HashReadError> {
        let located: Vec<NodeInTile> = nodes
            .iter()
            .map(|node| locate_node(*node, self.tree_size).ok_or(HashReadError::Missing(*node)))
            .collect::<Result<_, _>>()?;
        let tiles = tiles_for_nodes(nodes, self.tree_size)?;
        let datas = self.reader.read_tiles(&tiles)?;
        if datas.len() != tiles.len() {
            return Err(HashReadError::WrongResultCount { expected: tiles.len(), actual: datas.len() });
        }
        let mut tile_hashes = Vec::with_capacity(tiles.len());
        for (tile, data) in tiles.iter().zip(&datas) {
            let hashes = tile.hashes(data).map_err(|_| HashReadError::WrongTileLength {
                expected_bytes: tile.size_bytes(),
                actual_bytes: data.len(),
            })?;
            tile_hashes.push(hashes);
        }
        Ok(located
            .iter()
            .map(|node| {
                let position = tiles.binary_search(&node.tile).expect("every located tile was read");
                root_from_leaf_hashes(&tile_hashes[position][node.offset..node.offset + node.count])
            })
            .collect())
    }
}

/// A tile and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileContent {
    pub tile: Tile,
    pub data: Vec<u8>,
}

/// The tiles to store after appending `new_leaf_hashes` to a tree of `old_size` leaves: every tile
/// that changed, each at its width in the new tree (full tiles, and the new rightmost partial tiles).
///
/// Reads only the old rightmost partial tiles (one per level, in one batch). Hashing is limited to
/// the newly completed tiles: one 256-hash subtree root per new full tile.
pub fn tiles_for_append(
    old_size: u64,
    new_leaf_hashes: &[Hash],
    reader: &impl TileReader,
) -> Result<Vec<TileContent>, HashReadError> {
    if new_leaf_hashes.is_empty() {
        return Ok(Vec::new());
    }
    let old_partials: Vec<Tile> = (0..=TILE_LEVEL_MAX).filter_map(|level| Tile::partial_at(level, old_size)).collect();
    let old_partial_datas = reader.read_tiles(&old_partials)?;
    if old_partial_datas.len() != old_partials.len() {
        return Err(HashReadError::WrongResultCount { expected: old_partials.len(), actual: old_partial_datas.len() });
    }
    let mut written = Vec::new();
    let mut level_hashes: Vec<Hash> = new_leaf_hashes.to_vec();
    let mut level: u8 = 0;
    while !level_hashes.is_empty() {
        let old_count = level_hash_count(level, old_size);
        let first_tile_index = old_count / u64::from(TILE_WIDTH_MAX);
        let mut combined: Vec<Hash> = match old_partials.iter().position(|tile| tile.level == level) {
            Some(position) => {
                let tile = old_partials[position];
                tile.hashes(&old_partial_datas[position]).map_err(|_| HashReadError::WrongTileLength {
                    expected_bytes: tile.size_bytes(),
                    actual_bytes: old_partial_datas[position].len(),
                })?
            }
            None => Vec::new(),
        };
        combined.extend_from_slice(&level_hashes);
        let mut next_level_hashes = Vec::new();
        for (offset, chunk) in combined.chunks(usize::from(TILE_WIDTH_MAX)).enumerate() {
            let tile = Tile { level, index: first_tile_index + offset as u64, width: chunk.len() as u16 };
            if tile.is_full() {
                next_level_hashes.push(root_from_leaf_hashes(chunk));
            }
            written.push(TileContent { tile, data: chunk.iter().flat_map(|hash| hash.0).collect() });
        }
        level_hashes = next_level_hashes;
        level += 1;
    }
    Ok(written)
}

/// An entry bundle that cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryBundleError {
    #[error("entry {position} is {size_bytes} bytes, the most an entry bundle holds is {ENTRY_SIZE_MAX_BYTES}")]
    EntryTooLarge { position: usize, size_bytes: usize },
    #[error("entry bundle has {count} entries, expected 1 to {TILE_WIDTH_MAX}")]
    WrongEntryCount { count: usize },
    #[error("entry bundle is truncated in entry {position}")]
    Truncated { position: usize },
}

/// Encodes entries as an entry bundle: each entry prefixed with its length as a big-endian uint16.
pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, EntryBundleError> {
    if entries.is_empty() || entries.len() > usize::from(TILE_WIDTH_MAX) {
        return Err(EntryBundleError::WrongEntryCount { count: entries.len() });
    }
    let mut bundle = Vec::with_capacity(entries.iter().map(|entry| entry.as_ref().len() + 2).sum());
    for (position, entry) in entries.iter().enumerate() {
        let entry = entry.as_ref();
        let length = u16::try_from(entry.len())
            .map_err(|_| EntryBundleError::EntryTooLarge { position, size_bytes: entry.len() })?;
        bundle.extend_from_slice(&length.to_be_bytes());
        bundle.extend_from_slice(entry);
    }
    Ok(bundle)
}

/// Decodes an entry bundle into its entries (1 to 256 of them). Trailing bytes that do not form a
/// whole entry are [`EntryBundleError::Truncated`].
pub fn decode_entry_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>, EntryBundleError> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let position = entries.len();
        if position == usize::from(TILE_WIDTH_MAX) {
            return Err(EntryBundleError::WrongEntryCount { count: position + 1 });
        }
        let Some((length_bytes, after_length)) = rest.split_first_chunk::<2>() else {
            return Err(EntryBundleError::Truncated { position });
        };
        let length = usize::from(u16::from_be_bytes(*length_bytes));
        if after_length.len() < length {
            return Err(EntryBundleError::Truncated { position });
        }
        let (entry, after_entry) = after_length.split_at(length);
        entries.push(entry);
        rest = after_entry;
    }
    if entries.is_empty() {
        return Err(EntryBundleError::WrongEntryCount { count: 0 });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::hash::leaf_hash;
    use crate::memory::{MemoryHashStore, MemoryTileStore};
    use crate::merkle::{ProofPlan, consistency_proof, inclusion_proof, tree_hash};

    fn check_index(index: u64, expected: &str) {
        assert_eq!(encode_tile_index(index), expected);
        assert_eq!(decode_tile_index(expected), Some(index), "{expected}");
    }

    #[test]
    fn tile_indexes_encode_as_x_prefixed_groups() {
        check_index(0, "000");
        check_index(5, "005");
        check_index(999, "999");
        check_index(1000, "x001/000");
        check_index(1234067, "x001/x234/067");
        check_index(u64::MAX, "x018/x446/x744/x073/x709/x551/615");
    }

    #[test]
    fn non_canonical_tile_indexes_are_rejected() {
        for path in [
            "",
            "5",
            "05",
            "0005",
            "x005",
            "x000/005",
            "001/002",
            "x1/002",
            "x001/02",
            "x001/",
            "/005",
            "x018/x446/x744/x073/x709/x551/616",
            "00a",
            "x001/x234/067/",
        ] {
            assert_eq!(decode_tile_index(path), None, "{path}");
        }
    }

    fn check_path(path: &str, expected: Result<TileResource, &str>) {
        let parsed = TileResource::parse(path);
        match expected {
            Ok(resource) => {
                assert_eq!(parsed, Ok(resource), "{path}");
                assert_eq!(resource.to_string(), path);
            }
            Err(fragment) => {
                let error = parsed.expect_err(path).to_string();
                assert!(error.contains(fragment), "{path}: {error}");
            }
        }
    }

    #[test]
    fn tile_paths_follow_the_spec() {
        let tile = |level, index, width| Tile::new(level, index, width).unwrap();
        check_path("tile/0/000", Ok(TileResource::Hashes(tile(0, 0, 256))));
        check_path("tile/1/x001/x234/067.p/8", Ok(TileResource::Hashes(tile(1, 1234067, 8))));
        check_path("tile/63/999.p/255", Ok(TileResource::Hashes(tile(63, 999, 255))));
        check_path("tile/entries/000.p/1", Ok(TileResource::Entries(tile(0, 0, 1))));
        check_path("tile/entries/x001/000", Ok(TileResource::Entries(tile(0, 1000, 256))));
        check_path("tile/64/000", Err("level 64"));
        check_path("tile/01/000", Err("level is not a decimal"));
        check_path("tile//000", Err("level is not a decimal"));
        check_path("tile/0/000.p/0", Err("width 0"));
        check_path("tile/0/000.p/256", Err("width 256"));
        check_path("tile/0/000.p/08", Err("width is not a decimal"));
        check_path("tile/0/000.p/", Err("width is not a decimal"));
        check_path("tile/0/000.p/1/2", Err("width is not a decimal"));
        check_path("tile/0/x000/005", Err("index"));
        check_path("tile/0", Err("no tile index"));
        check_path("tiles/0/000", Err("does not start with tile/"));
        check_path("tile/entries/05", Err("index"));
    }

    #[test]
    fn tile_coordinates_reject_invalid_widths_and_levels() {
        assert_eq!(Tile::new(0, 0, 0), Err(TileError::WidthOutOfRange { width: 0 }));
        assert_eq!(Tile::new(0, 0, 257), Err(TileError::WidthOutOfRange { width: 257 }));
        assert_eq!(Tile::new(64, 0, 1), Err(TileError::LevelTooHigh { level: 64 }));
        let tile = Tile::new(0, 0, 2).unwrap();
        assert_eq!(
            tile.hashes(&[0; 63]),
            Err(TileError::WrongDataLength { width: 2, expected_bytes: 64, actual_bytes: 63 })
        );
        assert_eq!(tile.hashes(&[0; 64]).unwrap().len(), 2);
    }

    /// All tiles of a tree: (level, full tile count, partial width) per level, as the spec counts them.
    fn tile_census(size: u64) -> Vec<(u8, u64, Option<u16>)> {
        (0..=TILE_LEVEL_MAX)
            .map(|level| {
                (level, level_hash_count(level, size) / 256, Tile::partial_at(level, size).map(|tile| tile.width()))
            })
            .filter(|(_, full, partial)| *full > 0 || partial.is_some())
            .collect()
    }

    #[test]
    fn spec_examples_of_tile_counts() {
        assert_eq!(tile_census(70_000), vec![(0, 273, Some(112)), (1, 1, Some(17)), (2, 0, Some(1))]);
        assert_eq!(tile_census(256), vec![(0, 1, None), (1, 0, Some(1))]);
        assert_eq!(tile_census(0), vec![]);
        assert_eq!(tile_census(1), vec![(0, 0, Some(1))]);
    }

    #[test]
    fn tiles_know_whether_a_tree_holds_them() {
        let full = Tile::full(0, 1).unwrap();
        assert!(!full.is_within(511));
        assert!(full.is_within(512));
        let partial = Tile::new(1, 0, 2).unwrap();
        assert!(!partial.is_within(511));
        assert!(partial.is_within(512));
        assert!(partial.is_within(u64::MAX));
        assert!(!Tile::full(7, u64::MAX).unwrap().is_within(u64::MAX));
        assert_eq!(Tile::containing(0, 300, 300), None);
        assert_eq!(Tile::containing(0, 299, 300), Some(Tile::new(0, 1, 44).unwrap()));
        assert_eq!(Tile::containing(0, 3, 300), Some(Tile::full(0, 0).unwrap()));
    }

    #[test]
    fn proofs_name_the_tiles_to_fetch() {
        // The last leaf of a tree of 70_000 = 65_536 + 4_096 + 256 + 112 leaves: the first subtree
        // is the one hash of the partial level 2 tile, the next two are in the partial level 1
        // tile, and the rest are inside the partial level 0 tile.
        let nodes = ProofPlan::inclusion(69_999, 70_000).unwrap().nodes();
        let tiles: Vec<String> = tiles_for_nodes(&nodes, 70_000).unwrap().iter().map(Tile::path).collect();
        assert_eq!(tiles, vec!["tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"]);
        assert!(matches!(
            tiles_for_nodes(&[NodeAddress::new(8, 1)], 256),
            Err(HashReadError::Missing(NodeAddress { level: 8, index: 1 }))
        ));
    }

    fn check_entry_bundle_error(bundle: &[u8], expected: EntryBundleError) {
        assert_eq!(decode_entry_bundle(bundle), Err(expected), "{bundle:?}");
    }

    #[test]
    fn entry_bundles_are_length_prefixed() {
        let entries: Vec<&[u8]> = vec![b"", b"a", b"salmon"];
        let bundle = encode_entry_bundle(&entries).unwrap();
        assert_eq!(bundle, b"\x00\x00\x00\x01a\x00\x06salmon");
        assert_eq!(decode_entry_bundle(&bundle).unwrap(), entries);
        let largest = vec![7u8; ENTRY_SIZE_MAX_BYTES];
        assert_eq!(decode_entry_bundle(&encode_entry_bundle(&[&largest]).unwrap()).unwrap(), vec![largest.as_slice()]);
        let full: Vec<Vec<u8>> = (0..256u32).map(|index| index.to_be_bytes().to_vec()).collect();
        assert_eq!(decode_entry_bundle(&encode_entry_bundle(&full).unwrap()).unwrap().len(), 256);
    }

    #[test]
    fn malformed_entry_bundles_are_rejected() {
        let too_large = vec![0u8; ENTRY_SIZE_MAX_BYTES + 1];
        assert_eq!(
            encode_entry_bundle(&[b"ok".as_slice(), &too_large]),
            Err(EntryBundleError::EntryTooLarge { position: 1, size_bytes: 65_536 })
        );
        assert_eq!(encode_entry_bundle::<&[u8]>(&[]), Err(EntryBundleError::WrongEntryCount { count: 0 }));
        let too_many: Vec<&[u8]> = vec![b"x"; 257];
        assert_eq!(encode_entry_bundle(&too_many), Err(EntryBundleError::WrongEntryCount { count: 257 }));
        check_entry_bundle_error(b"", EntryBundleError::WrongEntryCount { count: 0 });
        check_entry_bundle_error(b"\x00", EntryBundleError::Truncated { position: 0 });
        check_entry_bundle_error(b"\x00\x02a", EntryBundleError::Truncated { position: 0 });
        check_entry_bundle_error(b"\x00\x01a\x00", EntryBundleError::Truncated { position: 1 });
        check_entry_bundle_error(&b"\x00\x00".repeat(257), EntryBundleError::WrongEntryCount { count: 257 });
    }

    fn store_of(size: u64) -> MemoryHashStore {
        let mut store = MemoryHashStore::new();
        for index in 0..size {
            store.append_entry(&index.to_le_bytes());
        }
        store
    }

    /// Appends `batches` of leaves to a tile store through `tiles_for_append`.
    fn tile_store_of(batches: &[u64]) -> (MemoryTileStore, u64) {
        let mut tiles = MemoryTileStore::new();
        let mut size = 0u64;
        for batch in batches {
            let leaves: Vec<Hash> = (size..size + batch).map(|index| leaf_hash(&index.to_le_bytes())).collect();
            let written = tiles_for_append(size, &leaves, &tiles).unwrap();
            tiles.write(written);
            size += batch;
        }
        (tiles, size)
    }

    #[test]
    fn appended_tiles_match_the_hash_store() {
        let (tiles, size) = tile_store_of(&[1, 255, 1, 300, 65_000, 1]);
        let store = store_of(size);
        let census = tile_census(size);
        let expected: Vec<Tile> = census
            .iter()
            .flat_map(|(level, full, partial)| {
                (0..*full)
                    .map(|index| Tile::full(*level, index).unwrap())
                    .chain(partial.map(|width| Tile::new(*level, *full, width).unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let datas = store.read_tiles(&expected).unwrap();
        for (tile, data) in expected.iter().zip(&datas) {
            assert_eq!(tiles.get(tile), Some(data.as_slice()), "{}", tile.path());
        }
        assert_eq!(tree_hash(size, &TileHashReader::new(&tiles, size)).unwrap(), store.root_hash());
    }

    #[test]
    fn appending_nothing_writes_nothing() {
        let (tiles, size) = tile_store_of(&[10]);
        assert_eq!(tiles_for_append(size, &[], &tiles).unwrap(), vec![]);
    }

    #[test]
    fn tile_readers_report_missing_and_short_tiles() {
        let empty = MemoryTileStore::new();
        let reader = TileHashReader::new(&empty, 10);
        assert!(matches!(tree_hash(10, &reader), Err(HashReadError::MissingTile(_))));
        let mut short = MemoryTileStore::new();
        short.write([TileContent { tile: Tile::new(0, 0, 10).unwrap(), data: vec![0; 31] }]);
        assert!(matches!(
            tree_hash(10, &TileHashReader::new(&short, 10)),
            Err(HashReadError::WrongTileLength { expected_bytes: 320, actual_bytes: 31 })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn proofs_from_tiles_equal_proofs_from_stored_hashes(
            batches in proptest::collection::vec(1u64..700, 1..6),
            seed in any::<u64>(),
        ) {
            let (tiles, size) = tile_store_of(&batches);
            let store = store_of(size);
            let reader = TileHashReader::new(&tiles, size);
            prop_assert_eq!(tree_hash(size, &reader).unwrap(), store.root_hash());
            let index = seed % size;
            prop_assert_eq!(inclusion_proof(index, size, &reader).unwrap(), inclusion_proof(index, size, &store).unwrap());
            let old_size = 1 + seed % size;
            prop_assert_eq!(
                consistency_proof(old_size, size, &reader).unwrap(),
                consistency_proof(old_size, size, &store).unwrap()
            );
        }

        #[test]
        fn tile_index_round_trips(index in any::<u64>()) {
            prop_assert_eq!(decode_tile_index(&encode_tile_index(index)), Some(index));
        }
    }
}
