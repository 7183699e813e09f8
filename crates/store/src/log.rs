//! The transparency log's storage: entries, C2SP hash tiles, the tree state, signed checkpoints
//! and witness cosignatures (platform tables; the log is one for the whole platform).
//!
//! Sequencing happens in the writer's transaction: each capture reserves log indexes for its new
//! events and inserts their entries ([`LogBatch::append`]); once per batch the new leaf hashes are
//! folded into the tiles and the tree state ([`LogBatch::flush`]). A batch therefore costs one
//! tile rewrite per level, whatever its number of events, and commits with the events it logs:
//! when a capture is answered its events have log indexes and are durable.
//!
//! Invariants: `log_state.size` is the number of rows of `log_entries` (indexes 0..size); the
//! tiles hold exactly the tree of that size; `log_state.root_hash` is its RFC 6962 root. Only the
//! writer changes them, under the `log_state` row lock on PostgreSQL.

use tlog::tiles::{TILE_LEVEL_MAX, TileContent, tiles_for_append};
use tlog::{Hash, HashReadError, MemoryTileStore, Tile, TileHashReader, leaf_hash};

use crate::backend::{Conn, on_conn, on_pool};
use crate::writer::{Arg, execute};
use crate::{Store, StoreError};

/// Rows per multi-row INSERT of entries (4 values each).
const ENTRY_ROWS_PER_STATEMENT: usize = 500;
/// The most entries [`Store::log_entries`] reads at once (one entry bundle).
pub const ENTRIES_READ_MAX: u64 = 256;

/// The log's part of one writer transaction.
#[derive(Debug, Default)]
pub(crate) struct LogBatch {
    /// The tree size when this transaction took the log.
    start_size: Option<u64>,
    leaf_hashes: Vec<Hash>,
}

impl LogBatch {
    /// Takes the log for this transaction (a row lock on PostgreSQL; SQLite has one writer).
    pub(crate) async fn lock(&mut self, conn: &mut Conn) -> Result<(), sqlx::Error> {
        if self.start_size.is_some() {
            return Ok(());
        }
        let (size,): (i64,) = match conn {
            Conn::Sqlite(connection) => {
                sqlx::query_as("SELECT size FROM log_state WHERE singleton = 1").fetch_one(&mut **connection).await?
            }
            Conn::Postgres(connection) => {
                sqlx::query_as("SELECT size FROM log_state WHERE singleton = 1 FOR UPDATE")
                    .fetch_one(&mut **connection)
                    .await?
            }
        };
        self.start_size = Some(size as u64);
        Ok(())
    }

    /// The index the next appended entry gets.
    pub(crate) fn next_index(&self) -> i64 {
        let start = self.start_size.expect("the log is locked before appending");
        (start + self.leaf_hashes.len() as u64) as i64
    }

