//! The group-commit writer.
//!
//! Every write of the platform is a [`Write`] sent to one writer task per process. The task takes
//! the first queued write, then every write already waiting (up to [`WriterConfig::batch_writes_max`]),
//! applies them in order in one transaction, commits once (one fsync), and only then answers each
//! caller. No write waits for a timer: while a batch commits, the next one gathers.
//!
//! Each write checks its preconditions with reads inside the transaction before it changes
//! anything, so a refused write (conflict, unknown reference) leaves no trace and does not disturb
//! the others of its batch. If the database itself fails a statement (say, a unique index raced by
//! another API node on PostgreSQL), the whole batch is rolled back and its writes are applied again
//! one per transaction, so only the faulty one fails.
//!
//! Limits: a batch holds at most `batch_writes_max` writes (default 1,024); the queue holds at
//! most `queue_writes_max` (default 16,384) — beyond that a write is refused as overloaded (HTTP 503)
//! rather than queued without bound.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gs1::Gtin;
use network::{Device, DeviceId, Lane, LaneId, Location, Party, PartyId, Product, ProductLink, TenantId};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::backend::{Conn, Pools, on_conn};
use crate::fulfilment::{FulfilmentMutation, FulfilmentOutcome, StockBatch, StockContext, WriterCache};
use crate::idempotency::KeysTail;
use crate::keys::Scope;
use crate::log::LogBatch;
use crate::rows::join_list;
use crate::{StoreError, now_unix_ms, utc_day};

/// How long an idempotency key is remembered: a retry within this time gets the first answer.
pub const IDEMPOTENCY_KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The most API keys a tenant holds, revoked ones included.
pub const KEYS_PER_TENANT_MAX: i64 = 1000;
/// The longest idempotency key accepted.
pub const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 255;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The most writes committed in one transaction.
    pub batch_writes_max: usize,
    /// The most writes waiting; more are refused as overloaded.
    pub queue_writes_max: usize,
    /// Writer tasks taking batches from the queue, each with its own connection and cache. SQLite
    /// always runs one (one writer at a time); PostgreSQL can commit several batches at once.
    pub writer_tasks: usize,
    /// The core SQLite's writer and its connection's thread run on (see `core`); unused on
    /// PostgreSQL.
    pub core: crate::WriterCore,
}

impl WriterConfig {
    /// One transaction per write, `tasks` at a time: the conventional way, kept as a baseline.
    pub fn unbatched(tasks: usize) -> WriterConfig {
        WriterConfig { batch_writes_max: 1, writer_tasks: tasks.max(1), ..WriterConfig::default() }
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_writes_max: 1024,
            queue_writes_max: 16_384,
            writer_tasks: 1,
            core: crate::WriterCore::default(),
        }
    }
}

/// Create, create-or-replace, or replace an existing value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    Create,
    Upsert,
    Update,
}

/// A change to the stored data of the write's tenant.
#[derive(Debug, Clone)]
pub enum Mutation {
    PutTenant {
        name: String,
        mode: PutMode,
    },
    CreateKey {
        key_id: String,
        name: String,
        scopes: Vec<Scope>,
        secret_sha256: [u8; 32],
    },
    RevokeKey {
        key_id: String,
    },
    /// The operator verified a GS1 company prefix as the tenant's (its licence): the tenant's GTIN
    /// claims under it are verified (now and later), and another tenant's claims under it are
    /// refused. Refused (`conflict`) if another tenant holds a prefix that overlaps it.
    VerifyCompanyPrefix {
        company_prefix: String,
    },
    PutProduct {
        product: Product,
        mode: PutMode,
    },
    DeleteProduct {
        gtin: Gtin,
    },
    PutParty {
        party: Party,
        mode: PutMode,
    },
    DeleteParty {
        party_id: PartyId,
    },
    PutLocation {
        location: Location,
        mode: PutMode,
    },
    DeleteLocation {
        gln: gs1::Gln,
    },
    PutLane {
        lane: Lane,
        mode: PutMode,
    },
    DeleteLane {
        lane_id: LaneId,
    },
    PutDevice {
        device: Device,
        mode: PutMode,
    },
    DeleteDevice {
        device_id: DeviceId,
    },
    PutProductLink {
        gtin: Gtin,
        link: ProductLink,
    },
    DeleteProductLink {
        gtin: Gtin,
        link_id: String,
    },
    /// Stores EPCIS events (one capture job), see [`crate::epcis`].
    CaptureEvents(Box<crate::epcis::Capture>),
    /// Named queries and their subscriptions.
    EpcisQuery(crate::epcis::QueryMutation),
    /// A signed checkpoint of the transparency log (platform write, by the log's signer).
    PutLogCheckpoint {
        size: u64,
        note: String,
    },
    /// A witness's cosignature of the checkpoint of `size` (a C2SP signature line).
    PutLogCosignature {
        size: u64,
        witness: String,
        signature_line: String,
    },
    /// Stock, orders and recalls, see [`crate::fulfilment`].
    Fulfilment(FulfilmentMutation),
    /// Vehicles, planned routes and their stops (network tenant), see [`crate::dispatch`].
    Dispatch(crate::dispatch::DispatchMutation),
    /// Temperature readings of the tenant's devices, see [`crate::readings`]; duplicates dropped.
    Readings(Vec<crate::readings::StoredReading>),
    /// Where a device measures from `from_unix_ms` on (its open assignment ends there).
    AssignDevice {
        device_id: DeviceId,
        from_unix_ms: i64,
        target: crate::readings::AssignmentTarget,
        /// The product class whose alarm rules judge the readings taken there, if any.
        class: Option<String>,
        /// The EPCIS event of the leg this assignment ends (its readings' aggregates), captured
        /// in the same transaction.
        events: Option<Box<crate::epcis::Capture>>,
    },
    /// Cold-chain alarms evaluated, acknowledged or escalated, see [`crate::alarms`].
    Alarms(crate::alarms::AlarmMutation),
    /// A physical step (a receipt, a pick, a pallet packed, a shipment, a delivery) and the EPCIS
    /// events that record it, in one transaction: both or neither.
    FulfilmentRecorded {
        change: FulfilmentMutation,
        events: Box<crate::epcis::Capture>,
    },
}

impl Mutation {
    /// Whether it changes a site or a lane (what allocation reads from the network's snapshot).
    pub(crate) fn changes_network(&self) -> bool {
        matches!(
            self,
            Mutation::PutLocation { .. }
                | Mutation::DeleteLocation { .. }
                | Mutation::PutLane { .. }
                | Mutation::DeleteLane { .. }
        )
    }

    /// A fulfilment step with the EPCIS events that record it (if any), as one write.
    pub fn fulfilment_step(change: FulfilmentMutation, events: Option<crate::epcis::Capture>) -> Mutation {
        match events {
            Some(events) => Mutation::FulfilmentRecorded { change, events: Box::new(events) },
            None => Mutation::Fulfilment(change),
        }
    }
}

/// The answer stored for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// A new row was created (as opposed to replaced, revoked, or deleted).
    pub created: bool,
    pub at_unix_ms: i64,
    /// What a fulfilment write answers (the order as it left it, a recall's reach).
    pub outcome: Option<Arc<FulfilmentOutcome>>,
    /// Rows a bulk write stored (readings kept, duplicates not counted); 0 for others.
    pub rows: u64,
}

/// Remembers the first answer to a request under its idempotency key, in the write's transaction.
pub struct IdempotencyRecord {
    /// Whose key space the key lives in: the caller's tenant.
    pub tenant_id: TenantId,
    pub key: String,
    /// SHA-256 of the request (method, path and body): a retry must match it.
    pub request_sha256: [u8; 32],
    /// Builds the answer from what the write did; called once the write applied.
    pub respond: Box<dyn Fn(&Applied) -> StoredResponse + Send + Sync>,
}

impl fmt::Debug for IdempotencyRecord {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "IdempotencyRecord({}/{})", self.tenant_id, self.key)
    }
}

#[derive(Debug)]
pub struct Write {
    pub tenant_id: TenantId,
    pub mutation: Mutation,
    pub idempotency: Option<IdempotencyRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    Applied(Applied),
    /// The idempotency key was seen before with the same request: here is the first answer.
    Replayed(StoredResponse),
}

/// Why a write was refused. Nothing of a refused write is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("{field} refers to {value:?}, which does not exist")]
    UnknownReference { field: &'static str, value: String },
    #[error("{0} is still referred to by {1}")]
    InUse(String, String),
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyMismatch,
    #[error("the write queue is full ({0} writes); retry shortly")]
    Overloaded(usize),
    #[error("the writer has stopped")]
    Stopped,
    /// A writer task panicked (a bug): this process takes no more writes; it must be restarted.
    /// (What the task had not committed was rolled back with its transaction.)
    #[error("the writer stopped after an internal error; this node takes no writes until it is restarted")]
    WriterFailed,
    #[error("a limit would be exceeded: {0}")]
    Limit(String),
    /// A domain rule refused the write: a stable problem code, what happened, and the offending
    /// fields (JSON pointer, detail).
    #[error("{detail}")]
    Refused { code: &'static str, detail: String, errors: Vec<(String, String)> },
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Database(String),
}

/// Receives the writer's measurements (the server turns them into metrics).
pub trait WriterObserver: Send + Sync + fmt::Debug {
    fn batch_committed(&self, writes: usize, duration: Duration);
}

/// Running totals of the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub batches: u64,
    pub writes: u64,
    pub batch_writes_largest: u64,
    /// Batches of orders that left their balances' rows behind (SQLite, while busy; see
    /// `fulfilment::BalancesBehind`).
    pub batches_leaving_balances_behind: u64,
    /// Batches whose writes were applied ahead ([`Ahead`]) and then applied again in their
    /// transaction: the batch before failed, or another process wrote the file meanwhile.
    pub batches_applied_ahead_dropped: u64,
    /// Batches a statement failed in (a row refused, a race lost to another API node, a
    /// deadlock, a full lock table): rolled back, and their writes applied one by one.
    pub batches_applied_one_by_one: u64,
    /// Where the committed transactions spent their time.
    pub phases: WriterPhases,
}

/// The time committed transactions spent in each phase, summed, and the writes they held:
/// `keten bench orders` divides one by the other (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterPhases {
    /// Writes of the transactions that committed.
    pub writes: u64,
    /// Reading the batch's idempotency keys (once the transaction began and took its time).
    pub keys_micros: u64,
    /// Reading the stock of the batch's orders (what the writer's cache lacks).
    pub stock_read_micros: u64,
    /// Applying the writes: checks, allocation, the rows in memory (and the SQL of other writes).
    pub apply_micros: u64,
    /// Writing the rows: keys, balances, movements, orders, the log, usage (and on SQLite, now and
    /// then, the reserves' lot index).
    pub flush_micros: u64,
    /// The commit: the WAL (SQLite) or the transaction log (PostgreSQL) written and synced; also
    /// any wait for the next writes applied ahead meanwhile ([`Ahead`]).
    pub commit_micros: u64,
    /// Writes applied ahead, while the batch before them was written ([`Ahead`]): not in
    /// `apply_micros`.
    pub applied_ahead: u64,
    /// Applying those, while the batch before was written.
    pub ahead_micros: u64,
}

/// How many numbers a [`WriterPhases`] holds.
const PHASE_FIELDS: usize = 8;

impl WriterPhases {
    /// The totals since `earlier`.
    pub fn since(&self, earlier: &WriterPhases) -> WriterPhases {
        let (now, before) = (self.to_array(), earlier.to_array());
        WriterPhases::from_array(std::array::from_fn(|field| now[field].saturating_sub(before[field])))
    }

    /// Its numbers in the order of its fields (the counters keep them so, see [`Counters`]).
    fn to_array(self) -> [u64; PHASE_FIELDS] {
        [
            self.writes,
            self.keys_micros,
            self.stock_read_micros,
            self.apply_micros,
            self.flush_micros,
            self.commit_micros,
            self.applied_ahead,
            self.ahead_micros,
        ]
    }

    fn from_array(fields: [u64; PHASE_FIELDS]) -> WriterPhases {
        let [
            writes,
            keys_micros,
            stock_read_micros,
            apply_micros,
            flush_micros,
            commit_micros,
            applied_ahead,
            ahead_micros,
        ] = fields;
        WriterPhases {
            writes,
            keys_micros,
            stock_read_micros,
            apply_micros,
            flush_micros,
            commit_micros,
            applied_ahead,
            ahead_micros,
        }
    }
}

struct Pending {
    write: Write,
    reply: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    batches: AtomicU64,
    writes: AtomicU64,
    batch_writes_largest: AtomicU64,
    batches_leaving_balances_behind: AtomicU64,
    batches_applied_ahead_dropped: AtomicU64,
    batches_applied_one_by_one: AtomicU64,
    /// [`WriterPhases`], field by field ([`WriterPhases::to_array`]).
    phases: [AtomicU64; PHASE_FIELDS],
}

impl Counters {
    fn add_phases(&self, phases: &WriterPhases) {
        for (counter, value) in self.phases.iter().zip(phases.to_array()) {
            counter.fetch_add(value, Ordering::Relaxed);
        }
    }

    fn phases(&self) -> WriterPhases {
        WriterPhases::from_array(self.phases.each_ref().map(|counter| counter.load(Ordering::Relaxed)))
    }
}

/// The writer's counters, read without holding the store (which an observer of the writer, such
/// as the metrics, must not: the store holds its observer).
#[derive(Debug, Clone)]
pub struct WriterCounters(Arc<Counters>);

impl WriterCounters {
    pub fn stats(&self) -> WriterStats {
        let counters = &self.0;
        WriterStats {
            batches: counters.batches.load(Ordering::Relaxed),
            writes: counters.writes.load(Ordering::Relaxed),
            batch_writes_largest: counters.batch_writes_largest.load(Ordering::Relaxed),
            batches_leaving_balances_behind: counters.batches_leaving_balances_behind.load(Ordering::Relaxed),
            batches_applied_ahead_dropped: counters.batches_applied_ahead_dropped.load(Ordering::Relaxed),
            batches_applied_one_by_one: counters.batches_applied_one_by_one.load(Ordering::Relaxed),
            phases: counters.phases(),
        }
    }
}

enum Message {
    Write(Pending),
    /// Finish every queued write, then stop.
    Stop,
    /// Tests only: the writer task that takes it panics, as on a bug.
    #[cfg(feature = "fault-injection")]
    Panic,
}

type ObserverSlot = Arc<std::sync::RwLock<Option<Arc<dyn WriterObserver>>>>;

#[derive(Debug)]
pub(crate) struct WriterHandle {
    sender: mpsc::Sender<Message>,
    /// Each writer task's end (a task that panicked ends too).
    tasks: Mutex<Vec<oneshot::Receiver<()>>>,
    counters: Arc<Counters>,
    queue_writes_max: usize,
    observer: ObserverSlot,
    /// Woken after each commit that grew the transparency log.
    log_grew: Arc<Notify>,
    /// Turns true when a writer task panicked ([`WriteError::WriterFailed`]).
    failed: Arc<tokio::sync::watch::Sender<bool>>,
    /// A shutdown was asked for: a write the writer drops from now on was stopped, not failed.
    stopping: std::sync::atomic::AtomicBool,
}

impl WriterHandle {
    /// Starts the writer; on SQLite on a thread of its own on `core` (see `core`).
    pub(crate) async fn start(
        pools: Pools,
        config: WriterConfig,
        core: Option<core_affinity::CoreId>,
    ) -> Result<WriterHandle, StoreError> {
        assert!(config.batch_writes_max >= 1 && config.queue_writes_max >= 1 && config.writer_tasks >= 1);
        let (sender, receiver) = mpsc::channel(config.queue_writes_max);
        let receiver = Arc::new(Mutex::new(receiver));
        let counters = Arc::new(Counters::default());
        let observer: ObserverSlot = Arc::default();
        let log_grew = Arc::new(Notify::new());
        // SQLite has one write connection and its balance updates trust the one writer's cache
        // (`fulfilment::update_balances`): one writer task, whatever the configuration asks.
        let writer_tasks = match pools.kind() {
            crate::backend::BackendKind::Sqlite => 1,
            crate::backend::BackendKind::Postgres => config.writer_tasks,
        };
        // Writes are applied ahead ([`Ahead`]). On SQLite by a thread of its own, on another core
        // than the writer's (where SQLite's thread writes and commits meanwhile), with its empty
        // database's connection thread beside it. It ends with the writer.
        let mut ahead_thread = None;
        if pools.kind() == crate::backend::BackendKind::Sqlite {
            let (started, start) = oneshot::channel();
            let (ends, ended) = oneshot::channel::<()>();
            crate::core::spawn_on_core("keten-ahead", crate::core::other_core(core), move || async move {
                match detached_database().await {
                    Ok(detached) => {
                        let _ = started.send((tokio::runtime::Handle::current(), detached));
                        let _ = ended.await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "no empty database to apply writes ahead with; each batch applies its own")
                    }
                }
            })
            .map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
            if let Ok((runtime, detached)) = start.await {
                ahead_thread = Some(AheadThread { runtime, detached, _ends: Some(ends) });
            }
        } else {
            // On PostgreSQL the first writer task applies writes ahead on the process's runtime
            // while the server writes and commits its batch (the other tasks, if any, do not).
            match detached_database().await {
                Ok(detached) => {
                    ahead_thread =
                        Some(AheadThread { runtime: tokio::runtime::Handle::current(), detached, _ends: None })
                }
                Err(error) => {
                    tracing::warn!(%error, "no empty database to apply writes ahead with; each batch applies its own")
                }
            }
        }
        let mut tasks = Vec::with_capacity(writer_tasks);
        let failed = Arc::new(tokio::sync::watch::Sender::new(false));
        for _ in 0..writer_tasks {
            let run = {
                let (pools, receiver, config) = (pools.clone(), receiver.clone(), config.clone());
                let (counters, observer, log_grew) = (counters.clone(), observer.clone(), log_grew.clone());
                let (ahead, failed) = (ahead_thread.take(), failed.clone());
                // A panic (a bug) ends the task: its transaction rolls back, its writes' callers and
                // every later one are answered that the writer failed, and the process is reported
                // unready until restarted (`server::serve` then stops).
                move || async move {
                    use futures_util::FutureExt;
                    let running = run(pools, receiver, config, counters, observer, log_grew, ahead);
                    if std::panic::AssertUnwindSafe(running).catch_unwind().await.is_err() {
                        failed.send_replace(true);
                        tracing::error!("a writer task panicked: this node takes no more writes until it is restarted");
                    }
                }
            };
            tasks.push(match pools.kind() {
                // On the core of SQLite's write connection (see `core`).
                crate::backend::BackendKind::Sqlite => crate::core::spawn_on_core("keten-writer", core, run)
                    .map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?,
                crate::backend::BackendKind::Postgres => {
                    let (done, finished) = oneshot::channel();
                    tokio::spawn(async move {
                        run().await;
                        let _ = done.send(());
                    });
                    finished
                }
            });
        }
        Ok(WriterHandle {
            sender,
            tasks: Mutex::new(tasks),
            counters,
            queue_writes_max: config.queue_writes_max,
            observer,
            log_grew,
            failed,
            stopping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether a writer task panicked ([`WriteError::WriterFailed`]).
    pub(crate) fn failed(&self) -> bool {
        *self.failed.borrow()
    }

    /// Waits until a writer task panics (never, if none does).
    pub(crate) async fn wait_failed(&self) {
        let _ = self.failed.subscribe().wait_for(|failed| *failed).await;
    }

    /// Tests only: the writer task that takes this next panics, as on a bug.
    #[cfg(feature = "fault-injection")]
    pub(crate) async fn inject_panic(&self) {
        let _ = self.sender.send(Message::Panic).await;
    }

    /// Why a write the writer did not answer was dropped: a shutdown, or a writer task that failed.
    fn dropped(&self) -> WriteError {
        if self.stopping.load(Ordering::Relaxed) { WriteError::Stopped } else { WriteError::WriterFailed }
    }

    pub(crate) fn log_grew(&self) -> Arc<Notify> {
        self.log_grew.clone()
    }

    pub(crate) async fn submit(&self, write: Write) -> Result<WriteOutcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        match self.sender.try_send(Message::Write(Pending { write, reply })) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(WriteError::Overloaded(self.queue_writes_max)),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(self.dropped()),
        }
        answer.await.unwrap_or_else(|_| Err(self.dropped()))
    }

