//! The two backends behind one interface. Queries are written once and run on either backend via
//! the `on_pool!` / `on_conn!` macros, which expand the same code for each connection type.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// Connection pools. SQLite has one writing connection (SQLite admits one writer at a time) and a
/// pool of read-only connections; PostgreSQL has one pool.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    /// `ahead`: one read connection of the writer's own, for the writes it applies ahead
    /// (`writer::Ahead`), so a read pool busy with requests does not turn that off.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        ahead: SqlitePool,
        /// One connection that copies the WAL back into the database file ([`copy_wal`]).
        copier: SqlitePool,
    },
    /// `news`: what other API nodes announce of stock that came in (`stock_news`).
    Postgres { pool: PgPool, news: std::sync::Arc<crate::stock_news::StockNews> },
}

/// A connection held by the writer for one batch.
pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// Runs `$body` with `$pool` bound to the read pool of whichever backend is in use.
macro_rules! on_pool {
    ($pools:expr, $pool:ident => $body:expr) => {
        match $pools {
            $crate::backend::Pools::Sqlite { read: $pool, .. } => $body,
            $crate::backend::Pools::Postgres { pool: $pool, .. } => $body,
        }
    };
}

/// Runs `$body` with `$connection` bound to the connection of whichever backend is in use.
macro_rules! on_conn {
    ($conn:expr, $connection:ident => $body:expr) => {
        match $conn {
            $crate::backend::Conn::Sqlite(pooled) => {
                let $connection = &mut **pooled;
                $body
            }
            $crate::backend::Conn::Postgres(pooled) => {
                let $connection = &mut **pooled;
                $body
            }
        }
    };
}

pub(crate) use {on_conn, on_pool};

/// Prepared statements a connection keeps: SQLite's write connection, and every PostgreSQL
/// connection (one pool serves reads and writes). The writer's multi-row statements come in a few
/// shapes per table, see `writer::padded_runs`.
pub const WRITER_STATEMENTS_CACHED: usize = 256;

/// SQLite checkpoints its WAL once it holds this many pages (4 KiB each: 256 MiB). `keten bench
/// orders` (docs/benchmarks.md): 65,536 pages gave 3–6 % more orders/s than 16,384 and half the
/// p99 (a checkpoint copies every page the WAL changed, in the commit that triggers it); 262,144
/// was slower. (Measured before [`copy_wal`] copied most of it beforehand.) Then the WAL starts
/// again from its beginning.
pub const SQLITE_WAL_CHECKPOINT_PAGES: u32 = 65_536;

/// The page cache of each SQLite read connection, in KiB.
pub const SQLITE_READER_CACHE_KIB: u32 = 64 * 1024;

/// The page cache of SQLite's write connection, in KiB: smaller than a reader's, because on a
/// database under 1 GiB a write transaction ends by visiting its whole cache. When a B-tree page
/// splits, SQLite sorts the new pages by moving one through page number 1 GiB / page size + 1 (the
/// locking page, never used for data) for a moment; that lifts the cache's largest page number
/// past the database's end, and the commit then drops the pages past the end by visiting every
/// entry of the cache's hash table. In `keten bench orders` at 64 MiB that visit took an eighth to
/// a sixth of SQLite's thread; at 8 MiB SQLite's thread spent 15 % less CPU an order, reading a
/// little more from the file system, and recalls and receipts (the writes that read most) took
/// about as long (docs/benchmarks.md, "2026-12-06, 05:10–06:10 UTC"). Once the database passes
/// 1 GiB, the locking page lies inside it and the visit stops; the smaller cache then costs only
/// those reads.
pub const SQLITE_WRITER_CACHE_KIB: u32 = 8 * 1024;
const _: () = assert!(SQLITE_WRITER_CACHE_KIB < SQLITE_READER_CACHE_KIB);

