//! Keten's storage: one interface over SQLite (embedded default) and PostgreSQL (scale-out).
//!
//! Architecture invariants:
//! - Every read of tenant data goes through a [`TenantStore`], which puts `tenant_id` into every
//!   query; callers cannot forget to filter.
//! - Every write goes through the [`Writer`]: concurrent writes are batched into one transaction
//!   (group commit) and a write is acknowledged only after its transaction committed.
//! - Writes check their preconditions inside the batch transaction and rely on primary keys and
//!   conditional statements; row locks (PostgreSQL) only where a check must see another API node's
//!   write, each named in ARCHITECTURE.md ("Few row locks").
//! - The same SQL text runs on both backends (`$n` parameters); only the migrations differ in types.

pub mod alarms;
mod backend;
pub mod baseline;
mod core;
pub use core::WriterCore;
pub mod dispatch;
pub mod epcis;
pub mod fulfilment;
mod idempotency;
pub use idempotency::{COMPRESSED_FROM_BYTES, KEYS_UNINDEXED_MAX, RESPONSE_BODY_BYTES_MAX};
mod keys;
pub mod log;
pub mod readings;
mod reads;
mod rows;
pub mod schema;
mod stock_news;
mod writer;

use std::str::FromStr;
use std::sync::Arc;

use network::TenantId;

pub use backend::BackendKind;
use backend::Pools;
pub use keys::{ApiKeySecret, KeyInfo, Principal, Scope, ScopeError, constant_time_equal};
pub use reads::{
    Cursor, DeviceFilter, LaneFilter, LocationFilter, Owned, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, Page, PageRequest,
    PartyFilter, ProductFilter, UsageRow,
};
pub use rows::Tenant;
pub use writer::{
    Applied, IDEMPOTENCY_KEY_LENGTH_MAX, IDEMPOTENCY_KEY_LIFETIME, IdempotencyRecord, Mutation, PutMode,
    StoredResponse, Write, WriteError, WriteOutcome, WriterConfig, WriterCounters, WriterObserver, WriterPhases,
    WriterStats,
};

/// A failure of the database itself (not of the request).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("the writer has stopped")]
    WriterStopped,
    /// A read would exceed one of the store's documented limits.
    #[error("{0}")]
    Limit(String),
    /// The store's configuration cannot be used on this machine.
    #[error("configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// Whether the failure is the database being out of reach (retry later), not a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
                | StoreError::WriterStopped
        )
    }
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
    /// Connections for reads (SQLite) or for everything (PostgreSQL).
    pub read_connections_max: u32,
    pub writer: WriterConfig,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> StoreConfig {
        StoreConfig { url: url.into(), read_connections_max: 8, writer: WriterConfig::default() }
    }
}

/// The store: a cheap handle, clone it freely.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pools: Pools,
    writer: writer::WriterHandle,
}

impl Store {
    /// Opens the database, applies pending migrations and starts the writer.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let writer_core = config.writer.core.resolve()?;
        let pools = Pools::connect(&config.url, config.read_connections_max, writer_core).await?;
        pools.migrate().await?;
        let writer = writer::WriterHandle::start(pools.clone(), config.writer.clone(), writer_core).await?;
        pools.start_beside_the_writer(&config.url).await;
        Ok(Store { inner: Arc::new(Inner { pools, writer }) })
    }

    /// Applies pending migrations without starting anything (`keten migrate`).
    pub async fn migrate_only(url: &str) -> Result<Vec<String>, StoreError> {
        let pools = Pools::connect(url, 1, None).await?;
        let applied = pools.migrate().await?;
        pools.close().await;
        Ok(applied)
    }

    pub fn backend(&self) -> BackendKind {
        self.inner.pools.kind()
    }

    /// The store scoped to one tenant: every read and write of it concerns that tenant only.
    pub fn tenant(&self, tenant_id: &TenantId) -> TenantStore<'_> {
        TenantStore { store: self, tenant_id: tenant_id.clone() }
    }

    /// Submits a write to the group-commit writer and waits until its batch committed.
    pub async fn write(&self, write: Write) -> Result<WriteOutcome, WriteError> {
        self.inner.writer.submit(write).await
    }

    /// Woken (one stored permit) after each commit that appended to the transparency log: the
    /// checkpointer waits on it instead of polling.
    pub fn log_grew(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.inner.writer.log_grew()
    }

    /// Reports each committed batch to `observer` (metrics).
    pub fn observe_writer(&self, observer: Arc<dyn WriterObserver>) {
        self.inner.writer.set_observer(observer);
    }

    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.counters().stats()
    }

    /// The writer's counters, to read later without holding the store.
    pub fn writer_counters(&self) -> WriterCounters {
        self.inner.writer.counters()
    }

    /// Whether a writer task failed (panicked, a bug): this process takes no more writes and must
    /// be restarted (`/readyz` says so, and `server::serve` stops).
    pub fn writer_failed(&self) -> bool {
        self.inner.writer.failed()
    }

    /// Waits until a writer task fails ([`Store::writer_failed`]); never, if none does.
    pub async fn writer_failure(&self) {
        self.inner.writer.wait_failed().await
    }

    /// Tests only: makes the writer task that takes it next panic, as on a bug.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_writer_panic(&self) {
        self.inner.writer.inject_panic().await
    }

    /// Checks that the database answers (`/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.inner.pools.ping().await
    }

    /// Stops accepting writes, finishes the queued batches and closes the connections.
    pub async fn close(&self) {
        self.inner.writer.shutdown().await;
        self.inner.pools.close().await;
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.inner.pools
    }
}

/// The store seen by one tenant.
#[derive(Debug, Clone)]
pub struct TenantStore<'a> {
    store: &'a Store,
    tenant_id: TenantId,
}

impl TenantStore<'_> {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    /// Writes on behalf of this tenant.
    pub async fn write(
        &self,
        mutation: Mutation,
        idempotency: Option<IdempotencyRecord>,
    ) -> Result<WriteOutcome, WriteError> {
        self.store.write(Write { tenant_id: self.tenant_id.clone(), mutation, idempotency }).await
    }
}

/// The current time as UTC milliseconds since the Unix epoch.
pub fn now_unix_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The UTC day of a time, as `YYYY-MM-DD`.
pub fn utc_day(unix_ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(unix_ms) {
        Ok(timestamp) => timestamp.strftime("%Y-%m-%d").to_string(),
        Err(_) => "1970-01-01".to_owned(),
    }
}

/// The UTC date of a time: the day [`utc_day`] names.
pub(crate) fn utc_date(unix_ms: i64) -> jiff::civil::Date {
    jiff::Timestamp::from_millisecond(unix_ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

pub(crate) fn parse_stored<T, E: std::fmt::Display>(
    what: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    parse(text).map_err(|error| StoreError::Corrupt(format!("{what} {text:?}: {error}")))
}

impl FromStr for BackendKind {
    type Err = StoreError;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url.starts_with("sqlite:") {
            Ok(BackendKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(BackendKind::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }
}