    pub(crate) fn counters(&self) -> WriterCounters {
        WriterCounters(self.counters.clone())
    }

    pub(crate) fn set_observer(&self, observer: Arc<dyn WriterObserver>) {
        if let Ok(mut slot) = self.observer.write() {
            *slot = Some(observer);
        }
    }

    /// Stops taking writes, then waits until every queued write has been committed and answered.
    pub(crate) async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let tasks = std::mem::take(&mut *self.tasks.lock().await);
        if tasks.is_empty() || self.sender.send(Message::Stop).await.is_err() {
            return;
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

async fn run(
    pools: Pools,
    receiver: Arc<Mutex<mpsc::Receiver<Message>>>,
    config: WriterConfig,
    counters: Arc<Counters>,
    observer: ObserverSlot,
    log_grew: Arc<Notify>,
    ahead_thread: Option<AheadThread>,
) {
    let mut stopping = false;
    let mut last_purge = Instant::now();
    let mut cache = WriterCache::default();
    // On PostgreSQL, this writer's share of what other API nodes announce (`stock_news`).
    let news = pools.stock_news().map(|news| (news, news.writer()));
    cache.news_writer = news.map(|(_, writer)| writer);
    let mut ahead: Option<Ahead> = None;
    while !stopping {
        let mut batch = Vec::with_capacity(config.batch_writes_max.min(64));
        let busy;
        let mut head = None;
        if let Some(gathered) = ahead.take() {
            // Gathered while the batch before was written: a write was waiting, so busy.
            busy = true;
            stopping |= gathered.stopping;
            batch = gathered.batch;
            head = gathered.applied;
        } else {
            // The writers just answered are woken: on the shared runtime (PostgreSQL), let them
            // queue their next writes before this task gathers, so a batch is not one early write
            // alone. (On SQLite the writer has a thread of its own, see `core`: they run elsewhere
            // meanwhile.)
            tokio::task::yield_now().await;
            // One task gathers a batch at a time; the others commit theirs meanwhile.
            let mut receiver = receiver.lock().await;
            // Busy: a write was waiting when the last batch ended. Idle: the reserves left out of
            // the balances meanwhile are written now (`fulfilment::BalancesBehind`).
            let first = match receiver.try_recv() {
                Ok(first) => {
                    busy = true;
                    first
                }
                Err(_) => {
                    busy = false;
                    catch_up_idle(&pools, &mut cache, &counters).await;
                    let Some(first) = receiver.recv().await else { break };
                    first
                }
            };
            stopping |= take(first, &mut batch);
            stopping = take_waiting(&mut receiver, &mut batch, config.batch_writes_max, stopping);
        }
        // Writes applied ahead are orders alone (on PostgreSQL one lock each, at most
        // `batch_writes_max` of them, under `BATCH_LOCKS_MAX`): one chunk, the first.
        let locks_max = (pools.kind() == crate::backend::BackendKind::Postgres).then_some(BATCH_LOCKS_MAX);
        let chunks = chunks(batch, config.batch_writes_max, locks_max);
        debug_assert!(head.is_none() || chunks.len() == 1, "writes applied ahead are one batch");
        let last = chunks.len().saturating_sub(1);
        for (index, chunk) in chunks.into_iter().enumerate() {
            let started = Instant::now();
            let size = chunk.len();
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters.writes.fetch_add(size as u64, Ordering::Relaxed);
            counters.batch_writes_largest.fetch_max(size as u64, Ordering::Relaxed);
            // Only the last chunk gathers ahead: the others' writes were queued before it.
            let next = match &ahead_thread {
                Some(thread) if index == last && !stopping => Some(Gatherer {
                    receiver: &receiver,
                    detached: &thread.detached,
                    runtime: &thread.runtime,
                    // (An order takes one lock: so many make one chunk.)
                    batch_writes_max: config.batch_writes_max.min(locks_max.unwrap_or(usize::MAX)),
                    ahead: &mut ahead,
                }),
                _ => None,
            };
            let head = if index == 0 { head.take() } else { None };
            if let Some((news, writer)) = news {
                news.forget_stale(writer, &mut cache);
            }
            if process(&pools, chunk, &mut cache, &counters, busy, head, next).await {
                log_grew.notify_one();
            }
            if last_purge.elapsed() >= IDEMPOTENCY_PURGE_INTERVAL {
                last_purge = Instant::now();
                if let Err(error) = purge_expired_idempotency_keys(&pools).await {
                    tracing::warn!(%error, "purging expired idempotency keys failed");
                }
            }
            let observer = observer.read().ok().and_then(|slot| slot.clone());
            if let Some(observer) = observer {
                observer.batch_committed(size, started.elapsed());
            }
        }
    }
    catch_up_idle(&pools, &mut cache, &counters).await;
}

/// On SQLite, writes the reserves left out of `stock_balances` while the writer was busy
/// (`fulfilment::BalancesBehind`), in a transaction of its own: when the writer falls idle, and
/// at its start (after a crash the table may lag) and end. A failure is only logged: every read
/// adds the reserves still left out, and the next batch tries again.
async fn catch_up_idle(pools: &Pools, cache: &mut WriterCache, counters: &Counters) {
    if pools.kind() != crate::backend::BackendKind::Sqlite || cache.balances_behind.is_clear() {
        return;
    }
    if let Err(error) = apply_in_transaction(pools, &[], cache, counters, false).await {
        tracing::warn!(
            ?error,
            "writing the reserves left out of the stock balances failed; the next batch tries again"
        );
    }
}

/// How often a writer task deletes expired idempotency keys, and how many at most each time.
pub const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(60);
pub const IDEMPOTENCY_PURGE_ROWS_MAX: i64 = 10_000;
/// Chunks per purge: up to 1,000,000 expired keys a minute, each chunk its own short transaction.
pub const IDEMPOTENCY_PURGE_CHUNKS_MAX: usize = 100;

async fn purge_expired_idempotency_keys(pools: &Pools) -> Result<u64, sqlx::Error> {
    let mut purged = 0;
    for _ in 0..IDEMPOTENCY_PURGE_CHUNKS_MAX {
        let chunk = purge_chunk(pools).await?;
        purged += chunk;
        if chunk < IDEMPOTENCY_PURGE_ROWS_MAX as u64 {
            break;
        }
    }
    Ok(purged)
}

async fn purge_chunk(pools: &Pools) -> Result<u64, sqlx::Error> {
    let oldest_unix_ms = now_unix_ms() - IDEMPOTENCY_KEY_LIFETIME.as_millis() as i64;
    let mut conn = pools.acquire_writer().await?;
    if let Conn::Sqlite(_) = conn {
        // The oldest rows, in the time index's order, and their entries in the keys' index (an
        // entry that points at another row, a newer answer of the key, stays).
        let args = [Arg::Integer(oldest_unix_ms), Arg::Integer(IDEMPOTENCY_PURGE_ROWS_MAX)];
        conn.begin().await?;
        let purged = async {
            execute(&mut conn, SQLITE_PURGE_KEYS_INDEXED_SQL, &args).await?;
            execute(&mut conn, SQLITE_PURGE_KEYS_SQL, &args).await
        }
        .await;
        return match purged {
            Ok(purged) => conn.commit().await.map(|()| purged),
            Err(error) => {
                let _ = conn.rollback().await;
                Err(error)
            }
        };
    }
    execute(
        &mut conn,
        "DELETE FROM idempotency_keys WHERE (tenant_id, idempotency_key) IN \
         (SELECT tenant_id, idempotency_key FROM idempotency_keys WHERE created_unix_ms < $1 LIMIT $2)",
        &[Arg::Integer(oldest_unix_ms), Arg::Integer(IDEMPOTENCY_PURGE_ROWS_MAX)],
    )
    .await
}

/// The expired rows a purge deletes on SQLite (`$1` the oldest time kept, `$2` how many at most).
macro_rules! sqlite_expired_keys {
    ($columns:literal) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM idempotency_keys INDEXED BY idempotency_keys_by_age WHERE created_unix_ms < $1 \
             ORDER BY created_unix_ms, rowid LIMIT $2"
        )
    };
}
const SQLITE_PURGE_KEYS_INDEXED_SQL: &str = concat!(
    "DELETE FROM idempotency_keys_by_key WHERE (tenant_id, idempotency_key, key_row) IN (",
    sqlite_expired_keys!("tenant_id, idempotency_key, rowid"),
    ")"
);
const SQLITE_PURGE_KEYS_SQL: &str =
    concat!("DELETE FROM idempotency_keys WHERE rowid IN (", sqlite_expired_keys!("rowid"), ")");

/// Adds a queued write to the batch; answers whether the message asked to stop.
fn take(message: Message, batch: &mut Vec<Pending>) -> bool {
    match message {
        Message::Write(pending) => {
            batch.push(pending);
            false
        }
        Message::Stop => true,
        #[cfg(feature = "fault-injection")]
        Message::Panic => panic!("a writer panic injected by a test"),
    }
}

/// Takes the writes already queued into `batch`, up to `batch_writes_max`. Once stopping (a stop
/// among them, or `stopping` already), refuses new writes and takes every one still queued.
/// Answers whether to stop.
fn take_waiting(
    receiver: &mut mpsc::Receiver<Message>,
    batch: &mut Vec<Pending>,
    batch_writes_max: usize,
    mut stopping: bool,
) -> bool {
    while batch.len() < batch_writes_max {
        match receiver.try_recv() {
            Ok(message) => stopping |= take(message, batch),
            Err(_) => break,
        }
    }
    if stopping {
        // Refuse new writes, but finish those already queued.
        receiver.close();
        while let Ok(message) = receiver.try_recv() {
            take(message, batch);
        }
    }
    stopping
}

/// On PostgreSQL, the most advisory locks the writes of one batch take (as [`locks_of`]
/// estimates them): a write that would take a batch past it starts the next. An ASN locks each
/// pallet's SSCC and each of its lots, a receipt each lot it brings in, a recall each of its lots.
/// The server's lock table holds `max_locks_per_transaction` (64 by default) for each of its
/// connections, shared by all of them (6,400 with 100 connections): 50 ASNs of 1,000 pallets in
/// one transaction ran out of it ("out of shared memory"), and the batch was rolled back and
/// applied write by write. This leaves room for a second API node's batch and the readers'
/// locks. A write that takes all of it (an ASN of 1,000 pallets and as many lots), or more, is a
/// batch of its own.
/// SQLite takes no such locks: its batches are not split.
pub const BATCH_LOCKS_MAX: usize = 2_000;

/// The advisory locks a write takes on PostgreSQL, estimated (see [`BATCH_LOCKS_MAX`]): a
/// receipt of all of an ASN's pallets counts as many as an ASN may hold (its pallets are not read
/// here); a recall one per lot it recalls or holds; a return naming a zone or status one per
/// pick; a packing one per SSCC; any other stock or order write counts one (a transfer, a lot's status and a webhook
/// take one; an order's hand-over one per lot of its parcel, a few).
fn locks_of(write: &Write) -> usize {
    let change = match &write.mutation {
        Mutation::Fulfilment(change) | Mutation::FulfilmentRecorded { change, .. } => change,
        Mutation::Dispatch(_) => return 1,
        _ => return 0,
    };
    match change {
        FulfilmentMutation::CreateAsn { pallets, .. } => 2 * pallets.len(),
        FulfilmentMutation::ReceiveAsn { ssccs, .. } => {
            ssccs.as_ref().map_or(crate::fulfilment::ASN_PALLETS_MAX, Vec::len)
        }
        FulfilmentMutation::Recall { lots, hold, .. } => lots.len() + hold.len(),
        // A return naming a zone or status locks the lot of each pick.
        FulfilmentMutation::OrderEvent { units: Some(units), restock_to: Some(_), .. } => units.len().max(1),
        // A packing locks each pallet's SSCC.
        FulfilmentMutation::OrderEvent { to: orders::OrderStatus::Packed, ssccs, .. } => ssccs.len().max(1),
        _ => 1,
    }
}