/// How often a task of its own copies SQLite's WAL back into the database file ([`copy_wal`]).
/// `keten bench orders` (docs/benchmarks.md, "2026-12-06, 10:05–12:20 UTC"): every 250 ms, the
/// p99 was 62–68 ms against 89–111 without it, at about as many orders a second; every 1 s it
/// was between the two.
pub const SQLITE_WAL_COPY_INTERVAL: Duration = Duration::from_millis(250);

/// After a checkpoint SQLite truncates the WAL file to this size, if it grew past it (while a
/// long read held back a checkpoint).
pub const SQLITE_WAL_BYTES_KEPT: u64 = 256 * 1024 * 1024;

/// How long a SQLite connection waits for another process's write lock before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Pools {
    /// Connects to `url`; on SQLite the write connection is opened on `writer_core` (see `core`).
    pub(crate) async fn connect(
        url: &str,
        read_connections_max: u32,
        writer_core: Option<core_affinity::CoreId>,
    ) -> Result<Pools, StoreError> {
        match url.parse::<BackendKind>()? {
            BackendKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: a commit is on disk (WAL fsync) before it is acknowledged.
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    // A read connection's page cache; the write connection's is smaller
                    // (`SQLITE_WRITER_CACHE_KIB`).
                    .pragma("cache_size", format!("-{SQLITE_READER_CACHE_KIB}"))
                    .pragma("temp_store", "memory")
                    // A page rewritten often is copied back to the database once per checkpoint, so
                    // fewer, larger checkpoints copy fewer pages (see SQLITE_WAL_CHECKPOINT_PAGES).
                    .pragma("wal_autocheckpoint", SQLITE_WAL_CHECKPOINT_PAGES.to_string())
                    .pragma("journal_size_limit", SQLITE_WAL_BYTES_KEPT.to_string());
                // The write connection is opened on the writer's core, so SQLite's thread for it
                // runs there (see `core`). It is kept for the process's life: a connection the
                // pool replaced would be opened by the writer, on the same core.
                let write_options = options
                    .clone()
                    .statement_cache_capacity(WRITER_STATEMENTS_CACHED)
                    .pragma("cache_size", format!("-{SQLITE_WRITER_CACHE_KIB}"));
                let write = crate::core::spawn_on_core("keten-sqlite-open", writer_core, move || {
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .min_connections(0)
                        .max_lifetime(None)
                        .idle_timeout(None)
                        .acquire_timeout(Duration::from_secs(60))
                        .connect_with(write_options)
                })
                .map_err(sqlx::Error::Io)?
                .await
                .map_err(|_| sqlx::Error::WorkerCrashed)??;
                let read = SqlitePoolOptions::new()
                    .max_connections(read_connections_max.max(1))
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options.clone().read_only(true))
                    .await?;
                // Kept open: the writer reads idempotency keys on it without waiting for one to
                // open, nor for a request to give one back (`writer::Ahead`).
                let ahead = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .max_lifetime(None)
                    .idle_timeout(None)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options.clone().read_only(true))
                    .await?;
                // It writes the database file, never in a transaction; copying reads the WAL's
                // frames, not the page cache.
                let copier = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy_with(options.pragma("cache_size", "-1024"));
                Ok(Pools::Sqlite { read, write, ahead, copier })
            }
            BackendKind::Postgres => {
                let options = PgConnectOptions::from_str(url)?
                    .application_name("keten")
                    .statement_cache_capacity(WRITER_STATEMENTS_CACHED);
                let pool = PgPoolOptions::new()
                    .max_connections(read_connections_max.max(2) + 2)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?;
                Ok(Pools::Postgres { pool, news: std::sync::Arc::new(crate::stock_news::StockNews::new()) })
            }
        }
    }

    pub(crate) fn kind(&self) -> BackendKind {
        match self {
            Pools::Sqlite { .. } => BackendKind::Sqlite,
            Pools::Postgres { .. } => BackendKind::Postgres,
        }
    }

    /// Applies pending migrations; answers the versions applied now.
    pub(crate) async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let applied_before = self.applied_migrations().await;
        match self {
            Pools::Sqlite { write, .. } => sqlx::migrate!("./migrations/sqlite").run(write).await?,
            Pools::Postgres { pool, .. } => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        let applied_after = self.applied_migrations().await;
        Ok(applied_after.into_iter().filter(|version| !applied_before.contains(version)).collect())
    }

    async fn applied_migrations(&self) -> Vec<String> {
        let query = "SELECT version, description FROM _sqlx_migrations ORDER BY version";
        let rows: Result<Vec<(i64, String)>, sqlx::Error> = match self {
            Pools::Sqlite { write, .. } => sqlx::query_as(query).fetch_all(write).await,
            Pools::Postgres { pool, .. } => sqlx::query_as(query).fetch_all(pool).await,
        };
        rows.unwrap_or_default().into_iter().map(|(version, description)| format!("{version} {description}")).collect()
    }

    /// A read connection for the writes the writer applies ahead, if one is free now: on SQLite
    /// the writer's own, on PostgreSQL an idle one of the pool (none idle: nothing is applied
    /// ahead this time).
    pub(crate) fn try_acquire_ahead_reader(&self) -> Option<Conn> {
        match self {
            Pools::Sqlite { ahead, .. } => ahead.try_acquire().map(Conn::Sqlite),
            Pools::Postgres { pool, .. } => pool.try_acquire().map(Conn::Postgres),
        }
    }

    /// A read connection (SQLite's read pool), for reads that share code with the writer.
    pub(crate) async fn acquire_reader(&self) -> Result<Conn, sqlx::Error> {
        match self {
            Pools::Sqlite { read, .. } => Ok(Conn::Sqlite(read.acquire().await?)),
            Pools::Postgres { pool, .. } => Ok(Conn::Postgres(pool.acquire().await?)),
        }
    }

    pub(crate) async fn acquire_writer(&self) -> Result<Conn, sqlx::Error> {
        match self {
            Pools::Sqlite { write, .. } => Ok(Conn::Sqlite(write.acquire().await?)),
            Pools::Postgres { pool, .. } => Ok(Conn::Postgres(pool.acquire().await?)),
        }
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let _: (i64,) = on_pool!(self, pool => sqlx::query_as("SELECT CAST(1 AS BIGINT)").fetch_one(pool).await)?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        match self {
            Pools::Sqlite { read, write, ahead, copier } => {
                copier.close().await;
                read.close().await;
                ahead.close().await;
                write.close().await;
            }
            Pools::Postgres { pool, news } => {
                news.stop();
                pool.close().await;
            }
        }
    }
}