    /// Appends entries (each with the `event_seq` of its event, of `tenant`) at the next indexes.
    pub(crate) async fn append(
        &mut self,
        conn: &mut Conn,
        tenant: &str,
        entries: &[(&[u8], i64)],
    ) -> Result<(), sqlx::Error> {
        let first_index = self.next_index();
        for (chunk_index, chunk) in entries.chunks(ENTRY_ROWS_PER_STATEMENT).enumerate() {
            let mut sql = String::from("INSERT INTO log_entries (entry_index, entry, tenant_id, event_seq) VALUES ");
            let mut args = Vec::with_capacity(chunk.len() * 4);
            for (row, (entry, event_seq)) in chunk.iter().enumerate() {
                if row > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&crate::epcis::placeholders(conn, row * 4 + 1, 4));
                let index = first_index + (chunk_index * ENTRY_ROWS_PER_STATEMENT + row) as i64;
                args.extend([Arg::Integer(index), Arg::Bytes(entry), Arg::Text(tenant), Arg::Integer(*event_seq)]);
            }
            execute(conn, &sql, &args).await?;
        }
        self.leaf_hashes.extend(entries.iter().map(|(entry, _)| leaf_hash(entry)));
        Ok(())
    }

    /// Folds this transaction's entries into the tiles and the tree state; answers the new size
    /// and root, or `None` when nothing was appended.
    pub(crate) async fn flush(&mut self, conn: &mut Conn) -> Result<Option<(u64, Hash)>, sqlx::Error> {
        let Some(old_size) = self.start_size else { return Ok(None) };
        if self.leaf_hashes.is_empty() {
            return Ok(None);
        }
        let partials: Vec<Tile> = (0..=TILE_LEVEL_MAX).filter_map(|level| Tile::partial_at(level, old_size)).collect();
        // The old rightmost tiles, then the written ones, in memory (the tile reader of `tlog` is
        // synchronous): every tile the new root needs is one of them, at its width in the new tree.
        let mut tiles = MemoryTileStore::new();
        for tile in &partials {
            let row: Option<(Vec<u8>,)> = on_conn!(conn, connection => {
                sqlx::query_as("SELECT hashes FROM log_tiles WHERE level = $1 AND tile_index = $2")
                    .bind(i64::from(tile.level()))
                    .bind(tile.index() as i64)
                    .fetch_optional(&mut *connection)
                    .await
            })?;
            if let Some((mut hashes,)) = row {
                hashes.truncate(tile.size_bytes());
                tiles.write([TileContent { tile: *tile, data: hashes }]);
            }
        }
        let written = tiles_for_append(old_size, &self.leaf_hashes, &tiles).map_err(inconsistent)?;
        for TileContent { tile, data } in &written {
            execute(
                conn,
                "INSERT INTO log_tiles (level, tile_index, width, hashes) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (level, tile_index) DO UPDATE SET width = excluded.width, hashes = excluded.hashes",
                &[
                    Arg::Integer(i64::from(tile.level())),
                    Arg::Integer(tile.index() as i64),
                    Arg::Integer(i64::from(tile.width())),
                    Arg::Bytes(data),
                ],
            )
            .await?;
        }
        tiles.write(written);
        let new_size = old_size + self.leaf_hashes.len() as u64;
        let root = tlog::tree_hash(new_size, &TileHashReader::new(&tiles, new_size)).map_err(inconsistent)?;
        execute(
            conn,
            "UPDATE log_state SET size = $1, root_hash = $2 WHERE singleton = 1",
            &[Arg::Integer(new_size as i64), Arg::Bytes(root.as_bytes())],
        )
        .await?;
        self.start_size = Some(new_size);
        self.leaf_hashes.clear();
        Ok(Some((new_size, root)))
    }
}

fn inconsistent(error: HashReadError) -> sqlx::Error {
    sqlx::Error::Protocol(format!("the stored transparency log tiles are inconsistent: {error}"))
}

/// The log's size and root hash as last committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    pub size: u64,
    pub root_hash: Hash,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    /// The signed note, text and signature lines.
    pub note: String,
    pub created_unix_ms: i64,
}

/// The event of a log entry as stored now (for audits; never served publicly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub entry_index: u64,
    pub tenant_id: String,
    pub event_seq: i64,
    /// The event as stored now; `None` when its row is gone (which an audit must report).
    pub event_id: Option<String>,
    /// The stored JSON-LD text.
    pub body: Option<String>,
    pub commitment_seed: Option<Vec<u8>>,
}

/// `first..first + count` (count capped at [`ENTRIES_READ_MAX`]) as database integers; `None` when
/// it starts beyond them (no such entries).
fn index_range(first: u64, count: u64) -> Option<(i64, i64)> {
    let first = i64::try_from(first).ok()?;
    Some((first, first.saturating_add(count.min(ENTRIES_READ_MAX) as i64)))
}

impl Store {
    /// The log's committed size and root.
    pub async fn log_state(&self) -> Result<LogState, StoreError> {
        let (size, root): (i64, Vec<u8>) = on_pool!(self.pools(), pool => {
            sqlx::query_as("SELECT size, root_hash FROM log_state WHERE singleton = 1").fetch_one(pool).await
        })?;
        let root_hash = Hash::from_slice(&root).map_err(|_| StoreError::Corrupt("log_state.root_hash".into()))?;
        Ok(LogState { size: size as u64, root_hash })
    }

    /// Stored tiles, each cut to the width asked; `None` where the tile is not stored (or
    /// narrower than asked: not yet in the log).
    pub async fn log_tiles(&self, tiles: &[Tile]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut found = Vec::with_capacity(tiles.len());
        for tile in tiles {
            let row: Option<(Vec<u8>,)> = on_pool!(self.pools(), pool => {
                sqlx::query_as("SELECT hashes FROM log_tiles WHERE level = $1 AND tile_index = $2")
                    .bind(i64::from(tile.level()))
                    .bind(tile.index() as i64)
                    .fetch_optional(pool)
                    .await
            })?;
            found.push(
                row.and_then(|(data,)| (data.len() >= tile.size_bytes()).then(|| data[..tile.size_bytes()].to_vec())),
            );
        }
        Ok(found)
    }