/// Splits a batch into transactions of at most `size_max` writes and, when `locks_max` is given
/// (PostgreSQL), of at most that many advisory locks ([`locks_of`]), in order.
fn chunks(batch: Vec<Pending>, size_max: usize, locks_max: Option<usize>) -> Vec<Vec<Pending>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<Pending> = Vec::new();
    let mut locks = 0;
    for pending in batch {
        let more = if locks_max.is_some() { locks_of(&pending.write) } else { 0 };
        if !chunk.is_empty() && (chunk.len() == size_max || locks_max.is_some_and(|most| locks + more > most)) {
            chunks.push(std::mem::take(&mut chunk));
            locks = 0;
        }
        locks += more;
        chunk.push(pending);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// Applies a batch and answers its writes; answers whether a commit grew the transparency log.
/// `busy` when a write was waiting as it was gathered: its orders may leave their reserves out of
/// the balances (`fulfilment::BalancesBehind`).
/// `head`: how far its writes were applied ahead; `next`: gathers the writes waiting while it is
/// written and committed, and applies them ahead ([`Ahead`]).
async fn process(
    pools: &Pools,
    batch: Vec<Pending>,
    cache: &mut WriterCache,
    counters: &Counters,
    busy: bool,
    head: Option<AppliedAhead>,
    mut next: Option<Gatherer<'_>>,
) -> bool {
    let writes: Vec<&Write> = batch.iter().map(|pending| &pending.write).collect();
    let mut log_grew = false;
    let mut outcome = apply_in_transaction_with(pools, &writes, cache, counters, busy, head, next.as_mut()).await;
    if outcome.is_err()
        && let Some(Some(gathered)) = next.as_mut().map(|next| &mut *next.ahead)
        && gathered.applied.take().is_some()
    {
        // Applied on a cache this batch's rollback dropped: applied again in their own batch.
        counters.batches_applied_ahead_dropped.fetch_add(1, Ordering::Relaxed);
    }
    // Another API node changed stock this batch read: apply it again on fresh rows.
    for _ in 0..RACE_RETRIES_MAX {
        if !matches!(outcome, Err(BatchFailure::Raced)) {
            break;
        }
        outcome = apply_in_transaction(pools, &writes, cache, counters, busy).await;
    }
    let results = match outcome {
        Ok((results, grew)) => {
            log_grew = grew;
            results
        }
        Err(BatchFailure::Statement(error)) => {
            tracing::warn!(%error, writes = writes.len(), "a statement failed; applying the batch's writes one by one");
            counters.batches_applied_one_by_one.fetch_add(1, Ordering::Relaxed);
            let mut results = Vec::with_capacity(writes.len());
            for write in &writes {
                let mut single = apply_in_transaction(pools, std::slice::from_ref(write), cache, counters, false).await;
                for _ in 0..RACE_RETRIES_MAX {
                    let raced = match &single {
                        Err(BatchFailure::Statement(error)) => lost_a_race(error),
                        Err(BatchFailure::Raced) => true,
                        _ => false,
                    };
                    if !raced {
                        break;
                    }
                    // Another API node committed a conflicting row meanwhile: the retry's
                    // precondition checks see it and refuse (or replay) cleanly.
                    single = apply_in_transaction(pools, std::slice::from_ref(write), cache, counters, false).await;
                }
                results.push(match single {
                    Ok((mut one, grew)) => {
                        log_grew |= grew;
                        one.pop().unwrap_or(Err(WriteError::Database("no result".into())))
                    }
                    Err(BatchFailure::Statement(error)) => Err(WriteError::Database(error.to_string())),
                    Err(BatchFailure::Unavailable(error)) => Err(WriteError::Unavailable(error.to_string())),
                    Err(BatchFailure::Raced) => {
                        Err(WriteError::Unavailable("stock kept changing under this write; retry".into()))
                    }
                });
            }
            results
        }
        // The connection or the commit failed: retrying each write would wait on the same dead
        // database, and after a lost commit reply would apply writes twice. Nothing is retried.
        Err(BatchFailure::Unavailable(error)) => {
            tracing::error!(%error, writes = writes.len(), "the database failed; the batch is answered unavailable");
            writes.iter().map(|_| Err(WriteError::Unavailable(error.to_string()))).collect()
        }
        Err(BatchFailure::Raced) => writes
            .iter()
            .map(|_| Err(WriteError::Unavailable("stock kept changing under this batch; retry".into())))
            .collect(),
    };
    debug_assert_eq!(results.len(), batch.len());
    for (pending, result) in batch.into_iter().zip(results) {
        let _ = pending.reply.send(result);
    }
    log_grew
}

/// Writes gathered while the batch before them is written and committed, and what was applied of
/// them meanwhile. Described here for SQLite; on PostgreSQL the first writer task applies them on
/// the process's runtime while the server writes the batch, reads keys on an idle connection of the
/// pool, and corrects its cache once it is back (`fulfilment::BalanceCorrection`, ARCHITECTURE.md
/// "Writes applied ahead (PostgreSQL)").
///
/// On SQLite the writer's thread and SQLite's thread take turns on one core (see `core`): the
/// writer applies a batch, then SQLite's thread writes its rows and commits it. Once the batch's
/// balances are planned from the cache ([`crate::fulfilment::StockBatch::plan_flush`]), the writer
/// takes the writes waiting and, if they only place orders, a thread of its own on the other core
/// applies them on the cache, lent to it until the batch commits ([`Gatherer`]). The cache holds
/// the batch before's changes already (on SQLite it is the newest state there is). Each write is
/// applied until one would read the database: a connection to an empty database stands in for it
/// ([`detached_database`]), its statement fails, that write's changes are rolled back to its mark,
/// and it and those after it are applied in their batch's transaction as usual. So is a refused
/// write: its answer may depend on holds whose time passed, released only in the transaction. Nothing applied
/// ahead is written or answered before that transaction commits. Dropped, and applied again in
/// their transaction, when the batch before fails (its rollback drops the cache) or another
/// process wrote the file meanwhile (`writer_clock` moved).
///
/// What the database would have said, and where it is asked instead:
/// - the writes' idempotency keys: read before applying, on a read connection, for those committed,
///   and against the committing batch's writes; a write whose key is found waits for its batch's
///   transaction, with those after it;
/// - the batch's time: taken in the cache, and written in the batch's transaction (the clock's row
///   holds the batch before's time then, checked);
/// - the holds whose time passed: released in the batch's transaction, after the writes applied
///   ahead (which saw their units still held: a moment longer, never counted twice, and a write
///   they would have refused waits for the transaction).
pub(crate) struct Ahead {
    batch: Vec<Pending>,
    /// A stop was among the messages taken.
    stopping: bool,
    applied: Option<AppliedAhead>,
}

/// The first `results.len()` writes of an [`Ahead`], applied.
pub(crate) struct AppliedAhead {
    /// The time of the batch before them: what `writer_clock` must hold when their batch begins.
    previous_batch_unix_ms: i64,
    now_unix_ms: i64,
    deferring: bool,
    results: Vec<Result<WriteOutcome, WriteError>>,
    usage: BTreeMap<(String, &'static str), i64>,
    log: LogBatch,
    stock: StockBatch,
    keys: IdempotencyBatch,
    ahead_micros: u64,
}

impl AppliedAhead {
    /// Nothing applied yet, for a batch of `writes` at `now_unix_ms`.
    fn new(writes: usize, previous_batch_unix_ms: i64, now_unix_ms: i64, deferring: bool) -> AppliedAhead {
        let mut stock = StockBatch::default();
        stock.deferring = deferring;
        AppliedAhead {
            previous_batch_unix_ms,
            now_unix_ms,
            deferring,
            results: Vec::with_capacity(writes),
            usage: BTreeMap::new(),
            log: LogBatch::default(),
            stock,
            keys: IdempotencyBatch::default(),
            ahead_micros: 0,
        }
    }
}

/// Where writes are applied ahead ([`Ahead`]): a runtime, and a connection to an empty database
/// ([`detached_database`]). On SQLite a thread of its own, which ends when this is dropped, with
/// the writer (`_ends`); on PostgreSQL the process's runtime.
struct AheadThread {
    runtime: tokio::runtime::Handle,
    detached: sqlx::SqlitePool,
    _ends: Option<oneshot::Sender<()>>,
}

/// What a committing batch needs to gather the next writes ([`Ahead`]).
struct Gatherer<'g> {
    receiver: &'g Mutex<mpsc::Receiver<Message>>,
    detached: &'g sqlx::SqlitePool,
    /// Where the writes are applied ahead: a thread of its own, on another core than the writer's
    /// (where SQLite's thread writes the batch and commits it meanwhile, see `core`).
    runtime: &'g tokio::runtime::Handle,
    batch_writes_max: usize,
    ahead: &'g mut Option<Ahead>,
}

impl Gatherer<'_> {
    /// Takes the writes waiting (up to a batch) and, if they only place orders, starts applying
    /// them ahead on the thread of its own, with the cache, lent until [`Gatherer::land`].
    /// `committing` are the writes of the batch written meanwhile.
    fn launch(&mut self, pools: &Pools, committing: &[&Write], cache: &mut WriterCache) -> Option<Applying> {
        let Ok(mut receiver) = self.receiver.try_lock() else { return None };
        let mut batch = Vec::new();
        let stopping = take_waiting(&mut receiver, &mut batch, self.batch_writes_max, false);
        drop(receiver);
        if batch.is_empty() && !stopping {
            return None;
        }
        let sqlite = pools.kind() == crate::backend::BackendKind::Sqlite;
        if stopping
            || !cache.balances_behind.known
            || (sqlite && !cache.keys_tail.known)
            || !batch.iter().all(|pending| is_order(&pending.write))
        {
            *self.ahead = Some(Ahead { batch, stopping, applied: None });
            return None;
        }
        // On PostgreSQL, what other API nodes announced so far is forgotten first: their stock
        // is read in the batch's transaction (the committing batch's balances are planned).
        if let (Some(news), Some(writer)) = (pools.stock_news(), cache.news_writer) {
            news.forget_stale(writer, cache);
        }
        let committing: std::collections::HashSet<(String, String)> = committing
            .iter()
            .filter_map(|write| write.idempotency.as_ref())
            .map(|record| (record.tenant_id.to_string(), record.key.clone()))
            .collect();
        let (pools, detached, mut lent) = (pools.clone(), self.detached.clone(), std::mem::take(cache));
        let news_writer = lent.news_writer;
        Some(Applying(self.runtime.spawn(async move {
            use futures_util::FutureExt;
            let applying = std::panic::AssertUnwindSafe(apply_ahead(&pools, &detached, &batch, committing, &mut lent));
            match applying.catch_unwind().await {
                Ok(applied) => (batch, lent, applied),
                // A bug: the cache may be half changed, so it is dropped (as after a rollback), and
                // the writes are applied in their transaction.
                Err(_) => {
                    tracing::error!("applying writes ahead panicked; the cache is dropped");
                    let mut dropped = WriterCache::default();
                    dropped.news_writer = news_writer;
                    (batch, dropped, None)
                }
            }
        })))
    }

    /// Waits for the writes being applied ahead, and takes the cache back.
    async fn land(&mut self, applying: Option<Applying>, cache: &mut WriterCache) {
        let Some(Applying(applying)) = applying else { return };
        match applying.await {
            Ok((batch, lent, applied)) => {
                *cache = lent;
                *self.ahead = Some(Ahead { batch, stopping: false, applied });
            }
            // The thread ended (the runtime shut down): the cache stays empty (as after a rollback),
            // the writes' callers are answered that the writer stopped.
            Err(error) => tracing::error!(%error, "applying writes ahead failed"),
        }
    }
}

/// Writes being applied ahead, and the cache they were lent ([`Gatherer::launch`]).
struct Applying(tokio::task::JoinHandle<(Vec<Pending>, WriterCache, Option<AppliedAhead>)>);

/// What a batch writes besides its balances.
struct Batch<'b> {
    keys: &'b mut IdempotencyBatch,
    /// On SQLite, whether to extend the keys' index after the keys are written.
    keys_index_due: bool,
    stock: &'b mut StockBatch,
    log: &'b mut LogBatch,
    usage: &'b BTreeMap<(String, &'static str), i64>,
}

/// The SQL end of a batch: its rows written, then the commit. `cache` is `None` while it is lent
/// out to apply the next writes (SQLite, whose balances' write does not need it). Answers whether
/// the transparency log grew, and when the commit began.
async fn write_and_commit(
    conn: &mut Conn,
    plan: crate::fulfilment::FlushPlan,
    batch: Batch<'_>,
    cache: Option<&mut WriterCache>,
    index_due: bool,
    now_unix_ms: i64,
) -> Result<(bool, Instant), BatchFailure> {
    // (On PostgreSQL written before the balances' plan: nothing is left to write here.)
    batch.keys.flush(conn).await.map_err(statement_failure)?;
    if batch.keys_index_due
        && let Conn::Sqlite(connection) = &mut *conn
    {
        crate::idempotency::extend_keys_index(connection, now_unix_ms).await.map_err(statement_failure)?;
    }
    match batch.stock.write_flush(plan, cache, conn, now_unix_ms).await {
        Ok(Ok(())) => {}
        Ok(Err(_raced)) => return Err(BatchFailure::Raced),
        Err(error) => return Err(statement_failure(error)),
    }
    let log_grew = batch.log.flush(conn).await.map_err(statement_failure)?.is_some();
    record_usage(conn, batch.usage, now_unix_ms).await.map_err(statement_failure)?;
    if index_due {
        crate::fulfilment::build_reserves_index(conn, now_unix_ms).await.map_err(statement_failure)?;
    }
    let flushed_at = Instant::now();
    conn.commit().await.map_err(BatchFailure::Unavailable)?;
    Ok((log_grew, flushed_at))
}

/// Applies what it can of `batch` ahead ([`Ahead`]): `None` when nothing was.
async fn apply_ahead(
    pools: &Pools,
    detached: &sqlx::SqlitePool,
    batch: &[Pending],
    committing_keys: std::collections::HashSet<(String, String)>,
    cache: &mut WriterCache,
) -> Option<AppliedAhead> {
    let started = Instant::now();
    let writes: Vec<&Write> = batch.iter().map(|pending| &pending.write).collect();
    // A write whose key is stored (a retry), or is a write's still committing, is answered in its
    // batch's transaction.
    let mut keys = IdempotencyBatch::default();
    let mut reader = pools.try_acquire_ahead_reader()?;
    keys.prefetch(&mut reader, &writes, &cache.keys_tail).await.ok()?;
    drop(reader);
    let mut waiting = committing_keys;
    waiting.extend(keys.known.keys().cloned());
    let mut detached = Conn::Sqlite(detached.try_acquire()?);
    let previous_batch_unix_ms = cache.last_batch_time();
    let now_unix_ms = cache.next_batch_time(now_unix_ms());
    // (Balances are left behind on SQLite only.)
    let deferring = pools.kind() == crate::backend::BackendKind::Sqlite && cache.balances_behind.may_defer();
    let mut ahead = AppliedAhead::new(writes.len(), previous_batch_unix_ms, now_unix_ms, deferring);
    ahead.keys = keys;
    ahead.stock.defer_expiries(true);
    for write in &writes {
        if write
            .idempotency
            .as_ref()
            .is_some_and(|record| waiting.contains(&(record.tenant_id.to_string(), record.key.clone())))
        {
            break;
        }
        let mark = ahead.stock.mark();
        let mut state = BatchState { log: &mut ahead.log, stock: &mut ahead.stock, cache, keys: &mut ahead.keys };
        match apply_one(&mut detached, write, now_unix_ms, &mut ahead.usage, &mut state).await {
            Ok(Ok(outcome)) => ahead.results.push(Ok(outcome)),
            // It would read the database, or it is refused (perhaps for units that holds past their
            // time still hold, released in the transaction): it and the rest wait for their
            // transaction. (A refusal's changes are rolled back already, see `apply_fulfilment`.)
            Ok(Err(_)) | Err(_) => {
                ahead.stock.roll_back(mark, cache);
                break;
            }
        }
    }
    if ahead.results.is_empty() {
        return None;
    }
    let taken = cache.batch_time(now_unix_ms);
    debug_assert_eq!(taken, now_unix_ms);
    ahead.ahead_micros = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
    Some(ahead)
}

/// A pool of one connection to an empty database in memory, read-only: every statement that reads
/// or writes a table fails on it (no such table), so a write applied ahead stops at its first
/// statement ([`Ahead`]). (Placing an order runs no statement without a table.)
async fn detached_database() -> Result<sqlx::SqlitePool, sqlx::Error> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite::memory:")?.read_only(true);
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options)
        .await
}

/// Whether a write places an order (what may be applied ahead, and leave balances behind).
fn is_order(write: &Write) -> bool {
    matches!(write.mutation, Mutation::Fulfilment(FulfilmentMutation::PlaceOrder(_)))
}

/// Why a batch transaction did not commit.
#[derive(Debug)]
pub(crate) enum BatchFailure {
    /// A statement was refused (a constraint, a type): the batch rolled back; each write may be
    /// tried alone.
    Statement(sqlx::Error),
    /// The connection, the pool or the commit failed: the outcome of a commit may be unknown.
    Unavailable(sqlx::Error),
    /// A stock balance changed since this writer read it (another API node): rolled back; the
    /// batch may be applied again.
    Raced,
}

/// How often a batch (or a single write) is applied again after losing a stock race.
pub const RACE_RETRIES_MAX: usize = 5;

/// A refused statement, or a row that does not decode (corrupt data, or a step the writer found
/// inconsistent): the batch rolls back and its writes are tried one by one. Anything else (the
/// connection, the pool) leaves the outcome unknown.
fn statement_failure(error: sqlx::Error) -> BatchFailure {
    match error {
        sqlx::Error::Database(_) | sqlx::Error::Decode(_) => BatchFailure::Statement(error),
        other => BatchFailure::Unavailable(other),
    }
}

/// Whether a write lost a race to another API node: a row it meant to insert is there now, a row
/// it referred to is gone, a row it read changed ([`RowRaced`]), or PostgreSQL chose it as the
/// victim of a deadlock (`40P01`: two writers took the same locks in opposite orders) or of a
/// serialization failure (`40001`). Applied again alone, it reads afresh.
fn lost_a_race(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation()
        || database.is_foreign_key_violation()
        || matches!(database.code().as_deref(), Some(DEADLOCK_DETECTED | SERIALIZATION_FAILURE)))
        || matches!(error, sqlx::Error::Decode(inner) if inner.is::<RowRaced>())
}

/// PostgreSQL's SQLSTATE for a transaction chosen to break a deadlock.
const DEADLOCK_DETECTED: &str = "40P01";
/// PostgreSQL's SQLSTATE for a transaction that could not be serialized with another.
const SERIALIZATION_FAILURE: &str = "40001";

/// A row the write read and then changed was changed by another API node in between (an order
/// moved on, a reservation ended, a pallet received): the batch rolls back and its writes are
/// tried alone, each again while it keeps losing such a race (at most [`RACE_RETRIES_MAX`] times),
/// and the fresh read of its retry refuses or applies it cleanly.
#[derive(Debug)]
pub(crate) struct RowRaced(pub(crate) String);

impl fmt::Display for RowRaced {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} (another API node changed it meanwhile)", self.0)
    }
}

impl std::error::Error for RowRaced {}

/// The error of a write that lost a race for a row ([`RowRaced`]).
pub(crate) fn raced(what: impl fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(RowRaced(what.to_string())))
}

/// Applies writes in one transaction; answers each write's result and whether the transparency
/// log grew. `Err` means nothing was committed (or, for a failed commit, that the outcome is
/// unknown).
pub(crate) async fn apply_in_transaction(
    pools: &Pools,
    writes: &[&Write],
    cache: &mut WriterCache,
    counters: &Counters,
    busy: bool,
) -> Result<(Vec<Result<WriteOutcome, WriteError>>, bool), BatchFailure> {
    apply_in_transaction_with(pools, writes, cache, counters, busy, None, None).await
}

/// [`apply_in_transaction`], for writes the first of which were applied ahead (`head`), and
/// gathering the next ones while it commits (`next`).
async fn apply_in_transaction_with(
    pools: &Pools,
    writes: &[&Write],
    cache: &mut WriterCache,
    counters: &Counters,
    busy: bool,
    head: Option<AppliedAhead>,
    next: Option<&mut Gatherer<'_>>,
) -> Result<(Vec<Result<WriteOutcome, WriteError>>, bool), BatchFailure> {
    let outcome = apply_in_transaction_once(pools, writes, cache, counters, busy, head, next).await;
    if outcome.is_err() {
        // The cache may hold changes that were rolled back.
        cache.clear();
    }
    outcome
}