/// Copies SQLite's WAL back into the database file every [`SQLITE_WAL_COPY_INTERVAL`], on a
/// connection of its own, until the pools close.
///
/// SQLite copies the WAL back (a checkpoint) in the commit that finds it past its limit
/// ([`SQLITE_WAL_CHECKPOINT_PAGES`]), on the committing connection: the writer's, on the writer's
/// core (`core`), which then copies every page the WAL changed since the last copy and syncs the
/// database file before the batch is answered. Done here too, a little at a time (`PASSIVE`: it
/// waits for no reader nor writer, and copies the frames every reader already sees), most of the
/// copying runs beside the writer: the commit that reaches the limit finds only the last moment's
/// frames left to copy, and the WAL then starts again from its beginning as before.
async fn copy_wal(copier: SqlitePool) {
    let mut warned: Option<std::time::Instant> = None;
    loop {
        tokio::time::sleep(SQLITE_WAL_COPY_INTERVAL).await;
        if copier.is_closed() {
            return;
        }
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&copier).await {
            Ok(_) => {}
            Err(sqlx::Error::PoolClosed) => return,
            // The writer's commits still copy the WAL when it reaches its limit.
            Err(error) => {
                if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    warned = Some(std::time::Instant::now());
                    tracing::warn!(%error, "copying the WAL into the database file failed; the writer's commits copy it");
                }
            }
        }
    }
}