    /// Entries `first..first + count` (at most [`ENTRIES_READ_MAX`]) in index order; fewer when
    /// the log is shorter.
    pub async fn log_entries(&self, first: u64, count: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some((first, end)) = index_range(first, count) else { return Ok(Vec::new()) };
        let rows: Vec<(Vec<u8>,)> = on_pool!(self.pools(), pool => {
            sqlx::query_as(
                "SELECT entry FROM log_entries WHERE entry_index >= $1 AND entry_index < $2 ORDER BY entry_index",
            )
            .bind(first)
            .bind(end)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|(entry,)| entry).collect())
    }

    /// The events of entries `first..first + count` (at most [`ENTRIES_READ_MAX`]).
    pub async fn logged_events(&self, first: u64, count: u64) -> Result<Vec<LoggedEvent>, StoreError> {
        let Some((first, end)) = index_range(first, count) else { return Ok(Vec::new()) };
        type Row = (i64, String, i64, Option<String>, Option<String>, Option<Vec<u8>>);
        let rows: Vec<Row> = on_pool!(self.pools(), pool => {
            sqlx::query_as(
                "SELECT l.entry_index, l.tenant_id, l.event_seq, e.event_id, e.body, e.commitment_seed FROM log_entries l \
                 LEFT JOIN epcis_events e ON e.tenant_id = l.tenant_id AND e.event_seq = l.event_seq \
                 WHERE l.entry_index >= $1 AND l.entry_index < $2 ORDER BY l.entry_index",
            )
            .bind(first)
            .bind(end)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(entry_index, tenant_id, event_seq, event_id, body, commitment_seed)| LoggedEvent {
                entry_index: entry_index as u64,
                tenant_id,
                event_seq,
                event_id,
                body,
                commitment_seed,
            })
            .collect())
    }

    /// The newest signed checkpoint, if any.
    pub async fn log_latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<(i64, String, i64)> = on_pool!(self.pools(), pool => {
            sqlx::query_as("SELECT size, note, created_unix_ms FROM log_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(size, note, created_unix_ms)| StoredCheckpoint { size: size as u64, note, created_unix_ms }))
    }

    /// The signed checkpoint of one tree size, if one was made.
    pub async fn log_checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<(i64, String, i64)> = on_pool!(self.pools(), pool => {
            sqlx::query_as("SELECT size, note, created_unix_ms FROM log_checkpoints WHERE size = $1")
                .bind(size as i64)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(size, note, created_unix_ms)| StoredCheckpoint { size: size as u64, note, created_unix_ms }))
    }

    /// The witness cosignature lines of the checkpoint of `size`.
    pub async fn log_cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pools(), pool => {
            sqlx::query_as("SELECT signature_line FROM log_cosignatures WHERE size = $1 ORDER BY witness")
                .bind(size as i64)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|(line,)| line).collect())
    }
}

/// Stores a signed checkpoint (a tree size is checkpointed once; a second one is ignored).
pub(crate) async fn put_checkpoint(
    conn: &mut Conn,
    size: u64,
    note: &str,
    now_unix_ms: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = execute(
        conn,
        "INSERT INTO log_checkpoints (size, note, created_unix_ms) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
        &[Arg::Integer(size as i64), Arg::Text(note), Arg::Integer(now_unix_ms)],
    )
    .await?;
    Ok(inserted > 0)
}

/// Stores a witness's cosignature line of the checkpoint of `size` (replacing its earlier one).
pub(crate) async fn put_cosignature(
    conn: &mut Conn,
    size: u64,
    witness: &str,
    signature_line: &str,
    now_unix_ms: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = execute(
        conn,
        "INSERT INTO log_cosignatures (size, witness, signature_line, created_unix_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (size, witness) DO UPDATE SET signature_line = excluded.signature_line",
        &[Arg::Integer(size as i64), Arg::Text(witness), Arg::Text(signature_line), Arg::Integer(now_unix_ms)],
    )
    .await?;
    Ok(inserted > 0)
}