async fn apply_in_transaction_once(
    pools: &Pools,
    writes: &[&Write],
    cache: &mut WriterCache,
    counters: &Counters,
    busy: bool,
    mut head: Option<AppliedAhead>,
    next: Option<&mut Gatherer<'_>>,
) -> Result<(Vec<Result<WriteOutcome, WriteError>>, bool), BatchFailure> {
    debug_assert!(head.as_ref().is_none_or(|head| head.results.len() <= writes.len()));
    let mut conn = pools.acquire_writer().await.map_err(BatchFailure::Unavailable)?;
    conn.begin().await.map_err(BatchFailure::Unavailable)?;
    // Another process wrote this SQLite file since this writer's last batch (an admin command of
    // the CLI; at the start, any): what this writer cached, the balances it left behind among it,
    // may no longer be so. (One server per SQLite file still: this only keeps such a command from
    // corrupting the server's ledger.) What was applied ahead on that cache is dropped too.
    if let Conn::Sqlite(connection) = &mut conn {
        match sqlx::query_as::<_, (i64,)>("SELECT last_batch_unix_ms FROM writer_clock")
            .fetch_one(&mut **connection)
            .await
        {
            Ok((last,))
                if last != head.as_ref().map_or(cache.last_batch_time(), |head| head.previous_batch_unix_ms) =>
            {
                cache.clear();
                if head.take().is_some() {
                    counters.batches_applied_ahead_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(_) => {}
            Err(error) => {
                let _ = conn.rollback().await;
                return Err(statement_failure(error));
            }
        }
    }
    // What the table of balances lacks, when the writer does not know it (at its start, after a
    // rollback, after another process wrote): written from the movements, before this batch takes
    // its time.
    if !cache.balances_behind.known {
        if let Err(error) = crate::fulfilment::catch_up_balances(&mut conn).await {
            let _ = conn.rollback().await;
            return Err(statement_failure(error));
        }
        cache.balances_behind.written();
    }
    // Likewise the keys the keys' index lacks (`crate::idempotency::KeysTail`). The tail stays
    // unknown until this batch commits: until then only this transaction sees the index hold
    // them, and no writes are applied ahead (their reads would find a key in neither).
    let keys_caught_up = pools.kind() == crate::backend::BackendKind::Sqlite && !cache.keys_tail.known;
    if keys_caught_up
        && let Conn::Sqlite(connection) = &mut conn
        && let Err(error) = crate::idempotency::catch_up_keys_index(connection).await
    {
        let _ = conn.rollback().await;
        return Err(statement_failure(error));
    }
    // A busy writer's batch of orders only may leave their reserves out of the balances; any
    // other batch writes those left out before with its own (`fulfilment::BalancesBehind`).
    let deferring = match &head {
        Some(head) => head.deferring,
        None => {
            busy && pools.kind() == crate::backend::BackendKind::Sqlite
                && !writes.is_empty()
                && writes.iter().all(|write| is_order(write))
                && cache.balances_behind.may_defer()
        }
    };
    let clock = match &head {
        Some(head) => batch_time_ahead(&mut conn, head.now_unix_ms, deferring).await.inspect(|time| {
            warn_of_clock_lead(cache, *time, now_unix_ms());
        }),
        None => batch_clock(&mut conn, cache, now_unix_ms(), deferring).await,
    };
    let now_unix_ms = match clock {
        Ok(time) => time,
        Err(error) => {
            let _ = conn.rollback().await;
            return Err(statement_failure(error));
        }
    };
    let AppliedAhead { mut usage, mut results, mut log, mut stock, mut keys, ahead_micros, .. } = match head {
        Some(head) => head,
        None => AppliedAhead::new(writes.len(), cache.last_batch_time(), now_unix_ms, deferring),
    };
    let applied_ahead = results.len();
    let mut failure = None;
    let started = Instant::now();
    // The holds whose time passed are released before the rest of the batch (after those applied
    // ahead, which saw them still held).
    if applied_ahead > 0 {
        stock.defer_expiries(false);
        if let Err(error) = stock.expire_due_once(&mut conn, cache, now_unix_ms).await {
            let _ = conn.rollback().await;
            return Err(statement_failure(error));
        }
    }
    let batch_writes = writes;
    // The writes left to apply.
    let writes = &writes[applied_ahead..];
    // The batch's idempotency keys and its orders' stock, each read in a few queries.
    let wanted: Vec<(String, String)> = writes
        .iter()
        .filter_map(|write| match &write.mutation {
            Mutation::Fulfilment(FulfilmentMutation::PlaceOrder(order)) => Some((&write.tenant_id, order)),
            _ => None,
        })
        .flat_map(|(tenant, order)| order.lines.iter().map(move |line| (tenant.to_string(), line.gtin.to_string())))
        .collect();
    let mut keys_read_at = started;
    let no_tail = crate::idempotency::KeysTail::indexed_now();
    let tail = if keys_caught_up { &no_tail } else { &cache.keys_tail };
    let prefetched = match keys.prefetch(&mut conn, writes, tail).await {
        Ok(()) => {
            keys_read_at = Instant::now();
            stock.prefetch(cache, &mut conn, &wanted).await
        }
        Err(error) => Err(error),
    };
    let prefetched_at = Instant::now();
    if let Err(error) = prefetched {
        let _ = conn.rollback().await;
        return Err(statement_failure(error));
    }
    for write in writes {
        let mut state = BatchState { log: &mut log, stock: &mut stock, cache, keys: &mut keys };
        match apply_one(&mut conn, write, now_unix_ms, &mut usage, &mut state).await {
            Ok(result) => results.push(result),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    if let Some(error) = failure {
        let _ = conn.rollback().await;
        return Err(statement_failure(error));
    }
    let applied_at = Instant::now();
    // On PostgreSQL the keys first, as ever: then the balances' rows are locked (`plan_flush`) in
    // the same order by every node's batches (a key another node's batch inserts waits here, before
    // any balance is locked).
    if pools.kind() == crate::backend::BackendKind::Postgres
        && let Err(error) = keys.flush(&mut conn).await
    {
        let _ = conn.rollback().await;
        return Err(statement_failure(error));
    }
    // What the balances' write takes from the cache, taken now: on SQLite the cache then goes to
    // apply the next writes ahead while this batch is written and committed.
    let plan = match stock.plan_flush(cache, &mut conn).await {
        Ok(Ok(plan)) => plan,
        Ok(Err(_raced)) => {
            let _ = conn.rollback().await;
            return Err(BatchFailure::Raced);
        }
        Err(error) => {
            let _ = conn.rollback().await;
            return Err(statement_failure(error));
        }
    };
    // Stock that came in, and products, sites and lanes written, are announced to the other API
    // nodes, delivered when this commits (`stock_news`).
    if let (Some(news), Conn::Postgres(connection)) = (pools.stock_news(), &mut conn) {
        let mut changed = plan.stocked();
        changed.extend(crate::stock_news::StockNews::changes_of(writes));
        changed.sort_unstable();
        changed.dedup();
        if !changed.is_empty()
            && let Err(error) = news.announce(connection, cache.news_writer, &changed).await
        {
            let _ = conn.rollback().await;
            return Err(statement_failure(error));
        }
    }
    // (Not in a batch of no writes: the idle writer's catch-up of the balances.)
    let index_due = !batch_writes.is_empty()
        && crate::fulfilment::reserves_index_due(&conn, cache, stock.reserves_written + stock.reserves_pending());
    let keys_index_due = pools.kind() == crate::backend::BackendKind::Sqlite
        && !batch_writes.is_empty()
        && !keys_caught_up
        && cache.keys_tail.index_due(keys.new_keys.len());
    let mut next = next;
    let applying = match next.as_deref_mut() {
        Some(gatherer) => gatherer.launch(pools, batch_writes, cache),
        None => None,
    };
    let lent = applying.is_some();
    let written = write_and_commit(
        &mut conn,
        plan,
        Batch { keys: &mut keys, keys_index_due, stock: &mut stock, log: &mut log, usage: &usage },
        (!lent).then_some(&mut *cache),
        index_due,
        now_unix_ms,
    )
    .await;
    let mut gathered = None;
    if let Some(gatherer) = next {
        gatherer.land(applying, cache).await;
        gathered = gatherer.ahead.as_mut();
    }
    let (log_grew, flushed_at) = match written {
        Ok(written) => written,
        Err(failure) => {
            let _ = conn.rollback().await;
            return Err(failure);
        }
    };
    // On PostgreSQL, the balances as written, where another API node moved them meanwhile, into
    // the cache that was lent out (it holds the writes applied ahead since, read before). When
    // that node took units the writes applied ahead reserved too, those are dropped, with the
    // cache they changed, and applied again in their own batch on fresh rows.
    let ahead_stock =
        gathered.as_deref_mut().and_then(|ahead| ahead.applied.as_mut()).map(|applied| &mut applied.stock);
    if !stock.correct_lent_cache(cache, ahead_stock) {
        tracing::debug!("another API node took units the writes applied ahead reserved: they are applied again");
        cache.clear();
        if gathered.and_then(|ahead| ahead.applied.take()).is_some() {
            counters.batches_applied_ahead_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    let reserves_index_built = index_due;
    if pools.kind() == crate::backend::BackendKind::Sqlite {
        cache.reserves_committed(stock.reserves_written, reserves_index_built);
        if keys_caught_up {
            cache.keys_tail.indexed();
        }
        cache.keys_tail.committed(std::mem::take(&mut keys.new_keys), now_unix_ms, keys_index_due);
    }
    if stock.left_behind {
        counters.batches_leaving_balances_behind.fetch_add(1, Ordering::Relaxed);
    }
    if results.is_empty() {
        return Ok((Vec::new(), false));
    }
    let micros = |duration: Duration| duration.as_micros().min(u128::from(u64::MAX)) as u64;
    let phases = WriterPhases {
        writes: results.len() as u64,
        keys_micros: micros(keys_read_at - started),
        stock_read_micros: micros(prefetched_at - keys_read_at),
        apply_micros: micros(applied_at - prefetched_at),
        flush_micros: micros(flushed_at - applied_at),
        commit_micros: micros(flushed_at.elapsed()),
        applied_ahead: applied_ahead as u64,
        ahead_micros,
    };
    counters.add_phases(&phases);
    tracing::debug!(?phases, "batch committed");
    Ok((results, log_grew))
}

/// The batch's time ([`WriterCache::batch_time`]). On SQLite the time of the last batch is also
/// kept in the database (`writer_clock`, read and moved on in the batch's transaction), so a batch
/// comes after every batch committed before it even across a restart with the clock stepped back,
/// or from another process writing the same file. (On PostgreSQL the journal orders by
/// transaction id, see `fulfilment::settled_transactions`.)
async fn batch_clock(
    conn: &mut Conn,
    cache: &mut WriterCache,
    wall_unix_ms: i64,
    deferring: bool,
) -> Result<i64, sqlx::Error> {
    let time = batch_time(conn, cache, wall_unix_ms, deferring).await?;
    warn_of_clock_lead(cache, time, wall_unix_ms);
    Ok(time)
}

/// Warns, now and then, while batch times run ahead of the wall clock.
fn warn_of_clock_lead(cache: &mut WriterCache, time: i64, wall_unix_ms: i64) {
    if let Some(lead_ms) = cache.clock_lead_to_report(time, wall_unix_ms, Instant::now()) {
        tracing::warn!(
            lead_ms,
            "batch times run ahead of the wall clock (it stepped back, or another writer's clock is ahead): \
             they keep the commit order and move on 1 ms a batch until the wall clock catches up; \
             orders placed meanwhile carry these times"
        );
    }
}

/// The clock's statement on SQLite: the batch's time is at least `$1` and after the last batch's;
/// `balances_through_unix_ms` moves with it unless `$2` (deferring).
const SQLITE_WRITER_CLOCK_SQL: &str = "UPDATE writer_clock SET last_batch_unix_ms = MAX(last_batch_unix_ms + 1, $1), \
     balances_through_unix_ms = CASE WHEN $2 THEN balances_through_unix_ms \
     ELSE MAX(last_batch_unix_ms + 1, $1) END WHERE singleton = 1 RETURNING last_batch_unix_ms";

/// Writes the time taken for writes applied ahead ([`Ahead`]) to the clock: it is after the
/// clock's (checked when the transaction began), so the clock takes it exactly.
/// On PostgreSQL the batch's time is the writer's alone (see [`batch_time`]): the time taken.
async fn batch_time_ahead(conn: &mut Conn, taken_unix_ms: i64, deferring: bool) -> Result<i64, sqlx::Error> {
    let Conn::Sqlite(connection) = conn else {
        debug_assert!(!deferring, "balances are left behind on SQLite only");
        return Ok(taken_unix_ms);
    };
    let (time,): (i64,) = sqlx::query_as(SQLITE_WRITER_CLOCK_SQL)
        .bind(taken_unix_ms)
        .bind(deferring)
        .fetch_one(&mut **connection)
        .await?;
    if time != taken_unix_ms {
        return Err(sqlx::Error::Decode(
            format!("the batch clock gave {time} for the time {taken_unix_ms} taken ahead").into(),
        ));
    }
    Ok(time)
}

/// On SQLite the same statement moves `balances_through_unix_ms` to the batch's time unless the
/// batch is `deferring` (`fulfilment::BalancesBehind`): a batch that writes its balances holds
/// every reserve up to its own.
async fn batch_time(
    conn: &mut Conn,
    cache: &mut WriterCache,
    wall_unix_ms: i64,
    deferring: bool,
) -> Result<i64, sqlx::Error> {
    match conn {
        Conn::Sqlite(connection) => {
            // Each expression reads the row as it was.
            let (time,): (i64,) = sqlx::query_as(SQLITE_WRITER_CLOCK_SQL)
                .bind(cache.next_batch_time(wall_unix_ms))
                .bind(deferring)
                .fetch_one(&mut **connection)
                .await?;
            // At least the time asked: taking it moves the cache's clock to it exactly.
            let taken = cache.batch_time(time);
            debug_assert_eq!(taken, time);
            Ok(taken)
        }
        Conn::Postgres(_) => Ok(cache.batch_time(wall_unix_ms)),
    }
}

/// Arguments of a statement, bound in order.
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptionalText(Option<&'a str>),
    Integer(i64),
    OptionalInteger(Option<i64>),
    OptionalReal(Option<f64>),
    Real(f64),
    Boolean(bool),
    Bytes(&'a [u8]),
}

macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(value) => query.bind(*value),
                Arg::OptionalText(value) => query.bind(*value),
                Arg::Integer(value) => query.bind(*value),
                Arg::OptionalInteger(value) => query.bind(*value),
                Arg::OptionalReal(value) => query.bind(*value),
                Arg::Real(value) => query.bind(*value),
                Arg::Boolean(value) => query.bind(*value),
                Arg::Bytes(value) => query.bind(*value),
            };
        }
        query
    }};
}

/// A value of a buffered row.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(String),
    OptionalText(Option<String>),
    Integer(i64),
    OptionalInteger(Option<i64>),
    Bytes(Vec<u8>),
}

impl Value {
    pub(crate) fn arg(&self) -> Arg<'_> {
        match self {
            Value::Text(text) => Arg::Text(text),
            Value::OptionalText(text) => Arg::OptionalText(text.as_deref()),
            Value::Integer(value) => Arg::Integer(*value),
            Value::OptionalInteger(value) => Arg::OptionalInteger(*value),
            Value::Bytes(bytes) => Arg::Bytes(bytes),
        }
    }
}

/// The most values bound in one multi-row INSERT (SQLite allows 32,766; PostgreSQL 65,535).
const VALUES_PER_STATEMENT_MAX: usize = 30_000;
/// The most rows of one multi-row statement the writer builds.
pub(crate) const ROWS_PER_STATEMENT_MAX: usize = 128;

/// One multi-row statement of SQLite's: the rows it writes or looks up, and its shape, the rows
/// it has room for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) rows: std::ops::Range<usize>,
    pub(crate) shape: usize,
}

impl Run {
    /// Room the rows leave, filled with rows that match or insert nothing.
    pub(crate) fn padding(&self) -> usize {
        self.shape - self.rows.len()
    }
}

/// Splits `rows` items of `width` values each into SQLite statements: as few as the limits allow
/// (`ROWS_PER_STATEMENT_MAX` rows, `VALUES_PER_STATEMENT_MAX` values), each shaped for a power of
/// two rows and padded up to it. A batch of any size is then written with one statement per table
/// (one hand-over to SQLite's thread, each costing two context switches), in a handful of shapes,
/// each prepared once per connection and then taken from the driver's statement cache.
pub(crate) fn padded_runs(rows: usize, width: usize) -> Vec<Run> {
    let most = ROWS_PER_STATEMENT_MAX.min(VALUES_PER_STATEMENT_MAX / width.max(1)).max(1);
    let most = 1usize << most.ilog2();
    (0..rows)
        .step_by(most)
        .map(|start| {
            let end = (start + most).min(rows);
            Run { rows: start..end, shape: (end - start).next_power_of_two() }
        })
        .collect()
}

/// The rows a query answers for some of a tenant's keys (GTINs, idempotency keys), in few
/// statement shapes: on PostgreSQL one statement binding the keys as one array, on SQLite one
/// list of up to 128 placeholders, padded with NULLs to a power of two (`padded_runs`). `sql_of`
/// gets the condition on the key column (`= ANY($2)`, `IN (?, ?, ?)`) after the tenant's
/// placeholder (`$1`, `?`).
pub(crate) async fn fetch_for_keys<R>(
    conn: &mut Conn,
    tenant: &str,
    keys: &[&str],
    sql_of: impl Fn(&str, &str) -> String,
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    let mut rows = Vec::new();
    match conn {
        Conn::Postgres(connection) => {
            if !keys.is_empty() {
                // Not prepared: planned for each run with the keys at hand. A plan cached while the
                // table was small scans the tenant's whole key range and filters it (a cost that
                // grows with every order), until an ANALYZE happens to replace it.
                let sql = sql_of("$1", "= ANY($2)");
                rows =
                    sqlx::query_as(&sql).bind(tenant).bind(keys).persistent(false).fetch_all(&mut **connection).await?;
            }
        }
        Conn::Sqlite(connection) => {
            for run in padded_runs(keys.len(), 1) {
                let sql = sql_of("?", &format!("IN ({})", vec!["?"; run.shape].join(", ")));
                let mut query = sqlx::query_as(&sql).bind(tenant);
                for key in &keys[run.rows.clone()] {
                    query = query.bind(*key);
                }
                // NULL matches no key.
                for _ in 0..run.padding() {
                    query = query.bind(None::<&str>);
                }
                rows.extend(query.fetch_all(&mut **connection).await?);
            }
        }
    }
    Ok(rows)
}

