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
    },
    Postgres {
        pool: PgPool,
    },
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
            $crate::backend::Pools::Postgres { pool: $pool } => $body,
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
/// was slower.
pub const SQLITE_WAL_CHECKPOINT_PAGES: u32 = 65_536;

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
                    // 64 MiB a connection. More is slower on a database under 1 GiB (docs/benchmarks.md,
                    // "a larger page cache"): a B-tree split moves a page through page number
                    // 1 GiB / page size + 1 for a moment, and SQLite then ends each such transaction by
                    // visiting the whole page cache to drop the pages past the database's end.
                    .pragma("cache_size", "-65536")
                    .pragma("temp_store", "memory")
                    // A page rewritten often is copied back to the database once per checkpoint, so
                    // fewer, larger checkpoints copy fewer pages (see SQLITE_WAL_CHECKPOINT_PAGES).
                    .pragma("wal_autocheckpoint", SQLITE_WAL_CHECKPOINT_PAGES.to_string())
                    .pragma("journal_size_limit", SQLITE_WAL_BYTES_KEPT.to_string());
                // The write connection is opened on the writer's core, so SQLite's thread for it
                // runs there (see `core`). It is kept for the process's life: a connection the
                // pool replaced would be opened by the writer, on the same core.
                let write_options = options.clone().statement_cache_capacity(WRITER_STATEMENTS_CACHED);
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
                    .connect_with(options.read_only(true))
                    .await?;
                Ok(Pools::Sqlite { read, write, ahead })
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
                Ok(Pools::Postgres { pool })
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
            Pools::Postgres { pool } => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        let applied_after = self.applied_migrations().await;
        Ok(applied_after.into_iter().filter(|version| !applied_before.contains(version)).collect())
    }

    async fn applied_migrations(&self) -> Vec<String> {
        let query = "SELECT version, description FROM _sqlx_migrations ORDER BY version";
        let rows: Result<Vec<(i64, String)>, sqlx::Error> = match self {
            Pools::Sqlite { write, .. } => sqlx::query_as(query).fetch_all(write).await,
            Pools::Postgres { pool } => sqlx::query_as(query).fetch_all(pool).await,
        };
        rows.unwrap_or_default().into_iter().map(|(version, description)| format!("{version} {description}")).collect()
    }

    /// The writer's own read connection on SQLite, for the writes it applies ahead, if it is free
    /// now (none on PostgreSQL).
    pub(crate) fn try_acquire_ahead_reader(&self) -> Option<Conn> {
        match self {
            Pools::Sqlite { ahead, .. } => ahead.try_acquire().map(Conn::Sqlite),
            Pools::Postgres { .. } => None,
        }
    }

    /// A read connection (SQLite's read pool), for reads that share code with the writer.
    pub(crate) async fn acquire_reader(&self) -> Result<Conn, sqlx::Error> {
        match self {
            Pools::Sqlite { read, .. } => Ok(Conn::Sqlite(read.acquire().await?)),
            Pools::Postgres { pool } => Ok(Conn::Postgres(pool.acquire().await?)),
        }
    }

    pub(crate) async fn acquire_writer(&self) -> Result<Conn, sqlx::Error> {
        match self {
            Pools::Sqlite { write, .. } => Ok(Conn::Sqlite(write.acquire().await?)),
            Pools::Postgres { pool } => Ok(Conn::Postgres(pool.acquire().await?)),
        }
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let _: (i64,) = on_pool!(self, pool => sqlx::query_as("SELECT CAST(1 AS BIGINT)").fetch_one(pool).await)?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        match self {
            Pools::Sqlite { read, write, ahead } => {
                read.close().await;
                ahead.close().await;
                write.close().await;
            }
            Pools::Postgres { pool } => pool.close().await,
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