impl Pools {
    /// On SQLite, starts copying the WAL back into the database file beside the writer
    /// ([`copy_wal`]); on PostgreSQL, listening for what other API nodes announce of stock that
    /// came in (`stock_news`), on a connection of its own to `url`. Both stop when the pools close.
    pub(crate) async fn start_beside_the_writer(&self, url: &str) {
        match self {
            Pools::Sqlite { copier, .. } => {
                tokio::spawn(copy_wal(copier.clone()));
            }
            // Without it (a pooler that does not pass `LISTEN` on, say) the writers' caches are
            // read again after their lifetime only, as before.
            Pools::Postgres { news, .. } => {
                if let Err(error) = news.listen(url).await {
                    tracing::warn!(%error, "cannot listen for other API nodes' stock; each writer reads it again every 30 s");
                }
            }
        }
    }

    /// What other API nodes announce of stock that came in (PostgreSQL).
    pub(crate) fn stock_news(&self) -> Option<&crate::stock_news::StockNews> {
        match self {
            Pools::Sqlite { .. } => None,
            Pools::Postgres { news, .. } => Some(news),
        }
    }
}

impl Conn {
    /// Opens a write transaction. SQLite takes the write lock at once (`BEGIN IMMEDIATE`), so a
    /// second process writing the same file waits instead of failing half-way.
    pub(crate) async fn begin(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(connection) => sqlx::query("BEGIN IMMEDIATE").execute(&mut **connection).await.map(drop),
            Conn::Postgres(connection) => sqlx::query("BEGIN").execute(&mut **connection).await.map(drop),
        }
    }

    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        on_conn!(self, connection => sqlx::query("COMMIT").execute(&mut *connection).await.map(drop))?;
        Ok(())
    }

    pub(crate) async fn rollback(&mut self) -> Result<(), sqlx::Error> {
        on_conn!(self, connection => sqlx::query("ROLLBACK").execute(&mut *connection).await.map(drop))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Conn, SQLITE_READER_CACHE_KIB, SQLITE_WAL_COPY_INTERVAL, SQLITE_WRITER_CACHE_KIB};

    /// The tables the migrations made are in the database file alone (copied without its WAL)
    /// soon after the store opens, long before the WAL reaches the limit at which a commit copies
    /// it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_copied_into_the_database_file_beside_the_writer() {
        use sqlx::Connection;
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        let copy = scratchdb::SqliteFile::new().unwrap();
        let mut tables = 0;
        for _ in 0..40 {
            tokio::time::sleep(SQLITE_WAL_COPY_INTERVAL).await;
            std::fs::copy(file.path(), copy.path()).unwrap();
            let mut alone = sqlx::SqliteConnection::connect(&copy.url()).await.unwrap();
            (tables,) = sqlx::query_as("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'orders'")
                .fetch_one(&mut alone)
                .await
                .unwrap();
            alone.close().await.unwrap();
            if tables == 1 {
                break;
            }
        }
        assert_eq!(tables, 1, "the database file alone lacks the migrations' tables");
        store.close().await;
    }

    /// The write connection keeps the smaller page cache, the readers the larger one (a negative
    /// `cache_size` is in KiB).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_connections_have_their_page_caches() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        for (writer, kib) in [(true, SQLITE_WRITER_CACHE_KIB), (false, SQLITE_READER_CACHE_KIB)] {
            let mut conn =
                if writer { store.pools().acquire_writer().await } else { store.pools().acquire_reader().await }
                    .unwrap();
            let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
            let (cache,): (i64,) = sqlx::query_as("PRAGMA cache_size").fetch_one(&mut **connection).await.unwrap();
            assert_eq!(cache, -i64::from(kib), "writer: {writer}");
        }
        store.close().await;
    }
}