/// Runs a statement over some keys (SSCCs of one ASN …) in few statement shapes, and answers the
/// rows it changed: `sql_of` gets the condition on the key column, whose placeholders follow
/// `args`' (`$1` … `$N`): on PostgreSQL `= ANY($N+1)`, the keys bound as one array; on SQLite
/// `IN ($N+1, …)`, runs of up to 128 keys padded with NULLs to a power of two (`padded_runs`).
pub(crate) async fn execute_for_keys(
    conn: &mut Conn,
    args: &[Arg<'_>],
    keys: &[&str],
    sql_of: impl Fn(&str) -> String,
) -> Result<u64, sqlx::Error> {
    let first = args.len() + 1;
    let mut changed = 0;
    match conn {
        Conn::Postgres(connection) => {
            if !keys.is_empty() {
                let sql = sql_of(&format!("= ANY(${first})"));
                let query = bind_args!(sqlx::query(&sql), args).bind(keys);
                changed = query.execute(&mut **connection).await?.rows_affected();
                count_rows_written(&sql, changed);
            }
        }
        Conn::Sqlite(connection) => {
            for run in padded_runs(keys.len(), 1) {
                let placeholders: Vec<String> = (first..first + run.shape).map(|number| format!("${number}")).collect();
                let sql = sql_of(&format!("IN ({})", placeholders.join(", ")));
                let mut query = bind_args!(sqlx::query(&sql), args);
                for key in &keys[run.rows.clone()] {
                    query = query.bind(*key);
                }
                // NULL matches no key.
                for _ in 0..run.padding() {
                    query = query.bind(None::<&str>);
                }
                let run_changed = query.execute(&mut **connection).await?.rows_affected();
                count_rows_written(&sql, run_changed);
                changed += run_changed;
            }
        }
    }
    Ok(changed)
}

/// The most rows of one `INSERT … SELECT FROM UNNEST(…)` on PostgreSQL.
pub(crate) const UNNEST_ROWS_MAX: usize = 4096;

/// One column of rows, as the array PostgreSQL's `UNNEST` takes.
enum ColumnArray<'a> {
    Text(Vec<Option<&'a str>>),
    Integer(Vec<Option<i64>>),
    Bytes(Vec<Option<&'a [u8]>>),
}

impl<'a> ColumnArray<'a> {
    /// The column's values, all of one type (a writer's rows are built by one function each).
    fn of(rows: &'a [Vec<Value>], column: usize) -> Result<ColumnArray<'a>, sqlx::Error> {
        let mixed = || sqlx::Error::Protocol(format!("column {column} of a bulk insert mixes value types"));
        let mut array = match rows.first().map(|row| &row[column]) {
            Some(Value::Integer(_) | Value::OptionalInteger(_)) => ColumnArray::Integer(Vec::with_capacity(rows.len())),
            Some(Value::Bytes(_)) => ColumnArray::Bytes(Vec::with_capacity(rows.len())),
            _ => ColumnArray::Text(Vec::with_capacity(rows.len())),
        };
        for row in rows {
            match (&mut array, &row[column]) {
                (ColumnArray::Text(values), Value::Text(text)) => values.push(Some(text)),
                (ColumnArray::Text(values), Value::OptionalText(text)) => values.push(text.as_deref()),
                (ColumnArray::Integer(values), Value::Integer(value)) => values.push(Some(*value)),
                (ColumnArray::Integer(values), Value::OptionalInteger(value)) => values.push(*value),
                (ColumnArray::Bytes(values), Value::Bytes(bytes)) => values.push(Some(bytes)),
                _ => return Err(mixed()),
            }
        }
        Ok(array)
    }

    fn sql_type(&self) -> &'static str {
        match self {
            ColumnArray::Text(_) => "text[]",
            ColumnArray::Integer(_) => "int8[]",
            ColumnArray::Bytes(_) => "bytea[]",
        }
    }
}

/// Inserts rows of `columns`: on PostgreSQL one `INSERT … SELECT FROM UNNEST(…)` per 4,096 rows
/// (one statement shape and one round trip per table, whatever the row count), on SQLite one
/// `INSERT … SELECT` from a multi-row `VALUES` per 128 rows, padded to a power of two with rows
/// its `WHERE` leaves out (`padded_runs`).
pub(crate) async fn insert_rows(
    conn: &mut Conn,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<(), sqlx::Error> {
    debug_assert!(rows.iter().all(|row| row.len() == columns.len()));
    if let Conn::Postgres(connection) = conn {
        for chunk in rows.chunks(UNNEST_ROWS_MAX) {
            let arrays =
                (0..columns.len()).map(|column| ColumnArray::of(chunk, column)).collect::<Result<Vec<_>, _>>()?;
            let parameters: Vec<String> = arrays
                .iter()
                .enumerate()
                .map(|(index, array)| format!("${}::{}", index + 1, array.sql_type()))
                .collect();
            let sql =
                format!("INSERT INTO {table} ({}) SELECT * FROM UNNEST({})", columns.join(", "), parameters.join(", "));
            let mut query = sqlx::query(&sql);
            for array in arrays {
                query = match array {
                    ColumnArray::Text(values) => query.bind(values),
                    ColumnArray::Integer(values) => query.bind(values),
                    ColumnArray::Bytes(values) => query.bind(values),
                };
            }
            let inserted = query.execute(&mut **connection).await?.rows_affected();
            count_rows_written(&sql, inserted);
        }
        return Ok(());
    }
    // Each row of the VALUES list starts with a marker, 1 for a row to insert and NULL for padding.
    let width = columns.len() + 1;
    for run in padded_runs(rows.len(), width) {
        let sql = sqlite_insert_sql(table, columns, run.shape);
        let mut args = Vec::with_capacity(run.shape * width);
        for row in &rows[run.rows.clone()] {
            debug_assert_eq!(row.len(), columns.len());
            args.push(Arg::Integer(1));
            args.extend(row.iter().map(Value::arg));
        }
        args.extend((0..run.padding() * width).map(|_| Arg::OptionalInteger(None)));
        let inserted = execute(conn, &sql, &args).await?;
        if inserted != run.rows.len() as u64 {
            return Err(sqlx::Error::Protocol(format!(
                "{table}: {inserted} rows inserted of {} (padding must insert nothing)",
                run.rows.len()
            )));
        }
    }
    Ok(())
}

/// The multi-row INSERT of [`insert_rows`] on SQLite for `shape` rows of `columns` (each row led
/// by its marker), built once per thread, table, columns and shape: a statement of 128 rows of a
/// dozen columns is about 5 KB of text, which was written for every batch.
fn sqlite_insert_sql(table: &str, columns: &[&str], shape: usize) -> Arc<str> {
    /// A statement's text, with the columns and shape it was built for.
    struct Built {
        columns: Vec<String>,
        shape: usize,
        sql: Arc<str>,
    }
    thread_local! {
        static BUILT: std::cell::RefCell<std::collections::HashMap<String, Vec<Built>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    let matches = |built: &Built| built.shape == shape && built.columns.iter().eq(columns.iter());
    if let Some(sql) = BUILT.with_borrow(|built| {
        built
            .get(table)
            .and_then(|of_table| of_table.iter().find(|built| matches(built)))
            .map(|built| built.sql.clone())
    }) {
        return sql;
    }
    let width = columns.len() + 1;
    let selected: Vec<String> = (2..=width).map(|number| format!("column{number}")).collect();
    let mut sql = format!("INSERT INTO {table} ({}) SELECT {} FROM (VALUES ", columns.join(", "), selected.join(", "));
    let row = format!("({})", vec!["?"; width].join(", "));
    for index in 0..shape {
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&row);
    }
    sql.push_str(") WHERE column1 IS NOT NULL");
    let sql: Arc<str> = sql.into();
    BUILT.with_borrow_mut(|built| {
        built.entry(table.to_owned()).or_default().push(Built {
            columns: columns.iter().map(|column| column.to_string()).collect(),
            shape,
            sql: sql.clone(),
        });
    });
    sql
}

pub(crate) async fn execute(conn: &mut Conn, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
    let changed = on_conn!(conn, connection => bind_args!(sqlx::query(sql), args).execute(&mut *connection).await.map(|done| done.rows_affected()))?;
    count_rows_written(sql, changed);
    Ok(changed)
}

tokio::task_local! {
    /// The rows the write being applied changed through [`execute`], [`execute_for_keys`] and
    /// [`insert_rows`] (checked in debug builds: a refused write changed none, see `apply_one`).
    static ROWS_WRITTEN: std::cell::Cell<u64>;
}

/// Counts `changed` rows of `sql` if it writes (a SELECT's count on PostgreSQL is not a change).
fn count_rows_written(sql: &str, changed: u64) {
    if cfg!(debug_assertions) && changed > 0 {
        let verb = sql.trim_start().get(..6).unwrap_or("").to_ascii_uppercase();
        if matches!(verb.as_str(), "INSERT" | "UPDATE" | "DELETE") {
            let _ = ROWS_WRITTEN.try_with(|written| written.set(written.get() + changed));
        }
    }
}

/// The rows the write being applied has changed so far (0 outside a write, and in release builds).
pub(crate) fn rows_written() -> u64 {
    ROWS_WRITTEN.try_with(std::cell::Cell::get).unwrap_or(0)
}

/// A delivery's claim of what it delivers (an order webhook, an EPCIS subscription): the row is
/// due again only at `lease_until_unix_ms`, so no other API node sends it meanwhile, and only if
/// it is still due at `seen_next_attempt_unix_ms`, as the delivery read it. The outcome is then
/// recorded only while the row still holds the lease.
pub(crate) struct Claim<'a> {
    /// The table and its key column (after `tenant_id`): constants of the store, never input.
    pub table: &'static str,
    pub id_column: &'static str,
    pub id: &'a str,
    pub seen_next_attempt_unix_ms: i64,
    pub lease_until_unix_ms: i64,
}

impl Claim<'_> {
    /// Answers whether this delivery took the claim (not if another one did since it read).
    pub async fn take(&self, conn: &mut Conn, tenant: &str) -> Result<bool, sqlx::Error> {
        debug_assert!(self.lease_until_unix_ms > self.seen_next_attempt_unix_ms, "a lease ends after what it claims");
        let sql = format!(
            "UPDATE {} SET next_attempt_unix_ms = $1 WHERE tenant_id = $2 AND {} = $3 AND next_attempt_unix_ms = $4",
            self.table, self.id_column
        );
        let claimed = execute(
            conn,
            &sql,
            &[
                Arg::Integer(self.lease_until_unix_ms),
                Arg::Text(tenant),
                Arg::Text(self.id),
                Arg::Integer(self.seen_next_attempt_unix_ms),
            ],
        )
        .await?;
        Ok(claimed == 1)
    }
}

pub(crate) async fn exists(conn: &mut Conn, sql: &str, args: &[Arg<'_>]) -> Result<bool, sqlx::Error> {
    on_conn!(conn, connection => bind_args!(sqlx::query(sql), args).fetch_optional(&mut *connection).await.map(|row| row.is_some()))
}

async fn record_usage(
    conn: &mut Conn,
    usage: &BTreeMap<(String, &'static str), i64>,
    now_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    let day = utc_day(now_unix_ms);
    for ((tenant_id, unit), quantity) in usage {
        execute(
            conn,
            "INSERT INTO usage_counters (tenant_id, day, unit, quantity) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, day, unit) DO UPDATE SET quantity = usage_counters.quantity + excluded.quantity",
            &[Arg::Text(tenant_id), Arg::Text(&day), Arg::Text(unit), Arg::Integer(*quantity)],
        )
        .await?;
    }
    Ok(())
}

type Usage<'u> = BTreeMap<(String, &'static str), i64>;

/// What the writes of one batch share: the log's appends, the stock changes, the writer's cache.
pub(crate) struct BatchState<'a> {
    pub log: &'a mut LogBatch,
    pub stock: &'a mut StockBatch,
    pub cache: &'a mut WriterCache,
    pub keys: &'a mut IdempotencyBatch,
}

/// A stored answer: (request SHA-256, status, body, created).
/// A stored key: the request's digest, the answer's status, its body's encoding and stored bytes
/// (decoded only for a replay, see `store::idempotency`), and when it was stored.
type StoredKey = (Vec<u8>, i64, String, Vec<u8>, i64);

/// The batch's idempotency keys: those already stored, read in a few queries when the batch
/// starts (`fetch_for_keys`), and the new ones, inserted in bulk when it ends.
#[derive(Debug, Default)]
pub(crate) struct IdempotencyBatch {
    pub(crate) known: std::collections::HashMap<(String, String), StoredKey>,
    new: Vec<Vec<Value>>,
    /// The new keys, (tenant, key): on SQLite the tail's once committed
    /// ([`crate::idempotency::KeysTail`]).
    new_keys: Vec<(String, String)>,
    /// Expired keys a write of this batch uses again, with when their answer was stored: deleted
    /// before the new ones are inserted.
    expired: Vec<(String, String, i64)>,
}

impl IdempotencyBatch {
    /// Reads the stored answers of the writes' keys. On SQLite `tail` is the writer's: a key it
    /// holds is probed in the tail, the others are looked up in the keys' index
    /// (`crate::idempotency`).
    async fn prefetch(&mut self, conn: &mut Conn, writes: &[&Write], tail: &KeysTail) -> Result<(), sqlx::Error> {
        let sqlite = matches!(conn, Conn::Sqlite(_));
        if sqlite && !tail.known {
            // (The batch catches the index up before it reads; what applies ahead waits for it.)
            return Err(sqlx::Error::Protocol("the idempotency keys' tail is not known".into()));
        }
        // Per tenant, `idempotency_key IN (…)` on SQLite, `= ANY($2)` on PostgreSQL: the key's
        // index answers it (a row-value `(tenant_id, idempotency_key) IN (…)` would scan the
        // table on SQLite).
        let mut by_tenant: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut in_tail: Vec<(&str, &str, i64)> = Vec::new();
        for record in writes.iter().filter_map(|write| write.idempotency.as_ref()) {
            let (tenant, key) = (record.tenant_id.as_str(), record.key.as_str());
            match tail.stored_at(tenant, key).filter(|_| sqlite) {
                Some(stored_unix_ms) => in_tail.push((tenant, key, stored_unix_ms)),
                None => by_tenant.entry(tenant).or_default().push(key),
            }
        }
        #[derive(sqlx::FromRow)]
        struct Row {
            idempotency_key: String,
            request_sha256: Vec<u8>,
            response_status: i64,
            response_encoding: String,
            response_body: Vec<u8>,
            created_unix_ms: i64,
        }
        let mut found: Vec<(&str, Row)> = Vec::new();
        for (tenant, keys) in by_tenant {
            let rows: Vec<Row> = fetch_for_keys(conn, tenant, &keys, |tenant, condition| {
                if sqlite {
                    crate::idempotency::sqlite_indexed_keys_sql(tenant, condition)
                } else {
                    format!(
                        "SELECT idempotency_key, request_sha256, response_status, response_encoding, response_body, \
                         created_unix_ms \
                         FROM idempotency_keys WHERE tenant_id = {tenant} AND idempotency_key {condition}"
                    )
                }
            })
            .await?;
            found.extend(rows.into_iter().map(|row| (tenant, row)));
        }
        if let Conn::Sqlite(connection) = conn {
            for (tenant, key, stored_unix_ms) in in_tail {
                let row: Option<Row> = sqlx::query_as(crate::idempotency::SQLITE_TAIL_KEY_SQL)
                    .bind(tenant)
                    .bind(key)
                    .bind(stored_unix_ms)
                    .fetch_optional(&mut **connection)
                    .await?;
                found.extend(row.map(|row| (tenant, row)));
            }
        }
        for (tenant, row) in found {
            self.known.insert(
                (tenant.to_owned(), row.idempotency_key),
                (
                    row.request_sha256,
                    row.response_status,
                    row.response_encoding,
                    row.response_body,
                    row.created_unix_ms,
                ),
            );
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut Conn) -> Result<(), sqlx::Error> {
        for (tenant, key, stored_unix_ms) in std::mem::take(&mut self.expired) {
            let reused = self.new.iter().any(|row| {
                matches!((&row[0], &row[1]), (Value::Text(row_tenant), Value::Text(row_key)) if *row_tenant == tenant && *row_key == key)
            });
            if !reused {
                continue;
            }
            if matches!(conn, Conn::Sqlite(_)) {
                // Its row by its primary key (indexed or in the tail), and its index entry if any.
                execute(
                    conn,
                    "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_unix_ms = $3 AND idempotency_key = $2",
                    &[Arg::Text(&tenant), Arg::Text(&key), Arg::Integer(stored_unix_ms)],
                )
                .await?;
                execute(
                    conn,
                    "DELETE FROM idempotency_keys_by_key WHERE tenant_id = $1 AND idempotency_key = $2",
                    &[Arg::Text(&tenant), Arg::Text(&key)],
                )
                .await?;
            } else {
                execute(
                    conn,
                    "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2",
                    &[Arg::Text(&tenant), Arg::Text(&key)],
                )
                .await?;
            }
        }
        const COLUMNS: &[&str] = &[
            "tenant_id",
            "idempotency_key",
            "request_sha256",
            "response_status",
            "response_encoding",
            "response_body",
            "created_unix_ms",
        ];
        insert_rows(conn, "idempotency_keys", COLUMNS, &std::mem::take(&mut self.new)).await
    }
}

async fn apply_one(
    conn: &mut Conn,
    write: &Write,
    now_unix_ms: i64,
    usage: &mut Usage<'_>,
    state: &mut BatchState<'_>,
) -> Result<Result<WriteOutcome, WriteError>, sqlx::Error> {
    if let Some(record) = &write.idempotency {
        let tenant = record.tenant_id.as_str();
        let known_key = (tenant.to_owned(), record.key.clone());
        if let Some((request_sha256, status, encoding, stored_body, created_unix_ms)) = state.keys.known.get(&known_key)
        {
            let oldest_unix_ms = now_unix_ms - IDEMPOTENCY_KEY_LIFETIME.as_millis() as i64;
            if *created_unix_ms >= oldest_unix_ms {
                if request_sha256[..] != record.request_sha256[..] {
                    return Ok(Err(WriteError::IdempotencyMismatch));
                }
                // A damaged answer fails this write only, not the batch.
                return Ok(match crate::idempotency::decode(encoding, stored_body.clone()) {
                    Ok(body) => Ok(WriteOutcome::Replayed(StoredResponse { status: *status as u16, body })),
                    Err(error) => Err(WriteError::Database(format!("stored data is invalid: {error}"))),
                });
            }
            // Expired: the key is free again (its row is replaced when the batch ends, so a refused
            // write leaves it as it was).
            let stored_unix_ms = *created_unix_ms;
            state.keys.known.remove(&known_key);
            state.keys.expired.push((known_key.0.clone(), known_key.1.clone(), stored_unix_ms));
        }
    }
    let (applied, written) = if cfg!(debug_assertions) {
        ROWS_WRITTEN
            .scope(std::cell::Cell::new(0), async {
                let applied = apply_mutation(conn, &write.tenant_id, &write.mutation, now_unix_ms, usage, state).await;
                (applied, rows_written())
            })
            .await
    } else {
        (apply_mutation(conn, &write.tenant_id, &write.mutation, now_unix_ms, usage, state).await, 0)
    };
    // A write has no savepoint of its own: a refused one must have changed no rows. (Fulfilment
    // writes check from their mark, after the lapsed holds' release, in `apply_fulfilment`; an
    // alarm evaluation may leave the version rows its checks made, which say what no row said.)
    if let Ok(Err(refused)) = &applied
        && !matches!(
            write.mutation,
            Mutation::Fulfilment(_) | Mutation::FulfilmentRecorded { .. } | Mutation::Alarms(_)
        )
    {
        debug_assert_eq!(written, 0, "a refused write changed rows: {refused}");
    }
    let applied = match applied? {
        Ok(applied) => applied,
        Err(refused) => return Ok(Err(refused)),
    };
    if let Some(record) = &write.idempotency {
        let response = (record.respond)(&applied);
        let (encoding, stored_body) = crate::idempotency::encode(&response.body);
        state.keys.new.push(vec![
            Value::Text(record.tenant_id.to_string()),
            Value::Text(record.key.clone()),
            Value::Bytes(record.request_sha256.to_vec()),
            Value::Integer(i64::from(response.status)),
            Value::Text(encoding.to_owned()),
            Value::Bytes(stored_body),
            Value::Integer(now_unix_ms),
        ]);
        state.keys.new_keys.push((record.tenant_id.to_string(), record.key.clone()));
        // A retry later in this batch replays this answer.
        state.keys.known.insert(
            (record.tenant_id.to_string(), record.key.clone()),
            (
                record.request_sha256.to_vec(),
                i64::from(response.status),
                crate::idempotency::IDENTITY.to_owned(),
                response.body,
                now_unix_ms,
            ),
        );
    }
    Ok(Ok(WriteOutcome::Applied(applied)))
}

/// The statement for a put: an upsert, except for `Create`, which inserts plainly so that a row
/// another API node created meanwhile fails the unique key instead of being overwritten.
pub(crate) fn put_sql(upsert: &'static str, mode: PutMode) -> &'static str {
    match mode {
        PutMode::Create => upsert.split(" ON CONFLICT").next().unwrap_or(upsert),
        PutMode::Upsert | PutMode::Update => upsert,
    }
}

/// Claims a GTIN or GLN for the tenant in its platform-wide registry; answers the holder.
async fn claim(conn: &mut Conn, table: &str, column: &str, value: &str, tenant: &str) -> Result<String, sqlx::Error> {
    let insert = format!("INSERT INTO {table} ({column}, tenant_id) VALUES ($1, $2) ON CONFLICT ({column}) DO NOTHING");
    execute(conn, &insert, &[Arg::Text(value), Arg::Text(tenant)]).await?;
    let select = format!("SELECT tenant_id FROM {table} WHERE {column} = $1");
    let (holder,): (String,) =
        on_conn!(conn, connection => sqlx::query_as(&select).bind(value).fetch_one(&mut *connection).await)?;
    Ok(holder)
}

/// What a mutation needs to know about the row it puts: whether it exists, and the mode.
pub(crate) fn check_mode(mode: PutMode, exists: bool, what: String) -> Result<(), WriteError> {
    match (mode, exists) {
        (PutMode::Create, true) => Err(WriteError::Conflict(what)),
        (PutMode::Update, false) => Err(WriteError::NotFound),
        _ => Ok(()),
    }
}

fn count_created(usage: &mut Usage<'_>, tenant_id: &TenantId, created: bool) {
    if created {
        *usage.entry((tenant_id.to_string(), "storage_rows_created")).or_default() += 1;
    }
}

fn count_deleted(usage: &mut Usage<'_>, tenant_id: &TenantId) {
    *usage.entry((tenant_id.to_string(), "storage_rows_deleted")).or_default() += 1;
}

const VISIBLE_LOCATION: &str = "SELECT 1 FROM locations WHERE tenant_id IN ($1, 'network') AND gln = $2";

async fn apply_mutation(
    conn: &mut Conn,
    tenant_id: &TenantId,
    mutation: &Mutation,
    now_unix_ms: i64,
    usage: &mut Usage<'_>,
    state: &mut BatchState<'_>,
) -> Result<Result<Applied, WriteError>, sqlx::Error> {
    let tenant = tenant_id.as_str();
    let applied = |created| Ok(Ok(Applied { created, at_unix_ms: now_unix_ms, outcome: None, rows: 0 }));
    macro_rules! refuse {
        ($error:expr) => {
            return Ok(Err($error))
        };
    }
    macro_rules! require {
        ($result:expr) => {
            if let Err(error) = $result {
                return Ok(Err(error));
            }
        };
    }
    if mutation.changes_network() {
        // Sites and lanes as this writer task last read them are stale now (other tasks, on this
        // API node or another, hear of it: `stock_news`).
        state.cache.forget_networks(None);
    }
    match mutation {
        Mutation::PutTenant { name, mode } => {
            let found = exists(conn, "SELECT 1 FROM tenants WHERE tenant_id = $1", &[Arg::Text(tenant)]).await?;
            require!(check_mode(*mode, found, format!("tenant {tenant}")));
            execute(
                conn,
                put_sql(
                    "INSERT INTO tenants (tenant_id, name, created_unix_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET name = excluded.name",
                    *mode,
                ),
                &[Arg::Text(tenant), Arg::Text(name), Arg::Integer(now_unix_ms)],
            )
            .await?;
            applied(!found)
        }
        Mutation::VerifyCompanyPrefix { company_prefix } => {
            if !exists(conn, "SELECT 1 FROM tenants WHERE tenant_id = $1", &[Arg::Text(tenant)]).await? {
                refuse!(WriteError::NotFound);
            }
            // GS1 allots prefixes that do not nest: one inside another tenant's is a mistake.
            let overlapping: Vec<(String, String)> = on_conn!(conn, connection => sqlx::query_as(
                "SELECT company_prefix, tenant_id FROM verified_company_prefixes WHERE tenant_id <> $2 \
                 AND (substr($1, 1, length(company_prefix)) = company_prefix OR substr(company_prefix, 1, length($1)) = $1)")
                .bind(company_prefix).bind(tenant).fetch_all(&mut *connection).await)?;
            if let Some((held, _)) = overlapping.first() {
                refuse!(WriteError::Refused {
                    code: "conflict",
                    detail: format!(
                        "GS1 company prefix {held} is verified as another tenant's, and overlaps {company_prefix}"
                    ),
                    errors: vec![("/company_prefix".into(), format!("overlaps {held}, another tenant's"))],
                });
            }
            let inserted = execute(
                conn,
                "INSERT INTO verified_company_prefixes (company_prefix, tenant_id, verified_unix_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (company_prefix) DO NOTHING",
                &[Arg::Text(company_prefix), Arg::Text(tenant), Arg::Integer(now_unix_ms)],
            )
            .await?;
            execute(
                conn,
                "UPDATE gtin_owners SET verified = 1 WHERE tenant_id = $1 AND verified = 0 \
                 AND substr(gtin, 2, length($2)) = $2",
                &[Arg::Text(tenant), Arg::Text(company_prefix)],
            )
            .await?;
            applied(inserted == 1)
        }
        Mutation::CreateKey { key_id, name, scopes, secret_sha256 } => {
            if !exists(conn, "SELECT 1 FROM tenants WHERE tenant_id = $1", &[Arg::Text(tenant)]).await? {
                refuse!(WriteError::NotFound);
            }
            let (keys,): (i64,) = on_conn!(conn, connection => {
                sqlx::query_as("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1").bind(tenant).fetch_one(&mut *connection).await
            })?;
            if keys >= KEYS_PER_TENANT_MAX {
                refuse!(WriteError::Limit(format!(
                    "a tenant has at most {KEYS_PER_TENANT_MAX} keys, revoked ones included"
                )));
            }
            let inserted = execute(
                conn,
                "INSERT INTO api_keys (tenant_id, key_id, name, scopes, secret_sha256, created_unix_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, key_id) DO NOTHING",
                &[Arg::Text(tenant), Arg::Text(key_id), Arg::Text(name), Arg::Text(&Scope::join(scopes)), Arg::Bytes(secret_sha256), Arg::Integer(now_unix_ms)],
            )
            .await?;
            if inserted == 0 {
                refuse!(WriteError::Conflict(format!("key {key_id}")));
            }
            applied(true)
        }
        Mutation::RevokeKey { key_id } => {
            let revoked = execute(
                conn,
                "UPDATE api_keys SET revoked_unix_ms = $3 WHERE tenant_id = $1 AND key_id = $2 AND revoked_unix_ms IS NULL",
                &[Arg::Text(tenant), Arg::Text(key_id), Arg::Integer(now_unix_ms)],
            )
            .await?;
            if revoked == 0
                && !exists(
                    conn,
                    "SELECT 1 FROM api_keys WHERE tenant_id = $1 AND key_id = $2",
                    &[Arg::Text(tenant), Arg::Text(key_id)],
                )
                .await?
            {
                refuse!(WriteError::NotFound);
            }
            applied(false)
        }
        Mutation::PutProduct { product, mode } => {
            let gtin = product.gtin.as_str();
            if let Some(party) = &product.supplier_party_id
                && !exists(
                    conn,
                    "SELECT 1 FROM parties WHERE tenant_id = $1 AND party_id = $2",
                    &[Arg::Text(tenant), Arg::Text(party.as_str())],
                )
                .await?
            {
                refuse!(WriteError::UnknownReference { field: "/supplier_party_id", value: party.to_string() });
            }
            let stored = stored_class(conn, tenant, gtin).await?;
            let found = stored.is_some();
            require!(check_mode(*mode, found, format!("product {gtin}")));
            if !found {
                // A GTIN under a GS1 company prefix verified as a brand's is that brand's alone;
                // one under the claimer's own is verified with the claim.
                let holders: Vec<(String,)> = on_conn!(conn, connection => sqlx::query_as(
                    "SELECT tenant_id FROM verified_company_prefixes WHERE substr($1, 2, length(company_prefix)) = company_prefix")
                    .bind(gtin).fetch_all(&mut *connection).await)?;
                if holders.iter().any(|(holder,)| holder != tenant) {
                    refuse!(WriteError::Conflict(format!(
                        "GTIN {gtin}, under a GS1 company prefix verified as another brand's,"
                    )));
                }
                if claim(conn, "gtin_owners", "gtin", gtin, tenant).await? != tenant {
                    refuse!(WriteError::Conflict(format!("GTIN {gtin}, registered by another brand,")));
                }
                if !holders.is_empty() {
                    execute(
                        conn,
                        "UPDATE gtin_owners SET verified = 1 WHERE gtin = $1 AND tenant_id = $2",
                        &[Arg::Text(gtin), Arg::Text(tenant)],
                    )
                    .await?;
                }
            }
            // A new temperature class must keep the product's units where they lie, as a zone's
            // new range must keep what it holds (`put_location`).
            if stored.is_some_and(|stored| stored != product.temperature_class) {
                let class = &product.temperature_class;
                if let Some((gln, zone)) =
                    crate::fulfilment::stock_unsuited_to(state.stock, state.cache, conn, tenant, gtin, class).await?
                {
                    let what = format!(
                        "product {gtin} (its units in zone {zone} of location {gln} would not be kept in range as \
                         {}: move them first)",
                        class.name()
                    );
                    refuse!(WriteError::InUse(what, "the stock ledger".into()));
                }
            }
            let range = product.temperature_class.range();
            let custom = matches!(product.temperature_class, network::TemperatureClass::Custom(_));
            let nutrition = product.nutrition.clone().unwrap_or_default();
            let country = product.country_of_origin.map(|country| country.to_string());
            execute(
                conn,
                put_sql(
"INSERT INTO products (tenant_id, gtin, name, brand, description, temperature_class, temperature_min_celsius, \
                 temperature_max_celsius, shelf_life_days, energy_kj, energy_kcal, fat_g, saturates_g, carbohydrate_g, sugars_g, \
                 protein_g, salt_g, country_of_origin, supplier_party_id, min_remaining_shelf_life_days, created_unix_ms, updated_unix_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $21, $20, $20) \
                 ON CONFLICT (tenant_id, gtin) DO UPDATE SET name = excluded.name, brand = excluded.brand, \
                 description = excluded.description, temperature_class = excluded.temperature_class, \
                 temperature_min_celsius = excluded.temperature_min_celsius, temperature_max_celsius = excluded.temperature_max_celsius, \
                 shelf_life_days = excluded.shelf_life_days, energy_kj = excluded.energy_kj, energy_kcal = excluded.energy_kcal, \
                 fat_g = excluded.fat_g, saturates_g = excluded.saturates_g, carbohydrate_g = excluded.carbohydrate_g, \
                 sugars_g = excluded.sugars_g, protein_g = excluded.protein_g, salt_g = excluded.salt_g, \
                 country_of_origin = excluded.country_of_origin, supplier_party_id = excluded.supplier_party_id, \
                 min_remaining_shelf_life_days = excluded.min_remaining_shelf_life_days, updated_unix_ms = excluded.updated_unix_ms", *mode),
                &[
                    Arg::Text(tenant),
                    Arg::Text(gtin),
                    Arg::Text(&product.name),
                    Arg::OptionalText(product.brand.as_deref()),
                    Arg::OptionalText(product.description.as_deref()),
                    Arg::Text(product.temperature_class.name()),
                    Arg::OptionalReal(if custom { range.min_celsius } else { None }),
                    Arg::OptionalReal(if custom { range.max_celsius } else { None }),
                    Arg::OptionalInteger(product.shelf_life_days.map(i64::from)),
                    Arg::OptionalReal(nutrition.energy_kj),
                    Arg::OptionalReal(nutrition.energy_kcal),
                    Arg::OptionalReal(nutrition.fat_g),
                    Arg::OptionalReal(nutrition.saturates_g),
                    Arg::OptionalReal(nutrition.carbohydrate_g),
                    Arg::OptionalReal(nutrition.sugars_g),
                    Arg::OptionalReal(nutrition.protein_g),
                    Arg::OptionalReal(nutrition.salt_g),
                    Arg::OptionalText(country.as_deref()),
                    Arg::OptionalText(product.supplier_party_id.as_ref().map(PartyId::as_str)),
                    Arg::Integer(now_unix_ms),
                    Arg::OptionalInteger(product.min_remaining_shelf_life_days.map(i64::from)),
                ],
            )
            .await?;
            // Its rules (temperature class, shelf life) as this writer cached them are stale.
            state.cache.reread_product(conn, tenant, gtin).await?;
            count_created(usage, tenant_id, !found);
            applied(!found)
        }
        Mutation::DeleteProduct { gtin } => {
            // The ledger and the recalls name the product for good: its stock would lose its
            // product, and its recalled lots their public status (`gs1:recallStatus` reads
            // through the GTIN's owner). This batch's new balances are in the writer's cache only.
            if state.cache.holds_balances(tenant, gtin.as_str()) {
                refuse!(WriteError::InUse(format!("product {gtin}"), "the stock ledger".into()));
            }
            for (sql, by) in [
                ("SELECT 1 FROM stock_balances WHERE tenant_id = $1 AND gtin = $2 LIMIT 1", "the stock ledger"),
                ("SELECT 1 FROM recalled_lots WHERE tenant_id = $1 AND gtin = $2 LIMIT 1", "a recall"),
            ] {
                if exists(conn, sql, &[Arg::Text(tenant), Arg::Text(gtin.as_str())]).await? {
                    refuse!(WriteError::InUse(format!("product {gtin}"), by.into()));
                }
            }
            let deleted = execute(
                conn,
                "DELETE FROM products WHERE tenant_id = $1 AND gtin = $2",
                &[Arg::Text(tenant), Arg::Text(gtin.as_str())],
            )
            .await?;
            if deleted == 0 {
                refuse!(WriteError::NotFound);
            }
            // A recall's hold on a lot of it that had no stock goes with it.
            execute(
                conn,
                "DELETE FROM held_lots WHERE tenant_id = $1 AND gtin = $2",
                &[Arg::Text(tenant), Arg::Text(gtin.as_str())],
            )
            .await?;
            // The GTIN is let go only if no event names it: the events' visibility follows the
            // GTIN's holder, so another tenant registering it would read this brand's events
            // (and its partners'). The brand may register it again.
            let named = exists(
                conn,
                "SELECT 1 FROM epcis_event_identifiers WHERE gtin = $1 LIMIT 1",
                &[Arg::Text(gtin.as_str())],
            )
            .await?;
            if !named {
                execute(
                    conn,
                    "DELETE FROM gtin_owners WHERE gtin = $1 AND tenant_id = $2",
                    &[Arg::Text(gtin.as_str()), Arg::Text(tenant)],
                )
                .await?;
            }
            state.cache.forget_gtin(tenant, gtin.as_str());
            count_deleted(usage, tenant_id);
            applied(false)
        }
        Mutation::PutParty { party, mode } => {
            let party_id = party.party_id.as_str();
            let found = exists(
                conn,
                "SELECT 1 FROM parties WHERE tenant_id = $1 AND party_id = $2",
                &[Arg::Text(tenant), Arg::Text(party_id)],
            )
            .await?;
            require!(check_mode(*mode, found, format!("party {party_id}")));
            let country = party.country.map(|country| country.to_string());
            execute(
                conn,
                put_sql(
"INSERT INTO parties (tenant_id, party_id, kind, name, person_name, publish_name, gln, country, created_unix_ms, updated_unix_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (tenant_id, party_id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
                 person_name = excluded.person_name, publish_name = excluded.publish_name, gln = excluded.gln, \
                 country = excluded.country, updated_unix_ms = excluded.updated_unix_ms", *mode),
                &[
                    Arg::Text(tenant),
                    Arg::Text(party_id),
                    Arg::Text(party.kind.name()),
                    Arg::Text(&party.name),
                    Arg::OptionalText(party.person_name.as_deref()),
                    Arg::Boolean(party.publish_name),
                    Arg::OptionalText(party.gln.as_ref().map(gs1::Gln::as_str)),
                    Arg::OptionalText(country.as_deref()),
                    Arg::Integer(now_unix_ms),
                ],
            )
            .await?;
            count_created(usage, tenant_id, !found);
            applied(!found)
        }
        Mutation::DeleteParty { party_id } => {
            let id = party_id.as_str();
            if !exists(
                conn,
                "SELECT 1 FROM parties WHERE tenant_id = $1 AND party_id = $2",
                &[Arg::Text(tenant), Arg::Text(id)],
            )
            .await?
            {
                refuse!(WriteError::NotFound);
            }
            if exists(
                conn,
                "SELECT 1 FROM products WHERE tenant_id = $1 AND supplier_party_id = $2",
                &[Arg::Text(tenant), Arg::Text(id)],
            )
            .await?
            {
                refuse!(WriteError::InUse(format!("party {id}"), "a product".into()));
            }
            if exists(
                conn,
                "SELECT 1 FROM locations WHERE tenant_id = $1 AND party_id = $2",
                &[Arg::Text(tenant), Arg::Text(id)],
            )
            .await?
            {
                refuse!(WriteError::InUse(format!("party {id}"), "a location".into()));
            }
            let deleted = execute(
                conn,
                "DELETE FROM parties WHERE tenant_id = $1 AND party_id = $2",
                &[Arg::Text(tenant), Arg::Text(id)],
            )
            .await?;
            if deleted == 0 {
                refuse!(WriteError::NotFound);
            }
            count_deleted(usage, tenant_id);
            applied(false)
        }
        Mutation::PutLocation { location, mode } => {
            put_location(conn, tenant_id, location, *mode, now_unix_ms, usage, state).await
        }
        Mutation::DeleteLocation { gln } => {
            let gln = gln.as_str();
            if !lock_location(conn, tenant, gln).await? {
                refuse!(WriteError::NotFound);
            }
            let lanes_sql = if tenant_id.is_network() {
                // A network location may carry any tenant's lanes.
                "SELECT 1 FROM lanes WHERE $1 <> '' AND (from_gln = $2 OR to_gln = $2)"
            } else {
                "SELECT 1 FROM lanes WHERE tenant_id = $1 AND (from_gln = $2 OR to_gln = $2)"
            };
            if exists(conn, lanes_sql, &[Arg::Text(tenant), Arg::Text(gln)]).await? {
                refuse!(WriteError::InUse(format!("location {gln}"), "a lane".into()));
            }
            let devices_sql = if tenant_id.is_network() {
                "SELECT 1 FROM devices WHERE $1 <> '' AND location_gln = $2"
            } else {
                "SELECT 1 FROM devices WHERE tenant_id = $1 AND location_gln = $2"
            };
            if exists(conn, devices_sql, &[Arg::Text(tenant), Arg::Text(gln)]).await? {
                refuse!(WriteError::InUse(format!("location {gln}"), "a device".into()));
            }
            // Stock held there, and pallets announced to it, would lose their place: the stock
            // could no longer be allocated, nor the pallets received (a network location holds
            // any tenant's).
            let (stock_sql, announced_sql) = if tenant_id.is_network() {
                (
                    "SELECT 1 FROM stock_balances WHERE location_gln = $2 AND on_hand > 0 AND $1 <> ''",
                    "SELECT 1 FROM asns a JOIN asn_pallets p ON p.tenant_id = a.tenant_id AND p.asn_id = a.asn_id \
                     WHERE a.location_gln = $2 AND p.received_unix_ms IS NULL AND $1 <> ''",
                )
            } else {
                (
                    "SELECT 1 FROM stock_balances WHERE tenant_id = $1 AND location_gln = $2 AND on_hand > 0",
                    "SELECT 1 FROM asns a JOIN asn_pallets p ON p.tenant_id = a.tenant_id AND p.asn_id = a.asn_id \
                     WHERE a.tenant_id = $1 AND a.location_gln = $2 AND p.received_unix_ms IS NULL",
                )
            };
            // Stored, or put there by an earlier write of this batch (written when it ends).
            let pending = state.stock.held_at(state.cache, (!tenant_id.is_network()).then_some(tenant), gln);
            if !pending.is_empty() || exists(conn, stock_sql, &[Arg::Text(tenant), Arg::Text(gln)]).await? {
                refuse!(WriteError::InUse(format!("location {gln}"), STOCK_HELD_THERE.into()));
            }
            if exists(conn, announced_sql, &[Arg::Text(tenant), Arg::Text(gln)]).await? {
                refuse!(WriteError::InUse(
                    format!("location {gln}"),
                    "pallets announced to it and not received".into()
                ));
            }
            let deleted = execute(
                conn,
                "DELETE FROM locations WHERE tenant_id = $1 AND gln = $2",
                &[Arg::Text(tenant), Arg::Text(gln)],
            )
            .await?;
            if deleted == 0 {
                refuse!(WriteError::NotFound);
            }
            execute(
                conn,
                "DELETE FROM gln_owners WHERE gln = $1 AND tenant_id = $2",
                &[Arg::Text(gln), Arg::Text(tenant)],
            )
            .await?;
            count_deleted(usage, tenant_id);
            applied(false)
        }
        Mutation::PutLane { lane, mode } => {
            for (field, gln) in [("/from", &lane.from), ("/to", &lane.to)] {
                if !exists(conn, VISIBLE_LOCATION, &[Arg::Text(tenant), Arg::Text(gln.as_str())]).await? {
                    refuse!(WriteError::UnknownReference { field, value: gln.to_string() });
                }
            }
            let lane_id = lane.lane_id.as_str();
            let found = exists(
                conn,
                "SELECT 1 FROM lanes WHERE tenant_id = $1 AND lane_id = $2",
                &[Arg::Text(tenant), Arg::Text(lane_id)],
            )
            .await?;
            require!(check_mode(*mode, found, format!("lane {lane_id}")));
            execute(
                conn,
                put_sql(
"INSERT INTO lanes (tenant_id, lane_id, from_gln, to_gln, transit_minutes, departures, temperature_classes, \
                 cost_per_pallet_cents, created_unix_ms, updated_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (tenant_id, lane_id) DO UPDATE SET from_gln = excluded.from_gln, to_gln = excluded.to_gln, \
                 transit_minutes = excluded.transit_minutes, departures = excluded.departures, \
                 temperature_classes = excluded.temperature_classes, cost_per_pallet_cents = excluded.cost_per_pallet_cents, \
                 updated_unix_ms = excluded.updated_unix_ms", *mode),
                &[
                    Arg::Text(tenant),
                    Arg::Text(lane_id),
                    Arg::Text(lane.from.as_str()),
                    Arg::Text(lane.to.as_str()),
                    Arg::Integer(i64::from(lane.transit_minutes)),
                    Arg::Text(&join_list(&lane.departures)),
                    Arg::Text(&lane.temperature_classes.join(" ")),
                    Arg::Integer(lane.cost_per_pallet_cents as i64),
                    Arg::Integer(now_unix_ms),
                ],
            )
            .await?;
            count_created(usage, tenant_id, !found);
            applied(!found)
        }
        Mutation::DeleteLane { lane_id } => {
            let deleted = execute(
                conn,
                "DELETE FROM lanes WHERE tenant_id = $1 AND lane_id = $2",
                &[Arg::Text(tenant), Arg::Text(lane_id.as_str())],
            )
            .await?;
            if deleted == 0 {
                refuse!(WriteError::NotFound);
            }
            count_deleted(usage, tenant_id);
            applied(false)
        }
        Mutation::PutDevice { device, mode } => {
            if let Some(gln) = &device.location_gln {
                if !exists(conn, VISIBLE_LOCATION, &[Arg::Text(tenant), Arg::Text(gln.as_str())]).await? {
                    refuse!(WriteError::UnknownReference { field: "/location_gln", value: gln.to_string() });
                }
                if let Some(zone) = &device.zone
                    && !exists(
                        conn,
                        "SELECT 1 FROM location_zones WHERE tenant_id IN ($1, 'network') AND gln = $2 AND zone_name = $3",
                        &[Arg::Text(tenant), Arg::Text(gln.as_str()), Arg::Text(zone.as_str())],
                    )
                    .await?
                {
                    refuse!(WriteError::UnknownReference { field: "/zone", value: zone.to_string() });
                }
            }
            let device_id = device.device_id.as_str();
            let found = exists(
                conn,
                "SELECT 1 FROM devices WHERE tenant_id = $1 AND device_id = $2",
                &[Arg::Text(tenant), Arg::Text(device_id)],
            )
            .await?;
            require!(check_mode(*mode, found, format!("device {device_id}")));
            let calibrated_on = device.calibrated_on.map(|date| date.to_string());
            execute(
                conn,
                put_sql(
"INSERT INTO devices (tenant_id, device_id, kind, name, location_gln, zone_name, reading_interval_seconds, created_unix_ms, updated_unix_ms, calibrated_on) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
                 ON CONFLICT (tenant_id, device_id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
                 location_gln = excluded.location_gln, zone_name = excluded.zone_name, \
                 reading_interval_seconds = excluded.reading_interval_seconds, updated_unix_ms = excluded.updated_unix_ms, \
                 calibrated_on = excluded.calibrated_on", *mode),
                &[
                    Arg::Text(tenant),
                    Arg::Text(device_id),
                    Arg::Text(device.kind.name()),
                    Arg::Text(&device.name),
                    Arg::OptionalText(device.location_gln.as_ref().map(gs1::Gln::as_str)),
                    Arg::OptionalText(device.zone.as_ref().map(network::ZoneName::as_str)),
                    Arg::Integer(i64::from(device.reading_interval_seconds)),
                    Arg::Integer(now_unix_ms),
                    Arg::OptionalText(calibrated_on.as_deref()),
                ],
            )
            .await?;
            count_created(usage, tenant_id, !found);
            applied(!found)
        }
        Mutation::PutProductLink { gtin, link } => {
            let gtin = gtin.as_str();
            if !exists(
                conn,
                "SELECT 1 FROM products WHERE tenant_id = $1 AND gtin = $2",
                &[Arg::Text(tenant), Arg::Text(gtin)],
            )
            .await?
            {
                refuse!(WriteError::NotFound);
            }
            let (count,): (i64,) = on_conn!(conn, connection => {
                sqlx::query_as("SELECT COUNT(*) FROM product_links WHERE tenant_id = $1 AND gtin = $2")
                    .bind(tenant)
                    .bind(gtin)
                    .fetch_one(&mut *connection)
                    .await
            })?;
            if count >= ProductLink::LINKS_PER_PRODUCT_MAX as i64 {
                refuse!(WriteError::Limit(format!(
                    "a product has at most {} links",
                    ProductLink::LINKS_PER_PRODUCT_MAX
                )));
            }
            let inserted = execute(
                conn,
                "INSERT INTO product_links (tenant_id, gtin, link_id, link_type, href, title, language, media_type, created_unix_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id, gtin, link_id) DO NOTHING",
                &[
                    Arg::Text(tenant),
                    Arg::Text(gtin),
                    Arg::Text(&link.link_id),
                    Arg::Text(&link.link_type),
                    Arg::Text(&link.href),
                    Arg::Text(&link.title),
                    Arg::OptionalText(link.language.as_deref()),
                    Arg::OptionalText(link.media_type.as_deref()),
                    Arg::Integer(now_unix_ms),
                ],
            )
            .await?;
            if inserted == 0 {
                refuse!(WriteError::Conflict(format!("link {}", link.link_id)));
            }
            count_created(usage, tenant_id, true);
            applied(true)
        }
        Mutation::DeleteProductLink { gtin, link_id } => {
            let deleted = execute(
                conn,
                "DELETE FROM product_links WHERE tenant_id = $1 AND gtin = $2 AND link_id = $3",
                &[Arg::Text(tenant), Arg::Text(gtin.as_str()), Arg::Text(link_id)],
            )
            .await?;
            if deleted == 0 {
                refuse!(WriteError::NotFound);
            }
            count_deleted(usage, tenant_id);
            applied(false)
        }
        Mutation::CaptureEvents(capture) => {
            match crate::epcis::apply_capture(conn, tenant_id, capture, now_unix_ms, state.log).await? {
                Ok(captured) => {
                    *usage.entry((tenant_id.to_string(), "epcis_events_captured")).or_default() += captured as i64;
                    // How many were new: the caller looks up the others' stored eventIDs.
                    Ok(Ok(Applied {
                        created: captured > 0,
                        at_unix_ms: now_unix_ms,
                        outcome: None,
                        rows: captured as u64,
                    }))
                }
                Err(refused) => refuse!(refused),
            }
        }
        Mutation::Fulfilment(change) => {
            let context = StockContext { batch: state.stock, cache: state.cache };
            match crate::fulfilment::apply_fulfilment(conn, tenant_id, change, now_unix_ms, context).await? {
                Ok(done) => {
                    if matches!(change, FulfilmentMutation::PlaceOrder(_)) {
                        *usage.entry((tenant_id.to_string(), "orders_placed")).or_default() += 1;
                    }
                    Ok(Ok(Applied { created: done.created, at_unix_ms: now_unix_ms, outcome: done.outcome, rows: 0 }))
                }
                Err(refused) => refuse!(refused),
            }
        }
        Mutation::FulfilmentRecorded { change, events } => {
            // Before the step changes anything: a refusal here leaves nothing to take back.
            let events = match crate::epcis::decide_premises(conn, events, state.log).await? {
                Ok(events) => events,
                Err(refused) => refuse!(refused),
            };
            let context = StockContext { batch: state.stock, cache: state.cache };
            let done = match crate::fulfilment::apply_fulfilment(conn, tenant_id, change, now_unix_ms, context).await? {
                Ok(done) => done,
                Err(refused) => refuse!(refused),
            };
            match crate::epcis::apply_capture(conn, tenant_id, &events, now_unix_ms, state.log).await? {
                Ok(captured) => {
                    *usage.entry((tenant_id.to_string(), "epcis_events_captured")).or_default() += captured as i64;
                }
                // The step is applied already: the whole batch rolls back and its writes are
                // applied one by one, so this one fails alone.
                Err(refused) => {
                    return Err(sqlx::Error::Decode(
                        format!("the events of a fulfilment step were refused: {refused}").into(),
                    ));
                }
            }
            Ok(Ok(Applied { created: done.created, at_unix_ms: now_unix_ms, outcome: done.outcome, rows: 0 }))
        }
        Mutation::Readings(readings) => {
            let rows = crate::readings::insert_readings(conn, tenant_id, readings).await?;
            *usage.entry((tenant_id.to_string(), "readings_stored")).or_default() += rows as i64;
            Ok(Ok(Applied { created: rows > 0, at_unix_ms: now_unix_ms, outcome: None, rows }))
        }
        Mutation::AssignDevice { device_id, from_unix_ms, target, class, events } => {
            match crate::readings::assign_device(
                conn,
                tenant_id,
                device_id,
                *from_unix_ms,
                target,
                class.as_deref(),
                now_unix_ms,
            )
            .await?
            {
                Ok(()) => {
                    count_created(usage, tenant_id, true);
                }
                Err(refused) => refuse!(refused),
            }
            if let Some(events) = events {
                match crate::epcis::apply_capture(conn, tenant_id, events, now_unix_ms, state.log).await? {
                    Ok(captured) => {
                        *usage.entry((tenant_id.to_string(), "epcis_events_captured")).or_default() += captured as i64;
                    }
                    // The assignment is applied already: the batch rolls back and its writes are
                    // applied one by one, so this one fails alone.
                    Err(refused) => {
                        return Err(sqlx::Error::Decode(format!("the events of a leg were refused: {refused}").into()));
                    }
                }
            }
            applied(true)
        }
        Mutation::Alarms(change) => {
            let context = StockContext { batch: state.stock, cache: state.cache };
            match crate::alarms::apply_alarms(conn, tenant_id, change, now_unix_ms, context, state.log).await? {
                Ok(transitions) => applied(!transitions.is_empty()),
                Err(refused) => refuse!(refused),
            }
        }
        Mutation::Dispatch(change) => {
            match crate::dispatch::apply_dispatch(conn, tenant_id, change, now_unix_ms).await? {
                Ok(created) => {
                    count_created(usage, tenant_id, created);
                    applied(created)
                }
                Err(refused) => refuse!(refused),
            }
        }
        Mutation::EpcisQuery(change) => {
            match crate::epcis::apply_query_mutation(conn, tenant_id, change, now_unix_ms).await? {
                Ok(created) => applied(created),
                Err(refused) => refuse!(refused),
            }
        }
        Mutation::PutLogCheckpoint { size, note } => {
            if !tenant_id.is_network() {
                refuse!(WriteError::NotFound);
            }
            applied(crate::log::put_checkpoint(conn, *size, note, now_unix_ms).await?)
        }
        Mutation::PutLogCosignature { size, witness, signature_line } => {
            if !tenant_id.is_network() {
                refuse!(WriteError::NotFound);
            }
            if !exists(conn, "SELECT 1 FROM log_checkpoints WHERE size = $1", &[Arg::Integer(*size as i64)]).await? {
                refuse!(WriteError::UnknownReference { field: "size", value: size.to_string() });
            }
            applied(crate::log::put_cosignature(conn, *size, witness, signature_line, now_unix_ms).await?)
        }
        Mutation::DeleteDevice { device_id } => {
            for (table, what) in [("readings", "its readings"), ("device_assignments", "its assignments")] {
                if exists(
                    conn,
                    &format!("SELECT 1 FROM {table} WHERE tenant_id = $1 AND device_id = $2 LIMIT 1"),
                    &[Arg::Text(tenant), Arg::Text(device_id.as_str())],
                )
                .await?
                {
                    refuse!(WriteError::InUse(format!("device {device_id}"), what.into()));
                }
            }
            let deleted = execute(
                conn,
                "DELETE FROM devices WHERE tenant_id = $1 AND device_id = $2",
                &[Arg::Text(tenant), Arg::Text(device_id.as_str())],
            )
            .await?;
            if deleted == 0 {
                refuse!(WriteError::NotFound);
            }
            count_deleted(usage, tenant_id);
            applied(false)
        }
    }
}

/// What a location refused for is referred to by: the stock held there.
const STOCK_HELD_THERE: &str = "stock held there";

/// Whether a location, changed as `location` says, still keeps the stock held there (any tenant's
/// at a network location): each zone holding units stays, a zone whose range changes still keeps
/// its goods' temperature class in range, and a place that holds stock, or awaits pallets, still
/// holds stock. A zone left as it is passes whatever its goods (a product's class may have changed
/// since they came in). Answers the refusal when not.
async fn stock_kept_in_place(
    conn: &mut Conn,
    tenant_id: &TenantId,
    location: &Location,
    state: &BatchState<'_>,
) -> Result<Option<WriteError>, sqlx::Error> {
    let gln = location.gln.as_str();
    let network = tenant_id.is_network();
    let (held_sql, awaited_sql) = if network {
        (
            "SELECT DISTINCT b.zone, p.gtin, p.temperature_class, p.temperature_min_celsius, p.temperature_max_celsius \
             FROM stock_balances b JOIN products p ON p.tenant_id = b.tenant_id AND p.gtin = b.gtin \
             WHERE b.location_gln = $2 AND b.on_hand > 0 AND $1 <> '' ORDER BY b.zone, p.gtin",
            "SELECT 1 FROM asns a JOIN asn_pallets p ON p.tenant_id = a.tenant_id AND p.asn_id = a.asn_id \
             WHERE a.location_gln = $2 AND p.received_unix_ms IS NULL AND $1 <> ''",
        )
    } else {
        (
            "SELECT DISTINCT b.zone, p.gtin, p.temperature_class, p.temperature_min_celsius, p.temperature_max_celsius \
             FROM stock_balances b JOIN products p ON p.tenant_id = b.tenant_id AND p.gtin = b.gtin \
             WHERE b.tenant_id = $1 AND b.location_gln = $2 AND b.on_hand > 0 ORDER BY b.zone, p.gtin",
            "SELECT 1 FROM asns a JOIN asn_pallets p ON p.tenant_id = a.tenant_id AND p.asn_id = a.asn_id \
             WHERE a.tenant_id = $1 AND a.location_gln = $2 AND p.received_unix_ms IS NULL",
        )
    };
    if !location.kind.holds_stock()
        && exists(conn, awaited_sql, &[Arg::Text(tenant_id.as_str()), Arg::Text(gln)]).await?
    {
        let what = format!("location {gln} (a {} holds no stock)", location.kind.name());
        return Ok(Some(WriteError::InUse(what, "pallets announced to it and not received".into())));
    }
    type Held = (String, String, String, Option<f64>, Option<f64>);
    let stored_held: Vec<Held> = on_conn!(conn, connection => {
        sqlx::query_as(held_sql).bind(tenant_id.as_str()).bind(gln).fetch_all(&mut *connection).await
    })?;
    let mut held = Vec::with_capacity(stored_held.len());
    for (zone, gtin, class, min_celsius, max_celsius) in stored_held {
        let class = network::TemperatureClass::new(&class, min_celsius, max_celsius)
            .map_err(|error| sqlx::Error::Decode(format!("stored product {gtin} is invalid: {error}").into()))?;
        held.push((zone, gtin, class));
    }
    // And what earlier writes of this batch put there (written when the batch ends).
    held.extend(state.stock.held_at(state.cache, (!network).then_some(tenant_id.as_str()), gln));
    if held.is_empty() {
        return Ok(None);
    }
    if !location.kind.holds_stock() {
        let what = format!("location {gln} (a {} holds no stock)", location.kind.name());
        return Ok(Some(WriteError::InUse(what, STOCK_HELD_THERE.into())));
    }
    let stored: Vec<(String, Option<f64>, Option<f64>)> = on_conn!(conn, connection => {
        sqlx::query_as("SELECT zone_name, min_celsius, max_celsius FROM location_zones WHERE tenant_id = $1 AND gln = $2")
            .bind(tenant_id.as_str()).bind(gln).fetch_all(&mut *connection).await
    })?;
    for (zone, gtin, class) in held {
        let Some(kept) = location.zones.iter().find(|kept| kept.name.as_str() == zone) else {
            return Ok(Some(WriteError::InUse(format!("zone {zone} of location {gln}"), STOCK_HELD_THERE.into())));
        };
        let unchanged = stored
            .iter()
            .any(|(name, min, max)| *name == zone && (*min, *max) == (kept.range.min_celsius, kept.range.max_celsius));
        if unchanged {
            continue;
        }
        if !kept.suits(&class) {
            let what = format!(
                "zone {zone} of location {gln} (its new range would not keep product {gtin}, {}, in range)",
                class.name()
            );
            return Ok(Some(WriteError::InUse(what, STOCK_HELD_THERE.into())));
        }
    }
    Ok(None)
}

/// A product's temperature class as stored (none: no such product).
async fn stored_class(
    conn: &mut Conn,
    tenant: &str,
    gtin: &str,
) -> Result<Option<network::TemperatureClass>, sqlx::Error> {
    let stored: Option<(String, Option<f64>, Option<f64>)> = on_conn!(conn, connection => sqlx::query_as(
        "SELECT temperature_class, temperature_min_celsius, temperature_max_celsius FROM products \
         WHERE tenant_id = $1 AND gtin = $2")
        .bind(tenant).bind(gtin).fetch_optional(&mut *connection).await)?;
    stored
        .map(|(class, min_celsius, max_celsius)| {
            network::TemperatureClass::new(&class, min_celsius, max_celsius)
                .map_err(|error| sqlx::Error::Decode(format!("stored product {gtin} is invalid: {error}").into()))
        })
        .transpose()
}

/// Whether the tenant has the location; on PostgreSQL its row is locked (`FOR UPDATE`) until the
/// transaction ends, before the checks of the stock held there: another API node's write putting
/// stock there (which locks the row `FOR SHARE` first, `fulfilment::stock_site`) has committed and
/// is seen by those checks, or waits for this change and then sees it.
async fn lock_location(conn: &mut Conn, tenant: &str, gln: &str) -> Result<bool, sqlx::Error> {
    let sql = match conn {
        Conn::Sqlite(_) => "SELECT 1 FROM locations WHERE tenant_id = $1 AND gln = $2",
        Conn::Postgres(_) => "SELECT 1 FROM locations WHERE tenant_id = $1 AND gln = $2 FOR UPDATE",
    };
    exists(conn, sql, &[Arg::Text(tenant), Arg::Text(gln)]).await
}

async fn put_location(
    conn: &mut Conn,
    tenant_id: &TenantId,
    location: &Location,
    mode: PutMode,
    now_unix_ms: i64,
    usage: &mut Usage<'_>,
    state: &BatchState<'_>,
) -> Result<Result<Applied, WriteError>, sqlx::Error> {
    let tenant = tenant_id.as_str();
    let gln = location.gln.as_str();
    if let Some(party) = &location.party_id
        && !exists(
            conn,
            "SELECT 1 FROM parties WHERE tenant_id = $1 AND party_id = $2",
            &[Arg::Text(tenant), Arg::Text(party.as_str())],
        )
        .await?
    {
        return Ok(Err(WriteError::UnknownReference { field: "/party_id", value: party.to_string() }));
    }
    let found = lock_location(conn, tenant, gln).await?;
    if let Err(error) = check_mode(mode, found, format!("location {gln}")) {
        return Ok(Err(error));
    }
    // Zones a device still names may not disappear (the network's zones may hold any tenant's devices).
    let devices_sql = if tenant_id.is_network() {
        "SELECT zone_name FROM devices WHERE location_gln = $2 AND zone_name IS NOT NULL AND $1 <> ''"
    } else {
        "SELECT zone_name FROM devices WHERE tenant_id = $1 AND location_gln = $2 AND zone_name IS NOT NULL"
    };
    let zones_in_use: Vec<(String,)> = on_conn!(conn, connection => {
        sqlx::query_as(devices_sql).bind(tenant).bind(gln).fetch_all(&mut *connection).await
    })?;
    if let Some((zone,)) =
        zones_in_use.iter().find(|(zone,)| !location.zones.iter().any(|kept| kept.name.as_str() == zone))
    {
        return Ok(Err(WriteError::InUse(format!("zone {zone} of location {gln}"), "a device".into())));
    }
    if found && let Some(refusal) = stock_kept_in_place(conn, tenant_id, location, state).await? {
        return Ok(Err(refusal));
    }
    // Last of the checks: the claim writes the GLN's owner, and a refused write writes nothing.
    if !found && claim(conn, "gln_owners", "gln", gln, tenant).await? != tenant {
        return Ok(Err(WriteError::Conflict(format!("GLN {gln}, registered by another party,"))));
    }
    execute(
        conn,
        put_sql(
"INSERT INTO locations (tenant_id, gln, kind, name, street, postal_code, city, country, latitude_degrees, longitude_degrees, \
         time_zone, pick_pack_lead_minutes, party_id, created_unix_ms, updated_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) \
         ON CONFLICT (tenant_id, gln) DO UPDATE SET kind = excluded.kind, name = excluded.name, street = excluded.street, \
         postal_code = excluded.postal_code, city = excluded.city, country = excluded.country, \
         latitude_degrees = excluded.latitude_degrees, longitude_degrees = excluded.longitude_degrees, \
         time_zone = excluded.time_zone, pick_pack_lead_minutes = excluded.pick_pack_lead_minutes, \
         party_id = excluded.party_id, updated_unix_ms = excluded.updated_unix_ms", mode),
        &[
            Arg::Text(tenant),
            Arg::Text(gln),
            Arg::Text(location.kind.name()),
            Arg::Text(&location.name),
            Arg::OptionalText(location.address.street.as_deref()),
            Arg::OptionalText(location.address.postal_code.as_deref()),
            Arg::OptionalText(location.address.city.as_deref()),
            Arg::Text(location.country.as_str()),
            Arg::OptionalReal(Some(location.coordinates.latitude_degrees())),
            Arg::OptionalReal(Some(location.coordinates.longitude_degrees())),
            Arg::Text(location.time_zone.as_str()),
            Arg::Integer(i64::from(location.pick_pack_lead_minutes)),
            Arg::OptionalText(location.party_id.as_ref().map(PartyId::as_str)),
            Arg::Integer(now_unix_ms),
        ],
    )
    .await?;
    execute(conn, "DELETE FROM location_zones WHERE tenant_id = $1 AND gln = $2", &[Arg::Text(tenant), Arg::Text(gln)])
        .await?;
    for (position, zone) in location.zones.iter().enumerate() {
        execute(
            conn,
            "INSERT INTO location_zones (tenant_id, gln, zone_name, position, min_celsius, max_celsius, capacity_pallets) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                Arg::Text(tenant),
                Arg::Text(gln),
                Arg::Text(zone.name.as_str()),
                Arg::Integer(position as i64),
                Arg::OptionalReal(zone.range.min_celsius),
                Arg::OptionalReal(zone.range.max_celsius),
                Arg::Integer(i64::from(zone.capacity_pallets)),
            ],
        )
        .await?;
    }
    execute(
        conn,
        "DELETE FROM location_cutoffs WHERE tenant_id = $1 AND gln = $2",
        &[Arg::Text(tenant), Arg::Text(gln)],
    )
    .await?;
    for (service, cutoff) in &location.cutoffs {
        execute(
            conn,
            "INSERT INTO location_cutoffs (tenant_id, gln, service, cutoff_local_time) VALUES ($1, $2, $3, $4)",
            &[Arg::Text(tenant), Arg::Text(gln), Arg::Text(service.name()), Arg::Text(&cutoff.to_string())],
        )
        .await?;
    }
    count_created(usage, tenant_id, !found);
    Ok(Ok(Applied { created: !found, at_unix_ms: now_unix_ms, outcome: None, rows: 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counters keep each phase in its own place, and `since` subtracts field by field.
    #[test]
    fn writer_phases_keep_their_fields_apart() {
        let phases = WriterPhases::from_array(std::array::from_fn(|field| 10 * (field as u64 + 1)));
        assert_eq!((phases.writes, phases.commit_micros, phases.ahead_micros), (10, 60, 80));
        let counters = Counters::default();
        counters.add_phases(&phases);
        counters.add_phases(&phases);
        let doubled = counters.phases();
        assert_eq!(doubled.to_array(), phases.to_array().map(|value| 2 * value));
        assert_eq!(doubled.since(&phases), phases);
    }

    /// A write applied ahead stops at its first statement: on the empty database every statement
    /// on a table fails, reads and writes alike ([`detached_database`]).
    #[tokio::test]
    async fn the_empty_database_refuses_every_statement_on_a_table() {
        let pool = detached_database().await.unwrap();
        let read = sqlx::query("SELECT on_hand FROM stock_balances").execute(&pool).await.unwrap_err();
        assert!(read.to_string().contains("no such table"), "{read}");
        let created = sqlx::query("CREATE TABLE stock_balances (on_hand INTEGER)").execute(&pool).await.unwrap_err();
        assert!(created.to_string().contains("readonly"), "{created}");
        pool.close().await;
    }

    /// On SQLite a purge deletes the expired answers and their entries in the keys' index, and
    /// leaves an entry that points at another row (a newer answer of the key) and what is not
    /// expired.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_purge_deletes_expired_keys_and_their_index_entries_only() {
        use sqlx::Connection;
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let write = |mutation, key: &str| Write {
            tenant_id: acme.clone(),
            mutation,
            idempotency: Some(IdempotencyRecord {
                tenant_id: acme.clone(),
                key: key.to_owned(),
                request_sha256: [7; 32],
                respond: Box::new(|_| StoredResponse { status: 201, body: b"first".to_vec() }),
            }),
        };
        for key in ["old", "kept"] {
            let tenant = Mutation::PutTenant { name: "Acme".into(), mode: crate::PutMode::Upsert };
            assert!(store.write(write(tenant, key)).await.is_ok());
        }
        // A restart puts both into the keys' index.
        store.close().await;
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        let tenant = Mutation::PutTenant { name: "Acme".into(), mode: crate::PutMode::Upsert };
        assert!(store.write(write(tenant, "other")).await.is_ok());
        let mut raw = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
        let day_ago = now_unix_ms() - IDEMPOTENCY_KEY_LIFETIME.as_millis() as i64 - 1;
        sqlx::query("UPDATE idempotency_keys SET created_unix_ms = $1 WHERE idempotency_key = 'old'")
            .bind(day_ago)
            .execute(&mut raw)
            .await
            .unwrap();
        // An expired answer of `kept` beside its indexed one (as if left by a crash).
        sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_sha256, response_status, response_body, \
             created_unix_ms) SELECT tenant_id, idempotency_key, request_sha256, 200, x'00', $1 FROM idempotency_keys \
             WHERE idempotency_key = 'kept'",
        )
        .bind(day_ago - 5)
        .execute(&mut raw)
        .await
        .unwrap();
        assert_eq!(purge_expired_idempotency_keys(store.pools()).await.unwrap(), 2);
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT idempotency_key, response_status FROM idempotency_keys ORDER BY idempotency_key")
                .fetch_all(&mut raw)
                .await
                .unwrap();
        assert_eq!(rows, [("kept".to_owned(), 201), ("other".to_owned(), 201)]);
        let indexed: Vec<(String,)> =
            sqlx::query_as("SELECT idempotency_key FROM idempotency_keys_by_key ORDER BY idempotency_key")
                .fetch_all(&mut raw)
                .await
                .unwrap();
        assert_eq!(indexed, [("kept".to_owned(),)]);
        let kept = store.tenant(&acme).idempotent_response("kept").await.unwrap().unwrap();
        assert_eq!(kept.1.body, b"first");
        assert!(store.tenant(&acme).idempotent_response("old").await.unwrap().is_none());
        store.close().await;
    }

    #[test]
    fn padded_runs_cover_every_row_once_in_few_shapes() {
        for rows in 0..1_000 {
            for width in [1, 9, 13, 20_000, 40_000] {
                let runs = padded_runs(rows, width);
                let most = runs.first().map_or(0, |run| run.shape);
                let mut next = 0;
                for run in &runs {
                    assert_eq!(run.rows.start, next, "{rows} rows, width {width}: runs are contiguous");
                    assert!(run.shape.is_power_of_two(), "{rows} rows: {run:?} has a power of two's room");
                    assert!(
                        run.rows.len() <= run.shape && run.shape < 2 * run.rows.len(),
                        "{run:?}: padded less than half"
                    );
                    assert!(run.shape <= ROWS_PER_STATEMENT_MAX);
                    assert!(run.shape * width <= VALUES_PER_STATEMENT_MAX || run.shape == 1);
                    next = run.rows.end;
                }
                assert_eq!(next, rows);
                // As few statements as the limits allow: all but the last are full.
                assert_eq!(runs.len(), rows.div_ceil(most.max(1)), "{rows} rows, width {width}");
            }
        }
        let run = |rows: std::ops::Range<usize>, shape| Run { rows, shape };
        assert_eq!(padded_runs(200, 11), vec![run(0..128, 128), run(128..200, 128)]);
        assert_eq!(padded_runs(29, 10), vec![run(0..29, 32)]);
        assert_eq!(padded_runs(3, 20_000), vec![run(0..1, 1), run(1..2, 1), run(2..3, 1)]);
    }
}
