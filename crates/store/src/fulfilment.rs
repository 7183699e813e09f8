//! Fulfilment in the store: the stock ledger's tables, advance shipping notices and receipts,
//! cycle counts, lot statuses, orders (allocated and reserved in the write that places them),
//! their lifecycle and recalls.
//!
//! **How stock is written.** Each writer task keeps a cache of the balances it has read, by
//! (tenant, GTIN). A write changes the cached balances through [`StockBatch::change`] (the `stock`
//! crate's arithmetic, so a change that would break an invariant is refused before any SQL) and
//! queues its movements; a refused write's cache changes are rolled back. At the end of the batch
//! each balance the batch touched is written once, as the batch's net change applied to the row as
//! it is now, guarded by the invariants and the status the batch read (`UPDATE … SET reserved =
//! reserved + $d … WHERE status = $read AND reserved + $d <= on_hand + $h`), and the
//! movements are inserted in multi-row statements. If another API node changed a balance so that
//! the guard fails, the batch rolls back, the cache is dropped and the batch is applied again on
//! fresh rows — a conditional update, no row lock. The CHECK constraints of `stock_balances`
//! repeat the invariants in the database.
//!
//! A cache entry is trusted for [`CACHE_LIFETIME`]: on PostgreSQL each update refreshes the rows
//! it wrote from the database (`RETURNING`; on SQLite, with one writer, the cache already holds
//! them); stock another node received (a new lot, units back), a product's new rules and a site's
//! or lane's change are announced, and the entries forgotten before the next batch
//! (`stock_news`), else they are seen once the entry is reloaded.
//!
//! On SQLite a busy writer's batch of orders may leave its reserves out of the balances' rows for
//! a while, and every read of a balance adds them ([`BalancesBehind`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gs1::{Gln, Gtin, Sscc};
use network::{Coordinates, Lane, Location, Service, TenantId, ZoneName};
use orders::{AllocationError, CandidateOutcome, Line, OrderStatus, ProductRule, StockEffect, StockLot};
use serde::{Deserialize, Serialize};
use stock::{Balance, LotStatus, MovementKind, ReservationState};

use crate::backend::{BackendKind, Conn, on_conn};
use crate::rows::{CutoffRow, LANE_COLUMNS, LOCATION_COLUMNS, LaneRow, LocationRow, ZoneRow};
use crate::writer::{Arg, Value, WriteError, execute, insert_rows};

/// How long a writer trusts a cached balance list or network snapshot before reading it again.
pub const CACHE_LIFETIME: Duration = Duration::from_secs(30);
/// The most (tenant, GTIN) entries a writer caches; beyond it the cache starts afresh.
pub const CACHE_GTINS_MAX: usize = 200_000;
/// The most sites and lanes allocation considers for one tenant (its own and the network's).
pub const SITES_MAX: i64 = 5_000;
/// The most pallets in one advance shipping notice.
pub const ASN_PALLETS_MAX: usize = 1_000;
/// The most order webhooks of one tenant.
pub const WEBHOOKS_PER_TENANT_MAX: i64 = 10;
/// The most order transitions one webhook delivery carries.
pub const WEBHOOK_EVENTS_MAX: i64 = 100;
/// The most lots one recall names.
pub const RECALL_LOTS_MAX: usize = 100;
/// The most lots made from a recall's own that it puts on hold.
pub const RECALL_HOLDS_MAX: usize = 200;
/// The most pending reservations released per batch when their timeouts pass (the rest in the
/// following batches; reads subtract them meanwhile).
pub const EXPIRIES_PER_BATCH_MAX: i64 = 1_000;
fn corrupt(what: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored data is invalid: {what}").into())
}

/// A balance's key within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StockKey {
    pub gtin: String,
    pub location: String,
    pub zone: String,
    pub lot: String,
}

impl StockKey {
    fn at(gtin: &Gtin, location: &Gln, zone: &ZoneName, lot: &str) -> StockKey {
        StockKey { gtin: gtin.to_string(), location: location.to_string(), zone: zone.to_string(), lot: lot.to_owned() }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CachedBalance {
    pub(crate) key: StockKey,
    expiry: Option<String>,
    status: LotStatus,
    pub(crate) balance: Balance,
    /// The key and expiry parsed once, for allocation.
    site: Gln,
    zone: ZoneName,
    expiry_date: Option<jiff::civil::Date>,
}

impl CachedBalance {
    /// The units allocation may take (`free` of them), if the lot is available on `today` (UTC,
    /// as the stock reads it: not past its expiry date, [`status_as_of`]) and has any.
    pub(crate) fn stock_lot<'a>(&'a self, gtin: &'a Gtin, free: i64, today: jiff::civil::Date) -> Option<StockLot<'a>> {
        let expired = self.expiry_date.is_some_and(|expiry| expiry < today);
        (self.status.allocatable() && !expired && free > 0).then(|| StockLot {
            site: Cow::Borrowed(&self.site),
            zone: Cow::Borrowed(&self.zone),
            gtin: Cow::Borrowed(gtin),
            lot: Cow::Borrowed(&self.key.lot),
            expiry: self.expiry_date,
            available: free,
        })
    }

    fn new(
        key: StockKey,
        expiry: Option<String>,
        status: LotStatus,
        balance: Balance,
    ) -> Result<CachedBalance, sqlx::Error> {
        Ok(CachedBalance {
            site: Gln::parse(&key.location).map_err(corrupt)?,
            zone: ZoneName::parse(&key.zone).map_err(corrupt)?,
            expiry_date: expiry.as_deref().map(str::parse::<jiff::civil::Date>).transpose().map_err(corrupt)?,
            key,
            expiry,
            status,
            balance,
        })
    }
}

/// A GTIN's product rule and balances as the writer knows them. The balances are in key order
/// (location, zone, lot): found by binary search, and allocation sees each site's lots together.
#[derive(Debug)]
struct GtinEntry {
    loaded: Instant,
    product: Option<ProductRule>,
    balances: Vec<CachedBalance>,
}

impl GtinEntry {
    /// Where the balance of `key` is, or where it would go.
    fn balance_index(&self, key: &StockKey) -> Result<usize, usize> {
        debug_assert!(self.balances.windows(2).all(|pair| pair[0].key < pair[1].key), "balances in key order");
        self.balances.binary_search_by(|cached| cached.key.cmp(key))
    }

    fn balance_mut(&mut self, key: &StockKey) -> Option<&mut CachedBalance> {
        self.balance_index(key).ok().map(|index| &mut self.balances[index])
    }

    /// Adds a balance not held yet, in key order; answers its index.
    fn insert_balance(&mut self, cached: CachedBalance) -> usize {
        let index = match self.balance_index(&cached.key) {
            Ok(index) | Err(index) => index,
        };
        debug_assert!(self.balances.get(index).is_none_or(|other| other.key != cached.key), "a balance held once");
        self.balances.insert(index, cached);
        index
    }
}

/// Sites and lanes visible to a tenant.
#[derive(Debug)]
pub(crate) struct NetworkSnapshot {
    pub sites: Vec<Location>,
    pub lanes: Vec<Lane>,
}

/// What a writer task remembers between batches (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct WriterCache {
    gtins: HashMap<(String, String), GtinEntry>,
    networks: HashMap<String, (Instant, Arc<NetworkSnapshot>)>,
    /// The time the last batch was given (see [`WriterCache::batch_time`]); kept by `clear`.
    last_batch_unix_ms: i64,
    /// When the writer last warned that its batch clock runs ahead of the wall clock.
    clock_ahead_warned: Option<Instant>,
    /// When the writer last extended the reserves' lot index ([`build_reserves_index`]), and how
    /// many reserves it wrote since; both move only once a batch commits
    /// ([`WriterCache::reserves_committed`]), so a batch rolled back counts for nothing.
    reserves_indexed_at: Option<Instant>,
    reserves_unindexed: usize,
    /// Which balances' reserves `stock_balances` lacks (SQLite; see [`BalancesBehind`]).
    pub(crate) balances_behind: BalancesBehind,
    /// The idempotency keys the keys' index lacks (SQLite; see [`crate::idempotency::KeysTail`]).
    pub(crate) keys_tail: crate::idempotency::KeysTail,
    /// This writer's number among its node's listeners (PostgreSQL, `stock_news`): what it
    /// announces itself, its cache holds already.
    pub(crate) news_writer: Option<usize>,
}

/// On SQLite, how long the busy writer may leave the units orders reserve out of
/// `stock_balances` ([`BalancesBehind`]). Longer writes fewer pages (more of a page's balances
/// change in the time) but makes the batch that writes them longer, and the reads that add them
/// slower. At 1 s against 250 ms: 1.12× orders/s (median of five pairs on the bench's machine,
/// at about 9,000–10,000 orders/s), the p99 between 23 and 104 ms against about 60
/// (docs/benchmarks.md, entry "2026-12-06, 07:35–09:05 UTC").
pub const BALANCES_BEHIND_MAX: Duration = Duration::from_secs(1);
/// The most balances left behind at once: the batch that writes them writes this many more rows.
pub const BALANCES_BEHIND_ROWS_MAX: usize = 40_000;
/// The most reserves left out of `stock_balances` at once: every read of a balance adds them, so
/// this bounds the movements such a read walks (about 1.3 s of the bench's 10,000 orders/s).
pub const BALANCES_BEHIND_RESERVES_MAX: usize = 40_000;

/// The reserves the table `stock_balances` does not hold yet (SQLite).
///
/// While the one writer is busy (a write was waiting when it finished a batch), a batch that only
/// places orders writes their reserve movements but leaves the balances' rows as they were: the
/// reserve movements after `writer_clock.balances_through_unix_ms` (the tail) are the record of
/// those units, and every read of a balance adds them ([`SQLITE_BALANCES_OF_GTIN_WITH_TAIL`]). The
/// writer's cache holds the balances as they are, and this the rows as the table holds them. The
/// first batch that is not only orders, a tail older than [`BALANCES_BEHIND_MAX`] or beyond
/// [`BALANCES_BEHIND_ROWS_MAX`] or [`BALANCES_BEHIND_RESERVES_MAX`], and an idle writer write
/// them, as that batch's own net changes (guarded as ever), and move `balances_through_unix_ms`
/// to the batch's time. A hot balance's row is then written once a catch-up instead of once a
/// batch (docs/benchmarks.md). A crash loses nothing: the tail is committed with its
/// orders, and the writer's next batch (or the idle writer at its start) writes it from the
/// movements ([`catch_up_balances`]), as after a rolled-back batch.
///
/// Only reserves are left out, so `on_hand` in the table is always as it is (the checks that a
/// place or product holds no stock read it).
#[derive(Debug, Default)]
pub(crate) struct BalancesBehind {
    /// Whether `rows` is known: not at the writer's start, nor after a rollback (the table may then
    /// lag for any balance, and the next batch writes the tail from the movements first).
    pub(crate) known: bool,
    /// The balances left behind, each as the table holds it.
    rows: BTreeMap<(String, StockKey), (Balance, LotStatus)>,
    /// Their (tenant, GTIN)s.
    gtins: std::collections::HashSet<(String, String)>,
    /// When the oldest reserve left out was committed.
    since: Option<Instant>,
    reserves: usize,
}

impl BalancesBehind {
    /// The table holds every balance as it is.
    pub(crate) fn is_clear(&self) -> bool {
        self.known && self.rows.is_empty()
    }

    /// Whether a batch may leave its reserves out (within the limits).
    pub(crate) fn may_defer(&self) -> bool {
        self.known
            && self.since.is_none_or(|since| since.elapsed() < BALANCES_BEHIND_MAX)
            && self.rows.len() < BALANCES_BEHIND_ROWS_MAX
            && self.reserves < BALANCES_BEHIND_RESERVES_MAX
    }

    /// Whether a read of this GTIN's balances must add the tail.
    fn may_lag(&self, tenant: &str, gtin: &str) -> bool {
        !self.known || self.gtins.contains(&(tenant.to_owned(), gtin.to_owned()))
    }

    /// The table holds every balance as it is (the tail was written).
    pub(crate) fn written(&mut self) {
        *self = BalancesBehind { known: true, ..BalancesBehind::default() };
    }
}

/// A batch time this far ahead of the wall clock is worth a warning: the clock stepped back (or
/// another process wrote with a clock ahead), and batch times now move on by 1 ms a batch until
/// the wall clock catches up.
pub const CLOCK_AHEAD_WARN_MS: i64 = 1_000;

/// The writer repeats that warning at most this often while the lead lasts.
pub const CLOCK_AHEAD_WARN_INTERVAL: Duration = Duration::from_secs(60);

impl WriterCache {
    /// The time of a new batch: the wall clock, but always after the previous batch's, so that
    /// the rows of a later batch of this writer sort after an earlier one's even when two batches
    /// fall in one millisecond or the clock steps back. On SQLite, where this is the one writer,
    /// that makes the movement journal's order (`at_unix_ms`, operation, line) the commit order,
    /// and a reader's cursor can never be passed by a row committed later; `writer::batch_clock`
    /// passes it the stored time of the last batch, so the order also holds across restarts.
    pub(crate) fn batch_time(&mut self, wall_unix_ms: i64) -> i64 {
        let time = self.next_batch_time(wall_unix_ms);
        self.last_batch_unix_ms = time;
        time
    }

    /// The time of this writer's last batch (0 before its first).
    pub(crate) fn last_batch_time(&self) -> i64 {
        self.last_batch_unix_ms
    }

    /// The time [`WriterCache::batch_time`] would give now, without taking it.
    pub(crate) fn next_batch_time(&self, wall_unix_ms: i64) -> i64 {
        wall_unix_ms.max(self.last_batch_unix_ms.saturating_add(1))
    }

    /// How far the batch time `batch_unix_ms` runs ahead of the wall clock, when that is worth a
    /// warning now: at least [`CLOCK_AHEAD_WARN_MS`], and no warning in the last
    /// [`CLOCK_AHEAD_WARN_INTERVAL`].
    pub(crate) fn clock_lead_to_report(&mut self, batch_unix_ms: i64, wall_unix_ms: i64, now: Instant) -> Option<i64> {
        let lead_ms = batch_unix_ms.saturating_sub(wall_unix_ms);
        if lead_ms < CLOCK_AHEAD_WARN_MS {
            return None;
        }
        if self.clock_ahead_warned.is_some_and(|warned| now.duration_since(warned) < CLOCK_AHEAD_WARN_INTERVAL) {
            return None;
        }
        self.clock_ahead_warned = Some(now);
        Some(lead_ms)
    }

    /// Forgets everything: after a rollback, the cache may hold changes that were not committed.
    pub(crate) fn clear(&mut self) {
        self.gtins.clear();
        self.networks.clear();
        // What the rollback undid is not known: the next batch catches up first.
        self.balances_behind = BalancesBehind::default();
        self.keys_tail = crate::idempotency::KeysTail::default();
    }

    /// A batch that wrote `reserves_written` reserves committed; `built` says whether it also
    /// extended the reserves' lot index (which then holds them too).
    pub(crate) fn reserves_committed(&mut self, reserves_written: usize, built: bool) {
        if built {
            self.reserves_indexed_at = Some(Instant::now());
            self.reserves_unindexed = 0;
        } else {
            self.reserves_unindexed = self.reserves_unindexed.saturating_add(reserves_written);
        }
    }

    /// Whether this writer holds balances of the tenant's GTIN, this batch's new ones included
    /// (not yet in the table).
    pub(crate) fn holds_balances(&self, tenant: &str, gtin: &str) -> bool {
        self.gtins.get(&(tenant.to_owned(), gtin.to_owned())).is_some_and(|entry| !entry.balances.is_empty())
    }

    /// Whether the cached entry of (tenant, GTIN) may be used without reading it again: read
    /// within [`CACHE_LIFETIME`], or holding reserves `stock_balances` lacks (on SQLite, where
    /// this writer is the only one, its entry is the balances as they are).
    fn holds_fresh(&self, key: &(String, String)) -> bool {
        self.gtins
            .get(key)
            .is_some_and(|entry| entry.loaded.elapsed() < CACHE_LIFETIME || self.balances_behind.gtins.contains(key))
    }

    /// Forgets a GTIN whose product was deleted, so a later write reads it again. Only one
    /// without balances ([`WriterCache::holds_balances`]): a batch's flush needs its changes.
    pub(crate) fn forget_gtin(&mut self, tenant: &str, gtin: &str) {
        debug_assert!(!self.holds_balances(tenant, gtin));
        self.gtins.remove(&(tenant.to_owned(), gtin.to_owned()));
    }

    /// Reads the rules of a product just written into its cached entry, if there is one: the
    /// batch's later writes, and later batches, use them (the balances stay as they are).
    pub(crate) async fn reread_product(
        &mut self,
        conn: &mut Conn,
        tenant: &str,
        gtin: &str,
    ) -> Result<(), sqlx::Error> {
        let Some(entry) = self.gtins.get_mut(&(tenant.to_owned(), gtin.to_owned())) else { return Ok(()) };
        let sql = format!("SELECT {PRODUCT_RULE_COLUMNS} FROM products WHERE tenant_id = $1 AND gtin = $2");
        let row: Option<ProductRuleRow> = on_conn!(conn, connection => sqlx::query_as(&sql)
            .bind(tenant).bind(gtin).fetch_optional(&mut *connection).await)?;
        entry.product = row.map(|row| row.rule()).transpose()?;
        Ok(())
    }

    /// Forgets the stock of a (tenant, GTIN), or of every one: another API node announced that
    /// stock came in (`stock_news`).
    pub(crate) fn forget_stock(&mut self, gtin: Option<(&str, &str)>) {
        match gtin {
            Some((tenant, gtin)) => {
                self.gtins.remove(&(tenant.to_owned(), gtin.to_owned()));
            }
            None => self.gtins.clear(),
        }
    }

    /// Holds an empty network snapshot for `tenant` (tests).
    #[cfg(test)]
    pub(crate) fn hold_network(&mut self, tenant: &str) {
        let snapshot = Arc::new(NetworkSnapshot { sites: Vec::new(), lanes: Vec::new() });
        self.networks.insert(tenant.to_owned(), (Instant::now(), snapshot));
    }

    /// The tenants whose network snapshot is held, in order (tests).
    #[cfg(test)]
    pub(crate) fn networks_held(&self) -> Vec<&str> {
        let mut tenants: Vec<&str> = self.networks.keys().map(String::as_str).collect();
        tenants.sort_unstable();
        tenants
    }

    /// Forgets the sites and lanes read for a tenant, or for every one: a location or lane
    /// changed (here, or on another API node: `stock_news`).
    pub(crate) fn forget_networks(&mut self, tenant: Option<&str>) {
        match tenant {
            Some(tenant) => {
                self.networks.remove(tenant);
            }
            None => self.networks.clear(),
        }
    }
}

#[derive(Debug)]
struct Dirty {
    /// The balance and status as read; `None` for a row this batch creates.
    read: Option<(Balance, LotStatus)>,
    /// A write of the batch decided on the balance as read, not only on its invariants (a count
    /// is absolute; a recall voids the reservations it found): the row must still be as read.
    exact: bool,
}

#[derive(Debug)]
struct MovementRow {
    tenant: String,
    operation_id: String,
    line: i64,
    kind: MovementKind,
    key: StockKey,
    quantity: i64,
    reason: Option<String>,
}

/// How to take back one change to the cache.
#[derive(Debug)]
struct Undo {
    tenant: String,
    key: StockKey,
    /// The balance and status before; `None` if the change created the balance.
    before: Option<(Balance, LotStatus)>,
    /// The change made the balance dirty.
    dirtied: bool,
}

const ORDER_COLUMNS: &[&str] = &[
    "tenant_id",
    "order_id",
    "status",
    "reservation_id",
    "service",
    "lines",
    "destination",
    "allocation",
    "region",
    "promised_by_unix_ms",
    "latest_delivery_unix_ms",
    "placed_unix_ms",
    "updated_unix_ms",
];
const RESERVATION_COLUMNS: &[&str] =
    &["tenant_id", "reservation_id", "state", "expires_unix_ms", "created_unix_ms", "updated_unix_ms"];

/// The stock changes of one batch, written once at its end. Movements, reservations and orders
/// are inserted in bulk: at the end of the batch, or before a write of the batch reads those
/// tables ([`StockBatch::flush_rows`]).
#[derive(Debug, Default)]
pub(crate) struct StockBatch {
    dirty: BTreeMap<(String, StockKey), Dirty>,
    movements: Vec<MovementRow>,
    reservations: Vec<Vec<Value>>,
    orders: Vec<Vec<Value>>,
    /// Each placed order's first history row (`allocated`, placed), for its webhooks.
    order_events: Vec<Vec<Value>>,
    /// Balances whose quarantine a recall's hold now covers (`quarantine_under_hold`), by tenant.
    quarantine_covered: Vec<(String, StockKey)>,
    undo: Vec<Undo>,
    /// Cache entries this batch has used: never reloaded within the batch (they hold its changes).
    pinned: std::collections::HashSet<(String, String)>,
    /// GTINs read again from the table this batch because an allocation fell short
    /// (`allocate_and_reserve`): once a batch is fresh enough, where a recall allocating thousands
    /// of orders again read the same GTINs once for each order it flagged. On PostgreSQL a later
    /// shortfall of the batch then misses stock another node committed since (the batch is short;
    /// a flagged order may be allocated again later). Not undone with a refused write: no write
    /// changes balances and then falls short (`roll_back` would restore them to the older read).
    read_again_for_allocation: std::collections::HashSet<(String, String)>,
    /// A tenant's GTINs the next allocation that falls short reads again with its own, in one
    /// statement: those of the orders a recall allocates again (`allocate_again`).
    read_again_with_next_shortfall: Option<(String, Vec<String>)>,
    expiries_checked: bool,
    /// `expire_due` took as many holds as it may this batch: more may be due (see `expire_due_of`).
    expiry_backlog: bool,
    /// Reserve movements this batch inserted (for [`build_reserves_index`]).
    pub(crate) reserves_written: usize,
    /// Movements of other kinds this batch inserted.
    others_written: usize,
    /// The batch may leave its reserves out of `stock_balances` ([`BalancesBehind`]), if they are
    /// all it changes; its time did not move `writer_clock.balances_through_unix_ms`.
    pub(crate) deferring: bool,
    /// It did leave some balances behind.
    pub(crate) left_behind: bool,
    /// PostgreSQL: how the balances written differ from the cache lent out meanwhile.
    lent_corrections: Vec<BalanceCorrection>,
}

impl StockBatch {
    /// The stock this batch put at a location and has not written yet (the balances it changed
    /// whose on-hand is above zero now), with their product's temperature class: what a change of
    /// the location must keep besides the stored rows (`writer::stock_kept_in_place`). `tenant`:
    /// only that tenant's; `None`, any tenant's (a network location).
    pub(crate) fn held_at(
        &self,
        cache: &WriterCache,
        tenant: Option<&str>,
        gln: &str,
    ) -> Vec<(String, String, network::TemperatureClass)> {
        let mut held = Vec::new();
        for (owner, key) in self.dirty.keys() {
            if key.location != gln || tenant.is_some_and(|tenant| tenant != owner) {
                continue;
            }
            let Some(entry) = cache.gtins.get(&(owner.clone(), key.gtin.clone())) else { continue };
            let Ok(index) = entry.balance_index(key) else { continue };
            if entry.balances[index].balance.on_hand > 0
                && let Some(product) = &entry.product
            {
                held.push((key.zone.clone(), key.gtin.clone(), product.class));
            }
        }
        held
    }
}

impl StockBatch {
    /// Remembers that a recall's hold covers the quarantine of `key`'s balance: a release of the
    /// hold puts it back in quarantine (written with the batch's rows, undone with a refusal).
    fn cover_quarantine(&mut self, tenant: &str, key: &StockKey) {
        self.quarantine_covered.push((tenant.to_owned(), key.clone()));
    }
}

/// The balances (location, zone) of a lot whose quarantine a recall's hold covers
/// (`quarantine_under_hold`; the batch's own rows flushed first).
async fn quarantine_covered(
    conn: &mut Conn,
    tenant: &str,
    gtin: &str,
    lot: &str,
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let rows: Vec<(String, String)> = on_conn!(conn, connection => sqlx::query_as(
        "SELECT location_gln, zone FROM quarantine_under_hold WHERE tenant_id = $1 AND gtin = $2 AND lot = $3")
        .bind(tenant).bind(gtin).bind(lot).fetch_all(&mut *connection).await)?;
    Ok(rows.into_iter().collect())
}

/// Whether units asked into quarantine and coming in on hold (a new balance of a held lot, or a
/// balance on hold already, whoever holds it) or expired have their quarantine covered: the whole
/// balance then goes back to quarantine when it is released to available.
fn hold_covers_quarantine(asked: LotStatus, status: LotStatus) -> bool {
    asked == LotStatus::Quarantine && matches!(status, LotStatus::Hold | LotStatus::Expired)
}

/// A lot's expiry in a problem's detail: the date, or "none".
fn expiry_text(expiry: Option<&str>) -> String {
    expiry.map_or_else(|| "none".to_owned(), str::to_owned)
}

/// A point to roll a batch's stock changes back to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    undo: usize,
    movements: usize,
    reservations: usize,
    orders: usize,
    order_events: usize,
    quarantine_covered: usize,
}

/// Another writer changed a balance this batch read: apply the batch again.
#[derive(Debug)]
pub(crate) struct Raced;

impl StockBatch {
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            undo: self.undo.len(),
            movements: self.movements.len(),
            reservations: self.reservations.len(),
            orders: self.orders.len(),
            order_events: self.order_events.len(),
            quarantine_covered: self.quarantine_covered.len(),
        }
    }

    /// Reserve movements of this batch not inserted yet.
    pub(crate) fn reserves_pending(&self) -> usize {
        self.movements.iter().filter(|movement| movement.kind == MovementKind::Reserve).count()
    }

    /// Releases the pending holds whose time has passed, once a batch, before its first stock
    /// write (see [`expire_due`]).
    pub(crate) async fn expire_due_once(
        &mut self,
        conn: &mut Conn,
        cache: &mut WriterCache,
        now_unix_ms: i64,
    ) -> Result<(), sqlx::Error> {
        if !self.expiries_checked {
            self.expiries_checked = true;
            self.expiry_backlog = expire_due(conn, self, cache, now_unix_ms).await?;
        }
        Ok(())
    }

    /// Leaves the release of lapsed holds to later in the batch ([`StockBatch::expire_due_once`]
    /// called again): for orders applied ahead, without the database (`writer::Ahead`). They see
    /// those holds' units still reserved, a moment longer, never counted twice.
    pub(crate) fn defer_expiries(&mut self, deferred: bool) {
        self.expiries_checked = deferred;
    }

    /// Takes back every change since `mark` (a refused write leaves no trace).
    pub(crate) fn roll_back(&mut self, mark: Mark, cache: &mut WriterCache) {
        self.movements.truncate(mark.movements);
        self.reservations.truncate(mark.reservations);
        self.orders.truncate(mark.orders);
        self.order_events.truncate(mark.order_events);
        self.quarantine_covered.truncate(mark.quarantine_covered);
        while self.undo.len() > mark.undo {
            let Some(undo) = self.undo.pop() else { break };
            if undo.dirtied {
                self.dirty.remove(&(undo.tenant.clone(), undo.key.clone()));
            }
            let Some(entry) = cache.gtins.get_mut(&(undo.tenant, undo.key.gtin.clone())) else { continue };
            match undo.before {
                None => {
                    if let Ok(index) = entry.balance_index(&undo.key) {
                        entry.balances.remove(index);
                    }
                }
                Some((balance, status)) => {
                    if let Some(cached) = entry.balance_mut(&undo.key) {
                        cached.balance = balance;
                        cached.status = status;
                    }
                }
            }
        }
    }

    /// Requires a balance this batch changed to be, when the batch is written, still as this
    /// batch read it (see [`Dirty::exact`]); otherwise the batch is applied again on fresh rows.
    fn hold_exact(&mut self, tenant: &str, key: &StockKey) {
        if let Some(dirty) = self.dirty.get_mut(&(tenant.to_owned(), key.clone())) {
            dirty.exact = true;
        }
    }

    /// Whether the batch changed nothing but reserved units of balances it did not create, and
    /// wrote no movement but reserves: what [`BalancesBehind`] may leave out of the table.
    fn only_reserved(&self, cache: &WriterCache) -> bool {
        self.others_written == 0
            && self.movements.iter().all(|movement| movement.kind == MovementKind::Reserve)
            && self.dirty.iter().all(|((tenant, key), dirty)| {
                let Some((read, read_status)) = dirty.read else { return false };
                let cached = cache
                    .gtins
                    .get(&(tenant.clone(), key.gtin.clone()))
                    .and_then(|entry| entry.balance_index(key).ok().map(|index| &entry.balances[index]));
                !dirty.exact
                    && cached.is_some_and(|cached| {
                        cached.balance.on_hand == read.on_hand
                            && cached.balance.reserved >= read.reserved
                            && cached.status == read_status
                    })
            })
    }

    /// Records the state of a balance before a change, and marks it dirty.
    fn touch(&mut self, tenant: &str, key: &StockKey, before: Option<(Balance, LotStatus)>) {
        let dirty_key = (tenant.to_owned(), key.clone());
        let dirtied = !self.dirty.contains_key(&dirty_key);
        if dirtied {
            self.dirty.insert(dirty_key, Dirty { read: before, exact: false });
        }
        self.undo.push(Undo { tenant: tenant.to_owned(), key: key.clone(), before, dirtied });
    }

    /// Loads (or reuses) the product rule and every balance of a GTIN. An entry this batch used is
    /// kept until the batch ends, however old: it holds the batch's changes.
    async fn entry<'c>(
        &mut self,
        cache: &'c mut WriterCache,
        conn: &mut Conn,
        tenant: &str,
        gtin: &str,
    ) -> Result<&'c mut GtinEntry, sqlx::Error> {
        let key = (tenant.to_owned(), gtin.to_owned());
        let pinned = self.pinned.contains(&key);
        let fresh = pinned || cache.holds_fresh(&key);
        if !fresh {
            if cache.gtins.len() >= CACHE_GTINS_MAX {
                // Keep what this batch holds changes in.
                let (pinned, behind) = (&self.pinned, &cache.balances_behind.gtins);
                cache.gtins.retain(|key, _| pinned.contains(key) || behind.contains(key));
            }
            let entry = load_gtin(conn, tenant, gtin, cache.balances_behind.may_lag(tenant, gtin)).await?;
            cache.gtins.insert(key.clone(), entry);
        }
        // Pinned once loaded: a write stopped by a failed load (a write applied ahead, see
        // `writer::Ahead`) leaves no entry pinned that the cache lacks.
        if !pinned {
            self.pinned.insert(key.clone());
        }
        cache.gtins.get_mut(&key).ok_or_else(|| corrupt("cache entry vanished"))
    }

    /// Loads, in a few queries, the cache entries the batch's orders will need.
    pub(crate) async fn prefetch(
        &mut self,
        cache: &mut WriterCache,
        conn: &mut Conn,
        wanted: &[(String, String)],
    ) -> Result<(), sqlx::Error> {
        let mut by_tenant: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (tenant, gtin) in wanted {
            let key = (tenant.clone(), gtin.clone());
            let fresh = cache.holds_fresh(&key);
            if !fresh && !self.pinned.contains(&key) {
                by_tenant.entry(tenant).or_default().push(gtin);
            }
        }
        for (tenant, mut gtins) in by_tenant {
            gtins.sort_unstable();
            gtins.dedup();
            if cache.gtins.len() + gtins.len() > CACHE_GTINS_MAX {
                let (pinned, behind) = (&self.pinned, &cache.balances_behind.gtins);
                cache.gtins.retain(|key, _| pinned.contains(key) || behind.contains(key));
            }
            let lagging = gtins.iter().any(|gtin| cache.balances_behind.may_lag(tenant, gtin));
            for (gtin, entry) in load_gtins(conn, tenant, &gtins, lagging).await? {
                cache.gtins.insert((tenant.to_owned(), gtin), entry);
            }
        }
        Ok(())
    }

    /// Reads a GTIN's entry again unless this batch changed one of its balances (then the cache
    /// is the newest there is): before refusing an order for want of stock another API node may
    /// have received.
    async fn refresh(
        &mut self,
        cache: &mut WriterCache,
        conn: &mut Conn,
        tenant: &str,
        gtin: &str,
    ) -> Result<(), sqlx::Error> {
        self.refresh_all(cache, conn, tenant, &[gtin]).await
    }

    /// Whether this batch changed a balance of the GTIN: a look-up in the dirty balances, which are
    /// ordered by tenant, then GTIN (a recall takes back thousands of orders, each refreshing its
    /// GTINs: a pass over every dirty balance each time made such a recall quadratic).
    fn changed_gtin(&self, tenant: &str, gtin: &str) -> bool {
        let first = (
            tenant.to_owned(),
            StockKey { gtin: gtin.to_owned(), location: String::new(), zone: String::new(), lot: String::new() },
        );
        self.dirty
            .range(first..)
            .next()
            .is_some_and(|((dirty_tenant, key), _)| dirty_tenant == tenant && key.gtin == gtin)
    }

    /// [`StockBatch::refresh`] for several GTINs, read in a few statements (`load_gtins`).
    async fn refresh_all(
        &mut self,
        cache: &mut WriterCache,
        conn: &mut Conn,
        tenant: &str,
        gtins: &[&str],
    ) -> Result<(), sqlx::Error> {
        let mut stale = Vec::with_capacity(gtins.len());
        for gtin in gtins {
            let key = (tenant.to_owned(), (*gtin).to_owned());
            if cache.balances_behind.gtins.contains(&key) && cache.gtins.contains_key(&key) {
                // The table lacks reserves of it that the cache holds (and on SQLite no other
                // writer receives stock): the cache is the newest there is.
                self.pinned.insert(key);
            } else {
                stale.push(*gtin);
            }
        }
        stale.sort_unstable();
        stale.dedup();
        if stale.is_empty() {
            return Ok(());
        }
        if cache.gtins.len() + stale.len() > CACHE_GTINS_MAX {
            let (pinned, behind) = (&self.pinned, &cache.balances_behind.gtins);
            cache.gtins.retain(|key, _| pinned.contains(key) || behind.contains(key));
        }
        let lagging = stale.iter().any(|gtin| cache.balances_behind.may_lag(tenant, gtin));
        let loaded = load_gtins(conn, tenant, &stale, lagging).await?;
        for (gtin, fresh) in loaded {
            let changed = self.changed_gtin(tenant, &gtin);
            let key = (tenant.to_owned(), gtin);
            match cache.gtins.get_mut(&key) {
                // This batch changed some of its balances: keep those as the batch left them (the
                // flush's guard checks them against the rows); every other balance takes its row
                // as read now, and the lots other nodes received meanwhile are added.
                Some(entry) if changed => {
                    for balance in fresh.balances {
                        let ours = self.dirty.contains_key(&(tenant.to_owned(), balance.key.clone()));
                        match entry.balance_index(&balance.key) {
                            Ok(_) if ours => {}
                            Ok(index) => entry.balances[index] = balance,
                            Err(_) => {
                                entry.insert_balance(balance);
                            }
                        }
                    }
                }
                _ => {
                    cache.gtins.insert(key.clone(), fresh);
                }
            }
            self.pinned.insert(key);
        }
        Ok(())
    }

    /// Writes an operation's movements whose units were checked before (allocation, the
    /// reservation's rules): lines numbered in order from 0, none for zero units. A refusal here
    /// is a bug: the write fails as corrupt, naming `what`, and the batch is rolled back.
    /// Answers the number of movements written.
    async fn checked_movements(
        &mut self,
        cache: &mut WriterCache,
        conn: &mut Conn,
        tenant: &str,
        operation_id: &str,
        movements: &[(MovementKind, StockKey, i64)],
        what: &str,
    ) -> Result<i64, sqlx::Error> {
        let mut line = 0;
        for (kind, key, quantity) in movements.iter().filter(|(_, _, quantity)| *quantity > 0) {
            let changed =
                self.change(cache, conn, tenant, operation_id, line, *kind, key, *quantity, None, None).await?;
            if let Err(error) = changed {
                return Err(corrupt(format!("{what}: {error}")));
            }
            line += 1;
        }
        Ok(line)
    }

    /// Changes one balance by a movement (creating the balance for a receipt), or refuses.
    #[allow(clippy::too_many_arguments)]
    async fn change(
        &mut self,
        cache: &mut WriterCache,
        conn: &mut Conn,
        tenant: &str,
        operation_id: &str,
        line: i64,
        kind: MovementKind,
        key: &StockKey,
        quantity: i64,
        reason: Option<&str>,
        new_lot: Option<(Option<&str>, LotStatus)>,
    ) -> Result<Result<(), WriteError>, sqlx::Error> {
        let entry = self.entry(cache, conn, tenant, &key.gtin).await?;
        let position = entry.balance_index(key).ok();
        if let (None, Some((expiry, _))) = (position, new_lot)
            && let Some(other) =
                entry.balances.iter().find(|cached| cached.key.lot == key.lot && cached.expiry.as_deref() != expiry)
        {
            // A lot has one expiry, in every zone and at every site.
            return Ok(Err(WriteError::Refused {
                code: "lot-conflict",
                detail: format!(
                    "lot {:?} of {} is stored with expiry {} in {} zone {}, not {}: a lot has one expiry",
                    key.lot,
                    key.gtin,
                    expiry_text(other.expiry.as_deref()),
                    other.key.location,
                    other.key.zone,
                    expiry_text(expiry)
                ),
                errors: Vec::new(),
            }));
        }
        let index = match (position, new_lot) {
            (Some(index), _) => index,
            (None, Some((expiry, status))) => entry.insert_balance(CachedBalance::new(
                key.clone(),
                expiry.map(str::to_owned),
                status,
                Balance::default(),
            )?),
            (None, None) => {
                return Ok(Err(WriteError::Refused {
                    code: "insufficient-stock",
                    detail: format!("no stock of {} lot {:?} in {} zone {}", key.gtin, key.lot, key.location, key.zone),
                    errors: Vec::new(),
                }));
            }
        };
        let cached = &mut entry.balances[index];
        if let Some((_, status)) = new_lot
            && position.is_some()
            && cached.status != status
        {
            return Ok(Err(WriteError::Refused {
                code: "lot-conflict",
                detail: format!(
                    "lot {:?} of {} is {} in {} zone {}: receive it with that status, or change the lot's status first",
                    key.lot,
                    key.gtin,
                    cached.status.name(),
                    key.location,
                    key.zone
                ),
                errors: Vec::new(),
            }));
        }
        if let Some((expiry, _)) = new_lot
            && cached.expiry.as_deref() != expiry
        {
            return Ok(Err(WriteError::Refused {
                code: "lot-conflict",
                detail: format!(
                    "lot {:?} of {} is stored with expiry {}, not {}: a lot has one expiry",
                    key.lot,
                    key.gtin,
                    expiry_text(cached.expiry.as_deref()),
                    expiry_text(expiry)
                ),
                errors: Vec::new(),
            }));
        }
        let created = position.is_none();
        let next = match cached.balance.apply(kind.delta(quantity)) {
            Ok(next) => next,
            Err(error) => {
                if created {
                    entry.balances.remove(index);
                }
                return Ok(Err(WriteError::Refused {
                    code: "insufficient-stock",
                    detail: format!("{} lot {:?} in {} zone {}: {error}", key.gtin, key.lot, key.location, key.zone),
                    errors: Vec::new(),
                }));
            }
        };
        let before = (!created).then_some((cached.balance, cached.status));
        cached.balance = next;
        self.touch(tenant, key, before);
        self.movements.push(MovementRow {
            tenant: tenant.to_owned(),
            operation_id: operation_id.to_owned(),
            line,
            kind,
            key: key.clone(),
            quantity,
            reason: reason.map(str::to_owned),
        });
        Ok(Ok(()))
    }

    /// Sets the status of one balance (a `status` movement).
    #[allow(clippy::too_many_arguments)]
    async fn set_status(
        &mut self,
        cache: &mut WriterCache,
        conn: &mut Conn,
        tenant: &str,
        operation_id: &str,
        line: i64,
        key: &StockKey,
        status: LotStatus,
        reason: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let entry = self.entry(cache, conn, tenant, &key.gtin).await?;
        let Some(cached) = entry.balance_mut(key) else { return Ok(false) };
        if cached.status == status {
            return Ok(true);
        }
        let before = Some((cached.balance, cached.status));
        cached.status = status;
        self.touch(tenant, key, before);
        self.movements.push(MovementRow {
            tenant: tenant.to_owned(),
            operation_id: operation_id.to_owned(),
            line,
            kind: MovementKind::Status,
            key: key.clone(),
            quantity: 0,
            reason: Some(format!(
                "{}{}",
                status.name(),
                reason.map(|reason| format!(": {reason}")).unwrap_or_default()
            )),
        });
        Ok(true)
    }

    /// Inserts the buffered movements, reservations and orders (the balances wait for
    /// [`StockBatch::flush`]). Called before a write reads those tables.
    pub(crate) async fn flush_rows(&mut self, conn: &mut Conn, now_unix_ms: i64) -> Result<(), sqlx::Error> {
        let reserves = self.movements.iter().filter(|movement| movement.kind == MovementKind::Reserve).count();
        self.reserves_written += reserves;
        self.others_written += self.movements.len() - reserves;
        let movements: Vec<Vec<Value>> = std::mem::take(&mut self.movements)
            .into_iter()
            .map(|movement| {
                vec![
                    Value::Text(movement.tenant),
                    Value::Text(movement.operation_id),
                    Value::Integer(movement.line),
                    Value::Text(movement.kind.name().to_owned()),
                    Value::Text(movement.key.gtin),
                    Value::Text(movement.key.location),
                    Value::Text(movement.key.zone),
                    Value::Text(movement.key.lot),
                    Value::Integer(movement.quantity),
                    Value::OptionalText(movement.reason),
                    Value::Integer(now_unix_ms),
                ]
            })
            .collect();
        const MOVEMENT_COLUMNS: &[&str] = &[
            "tenant_id",
            "operation_id",
            "line",
            "kind",
            "gtin",
            "location_gln",
            "zone",
            "lot",
            "quantity",
            "reason",
            "at_unix_ms",
        ];
        insert_rows(conn, "stock_movements", MOVEMENT_COLUMNS, &movements).await?;
        insert_rows(conn, "reservations", RESERVATION_COLUMNS, &std::mem::take(&mut self.reservations)).await?;
        insert_rows(conn, "orders", ORDER_COLUMNS, &std::mem::take(&mut self.orders)).await?;
        const ORDER_EVENT_COLUMNS: &[&str] = &["tenant_id", "order_id", "seq", "status", "detail", "at_unix_ms"];
        insert_rows(conn, "order_events", ORDER_EVENT_COLUMNS, &std::mem::take(&mut self.order_events)).await?;
        // Few (a recall's held lots, a receipt or return of one): a statement each.
        for (tenant, key) in std::mem::take(&mut self.quarantine_covered) {
            execute(
                conn,
                "INSERT INTO quarantine_under_hold (tenant_id, gtin, lot, location_gln, zone) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    Arg::Text(&tenant),
                    Arg::Text(&key.gtin),
                    Arg::Text(&key.lot),
                    Arg::Text(&key.location),
                    Arg::Text(&key.zone),
                ],
            )
            .await?;
        }
        // What was inserted is no longer undone by a refusal (a later write's mark is past it).
        Ok(())
    }

    /// Writes the batch's balances (net changes, guarded) and movements: plan and write in one
    /// (the writer does them apart, see `writer::write_and_commit`).
    #[cfg(test)]
    pub(crate) async fn flush(
        &mut self,
        cache: &mut WriterCache,
        conn: &mut Conn,
        now_unix_ms: i64,
    ) -> Result<Result<(), Raced>, sqlx::Error> {
        let plan = match self.plan_flush(cache, conn).await? {
            Ok(plan) => plan,
            Err(raced) => return Ok(Err(raced)),
        };
        self.write_flush(plan, Some(cache), conn, now_unix_ms).await
    }

    /// What [`StockBatch::flush`] writes, taken from the cache (and, for balances this batch must
    /// find as it read them, from the rows): after this the write needs the cache only on
    /// PostgreSQL, which refreshes it from the rows written. So on SQLite the writer may lend the
    /// cache out meanwhile (`writer::Ahead`).
    pub(crate) async fn plan_flush(
        &mut self,
        cache: &mut WriterCache,
        conn: &mut Conn,
    ) -> Result<Result<FlushPlan, Raced>, sqlx::Error> {
        self.undo.clear();
        self.pinned.clear();
        if self.deferring && self.only_reserved(cache) {
            // Left behind: the reserve movements are the record until a later batch writes them.
            let behind = &mut cache.balances_behind;
            self.left_behind = !self.dirty.is_empty();
            for ((tenant, key), dirty) in std::mem::take(&mut self.dirty) {
                let Some(read) = dirty.read else { return Err(corrupt("a balance left behind has no row")) };
                behind.gtins.insert((tenant.clone(), key.gtin.clone()));
                behind.rows.entry((tenant, key)).or_insert(read);
            }
            behind.reserves = behind.reserves.saturating_add(self.reserves_written + self.reserves_pending());
            if !behind.rows.is_empty() {
                behind.since.get_or_insert_with(Instant::now);
            }
            return Ok(Ok(FlushPlan::default()));
        }
        // The batch did more than reserve after all: its time did not move the balances' mark.
        let move_mark = self.deferring && matches!(conn, Conn::Sqlite(_));
        // The balances left behind by earlier batches are written with this batch's, each as a net
        // change from the row as the table holds it (guarded as ever).
        for (key, read) in std::mem::take(&mut cache.balances_behind.rows) {
            match self.dirty.entry(key) {
                std::collections::btree_map::Entry::Occupied(mut dirty) => dirty.get_mut().read = Some(read),
                std::collections::btree_map::Entry::Vacant(vacant) => {
                    vacant.insert(Dirty { read: Some(read), exact: false });
                }
            }
        }
        cache.balances_behind.written();
        for ((tenant, key), dirty) in &self.dirty {
            if let (true, Some(read)) = (dirty.exact, dirty.read)
                && !still_as_read(conn, tenant, key, read).await?
            {
                return Ok(Err(Raced));
            }
        }
        let mut plan = FlushPlan { move_mark, ..FlushPlan::default() };
        for ((tenant, key), dirty) in std::mem::take(&mut self.dirty) {
            let Some(entry) = cache.gtins.get_mut(&(tenant.clone(), key.gtin.clone())) else {
                return Ok(Err(Raced));
            };
            let Some(cached) = entry.balance_mut(&key) else {
                return Ok(Err(Raced));
            };
            debug_assert!(cached.balance.check().is_ok());
            match dirty.read {
                None => plan.inserts.push(vec![
                    Value::Text(tenant),
                    Value::Text(key.gtin),
                    Value::Text(key.location),
                    Value::Text(key.zone),
                    Value::Text(key.lot),
                    Value::OptionalText(cached.expiry.clone()),
                    Value::Text(cached.status.name().to_owned()),
                    Value::Integer(cached.balance.on_hand),
                    Value::Integer(cached.balance.reserved),
                ]),
                Some((read, read_status)) => {
                    let on_hand_delta = cached.balance.on_hand - read.on_hand;
                    let reserved_delta = cached.balance.reserved - read.reserved;
                    if on_hand_delta != 0 || reserved_delta != 0 || cached.status != read_status {
                        plan.updates.push(BalanceUpdate {
                            tenant,
                            key,
                            on_hand_delta,
                            reserved_delta,
                            status: cached.status,
                            read_status,
                            expected: cached.balance,
                        });
                    }
                }
            }
        }
        Ok(Ok(plan))
    }

    /// Writes a [`FlushPlan`] and the batch's rows. `cache`: refreshed from the balances written
    /// on PostgreSQL ([`BalanceCorrection`]); not needed on SQLite (its one writer's cache holds
    /// them already). Without it (lent out) PostgreSQL's corrections wait in the batch for
    /// [`StockBatch::correct_lent_cache`].
    pub(crate) async fn write_flush(
        &mut self,
        plan: FlushPlan,
        cache: Option<&mut WriterCache>,
        conn: &mut Conn,
        now_unix_ms: i64,
    ) -> Result<Result<(), Raced>, sqlx::Error> {
        if let Conn::Sqlite(connection) = conn
            && plan.move_mark
        {
            sqlx::query("UPDATE writer_clock SET balances_through_unix_ms = $1 WHERE singleton = 1")
                .bind(now_unix_ms)
                .execute(&mut **connection)
                .await?;
        }
        const BALANCE_COLUMNS: &[&str] = &[
            "tenant_id",
            "gtin",
            "location_gln",
            "zone",
            "lot",
            "expiry_date",
            "status",
            "on_hand",
            "reserved",
            "updated_unix_ms",
        ];
        let inserts: Vec<Vec<Value>> = plan
            .inserts
            .into_iter()
            .map(|mut row| {
                row.push(Value::Integer(now_unix_ms));
                row
            })
            .collect();
        insert_rows(conn, "stock_balances", BALANCE_COLUMNS, &inserts).await?;
        let updates = plan.updates;
        let runs: Vec<crate::writer::Run> = match conn {
            Conn::Sqlite(_) => crate::writer::padded_runs(updates.len(), UPDATE_WIDTH),
            // Arrays, not padded: each run's shape is its rows.
            Conn::Postgres(_) => (0..updates.len())
                .step_by(crate::writer::UNNEST_ROWS_MAX)
                .map(|start| start..(start + crate::writer::UNNEST_ROWS_MAX).min(updates.len()))
                .map(|rows| crate::writer::Run { shape: rows.len(), rows })
                .collect(),
        };
        let mut corrections = Vec::new();
        for run in runs {
            let rows = &updates[run.rows.clone()];
            let updated = match conn {
                Conn::Sqlite(_) => update_balances_sqlite(conn, rows, run.shape, now_unix_ms).await?,
                Conn::Postgres(connection) => update_balances(connection, rows, now_unix_ms, &mut corrections).await?,
            };
            if !updated {
                return Ok(Err(Raced));
            }
        }
        match cache {
            Some(cache) => {
                // The balances as written hold (the table's checks), and so the cache corrected to them.
                let holds = correct_cache(cache, corrections);
                debug_assert!(holds, "a balance as written breaks the ledger's invariants");
            }
            None => self.lent_corrections.extend(corrections),
        }
        self.flush_rows(conn, now_unix_ms).await?;
        Ok(Ok(()))
    }

    /// Once the cache lent out while this batch was written is back (`writer::Ahead`), and the
    /// batch committed: corrects it by the balances as written ([`BalanceCorrection`]), and the
    /// balances as `ahead` (the writes applied meanwhile) read them, so that its net changes stay
    /// its own. Answers whether the corrected balances hold: not when another API node took units
    /// the writes applied ahead reserved too (the cache then counts more reserved than on hand,
    /// and those writes must be applied again on fresh rows).
    #[must_use]
    pub(crate) fn correct_lent_cache(&mut self, cache: &mut WriterCache, ahead: Option<&mut StockBatch>) -> bool {
        let corrections = std::mem::take(&mut self.lent_corrections);
        if let Some(ahead) = ahead {
            for correction in &corrections {
                if let Some(Dirty { read: Some((read, _)), .. }) =
                    ahead.dirty.get_mut(&(correction.tenant.clone(), correction.key.clone()))
                {
                    read.on_hand += correction.on_hand;
                    read.reserved += correction.reserved;
                }
            }
        }
        correct_cache(cache, corrections)
    }
}

/// A batch's balances to write, as [`StockBatch::plan_flush`] took them from the cache.
#[derive(Debug, Default)]
pub(crate) struct FlushPlan {
    /// New balances (their rows without `updated_unix_ms`).
    inserts: Vec<Vec<Value>>,
    updates: Vec<BalanceUpdate>,
    /// A deferring batch that wrote its balances after all moves the balances' mark itself.
    move_mark: bool,
}

impl FlushPlan {
    /// The (tenant, GTIN)s whose stock came in: a new balance, one with more units free than
    /// before (received, counted or returned, released by an order), or one whose status changed.
    /// Not those that only lost free units (reserved, shipped, scrapped): another node's writer
    /// that still counts them fails its guard and reads them again. Sorted, each once.
    pub(crate) fn stocked(&self) -> Vec<(String, String)> {
        let mut stocked: Vec<(String, String)> = Vec::new();
        for row in &self.inserts {
            if let (Some(Value::Text(tenant)), Some(Value::Text(gtin))) = (row.first(), row.get(1)) {
                stocked.push((tenant.clone(), gtin.clone()));
            }
        }
        for update in &self.updates {
            if update.on_hand_delta - update.reserved_delta > 0 || update.status != update.read_status {
                stocked.push((update.tenant.clone(), update.key.gtin.clone()));
            }
        }
        stocked.sort_unstable();
        stocked.dedup();
        stocked
    }
}

/// A batch's net change to one balance.
#[derive(Debug)]
struct BalanceUpdate {
    tenant: String,
    key: StockKey,
    on_hand_delta: i64,
    reserved_delta: i64,
    status: LotStatus,
    read_status: LotStatus,
    /// The balance as the cache holds it when the batch is planned (PostgreSQL: the row written
    /// differs when another API node changed it meanwhile, see [`BalanceCorrection`]).
    expected: Balance,
}

/// How a balance as written on PostgreSQL differs from the cache's when its batch was planned
/// (another API node moved it meanwhile): added to the cached balance. At once when the writer
/// holds its cache; after the commit while the cache is lent to apply the next writes ahead
/// (`writer::Ahead`), whose changes it then holds besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BalanceCorrection {
    tenant: String,
    key: StockKey,
    on_hand: i64,
    reserved: i64,
}

/// Adds corrections to the cached balances; a balance no longer cached is read afresh when next
/// used, and needs none. Answers whether every corrected balance holds (on hand never negative,
/// reserved within it).
fn correct_cache(cache: &mut WriterCache, corrections: Vec<BalanceCorrection>) -> bool {
    let mut holds = true;
    for correction in corrections {
        if let Some(entry) = cache.gtins.get_mut(&(correction.tenant, correction.key.gtin.clone()))
            && let Some(cached) = entry.balance_mut(&correction.key)
        {
            cached.balance.on_hand += correction.on_hand;
            cached.balance.reserved += correction.reserved;
            holds &= cached.balance.check().is_ok();
        }
    }
    holds
}

/// Whether a balance is still as read, locking its row until the transaction ends on PostgreSQL
/// (SQLite's writer holds the database's write lock already).
async fn still_as_read(
    conn: &mut Conn,
    tenant: &str,
    key: &StockKey,
    read: (Balance, LotStatus),
) -> Result<bool, sqlx::Error> {
    let lock = match conn {
        Conn::Sqlite(_) => "",
        Conn::Postgres(_) => " FOR UPDATE",
    };
    let sql = format!(
        "SELECT on_hand, reserved, status FROM stock_balances WHERE tenant_id = $1 AND gtin = $2 AND location_gln = $3 \
         AND zone = $4 AND lot = $5{lock}"
    );
    let row: Option<(i64, i64, String)> = on_conn!(conn, connection => sqlx::query_as(&sql)
        .bind(tenant).bind(&key.gtin).bind(&key.location).bind(&key.zone).bind(&key.lot)
        .fetch_optional(&mut *connection).await)?;
    let (balance, status) = read;
    Ok(row.is_some_and(|(on_hand, reserved, stored)| {
        on_hand == balance.on_hand && reserved == balance.reserved && stored == status.name()
    }))
}

/// Applies net changes to balances in one statement, each guarded by the invariants and the
/// status read. Answers false if any guard failed (another API node changed a balance so that
/// this batch's decisions no longer hold).
///
/// On PostgreSQL, where several API nodes write, the cache is corrected by the rows as written
/// (`RETURNING`): each that differs from the balance expected adds a [`BalanceCorrection`] to
/// `corrections`. On SQLite the store runs one writer task (see `WriterHandle::start`) and the
/// cache already holds the rows as written, so only the count of rows updated is checked
/// ([`update_balances_sqlite`]). A second process writing the same SQLite file would leave this
/// cache stale until the entry is reloaded (`CACHE_LIFETIME`): the guards still keep every
/// invariant in the database, but orders could be refused for stock the cache does not know of.
/// One server per SQLite file.
async fn update_balances(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    updates: &[BalanceUpdate],
    now_unix_ms: i64,
    corrections: &mut Vec<BalanceCorrection>,
) -> Result<bool, sqlx::Error> {
    // The net changes as arrays (one statement shape, one round trip).
    let column = |field: fn(&BalanceUpdate) -> &str| updates.iter().map(field).collect::<Vec<&str>>();
    let written: Vec<(String, String, String, String, String, i64, i64)> = sqlx::query_as(
        "UPDATE stock_balances SET on_hand = on_hand + v.v_on_hand, reserved = reserved + v.v_reserved, \
         status = v.v_status, updated_unix_ms = $1 \
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], \
         $9::text[], $10::text[]) \
         AS v (v_tenant, v_gtin, v_location, v_zone, v_lot, v_on_hand, v_reserved, v_status, v_read_status) \
         WHERE tenant_id = v.v_tenant AND gtin = v.v_gtin AND location_gln = v.v_location AND zone = v.v_zone \
         AND lot = v.v_lot AND status = v.v_read_status AND on_hand + v.v_on_hand >= 0 \
         AND reserved + v.v_reserved >= 0 AND reserved + v.v_reserved <= on_hand + v.v_on_hand \
         RETURNING tenant_id, gtin, location_gln, zone, lot, on_hand, reserved",
    )
    .bind(now_unix_ms)
    .bind(column(|update| &update.tenant))
    .bind(column(|update| &update.key.gtin))
    .bind(column(|update| &update.key.location))
    .bind(column(|update| &update.key.zone))
    .bind(column(|update| &update.key.lot))
    .bind(updates.iter().map(|update| update.on_hand_delta).collect::<Vec<i64>>())
    .bind(updates.iter().map(|update| update.reserved_delta).collect::<Vec<i64>>())
    .bind(column(|update| update.status.name()))
    .bind(column(|update| update.read_status.name()))
    .fetch_all(&mut **connection)
    .await?;
    if written.len() != updates.len() {
        return Ok(false);
    }
    let expected: HashMap<(&str, &str, &str, &str, &str), Balance> = updates
        .iter()
        .map(|update| {
            let key = &update.key;
            (
                (update.tenant.as_str(), key.gtin.as_str(), key.location.as_str(), key.zone.as_str(), key.lot.as_str()),
                update.expected,
            )
        })
        .collect();
    for (tenant, gtin, location, zone, lot, on_hand, reserved) in written {
        let Some(&expected) =
            expected.get(&(tenant.as_str(), gtin.as_str(), location.as_str(), zone.as_str(), lot.as_str()))
        else {
            return Err(corrupt("a balance written is not among those updated"));
        };
        if (on_hand, reserved) != (expected.on_hand, expected.reserved) {
            corrections.push(BalanceCorrection {
                tenant,
                key: StockKey { gtin, location, zone, lot },
                on_hand: on_hand - expected.on_hand,
                reserved: reserved - expected.reserved,
            });
        }
    }
    Ok(true)
}

/// The columns SQLite's guarded update of `updates` sets (besides `updated_unix_ms`). SQLite
/// rewrites an index entry whenever an UPDATE names a column the index or its `WHERE` reads,
/// changed or not: naming `on_hand` rewrote each balance's `stock_balances_held_at` entry (a tenth
/// of the pages an order batch wrote). A batch that only reserves and releases (every batch of
/// orders) names `reserved` alone.
fn sqlite_balance_set(updates: &[BalanceUpdate]) -> &'static str {
    if updates.iter().all(|update| update.on_hand_delta == 0 && update.status == update.read_status) {
        "reserved = reserved + v.v_reserved"
    } else {
        "on_hand = on_hand + v.v_on_hand, reserved = reserved + v.v_reserved, status = v.v_status"
    }
}

/// Values bound per balance in SQLite's guarded update.
const UPDATE_WIDTH: usize = 9;

/// SQLite: the net changes in one statement of `SELECT … UNION ALL …` rows; the one writer's
/// cache already holds the rows as written, so the count of rows updated is the guards' answer.
async fn update_balances_sqlite(
    conn: &mut Conn,
    updates: &[BalanceUpdate],
    shape: usize,
    now_unix_ms: i64,
) -> Result<bool, sqlx::Error> {
    debug_assert!(!updates.is_empty() && shape >= updates.len());
    // Room for `shape` rows, as `writer::padded_runs` gave them; a padding row is all NULL and
    // matches no balance.
    let mut rows = Vec::with_capacity(shape);
    for index in 0..shape {
        let first = 2 + index * UPDATE_WIDTH;
        let p = |offset: usize| crate::epcis::placeholder(conn, first + offset);
        rows.push(format!(
            "SELECT CAST({} AS TEXT) AS v_tenant, CAST({} AS TEXT) AS v_gtin, CAST({} AS TEXT) AS v_location, \
             CAST({} AS TEXT) AS v_zone, CAST({} AS TEXT) AS v_lot, CAST({} AS BIGINT) AS v_on_hand, \
             CAST({} AS BIGINT) AS v_reserved, CAST({} AS TEXT) AS v_status, CAST({} AS TEXT) AS v_read_status",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8)
        ));
    }
    let set = sqlite_balance_set(updates);
    let sql = format!(
        "UPDATE stock_balances SET {set}, updated_unix_ms = {} FROM ({}) AS v \
         WHERE tenant_id = v.v_tenant AND gtin = v.v_gtin AND location_gln = v.v_location AND zone = v.v_zone \
         AND lot = v.v_lot AND status = v.v_read_status AND on_hand + v.v_on_hand >= 0 \
         AND reserved + v.v_reserved >= 0 AND reserved + v.v_reserved <= on_hand + v.v_on_hand",
        crate::epcis::placeholder(conn, 1),
        rows.join(" UNION ALL "),
    );
    let mut args = Vec::with_capacity(1 + shape * UPDATE_WIDTH);
    args.push(Arg::Integer(now_unix_ms));
    for update in updates {
        args.extend([
            Arg::Text(&update.tenant),
            Arg::Text(&update.key.gtin),
            Arg::Text(&update.key.location),
            Arg::Text(&update.key.zone),
            Arg::Text(&update.key.lot),
            Arg::Integer(update.on_hand_delta),
            Arg::Integer(update.reserved_delta),
            Arg::Text(update.status.name()),
            Arg::Text(update.read_status.name()),
        ]);
    }
    args.extend((0..(shape - updates.len()) * UPDATE_WIDTH).map(|_| Arg::OptionalText(None)));
    Ok(execute(conn, &sql, &args).await? == updates.len() as u64)
}

async fn load_gtin(conn: &mut Conn, tenant: &str, gtin: &str, lagging: bool) -> Result<GtinEntry, sqlx::Error> {
    let mut loaded = load_gtins(conn, tenant, &[gtin], lagging).await?;
    loaded.remove(gtin).ok_or_else(|| corrupt("a loaded GTIN is missing"))
}

/// A balance as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct BalanceRow {
    gtin: String,
    location_gln: String,
    zone: String,
    lot: String,
    expiry_date: Option<String>,
    status: String,
    on_hand: i64,
    reserved: i64,
}

/// The columns of a [`BalanceRow`].
pub(crate) const BALANCE_ROW_COLUMNS: &str = "gtin, location_gln, zone, lot, expiry_date, status, on_hand, reserved";

impl BalanceRow {
    pub(crate) fn cached(self) -> Result<CachedBalance, sqlx::Error> {
        let status = LotStatus::parse(&self.status).ok_or_else(|| corrupt(format!("lot status {:?}", self.status)))?;
        let key = StockKey { gtin: self.gtin, location: self.location_gln, zone: self.zone, lot: self.lot };
        CachedBalance::new(key, self.expiry_date, status, Balance { on_hand: self.on_hand, reserved: self.reserved })
    }
}

/// What allocation needs of a product, as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct ProductRuleRow {
    pub gtin: String,
    temperature_class: String,
    temperature_min_celsius: Option<f64>,
    temperature_max_celsius: Option<f64>,
    min_remaining_shelf_life_days: Option<i64>,
}

/// The columns of a [`ProductRuleRow`].
pub(crate) const PRODUCT_RULE_COLUMNS: &str =
    "gtin, temperature_class, temperature_min_celsius, temperature_max_celsius, min_remaining_shelf_life_days";

impl ProductRuleRow {
    pub(crate) fn rule(&self) -> Result<ProductRule, sqlx::Error> {
        Ok(ProductRule {
            gtin: Gtin::parse(&self.gtin).map_err(corrupt)?,
            class: network::TemperatureClass::new(
                &self.temperature_class,
                self.temperature_min_celsius,
                self.temperature_max_celsius,
            )
            .map_err(corrupt)?,
            min_remaining_shelf_life_days: self.min_remaining_shelf_life_days.unwrap_or(0) as u32,
        })
    }
}

/// Loads the product rules and balances of GTINs: two queries on PostgreSQL, two per run of up to
/// 128 GTINs on SQLite (`writer::fetch_for_keys`).
/// Reads GTINs' product rules and balances; `lagging` when `stock_balances` may lack reserves of
/// some of them ([`BalancesBehind`]): their tail is then added, in the same statement.
async fn load_gtins(
    conn: &mut Conn,
    tenant: &str,
    gtins: &[&str],
    lagging: bool,
) -> Result<HashMap<String, GtinEntry>, sqlx::Error> {
    let mut entries: HashMap<String, GtinEntry> = gtins
        .iter()
        .map(|gtin| ((*gtin).to_owned(), GtinEntry { loaded: Instant::now(), product: None, balances: Vec::new() }))
        .collect();
    let products: Vec<ProductRuleRow> = crate::writer::fetch_for_keys(conn, tenant, gtins, |tenant, condition| {
        format!("SELECT {PRODUCT_RULE_COLUMNS} FROM products WHERE tenant_id = {tenant} AND gtin {condition}")
    })
    .await?;
    for row in products {
        let rule = row.rule()?;
        if let Some(entry) = entries.get_mut(&row.gtin) {
            entry.product = Some(rule);
        }
    }
    let balances: Vec<BalanceRow> =
        match conn {
            // One GTIN a statement: each reads only its own part of the tail.
            Conn::Sqlite(connection) if lagging => {
                let mut rows = Vec::new();
                for gtin in gtins {
                    rows.extend(
                        sqlx::query_as::<_, BalanceRow>(SQLITE_BALANCES_OF_GTIN_WITH_TAIL)
                            .bind(tenant)
                            .bind(*gtin)
                            .fetch_all(&mut **connection)
                            .await?,
                    );
                }
                rows
            }
            _ => crate::writer::fetch_for_keys(conn, tenant, gtins, |tenant, condition| {
                format!(
                    "SELECT {BALANCE_ROW_COLUMNS} FROM stock_balances WHERE tenant_id = {tenant} AND gtin {condition}"
                )
            })
            .await?,
        };
    for row in balances {
        let cached = row.cached()?;
        if let Some(entry) = entries.get_mut(&cached.key.gtin) {
            entry.balances.push(cached);
        }
    }
    for entry in entries.values_mut() {
        entry.balances.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }
    Ok(entries)
}

/// A site of the network as this tenant sees it, from the cached snapshot, or read again when the
/// snapshot does not have it (another API node may have created it since).
async fn fresh_site(
    cache: &mut WriterCache,
    conn: &mut Conn,
    tenant: &str,
    gln: &Gln,
) -> Result<Option<Location>, sqlx::Error> {
    for attempt in 0..2 {
        if attempt == 1 {
            cache.networks.remove(tenant);
        }
        let network = network_snapshot(cache, conn, tenant).await?;
        if let Some(site) = network.sites.iter().find(|site| site.gln == *gln) {
            return Ok(Some(site.clone()));
        }
    }
    Ok(None)
}

/// A site that a write puts stock into, or announces pallets to, as stored now. On PostgreSQL its
/// row is locked (`FOR SHARE`) until the transaction ends, and its kind and zones are read again
/// under the lock: a change of the location on another API node (which locks the row first, see
/// `writer::put_location`) has committed, and is seen here, or waits for this write and then sees
/// its stock. (The writer's snapshot may be up to [`CACHE_LIFETIME`] old; SQLite's one writer
/// applies every location change itself and forgets its snapshot then.)
async fn stock_site(
    cache: &mut WriterCache,
    conn: &mut Conn,
    tenant: &str,
    gln: &Gln,
) -> Result<Option<Location>, sqlx::Error> {
    let Conn::Postgres(_) = conn else { return fresh_site(cache, conn, tenant, gln).await };
    // A GLN has one owner (`gln_owners`): the tenant or the network.
    let locked: Option<(String, String)> = on_conn!(conn, connection => sqlx::query_as(
        "SELECT tenant_id, kind FROM locations WHERE tenant_id IN ($1, 'network') AND gln = $2 FOR SHARE")
        .bind(tenant).bind(gln.as_str()).fetch_optional(&mut *connection).await)?;
    let Some((owner, kind)) = locked else { return Ok(None) };
    let zones: Vec<(String, Option<f64>, Option<f64>, i64)> = on_conn!(conn, connection => sqlx::query_as(
        "SELECT zone_name, min_celsius, max_celsius, capacity_pallets FROM location_zones \
         WHERE tenant_id = $1 AND gln = $2 ORDER BY position")
        .bind(&owner).bind(gln.as_str()).fetch_all(&mut *connection).await)?;
    let as_stored = |site: &Location| {
        site.kind.name() == kind
            && site.zones.len() == zones.len()
            && site.zones.iter().zip(&zones).all(|(zone, (name, min, max, capacity))| {
                zone.name.as_str() == name
                    && (zone.range.min_celsius, zone.range.max_celsius) == (*min, *max)
                    && i64::from(zone.capacity_pallets) == *capacity
            })
    };
    if let Some(site) = fresh_site(cache, conn, tenant, gln).await?
        && as_stored(&site)
    {
        return Ok(Some(site));
    }
    // Changed since the snapshot was read: read again (after the lock, so as stored now).
    cache.forget_networks(None);
    fresh_site(cache, conn, tenant, gln).await
}

/// Where a product's units lie in a zone that would not keep them at `class` (its temperature
/// class about to change): the first such site and zone, from its balances as the table and this
/// batch hold them (read afresh, as before an order is refused).
pub(crate) async fn stock_unsuited_to(
    batch: &mut StockBatch,
    cache: &mut WriterCache,
    conn: &mut Conn,
    tenant: &str,
    gtin: &str,
    class: &network::TemperatureClass,
) -> Result<Option<(Gln, ZoneName)>, sqlx::Error> {
    batch.refresh(cache, conn, tenant, gtin).await?;
    let entry = batch.entry(cache, conn, tenant, gtin).await?;
    let held: std::collections::BTreeSet<(Gln, ZoneName)> = entry
        .balances
        .iter()
        .filter(|cached| cached.balance.on_hand > 0)
        .map(|cached| (cached.site.clone(), cached.zone.clone()))
        .collect();
    for (gln, zone) in held {
        let site = stock_site(cache, conn, tenant, &gln).await?;
        let kept = site.as_ref().and_then(|site| site.zones.iter().find(|kept| kept.name == zone));
        if !kept.is_some_and(|kept| kept.suits(class)) {
            return Ok(Some((gln, zone)));
        }
    }
    Ok(None)
}

pub(crate) async fn network_snapshot(
    cache: &mut WriterCache,
    conn: &mut Conn,
    tenant: &str,
) -> Result<Arc<NetworkSnapshot>, sqlx::Error> {
    if let Some((loaded, snapshot)) = cache.networks.get(tenant)
        && loaded.elapsed() < CACHE_LIFETIME
    {
        return Ok(snapshot.clone());
    }
    let visible = "tenant_id IN ($1, 'network')";
    let locations: Vec<LocationRow> = on_conn!(conn, connection => sqlx::query_as(&format!(
        "SELECT {LOCATION_COLUMNS} FROM locations WHERE {visible} ORDER BY gln, tenant_id LIMIT {SITES_MAX}"))
        .bind(tenant).fetch_all(&mut *connection).await)?;
    let zones: Vec<ZoneRow> = on_conn!(conn, connection => sqlx::query_as(&format!(
        "SELECT tenant_id, gln, zone_name, min_celsius, max_celsius, capacity_pallets FROM location_zones \
         WHERE {visible} ORDER BY tenant_id, gln, position"))
        .bind(tenant).fetch_all(&mut *connection).await)?;
    let cutoffs: Vec<CutoffRow> = on_conn!(conn, connection => sqlx::query_as(&format!(
        "SELECT tenant_id, gln, service, cutoff_local_time FROM location_cutoffs WHERE {visible} \
         ORDER BY tenant_id, gln, service"))
        .bind(tenant).fetch_all(&mut *connection).await)?;
    let lanes: Vec<LaneRow> = on_conn!(conn, connection => sqlx::query_as(&format!(
        "SELECT {LANE_COLUMNS} FROM lanes WHERE {visible} ORDER BY lane_id, tenant_id LIMIT {SITES_MAX}"))
        .bind(tenant).fetch_all(&mut *connection).await)?;
    let mut zones_of: HashMap<(String, String), Vec<ZoneRow>> = HashMap::new();
    for zone in zones {
        zones_of.entry((zone.tenant_id.clone(), zone.gln.clone())).or_default().push(zone);
    }
    let mut cutoffs_of: HashMap<(String, String), Vec<CutoffRow>> = HashMap::new();
    for cutoff in cutoffs {
        cutoffs_of.entry((cutoff.tenant_id.clone(), cutoff.gln.clone())).or_default().push(cutoff);
    }
    let mut sites = Vec::with_capacity(locations.len());
    for row in locations {
        let key = (row.tenant_id.clone(), row.gln.clone());
        let zones = zones_of.remove(&key).unwrap_or_default();
        let cutoffs = cutoffs_of.remove(&key).unwrap_or_default();
        sites.push(row.into_domain(zones, cutoffs).map_err(corrupt)?);
    }
    let lanes = lanes.into_iter().map(|row| row.into_domain().map_err(corrupt)).collect::<Result<Vec<_>, _>>()?;
    let snapshot = Arc::new(NetworkSnapshot { sites, lanes });
    cache.networks.insert(tenant.to_owned(), (Instant::now(), snapshot.clone()));
    Ok(snapshot)
}

// ---------- mutations ----------

/// A pallet announced by an advance shipping notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsnPallet {
    pub sscc: Sscc,
    pub gtin: Gtin,
    pub lot: String,
    /// ISO date `YYYY-MM-DD`.
    pub expiry: Option<String>,
    pub quantity: i64,
}

/// Where an order goes: a pickup point (a location's GLN) or coordinates with a time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderDestination {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pickup_point: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latitude_degrees: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub longitude_degrees: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time_zone: Option<String>,
    /// A coarse area (postal district, city) for reports; never a street address.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub area: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlaceOrder {
    pub order_id: String,
    pub lines: Vec<Line>,
    pub destination: OrderDestination,
    pub service: Service,
    pub latest_delivery_unix_ms: Option<i64>,
    /// The reservation expires unless the order moves on (to picking) within this time.
    pub hold_ms: Option<i64>,
}

/// Where a return's restocked units go: a zone at each pick's site (default: the zone it was
/// picked from), and the status they take there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestockTo {
    pub zone: Option<String>,
    /// `available` or `quarantine`. A balance holds one status: `quarantine` asked into an
    /// available balance is refused (`lot-conflict`) unless it is empty and in the named zone,
    /// when it takes it. A balance in quarantine, on hold or expired keeps its status, a new
    /// one takes it as a receipt's would (`receipt_status`), and units of a recalled lot come
    /// back `recalled`. Default: `available`.
    pub status: Option<LotStatus>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FulfilmentMutation {
    /// Announces pallets for a location.
    CreateAsn {
        asn_id: String,
        location: Gln,
        expected_unix_ms: Option<i64>,
        pallets: Vec<AsnPallet>,
    },
    /// Receives the ASN's pallets (all not yet received, or the listed ones) into a zone.
    ReceiveAsn {
        asn_id: String,
        receipt_id: String,
        zone: ZoneName,
        ssccs: Option<Vec<Sscc>>,
        status: LotStatus,
        /// The received lots (GTIN, lot; sorted) the write's events say come in recalled:
        /// refused ([`RECALLED_MEANWHILE`]) if the recalled ones are others when it is applied.
        /// None: no events to match.
        recalled: Option<Vec<(String, String)>>,
    },
    /// A cycle count: sets the balance's on hand to `counted` with an `adjust` movement.
    Count {
        operation_id: String,
        location: Gln,
        zone: ZoneName,
        gtin: Gtin,
        lot: String,
        counted: i64,
        /// The on-hand the counter started from: refused if it is not the on-hand now.
        expected_on_hand: Option<i64>,
        reason: String,
    },
    /// Takes free units of a balance out of stock for good (spoiled, damaged, destroyed after a
    /// recall): a `scrap` movement. Reserved units cannot be scrapped.
    Scrap {
        operation_id: String,
        location: Gln,
        zone: ZoneName,
        gtin: Gtin,
        lot: String,
        quantity: i64,
        reason: String,
    },
    /// Moves free units of a lot from one zone to another (of the same location, or a booking
    /// between locations): `transfer_out` then `transfer_in`. The lot keeps its expiry and status;
    /// the zone it goes to must keep the product's temperature class.
    Transfer {
        operation_id: String,
        gtin: Gtin,
        lot: String,
        from: (Gln, ZoneName),
        to: (Gln, ZoneName),
        quantity: i64,
        reason: String,
        /// Whether the write's events say the units move recalled: refused
        /// ([`RECALLED_MEANWHILE`]) if the lot's recall says otherwise when it is applied.
        /// None: no events to match.
        recalled: Option<bool>,
    },
    /// Sets the status of a lot (at one location, or everywhere).
    SetLotStatus {
        operation_id: String,
        gtin: Gtin,
        lot: String,
        location: Option<Gln>,
        /// Only in this zone of `location` (a returns area, say).
        zone: Option<String>,
        status: LotStatus,
        reason: String,
    },
    PlaceOrder(Box<PlaceOrder>),
    /// Moves an order on in its lifecycle. With `expected_reservation`, refused if the order's
    /// reservation is another one (a recall allocated it again since the caller read it); with
    /// `expected_status`, if its status is another one (another step moved it since: the step's
    /// events, built from the caller's read, would not fit).
    OrderEvent {
        order_id: String,
        event_id: String,
        to: OrderStatus,
        ssccs: Vec<Sscc>,
        /// Units per pick of the allocation, in the order of its shipments' picks: `shipped`, the
        /// units that left (a short pick ships fewer and releases the rest; default every reserved
        /// unit); `returned`, the units back in stock (default none).
        units: Option<Vec<i64>>,
        expected_reservation: Option<String>,
        expected_status: Option<OrderStatus>,
        /// `delivered` or `at_pickup_point`: when the hand-over happened, if earlier than the
        /// write (a courier's device syncing late); the order's delivery or arrival time, while
        /// its history keeps the write's time (webhook cursors move in write order).
        handed_over_unix_ms: Option<i64>,
        /// `returned`: where the restocked units go, if not back as they were picked.
        restock_to: Option<RestockTo>,
        /// `returned` with units restocked: the restocked lots (GTIN, lot; sorted) the write's
        /// events say come back recalled, refused ([`RECALLED_MEANWHILE`]) if the recalled ones
        /// are others when it is applied. None: no events to match.
        recalled: Option<Vec<(String, String)>>,
        /// When the step happened: the `at` its sender said, or when it was recorded.
        happened: StepTime,
    },
    /// Nothing of its own: the batch it runs in expires the lapsed holds of every tenant, as each
    /// batch with a fulfilment write does. The server's worker sends it when a hold has lapsed, so
    /// a quiet platform cancels such orders (and tells their webhooks) within seconds.
    ExpireHolds,
    /// Registers a webhook for the tenant's order transitions (from now on).
    PutWebhook {
        webhook_id: String,
        url: String,
        secret: String,
    },
    DeleteWebhook {
        webhook_id: String,
    },
    /// A delivery is about to be sent: the webhook is this delivery's until `lease_until_unix_ms`
    /// (its next attempt moves there, so no other API node finds it due meanwhile), if it is
    /// still as read (`seen_next_attempt_unix_ms`); else refused (409 `conflict`): another node
    /// delivers it. The lease's end is the delivery's token: its outcome is recorded only while
    /// the webhook still holds it.
    ClaimWebhook {
        webhook_id: String,
        seen_next_attempt_unix_ms: i64,
        lease_until_unix_ms: i64,
    },
    /// A delivery answered 2xx: the cursors move past `through` (an order transition) and
    /// `alarms_through` (an alarm transition), and the webhook is due again at once. Nothing is
    /// written if its lease (`lease_until_unix_ms`, from [`FulfilmentMutation::ClaimWebhook`]) has
    /// passed to another delivery.
    WebhookDelivered {
        webhook_id: String,
        lease_until_unix_ms: i64,
        through: Option<TransitionCursor>,
        alarms_through: Option<TransitionCursor>,
    },
    /// A delivery failed: try again at `next_attempt_unix_ms` (if it still holds its lease).
    WebhookFailed {
        webhook_id: String,
        lease_until_unix_ms: i64,
        next_attempt_unix_ms: i64,
        error: String,
    },
    /// Recalls lots of a product. `put_back`: the orders, `picking` or `packed` and holding the
    /// lots, whose picked units the write's events put back (a pallet unpacked, or `storing`),
    /// each with the reservation it was picked under and its status (sorted by order). `held`: the units on hand of the lots by balance (key order, none of zero),
    /// which the write's events record as held back. Refused ([`RECALL_CHANGED`]) if, when the
    /// recall is applied, the orders picking or packed with the lots are others, one was allocated and
    /// packed again meanwhile (its pallet holds other picks), or the units on hand differ.
    /// `hold`: lots made from the recalled ones (the tenant's own products, as the server's
    /// trace found them, at most [`RECALL_HOLDS_MAX`]), put on `hold` where they are available
    /// or in quarantine, and kept for the lot (`held_lots`): a pallet of it received later (or
    /// units returned into a named zone) come in on hold into a new balance, until the whole lot
    /// is made available again (`SetLotStatus` without a location, which ends the hold).
    Recall {
        recall_id: String,
        gtin: Gtin,
        lots: Vec<String>,
        reason: String,
        /// What consumers are told (at most [`RECALL_NOTICE_CHARS_MAX`] characters, checked by
        /// the server).
        public_notice: Option<String>,
        put_back: Vec<(String, String, OrderStatus)>,
        held: Vec<(StockKey, i64)>,
        hold: Vec<(Gtin, String)>,
    },
}

/// The detail of a receipt, transfer or return refused because a lot it moves was recalled (or
/// its recall seen) between the read its events were built from and the write: the server builds
/// them again.
pub const RECALLED_MEANWHILE: &str = "a lot of this step was recalled meanwhile";

/// The detail of a recall refused because the orders packed with its lots, or their units on
/// hand, changed between the read its events were built from and the write: the server builds
/// them again.
pub const RECALL_CHANGED: &str =
    "the stock of these lots, or the orders picking or packed with them, changed meanwhile";

// ---------- stored orders ----------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLine {
    pub gtin: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPick {
    pub line: usize,
    pub zone: String,
    pub lot: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expiry: Option<String>,
    pub quantity: i64,
    /// The units it shipped, once the order shipped: below `quantity` after a short pick. (Orders
    /// shipped before this was kept have none; they shipped `quantity` unless their history says
    /// "short pick".)
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shipped: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredShipment {
    pub site: String,
    pub delivering_site: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lane: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lane_departure_unix_ms: Option<i64>,
    pub pick_from_unix_ms: i64,
    pub ready_unix_ms: i64,
    pub last_mile_departure_unix_ms: i64,
    pub last_mile_km: f64,
    pub promised_by_unix_ms: i64,
    pub cost_cents: u64,
    pub picks: Vec<StoredPick>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sscc: Option<String>,
}

impl StoredShipment {
    /// Whether the order shipped and this shipment took no unit (its picks came up empty): it
    /// goes nowhere, and the order is delivered without it.
    pub fn shipped_nothing(&self) -> bool {
        !self.picks.is_empty() && self.picks.iter().all(|pick| pick.shipped == Some(0))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCandidate {
    pub site: String,
    /// `chosen`, `passed` (could ship all, another was better), `partial`, `no_route`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cost_cents: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub promised_by_unix_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub eligible_units: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAllocation {
    pub rule: String,
    pub shipments: Vec<StoredShipment>,
    pub candidates: Vec<StoredCandidate>,
    /// Sites considered (the stored candidates are the first [`CANDIDATES_STORED_MAX`]).
    #[serde(default)]
    pub candidates_considered: usize,
    /// Why the order needs a person (e.g. a recall left it without stock).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub flags: Vec<String>,
    /// The destination's time zone (IANA name) the promise was made in: the pickup point's, or
    /// the one the order gave. Absent in orders stored before it was kept.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time_zone: Option<String>,
}

impl StoredAllocation {
    /// The SSCCs of the order's pallets under this allocation. A pallet an earlier allocation
    /// packed (a recall took its stock and unpacked it) is not among them: its SSCC named that
    /// pallet, and packing again takes a new one (GS1: an SSCC is not reused within a year).
    pub fn own_ssccs(&self) -> impl Iterator<Item = &str> {
        self.shipments.iter().filter_map(|shipment| shipment.sscc.as_deref())
    }
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub order_id: String,
    pub status: OrderStatus,
    pub service: Service,
    pub lines: Vec<StoredLine>,
    pub destination: OrderDestination,
    pub allocation: StoredAllocation,
    pub region: String,
    pub promised_by_unix_ms: i64,
    /// The promise made when the order was placed, if an allocation since moved it (a recall
    /// took its stock): the SLA measures against this one.
    pub first_promised_by_unix_ms: Option<i64>,
    pub latest_delivery_unix_ms: Option<i64>,
    pub placed_unix_ms: i64,
    /// When the service's window runs from: the placing, or the merchant's last request to
    /// allocate it again (see [`orders::OrderRequest::window_from_unix_ms`]).
    pub window_from_unix_ms: i64,
    pub delivered_unix_ms: Option<i64>,
    /// When the order reached its destination: delivered at the door, or arrived at its pickup
    /// point (collected later, at `delivered_unix_ms`). The SLA measures this one.
    pub arrived_unix_ms: Option<i64>,
    pub updated_unix_ms: i64,
    /// When the order's last step happened (its `at`, or when it was recorded; the latest so
    /// far): none before any step, and for steps recorded before this was kept.
    pub stepped_unix_ms: Option<i64>,
    /// The reservation holding the order's stock (a new one after a recall allocates it again).
    pub reservation_id: String,
    /// The reservation's state as of the read (a pending one past its timeout reads expired).
    pub reservation: ReservationState,
    pub hold_expires_unix_ms: Option<i64>,
}

impl OrderRecord {
    /// What is left of an unconfirmed order's hold (none once confirmed): an allocation made
    /// again (after a recall) holds its stock no longer than the first did.
    fn hold_left_ms(&self, now_unix_ms: i64) -> Option<i64> {
        self.hold_expires_unix_ms.map(|expires_unix_ms| (expires_unix_ms - now_unix_ms).max(0))
    }

    /// The order's lines as allocation takes them.
    fn order_lines(&self) -> Result<Vec<Line>, sqlx::Error> {
        self.lines
            .iter()
            .map(|line| Ok(Line { gtin: Gtin::parse(&line.gtin).map_err(corrupt)?, quantity: line.quantity }))
            .collect()
    }
}

/// One step of an order's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEventRecord {
    pub seq: i64,
    pub status: OrderStatus,
    pub detail: Option<String>,
    pub at_unix_ms: i64,
}

/// An order's history (`$1` tenant, `$2` order), oldest first.
const ORDER_EVENTS_SQL: &str =
    "SELECT seq, status, detail, at_unix_ms FROM order_events WHERE tenant_id = $1 AND order_id = $2 ORDER BY seq";

type OrderEventRow = (i64, String, Option<String>, i64);

fn order_event_records(rows: Vec<OrderEventRow>) -> Result<Vec<OrderEventRecord>, String> {
    rows.into_iter()
        .map(|(seq, status, detail, at_unix_ms)| {
            let status = OrderStatus::parse(&status).ok_or_else(|| format!("order status {status:?}"))?;
            Ok(OrderEventRecord { seq, status, detail, at_unix_ms })
        })
        .collect()
}

pub(crate) fn stored_allocation(allocation: &orders::Allocation) -> StoredAllocation {
    let date = |date: Option<jiff::civil::Date>| date.map(|date| date.to_string());
    StoredAllocation {
        rule: allocation.decision.rule.clone(),
        shipments: allocation
            .shipments
            .iter()
            .map(|shipment| StoredShipment {
                site: shipment.site.to_string(),
                delivering_site: shipment.route.delivering_site.to_string(),
                lane: shipment.route.line_haul.as_ref().map(|(lane, _)| lane.to_string()),
                lane_departure_unix_ms: shipment.route.line_haul.as_ref().map(|(_, at)| *at),
                pick_from_unix_ms: shipment.route.pick_from_unix_ms,
                ready_unix_ms: shipment.route.ready_unix_ms,
                last_mile_departure_unix_ms: shipment.route.last_mile_departure_unix_ms,
                last_mile_km: (shipment.route.last_mile_km * 10.0).round() / 10.0,
                promised_by_unix_ms: shipment.route.promised_by_unix_ms,
                cost_cents: shipment.route.cost_cents,
                picks: shipment
                    .picks
                    .iter()
                    .map(|pick| StoredPick {
                        line: pick.line,
                        zone: pick.zone.to_string(),
                        lot: pick.lot.clone(),
                        expiry: date(pick.expiry),
                        quantity: pick.quantity,
                        shipped: None,
                    })
                    .collect(),
                sscc: None,
            })
            .collect(),
        candidates: stored_candidates(&allocation.decision),
        candidates_considered: allocation.decision.candidates.len(),
        flags: Vec::new(),
        time_zone: None,
    }
}

/// The most candidate sites stored with an order's decision: the chosen ones first, then the
/// closest runners-up (by outcome, then cost); `candidates_considered` counts them all.
pub const CANDIDATES_STORED_MAX: usize = 4;

fn stored_candidates(decision: &orders::Decision) -> Vec<StoredCandidate> {
    let rank = |outcome: &CandidateOutcome| match outcome {
        CandidateOutcome::Chosen { cost_cents, .. } => (0, *cost_cents),
        CandidateOutcome::Passed { cost_cents, .. } => (1, *cost_cents),
        CandidateOutcome::NoRoute(_) => (2, 0),
        CandidateOutcome::Partial { .. } => (3, 0),
    };
    let mut candidates: Vec<&orders::Candidate> = decision.candidates.iter().collect();
    candidates.sort_by(|a, b| (rank(&a.outcome), a.site.as_str()).cmp(&(rank(&b.outcome), b.site.as_str())));
    candidates
        .into_iter()
        .take(CANDIDATES_STORED_MAX)
        .map(|candidate| {
            let mut stored = StoredCandidate {
                site: candidate.site.to_string(),
                outcome: String::new(),
                cost_cents: None,
                promised_by_unix_ms: None,
                eligible_units: None,
                reason: None,
            };
            match &candidate.outcome {
                CandidateOutcome::Chosen { cost_cents, promised_by_unix_ms } => {
                    stored.outcome = "chosen".into();
                    stored.cost_cents = Some(*cost_cents);
                    stored.promised_by_unix_ms = Some(*promised_by_unix_ms);
                }
                CandidateOutcome::Passed { cost_cents, promised_by_unix_ms: Some(promised_by_unix_ms) } => {
                    stored.outcome = "passed".into();
                    stored.cost_cents = Some(*cost_cents);
                    stored.promised_by_unix_ms = Some(*promised_by_unix_ms);
                    stored.reason = Some("holds every line in time, but costs more or delivers later".into());
                }
                CandidateOutcome::Passed { cost_cents, promised_by_unix_ms: None } => {
                    stored.outcome = "passed".into();
                    stored.cost_cents = Some(*cost_cents);
                    stored.reason = Some("holds every line, but costs at least this, more than the chosen site".into());
                }
                CandidateOutcome::Partial { eligible_units } => {
                    stored.outcome = "partial".into();
                    stored.eligible_units = Some(eligible_units.clone());
                    stored.reason = Some("not enough eligible units of every line".into());
                }
                CandidateOutcome::NoRoute(no_route) => {
                    stored.outcome = "no_route".into();
                    stored.reason = Some(no_route.to_string());
                }
            }
            stored
        })
        .collect()
}

/// A site that keeps no stock (a farm, a pickup point), named at `pointer`.
fn not_a_stock_site(pointer: &str, site: &Location) -> WriteError {
    let detail = format!(
        "{} is a {}: stock is kept at warehouses, cold depots, stores and pharmacies",
        site.gln,
        site.kind.name()
    );
    WriteError::Refused {
        code: "validation-failed",
        detail: detail.clone(),
        errors: vec![(pointer.to_owned(), detail)],
    }
}

/// A GTIN that is not a product of the writing merchant, at `pointer` (422 `unknown-reference`).
fn unknown_product(pointer: String, gtin: &str) -> WriteError {
    let detail = format!("GTIN {gtin} is not a product of this merchant");
    WriteError::Refused { code: "unknown-reference", detail: detail.clone(), errors: vec![(pointer, detail)] }
}

/// The refusal of a write naming stock that is not there (a count, scrap, transfer or lot
/// status change): 422 `unknown-reference` at the first field nothing matches, the GTIN, the lot,
/// the location, then the zone (`prefix` before the location and the zone: `/from` for a
/// transfer's source).
fn no_such_stock(entry: &GtinEntry, gtin: &str, lot: &str, place: Option<(&str, &str)>, prefix: &str) -> WriteError {
    let of_lot: Vec<&StockKey> = entry.balances.iter().map(|cached| &cached.key).filter(|key| key.lot == lot).collect();
    let (pointer, detail) = if entry.product.is_none() {
        ("/gtin".to_owned(), format!("GTIN {gtin} is not a product of this merchant"))
    } else if of_lot.is_empty() {
        ("/lot".to_owned(), format!("no stock of lot {lot:?} of {gtin}"))
    } else if let Some((location, zone)) = place {
        if !of_lot.iter().any(|key| key.location == location) {
            (format!("{prefix}/location"), format!("no stock of lot {lot:?} of {gtin} at {location}"))
        } else {
            (format!("{prefix}/zone"), format!("no stock of lot {lot:?} of {gtin} in zone {zone} of {location}"))
        }
    } else {
        ("/lot".to_owned(), format!("no stock of lot {lot:?} of {gtin}"))
    };
    WriteError::Refused { code: "unknown-reference", detail: detail.clone(), errors: vec![(pointer, detail)] }
}

/// The status a lot's units read as on `today` (a UTC date, `YYYY-MM-DD`): an available lot past
/// its expiry date reads as `expired`, nothing of it available (its stored status stays).
pub(crate) fn status_as_of(status: LotStatus, expiry: Option<&str>, today: &str) -> LotStatus {
    if status == LotStatus::Available && expiry.is_some_and(|expiry| expiry < today) {
        LotStatus::Expired
    } else {
        status
    }
}

/// Units of each GTIN the cache holds in lots that cannot be allocated for their status (on
/// hold, in quarantine, recalled, expired, or available but past their expiry date), by status:
/// said with a shortage, so a merchant sees why stock on hand is not eligible. Each GTIN counted
/// once, however many lines name it.
fn blocked_units(
    cache: &WriterCache,
    tenant: &str,
    lines: &[Line],
    now_unix_ms: i64,
) -> HashMap<String, BTreeMap<&'static str, i64>> {
    let today = crate::utc_day(now_unix_ms);
    let mut blocked: HashMap<String, BTreeMap<&'static str, i64>> = HashMap::new();
    for line in lines {
        let gtin = line.gtin.to_string();
        if blocked.contains_key(&gtin) {
            continue;
        }
        let Some(entry) = cache.gtins.get(&(tenant.to_owned(), gtin.clone())) else { continue };
        let mut statuses: BTreeMap<&'static str, i64> = BTreeMap::new();
        for cached in entry.balances.iter().filter(|cached| cached.balance.on_hand > 0) {
            let status = status_as_of(cached.status, cached.expiry.as_deref(), &today);
            if !status.allocatable() {
                *statuses.entry(status.name()).or_default() += cached.balance.on_hand;
            }
        }
        // Only a GTIN with blocked units is said to have any.
        if !statuses.is_empty() {
            blocked.insert(gtin, statuses);
        }
    }
    blocked
}

fn allocation_refusal(error: AllocationError, blocked: &HashMap<String, BTreeMap<&'static str, i64>>) -> WriteError {
    match error {
        AllocationError::UnknownProduct { line, gtin } => unknown_product(format!("/lines/{line}/gtin"), gtin.as_str()),
        AllocationError::Short { shortages, decision } => {
            // "No" only when no line has a unit eligible; otherwise some are, too few.
            let none = shortages.iter().all(|shortage| shortage.eligible == 0);
            let said = if none { "no eligible stock" } else { "not enough eligible stock" };
            // Sites passed over for the latest delivery asked for: the deadline is named too, with
            // the soonest any of them could deliver, so a client does not take it for a shortage
            // of stock alone.
            let too_late = decision
                .candidates
                .iter()
                .filter_map(|candidate| match &candidate.outcome {
                    orders::CandidateOutcome::NoRoute(orders::NoRoute::TooLate { earliest, .. }) => {
                        Some((*earliest, candidate.site.as_str()))
                    }
                    _ => None,
                })
                .min();
            let deadline = too_late.map(|(earliest, site)| {
                (
                    "/latest_delivery_at".to_owned(),
                    format!(
                        "site {site} could deliver at {earliest} at the soonest, after the latest delivery asked for"
                    ),
                )
            });
            WriteError::Refused {
                code: "insufficient-stock",
                detail: with_sites_considered(said.to_owned(), &decision),
                errors: deadline
                    .into_iter()
                    .chain(shortages.iter().map(|shortage| {
                        let mut detail = format!(
                            "{} units of {} wanted, {} eligible at sites that deliver in time",
                            shortage.wanted, shortage.gtin, shortage.eligible
                        );
                        if let Some(statuses) = blocked.get(shortage.gtin.as_str()) {
                            let held: Vec<String> =
                                statuses.iter().map(|(status, units)| format!("{units} {status}")).collect();
                            detail.push_str(&format!("; not allocatable for their lot's status: {}", held.join(", ")));
                        }
                        (format!("/lines/{}", shortage.line), detail)
                    }))
                    .collect(),
            }
        }
        AllocationError::TooManyShipments { decision } => {
            // The rule says whether the search looked at every combination or stopped at its limit.
            let detail = with_sites_considered(decision.rule.clone(), &decision);
            WriteError::Refused { code: "insufficient-stock", detail, errors: Vec::new() }
        }
    }
}

/// A refusal's `detail` followed by why each stored candidate site was passed over.
fn with_sites_considered(mut detail: String, decision: &orders::Decision) -> String {
    let reasons: Vec<String> = stored_candidates(decision)
        .into_iter()
        .filter_map(|candidate| candidate.reason.map(|reason| format!("{}: {reason}", candidate.site)))
        .collect();
    if !reasons.is_empty() {
        detail.push_str(&format!("; sites considered: {}", reasons.join("; ")));
    }
    detail
}

// ---------- applying fulfilment writes ----------

/// When an order's step happened ([`FulfilmentMutation::OrderEvent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepTime {
    /// Said by the step's sender (`at`): refused if it lies more than
    /// [`STEP_BEFORE_LAST_MS_MAX`] before the order's last step.
    Said(i64),
    /// When the step was recorded (no `at`, or a courier's scan): never refused for its time.
    Recorded(i64),
}

impl StepTime {
    fn unix_ms(self) -> i64 {
        match self {
            StepTime::Said(at) | StepTime::Recorded(at) => at,
        }
    }
}

/// How far a step's `at` may lie before the order's last step (its `at`, or when it was
/// recorded): the clocks of the systems that record steps differ a little, never by more.
pub const STEP_BEFORE_LAST_MS_MAX: i64 = 5 * 60 * 1000;

/// What a fulfilment write did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FulfilmentApplied {
    pub created: bool,
    pub outcome: Option<Arc<FulfilmentOutcome>>,
}

/// What a fulfilment write answers, read in its own transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum FulfilmentOutcome {
    /// The order as the write left it.
    Order(OrderRecord),
    /// The order as a step left it, and its whole history (the step's transition last), read in
    /// the step's transaction: the answer a retry of the step replays.
    Stepped {
        order: OrderRecord,
        history: Vec<OrderEventRecord>,
    },
    Recall(RecallOutcome),
    /// The lots a receipt brought in, each with the status its units took.
    Received(Vec<ReceivedLot>),
    /// Orders that lost their reservation to the write (a count that found fewer units than were
    /// reserved): those allocated again from other stock, and those flagged.
    Reallocation {
        reallocated: Vec<String>,
        flagged: Vec<String>,
    },
}

/// Units of one lot a receipt brought into its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLot {
    pub gtin: String,
    pub lot: String,
    pub expiry: Option<String>,
    pub units: i64,
    /// The status the units took: the one asked for, unless the lot is recalled, or held, in
    /// quarantine or expired where it is stored (see `receipt_status`).
    pub status: LotStatus,
}

/// A recall's reach: forward (orders, and so pickup points) and backward (inbound pallets, the
/// product's supplier).
#[derive(Debug, Clone, PartialEq)]
pub struct RecallOutcome {
    pub recall_id: String,
    pub recalled_unix_ms: i64,
    /// Every order that took units of the lots (reserved at some time), as the recall left it,
    /// with the units of the lots it shipped and took back.
    pub orders: Vec<(OrderRecord, LotUnits)>,
    /// The orders the recall allocated again from other lots, sorted.
    pub reallocated: Vec<String>,
    /// The orders left without stock, sorted.
    pub flagged: Vec<String>,
    pub inbound_pallets: Vec<InboundPallet>,
    pub supplier_party_id: Option<String>,
    /// The lots made from the recalled ones that it put on hold, as it left them; empty as read
    /// back.
    pub held_derived: Vec<HeldLot>,
}

/// A lot a recall put on hold, and its units after the recall's write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLot {
    pub gtin: String,
    pub lot: String,
    /// At every site, zone and status.
    pub on_hand: i64,
    pub on_hold: i64,
}

/// Units of some lots (a recall's, or lots made from them) an order shipped, and took back by
/// returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LotUnits {
    pub shipped: i64,
    pub returned: i64,
}

impl LotUnits {
    /// Whether units of the lots are still out with an order in `status`: it shipped more than
    /// came back into stock, and its parcel did not come back. An order `returned` without
    /// restocking (its units to be destroyed, not sold again) is back all the same.
    pub fn out_with(&self, status: OrderStatus) -> bool {
        self.shipped > self.returned && status != OrderStatus::Returned
    }
}

impl RecallOutcome {
    /// What became of an order that took units of the lots: `flagged` or `reallocated` (the
    /// recall took its reservation back), else `shipped` if units of the lots left with it and
    /// are still out ([`LotUnits::out_with`]), `returned` if they came back, `released` if it held
    /// them once and gave them up before shipping.
    pub fn outcome_of(&self, order_id: &str, status: OrderStatus, units: &LotUnits) -> &'static str {
        if self.flagged.binary_search_by(|flagged| flagged.as_str().cmp(order_id)).is_ok() {
            "flagged"
        } else if self.reallocated.binary_search_by(|reallocated| reallocated.as_str().cmp(order_id)).is_ok() {
            "reallocated"
        } else if units.out_with(status) {
            "shipped"
        } else if units.shipped > 0 {
            "returned"
        } else {
            "released"
        }
    }
}

/// A recall read back: what was recalled, why and when, and its reach now (the orders with the
/// outcome the recall gave them, their statuses and units as they are now).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecall {
    pub gtin: String,
    pub lots: Vec<String>,
    pub reason: String,
    /// What consumers are told, if the recall says.
    pub public_notice: Option<String>,
    pub reach: RecallOutcome,
    /// Whether the recall kept what it did to each order (`reach.reallocated`, `reach.flagged`):
    /// not those made before it did (migration 0017), whose lots are then only those it was
    /// the first to recall.
    pub outcomes_kept: bool,
}

/// A recall's lots, from its `lots` column (space-separated); a recall made before recalls kept
/// them (migration 0017) has the lots it was the first to recall.
async fn recall_lots(
    conn: &mut Conn,
    tenant: &str,
    recall_id: &str,
    lots: Option<String>,
) -> Result<Vec<String>, sqlx::Error> {
    Ok(match lots {
        Some(lots) => lots.split(' ').map(str::to_owned).collect(),
        None => on_conn!(conn, connection => sqlx::query_scalar(
            "SELECT lot FROM recalled_lots WHERE tenant_id = $1 AND recall_id = $2 ORDER BY lot")
            .bind(tenant).bind(recall_id).fetch_all(&mut *connection).await)?,
    })
}

/// A recall as a list shows it: what was recalled, why and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecallSummary {
    pub recall_id: String,
    pub gtin: String,
    /// The recall's lots (for a recall made before recalls kept them, those it was the first to
    /// recall).
    pub lots: Vec<String>,
    pub reason: String,
    /// What consumers are told, if the recall says.
    pub public_notice: Option<String>,
    pub recalled_unix_ms: i64,
}

/// A pallet of a recalled lot announced to the network, and when it was received (if it was).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboundPallet {
    pub asn_id: String,
    pub sscc: String,
    pub location_gln: String,
    pub lot: String,
    pub received_unix_ms: Option<i64>,
}

/// The batch state a fulfilment write works with.
pub(crate) struct StockContext<'a> {
    pub batch: &'a mut StockBatch,
    pub cache: &'a mut WriterCache,
}

type Outcome<T> = Result<Result<T, WriteError>, sqlx::Error>;

macro_rules! refuse {
    ($error:expr) => {
        return Ok(Err($error))
    };
}

macro_rules! attempt {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return Ok(Err(error)),
        }
    };
}

fn refused(code: &'static str, detail: impl Into<String>) -> WriteError {
    WriteError::Refused { code, detail: detail.into(), errors: Vec::new() }
}

/// Puts a lot's balances that are `available` on `hold` (those recalled, expired or in
/// quarantine keep their status), each with a `status` movement naming the reason. Answers the
/// locations held (`GLN/zone`), none when nothing was available.
pub(crate) async fn hold_available(
    conn: &mut Conn,
    tenant: &str,
    gtin: &str,
    lot: &str,
    operation_id: &str,
    reason: &str,
    context: StockContext<'_>,
) -> Result<Vec<String>, sqlx::Error> {
    let StockContext { batch, cache } = context;
    batch.refresh(cache, conn, tenant, gtin).await?;
    let entry = batch.entry(cache, conn, tenant, gtin).await?;
    let keys: Vec<StockKey> = entry
        .balances
        .iter()
        .filter(|cached| cached.key.lot == lot && cached.status == LotStatus::Available)
        .map(|cached| cached.key.clone())
        .collect();
    for (line, key) in keys.iter().enumerate() {
        batch.set_status(cache, conn, tenant, operation_id, line as i64, key, LotStatus::Hold, Some(reason)).await?;
    }
    Ok(keys.iter().map(|key| format!("{}/{}", key.location, key.zone)).collect())
}

pub(crate) async fn apply_fulfilment(
    conn: &mut Conn,
    tenant_id: &TenantId,
    mutation: &FulfilmentMutation,
    now_unix_ms: i64,
    context: StockContext<'_>,
) -> Outcome<FulfilmentApplied> {
    let StockContext { batch, cache } = context;
    batch.expire_due_once(conn, cache, now_unix_ms).await?;
    if batch.expiry_backlog
        && let FulfilmentMutation::PlaceOrder(order) = mutation
    {
        // More holds lapsed than a batch expires: those on this order's GTINs go first. Before
        // the mark: a refused order does not take their expiry back (it is SQL, done for good).
        expire_due_of(conn, tenant_id.as_str(), &order.lines, now_unix_ms, batch, cache).await?;
    }
    if matches!(
        mutation,
        FulfilmentMutation::OrderEvent { .. }
            | FulfilmentMutation::Recall { .. }
            | FulfilmentMutation::Count { .. }
            | FulfilmentMutation::SetLotStatus { .. }
    ) {
        // These read orders, reservations and movements (the last, the quarantines a hold
        // covers, and uses them up): what earlier writes buffered goes first.
        batch.flush_rows(conn, now_unix_ms).await?;
    }
    let mark = batch.mark();
    let written = if cfg!(debug_assertions) { crate::writer::rows_written() } else { 0 };
    let result = apply_checked(conn, tenant_id.as_str(), mutation, now_unix_ms, batch, cache).await?;
    if let Err(refused) = &result {
        // Its buffered rows go; rows it wrote would stay (a write has no savepoint of its own).
        debug_assert_eq!(crate::writer::rows_written(), written, "a refused write changed rows: {refused}");
        batch.roll_back(mark, cache);
    }
    Ok(result)
}

/// Applies a fulfilment write. A refusal may come after some changes to the cache (never after
/// SQL changes): the caller rolls those back.
async fn apply_checked(
    conn: &mut Conn,
    tenant: &str,
    mutation: &FulfilmentMutation,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<FulfilmentApplied> {
    let done = |created| Ok(Ok(FulfilmentApplied { created, outcome: None }));
    match mutation {
        FulfilmentMutation::CreateAsn { asn_id, location, expected_unix_ms, pallets } => {
            let Some(site) = stock_site(cache, conn, tenant, location).await? else {
                refuse!(WriteError::UnknownReference { field: "/location", value: location.to_string() });
            };
            if !site.kind.holds_stock() {
                refuse!(not_a_stock_site("/location", &site));
            }
            // Each pallet's product, read together.
            let mut gtins: Vec<&str> = pallets.iter().map(|pallet| pallet.gtin.as_str()).collect();
            gtins.sort_unstable();
            gtins.dedup();
            let shelf_lives: Vec<(String, Option<i64>, Option<i64>)> =
                crate::writer::fetch_for_keys(conn, tenant, &gtins, |tenant, condition| {
                    format!(
                        "SELECT gtin, shelf_life_days, min_remaining_shelf_life_days FROM products \
                         WHERE tenant_id = {tenant} AND gtin {condition}"
                    )
                })
                .await?;
            let shelf_lives: HashMap<String, (Option<i64>, Option<i64>)> = shelf_lives
                .into_iter()
                .map(|(gtin, shelf_life, min_remaining)| (gtin, (shelf_life, min_remaining)))
                .collect();
            let mut missing_expiry = Vec::new();
            for (index, pallet) in pallets.iter().enumerate() {
                let Some(&(shelf_life, min_remaining)) = shelf_lives.get(pallet.gtin.as_str()) else {
                    refuse!(unknown_product(format!("/pallets/{index}/gtin"), pallet.gtin.as_str()));
                };
                // A product with a shelf life is allocated by its lots' expiry (FEFO, the
                // remaining shelf life at delivery): a lot of it without one could never be judged.
                if pallet.expiry.is_none() && (shelf_life.is_some() || min_remaining.is_some_and(|days| days > 0)) {
                    missing_expiry.push((
                        format!("/pallets/{index}/expiry"),
                        format!("required: product {} has a shelf life", pallet.gtin),
                    ));
                }
            }
            if !missing_expiry.is_empty() {
                refuse!(WriteError::Refused {
                    code: "validation-failed",
                    detail: format!("{} pallets of products with a shelf life have no expiry", missing_expiry.len()),
                    errors: missing_expiry,
                });
            }
            // An SSCC names one pallet for good: announced once by this merchant (the edge
            // refuses one listed twice in an ASN). On PostgreSQL each SSCC's lock is taken first,
            // so an ASN another API node writes at the same moment with one of them is seen.
            // Nor one of the merchant's orders was packed onto (an outbound pallet, `order_ssccs`;
            // one coming back is returned through its order, which puts its units back), read
            // under the same locks (a packing takes them too).
            let stored = announced_ssccs(conn, tenant, pallets.iter().map(|pallet| pallet.sscc.as_str())).await?;
            let packed = packed_ssccs(conn, tenant, pallets.iter().map(|pallet| pallet.sscc.as_str())).await?;
            let mut announced = Vec::new();
            for (index, pallet) in pallets.iter().enumerate() {
                if stored.contains(pallet.sscc.as_str()) {
                    announced.push((
                        format!("/pallets/{index}/sscc"),
                        format!("pallet {} is announced already", pallet.sscc),
                    ));
                } else if let Some(order) = packed.get(pallet.sscc.as_str()) {
                    announced.push((
                        format!("/pallets/{index}/sscc"),
                        format!(
                            "SSCC {} names the pallet order {order} was packed onto (one coming back is returned \
                             through its order)",
                            pallet.sscc
                        ),
                    ));
                }
            }
            if !announced.is_empty() {
                refuse!(WriteError::Refused {
                    code: "conflict",
                    detail: format!(
                        "{} pallets' SSCCs name pallets already: an SSCC names one pallet",
                        announced.len()
                    ),
                    errors: announced,
                });
            }
            // A lot has one expiry: a pallet announced with another date than the lot's stock, or
            // than a pallet of it announced before and not received yet, could never be received
            // (`change` refuses the second date), and an ASN cannot be amended. (Two dates within
            // one ASN are refused at the edge.) Read under the lots' locks on PostgreSQL: an ASN
            // or a receipt of one of these lots on another API node has committed, or waits.
            let lots: Vec<(&str, &str)> =
                pallets.iter().map(|pallet| (pallet.gtin.as_str(), pallet.lot.as_str())).collect();
            lock_lots_read_afresh(conn, tenant, lots, batch, cache).await?;
            // The expiries of the pallets of these GTINs announced and not received yet, read
            // together, by lot. On SQLite the index is named: without statistics of the primary
            // key, the planner takes its tenant prefix and reads every pallet of the tenant.
            let indexed = if matches!(conn, Conn::Sqlite(_)) { " INDEXED BY asn_pallets_awaited_by_lot" } else { "" };
            let awaited: Vec<(String, String, Option<String>)> =
                crate::writer::fetch_for_keys(conn, tenant, &gtins, |tenant, condition| {
                    format!(
                        "SELECT DISTINCT gtin, lot, expiry_date FROM asn_pallets{indexed} WHERE tenant_id = {tenant} \
                         AND gtin {condition} AND received_unix_ms IS NULL"
                    )
                })
                .await?;
            let mut awaited_expiries: HashMap<(String, String), Vec<Option<String>>> = HashMap::new();
            for (gtin, lot, expiry) in awaited {
                awaited_expiries.entry((gtin, lot)).or_default().push(expiry);
            }
            let mut other_expiry = Vec::new();
            for (index, pallet) in pallets.iter().enumerate() {
                let entry = batch.entry(cache, conn, tenant, pallet.gtin.as_str()).await?;
                let stored = entry
                    .balances
                    .iter()
                    .find(|cached| cached.key.lot == pallet.lot && cached.expiry.as_deref() != pallet.expiry.as_deref())
                    .map(|cached| ("stored", cached.expiry.clone()));
                let earlier = stored.or_else(|| {
                    awaited_expiries
                        .get(&(pallet.gtin.as_str().to_owned(), pallet.lot.clone()))
                        .and_then(|expiries| {
                            expiries.iter().find(|expiry| expiry.as_deref() != pallet.expiry.as_deref())
                        })
                        .map(|expiry| ("announced", expiry.clone()))
                });
                if let Some((how, expiry)) = earlier {
                    other_expiry.push((
                        format!("/pallets/{index}/expiry"),
                        format!(
                            "lot {:?} of {} is {how} with expiry {}: a lot has one expiry",
                            pallet.lot,
                            pallet.gtin,
                            expiry_text(expiry.as_deref())
                        ),
                    ));
                }
            }
            if !other_expiry.is_empty() {
                refuse!(WriteError::Refused {
                    code: "lot-conflict",
                    detail: format!(
                        "{} pallets are announced with another expiry than their lot's",
                        other_expiry.len()
                    ),
                    errors: other_expiry,
                });
            }
            execute(
                conn,
                "INSERT INTO asns (tenant_id, asn_id, location_gln, expected_unix_ms, created_unix_ms) VALUES ($1, $2, $3, $4, $5)",
                &[
                    Arg::Text(tenant),
                    Arg::Text(asn_id),
                    Arg::Text(location.as_str()),
                    Arg::OptionalInteger(*expected_unix_ms),
                    Arg::Integer(now_unix_ms),
                ],
            )
            .await?;
            let rows: Vec<Vec<Value>> = pallets
                .iter()
                .map(|pallet| {
                    vec![
                        Value::Text(tenant.to_owned()),
                        Value::Text(asn_id.clone()),
                        Value::Text(pallet.sscc.as_str().to_owned()),
                        Value::Text(pallet.gtin.as_str().to_owned()),
                        Value::Text(pallet.lot.clone()),
                        Value::OptionalText(pallet.expiry.clone()),
                        Value::Integer(pallet.quantity),
                    ]
                })
                .collect();
            crate::writer::insert_rows(
                conn,
                "asn_pallets",
                &["tenant_id", "asn_id", "sscc", "gtin", "lot", "expiry_date", "quantity"],
                &rows,
            )
            .await?;
            done(true)
        }
        FulfilmentMutation::ReceiveAsn { asn_id, receipt_id, zone, ssccs, status, recalled } => {
            let receipt = Receipt { asn_id, receipt_id, zone, ssccs: ssccs.as_deref(), status: *status, recalled };
            receive_asn(conn, tenant, &receipt, now_unix_ms, batch, cache).await
        }
        FulfilmentMutation::Count { operation_id, location, zone, gtin, lot, counted, expected_on_hand, reason } => {
            // A count is absolute: the difference is taken from the row as it is now. The balances
            // are read afresh when the count says what it started from, and always on PostgreSQL,
            // where another API node may have moved this stock since this writer cached it (which
            // decides below whether units come back into an emptied zone).
            let key = StockKey::at(gtin, location, zone, lot);
            if expected_on_hand.is_some() || matches!(conn, Conn::Postgres(_)) {
                batch.refresh(cache, conn, tenant, gtin.as_str()).await?;
            }
            if let Some(expected) = *expected_on_hand {
                let entry = batch.entry(cache, conn, tenant, gtin.as_str()).await?;
                let on_hand =
                    entry.balances.iter().find(|cached| cached.key == key).map_or(0, |cached| cached.balance.on_hand);
                if on_hand != expected {
                    refuse!(WriteError::Refused {
                        code: "count-stale",
                        detail: format!(
                            "{gtin} lot {lot:?} in {location} zone {zone} has {on_hand} on hand, not the {expected} \
                             the count started from: stock moved since; count again"
                        ),
                        errors: vec![("/expected_on_hand".into(), format!("on hand now: {on_hand}"))],
                    });
                }
            }
            // Units found where none were: the zone must still be there to take them (before any
            // change, so that a refusal leaves nothing behind).
            if *counted > 0 {
                let entry = batch.entry(cache, conn, tenant, gtin.as_str()).await?;
                if entry.balances.iter().any(|cached| cached.key == key && cached.balance.on_hand == 0) {
                    attempt!(zone_takes_back(conn, tenant, &key, "/zone", batch, cache).await?);
                }
            }
            // Fewer units found than orders reserved: the newest orders not yet being picked
            // give theirs up first, and are allocated again below (or flagged).
            let released = attempt!(release_for_count(conn, tenant, &key, *counted, now_unix_ms, batch, cache).await?);
            let cause = Cause { id: operation_id, name: format!("count {operation_id}"), other: "stock" };
            void_reservations(conn, tenant, &released, &cause, now_unix_ms, batch, cache).await?;
            let movement = |on_hand: i64| (MovementKind::Adjust, counted - on_hand);
            let changed =
                attempt!(one_movement(conn, tenant, operation_id, &key, movement, reason, batch, cache).await?);
            // The difference holds only against the on-hand it was taken from.
            batch.hold_exact(tenant, &key);
            let (reallocated, flagged) =
                allocate_again(conn, tenant, &released, &cause, now_unix_ms, batch, cache).await?;
            Ok(Ok(FulfilmentApplied {
                created: changed,
                outcome: Some(Arc::new(FulfilmentOutcome::Reallocation { reallocated, flagged })),
            }))
        }
        FulfilmentMutation::Scrap { operation_id, location, zone, gtin, lot, quantity, reason } => {
            let key = StockKey::at(gtin, location, zone, lot);
            let movement = |_: i64| (MovementKind::Scrap, *quantity);
            let changed =
                attempt!(one_movement(conn, tenant, operation_id, &key, movement, reason, batch, cache).await?);
            done(changed)
        }
        FulfilmentMutation::Transfer { operation_id, gtin, lot, from, to, quantity, reason, recalled } => {
            let (source, target) = (StockKey::at(gtin, &from.0, &from.1, lot), StockKey::at(gtin, &to.0, &to.1, lot));
            // The target balance may be new: under the lot's lock, as a receipt (see `lock_lots`).
            lock_lots(conn, tenant, &[(gtin.as_str(), lot.as_str())]).await?;
            // The write's events say whether the units move recalled: they must say it right.
            if let Some(assumed) = *recalled
                && recalls_of(conn, tenant, &[(gtin.as_str(), lot.as_str())]).await?.is_empty() == assumed
            {
                refuse!(refused("conflict", RECALLED_MEANWHILE));
            }
            batch.refresh(cache, conn, tenant, &source.gtin).await?;
            let entry = batch.entry(cache, conn, tenant, &source.gtin).await?;
            let Some(cached) = entry.balances.iter().find(|cached| cached.key == source) else {
                refuse!(no_such_stock(entry, gtin.as_str(), lot, Some((&source.location, &source.zone)), "/from"));
            };
            let (expiry, status) = (cached.expiry.clone(), cached.status);
            let Some(product) = entry.product.clone() else {
                refuse!(WriteError::UnknownReference { field: "/gtin", value: gtin.to_string() });
            };
            let Some(site) = stock_site(cache, conn, tenant, &to.0).await? else {
                refuse!(WriteError::UnknownReference { field: "/to/location", value: to.0.to_string() });
            };
            if !site.kind.holds_stock() {
                refuse!(not_a_stock_site("/to/location", &site));
            }
            let Some(site_zone) = site.zones.iter().find(|zone| zone.name == to.1) else {
                refuse!(WriteError::UnknownReference { field: "/to/zone", value: to.1.to_string() });
            };
            if !site_zone.suits(&product.class) {
                refuse!(zone_unsuitable(to.1.as_str(), site_zone, &product.class));
            }
            attempt!(
                batch
                    .change(
                        cache,
                        conn,
                        tenant,
                        operation_id,
                        0,
                        MovementKind::TransferOut,
                        &source,
                        *quantity,
                        Some(reason),
                        None
                    )
                    .await?
            );
            attempt!(
                batch
                    .change(
                        cache,
                        conn,
                        tenant,
                        operation_id,
                        1,
                        MovementKind::TransferIn,
                        &target,
                        *quantity,
                        Some(reason),
                        Some((expiry.as_deref(), status)),
                    )
                    .await?
            );
            // Units whose quarantine a hold covers keep that cover where they go on hold.
            let entry = batch.entry(cache, conn, tenant, &target.gtin).await?;
            let target_held = entry.balance_mut(&target).is_some_and(|cached| cached.status == LotStatus::Hold);
            if target_held
                && (batch.quarantine_covered.iter().any(|(owner, key)| owner == tenant && *key == source)
                    || quarantine_covered(conn, tenant, gtin.as_str(), lot)
                        .await?
                        .contains(&(source.location.clone(), source.zone.clone())))
            {
                batch.cover_quarantine(tenant, &target);
            }
            done(true)
        }
        FulfilmentMutation::SetLotStatus { operation_id, gtin, lot, location, zone, status, reason } => {
            // Every balance of the lot, including those other nodes received since the cache read,
            // under the lot's lock: a receipt of it into a new zone on another node commits first
            // (and is read here) or waits and then takes the status (`receipt_status`).
            lock_lots(conn, tenant, &[(gtin.as_str(), lot.as_str())]).await?;
            batch.refresh(cache, conn, tenant, gtin.as_str()).await?;
            let entry = batch.entry(cache, conn, tenant, gtin.as_str()).await?;
            let keys: Vec<StockKey> = entry
                .balances
                .iter()
                .filter(|cached| {
                    cached.key.lot == *lot
                        && location.as_ref().is_none_or(|gln| cached.key.location == gln.as_str())
                        && zone.as_ref().is_none_or(|zone| cached.key.zone == *zone)
                })
                .map(|cached| cached.key.clone())
                .collect();
            if keys.is_empty() {
                // (With a location named and no zone, the lot has no stock there: the zone is
                // never blamed.)
                let place = location.as_ref().map(|gln| (gln.as_str(), zone.as_deref().unwrap_or("")));
                refuse!(no_such_stock(entry, gtin.as_str(), lot, place, ""));
            }
            if let Some(recalled) =
                entry.balances.iter().find(|cached| cached.status == LotStatus::Recalled && keys.contains(&cached.key))
            {
                refuse!(refused(
                    "lot-conflict",
                    format!(
                        "lot {:?} of {gtin} is recalled in {} zone {}: a recalled lot's status does not change",
                        lot, recalled.key.location, recalled.key.zone
                    )
                ));
            }
            // A lot has one expiry; past it, the stock's read says `expired` whatever is stored.
            let today = crate::utc_day(now_unix_ms);
            if *status == LotStatus::Available
                && let Some(expiry) = entry
                    .balances
                    .iter()
                    .filter(|cached| keys.contains(&cached.key))
                    .find_map(|cached| cached.expiry.as_deref().filter(|expiry| **expiry < *today))
            {
                refuse!(refused(
                    "lot-conflict",
                    format!("lot {lot:?} of {gtin} is past its expiry date {expiry}: it cannot be made available")
                ));
            }
            // A hold lifted where it covered a quarantine leaves the quarantine: the units' check
            // still waits. A release to available or quarantine uses the memory up.
            let covered = if matches!(status, LotStatus::Available | LotStatus::Quarantine) {
                quarantine_covered(conn, tenant, gtin.as_str(), lot).await?
            } else {
                HashSet::new()
            };
            let statuses: HashMap<StockKey, LotStatus> = entry
                .balances
                .iter()
                .filter(|cached| keys.contains(&cached.key))
                .map(|cached| (cached.key.clone(), cached.status))
                .collect();
            let mut used = Vec::new();
            for (line, key) in keys.iter().enumerate() {
                let is_covered = covered.contains(&(key.location.clone(), key.zone.clone()));
                let back_in_quarantine = is_covered
                    && *status == LotStatus::Available
                    && matches!(statuses.get(key), Some(LotStatus::Hold | LotStatus::Expired));
                let (to, why) = if back_in_quarantine {
                    (LotStatus::Quarantine, format!("{reason} (the hold lifted; its quarantine stays)"))
                } else {
                    (*status, reason.clone())
                };
                batch.set_status(cache, conn, tenant, operation_id, line as i64, key, to, Some(&why)).await?;
                if is_covered && matches!(status, LotStatus::Available | LotStatus::Quarantine) {
                    used.push(key);
                }
            }
            for key in used {
                execute(
                    conn,
                    "DELETE FROM quarantine_under_hold WHERE tenant_id = $1 AND gtin = $2 AND lot = $3 \
                     AND location_gln = $4 AND zone = $5",
                    &[
                        Arg::Text(tenant),
                        Arg::Text(&key.gtin),
                        Arg::Text(&key.lot),
                        Arg::Text(&key.location),
                        Arg::Text(&key.zone),
                    ],
                )
                .await?;
            }
            if *status == LotStatus::Available && location.is_none() {
                // The whole lot made available: a recall's hold on it ends (a release at one site
                // or zone, a returns area's say, leaves it for the lot's other pallets).
                execute(
                    conn,
                    "DELETE FROM held_lots WHERE tenant_id = $1 AND gtin = $2 AND lot = $3",
                    &[Arg::Text(tenant), Arg::Text(gtin.as_str()), Arg::Text(lot)],
                )
                .await?;
            }
            done(false)
        }
        FulfilmentMutation::PlaceOrder(order) => {
            let record = attempt!(place_order(conn, tenant, order, now_unix_ms, batch, cache).await?);
            Ok(Ok(FulfilmentApplied { created: true, outcome: Some(Arc::new(FulfilmentOutcome::Order(record))) }))
        }
        FulfilmentMutation::OrderEvent {
            order_id,
            event_id,
            to,
            ssccs,
            units,
            expected_reservation,
            expected_status,
            handed_over_unix_ms,
            restock_to,
            recalled,
            happened,
        } => {
            let change = OrderChange {
                to: *to,
                ssccs,
                units: units.as_deref(),
                expected_reservation: expected_reservation.as_deref(),
                expected_status: *expected_status,
                handed_over_unix_ms: handed_over_unix_ms.filter(|at| *at <= now_unix_ms),
                restock_to: restock_to.as_ref(),
                recalled: recalled.as_deref(),
                happened: *happened,
            };
            let stepped =
                attempt!(order_event(conn, tenant, order_id, event_id, change, now_unix_ms, batch, cache).await?);
            // Read back in the step's transaction, as a read after the commit would show it (the
            // rows the step buffered, a new reservation's among them, written first).
            batch.flush_rows(conn, now_unix_ms).await?;
            let order = read_order(conn, tenant, order_id, now_unix_ms).await?.map_or(stepped, |(order, _)| order);
            let rows: Vec<OrderEventRow> = on_conn!(conn, connection => sqlx::query_as(ORDER_EVENTS_SQL)
                .bind(tenant).bind(order_id).fetch_all(&mut *connection).await)?;
            let history = order_event_records(rows).map_err(corrupt)?;
            let outcome = FulfilmentOutcome::Stepped { order, history };
            Ok(Ok(FulfilmentApplied { created: false, outcome: Some(Arc::new(outcome)) }))
        }
        FulfilmentMutation::ExpireHolds => {
            expire_flagged_holds(conn, now_unix_ms).await?;
            done(false)
        }
        FulfilmentMutation::PutWebhook { webhook_id, url, secret } => {
            // Counted under the tenant's lock on PostgreSQL: two API nodes creating one each
            // at once would both count one below the limit.
            lock_names(conn, vec![format!("keten webhooks {tenant}")]).await?;
            let count: (i64,) = on_conn!(conn, connection => sqlx::query_as(
                "SELECT COUNT(*) FROM order_webhooks WHERE tenant_id = $1")
                .bind(tenant).fetch_one(&mut *connection).await)?;
            if count.0 >= WEBHOOKS_PER_TENANT_MAX {
                refuse!(WriteError::Limit(format!("a tenant has at most {WEBHOOKS_PER_TENANT_MAX} order webhooks")));
            }
            execute(
                conn,
                "INSERT INTO order_webhooks (tenant_id, webhook_id, url, secret, after_at_unix_ms, after_order_id, after_seq, \
                 attempts, next_attempt_unix_ms, created_unix_ms, alarm_after_unix_ms, alarm_after_id, alarm_after_step) \
                 VALUES ($1, $2, $3, $4, $5, '', 0, 0, $5, $5, $5, '', 0)",
                &[Arg::Text(tenant), Arg::Text(webhook_id), Arg::Text(url), Arg::Text(secret), Arg::Integer(now_unix_ms)],
            )
            .await?;
            done(true)
        }
        FulfilmentMutation::DeleteWebhook { webhook_id } => {
            let deleted = execute(
                conn,
                "DELETE FROM order_webhooks WHERE tenant_id = $1 AND webhook_id = $2",
                &[Arg::Text(tenant), Arg::Text(webhook_id)],
            )
            .await?;
            if deleted == 0 {
                refuse!(WriteError::NotFound);
            }
            done(false)
        }
        FulfilmentMutation::ClaimWebhook { webhook_id, seen_next_attempt_unix_ms, lease_until_unix_ms } => {
            let claim = crate::writer::Claim {
                table: "order_webhooks",
                id_column: "webhook_id",
                id: webhook_id,
                seen_next_attempt_unix_ms: *seen_next_attempt_unix_ms,
                lease_until_unix_ms: *lease_until_unix_ms,
            };
            if !claim.take(conn, tenant).await? {
                refuse!(refused("conflict", format!("webhook {webhook_id} is being delivered by another API node")));
            }
            done(false)
        }
        FulfilmentMutation::WebhookDelivered { webhook_id, lease_until_unix_ms, through, alarms_through } => {
            // The cursors first, while the lease is still the token; then the webhook is due
            // again at once (more transitions may wait).
            for (cursor, sql) in [
                (
                    through,
                    "UPDATE order_webhooks SET after_tx = $1, after_at_unix_ms = $2, after_order_id = $3, after_seq = $4 \
                     WHERE tenant_id = $5 AND webhook_id = $6 AND next_attempt_unix_ms = $7",
                ),
                (
                    alarms_through,
                    "UPDATE order_webhooks SET alarm_after_tx = $1, alarm_after_unix_ms = $2, alarm_after_id = $3, \
                     alarm_after_step = $4 WHERE tenant_id = $5 AND webhook_id = $6 AND next_attempt_unix_ms = $7",
                ),
            ] {
                let Some(cursor) = cursor else { continue };
                execute(
                    conn,
                    sql,
                    &[
                        Arg::Integer(cursor.tx),
                        Arg::Integer(cursor.at_unix_ms),
                        Arg::Text(&cursor.id),
                        Arg::Integer(cursor.seq),
                        Arg::Text(tenant),
                        Arg::Text(webhook_id),
                        Arg::Integer(*lease_until_unix_ms),
                    ],
                )
                .await?;
            }
            execute(
                conn,
                "UPDATE order_webhooks SET attempts = 0, next_attempt_unix_ms = $1, last_error = NULL \
                 WHERE tenant_id = $2 AND webhook_id = $3 AND next_attempt_unix_ms = $4",
                &[
                    Arg::Integer(now_unix_ms),
                    Arg::Text(tenant),
                    Arg::Text(webhook_id),
                    Arg::Integer(*lease_until_unix_ms),
                ],
            )
            .await?;
            done(false)
        }
        FulfilmentMutation::WebhookFailed { webhook_id, lease_until_unix_ms, next_attempt_unix_ms, error } => {
            execute(
                conn,
                "UPDATE order_webhooks SET attempts = attempts + 1, next_attempt_unix_ms = $1, last_error = $2 \
                 WHERE tenant_id = $3 AND webhook_id = $4 AND next_attempt_unix_ms = $5",
                &[
                    Arg::Integer(*next_attempt_unix_ms),
                    Arg::Text(error),
                    Arg::Text(tenant),
                    Arg::Text(webhook_id),
                    Arg::Integer(*lease_until_unix_ms),
                ],
            )
            .await?;
            done(false)
        }
        FulfilmentMutation::Recall { recall_id, gtin, lots, reason, public_notice, put_back, held, hold } => {
            if hold.len() > RECALL_HOLDS_MAX {
                refuse!(WriteError::Limit(format!("a recall holds at most {RECALL_HOLDS_MAX} lots made from its own")));
            }
            let public_notice = public_notice.as_deref();
            let recalled = Recalled { recall_id, gtin, lots, reason, public_notice, put_back, held, hold };
            let outcome = attempt!(recall(conn, tenant, &recalled, now_unix_ms, batch, cache).await?);
            Ok(Ok(FulfilmentApplied { created: true, outcome: Some(Arc::new(FulfilmentOutcome::Recall(outcome))) }))
        }
    }
}

/// Applies one movement to a balance read afresh (another API node may have changed it):
/// `movement` answers the kind and units from the balance's on hand. Not found if there is no
/// such balance; answers whether anything changed (no movement for zero units).
#[allow(clippy::too_many_arguments)]
async fn one_movement(
    conn: &mut Conn,
    tenant: &str,
    operation_id: &str,
    key: &StockKey,
    movement: impl FnOnce(i64) -> (MovementKind, i64),
    reason: &str,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<bool> {
    batch.refresh(cache, conn, tenant, &key.gtin).await?;
    let entry = batch.entry(cache, conn, tenant, &key.gtin).await?;
    let Some(cached) = entry.balances.iter().find(|cached| cached.key == *key) else {
        refuse!(no_such_stock(entry, &key.gtin, &key.lot, Some((&key.location, &key.zone)), ""));
    };
    let (kind, quantity) = movement(cached.balance.on_hand);
    if quantity == 0 {
        return Ok(Ok(false));
    }
    attempt!(batch.change(cache, conn, tenant, operation_id, 0, kind, key, quantity, Some(reason), None).await?);
    Ok(Ok(true))
}

/// A receipt as written (see [`FulfilmentMutation::ReceiveAsn`]).
struct Receipt<'a> {
    asn_id: &'a str,
    receipt_id: &'a str,
    zone: &'a ZoneName,
    ssccs: Option<&'a [Sscc]>,
    status: LotStatus,
    recalled: &'a Option<Vec<(String, String)>>,
}

async fn receive_asn(
    conn: &mut Conn,
    tenant: &str,
    receipt: &Receipt<'_>,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<FulfilmentApplied> {
    let Receipt { asn_id, receipt_id, zone, ssccs, status, recalled: assumed_recalled } = *receipt;
    let location: Option<(String,)> = on_conn!(conn, connection => sqlx::query_as(
        "SELECT location_gln FROM asns WHERE tenant_id = $1 AND asn_id = $2")
        .bind(tenant).bind(asn_id).fetch_optional(&mut *connection).await)?;
    let Some((location,)) = location else { refuse!(WriteError::NotFound) };
    let Ok(gln) = Gln::parse(&location) else {
        return Err(corrupt(format!("ASN {asn_id} names the location {location:?}, not a GLN")));
    };
    let Some(site) = stock_site(cache, conn, tenant, &gln).await? else {
        refuse!(WriteError::UnknownReference { field: "/location", value: location });
    };
    let Some(site_zone) = site.zones.iter().find(|candidate| candidate.name == *zone).cloned() else {
        refuse!(WriteError::UnknownReference { field: "/zone", value: zone.to_string() });
    };
    #[derive(sqlx::FromRow)]
    struct PalletRow {
        sscc: String,
        gtin: String,
        lot: String,
        expiry_date: Option<String>,
        quantity: i64,
        received_unix_ms: Option<i64>,
    }
    let pallets: Vec<PalletRow> = on_conn!(conn, connection => sqlx::query_as(
        "SELECT sscc, gtin, lot, expiry_date, quantity, received_unix_ms FROM asn_pallets \
         WHERE tenant_id = $1 AND asn_id = $2 ORDER BY sscc")
        .bind(tenant).bind(asn_id).fetch_all(&mut *connection).await)?;
    let chosen: Vec<&PalletRow> = match ssccs {
        None => pallets.iter().filter(|pallet| pallet.received_unix_ms.is_none()).collect(),
        Some(list) => {
            let by_sscc: HashMap<&str, &PalletRow> =
                pallets.iter().map(|pallet| (pallet.sscc.as_str(), pallet)).collect();
            let mut listed: HashSet<&str> = HashSet::new();
            let mut chosen: Vec<&PalletRow> = Vec::new();
            for sscc in list {
                if !listed.insert(sscc.as_str()) {
                    refuse!(WriteError::UnknownReference { field: "/ssccs", value: format!("{sscc} (listed twice)") });
                }
                match by_sscc.get(sscc.as_str()).copied() {
                    None => refuse!(WriteError::UnknownReference { field: "/ssccs", value: sscc.to_string() }),
                    Some(pallet) if pallet.received_unix_ms.is_some() => {
                        refuse!(refused("already-received", format!("pallet {sscc} was received before")))
                    }
                    Some(pallet) => chosen.push(pallet),
                }
            }
            chosen
        }
    };
    if chosen.is_empty() {
        refuse!(refused("already-received", format!("every pallet of {asn_id} was received before")));
    }
    // Whether each (GTIN, lot) is recalled, read once per ASN, under the lots' locks, and the
    // GTINs' balances read again: a recall or receipt of one of these lots on another API node
    // has committed, or waits for this one.
    let lots = lock_lots_read_afresh(
        conn,
        tenant,
        chosen.iter().map(|pallet| (pallet.gtin.as_str(), pallet.lot.as_str())).collect(),
        batch,
        cache,
    )
    .await?;
    // Whether each lot is recalled, read once, under the lots' locks. The write's events say
    // which come in recalled: they must be these.
    let recalls = recalls_of(conn, tenant, &lots).await?;
    // And whether a recall put it on hold (`hold_derived`), read likewise.
    let holds = holds_of(conn, tenant, &lots).await?;
    let recalled_lots: HashMap<(&str, &str), bool> = lots
        .iter()
        .map(|&(gtin, lot)| ((gtin, lot), recalls.contains_key(&(gtin.to_owned(), lot.to_owned()))))
        .collect();
    if let Some(assumed) = assumed_recalled
        && !lots
            .iter()
            .filter(|pair| recalled_lots.get(*pair) == Some(&true))
            .map(|(gtin, lot)| (*gtin, *lot))
            .eq(assumed.iter().map(|(gtin, lot)| (gtin.as_str(), lot.as_str())))
    {
        refuse!(refused("conflict", RECALLED_MEANWHILE));
    }
    // Each lot once, in the order of its first pallet.
    let mut received: Vec<ReceivedLot> = Vec::new();
    let mut received_index: HashMap<(&str, &str), usize> = HashMap::new();
    let today = crate::utc_day(now_unix_ms);
    for (line, pallet) in chosen.iter().enumerate() {
        let entry = batch.entry(cache, conn, tenant, &pallet.gtin).await?;
        let Some(product) = entry.product.clone() else {
            refuse!(WriteError::UnknownReference { field: "/pallets", value: pallet.gtin.clone() });
        };
        if !site_zone.suits(&product.class) {
            refuse!(zone_unsuitable(zone.as_str(), &site_zone, &product.class));
        }
        let key = StockKey {
            gtin: pallet.gtin.clone(),
            location: location.clone(),
            zone: zone.to_string(),
            lot: pallet.lot.clone(),
        };
        // A pallet of a recalled lot is still received (the units are here), but never as sellable.
        let recalled = recalled_lots.get(&(pallet.gtin.as_str(), pallet.lot.as_str())) == Some(&true);
        let held = holds.contains_key(&(pallet.gtin.clone(), pallet.lot.clone()));
        let asked = status;
        let status = incoming_status(&entry.balances, &key, asked, (recalled, held));
        if hold_covers_quarantine(asked, status) {
            batch.cover_quarantine(tenant, &key);
        }
        match received_index.entry((pallet.gtin.as_str(), pallet.lot.as_str())) {
            std::collections::hash_map::Entry::Occupied(at) => received[*at.get()].units += pallet.quantity,
            std::collections::hash_map::Entry::Vacant(at) => {
                at.insert(received.len());
                received.push(ReceivedLot {
                    gtin: pallet.gtin.clone(),
                    lot: pallet.lot.clone(),
                    expiry: pallet.expiry_date.clone(),
                    units: pallet.quantity,
                    // As the stock reads it: an available lot past its date reads as expired.
                    status: status_as_of(status, pallet.expiry_date.as_deref(), &today),
                });
            }
        }
        attempt!(
            batch
                .change(
                    cache,
                    conn,
                    tenant,
                    receipt_id,
                    line as i64,
                    MovementKind::Receipt,
                    &key,
                    pallet.quantity,
                    Some(&format!("ASN {asn_id} pallet {}", pallet.sscc)),
                    Some((pallet.expiry_date.as_deref(), status)),
                )
                .await?
        );
    }
    let ssccs: Vec<&str> = chosen.iter().map(|pallet| pallet.sscc.as_str()).collect();
    let marked = crate::writer::execute_for_keys(
        conn,
        &[Arg::Text(zone.as_str()), Arg::Integer(now_unix_ms), Arg::Text(tenant), Arg::Text(asn_id)],
        &ssccs,
        |condition| {
            format!(
                "UPDATE asn_pallets SET received_zone = $1, received_unix_ms = $2 WHERE tenant_id = $3 AND asn_id = $4 \
                 AND sscc {condition} AND received_unix_ms IS NULL"
            )
        },
    )
    .await?;
    if marked != ssccs.len() as u64 {
        // Some received by another API node meanwhile: the batch is applied again, one by one.
        return Err(crate::writer::raced(format!(
            "{} of the {} pallets were received meanwhile",
            ssccs.len() as u64 - marked.min(ssccs.len() as u64),
            ssccs.len()
        )));
    }
    Ok(Ok(FulfilmentApplied { created: true, outcome: Some(Arc::new(FulfilmentOutcome::Received(received))) }))
}

/// The status units coming into `key` (a receipt, a return into a named zone) take, given
/// whether their lot is recalled and whether a recall holds it (`held_lots`): `recalled` for a
/// recalled lot; `hold` into a new balance of a held lot (one that exists keeps its status, as
/// below); otherwise [`receipt_status`].
fn incoming_status(
    balances: &[CachedBalance],
    key: &StockKey,
    asked: LotStatus,
    (recalled, held): (bool, bool),
) -> LotStatus {
    if recalled {
        LotStatus::Recalled
    } else if held && !balances.iter().any(|cached| cached.key == *key) {
        LotStatus::Hold
    } else {
        receipt_status(balances, key, asked)
    }
}

/// The status units received into `key` take when the lot is neither recalled nor held. In a zone where the
/// lot is stored on hold, in quarantine or expired, the new units join that status (one status a
/// lot and zone). In a zone new to the lot, they are held (or expired) when every balance of the
/// lot with units on hand is: a hold put on the lot everywhere holds its later pallets too.
/// Quarantine is an inspection of what came in, so it does not reach other zones. Otherwise the
/// units take the status asked for (`available` or `quarantine`); quarantine asked for a zone
/// where the lot is available is refused by `change`.
fn receipt_status(balances: &[CachedBalance], key: &StockKey, asked: LotStatus) -> LotStatus {
    if let Some(stored) = balances.iter().find(|cached| cached.key == *key) {
        return if stored.status == LotStatus::Available { asked } else { stored.status };
    }
    let mut statuses = balances
        .iter()
        .filter(|cached| cached.key.lot == key.lot && cached.balance.on_hand > 0)
        .map(|cached| cached.status);
    match statuses.next() {
        Some(first @ (LotStatus::Hold | LotStatus::Expired)) if statuses.all(|status| status == first) => first,
        _ => asked,
    }
}

fn describe_range(range: &network::TemperatureRange) -> String {
    match (range.min_celsius, range.max_celsius) {
        (Some(min), Some(max)) => format!("{min}–{max} °C"),
        (Some(min), None) => format!("≥ {min} °C"),
        (None, Some(max)) => format!("≤ {max} °C"),
        (None, None) => "uncontrolled".to_owned(),
    }
}

/// The destination's coordinates and time zone, and the region it counts in.
fn resolve_destination(
    network: &NetworkSnapshot,
    destination: &OrderDestination,
) -> Result<(orders::Destination, Option<String>), WriteError> {
    if let Some(gln) = &destination.pickup_point {
        let Some(site) = network.sites.iter().find(|site| site.gln.as_str() == gln) else {
            return Err(WriteError::UnknownReference { field: "/destination/pickup_point", value: gln.clone() });
        };
        if !site.kind.is_collection_point() {
            return Err(WriteError::Refused {
                code: "validation-failed",
                detail: format!(
                    "{gln} is a {}: orders go to a pickup point, store or pharmacy, or to coordinates",
                    site.kind.name()
                ),
                errors: vec![("/destination/pickup_point".into(), "not a pickup point, store or pharmacy".into())],
            });
        }
        let time_zone = site.time_zone.zone().clone();
        let region = site.address.city.clone().unwrap_or_else(|| site.gln.to_string());
        return Ok((orders::Destination { coordinates: site.coordinates, time_zone }, Some(region)));
    }
    let (Some(latitude), Some(longitude), Some(zone)) =
        (destination.latitude_degrees, destination.longitude_degrees, destination.time_zone.as_deref())
    else {
        return Err(WriteError::UnknownReference {
            field: "/destination",
            value: "no pickup point or coordinates".into(),
        });
    };
    let coordinates = Coordinates::new(latitude, longitude)
        .map_err(|error| WriteError::UnknownReference { field: "/destination", value: error.to_string() })?;
    let time_zone = jiff::tz::TimeZone::get(zone)
        .map_err(|_| WriteError::UnknownReference { field: "/destination/time_zone", value: zone.to_owned() })?;
    // The region counted in reports is the network's (the delivering site's city), not the
    // merchant's `area`: free text could name a person or a street, and the operator's report
    // shows every tenant's regions side by side.
    Ok((orders::Destination { coordinates, time_zone }, None))
}

/// Eligible-looking stock of the GTINs (available status, free units), and their product rules.
/// The lots borrow their identifiers from the cache.
async fn stock_lots<'c>(
    conn: &mut Conn,
    batch: &mut StockBatch,
    cache: &'c mut WriterCache,
    tenant: &str,
    lines: &'c [Line],
    lapsed: &LapsedUnits,
    now_unix_ms: i64,
) -> Outcome<(Vec<ProductRule>, Vec<StockLot<'c>>)> {
    // First every GTIN's entry, loaded if need be; then the lots, read from the entries.
    let mut products: Vec<ProductRule> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if products.iter().any(|product| product.gtin == line.gtin) {
            continue;
        }
        let entry = batch.entry(cache, conn, tenant, line.gtin.as_str()).await?;
        let Some(product) = entry.product.clone() else {
            refuse!(unknown_product(format!("/lines/{index}/gtin"), line.gtin.as_str()));
        };
        products.push(product);
    }
    let cache: &'c WriterCache = cache;
    let today = crate::utc_date(now_unix_ms);
    let mut lots = Vec::new();
    for product in &products {
        let Some(line) = lines.iter().find(|line| line.gtin == product.gtin) else { continue };
        let entry = cache
            .gtins
            .get(&(tenant.to_owned(), line.gtin.to_string()))
            .ok_or_else(|| corrupt("cache entry vanished"))?;
        for cached in &entry.balances {
            let lapsed_units = lapsed.get(&cached.key).copied().unwrap_or(0).clamp(0, cached.balance.reserved);
            lots.extend(cached.stock_lot(&line.gtin, cached.balance.free() + lapsed_units, today));
        }
    }
    Ok(Ok((products, lots)))
}

/// Takes the locks of lots (GTIN, lot; sorted, so two writers take them in one order) until the
/// transaction ends, on PostgreSQL, where API nodes write at once: a recall and a receipt or
/// transfer that creates a balance of the lot go one after the other, so the new balance is
/// recalled by one or received as recalled by the other. (SQLite has one writer.) Answers whether
/// it locked anything.
async fn lock_lots(conn: &mut Conn, tenant: &str, lots: &[(&str, &str)]) -> Result<bool, sqlx::Error> {
    debug_assert!(lots.windows(2).all(|pair| pair[0] < pair[1]), "lots sorted and distinct");
    lock_names(conn, lots.iter().map(|(gtin, lot)| format!("keten lot {tenant} {gtin} {lot}")).collect()).await
}

/// Takes the locks of `lots` ([`lock_lots`]; sorted and made distinct here) and, where it took
/// any (PostgreSQL), reads their GTINs' balances again: a write of one of these lots on another
/// API node has committed, or waits for this one. Answers the lots, sorted and distinct.
async fn lock_lots_read_afresh<'a>(
    conn: &mut Conn,
    tenant: &str,
    mut lots: Vec<(&'a str, &'a str)>,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Result<Vec<(&'a str, &'a str)>, sqlx::Error> {
    lots.sort_unstable();
    lots.dedup();
    let mut gtins: Vec<&str> = lots.iter().map(|(gtin, _)| *gtin).collect();
    gtins.dedup();
    if lock_lots(conn, tenant, &lots).await? {
        batch.refresh_all(cache, conn, tenant, &gtins).await?;
    } else {
        // No lock, nothing to read again (SQLite: one writer); the entries the write will use,
        // loaded together.
        let wanted: Vec<(String, String)> = gtins.iter().map(|gtin| (tenant.to_owned(), (*gtin).to_owned())).collect();
        batch.prefetch(cache, conn, &wanted).await?;
    }
    Ok(lots)
}

/// On PostgreSQL, takes the transaction's lock of each name (in the order given: sorted, so that
/// two writers take them in one order), in one statement: writes of two API nodes that take one
/// go one after the other. Answers whether it locked anything.
async fn lock_names(conn: &mut Conn, names: Vec<String>) -> Result<bool, sqlx::Error> {
    let Conn::Postgres(connection) = conn else { return Ok(false) };
    if names.is_empty() {
        return Ok(false);
    }
    // A volatile function in the select list is evaluated after the sort: in the order given.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(name, 0)) FROM UNNEST($1::text[]) WITH ORDINALITY AS given(name, position) \
         ORDER BY position",
    )
    .bind(names)
    .execute(&mut **connection)
    .await?;
    Ok(true)
}

/// On PostgreSQL, takes the transaction's lock of each SSCC (sorted, distinct) an ASN announces:
/// of two ASNs announcing one at the same moment on two API nodes, the second waits and then sees
/// the first. Like the lots' locks, two batches taking them in opposite orders can deadlock;
/// PostgreSQL then fails one, and its writes are applied again one by one.
async fn lock_ssccs(conn: &mut Conn, tenant: &str, ssccs: &[&str]) -> Result<(), sqlx::Error> {
    debug_assert!(ssccs.windows(2).all(|pair| pair[0] < pair[1]), "SSCCs sorted and distinct");
    lock_names(conn, ssccs.iter().map(|sscc| format!("keten sscc {tenant} {sscc}")).collect()).await.map(|_| ())
}

/// Which of `ssccs` the tenant's ASNs announce (received or not), read under the SSCCs' locks on
/// PostgreSQL: an ASN or a packing another API node writes at the same moment is seen.
async fn announced_ssccs<'s>(
    conn: &mut Conn,
    tenant: &str,
    ssccs: impl Iterator<Item = &'s str>,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut sorted: Vec<&str> = ssccs.collect();
    sorted.sort_unstable();
    sorted.dedup();
    lock_ssccs(conn, tenant, &sorted).await?;
    let stored: Vec<(String,)> = crate::writer::fetch_for_keys(conn, tenant, &sorted, |tenant, condition| {
        format!("SELECT sscc FROM asn_pallets WHERE tenant_id = {tenant} AND sscc {condition}")
    })
    .await?;
    Ok(stored.into_iter().map(|(sscc,)| sscc).collect())
}

/// Which of `ssccs` the tenant's orders were packed onto (`order_ssccs`), with the order of each.
/// On PostgreSQL read after [`announced_ssccs`] took their locks, which a packing takes too.
async fn packed_ssccs<'s>(
    conn: &mut Conn,
    tenant: &str,
    ssccs: impl Iterator<Item = &'s str>,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut sorted: Vec<&str> = ssccs.collect();
    sorted.sort_unstable();
    sorted.dedup();
    let stored: Vec<(String, String)> = crate::writer::fetch_for_keys(conn, tenant, &sorted, |tenant, condition| {
        format!("SELECT sscc, order_id FROM order_ssccs WHERE tenant_id = {tenant} AND sscc {condition}")
    })
    .await?;
    Ok(stored.into_iter().collect())
}

/// Units of balances (GTIN, location, zone, lot) held by pending reservations past their timeout.
type LapsedUnits = HashMap<StockKey, i64>;

/// The lines of a tenant's pending reservations past their timeout, summed per balance. The writer
/// releases them lazily (`expire_due`, before its next fulfilment write); until then reads count
/// their units as free. Driven by the due reservations (`reservations_due`), so it reads their
/// lines, not the journal.
pub(crate) const LAPSED_UNITS_SQL: &str = "SELECT m.gtin, m.location_gln, m.zone, m.lot, CAST(SUM(m.quantity) AS BIGINT) \
     FROM reservations r JOIN stock_movements m ON m.tenant_id = r.tenant_id AND m.operation_id = r.reservation_id \
     WHERE r.tenant_id = $1 AND r.state = 'pending' AND r.expires_unix_ms <= $2 AND m.kind = 'reserve' \
     GROUP BY m.gtin, m.location_gln, m.zone, m.lot";

/// Reads [`LAPSED_UNITS_SQL`]. Read it after the balances it corrects: a hold released between
/// the two reads is then missed (its units look held a moment longer), never counted twice.
async fn lapsed_units(conn: &mut Conn, tenant: &str, now_unix_ms: i64) -> Result<LapsedUnits, sqlx::Error> {
    let rows: Vec<(String, String, String, String, i64)> = on_conn!(conn, connection => sqlx::query_as(LAPSED_UNITS_SQL)
        .bind(tenant).bind(now_unix_ms).fetch_all(&mut *connection).await)?;
    Ok(rows
        .into_iter()
        .map(|(gtin, location, zone, lot, units)| (StockKey { gtin, location, zone, lot }, units))
        .collect())
}

/// Allocates `lines` and reserves the picks under `reservation_id`, within the service's window
/// from `window_from_unix_ms` (see [`orders::OrderRequest`]).
#[allow(clippy::too_many_arguments)]
async fn allocate_and_reserve(
    conn: &mut Conn,
    tenant: &str,
    reservation_id: &str,
    lines: &[Line],
    destination: &OrderDestination,
    service: Service,
    latest_delivery_unix_ms: Option<i64>,
    hold_ms: Option<i64>,
    window_from_unix_ms: i64,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<(StoredAllocation, String, i64)> {
    let network = network_snapshot(cache, conn, tenant).await?;
    let (target, area) = attempt!(resolve_destination(&network, destination));
    let view = orders::NetworkView { sites: &network.sites, lanes: &network.lanes };
    let mut refreshed = false;
    let allocation = loop {
        let (products, lots) =
            attempt!(stock_lots(conn, batch, cache, tenant, lines, &LapsedUnits::new(), now_unix_ms).await?);
        let request = orders::OrderRequest {
            lines,
            products: &products,
            destination: &target,
            service,
            placed_unix_ms: now_unix_ms,
            window_from_unix_ms,
            latest_delivery_unix_ms,
        };
        match orders::allocate(view, &lots, &request) {
            Ok(allocation) => break allocation,
            // Refuse only on fresh rows: another API node may have received stock (which may also
            // let fewer sites serve the order). Rows read again this batch are fresh enough (see
            // `StockBatch::read_again_for_allocation`): refused at once.
            Err(orders::AllocationError::Short { .. } | orders::AllocationError::TooManyShipments { .. })
                if !refreshed
                    && lines.iter().any(|line| {
                        !batch.read_again_for_allocation.contains(&(tenant.to_owned(), line.gtin.to_string()))
                    }) =>
            {
                refreshed = true;
                let mut gtins: Vec<String> = lines.iter().map(|line| line.gtin.to_string()).collect();
                if let Some((pending_tenant, pending)) = batch.read_again_with_next_shortfall.take() {
                    if pending_tenant == tenant {
                        gtins.extend(pending);
                    } else {
                        batch.read_again_with_next_shortfall = Some((pending_tenant, pending));
                    }
                }
                gtins.sort_unstable();
                gtins.dedup();
                gtins.retain(|gtin| !batch.read_again_for_allocation.contains(&(tenant.to_owned(), gtin.clone())));
                let read: Vec<&str> = gtins.iter().map(String::as_str).collect();
                batch.refresh_all(cache, conn, tenant, &read).await?;
                batch.read_again_for_allocation.extend(gtins.into_iter().map(|gtin| (tenant.to_owned(), gtin)));
            }
            Err(error) => refuse!(allocation_refusal(error, &blocked_units(cache, tenant, lines, now_unix_ms))),
        }
    };
    let picks: Vec<(MovementKind, StockKey, i64)> = allocation
        .shipments
        .iter()
        .flat_map(|shipment| {
            shipment.picks.iter().map(|pick| {
                let key = StockKey {
                    gtin: lines[pick.line].gtin.to_string(),
                    location: shipment.site.to_string(),
                    zone: pick.zone.to_string(),
                    lot: pick.lot.clone(),
                };
                (MovementKind::Reserve, key, pick.quantity)
            })
        })
        .collect();
    // Allocation chose from the same cached units.
    batch.checked_movements(cache, conn, tenant, reservation_id, &picks, "allocation over-reserved").await?;
    batch.reservations.push(vec![
        Value::Text(tenant.to_owned()),
        Value::Text(reservation_id.to_owned()),
        Value::Text(ReservationState::Pending.name().to_owned()),
        Value::OptionalInteger(hold_ms.map(|hold| now_unix_ms + hold)),
        Value::Integer(now_unix_ms),
        Value::Integer(now_unix_ms),
    ]);
    let region = area.unwrap_or_else(|| {
        let delivering = allocation.shipments.last().map(|shipment| &shipment.route.delivering_site);
        network
            .sites
            .iter()
            .find(|site| Some(&site.gln) == delivering)
            .map(|site| site.address.city.clone().unwrap_or_else(|| site.gln.to_string()))
            .unwrap_or_default()
    });
    let mut stored = stored_allocation(&allocation);
    stored.time_zone = target.time_zone.iana_name().map(str::to_owned);
    Ok(Ok((stored, region, allocation.promised_by_unix_ms)))
}

async fn place_order(
    conn: &mut Conn,
    tenant: &str,
    order: &PlaceOrder,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<OrderRecord> {
    // A deadline already past is a mistake in the request, not a shortage of stock. Decided here,
    // after the writer looked for the request's first answer: a retry after the deadline of an
    // order placed before it is answered as it was.
    if order.latest_delivery_unix_ms.is_some_and(|latest| latest <= now_unix_ms) {
        let detail = "lies in the past: a delivery deadline is a time to come".to_owned();
        refuse!(WriteError::Refused {
            code: "validation-failed",
            detail: format!("/latest_delivery_at {detail}"),
            errors: vec![("/latest_delivery_at".to_owned(), detail)],
        });
    }
    let (allocation, region, promised_by_unix_ms) = attempt!(
        allocate_and_reserve(
            conn,
            tenant,
            &order.order_id,
            &order.lines,
            &order.destination,
            order.service,
            order.latest_delivery_unix_ms,
            order.hold_ms,
            now_unix_ms,
            now_unix_ms,
            batch,
            cache,
        )
        .await?
    );
    let lines: Vec<StoredLine> =
        order.lines.iter().map(|line| StoredLine { gtin: line.gtin.to_string(), quantity: line.quantity }).collect();
    let record = OrderRecord {
        order_id: order.order_id.clone(),
        status: OrderStatus::Allocated,
        service: order.service,
        lines,
        destination: order.destination.clone(),
        allocation,
        region,
        promised_by_unix_ms,
        first_promised_by_unix_ms: None,
        latest_delivery_unix_ms: order.latest_delivery_unix_ms,
        placed_unix_ms: now_unix_ms,
        window_from_unix_ms: now_unix_ms,
        delivered_unix_ms: None,
        arrived_unix_ms: None,
        updated_unix_ms: now_unix_ms,
        stepped_unix_ms: None,
        reservation_id: order.order_id.clone(),
        reservation: ReservationState::Pending,
        hold_expires_unix_ms: order.hold_ms.map(|hold| now_unix_ms + hold),
    };
    batch.orders.push(vec![
        Value::Text(tenant.to_owned()),
        Value::Text(record.order_id.clone()),
        Value::Text(record.status.name().to_owned()),
        Value::Text(record.order_id.clone()),
        Value::Text(record.service.name().to_owned()),
        Value::Text(serde_json::to_string(&record.lines).map_err(corrupt)?),
        Value::Text(serde_json::to_string(&record.destination).map_err(corrupt)?),
        Value::Text(serde_json::to_string(&record.allocation).map_err(corrupt)?),
        Value::Text(record.region.clone()),
        Value::Integer(record.promised_by_unix_ms),
        Value::OptionalInteger(record.latest_delivery_unix_ms),
        Value::Integer(now_unix_ms),
        Value::Integer(now_unix_ms),
    ]);
    // Placing is the order's first transition (accepted → allocated in one write): its
    // webhooks hear of it like of every later one.
    batch.order_events.push(vec![
        Value::Text(tenant.to_owned()),
        Value::Text(record.order_id.clone()),
        Value::Integer(1),
        Value::Text(record.status.name().to_owned()),
        Value::OptionalText(Some(PLACED.to_owned())),
        Value::Integer(now_unix_ms),
    ]);
    Ok(Ok(record))
}

/// The first lot of a recall that the shipped units of the order's `shipments` (by index: those
/// being handed over) came from: (GTIN, lot, recall id). Takes the lots' locks first
/// (PostgreSQL), so a recall on another API node either came first and is seen, or comes after
/// the hand-over and finds the parcel handed over.
pub(crate) async fn recalled_in_parcel(
    conn: &mut Conn,
    tenant: &str,
    record: &OrderRecord,
    shipments: &[usize],
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    let mut lots: Vec<(&str, &str)> = record
        .allocation
        .shipments
        .iter()
        .enumerate()
        .filter(|(index, _)| shipments.contains(index))
        .flat_map(|(_, shipment)| &shipment.picks)
        .filter(|pick| pick.shipped.unwrap_or(pick.quantity) > 0)
        .filter_map(|pick| record.lines.get(pick.line).map(|line| (line.gtin.as_str(), pick.lot.as_str())))
        .collect();
    lots.sort_unstable();
    lots.dedup();
    lock_lots(conn, tenant, &lots).await?;
    let mut recalls = recalls_of(conn, tenant, &lots).await?;
    // The first recalled lot in (GTIN, lot) order.
    Ok(lots.into_iter().find_map(|(gtin, lot)| {
        let key = (gtin.to_owned(), lot.to_owned());
        recalls.remove(&key).map(|recall_id| (key.0, key.1, recall_id))
    }))
}

/// The recalls of some lots (GTIN, lot), by lot; a lot not recalled is absent.
async fn recalls_of(
    conn: &mut Conn,
    tenant: &str,
    lots: &[(&str, &str)],
) -> Result<HashMap<(String, String), String>, sqlx::Error> {
    lots_recall_rows(conn, tenant, "recalled_lots", lots).await
}

/// The recalls that hold some lots for being made from their own (`hold_derived`), by lot; a
/// lot not held is absent.
async fn holds_of(
    conn: &mut Conn,
    tenant: &str,
    lots: &[(&str, &str)],
) -> Result<HashMap<(String, String), String>, sqlx::Error> {
    lots_recall_rows(conn, tenant, "held_lots", lots).await
}

/// The rows of some lots in a table keyed by (tenant, GTIN, lot) with a `recall_id`
/// (`recalled_lots`, `held_lots`), read in the writer's transaction in a few statements
/// (`writer::fetch_for_keys` over their GTINs).
async fn lots_recall_rows(
    conn: &mut Conn,
    tenant: &str,
    table: &'static str,
    lots: &[(&str, &str)],
) -> Result<HashMap<(String, String), String>, sqlx::Error> {
    let mut gtins: Vec<&str> = lots.iter().map(|(gtin, _)| *gtin).collect();
    gtins.sort_unstable();
    gtins.dedup();
    let rows: Vec<(String, String, String)> =
        crate::writer::fetch_for_keys(conn, tenant, &gtins, |tenant, condition| {
            format!("SELECT gtin, lot, recall_id FROM {table} WHERE tenant_id = {tenant} AND gtin {condition}")
        })
        .await?;
    let wanted: HashSet<(&str, &str)> = lots.iter().copied().collect();
    Ok(rows
        .into_iter()
        .filter(|(gtin, lot, _)| wanted.contains(&(gtin.as_str(), lot.as_str())))
        .map(|(gtin, lot, recall_id)| ((gtin, lot), recall_id))
        .collect())
}

/// The detail of an order's first history row.
pub const PLACED: &str = "placed";

#[derive(sqlx::FromRow)]
struct ReserveRow {
    line: i64,
    gtin: String,
    location_gln: String,
    zone: String,
    lot: String,
    quantity: i64,
    kind: String,
}

async fn reserve_lines(conn: &mut Conn, tenant: &str, reservation_id: &str) -> Result<Vec<ReserveRow>, sqlx::Error> {
    movement_rows(conn, tenant, reservation_id, &[MovementKind::Reserve]).await
}

/// The movements of some kinds of an operation, in line order.
async fn movement_rows(
    conn: &mut Conn,
    tenant: &str,
    operation_id: &str,
    kinds: &[MovementKind],
) -> Result<Vec<ReserveRow>, sqlx::Error> {
    let kinds: Vec<String> = kinds.iter().map(|kind| format!("'{}'", kind.name())).collect();
    let sql = format!(
        "SELECT line, gtin, location_gln, zone, lot, quantity, kind FROM stock_movements \
         WHERE tenant_id = $1 AND operation_id = $2 AND kind IN ({}) ORDER BY line",
        kinds.join(", ")
    );
    on_conn!(conn, connection => sqlx::query_as(&sql)
        .bind(tenant).bind(operation_id).fetch_all(&mut *connection).await)
}

/// The units each pick shipped, read off the posting of its reservation: in line order, each pick
/// wrote its `ship`, then its `release`, together the units it reserved.
fn shipped_per_pick(picks: &[ReserveRow], posted: &[ReserveRow]) -> Result<Vec<i64>, String> {
    let mut rows = posted.iter();
    picks
        .iter()
        .map(|pick| {
            let (mut left, mut shipped) = (pick.quantity, 0);
            while left > 0 {
                let row = rows
                    .next()
                    .filter(|row| key_of(row) == key_of(pick) && row.quantity <= left)
                    .ok_or_else(|| format!("the posting of reserve line {} does not add up to it", pick.line))?;
                left -= row.quantity;
                if row.kind == MovementKind::Ship.name() {
                    shipped += row.quantity;
                }
            }
            Ok(shipped)
        })
        .collect()
}

/// Whether units may come back into `key`'s zone (a return, a count above nothing): it is still
/// there and still keeps the product in range. The units left it, and an emptied zone may have
/// been dropped or narrowed since. On PostgreSQL the location is locked to share ([`stock_site`]).
/// `pointer`: the field a refusal names.
async fn zone_takes_back(
    conn: &mut Conn,
    tenant: &str,
    key: &StockKey,
    pointer: &str,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<()> {
    let gln = Gln::parse(&key.location).map_err(corrupt)?;
    let site = stock_site(cache, conn, tenant, &gln).await?;
    let Some(zone) = site.and_then(|site| site.zones.into_iter().find(|zone| zone.name.as_str() == key.zone)) else {
        let detail = if pointer == "/restocked" {
            format!(
                "zone {} of location {} is no longer there: add it back to the location before units go into it",
                key.zone, key.location
            )
        } else {
            format!("location {} has no zone {}", key.location, key.zone)
        };
        refuse!(WriteError::Refused {
            code: "unknown-reference",
            detail: detail.clone(),
            errors: vec![(pointer.into(), detail)]
        });
    };
    let entry = batch.entry(cache, conn, tenant, &key.gtin).await?;
    if let Some(product) = &entry.product
        && !zone.suits(&product.class)
    {
        let mut unsuitable =
            zone_unsuitable(&format!("{} of location {}", key.zone, key.location), &zone, &product.class);
        if let WriteError::Refused { detail, errors, .. } = &mut unsuitable {
            errors.push((pointer.to_owned(), detail.clone()));
        }
        refuse!(unsuitable);
    }
    Ok(Ok(()))
}

/// The refusal of units going into a zone whose range does not keep their product's class
/// (422 `zone-unsuitable`); `zone`: how the detail names it.
fn zone_unsuitable(zone: &str, site_zone: &network::Zone, class: &network::TemperatureClass) -> WriteError {
    refused(
        "zone-unsuitable",
        format!(
            "zone {zone} ({}) does not keep {} products ({}) in range",
            describe_range(&site_zone.range),
            class.name(),
            describe_range(&class.range())
        ),
    )
}

fn key_of(row: &ReserveRow) -> StockKey {
    StockKey {
        gtin: row.gtin.clone(),
        location: row.location_gln.clone(),
        zone: row.zone.clone(),
        lot: row.lot.clone(),
    }
}

/// Releases every line of a pending reservation and marks it `state`.
#[allow(clippy::too_many_arguments)]
async fn release_reservation(
    conn: &mut Conn,
    tenant: &str,
    reservation_id: &str,
    operation_id: &str,
    state: ReservationState,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Result<(), sqlx::Error> {
    release_lines(conn, tenant, reservation_id, operation_id, batch, cache).await?;
    end_reservation(conn, tenant, reservation_id, state, now_unix_ms).await
}

/// Releases every reserved line of a reservation (`release` movements under `operation_id`).
async fn release_lines(
    conn: &mut Conn,
    tenant: &str,
    reservation_id: &str,
    operation_id: &str,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Result<(), sqlx::Error> {
    let releases: Vec<(MovementKind, StockKey, i64)> = reserve_lines(conn, tenant, reservation_id)
        .await?
        .iter()
        .map(|row| (MovementKind::Release, key_of(row), row.quantity))
        .collect();
    let what = format!("reservation {reservation_id} cannot be released");
    batch.checked_movements(cache, conn, tenant, operation_id, &releases, &what).await?;
    Ok(())
}

/// Ends a pending reservation. If it is not pending any more, another API node ended it since this
/// batch read it: the batch fails, and its writes are applied again one by one on fresh rows (where
/// the second ending is refused cleanly).
async fn end_reservation(
    conn: &mut Conn,
    tenant: &str,
    reservation_id: &str,
    state: ReservationState,
    now_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    // (A hold's expiry ends its reservation in `expire_hold`, only while still due.)
    debug_assert!(state != ReservationState::Expired, "holds expire through expire_hold");
    let sql = "UPDATE reservations SET state = $1, updated_unix_ms = $2 WHERE tenant_id = $3 AND reservation_id = $4 \
         AND state = 'pending'";
    let ended = execute(
        conn,
        sql,
        &[Arg::Text(state.name()), Arg::Integer(now_unix_ms), Arg::Text(tenant), Arg::Text(reservation_id)],
    )
    .await?;
    if ended != 1 {
        return Err(crate::writer::raced(format!("reservation {reservation_id} was ended meanwhile")));
    }
    Ok(())
}

/// Releases the units of pending reservations whose timeout has passed (and cancels their
/// orders). Called once per batch that touches stock; at most [`EXPIRIES_PER_BATCH_MAX`].
/// Expires the holds past their timeout, at most [`EXPIRIES_PER_BATCH_MAX`]; answers whether more
/// may be due (it took as many as it may).
async fn expire_due(
    conn: &mut Conn,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
    now_unix_ms: i64,
) -> Result<bool, sqlx::Error> {
    let due: Vec<(String, String)> = on_conn!(conn, connection => sqlx::query_as(&format!(
        "SELECT tenant_id, reservation_id FROM reservations WHERE state = 'pending' AND expires_unix_ms IS NOT NULL \
         AND expires_unix_ms <= $1 ORDER BY expires_unix_ms LIMIT {EXPIRIES_PER_BATCH_MAX}"))
        .bind(now_unix_ms).fetch_all(&mut *connection).await)?;
    let backlog = due.len() as i64 >= EXPIRIES_PER_BATCH_MAX;
    for (tenant, reservation_id) in due {
        expire_hold(conn, &tenant, &reservation_id, now_unix_ms, batch, cache).await?;
    }
    Ok(backlog)
}

/// Cancels flagged orders whose hold ended (`flagged_holds`): nothing is reserved for them any
/// more, so this is no matter of stock and is left to the worker's sweep (`ExpireHolds`), not
/// read by every batch. At most [`EXPIRIES_PER_BATCH_MAX`] a sweep.
async fn expire_flagged_holds(conn: &mut Conn, now_unix_ms: i64) -> Result<(), sqlx::Error> {
    // Flagged orders whose hold ended: nothing is reserved any more; the order is cancelled.
    let flagged: Vec<(String, String)> = on_conn!(conn, connection => sqlx::query_as(&format!(
        "SELECT tenant_id, order_id FROM flagged_holds WHERE expires_unix_ms <= $1 \
         ORDER BY expires_unix_ms LIMIT {EXPIRIES_PER_BATCH_MAX}"))
        .bind(now_unix_ms).fetch_all(&mut *connection).await)?;
    for (tenant, order_id) in flagged {
        // Ended here first: none ended means another API node's worker did, or the merchant
        // moved the order on meanwhile (which ends it too).
        let ended = execute(
            conn,
            "DELETE FROM flagged_holds WHERE tenant_id = $1 AND order_id = $2 AND expires_unix_ms <= $3",
            &[Arg::Text(&tenant), Arg::Text(&order_id), Arg::Integer(now_unix_ms)],
        )
        .await?;
        if ended == 1 {
            let detail = Some("the hold expired while the order was flagged");
            let cancelled = set_order_status(
                conn,
                &tenant,
                &order_id,
                OrderStatus::Accepted,
                OrderStatus::Cancelled,
                detail,
                None,
                None,
                now_unix_ms,
            )
            .await?;
            if !cancelled {
                tracing::warn!(tenant, order_id, "a flagged hold ended, but its order was no longer accepted");
            }
        }
    }
    Ok(())
}

impl crate::Store {
    /// Whether a pending hold of any tenant has lapsed by `now_unix_ms` (read through the due
    /// reservations' index).
    pub async fn holds_lapsed(&self, now_unix_ms: i64) -> Result<bool, crate::StoreError> {
        let row: Option<(i64,)> = crate::backend::on_pool!(self.pools(), pool => sqlx::query_as(
            "SELECT expires_unix_ms FROM reservations WHERE state = 'pending' AND expires_unix_ms IS NOT NULL \
             AND expires_unix_ms <= $1 LIMIT 1")
            .bind(now_unix_ms).fetch_optional(pool).await)?;
        if row.is_some() {
            return Ok(true);
        }
        let flagged: Option<(i64,)> = crate::backend::on_pool!(self.pools(), pool => sqlx::query_as(
            "SELECT expires_unix_ms FROM flagged_holds WHERE expires_unix_ms <= $1 LIMIT 1")
            .bind(now_unix_ms).fetch_optional(pool).await)?;
        Ok(flagged.is_some())
    }
}

/// The tenant's (`$1`) due holds (`$2`: now) that reserve units of a GTIN (`$3`).
pub(crate) const DUE_HOLDS_OF_GTIN_SQL: &str = "SELECT DISTINCT r.reservation_id FROM reservations r \
     JOIN stock_movements m ON m.tenant_id = r.tenant_id AND m.operation_id = r.reservation_id \
     WHERE r.tenant_id = $1 AND r.state = 'pending' AND r.expires_unix_ms <= $2 AND m.kind = 'reserve' AND m.gtin = $3";

/// Expires the due holds on units of the lines' GTINs that [`expire_due`] left (it takes at most
/// [`EXPIRIES_PER_BATCH_MAX`] a batch), before an order is allocated: it is not refused for units
/// only a lapsed hold still counts. Answers how many it expired.
async fn expire_due_of(
    conn: &mut Conn,
    tenant: &str,
    lines: &[Line],
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Result<usize, sqlx::Error> {
    let mut due = std::collections::BTreeSet::new();
    for line in lines {
        let rows: Vec<(String,)> = on_conn!(conn, connection => sqlx::query_as(DUE_HOLDS_OF_GTIN_SQL)
            .bind(tenant).bind(now_unix_ms).bind(line.gtin.as_str()).fetch_all(&mut *connection).await)?;
        due.extend(rows.into_iter().map(|(reservation_id,)| reservation_id));
    }
    for reservation_id in &due {
        expire_hold(conn, tenant, reservation_id, now_unix_ms, batch, cache).await?;
    }
    Ok(due.len())
}

/// Expires one due hold: releases its units, and cancels its order if that still waits for its
/// confirmation on this reservation.
async fn expire_hold(
    conn: &mut Conn,
    tenant: &str,
    reservation_id: &str,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Result<(), sqlx::Error> {
    // Ended here first, only while still due: none ended means another API node expired it (each
    // node's worker sweeps the lapsed holds) or its order was confirmed since the due read. That
    // is no race to retry the batch for: there is nothing left to do.
    let ended = execute(
        conn,
        "UPDATE reservations SET state = $1, updated_unix_ms = $2 WHERE tenant_id = $3 AND reservation_id = $4 \
         AND state = 'pending' AND expires_unix_ms IS NOT NULL AND expires_unix_ms <= $2",
        &[
            Arg::Text(ReservationState::Expired.name()),
            Arg::Integer(now_unix_ms),
            Arg::Text(tenant),
            Arg::Text(reservation_id),
        ],
    )
    .await?;
    if ended != 1 {
        return Ok(());
    }
    release_lines(conn, tenant, reservation_id, &format!("{reservation_id}/expired"), batch, cache).await?;
    // A reservation's id is its order's id, or starts with it and a '/'. Only an order still
    // waiting for its confirmation (allocated, on this reservation) is cancelled.
    let order_id = reservation_id.split('/').next().unwrap_or(reservation_id).to_owned();
    let holds: Option<(String,)> = on_conn!(conn, connection => sqlx::query_as(
        "SELECT reservation_id FROM orders WHERE tenant_id = $1 AND order_id = $2")
        .bind(tenant).bind(&order_id).fetch_optional(&mut *connection).await)?;
    if holds.is_some_and(|(current,)| current == reservation_id)
        && !set_order_status(
            conn,
            tenant,
            &order_id,
            OrderStatus::Allocated,
            OrderStatus::Cancelled,
            Some("the hold expired"),
            None,
            None,
            now_unix_ms,
        )
        .await?
    {
        // Confirming an order clears its hold's timeout in the same transaction, so a hold
        // that expired above belongs to an order nobody confirmed. Failing here would fail
        // every later batch on the same row; say it instead.
        tracing::warn!(tenant, order_id, "a hold expired, but its order was no longer waiting for confirmation");
    }
    Ok(())
}

/// Moves an order from status `from` to `status` and appends it to the order's history. If the
/// order is not in `from` any more (another API node moved it since this batch read it), nothing
/// changes and the answer is false.
#[allow(clippy::too_many_arguments)]
async fn set_order_status(
    conn: &mut Conn,
    tenant: &str,
    order_id: &str,
    from: OrderStatus,
    status: OrderStatus,
    detail: Option<&str>,
    allocation: Option<(&StoredAllocation, i64, &str)>,
    stepped_unix_ms: Option<i64>,
    now_unix_ms: i64,
) -> Result<bool, sqlx::Error> {
    let delivered = (status == OrderStatus::Delivered).then_some(now_unix_ms);
    let changed = match allocation {
        Some((allocation, promised_by, reservation_id)) => {
            execute(
                conn,
                // The first promise is kept once an allocation moves it (SET reads the old row).
                "UPDATE orders SET status = $1, updated_unix_ms = $2, allocation = $3, promised_by_unix_ms = $4, \
                 first_promised_unix_ms = CASE WHEN promised_by_unix_ms <> $4 \
                 THEN COALESCE(first_promised_unix_ms, promised_by_unix_ms) ELSE first_promised_unix_ms END, \
                 reservation_id = $5, stepped_unix_ms = COALESCE($9, stepped_unix_ms) \
                 WHERE tenant_id = $6 AND order_id = $7 AND status = $8",
                &[
                    Arg::Text(status.name()),
                    Arg::Integer(now_unix_ms),
                    Arg::Text(&serde_json::to_string(allocation).map_err(corrupt)?),
                    Arg::Integer(promised_by),
                    Arg::Text(reservation_id),
                    Arg::Text(tenant),
                    Arg::Text(order_id),
                    Arg::Text(from.name()),
                    Arg::OptionalInteger(stepped_unix_ms),
                ],
            )
            .await?
        }
        None => execute(
            conn,
            "UPDATE orders SET status = $1, updated_unix_ms = $2, delivered_unix_ms = COALESCE($3, delivered_unix_ms), \
                 stepped_unix_ms = COALESCE($7, stepped_unix_ms) WHERE tenant_id = $4 AND order_id = $5 AND status = $6",
            &[
                Arg::Text(status.name()),
                Arg::Integer(now_unix_ms),
                Arg::OptionalInteger(delivered),
                Arg::Text(tenant),
                Arg::Text(order_id),
                Arg::Text(from.name()),
                Arg::OptionalInteger(stepped_unix_ms),
            ],
        )
        .await?,
    };
    if changed != 1 {
        return Ok(false);
    }
    execute(
        conn,
        "INSERT INTO order_events (tenant_id, order_id, seq, status, detail, at_unix_ms) \
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5 FROM order_events WHERE tenant_id = $1 AND order_id = $2",
        &[
            Arg::Text(tenant),
            Arg::Text(order_id),
            Arg::Text(status.name()),
            Arg::OptionalText(detail),
            Arg::Integer(now_unix_ms),
        ],
    )
    .await?;
    if !matches!(status, OrderStatus::Packed | OrderStatus::Shipped | OrderStatus::OutForDelivery) {
        // No longer waiting for the last mile (handed over, cancelled, allocated anew…): out of
        // the dispatch queue.
        execute(
            conn,
            "DELETE FROM dispatch_queue WHERE tenant_id = $1 AND order_id = $2",
            &[Arg::Text(tenant), Arg::Text(order_id)],
        )
        .await?;
    }
    Ok(true)
}

/// Queues the order's shipments that now wait at their delivering depot for the last mile:
/// packing queues those its own site delivers, shipping those that travel a lane to the depot.
async fn queue_for_dispatch(
    conn: &mut Conn,
    tenant: &str,
    record: &OrderRecord,
    now_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    let via_lane = match record.status {
        OrderStatus::Packed => false,
        OrderStatus::Shipped => true,
        _ => return Ok(()),
    };
    for (index, shipment) in record.allocation.shipments.iter().enumerate() {
        if shipment.shipped_nothing() {
            // Shipped without a unit (queued when packed, if its own site delivers it): it does
            // not wait for the last mile.
            execute(
                conn,
                "DELETE FROM dispatch_queue WHERE tenant_id = $1 AND order_id = $2 AND shipment = $3",
                &[Arg::Text(tenant), Arg::Text(&record.order_id), Arg::Integer(index as i64)],
            )
            .await?;
            continue;
        }
        if shipment.lane.is_some() != via_lane {
            continue;
        }
        execute(
            conn,
            "INSERT INTO dispatch_queue (tenant_id, order_id, shipment, reservation_id, depot_gln, via_lane, \
             last_mile_departure_unix_ms, promised_by_unix_ms, queued_unix_ms) VALUES ($1, $2, $3, $9, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, order_id, shipment) DO UPDATE SET reservation_id = excluded.reservation_id, \
             depot_gln = excluded.depot_gln, via_lane = excluded.via_lane, \
             last_mile_departure_unix_ms = excluded.last_mile_departure_unix_ms, \
             promised_by_unix_ms = excluded.promised_by_unix_ms, queued_unix_ms = excluded.queued_unix_ms",
            &[
                Arg::Text(tenant),
                Arg::Text(&record.order_id),
                Arg::Integer(index as i64),
                Arg::Text(&shipment.delivering_site),
                Arg::Integer(i64::from(via_lane)),
                Arg::Integer(shipment.last_mile_departure_unix_ms),
                Arg::Integer(shipment.promised_by_unix_ms),
                Arg::Integer(now_unix_ms),
                Arg::Text(&record.reservation_id),
            ],
        )
        .await?;
    }
    Ok(())
}

/// What an order event asks.
struct OrderChange<'a> {
    to: OrderStatus,
    ssccs: &'a [Sscc],
    units: Option<&'a [i64]>,
    expected_reservation: Option<&'a str>,
    expected_status: Option<OrderStatus>,
    handed_over_unix_ms: Option<i64>,
    restock_to: Option<&'a RestockTo>,
    recalled: Option<&'a [(String, String)]>,
    happened: StepTime,
}

#[allow(clippy::too_many_arguments)]
async fn order_event(
    conn: &mut Conn,
    tenant: &str,
    order_id: &str,
    event_id: &str,
    change: OrderChange<'_>,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<OrderRecord> {
    let OrderChange {
        to,
        ssccs,
        units,
        expected_reservation,
        expected_status,
        handed_over_unix_ms,
        restock_to,
        recalled: assumed_recalled,
        happened,
    } = change;
    let Some((mut record, reservation_id)) = read_order(conn, tenant, order_id, now_unix_ms).await? else {
        refuse!(WriteError::NotFound);
    };
    if expected_reservation.is_some_and(|expected| expected != reservation_id) {
        refuse!(refused(
            "invalid-transition",
            format!("order {order_id} was allocated again meanwhile; read it and retry")
        ));
    }
    if let Some(expected) = expected_status.filter(|expected| *expected != record.status) {
        refuse!(refused(
            "invalid-transition",
            format!(
                "order {order_id} moved from {} to {} meanwhile; read it and retry",
                expected.name(),
                record.status.name()
            )
        ));
    }
    if record.status.holds_reservation() && record.reservation == ReservationState::Expired {
        refuse!(refused("invalid-transition", format!("the hold of order {order_id} expired")));
    }
    let effect = match orders::transition(record.status, to) {
        Ok(effect) => effect,
        Err(error) => refuse!(refused("invalid-transition", error.to_string())),
    };
    // Steps happen in order: one said to have happened well before the order's last step (a
    // delivery dated before its shipping) is a mistake, and would misdate the arrival the SLA
    // measures and the events' order.
    if let (StepTime::Said(at), Some(last)) = (happened, record.stepped_unix_ms)
        && at < last - STEP_BEFORE_LAST_MS_MAX
    {
        refuse!(WriteError::Refused {
            code: "validation-failed",
            detail: format!("order {order_id}'s step is dated before its last step"),
            errors: vec![(
                "/at".into(),
                format!(
                    "lies more than {} minutes before the order's last step ({})",
                    STEP_BEFORE_LAST_MS_MAX / 60_000,
                    jiff::Timestamp::from_millisecond(last).map_or_else(|_| last.to_string(), |at| at.to_string())
                ),
            )],
        });
    }
    if to == OrderStatus::AtPickupPoint && record.destination.pickup_point.is_none() {
        refuse!(refused(
            "invalid-transition",
            format!("order {order_id} goes to an address, not a pickup point: it is out_for_delivery, then delivered")
        ));
    }
    // Collected where it arrived: the arrival is a step of its own, with its event (`arriving`)
    // and the time the SLA measures.
    if to == OrderStatus::Delivered
        && record.status != OrderStatus::AtPickupPoint
        && let Some(pickup_point) = &record.destination.pickup_point
    {
        refuse!(refused(
            "invalid-transition",
            format!(
                "order {order_id} goes to pickup point {pickup_point}: it arrives there (at_pickup_point) before it is \
                 collected (delivered)"
            )
        ));
    }
    // A parcel carrying units of a recalled lot is not handed to the consumer: it may still
    // arrive at its pickup point, and it is taken back (`returned`, its units restocked as
    // recalled), but it is not delivered.
    // A split order's parcels a courier handed over already (before the recall) are the
    // consumer's: only those still to hand over are judged.
    let to_hand_over: Vec<usize> = if to == OrderStatus::Delivered {
        let handed = crate::dispatch::shipments_handed_over(conn, tenant, order_id, &record.reservation_id).await?;
        (0..record.allocation.shipments.len()).filter(|index| !handed.contains(index)).collect()
    } else {
        Vec::new()
    };
    if to == OrderStatus::Delivered
        && let Some((gtin, lot, recall_id)) = recalled_in_parcel(conn, tenant, &record, &to_hand_over).await?
    {
        refuse!(refused(
            "lot-unavailable",
            format!(
                "order {order_id} carries units of lot {lot:?} of {gtin}, recalled ({recall_id}): it is not handed \
                 over; take the parcel back with `returned`"
            )
        ));
    }
    let operation = format!("{order_id}/{event_id}");
    let mut allocation_change = None;
    let mut detail = None;
    match effect {
        StockEffect::None => {}
        StockEffect::VoidReservation => {
            release_reservation(
                conn,
                tenant,
                &reservation_id,
                &operation,
                ReservationState::Voided,
                now_unix_ms,
                batch,
                cache,
            )
            .await?;
        }
        StockEffect::PostReservation => {
            let rows = reserve_lines(conn, tenant, &reservation_id).await?;
            let reserved: Vec<i64> = rows.iter().map(|row| row.quantity).collect();
            let shipped: Vec<i64> = units.map(<[i64]>::to_vec).unwrap_or_else(|| reserved.clone());
            let mut reservation = stock::Reservation::pending(None);
            let released = match reservation.post(&reserved, &shipped, now_unix_ms) {
                Ok(released) => released,
                Err(error) => {
                    refuse!(WriteError::Refused {
                        code: "invalid-transition",
                        detail: format!(
                            "{error}; `shipped` lists the units shipped per pick, in the order of the allocation's picks"
                        ),
                        errors: vec![("/shipped".into(), error.to_string())],
                    })
                }
            };
            // Units leave only from lots still available: a lot put on hold, in quarantine or
            // expired since the order was allocated stops the shipment (read afresh: another API
            // node may have changed it). Expired is also by date, as the stock's read says it: a
            // lot past its expiry date (UTC) does not leave, whatever its stored status.
            let today = crate::utc_day(now_unix_ms);
            let mut refreshed: Vec<&str> = Vec::new();
            for (row, &units) in rows.iter().zip(&shipped) {
                if units == 0 {
                    continue;
                }
                if !refreshed.contains(&row.gtin.as_str()) {
                    batch.refresh(cache, conn, tenant, &row.gtin).await?;
                    refreshed.push(&row.gtin);
                }
                let entry = batch.entry(cache, conn, tenant, &row.gtin).await?;
                let key = key_of(row);
                if let Some(cached) = entry.balances.iter().find(|cached| cached.key == key) {
                    if cached.status != LotStatus::Available {
                        refuse!(refused(
                            "lot-unavailable",
                            format!(
                                "lot {:?} of {} in {} zone {} is {}: it cannot ship; make it available again or \
                                 cancel the order",
                                key.lot,
                                key.gtin,
                                key.location,
                                key.zone,
                                cached.status.name()
                            )
                        ));
                    }
                    if let Some(expiry) = cached.expiry.as_deref().filter(|expiry| **expiry < *today) {
                        refuse!(refused(
                            "lot-unavailable",
                            format!(
                                "lot {:?} of {} in {} zone {} is past its expiry date {expiry}: it cannot \
                                 ship; cancel the order",
                                key.lot, key.gtin, key.location, key.zone
                            )
                        ));
                    }
                }
            }
            let movements: Vec<(MovementKind, StockKey, i64)> = rows
                .iter()
                .zip(&shipped)
                .zip(released)
                .flat_map(|((row, &units), released)| {
                    [(MovementKind::Ship, key_of(row), units), (MovementKind::Release, key_of(row), released)]
                })
                .collect();
            let what = format!("posting {reservation_id}");
            batch.checked_movements(cache, conn, tenant, &operation, &movements, &what).await?;
            if shipped != reserved {
                detail = Some(format!("short pick: shipped {shipped:?} of {reserved:?} reserved"));
            }
            // Each pick keeps what it shipped, for the delivery's events (the reservation's lines
            // are the allocation's picks in order).
            let picks: Vec<&mut StoredPick> =
                record.allocation.shipments.iter_mut().flat_map(|shipment| shipment.picks.iter_mut()).collect();
            debug_assert_eq!(picks.len(), shipped.len(), "one reserve line per pick");
            if picks.len() == shipped.len() {
                for (pick, &units) in picks.into_iter().zip(&shipped) {
                    pick.shipped = Some(units);
                }
                allocation_change = Some(reservation_id.clone());
            }
            end_reservation(conn, tenant, &reservation_id, ReservationState::Posted, now_unix_ms).await?;
        }
        StockEffect::Allocate => {
            // Asked for (a flagged order, by its merchant): a new promise, from now. A hold is the
            // time the order waits for its confirmation; one that ended while the order was
            // flagged ended unconfirmed, and a reservation made now would be born expired.
            if let Some(ended) = record.hold_expires_unix_ms.filter(|expires| *expires <= now_unix_ms) {
                refuse!(refused(
                    "invalid-transition",
                    format!(
                        "order {order_id}'s hold ended at {} without a confirmation: cancel it, or place it again",
                        jiff::Timestamp::from_millisecond(ended)
                            .map_or_else(|_| ended.to_string(), |at| at.to_string())
                    )
                ));
            }
            let lines = record.order_lines()?;
            // A fresh id each time: an order may lose its stock to more than one recall.
            let reservation = format!("{order_id}/{event_id}-{:016x}", rand::random::<u64>());
            let (allocation, region, promised_by) = attempt!(
                allocate_and_reserve(
                    conn,
                    tenant,
                    &reservation,
                    &lines,
                    &record.destination,
                    record.service,
                    record.latest_delivery_unix_ms,
                    record.hold_left_ms(now_unix_ms),
                    now_unix_ms,
                    now_unix_ms,
                    batch,
                    cache,
                )
                .await?
            );
            record.allocation = allocation;
            if promised_by != record.promised_by_unix_ms {
                // As `set_order_status` keeps it in the row.
                record.first_promised_by_unix_ms =
                    record.first_promised_by_unix_ms.or(Some(record.promised_by_unix_ms));
            }
            record.promised_by_unix_ms = promised_by;
            record.reservation_id = reservation.clone();
            record.reservation = ReservationState::Pending;
            // Its window runs from now on, for a later recall's allocation too; its region is
            // its new delivering site's.
            execute(
                conn,
                "UPDATE orders SET window_from_unix_ms = $3, region = $4 WHERE tenant_id = $1 AND order_id = $2",
                &[Arg::Text(tenant), Arg::Text(order_id), Arg::Integer(now_unix_ms), Arg::Text(&region)],
            )
            .await?;
            record.window_from_unix_ms = now_unix_ms;
            record.region = region;
            allocation_change = Some(reservation);
        }
        StockEffect::Pick => {
            // Under the reservation's id: an order allocated again after a recall is picked again.
            let picks: Vec<(MovementKind, StockKey, i64)> = reserve_lines(conn, tenant, &reservation_id)
                .await?
                .iter()
                .map(|row| (MovementKind::Pick, key_of(row), row.quantity))
                .collect();
            let what = format!("picking {reservation_id}");
            let picking = format!("{reservation_id}/{}", OrderStatus::Picking.name());
            batch.checked_movements(cache, conn, tenant, &picking, &picks, &what).await?;
        }
        StockEffect::Restock => {
            if let Some(restocked) = units {
                let picks = reserve_lines(conn, tenant, &reservation_id).await?;
                let posting = format!("{order_id}/{}", OrderStatus::Shipped.name());
                let posted =
                    movement_rows(conn, tenant, &posting, &[MovementKind::Ship, MovementKind::Release]).await?;
                let shipped =
                    shipped_per_pick(&picks, &posted).map_err(|error| corrupt(format!("order {order_id}: {error}")))?;
                if let Err(error) = stock::check_restock(record.reservation, &shipped, restocked) {
                    let error = error.to_string();
                    refuse!(WriteError::Refused {
                        code: "invalid-transition",
                        detail: format!(
                            "{error}; `restocked` lists the units back in stock per pick, in the order of the \
                             allocation's picks, each at most what the pick shipped"
                        ),
                        errors: vec![("/restocked".into(), error)],
                    });
                }
                // Back into the balance each was picked from, with the lot's status there; or into
                // the zone and status the return names.
                let returns: Vec<(MovementKind, StockKey, i64)> = picks
                    .iter()
                    .zip(restocked)
                    .map(|(pick, &units)| {
                        let mut key = key_of(pick);
                        if let Some(zone) = restock_to.and_then(|to| to.zone.as_ref()) {
                            key.zone = zone.clone();
                        }
                        (MovementKind::Return, key, units)
                    })
                    .collect();
                let pointer =
                    if restock_to.is_some_and(|to| to.zone.is_some()) { "/restock_zone" } else { "/restocked" };
                for (_, key, units) in &returns {
                    if *units > 0 {
                        attempt!(zone_takes_back(conn, tenant, key, pointer, batch, cache).await?);
                    }
                }
                // Whether each lot coming back is recalled, read once, under the lots' locks (a
                // recall takes them too); a balance may be new, so read afresh. The write's events
                // say which come back recalled: they must be these.
                let lots: Vec<(&str, &str)> = returns
                    .iter()
                    .filter(|(_, _, units)| *units > 0)
                    .map(|(_, key, _)| (key.gtin.as_str(), key.lot.as_str()))
                    .collect();
                let lots = lock_lots_read_afresh(conn, tenant, lots, batch, cache).await?;
                let recalled = recalls_of(conn, tenant, &lots).await?;
                if let Some(assumed) = assumed_recalled
                    && !lots
                        .iter()
                        .filter(|(gtin, lot)| recalled.contains_key(&((*gtin).to_owned(), (*lot).to_owned())))
                        .copied()
                        .eq(assumed.iter().map(|(gtin, lot)| (gtin.as_str(), lot.as_str())))
                {
                    refuse!(refused("conflict", RECALLED_MEANWHILE));
                }
                // The statuses the restocked units took (with a zone or status named).
                let mut statuses: Vec<String> = Vec::new();
                let written = match restock_to {
                    None => {
                        let what = format!("restocking {order_id}");
                        batch.checked_movements(cache, conn, tenant, &operation, &returns, &what).await?
                    }
                    Some(to) => {
                        // As a receipt's, units of a recalled lot come back recalled.
                        let holds = holds_of(conn, tenant, &lots).await?;
                        let asked = to.status.unwrap_or(LotStatus::Available);
                        let mut line = 0;
                        for (kind, key, units) in returns.iter().filter(|(_, _, units)| *units > 0) {
                            let entry = batch.entry(cache, conn, tenant, &key.gtin).await?;
                            // A lot has one expiry; a new balance takes its status as a receipt's.
                            let expiry = entry
                                .balances
                                .iter()
                                .find(|cached| cached.key.lot == key.lot)
                                .and_then(|cached| cached.expiry.clone());
                            let pair = (key.gtin.clone(), key.lot.clone());
                            let standing = (recalled.contains_key(&pair), holds.contains_key(&pair));
                            let status = incoming_status(&entry.balances, key, asked, standing);
                            if hold_covers_quarantine(asked, status) {
                                batch.cover_quarantine(tenant, key);
                            }
                            // An empty available balance of a named zone (a returns area whose units
                            // were released and moved on) takes the status asked: the area keeps
                            // taking returns in quarantine. A sellable zone's is left as it is.
                            let empty_other = to.zone.is_some()
                                && entry.balances.iter().find(|cached| cached.key == *key).is_some_and(|cached| {
                                    cached.balance == Balance::default()
                                        && cached.status != status
                                        && matches!(cached.status, LotStatus::Available | LotStatus::Quarantine)
                                });
                            if empty_other {
                                let why = Some("returned units come in so");
                                batch.set_status(cache, conn, tenant, &operation, line, key, status, why).await?;
                                line += 1;
                            }
                            let new_lot = Some((expiry.as_deref(), status));
                            attempt!(
                                batch
                                    .change(cache, conn, tenant, &operation, line, *kind, key, *units, None, new_lot)
                                    .await?
                            );
                            line += 1;
                            let took = batch
                                .entry(cache, conn, tenant, &key.gtin)
                                .await?
                                .balance_mut(key)
                                .map(|cached| cached.status.name().to_owned());
                            statuses.extend(took);
                        }
                        line
                    }
                };
                statuses.sort();
                statuses.dedup();
                if written > 0 {
                    detail = Some(match restock_to {
                        Some(RestockTo { zone, .. }) => format!(
                            "restocked {restocked:?} into {} as {}",
                            zone.as_deref()
                                .map_or_else(|| "the zones picked from".to_owned(), |zone| format!("zone {zone}")),
                            statuses.join(", ")
                        ),
                        None => format!("restocked {restocked:?}"),
                    });
                }
            }
        }
    }
    if to == OrderStatus::Packed {
        if ssccs.len() != record.allocation.shipments.len() {
            refuse!(WriteError::Refused {
                code: "invalid-transition",
                detail: format!(
                    "packing needs one SSCC per shipment: {} shipments, {} SSCCs",
                    record.allocation.shipments.len(),
                    ssccs.len()
                ),
                errors: vec![("/ssccs".into(), "one SSCC per shipment".into())],
            });
        }
        // An SSCC names one pallet for good: not one of this merchant's inbound pallets. One
        // received is named by its receiving event, which the packing's events are checked
        // against (`Premise::Unnamed`); one announced and not received yet is named by no event,
        // only by its ASN. On PostgreSQL under the SSCCs' locks, so an ASN another API node
        // writes at the same moment is seen.
        let texts: Vec<String> = ssccs.iter().map(ToString::to_string).collect();
        let inbound = announced_ssccs(conn, tenant, texts.iter().map(String::as_str)).await?;
        if !inbound.is_empty() {
            let errors = texts
                .iter()
                .enumerate()
                .filter(|(_, sscc)| inbound.contains(sscc.as_str()))
                .map(|(index, sscc)| (format!("/ssccs/{index}"), format!("SSCC {sscc} names a pallet of an ASN")))
                .collect();
            refuse!(WriteError::Refused {
                code: "conflict",
                detail: "an SSCC names one pallet: these name inbound pallets announced in ASNs".to_owned(),
                errors,
            });
        }
        for (shipment, sscc) in record.allocation.shipments.iter_mut().zip(ssccs) {
            shipment.sscc = Some(sscc.to_string());
        }
        allocation_change = Some(reservation_id.clone());
    }
    let allocation =
        allocation_change.as_deref().map(|reservation| (&record.allocation, record.promised_by_unix_ms, reservation));
    if to == OrderStatus::Picking {
        // Confirmed: the hold's timeout no longer applies.
        execute(
            conn,
            "UPDATE reservations SET expires_unix_ms = NULL WHERE tenant_id = $1 AND reservation_id = $2 AND state = 'pending'",
            &[Arg::Text(tenant), Arg::Text(&reservation_id)],
        )
        .await?;
        record.hold_expires_unix_ms = None;
    }
    // Never ahead of the write (a device's clock may run a few minutes ahead).
    let stepped = record.stepped_unix_ms.max(Some(happened.unix_ms().min(now_unix_ms)));
    if !set_order_status(conn, tenant, order_id, record.status, to, detail.as_deref(), allocation, stepped, now_unix_ms)
        .await?
    {
        return Err(crate::writer::raced(format!("order {order_id} was moved on meanwhile")));
    }
    if record.status == OrderStatus::Accepted {
        // Allocated again (its new reservation holds what was left of the hold) or cancelled:
        // no longer a flagged hold.
        execute(
            conn,
            "DELETE FROM flagged_holds WHERE tenant_id = $1 AND order_id = $2",
            &[Arg::Text(tenant), Arg::Text(order_id)],
        )
        .await?;
    }
    record.status = to;
    record.updated_unix_ms = now_unix_ms;
    queue_for_dispatch(conn, tenant, &record, now_unix_ms).await?;
    if to == OrderStatus::Packed {
        // The order's pallets for good: an ASN may not announce them (`packed_ssccs`). (At most
        // one SSCC a shipment, three shipments.)
        for sscc in ssccs {
            execute(
                conn,
                "INSERT INTO order_ssccs (tenant_id, sscc, order_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[Arg::Text(tenant), Arg::Text(sscc.as_str()), Arg::Text(order_id)],
            )
            .await?;
        }
    }
    if matches!(to, OrderStatus::Delivered | OrderStatus::AtPickupPoint) {
        let at = handed_over_unix_ms.unwrap_or(now_unix_ms);
        // The first arrival stays: a pickup point's order is collected (`delivered`) after it.
        let arrived = *record.arrived_unix_ms.get_or_insert(at);
        let delivered = (to == OrderStatus::Delivered).then_some(at).or(record.delivered_unix_ms);
        execute(
            conn,
            "UPDATE orders SET delivered_unix_ms = $3, arrived_unix_ms = $4 WHERE tenant_id = $1 AND order_id = $2",
            &[Arg::Text(tenant), Arg::Text(order_id), Arg::OptionalInteger(delivered), Arg::Integer(arrived)],
        )
        .await?;
        record.delivered_unix_ms = delivered;
    }
    Ok(Ok(record))
}

/// A recall as written (see [`FulfilmentMutation::Recall`]).
struct Recalled<'a> {
    recall_id: &'a str,
    gtin: &'a Gtin,
    lots: &'a [String],
    reason: &'a str,
    public_notice: Option<&'a str>,
    put_back: &'a [(String, String, OrderStatus)],
    held: &'a [(StockKey, i64)],
    hold: &'a [(Gtin, String)],
}

async fn recall(
    conn: &mut Conn,
    tenant: &str,
    recalled: &Recalled<'_>,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<RecallOutcome> {
    let Recalled { recall_id, gtin, lots, reason, public_notice, put_back, held, hold } = *recalled;
    if !crate::writer::exists(
        conn,
        "SELECT 1 FROM products WHERE tenant_id = $1 AND gtin = $2",
        &[Arg::Text(tenant), Arg::Text(gtin.as_str())],
    )
    .await?
    {
        refuse!(WriteError::UnknownReference { field: "/gtin", value: gtin.to_string() });
    }
    // A receipt or transfer creating a balance of these lots on another API node has committed,
    // or waits for this recall (see `lock_lots`); the balances are read again below.
    // With the lots made from them that it puts on hold: all locked at once, in one order.
    let mut locked: Vec<(&str, &str)> = lots.iter().map(|lot| (gtin.as_str(), lot.as_str())).collect();
    locked.sort_unstable();
    locked.dedup();
    let recalled_lots = locked.clone();
    locked.extend(hold.iter().map(|(gtin, lot)| (gtin.as_str(), lot.as_str())));
    locked.sort_unstable();
    locked.dedup();
    lock_lots(conn, tenant, &locked).await?;
    let locked = recalled_lots;
    // A lot is recalled once: a recall sent again (without its Idempotency-Key) is refused and
    // names the recall that stands, instead of a second one claiming to have released orders.
    let recalls = recalls_of(conn, tenant, &locked).await?;
    let mut recalled_already = Vec::new();
    for (index, lot) in lots.iter().enumerate() {
        if let Some(earlier) = recalls.get(&(gtin.to_string(), lot.to_string())) {
            recalled_already.push((format!("/lots/{index}"), format!("lot {lot:?} is recalled already ({earlier})")));
        }
    }
    if !recalled_already.is_empty() {
        refuse!(WriteError::Refused {
            code: "conflict",
            detail: format!(
                "{} of the lots are recalled already: recall only lots not yet recalled",
                recalled_already.len()
            ),
            errors: recalled_already,
        });
    }
    // Every balance of the lots is recalled, including those other nodes received since the
    // cache read (in the cache and the batch's rows only: a refusal below rolls them back).
    batch.refresh(cache, conn, tenant, gtin.as_str()).await?;
    let entry = batch.entry(cache, conn, tenant, gtin.as_str()).await?;
    let keys: Vec<StockKey> = entry
        .balances
        .iter()
        .filter(|cached| lots.contains(&cached.key.lot))
        .map(|cached| cached.key.clone())
        .collect();
    // The write's events record these units as held back where they lie: they must be these.
    let mut on_hand: Vec<(&StockKey, i64)> = entry
        .balances
        .iter()
        .filter(|cached| lots.contains(&cached.key.lot) && cached.balance.on_hand > 0)
        .map(|cached| (&cached.key, cached.balance.on_hand))
        .collect();
    on_hand.sort_unstable();
    if !on_hand.into_iter().eq(held.iter().map(|(key, units)| (key, *units))) {
        refuse!(refused("conflict", RECALL_CHANGED));
    }
    for (line, key) in keys.iter().enumerate() {
        batch.set_status(cache, conn, tenant, recall_id, line as i64, key, LotStatus::Recalled, Some(reason)).await?;
        // The reservations voided below are those found after these rows were read: one another
        // node adds before this commits changes the row, and the recall is applied again.
        batch.hold_exact(tenant, key);
    }
    // The lots made from them, available or in quarantine, go on hold before the orders taken
    // back are allocated again: none of those takes them. Orders holding units of them keep
    // them, and do not ship until the lot is released (to available; a quarantine the hold
    // covers comes back, `quarantine_under_hold`) or recalled. (Balances read again first: other
    // nodes' receipts.)
    let why = format!("made from lots of {gtin} recalled by {recall_id}: {reason}");
    let mut line = keys.len();
    let mut held_derived = Vec::with_capacity(hold.len());
    let mut hold_gtins: Vec<&str> = hold.iter().map(|(made_gtin, _)| made_gtin.as_str()).collect();
    hold_gtins.sort_unstable();
    hold_gtins.dedup();
    batch.refresh_all(cache, conn, tenant, &hold_gtins).await?;
    for (made_gtin, made_lot) in hold {
        let entry = batch.entry(cache, conn, tenant, made_gtin.as_str()).await?;
        let to_hold: Vec<(StockKey, LotStatus)> = entry
            .balances
            .iter()
            .filter(|cached| {
                cached.key.lot == *made_lot && matches!(cached.status, LotStatus::Available | LotStatus::Quarantine)
            })
            .map(|cached| (cached.key.clone(), cached.status))
            .collect();
        for (key, before) in &to_hold {
            batch.set_status(cache, conn, tenant, recall_id, line as i64, key, LotStatus::Hold, Some(&why)).await?;
            line += 1;
            // Its check still waits: lifting the hold puts it back in quarantine.
            if *before == LotStatus::Quarantine {
                batch.cover_quarantine(tenant, key);
            }
        }
        let entry = batch.entry(cache, conn, tenant, made_gtin.as_str()).await?;
        let (mut on_hand, mut on_hold) = (0, 0);
        for cached in entry.balances.iter().filter(|cached| cached.key.lot == *made_lot) {
            on_hand += cached.balance.on_hand;
            if cached.status == LotStatus::Hold {
                on_hold += cached.balance.on_hand;
            }
        }
        held_derived.push(HeldLot { gtin: made_gtin.to_string(), lot: made_lot.clone(), on_hand, on_hold });
    }
    // Open orders holding the lots: their reservations are voided below, then they are allocated
    // again from other lots, or flagged. The picked units of those picking or packed are put back
    // by the write's events, built from a read before it: they must be these orders.
    let affected = open_orders_with_lots(conn, tenant, gtin.as_str(), lots, now_unix_ms).await?;
    let picked = affected.iter().filter(|order| matches!(order.status, OrderStatus::Picking | OrderStatus::Packed));
    if !picked
        .map(|order| (&order.order_id, &order.reservation_id, order.status))
        .eq(put_back.iter().map(|(order, held, status)| (order, held, *status)))
    {
        refuse!(refused("conflict", RECALL_CHANGED));
    }
    let affected: Vec<(String, OrderStatus)> =
        affected.into_iter().map(|order| (order.order_id, order.status)).collect();
    execute(
        conn,
        "INSERT INTO recalls (tenant_id, recall_id, gtin, reason, created_unix_ms, lots, public_notice) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            Arg::Text(tenant),
            Arg::Text(recall_id),
            Arg::Text(gtin.as_str()),
            Arg::Text(reason),
            Arg::Integer(now_unix_ms),
            Arg::Text(&lots.join(" ")),
            Arg::OptionalText(public_notice),
        ],
    )
    .await?;
    for lot in lots {
        execute(
            conn,
            "INSERT INTO recalled_lots (tenant_id, gtin, lot, recall_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[Arg::Text(tenant), Arg::Text(gtin.as_str()), Arg::Text(lot), Arg::Text(recall_id)],
        )
        .await?;
    }
    // The lots it holds keep the hold, so a pallet of one received later (one still on an ASN,
    // say) comes in on hold too. (After the last refusal: a refused write changes no rows.)
    for (made_gtin, made_lot) in hold {
        execute(
            conn,
            "INSERT INTO held_lots (tenant_id, gtin, lot, recall_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[Arg::Text(tenant), Arg::Text(made_gtin.as_str()), Arg::Text(made_lot), Arg::Text(recall_id)],
        )
        .await?;
    }
    let cause = Cause { id: recall_id, name: format!("recall {recall_id}"), other: "lots" };
    void_reservations(conn, tenant, &affected, &cause, now_unix_ms, batch, cache).await?;
    let (reallocated, flagged) = allocate_again(conn, tenant, &affected, &cause, now_unix_ms, batch, cache).await?;
    // What it did to each order it took back, for reading the recall again (in bulk: a recall of
    // a hot lot takes back thousands).
    let outcomes: Vec<Vec<Value>> = [(&reallocated, "reallocated"), (&flagged, "flagged")]
        .into_iter()
        .flat_map(|(orders, outcome)| {
            orders.iter().map(move |order_id| {
                vec![
                    Value::Text(tenant.to_owned()),
                    Value::Text(recall_id.to_owned()),
                    Value::Text(order_id.clone()),
                    Value::Text(outcome.to_owned()),
                ]
            })
        })
        .collect();
    insert_rows(conn, "recall_orders", &["tenant_id", "recall_id", "order_id", "outcome"], &outcomes).await?;
    let taken_back = (reallocated, flagged);
    let mut reach =
        recall_reach(conn, tenant, recall_id, now_unix_ms, gtin.as_str(), lots, taken_back, now_unix_ms).await?;
    reach.held_derived = held_derived;
    // Parcels on their way with units of the lots need a person: they are not handed over (see
    // `recalled_in_parcel`) but taken back. Units that reached the consumer (a delivered order, a
    // parcel a courier handed over at the door) need one too: the consumer is told. Each is a
    // flag, its reason in its order.
    for (order, units) in &mut reach.orders {
        let in_transit =
            matches!(order.status, OrderStatus::Shipped | OrderStatus::OutForDelivery | OrderStatus::AtPickupPoint);
        let delivered = order.status == OrderStatus::Delivered;
        if !(in_transit || delivered) || units.shipped <= units.returned {
            continue;
        }
        let handed = if in_transit {
            crate::dispatch::shipments_handed_over(conn, tenant, &order.order_id, &order.reservation_id).await?
        } else {
            (0..order.allocation.shipments.len()).collect()
        };
        // The parcels still to hand over that carry units of the lots, and the units of the lots
        // the consumer has.
        let (mut carrying, mut reached): (Vec<(usize, i64)>, i64) = (Vec::new(), 0);
        for (index, shipment) in order.allocation.shipments.iter().enumerate() {
            let recalled_units: i64 = shipment
                .picks
                .iter()
                .filter(|pick| {
                    lots.contains(&pick.lot)
                        && order.lines.get(pick.line).is_some_and(|line| line.gtin == gtin.as_str())
                })
                .map(|pick| pick.shipped.unwrap_or(pick.quantity))
                .sum();
            match recalled_units {
                0 => {}
                _ if handed.contains(&index) => reached += recalled_units,
                _ => carrying.push((index, recalled_units)),
            }
        }
        if carrying.is_empty() && reached == 0 {
            continue;
        }
        // On PostgreSQL a recall of other lots on another API node may flag the order at the
        // same moment: its row is locked and its allocation read again, so both flags stay.
        if let Some(current) = allocation_locked(conn, tenant, &order.order_id).await? {
            order.allocation = current;
        }
        let recalled_units: i64 = carrying.iter().map(|(_, recalled_units)| recalled_units).sum();
        match carrying.len() {
            0 => {}
            1 => order.allocation.flags.push(format!(
                "recall {recall_id}: the parcel carries {recalled_units} units of the recalled lots; it is not handed \
                 over, take it back (returned)"
            )),
            parcels => order.allocation.flags.push(format!(
                "recall {recall_id}: {parcels} parcels carry {recalled_units} units of the recalled lots; they are not \
                 handed over, take them back (returned)"
            )),
        }
        if reached > 0 {
            order.allocation.flags.push(format!(
                "recall {recall_id}: {reached} units of the recalled lots reached the consumer; tell them"
            ));
        }
        // It goes back, not out: no wave plans it (a route that has it voids its stop at the start).
        // A split order's other parcel stays queued.
        for (shipment, _) in &carrying {
            execute(
                conn,
                "DELETE FROM dispatch_queue WHERE tenant_id = $1 AND order_id = $2 AND shipment = $3",
                &[Arg::Text(tenant), Arg::Text(&order.order_id), Arg::Integer(*shipment as i64)],
            )
            .await?;
        }
        execute(
            conn,
            "UPDATE orders SET allocation = $1, updated_unix_ms = $2 WHERE tenant_id = $3 AND order_id = $4",
            &[
                Arg::Text(&serde_json::to_string(&order.allocation).map_err(corrupt)?),
                Arg::Integer(now_unix_ms),
                Arg::Text(tenant),
                Arg::Text(&order.order_id),
            ],
        )
        .await?;
    }
    Ok(Ok(reach))
}

/// An order's allocation read again, its row locked until the transaction ends on PostgreSQL
/// (SQLite's writer holds the database's write lock already).
async fn allocation_locked(
    conn: &mut Conn,
    tenant: &str,
    order_id: &str,
) -> Result<Option<StoredAllocation>, sqlx::Error> {
    let lock = match conn {
        Conn::Sqlite(_) => "",
        Conn::Postgres(_) => " FOR UPDATE",
    };
    let sql = format!("SELECT allocation FROM orders WHERE tenant_id = $1 AND order_id = $2{lock}");
    let row: Option<(String,)> = on_conn!(conn, connection => sqlx::query_as(&sql)
        .bind(tenant).bind(order_id).fetch_optional(&mut *connection).await)?;
    row.map(|(allocation,)| serde_json::from_str(&allocation).map_err(corrupt)).transpose()
}

/// A recall's reach as the store holds it now: every order that took units of the lots, the
/// pallets that brought them in, the product's supplier.
#[allow(clippy::too_many_arguments)]
async fn recall_reach(
    conn: &mut Conn,
    tenant: &str,
    recall_id: &str,
    recalled_unix_ms: i64,
    gtin: &str,
    lots: &[String],
    (mut reallocated, mut flagged): (Vec<String>, Vec<String>),
    now_unix_ms: i64,
) -> Result<RecallOutcome, sqlx::Error> {
    // Sorted: the answer looks each of thousands of orders up in them.
    reallocated.sort_unstable();
    flagged.sort_unstable();
    let orders = orders_with_lots(conn, tenant, gtin, lots, now_unix_ms).await?;
    let inbound_pallets = inbound_pallets(conn, tenant, gtin, lots).await?;
    let supplier: Option<(Option<String>,)> = on_conn!(conn, connection => sqlx::query_as(
        "SELECT supplier_party_id FROM products WHERE tenant_id = $1 AND gtin = $2")
        .bind(tenant).bind(gtin).fetch_optional(&mut *connection).await)?;
    Ok(RecallOutcome {
        recall_id: recall_id.to_owned(),
        recalled_unix_ms,
        orders,
        reallocated,
        flagged,
        inbound_pallets,
        supplier_party_id: supplier.and_then(|(party,)| party),
        held_derived: Vec::new(),
    })
}

/// The open orders whose pending reservation holds units of the lots (a recall voids them),
/// sorted by id. The lots' reserve movements name their reservations; a reservation's id starts
/// with its order's.
async fn open_orders_with_lots(
    conn: &mut Conn,
    tenant: &str,
    gtin: &str,
    lots: &[String],
    now_unix_ms: i64,
) -> Result<Vec<OrderRecord>, sqlx::Error> {
    let reservations_of_lot = for_backend(conn, RESERVATIONS_OF_LOT_SQL, RESERVATIONS_OF_LOT_SQLITE);
    let mut reservations: Vec<String> = Vec::new();
    for lot in lots {
        let of_lot: Vec<(String,)> = on_conn!(conn, connection => sqlx::query_as(reservations_of_lot)
            .bind(tenant).bind(gtin).bind(lot.as_str()).fetch_all(&mut *connection).await)?;
        reservations.extend(of_lot.into_iter().map(|(reservation,)| reservation));
    }
    // The orders read together (a hot lot is held by thousands), each open if one of the
    // reservations found is its current one.
    let order_of = |reservation: &str| reservation.split('/').next().unwrap_or(reservation).to_owned();
    let mut order_ids: Vec<String> = reservations.iter().map(|reservation| order_of(reservation)).collect();
    order_ids.sort_unstable();
    order_ids.dedup();
    let keys: Vec<&str> = order_ids.iter().map(String::as_str).collect();
    let mut read = read_orders(conn, tenant, &keys, now_unix_ms).await?;
    let mut orders: BTreeMap<String, OrderRecord> = BTreeMap::new();
    for reservation in reservations {
        let order_id = order_of(&reservation);
        if let Some((record, current)) = read.get(&order_id)
            && *current == reservation
            && record.status.holds_reservation()
            && record.reservation == ReservationState::Pending
            && let Some((record, _)) = read.remove(&order_id)
        {
            orders.insert(order_id, record);
        }
    }
    Ok(orders.into_values().collect())
}

/// Why orders lost their reservations: a recall (`rcl_…`) or a count that found fewer units than
/// were reserved (`cnt_…`). `other` names what they may be allocated from again.
struct Cause<'a> {
    id: &'a str,
    name: String,
    other: &'static str,
}

/// Voids the pending reservations of `orders` (operations `{order}/{cause id}`), so that
/// [`allocate_again`] can allocate them from the stock left.
#[allow(clippy::too_many_arguments)]
async fn void_reservations(
    conn: &mut Conn,
    tenant: &str,
    orders: &[(String, OrderStatus)],
    cause: &Cause<'_>,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Result<(), sqlx::Error> {
    let order_ids: Vec<&str> = orders.iter().map(|(order_id, _)| order_id.as_str()).collect();
    let read = read_orders(conn, tenant, &order_ids, now_unix_ms).await?;
    let mut reservation_ids: Vec<&str> = Vec::with_capacity(orders.len());
    for (order_id, _) in orders {
        let Some((_, reservation_id)) = read.get(order_id) else {
            return Err(corrupt(format!("order {order_id} vanished")));
        };
        reservation_ids.push(reservation_id);
    }
    // Read, released and ended together (a recall of a hot lot voids thousands): one statement
    // for every reservation's lines, one to end them, the releases' rows written with the batch.
    let mut lines = reserve_lines_of(conn, tenant, &reservation_ids).await?;
    for ((order_id, _), reservation_id) in orders.iter().zip(&reservation_ids) {
        let releases: Vec<(MovementKind, StockKey, i64)> = lines
            .remove(*reservation_id)
            .unwrap_or_default()
            .iter()
            .map(|row| (MovementKind::Release, key_of(row), row.quantity))
            .collect();
        let operation = format!("{order_id}/{}", cause.id);
        let what = format!("reservation {reservation_id} cannot be released");
        batch.checked_movements(cache, conn, tenant, &operation, &releases, &what).await?;
    }
    let mut distinct = reservation_ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let ended = crate::writer::execute_for_keys(
        conn,
        &[Arg::Text(ReservationState::Voided.name()), Arg::Integer(now_unix_ms), Arg::Text(tenant)],
        &distinct,
        |condition| {
            format!(
                "UPDATE reservations SET state = $1, updated_unix_ms = $2 WHERE tenant_id = $3 \
                 AND reservation_id {condition} AND state = 'pending'"
            )
        },
    )
    .await?;
    if ended != distinct.len() as u64 {
        // Another API node ended one since this batch read it (as `end_reservation`).
        return Err(crate::writer::raced(format!(
            "{} of {} reservations were ended meanwhile",
            distinct.len() as u64 - ended,
            distinct.len()
        )));
    }
    Ok(())
}

/// The reserve lines of each reservation, in line order, read together.
async fn reserve_lines_of(
    conn: &mut Conn,
    tenant: &str,
    reservation_ids: &[&str],
) -> Result<HashMap<String, Vec<ReserveRow>>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct OperationRow {
        operation_id: String,
        #[sqlx(flatten)]
        row: ReserveRow,
    }
    let mut keys = reservation_ids.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let rows: Vec<OperationRow> = crate::writer::fetch_for_keys(conn, tenant, &keys, |tenant, condition| {
        format!(
            "SELECT operation_id, line, gtin, location_gln, zone, lot, quantity, kind FROM stock_movements \
             WHERE tenant_id = {tenant} AND operation_id {condition} AND kind = '{}'",
            MovementKind::Reserve.name()
        )
    })
    .await?;
    let mut lines: HashMap<String, Vec<ReserveRow>> = HashMap::new();
    for OperationRow { operation_id, row } in rows {
        lines.entry(operation_id).or_default().push(row);
    }
    for rows in lines.values_mut() {
        rows.sort_unstable_by_key(|row| row.line);
    }
    Ok(lines)
}

/// Allocates each of `orders`, whose reservations [`void_reservations`] voided, again from the
/// stock left, or flags it (back to `accepted`, with the cause in its flags). Answers the orders
/// allocated again and those flagged. Each order moves only from the status it had when it was
/// chosen: one another node moved on meanwhile (picking, packing) fails the batch, which is then
/// applied again, one write at a time.
#[allow(clippy::too_many_arguments)]
async fn allocate_again(
    conn: &mut Conn,
    tenant: &str,
    orders: &[(String, OrderStatus)],
    cause: &Cause<'_>,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    // Read together, after their reservations were voided: allocating one order again changes
    // no other order's row, and each moves only from the status it was chosen in (below).
    let order_ids: Vec<&str> = orders.iter().map(|(order_id, _)| order_id.as_str()).collect();
    let read = read_orders(conn, tenant, &order_ids, now_unix_ms).await?;
    // The first of them to fall short reads their products' stock again together (as each would
    // read its own, `allocate_and_reserve`): one statement, not three for each order flagged, and
    // none when each is allocated again from the stock at hand.
    let mut gtins: Vec<String> =
        read.values().flat_map(|(record, _)| record.lines.iter().map(|line| line.gtin.clone())).collect();
    gtins.sort_unstable();
    gtins.dedup();
    batch.read_again_with_next_shortfall = Some((tenant.to_owned(), gtins));
    let allocated_again = allocate_each_again(conn, tenant, orders, &read, cause, now_unix_ms, batch, cache).await;
    batch.read_again_with_next_shortfall = None;
    allocated_again
}

/// [`allocate_again`]'s orders, each in turn.
#[allow(clippy::too_many_arguments)]
async fn allocate_each_again(
    conn: &mut Conn,
    tenant: &str,
    orders: &[(String, OrderStatus)],
    read: &HashMap<String, (OrderRecord, String)>,
    cause: &Cause<'_>,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let (mut reallocated, mut flagged) = (Vec::new(), Vec::new());
    let mut changes = Vec::with_capacity(orders.len());
    for (order_id, chosen_status) in orders {
        let Some((mut record, reservation_id)) = read.get(order_id).cloned() else {
            continue;
        };
        let lines = record.order_lines()?;
        let reservation = format!("{order_id}/{}-allocated", cause.id);
        let again = allocate_and_reserve(
            conn,
            tenant,
            &reservation,
            &lines,
            &record.destination,
            record.service,
            record.latest_delivery_unix_ms,
            record.hold_left_ms(now_unix_ms),
            // The service sold keeps its window: an order that can no longer make it is flagged.
            record.window_from_unix_ms,
            now_unix_ms,
            batch,
            cache,
        )
        .await?;
        match again {
            Ok((allocation, region, promised_by)) => {
                changes.push(StatusChange {
                    order_id: order_id.clone(),
                    from: *chosen_status,
                    to: OrderStatus::Allocated,
                    detail: format!("allocated again from other {} after {}", cause.other, cause.name),
                    allocation,
                    promised_by_unix_ms: promised_by,
                    reservation_id: reservation,
                    // Counted in its new delivering site's region.
                    region: Some(region),
                });
                reallocated.push(order_id.clone());
            }
            Err(refusal) => {
                record.allocation.flags.push(format!("{}: no other stock ({refusal})", cause.name));
                // An unconfirmed order keeps its deadline: flagged past it, it is cancelled as
                // its lapsed hold would have been (see `expire_due`).
                if let Some(expires_unix_ms) = record.hold_expires_unix_ms {
                    execute(
                        conn,
                        "INSERT INTO flagged_holds (tenant_id, order_id, expires_unix_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (tenant_id, order_id) DO UPDATE SET expires_unix_ms = excluded.expires_unix_ms",
                        &[Arg::Text(tenant), Arg::Text(order_id), Arg::Integer(expires_unix_ms)],
                    )
                    .await?;
                }
                changes.push(StatusChange {
                    order_id: order_id.clone(),
                    from: *chosen_status,
                    to: OrderStatus::Accepted,
                    detail: format!("lost its stock to {}; no other {} qualifies", cause.name, cause.other),
                    allocation: record.allocation,
                    promised_by_unix_ms: record.promised_by_unix_ms,
                    reservation_id,
                    region: None,
                });
                flagged.push(order_id.clone());
            }
        }
    }
    set_orders_status(conn, tenant, &changes, now_unix_ms).await?;
    Ok((reallocated, flagged))
}

/// An order's move to a new status and allocation, written with others ([`set_orders_status`]).
struct StatusChange {
    order_id: String,
    /// The status it was chosen in: it moves only from that one.
    from: OrderStatus,
    to: OrderStatus,
    detail: String,
    allocation: StoredAllocation,
    promised_by_unix_ms: i64,
    reservation_id: String,
    /// Its new region (its new delivering site's), if it changes.
    region: Option<String>,
}

/// Writes the moves of orders a recall or a count took back, as [`set_order_status`] writes one:
/// on PostgreSQL together (their rows, their history rows, out of the dispatch queue: three
/// statements for up to [`crate::writer::UNNEST_ROWS_MAX`] orders, not four an order); on SQLite,
/// whose statements cost no round trip, one at a time. If an order moved on meanwhile (another
/// API node), the batch fails and is applied again.
async fn set_orders_status(
    conn: &mut Conn,
    tenant: &str,
    changes: &[StatusChange],
    now_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    let raced = |orders: String| crate::writer::raced(format!("{orders} moved on meanwhile"));
    let Conn::Postgres(connection) = conn else {
        for change in changes {
            if let Some(region) = &change.region {
                execute(
                    conn,
                    "UPDATE orders SET region = $3 WHERE tenant_id = $1 AND order_id = $2",
                    &[Arg::Text(tenant), Arg::Text(&change.order_id), Arg::Text(region)],
                )
                .await?;
            }
            let allocation = Some((&change.allocation, change.promised_by_unix_ms, change.reservation_id.as_str()));
            let detail = Some(change.detail.as_str());
            if !set_order_status(
                conn,
                tenant,
                &change.order_id,
                change.from,
                change.to,
                detail,
                allocation,
                None,
                now_unix_ms,
            )
            .await?
            {
                return Err(raced(format!("order {} was", change.order_id)));
            }
        }
        return Ok(());
    };
    for chunk in changes.chunks(crate::writer::UNNEST_ROWS_MAX) {
        // Statuses only to those that keep no parcel on its way (as `set_order_status` decides
        // the dispatch queue).
        debug_assert!(chunk.iter().all(|change| matches!(change.to, OrderStatus::Allocated | OrderStatus::Accepted)));
        let order_ids: Vec<&str> = chunk.iter().map(|change| change.order_id.as_str()).collect();
        let from: Vec<&str> = chunk.iter().map(|change| change.from.name()).collect();
        let to: Vec<&str> = chunk.iter().map(|change| change.to.name()).collect();
        let allocations = chunk
            .iter()
            .map(|change| serde_json::to_string(&change.allocation).map_err(corrupt))
            .collect::<Result<Vec<String>, _>>()?;
        let promised: Vec<i64> = chunk.iter().map(|change| change.promised_by_unix_ms).collect();
        let reservations: Vec<&str> = chunk.iter().map(|change| change.reservation_id.as_str()).collect();
        let regions: Vec<Option<&str>> = chunk.iter().map(|change| change.region.as_deref()).collect();
        let details: Vec<&str> = chunk.iter().map(|change| change.detail.as_str()).collect();
        // The first promise is kept once an allocation moves it (SET reads the old row).
        let moved = sqlx::query(
            "UPDATE orders o SET status = v.status, updated_unix_ms = $2, allocation = v.allocation, \
             promised_by_unix_ms = v.promised_by, first_promised_unix_ms = CASE WHEN o.promised_by_unix_ms <> v.promised_by \
             THEN COALESCE(o.first_promised_unix_ms, o.promised_by_unix_ms) ELSE o.first_promised_unix_ms END, \
             reservation_id = v.reservation_id, region = COALESCE(v.region, o.region) \
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[], $9::text[]) \
             AS v(order_id, from_status, status, allocation, promised_by, reservation_id, region) \
             WHERE o.tenant_id = $1 AND o.order_id = v.order_id AND o.status = v.from_status",
        )
        .bind(tenant)
        .bind(now_unix_ms)
        .bind(&order_ids)
        .bind(&from)
        .bind(&to)
        .bind(&allocations)
        .bind(&promised)
        .bind(&reservations)
        .bind(&regions)
        .execute(&mut **connection)
        .await?
        .rows_affected();
        if moved != chunk.len() as u64 {
            return Err(raced(format!("{} of {} orders were", chunk.len() as u64 - moved, chunk.len())));
        }
        sqlx::query(
            "INSERT INTO order_events (tenant_id, order_id, seq, status, detail, at_unix_ms) \
             SELECT $1, v.order_id, COALESCE((SELECT MAX(e.seq) FROM order_events e \
             WHERE e.tenant_id = $1 AND e.order_id = v.order_id), 0) + 1, v.status, v.detail, $2 \
             FROM UNNEST($3::text[], $4::text[], $5::text[]) AS v(order_id, status, detail)",
        )
        .bind(tenant)
        .bind(now_unix_ms)
        .bind(&order_ids)
        .bind(&to)
        .bind(&details)
        .execute(&mut **connection)
        .await?;
        // No longer waiting for the last mile: out of the dispatch queue.
        sqlx::query("DELETE FROM dispatch_queue WHERE tenant_id = $1 AND order_id = ANY($2)")
            .bind(tenant)
            .bind(&order_ids)
            .execute(&mut **connection)
            .await?;
    }
    Ok(())
}

/// The orders that give up their reservations so that a count of `counted` units of a balance
/// leaves no more reserved than on hand: none if `counted` covers what is reserved; else the
/// newest orders still `allocated` (not being picked) that hold units of it, until the rest fits.
/// Refused (409 `insufficient-stock`) if the units reserved by orders being picked or packed
/// are more than were counted: those are off the shelf, counted or not.
#[allow(clippy::too_many_arguments)]
async fn release_for_count(
    conn: &mut Conn,
    tenant: &str,
    key: &StockKey,
    counted: i64,
    now_unix_ms: i64,
    batch: &mut StockBatch,
    cache: &mut WriterCache,
) -> Outcome<Vec<(String, OrderStatus)>> {
    batch.refresh(cache, conn, tenant, &key.gtin).await?;
    let entry = batch.entry(cache, conn, tenant, &key.gtin).await?;
    let Some(cached) = entry.balances.iter().find(|cached| cached.key == *key) else {
        refuse!(no_such_stock(entry, &key.gtin, &key.lot, Some((&key.location, &key.zone)), ""));
    };
    let reserved = cached.balance.reserved;
    if counted >= reserved {
        return Ok(Ok(Vec::new()));
    }
    let reservations_of_balance = for_backend(conn, RESERVATIONS_OF_BALANCE_SQL, RESERVATIONS_OF_BALANCE_SQLITE);
    let holders: Vec<(String, i64)> = on_conn!(conn, connection => sqlx::query_as(reservations_of_balance)
        .bind(tenant)
        .bind(key.gtin.as_str())
        .bind(key.lot.as_str())
        .bind(key.location.as_str())
        .bind(key.zone.as_str())
        .fetch_all(&mut *connection)
        .await)?;
    // The orders read together (a hot balance is held by thousands); a reservation's id starts
    // with its order's.
    let order_of = |reservation: &str| reservation.split('/').next().unwrap_or(reservation).to_owned();
    let mut order_ids: Vec<String> = holders.iter().map(|(reservation, _)| order_of(reservation)).collect();
    order_ids.sort_unstable();
    order_ids.dedup();
    let keys: Vec<&str> = order_ids.iter().map(String::as_str).collect();
    let read = read_orders(conn, tenant, &keys, now_unix_ms).await?;
    let mut open: Vec<(i64, String, i64)> = Vec::new();
    for (reservation, units) in holders {
        let order_id = order_of(&reservation);
        if let Some((record, current)) = read.get(&order_id)
            && *current == reservation
            && record.status == OrderStatus::Allocated
            && record.reservation == ReservationState::Pending
        {
            open.push((record.placed_unix_ms, order_id, units));
        }
    }
    // Newest first (by the time placed, then the id).
    open.sort_unstable_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    let mut excess = reserved - counted;
    let mut released = Vec::new();
    for (_, order_id, units) in open {
        if excess <= 0 {
            break;
        }
        excess -= units;
        released.push((order_id, OrderStatus::Allocated));
    }
    if excess > 0 {
        refuse!(refused(
            "insufficient-stock",
            format!(
                "{counted} counted, but orders being picked or packed hold {} of the {reserved} units reserved here",
                counted + excess
            )
        ));
    }
    Ok(Ok(released))
}

/// How often, at most, the writer extends the reserves' lot index on SQLite (migration 0018,
/// [`build_reserves_index`]), unless [`RESERVES_UNINDEXED_MAX`] come first. Until then the newest
/// reserves are found by time: a read by lot walks their entries in a time index (of every lot).
pub const RESERVES_INDEX_INTERVAL: Duration = Duration::from_secs(4);

/// The writer extends the reserves' lot index once it has written this many reserves since the
/// last time, even within [`RESERVES_INDEX_INTERVAL`]: what a read by lot walks stays bounded at
/// any rate of orders (at about 3,500 orders/s the interval comes first).
pub const RESERVES_UNINDEXED_MAX: usize = 65_536;

/// Whether a batch extends the reserves' lot index ([`build_reserves_index`]): on SQLite, at most
/// once every [`RESERVES_INDEX_INTERVAL`], or when [`RESERVES_UNINDEXED_MAX`] reserves wait (the
/// batch's `reserves_written` among them); never on PostgreSQL, whose lot index holds every
/// movement. The writer tells the cache once the batch commits ([`WriterCache::reserves_committed`]).
pub(crate) fn reserves_index_due(conn: &Conn, cache: &WriterCache, reserves_written: usize) -> bool {
    matches!(conn, Conn::Sqlite(_))
        && (cache.reserves_indexed_at.is_none_or(|at| at.elapsed() >= RESERVES_INDEX_INTERVAL)
            || cache.reserves_unindexed.saturating_add(reserves_written) >= RESERVES_UNINDEXED_MAX)
}

/// On SQLite, moves the reserves written since the last time into `reserves_by_lot`, in one
/// sorted insert inside the batch's transaction (each lot's page is written once, not once a
/// batch), and moves `reserves_indexed` on to this batch's time. So `reserves_by_lot` always holds
/// exactly the reserve movements at or before that time: batch times only increase on SQLite
/// (`writer_clock`), so every later reserve lands after it, in the tail. When
/// [`reserves_index_due`].
pub(crate) async fn build_reserves_index(conn: &mut Conn, now_unix_ms: i64) -> Result<(), sqlx::Error> {
    let Conn::Sqlite(connection) = conn else { return Ok(()) };
    sqlx::query(BUILD_RESERVES_INDEX_SQL).bind(now_unix_ms).execute(&mut **connection).await?;
    sqlx::query("UPDATE reserves_indexed SET through_unix_ms = $1 WHERE through_unix_ms < $1")
        .bind(now_unix_ms)
        .execute(&mut **connection)
        .await?;
    Ok(())
}

/// The reserves after `reserves_indexed` and at or before `$1`, into `reserves_by_lot` in its order.
pub(crate) const BUILD_RESERVES_INDEX_SQL: &str = "INSERT INTO reserves_by_lot \
     (tenant_id, gtin, lot, tx, at_unix_ms, operation_id, line) \
     SELECT tenant_id, gtin, lot, tx, at_unix_ms, operation_id, line FROM stock_movements INDEXED BY stock_movements_reserved_since \
     WHERE kind = 'reserve' AND at_unix_ms > (SELECT through_unix_ms FROM reserves_indexed) AND at_unix_ms <= $1 \
     ORDER BY tenant_id, gtin, lot, tx, at_unix_ms, operation_id, line";

/// On SQLite, the reserves `stock_balances` lacks ([`BalancesBehind`]), summed by balance (every
/// tenant's: the tail is bounded by [`BALANCES_BEHIND_RESERVES_MAX`]), with the time of the last;
/// `$condition` adds to the `WHERE` before the grouping.
macro_rules! sqlite_reserves_tail {
    (head) => {
        "SELECT m.tenant_id, m.gtin, m.location_gln, m.zone, m.lot, SUM(m.quantity) AS units, \
         MAX(m.at_unix_ms) AS at_unix_ms FROM stock_movements i INDEXED BY stock_movements_reserved_since \
         JOIN stock_movements m ON m.tenant_id = i.tenant_id AND m.operation_id = i.operation_id AND m.line = i.line \
         WHERE i.kind = 'reserve' AND i.at_unix_ms > (SELECT balances_through_unix_ms FROM writer_clock)"
    };
    (group) => {
        " GROUP BY m.tenant_id, m.gtin, m.location_gln, m.zone, m.lot"
    };
    ($condition:literal) => {
        concat!(sqlite_reserves_tail!(head), $condition, sqlite_reserves_tail!(group))
    };
}

/// On SQLite, the balances of one GTIN as they are (`$1` tenant, `$2` GTIN; the columns of
/// [`BALANCE_ROW_COLUMNS`]): the table's, with the reserves it lacks added. The tail is filtered
/// by tenant and GTIN on the index (which holds both), so only theirs are read from the
/// movements. One statement, so the table and the tail are read in one snapshot.
pub(crate) const SQLITE_BALANCES_OF_GTIN_WITH_TAIL: &str = concat!(
    "SELECT b.gtin, b.location_gln, b.zone, b.lot, b.expiry_date, b.status, b.on_hand, \
     b.reserved + COALESCE(t.units, 0) AS reserved FROM stock_balances b LEFT JOIN (",
    sqlite_reserves_tail!(" AND i.tenant_id = $1 AND i.gtin = $2"),
    ") t ON t.tenant_id = b.tenant_id AND t.gtin = b.gtin AND t.location_gln = b.location_gln \
     AND t.zone = b.zone AND t.lot = b.lot WHERE b.tenant_id = $1 AND b.gtin = $2"
);

/// On SQLite, the tail written into `stock_balances` from the reserve movements
/// ([`BalancesBehind`]), when the writer does not know what it left behind: at its start (after a
/// crash), after a rolled-back batch, and after another process wrote the file. Run before the
/// batch takes its time; [`catch_up_balances`] then moves `writer_clock.balances_through_unix_ms`
/// past the tail.
pub(crate) const SQLITE_CATCH_UP_BALANCES_SQL: &str = concat!(
    "UPDATE stock_balances AS b SET reserved = b.reserved + t.units, \
     updated_unix_ms = MAX(b.updated_unix_ms, t.at_unix_ms) FROM (",
    sqlite_reserves_tail!(""),
    ") AS t WHERE b.tenant_id = t.tenant_id AND b.gtin = t.gtin AND b.location_gln = t.location_gln \
     AND b.zone = t.zone AND b.lot = t.lot"
);

/// Runs [`SQLITE_CATCH_UP_BALANCES_SQL`] and moves the mark past every movement committed; on
/// PostgreSQL nothing lags.
pub(crate) async fn catch_up_balances(conn: &mut Conn) -> Result<(), sqlx::Error> {
    let Conn::Sqlite(connection) = conn else { return Ok(()) };
    const TAIL_BALANCES: &str = concat!("SELECT COUNT(*) FROM (", sqlite_reserves_tail!(""), ")");
    let (balances,): (i64,) = sqlx::query_as(TAIL_BALANCES).fetch_one(&mut **connection).await?;
    if balances > 0 {
        let written = sqlx::query(SQLITE_CATCH_UP_BALANCES_SQL).execute(&mut **connection).await?.rows_affected();
        if written != balances as u64 {
            // Balances are never deleted while they hold units; a row gone is a bug, not a reason
            // to stop every write: the units it lacked are dropped, and said so.
            tracing::error!(balances, written, "reserves left out of balances found no row to go into");
        }
    }
    // Every movement committed is now in the table (none is later than the last batch): the mark
    // moves there whether or not the batch that follows leaves its own reserves behind.
    sqlx::query("UPDATE writer_clock SET balances_through_unix_ms = MAX(balances_through_unix_ms, last_batch_unix_ms)")
        .execute(&mut **connection)
        .await?;
    Ok(())
}

/// On SQLite, a lot's reserve movements (`$1` tenant, `$2` GTIN, `$3` lot), every column: those
/// in the bulk-built `reserves_by_lot` and the tail after it (migration 0018, [`build_reserves_index`]).
/// On PostgreSQL the lot index holds them.
macro_rules! sqlite_reserves_of_lot {
    () => {
        "SELECT m.* FROM reserves_by_lot i JOIN stock_movements m ON m.tenant_id = i.tenant_id \
         AND m.operation_id = i.operation_id AND m.line = i.line WHERE i.tenant_id = $1 AND i.gtin = $2 AND i.lot = $3 \
         UNION ALL SELECT m.* FROM stock_movements t INDEXED BY stock_movements_reserved_since JOIN stock_movements m \
         ON m.tenant_id = t.tenant_id AND m.operation_id = t.operation_id AND m.line = t.line WHERE t.kind = 'reserve' \
         AND t.at_unix_ms > (SELECT through_unix_ms FROM reserves_indexed) AND t.tenant_id = $1 AND t.gtin = $2 AND t.lot = $3"
    };
}

/// The reservations holding units of one balance (`$1` tenant, `$2` GTIN, `$3` lot, `$4` place,
/// `$5` zone), with the units each reserved there: a count below them releases some.
pub(crate) const RESERVATIONS_OF_BALANCE_SQL: &str = "SELECT m.operation_id, CAST(SUM(m.quantity) AS BIGINT) FROM stock_movements m \
     JOIN reservations r ON r.tenant_id = m.tenant_id AND r.reservation_id = m.operation_id AND r.state = 'pending' \
     WHERE m.tenant_id = $1 AND m.gtin = $2 AND m.lot = $3 AND m.location_gln = $4 AND m.zone = $5 AND m.kind = 'reserve' \
     GROUP BY m.operation_id";

/// [`RESERVATIONS_OF_BALANCE_SQL`] on SQLite.
pub(crate) const RESERVATIONS_OF_BALANCE_SQLITE: &str = concat!(
    "SELECT m.operation_id, CAST(SUM(m.quantity) AS BIGINT) FROM (",
    sqlite_reserves_of_lot!(),
    ") m JOIN reservations r ON r.tenant_id = m.tenant_id AND r.reservation_id = m.operation_id AND r.state = 'pending' \
     WHERE m.location_gln = $4 AND m.zone = $5 GROUP BY m.operation_id"
);

/// The pending reservations holding units of a lot (`$1` tenant, `$2` GTIN, `$3` lot), from its
/// reserve movements: the recall voids them.
pub(crate) const RESERVATIONS_OF_LOT_SQL: &str = "SELECT DISTINCT m.operation_id FROM stock_movements m \
     JOIN reservations r ON r.tenant_id = m.tenant_id AND r.reservation_id = m.operation_id AND r.state = 'pending' \
     WHERE m.tenant_id = $1 AND m.gtin = $2 AND m.lot = $3 AND m.kind = 'reserve'";

/// [`RESERVATIONS_OF_LOT_SQL`] on SQLite.
pub(crate) const RESERVATIONS_OF_LOT_SQLITE: &str = concat!(
    "SELECT DISTINCT m.operation_id FROM (",
    sqlite_reserves_of_lot!(),
    ") m JOIN reservations r ON r.tenant_id = m.tenant_id AND r.reservation_id = m.operation_id AND r.state = 'pending'"
);

/// The units of a lot (`$1` tenant, `$2` GTIN, `$3` lot) each operation reserved, shipped or
/// took back in a return, by operation and kind.
pub(crate) const OPERATIONS_TAKING_LOT_SQL: &str = "SELECT operation_id, kind, CAST(SUM(quantity) AS BIGINT) FROM stock_movements WHERE tenant_id = $1 AND gtin = $2 \
     AND lot = $3 AND kind IN ('reserve', 'ship', 'return') GROUP BY operation_id, kind";

/// [`OPERATIONS_TAKING_LOT_SQL`] on SQLite.
pub(crate) const OPERATIONS_TAKING_LOT_SQLITE: &str = concat!(
    "SELECT operation_id, kind, CAST(SUM(quantity) AS BIGINT) FROM (\
     SELECT * FROM stock_movements INDEXED BY stock_movements_by_lot WHERE tenant_id = $1 AND gtin = $2 AND lot = $3 \
     AND kind <> 'reserve' AND kind IN ('ship', 'return') UNION ALL ",
    sqlite_reserves_of_lot!(),
    ") GROUP BY operation_id, kind"
);

/// The statement for this connection's backend.
fn for_backend(conn: &Conn, postgres: &'static str, sqlite: &'static str) -> &'static str {
    match conn {
        Conn::Sqlite(_) => sqlite,
        Conn::Postgres(_) => postgres,
    }
}

/// Orders that took units of the lots (reserved, shipped or delivered), by order id.
async fn orders_with_lots(
    conn: &mut Conn,
    tenant: &str,
    gtin: &str,
    lots: &[String],
    now_unix_ms: i64,
) -> Result<Vec<(OrderRecord, LotUnits)>, sqlx::Error> {
    // The lots' reserve, ship and return movements name their operations; an order's operations
    // start with its id (`ord_…`, `ord_…/shipped`, …).
    let mut units: BTreeMap<String, LotUnits> = BTreeMap::new();
    let operations_taking_lot = for_backend(conn, OPERATIONS_TAKING_LOT_SQL, OPERATIONS_TAKING_LOT_SQLITE);
    for lot in lots {
        let rows: Vec<(String, String, i64)> = on_conn!(conn, connection => sqlx::query_as(operations_taking_lot)
            .bind(tenant).bind(gtin).bind(lot.as_str()).fetch_all(&mut *connection).await)?;
        for (operation, kind, quantity) in rows {
            let order_id = operation.split('/').next().unwrap_or(&operation).to_owned();
            let of_order = units.entry(order_id).or_default();
            if kind == MovementKind::Ship.name() {
                of_order.shipped += quantity;
            } else if kind == MovementKind::Return.name() {
                of_order.returned += quantity;
            }
        }
    }
    let keys: Vec<&str> = units.keys().map(String::as_str).collect();
    let mut read = read_orders(conn, tenant, &keys, now_unix_ms).await?;
    let mut orders = Vec::with_capacity(units.len());
    for (id, units) in units {
        if let Some((order, _)) = read.remove(&id) {
            orders.push((order, units));
        }
    }
    Ok(orders)
}

/// The pallets of ASNs that brought units of the lots in.
async fn inbound_pallets(
    conn: &mut Conn,
    tenant: &str,
    gtin: &str,
    lots: &[String],
) -> Result<Vec<InboundPallet>, sqlx::Error> {
    let mut found = Vec::new();
    for lot in lots {
        let rows: Vec<InboundPallet> = on_conn!(conn, connection => sqlx::query_as(
            "SELECT p.asn_id, p.sscc, a.location_gln, p.lot, p.received_unix_ms FROM asn_pallets p JOIN asns a ON a.tenant_id = p.tenant_id \
             AND a.asn_id = p.asn_id WHERE p.tenant_id = $1 AND p.gtin = $2 AND p.lot = $3 ORDER BY p.asn_id, p.sscc")
            .bind(tenant).bind(gtin).bind(lot.as_str()).fetch_all(&mut *connection).await)?;
        found.extend(rows);
    }
    Ok(found)
}

// ---------- reading orders ----------

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: String,
    status: String,
    reservation_id: String,
    service: String,
    lines: String,
    destination: String,
    allocation: String,
    region: String,
    promised_by_unix_ms: i64,
    first_promised_unix_ms: Option<i64>,
    latest_delivery_unix_ms: Option<i64>,
    placed_unix_ms: i64,
    window_from_unix_ms: Option<i64>,
    delivered_unix_ms: Option<i64>,
    arrived_unix_ms: Option<i64>,
    updated_unix_ms: i64,
    stepped_unix_ms: Option<i64>,
    reservation_state: Option<String>,
    expires_unix_ms: Option<i64>,
}

const ORDER_SELECT: &str = "SELECT o.order_id, o.status, o.reservation_id, o.service, o.lines, o.destination, \
    o.allocation, o.region, o.promised_by_unix_ms, o.first_promised_unix_ms, o.latest_delivery_unix_ms, o.placed_unix_ms, o.window_from_unix_ms, \
    o.delivered_unix_ms, o.arrived_unix_ms, o.updated_unix_ms, o.stepped_unix_ms, r.state AS reservation_state, r.expires_unix_ms FROM orders o LEFT JOIN reservations r \
    ON r.tenant_id = o.tenant_id AND r.reservation_id = o.reservation_id";

impl OrderRow {
    fn into_record(self, now_unix_ms: i64) -> Result<(OrderRecord, String), sqlx::Error> {
        let state = self
            .reservation_state
            .as_deref()
            .map(|text| ReservationState::parse(text).ok_or_else(|| corrupt(format!("reservation state {text:?}"))))
            .transpose()?
            .unwrap_or(ReservationState::Voided);
        let reservation = stock::Reservation { state, expires_at_unix_ms: self.expires_unix_ms };
        let record = OrderRecord {
            status: OrderStatus::parse(&self.status)
                .ok_or_else(|| corrupt(format!("order status {:?}", self.status)))?,
            service: Service::VALUES
                .iter()
                .find(|(name, _)| *name == self.service)
                .map(|(_, service)| *service)
                .ok_or_else(|| corrupt(format!("service {:?}", self.service)))?,
            lines: serde_json::from_str(&self.lines).map_err(corrupt)?,
            destination: serde_json::from_str(&self.destination).map_err(corrupt)?,
            allocation: serde_json::from_str(&self.allocation).map_err(corrupt)?,
            region: self.region,
            promised_by_unix_ms: self.promised_by_unix_ms,
            first_promised_by_unix_ms: self.first_promised_unix_ms,
            latest_delivery_unix_ms: self.latest_delivery_unix_ms,
            placed_unix_ms: self.placed_unix_ms,
            window_from_unix_ms: self.window_from_unix_ms.unwrap_or(self.placed_unix_ms),
            delivered_unix_ms: self.delivered_unix_ms,
            arrived_unix_ms: self.arrived_unix_ms,
            updated_unix_ms: self.updated_unix_ms,
            stepped_unix_ms: self.stepped_unix_ms,
            reservation: reservation.state_at(now_unix_ms),
            hold_expires_unix_ms: self.expires_unix_ms,
            order_id: self.order_id,
            reservation_id: self.reservation_id.clone(),
        };
        Ok((record, self.reservation_id))
    }
}

pub(crate) async fn read_order(
    conn: &mut Conn,
    tenant: &str,
    order_id: &str,
    now_unix_ms: i64,
) -> Result<Option<(OrderRecord, String)>, sqlx::Error> {
    let row: Option<OrderRow> = on_conn!(conn, connection => sqlx::query_as(&format!(
        "{ORDER_SELECT} WHERE o.tenant_id = $1 AND o.order_id = $2"))
        .bind(tenant).bind(order_id).fetch_optional(&mut *connection).await)?;
    row.map(|row| row.into_record(now_unix_ms)).transpose()
}

/// Orders by id, each as [`read_order`] reads it, in one statement (runs of keys on SQLite, see
/// `writer::fetch_for_keys`): a recall takes back thousands of orders. An order not found is
/// absent.
async fn read_orders(
    conn: &mut Conn,
    tenant: &str,
    order_ids: &[&str],
    now_unix_ms: i64,
) -> Result<HashMap<String, (OrderRecord, String)>, sqlx::Error> {
    let rows: Vec<OrderRow> = crate::writer::fetch_for_keys(conn, tenant, order_ids, |tenant, condition| {
        format!("{ORDER_SELECT} WHERE o.tenant_id = {tenant} AND o.order_id {condition}")
    })
    .await?;
    rows.into_iter()
        .map(|row| {
            let order_id = row.order_id.clone();
            row.into_record(now_unix_ms).map(|read| (order_id, read))
        })
        .collect()
}

// ---------- reads ----------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsnRecord {
    pub asn_id: String,
    pub location: String,
    pub expected_unix_ms: Option<i64>,
    pub created_unix_ms: i64,
    pub pallets: Vec<AsnPalletRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AsnPalletRecord {
    pub sscc: String,
    pub gtin: String,
    pub lot: String,
    pub expiry_date: Option<String>,
    pub quantity: i64,
    pub received_zone: Option<String>,
    pub received_unix_ms: Option<i64>,
}

/// A balance as read: `reserved` without pending reservations whose timeout has passed, and
/// `available` (reservable now: zero unless the lot is available). An available lot past its
/// expiry date (UTC) reads as `expired`, with nothing available: no job has to mark it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockBalance {
    pub key: StockKey,
    pub expiry: Option<String>,
    pub status: LotStatus,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub updated_unix_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct StockFilter {
    pub gtin: Option<String>,
    pub location: Option<String>,
    pub lot: Option<String>,
}

/// One movement of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMovement {
    /// Where the movement stands in the journal (what a cursor after it holds).
    pub position: JournalPosition,
    pub kind: MovementKind,
    pub key: StockKey,
    pub quantity: i64,
    pub reason: Option<String>,
}

/// How long a read of the movement journal on PostgreSQL waits for the transactions running
/// when it began to end, so that a reader sees every movement committed before its request.
/// Past it (a long transaction elsewhere) the page ends before that transaction's id.
pub const JOURNAL_SETTLE_WAIT_MAX: Duration = Duration::from_secs(1);

/// PostgreSQL: a transaction id below which every transaction of this database has ended, so
/// that no row with a smaller `tx` can still appear. Waits (at most
/// [`JOURNAL_SETTLE_WAIT_MAX`]) until the transactions running now have ended: the caller then
/// sees every commit made before it asked.
///
/// Only this database's transactions count (`pg_stat_activity`), not the cluster's
/// (`pg_current_snapshot()` would wait for every database's). `backend_xid` is 32 bits; a
/// running transaction's id is less than 2^31 below the next one, which gives its epoch.
async fn settled_transactions(pool: &sqlx::PgPool, wait_max: Duration) -> Result<i64, sqlx::Error> {
    const NEXT: &str = "SELECT CAST(CAST(pg_snapshot_xmax(pg_current_snapshot()) AS TEXT) AS BIGINT)";
    const RUNNING: &str = "SELECT CAST(CAST(backend_xid AS TEXT) AS BIGINT) FROM pg_stat_activity \
                           WHERE datname = current_database() AND backend_xid IS NOT NULL";
    // Read first: a transaction given an id after this has one of at least `next`.
    let next: i64 = sqlx::query_scalar(NEXT).fetch_one(pool).await?;
    let full = |xid: i64| next - ((next - xid) & 0xFFFF_FFFF);
    let deadline = Instant::now() + wait_max;
    loop {
        let running: Vec<i64> = sqlx::query_scalar(RUNNING).fetch_all(pool).await?;
        let oldest_running = running.into_iter().map(full).min().unwrap_or(next).min(next);
        if oldest_running >= next || wait_max.is_zero() {
            return Ok(oldest_running);
        }
        if Instant::now() >= deadline {
            warn_journal_held_back(oldest_running);
            return Ok(oldest_running);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The journal warns that a long transaction holds it back at most this often (per process).
pub const JOURNAL_HELD_BACK_WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Tells the operator why the movement journal stops short: a write transaction of this
/// database has been running for longer than [`JOURNAL_SETTLE_WAIT_MAX`]. Rate limited.
fn warn_journal_held_back(oldest_running_xid: i64) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static WARNED_UNIX_MS: AtomicI64 = AtomicI64::new(i64::MIN);
    let now_unix_ms = crate::now_unix_ms();
    let warned = WARNED_UNIX_MS.load(Ordering::Relaxed);
    if now_unix_ms.saturating_sub(warned) >= JOURNAL_HELD_BACK_WARN_INTERVAL.as_millis() as i64
        && WARNED_UNIX_MS.compare_exchange(warned, now_unix_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(
            oldest_running_xid,
            "a write transaction of this database has run for more than 1 s: the movement journal \
             and the webhooks answer only rows of transactions older than it until it ends (see pg_stat_activity)"
        );
    }
}

/// A place in the movement journal: its order is (`tx`, `at_unix_ms`, `operation_id`, `line`).
/// `tx` is the writing transaction's id on PostgreSQL (0 for rows written before it was kept)
/// and 0 on SQLite, where the one writer's batch times increase (`WriterCache::batch_time`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JournalPosition {
    pub tx: i64,
    pub at_unix_ms: i64,
    pub operation_id: String,
    pub line: i64,
}

/// The journal's order, as SQL (matches [`JournalPosition`]'s and the lot index's).
pub(crate) const JOURNAL_ORDER: &str = "tx, at_unix_ms, operation_id, line";

/// The most rows a stock or movement list answers in one page.
pub const STOCK_ROWS_MAX: u32 = 500;

/// The most rows the keyed lists (stock, orders, recalls) read at once: a page of
/// [`STOCK_ROWS_MAX`] and one more, which tells the caller that another page follows.
pub const LIST_ROWS_READ_MAX: u32 = STOCK_ROWS_MAX + 1;

/// What allocation needs, read now: for answering a promise without placing an order.
#[derive(Debug)]
pub struct AllocationInputs {
    pub sites: Vec<Location>,
    pub lanes: Vec<Lane>,
    pub products: Vec<ProductRule>,
    pub lots: Vec<StockLot<'static>>,
}

#[derive(sqlx::FromRow)]
struct StockRow {
    gtin: String,
    location_gln: String,
    zone: String,
    lot: String,
    expiry_date: Option<String>,
    status: String,
    on_hand: i64,
    reserved: i64,
    updated_unix_ms: i64,
}

impl crate::TenantStore<'_> {
    /// Balances of this tenant, in key order (GTIN, location, zone, lot), after `after`: at most
    /// `limit`, itself at most [`LIST_ROWS_READ_MAX`].
    pub async fn stock(
        &self,
        filter: &StockFilter,
        after: Option<&StockKey>,
        limit: u32,
    ) -> Result<Vec<StockBalance>, crate::StoreError> {
        let now_unix_ms = crate::now_unix_ms();
        let mut conditions = vec!["b.tenant_id = $1".to_owned()];
        let mut texts: Vec<String> = Vec::new();
        let mut next = 2;
        // The reserves' tail (SQLite) is filtered alike on the columns its index holds.
        let mut tail_filter = " AND i.tenant_id = $1".to_owned();
        // Answers the placeholder's number.
        let mut add = |condition: &str, value: &str, texts: &mut Vec<String>| {
            let number = next;
            conditions.push(condition.replace('?', &format!("${number}")));
            texts.push(value.to_owned());
            next += 1;
            number
        };
        if let Some(gtin) = &filter.gtin {
            let number = add("b.gtin = ?", gtin, &mut texts);
            tail_filter.push_str(&format!(" AND i.gtin = ${number}"));
        }
        if let Some(location) = &filter.location {
            add("b.location_gln = ?", location, &mut texts);
        }
        if let Some(lot) = &filter.lot {
            let number = add("b.lot = ?", lot, &mut texts);
            tail_filter.push_str(&format!(" AND i.lot = ${number}"));
        }
        if let Some(key) = after {
            let first = next;
            conditions.push(format!(
                "(b.gtin, b.location_gln, b.zone, b.lot) > (${first}, ${}, ${}, ${})",
                first + 1,
                first + 2,
                first + 3
            ));
            texts.extend([key.gtin.clone(), key.location.clone(), key.zone.clone(), key.lot.clone()]);
        }
        let mut conn = self.store.pools().acquire_reader().await?;
        // On SQLite with the reserves the table may lack ([`BalancesBehind`]), in one statement;
        // the tail filtered as the balances are, where its index can (tenant, GTIN, lot).
        let (reserved, updated, tail) = match conn {
            Conn::Sqlite(_) => (
                "b.reserved + COALESCE(t.units, 0)",
                "MAX(b.updated_unix_ms, COALESCE(t.at_unix_ms, 0))",
                format!(
                    " LEFT JOIN ({}{tail_filter}{}) t ON t.tenant_id = b.tenant_id AND t.gtin = b.gtin \
                     AND t.location_gln = b.location_gln AND t.zone = b.zone AND t.lot = b.lot",
                    sqlite_reserves_tail!(head),
                    sqlite_reserves_tail!(group),
                ),
            ),
            Conn::Postgres(_) => ("b.reserved", "b.updated_unix_ms", String::new()),
        };
        let sql = format!(
            "SELECT b.gtin, b.location_gln, b.zone, b.lot, b.expiry_date, b.status, b.on_hand, {reserved} AS reserved, \
             {updated} AS updated_unix_ms FROM stock_balances b{tail} WHERE {} \
             ORDER BY b.gtin, b.location_gln, b.zone, b.lot LIMIT {}",
            conditions.join(" AND "),
            limit.clamp(1, LIST_ROWS_READ_MAX)
        );
        let rows: Vec<StockRow> = on_conn!(&mut conn, connection => {
            let mut query = sqlx::query_as(&sql).bind(self.tenant_id.as_str());
            for text in &texts {
                query = query.bind(text.as_str());
            }
            query.fetch_all(&mut *connection).await
        })?;
        // After the balances (see `lapsed_units`).
        let lapsed = lapsed_units(&mut conn, self.tenant_id.as_str(), now_unix_ms).await?;
        let today = crate::utc_day(now_unix_ms);
        rows.into_iter()
            .map(|row| {
                let stored = LotStatus::parse(&row.status)
                    .ok_or_else(|| crate::StoreError::Corrupt(format!("lot status {:?}", row.status)))?;
                let status = status_as_of(stored, row.expiry_date.as_deref(), &today);
                let key = StockKey { gtin: row.gtin, location: row.location_gln, zone: row.zone, lot: row.lot };
                let reserved = row.reserved - lapsed.get(&key).copied().unwrap_or(0).clamp(0, row.reserved);
                Ok(StockBalance {
                    key,
                    expiry: row.expiry_date,
                    status,
                    on_hand: row.on_hand,
                    reserved,
                    available: if status.allocatable() { row.on_hand - reserved } else { 0 },
                    updated_unix_ms: row.updated_unix_ms,
                })
            })
            .collect()
    }

    /// The journal of one lot of a GTIN (or every lot), in the order it was committed (see
    /// [`JournalPosition`]), after `after`.
    ///
    /// A page never shows a row that a later commit could precede: on PostgreSQL only rows of
    /// transactions older than every transaction still running are answered, after waiting for
    /// the transactions running when the read began (see [`settled_transactions`]).
    pub async fn movements(
        &self,
        gtin: &str,
        lot: Option<&str>,
        after: Option<&JournalPosition>,
        limit: u32,
    ) -> Result<Vec<StockMovement>, crate::StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            tx: i64,
            operation_id: String,
            line: i64,
            kind: String,
            gtin: String,
            location_gln: String,
            zone: String,
            lot: String,
            quantity: i64,
            reason: Option<String>,
            at_unix_ms: i64,
        }
        let horizon = self.store.settled_horizon(JOURNAL_SETTLE_WAIT_MAX).await?;
        let after_sql =
            if after.is_some() { "AND (tx, at_unix_ms, operation_id, line) > ($5, $6, $7, $8)" } else { "" };
        let limit = limit.clamp(1, STOCK_ROWS_MAX);
        const COLUMNS: &str =
            "tx, operation_id, line, kind, gtin, location_gln, zone, lot, quantity, reason, at_unix_ms";
        let sql = match self.store.pools().kind() {
            BackendKind::Postgres => format!(
                "SELECT {COLUMNS} FROM stock_movements WHERE tenant_id = $1 AND gtin = $2 AND ($3 IS NULL OR lot = $3) \
                 AND tx < $4 {after_sql} ORDER BY {JOURNAL_ORDER} LIMIT {limit}"
            ),
            // The three parts of the journal by lot (migration 0018), each read in the journal's
            // order up to the page's length, then merged.
            BackendKind::Sqlite => format!(
                "SELECT * FROM (SELECT {COLUMNS} FROM stock_movements INDEXED BY stock_movements_by_lot \
                 WHERE tenant_id = $1 AND gtin = $2 AND ($3 IS NULL OR lot = $3) AND kind <> 'reserve' AND tx < $4 {after_sql} \
                 ORDER BY {JOURNAL_ORDER} LIMIT {limit}) \
                 UNION ALL SELECT * FROM (SELECT m.tx, m.operation_id, m.line, m.kind, m.gtin, m.location_gln, m.zone, m.lot, \
                 m.quantity, m.reason, m.at_unix_ms FROM reserves_by_lot i JOIN stock_movements m \
                 ON m.tenant_id = i.tenant_id AND m.operation_id = i.operation_id AND m.line = i.line \
                 WHERE i.tenant_id = $1 AND i.gtin = $2 AND ($3 IS NULL OR i.lot = $3) AND i.tx < $4 {} \
                 ORDER BY i.tx, i.at_unix_ms, i.operation_id, i.line LIMIT {limit}) \
                 UNION ALL SELECT * FROM (SELECT m.tx, m.operation_id, m.line, m.kind, m.gtin, m.location_gln, m.zone, m.lot, \
                 m.quantity, m.reason, m.at_unix_ms FROM stock_movements t INDEXED BY stock_movements_reserved_since \
                 JOIN stock_movements m ON m.tenant_id = t.tenant_id AND m.operation_id = t.operation_id AND m.line = t.line \
                 WHERE t.kind = 'reserve' AND t.at_unix_ms > (SELECT through_unix_ms FROM reserves_indexed) \
                 AND t.tenant_id = $1 AND t.gtin = $2 AND ($3 IS NULL OR t.lot = $3) AND m.tx < $4 {} \
                 ORDER BY m.tx, m.at_unix_ms, m.operation_id, m.line LIMIT {limit}) \
                 ORDER BY {JOURNAL_ORDER} LIMIT {limit}",
                if after.is_some() {
                    "AND (i.tx, i.at_unix_ms, i.operation_id, i.line) > ($5, $6, $7, $8)"
                } else {
                    ""
                },
                if after.is_some() {
                    "AND (m.tx, m.at_unix_ms, m.operation_id, m.line) > ($5, $6, $7, $8)"
                } else {
                    ""
                },
            ),
        };
        let rows: Vec<Row> = crate::backend::on_pool!(self.store.pools(), pool => {
            let mut query = sqlx::query_as(&sql).bind(self.tenant_id.as_str()).bind(gtin).bind(lot).bind(horizon);
            if let Some(position) = after {
                query = query
                    .bind(position.tx)
                    .bind(position.at_unix_ms)
                    .bind(position.operation_id.as_str())
                    .bind(position.line);
            }
            query.fetch_all(pool).await
        })?;
        rows.into_iter()
            .map(|row| {
                Ok(StockMovement {
                    position: JournalPosition {
                        tx: row.tx,
                        at_unix_ms: row.at_unix_ms,
                        operation_id: row.operation_id,
                        line: row.line,
                    },
                    kind: MovementKind::parse(&row.kind)
                        .ok_or_else(|| crate::StoreError::Corrupt(format!("movement kind {:?}", row.kind)))?,
                    key: StockKey { gtin: row.gtin, location: row.location_gln, zone: row.zone, lot: row.lot },
                    quantity: row.quantity,
                    reason: row.reason,
                })
            })
            .collect()
    }

    /// The units on hand of `lots` of `gtin`, by balance in key order, balances with none left
    /// out: what a recall of them holds back where they lie. All of them: a lot's balances are
    /// bounded by the network's sites and zones.
    pub async fn lots_on_hand(&self, gtin: &Gtin, lots: &[String]) -> Result<Vec<(StockKey, i64)>, crate::StoreError> {
        let mut conn = self.store.pools().acquire_reader().await?;
        let keys: Vec<&str> = lots.iter().map(String::as_str).collect();
        // The GTIN is a parsed one (14 digits), written into the statement.
        let rows: Vec<(String, String, String, i64)> =
            crate::writer::fetch_for_keys(&mut conn, self.tenant_id.as_str(), &keys, |tenant, condition| {
                format!(
                    "SELECT location_gln, zone, lot, on_hand FROM stock_balances WHERE tenant_id = {tenant} \
                     AND gtin = '{}' AND on_hand > 0 AND lot {condition}",
                    gtin.as_str()
                )
            })
            .await?;
        let mut held: Vec<(StockKey, i64)> = rows
            .into_iter()
            .map(|(location, zone, lot, on_hand)| (StockKey { gtin: gtin.to_string(), location, zone, lot }, on_hand))
            .collect();
        held.sort_unstable();
        Ok(held)
    }

    /// The open orders holding units of the lots, sorted by id (what a recall of them would
    /// take back; the server unpacks the packed ones' pallets with the recall).
    pub async fn open_orders_with_lots(
        &self,
        gtin: &str,
        lots: &[String],
    ) -> Result<Vec<OrderRecord>, crate::StoreError> {
        let mut conn = self.store.pools().acquire_reader().await?;
        Ok(open_orders_with_lots(&mut conn, self.tenant_id.as_str(), gtin, lots, crate::now_unix_ms()).await?)
    }

    /// The units on hand of a lot of `gtin`, at every site and zone, by its status there (as
    /// stored: a lot past its expiry date still says its status).
    pub async fn lot_units_by_status(&self, gtin: &str, lot: &str) -> Result<Vec<(LotStatus, i64)>, crate::StoreError> {
        let rows: Vec<(String, i64)> = crate::backend::on_pool!(self.store.pools(), pool => sqlx::query_as(
            "SELECT status, CAST(SUM(on_hand) AS BIGINT) FROM stock_balances WHERE tenant_id = $1 AND gtin = $2 AND lot = $3 \
             GROUP BY status ORDER BY status")
            .bind(self.tenant_id.as_str()).bind(gtin).bind(lot).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(status, units)| {
                let parsed = LotStatus::parse(&status).ok_or_else(|| corrupt(format!("lot status {status:?}")))?;
                Ok((parsed, units))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(crate::StoreError::from)
    }

    /// Which of `gtins` are this tenant's products, in one read a few thousand GTINs.
    pub async fn own_gtins(&self, gtins: &[&str]) -> Result<std::collections::HashSet<String>, crate::StoreError> {
        let mut conn = self.store.pools().acquire_reader().await?;
        let rows: Vec<(String,)> =
            crate::writer::fetch_for_keys(&mut conn, self.tenant_id.as_str(), gtins, |tenant, condition| {
                format!("SELECT gtin FROM products WHERE tenant_id = {tenant} AND gtin {condition}")
            })
            .await?;
        Ok(rows.into_iter().map(|(gtin,)| gtin).collect())
    }

    /// Every order that took units of the lots (reserved, shipped or delivered, open or not), by
    /// id, with the units of them it shipped and took back: the forward reach of lots made from
    /// recalled ones, which that recall does not touch.
    pub async fn orders_with_lots(
        &self,
        gtin: &str,
        lots: &[String],
    ) -> Result<Vec<(OrderRecord, LotUnits)>, crate::StoreError> {
        let mut conn = self.store.pools().acquire_reader().await?;
        Ok(orders_with_lots(&mut conn, self.tenant_id.as_str(), gtin, lots, crate::now_unix_ms()).await?)
    }

    /// Which of `lots` of `gtin` this tenant's stock, inbound pallets (announced or received) or
    /// recalls name: a recall's lots must be known somewhere (the events are the other place).
    /// One read per table for all the lots (the pallets have no index by lot: one scan).
    pub async fn lots_in_stock_or_inbound(
        &self,
        gtin: &Gtin,
        lots: &[String],
    ) -> Result<Vec<String>, crate::StoreError> {
        let mut conn = self.store.pools().acquire_reader().await?;
        let keys: Vec<&str> = lots.iter().map(String::as_str).collect();
        let mut known: Vec<String> = Vec::new();
        for table in ["stock_balances", "recalled_lots", "asn_pallets"] {
            let missing: Vec<&str> = keys.iter().copied().filter(|lot| !known.iter().any(|seen| seen == lot)).collect();
            // The GTIN is a parsed one (14 digits), written into the statement.
            let rows: Vec<(String,)> =
                crate::writer::fetch_for_keys(&mut conn, self.tenant_id.as_str(), &missing, |tenant, condition| {
                    format!(
                        "SELECT DISTINCT lot FROM {table} WHERE tenant_id = {tenant} AND gtin = '{}' AND lot {condition}",
                        gtin.as_str()
                    )
                })
                .await?;
            known.extend(rows.into_iter().map(|(lot,)| lot));
        }
        Ok(known)
    }

    pub async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>, crate::StoreError> {
        let mut conn = self.store.pools().acquire_reader().await?;
        Ok(read_order(&mut conn, self.tenant_id.as_str(), order_id, crate::now_unix_ms())
            .await?
            .map(|(record, _)| record))
    }

    /// This tenant's orders, newest id last, after `after`: at most `limit`, itself at most
    /// [`LIST_ROWS_READ_MAX`].
    pub async fn orders(
        &self,
        status: Option<OrderStatus>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, crate::StoreError> {
        let sql = format!(
            "{ORDER_SELECT} WHERE o.tenant_id = $1 AND ($2 IS NULL OR o.status = $2) AND ($3 IS NULL OR o.order_id > $3) \
             ORDER BY o.order_id LIMIT {}",
            limit.clamp(1, LIST_ROWS_READ_MAX)
        );
        let rows: Vec<OrderRow> = crate::backend::on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(status.map(OrderStatus::name)).bind(after).fetch_all(pool).await)?;
        let now_unix_ms = crate::now_unix_ms();
        Ok(rows
            .into_iter()
            .map(|row| row.into_record(now_unix_ms).map(|(record, _)| record))
            .collect::<Result<_, _>>()?)
    }

    pub async fn order_events(&self, order_id: &str) -> Result<Vec<OrderEventRecord>, crate::StoreError> {
        let rows: Vec<OrderEventRow> = crate::backend::on_pool!(self.store.pools(), pool => sqlx::query_as(ORDER_EVENTS_SQL)
            .bind(self.tenant_id.as_str()).bind(order_id).fetch_all(pool).await)?;
        order_event_records(rows).map_err(crate::StoreError::Corrupt)
    }

    /// An advance shipping notice: its location and pallets (received or not).
    pub async fn asn(&self, asn_id: &str) -> Result<Option<AsnRecord>, crate::StoreError> {
        let header: Option<(String, Option<i64>, i64)> = crate::backend::on_pool!(self.store.pools(), pool => sqlx::query_as(
            "SELECT location_gln, expected_unix_ms, created_unix_ms FROM asns WHERE tenant_id = $1 AND asn_id = $2")
            .bind(self.tenant_id.as_str()).bind(asn_id).fetch_optional(pool).await)?;
        let Some((location, expected_unix_ms, created_unix_ms)) = header else { return Ok(None) };
        let pallets: Vec<AsnPalletRecord> = crate::backend::on_pool!(self.store.pools(), pool => sqlx::query_as(
            "SELECT sscc, gtin, lot, expiry_date, quantity, received_zone, received_unix_ms FROM asn_pallets \
             WHERE tenant_id = $1 AND asn_id = $2 ORDER BY sscc")
            .bind(self.tenant_id.as_str()).bind(asn_id).fetch_all(pool).await)?;
        Ok(Some(AsnRecord { asn_id: asn_id.to_owned(), location, expected_unix_ms, created_unix_ms, pallets }))
    }

    /// Sites, lanes, product rules and reservable lots for `gtins`, read now.
    pub async fn allocation_inputs(&self, gtins: &[Gtin]) -> Result<AllocationInputs, crate::StoreError> {
        let mut conn = self.store.pools().acquire_reader().await?;
        let mut cache = WriterCache::default();
        let tenant = self.tenant_id.as_str();
        let network = network_snapshot(&mut cache, &mut conn, tenant).await?;
        let lines: Vec<Line> = gtins.iter().map(|gtin| Line { gtin: gtin.clone(), quantity: 1 }).collect();
        // The balances, then the pending reservations past their timeout: they hold nothing any
        // more (read in this order, see `lapsed_units`).
        let mut batch = StockBatch::default();
        let wanted: Vec<(String, String)> = gtins.iter().map(|gtin| (tenant.to_owned(), gtin.to_string())).collect();
        batch.prefetch(&mut cache, &mut conn, &wanted).await?;
        let now_unix_ms = crate::now_unix_ms();
        let lapsed = lapsed_units(&mut conn, tenant, now_unix_ms).await?;
        let (products, lots) = stock_lots(&mut conn, &mut batch, &mut cache, tenant, &lines, &lapsed, now_unix_ms)
            .await?
            .map(|(products, lots)| (products, lots.into_iter().map(StockLot::into_owned).collect()))
            .unwrap_or_default();
        let network = Arc::try_unwrap(network)
            .unwrap_or_else(|shared| NetworkSnapshot { sites: shared.sites.clone(), lanes: shared.lanes.clone() });
        Ok(AllocationInputs { sites: network.sites, lanes: network.lanes, products, lots })
    }

    /// A recall of this tenant, with its reach as the store holds it now.
    pub async fn recall(&self, recall_id: &str) -> Result<Option<StoredRecall>, crate::StoreError> {
        let tenant = self.tenant_id.as_str();
        let mut conn = self.store.pools().acquire_reader().await?;
        /// gtin, reason, created_unix_ms, lots, public_notice.
        type RecallRow = (String, String, i64, Option<String>, Option<String>);
        let row: Option<RecallRow> = on_conn!(&mut conn, connection =>
            sqlx::query_as(
                "SELECT gtin, reason, created_unix_ms, lots, public_notice FROM recalls WHERE tenant_id = $1 \
                 AND recall_id = $2")
            .bind(tenant).bind(recall_id).fetch_optional(&mut *connection).await)?;
        let Some((gtin, reason, created_unix_ms, lots, public_notice)) = row else { return Ok(None) };
        let outcomes_kept = lots.is_some();
        let lots = recall_lots(&mut conn, tenant, recall_id, lots).await?;
        let outcomes: Vec<(String, String)> = on_conn!(&mut conn, connection => sqlx::query_as(
            "SELECT order_id, outcome FROM recall_orders WHERE tenant_id = $1 AND recall_id = $2 ORDER BY order_id")
            .bind(tenant).bind(recall_id).fetch_all(&mut *connection).await)?;
        let (mut reallocated, mut flagged) = (Vec::new(), Vec::new());
        for (order_id, outcome) in outcomes {
            if outcome == "flagged" { flagged.push(order_id) } else { reallocated.push(order_id) }
        }
        let taken_back = (reallocated, flagged);
        let now_unix_ms = crate::now_unix_ms();
        let reach =
            recall_reach(&mut conn, tenant, recall_id, created_unix_ms, &gtin, &lots, taken_back, now_unix_ms).await?;
        Ok(Some(StoredRecall { gtin, lots, reason, public_notice, reach, outcomes_kept }))
    }

    /// The tenant's recalls past `after` (a recall id), oldest first, or newest first (ids
    /// begin with the time): at most `limit`, itself at most [`LIST_ROWS_READ_MAX`].
    pub async fn recalls(
        &self,
        newest_first: bool,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RecallSummary>, crate::StoreError> {
        let tenant = self.tenant_id.as_str();
        let mut conn = self.store.pools().acquire_reader().await?;
        let (past, order) = if newest_first { ("<", "DESC") } else { (">", "ASC") };
        let sql = format!(
            "SELECT recall_id, gtin, reason, created_unix_ms, lots, public_notice FROM recalls WHERE tenant_id = $1 \
             AND ($2 IS NULL OR recall_id {past} $2) ORDER BY recall_id {order} LIMIT {}",
            limit.clamp(1, LIST_ROWS_READ_MAX)
        );
        /// recall_id, gtin, reason, created_unix_ms, lots, public_notice.
        type SummaryRow = (String, String, String, i64, Option<String>, Option<String>);
        let rows: Vec<SummaryRow> = on_conn!(&mut conn, connection =>
            sqlx::query_as(&sql).bind(tenant).bind(after).fetch_all(&mut *connection).await)?;
        let mut recalls = Vec::with_capacity(rows.len());
        for (recall_id, gtin, reason, recalled_unix_ms, lots, public_notice) in rows {
            let lots = recall_lots(&mut conn, tenant, &recall_id, lots).await?;
            recalls.push(RecallSummary { recall_id, gtin, lots, reason, public_notice, recalled_unix_ms });
        }
        Ok(recalls)
    }

    /// The recall of a lot of this tenant's product, if any.
    pub async fn recall_of_lot(&self, gtin: &str, lot: &str) -> Result<Option<String>, crate::StoreError> {
        let row: Option<(String,)> = crate::backend::on_pool!(self.store.pools(), pool => sqlx::query_as(
            "SELECT recall_id FROM recalled_lots WHERE tenant_id = $1 AND gtin = $2 AND lot = $3")
            .bind(self.tenant_id.as_str()).bind(gtin).bind(lot).fetch_optional(pool).await)?;
        Ok(row.map(|(recall_id,)| recall_id))
    }
}

/// The orders placed in `[$2, $3)` of the tenant `$1`, or (`one_tenant` false, `$1` NULL) of
/// every tenant: a `FROM … WHERE` clause whose rows are named `orders`. Each tenant's range of
/// `orders_by_placed` is read, not every order.
fn orders_placed_in(one_tenant: bool) -> &'static str {
    if one_tenant {
        "orders WHERE tenant_id = $1 AND placed_unix_ms >= $2 AND placed_unix_ms < $3"
    } else {
        // Tenant by tenant (tenants are never deleted, and every order's tenant is one).
        "(SELECT o.* FROM tenants t CROSS JOIN orders o WHERE o.tenant_id = t.tenant_id \
         AND o.placed_unix_ms >= $2 AND o.placed_unix_ms < $3) AS orders WHERE $1 IS NULL"
    }
}

/// Every tenant's orders placed in `[$2, $3)` counted by status (`$1` NULL).
fn order_counts_sql() -> String {
    format!("SELECT status, COUNT(*) FROM {} GROUP BY status ORDER BY status", orders_placed_in(false))
}

/// The SLA's statement (see [`Store::sla`]): `$1` the tenant (or NULL), `$2` and `$3` the period,
/// `$4` now.
fn sla_sql(one_tenant: bool) -> String {
    const PROMISE: &str = "COALESCE(first_promised_unix_ms, promised_by_unix_ms)";
    const OPEN: &str = "arrived_unix_ms IS NULL AND status NOT IN ('cancelled', 'returned')";
    // A cancelled order is final: its last change (`updated_unix_ms`) is its cancellation.
    const CANCELLED: &str = "arrived_unix_ms IS NULL AND status = 'cancelled'";
    format!(
        "SELECT region, service, COUNT(*) AS orders, \
         SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled, \
         SUM(CASE WHEN arrived_unix_ms IS NOT NULL THEN 1 ELSE 0 END) AS delivered, \
         SUM(CASE WHEN arrived_unix_ms IS NOT NULL AND arrived_unix_ms <= {PROMISE} THEN 1 ELSE 0 END) \
           AS delivered_by_promise, \
         SUM(CASE WHEN arrived_unix_ms IS NOT NULL AND arrived_unix_ms - placed_unix_ms <= {DAY_MS} THEN 1 ELSE 0 END) \
           AS delivered_within_24h, \
         SUM(CASE WHEN arrived_unix_ms IS NULL AND status = 'returned' THEN 1 ELSE 0 END) AS failed, \
         SUM(CASE WHEN {OPEN} AND {PROMISE} < $4 THEN 1 ELSE 0 END) AS late_open, \
         SUM(CASE WHEN {OPEN} AND placed_unix_ms + {DAY_MS} < $4 THEN 1 ELSE 0 END) AS open_past_24h, \
         SUM(CASE WHEN {CANCELLED} AND updated_unix_ms > {PROMISE} THEN 1 ELSE 0 END) AS cancelled_late, \
         SUM(CASE WHEN {CANCELLED} AND updated_unix_ms > placed_unix_ms + {DAY_MS} THEN 1 ELSE 0 END) \
           AS cancelled_past_24h \
         FROM {FROM} GROUP BY region, service",
        DAY_MS = 86_400_000,
        FROM = orders_placed_in(one_tenant),
    )
}

/// Orders of one region and service placed in a period, and how their deliveries went.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SlaRow {
    pub region: String,
    pub service: String,
    pub orders: i64,
    pub cancelled: i64,
    /// Reached their destination: delivered at the door or arrived at their pickup point.
    pub delivered: i64,
    /// Reached it no later than the promise.
    pub delivered_by_promise: i64,
    /// Reached it within 24 hours of being placed.
    pub delivered_within_24h: i64,
    /// Returned without reaching it (a failed delivery): a miss on both counts.
    pub failed: i64,
    /// Not there yet (nor cancelled or returned), and past the promise already.
    pub late_open: i64,
    /// Not there yet (nor cancelled or returned), and placed more than 24 hours ago.
    pub open_past_24h: i64,
    /// Cancelled after their promise had passed without them arriving: a miss (whoever
    /// cancelled, the promise was not kept first).
    pub cancelled_late: i64,
    /// Cancelled more than 24 hours after being placed, without arriving: a miss.
    pub cancelled_past_24h: i64,
}

impl SlaRow {
    /// A row of zeros, to add rows into.
    pub fn zero(region: String, service: String) -> SlaRow {
        SlaRow {
            region,
            service,
            orders: 0,
            cancelled: 0,
            delivered: 0,
            delivered_by_promise: 0,
            delivered_within_24h: 0,
            failed: 0,
            late_open: 0,
            open_past_24h: 0,
            cancelled_late: 0,
            cancelled_past_24h: 0,
        }
    }

    pub fn add(&mut self, other: &SlaRow) {
        self.orders += other.orders;
        self.cancelled += other.cancelled;
        self.delivered += other.delivered;
        self.delivered_by_promise += other.delivered_by_promise;
        self.delivered_within_24h += other.delivered_within_24h;
        self.failed += other.failed;
        self.late_open += other.late_open;
        self.open_past_24h += other.open_past_24h;
        self.cancelled_late += other.cancelled_late;
        self.cancelled_past_24h += other.cancelled_past_24h;
    }

    /// The orders whose promise has been kept or missed: every one that arrived, failed, is
    /// late already or was cancelled late (an order still in time, or cancelled in time, is not
    /// counted either way).
    pub fn due_by_promise(&self) -> i64 {
        self.delivered + self.failed + self.late_open + self.cancelled_late
    }

    /// The orders whose 24 hours have been kept or missed, as [`SlaRow::due_by_promise`].
    pub fn due_within_24h(&self) -> i64 {
        self.delivered + self.failed + self.open_past_24h + self.cancelled_past_24h
    }
}

/// A merchant's webhook for order transitions.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderWebhook {
    pub tenant_id: String,
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
    pub after_tx: i64,
    pub after_at_unix_ms: i64,
    pub after_order_id: String,
    pub after_seq: i64,
    pub attempts: i64,
    pub next_attempt_unix_ms: i64,
    pub last_error: Option<String>,
    pub created_unix_ms: i64,
    pub alarm_after_tx: i64,
    pub alarm_after_unix_ms: i64,
    pub alarm_after_id: String,
    pub alarm_after_step: i64,
}

impl OrderWebhook {
    /// The last order transition delivered.
    pub fn orders_cursor(&self) -> TransitionCursor {
        TransitionCursor {
            tx: self.after_tx,
            at_unix_ms: self.after_at_unix_ms,
            id: self.after_order_id.clone(),
            seq: self.after_seq,
        }
    }

    /// The last alarm transition delivered.
    pub fn alarms_cursor(&self) -> TransitionCursor {
        TransitionCursor {
            tx: self.alarm_after_tx,
            at_unix_ms: self.alarm_after_unix_ms,
            id: self.alarm_after_id.clone(),
            seq: self.alarm_after_step,
        }
    }
}

/// A place in the transitions webhooks deliver, in the order they were committed: the writing
/// transaction (PostgreSQL's id; 0 on SQLite, whose one writer's batch times increase), the
/// time, then the order and its history row's `seq` (or the alarm and its step). A transition
/// committed after a read of the transitions sorts after everything that read answered (see
/// [`crate::TenantStore::order_transitions_after`]), so a cursor never skips one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionCursor {
    pub tx: i64,
    pub at_unix_ms: i64,
    pub id: String,
    pub seq: i64,
}

/// One transition, as delivered to webhooks.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderTransition {
    pub tx: i64,
    pub order_id: String,
    pub seq: i64,
    pub status: String,
    pub detail: Option<String>,
    pub at_unix_ms: i64,
}

impl OrderTransition {
    pub fn cursor(&self) -> TransitionCursor {
        TransitionCursor { tx: self.tx, at_unix_ms: self.at_unix_ms, id: self.order_id.clone(), seq: self.seq }
    }
}

const WEBHOOK_COLUMNS: &str = "tenant_id, webhook_id, url, secret, after_tx, after_at_unix_ms, after_order_id, after_seq, \
    attempts, next_attempt_unix_ms, last_error, created_unix_ms, alarm_after_tx, alarm_after_unix_ms, alarm_after_id, \
    alarm_after_step";

/// Transitions after a webhook's cursor (order transitions: the id is the order, `seq` its
/// history row), read only below the horizon of settled transactions ($6), at most $7.
pub(crate) const ORDER_TRANSITIONS_AFTER_SQL: &str = "SELECT tx, order_id, seq, status, detail, at_unix_ms FROM order_events \
     WHERE tenant_id = $1 AND tx < $6 AND (tx, at_unix_ms, order_id, seq) > ($2, $3, $4, $5) \
     ORDER BY tx, at_unix_ms, order_id, seq LIMIT $7";

/// Runs a query of transitions after a webhook's cursor (`$1` tenant, `$2`–`$5` the cursor,
/// `$6` the horizon, `$7` the limit, at most 1,000): order or alarm transitions.
pub(crate) async fn transitions_after<T>(
    store: &crate::Store,
    sql: &str,
    tenant: &str,
    after: &TransitionCursor,
    horizon: i64,
    limit: u32,
) -> Result<Vec<T>, sqlx::Error>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    crate::backend::on_pool!(store.pools(), pool => sqlx::query_as(sql)
        .bind(tenant)
        .bind(after.tx)
        .bind(after.at_unix_ms)
        .bind(after.id.as_str())
        .bind(after.seq)
        .bind(horizon)
        .bind(i64::from(limit.clamp(1, 1_000)))
        .fetch_all(pool)
        .await)
}

impl crate::TenantStore<'_> {
    pub async fn order_webhooks(&self) -> Result<Vec<OrderWebhook>, crate::StoreError> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM order_webhooks WHERE tenant_id = $1 ORDER BY webhook_id");
        Ok(crate::backend::on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).fetch_all(pool).await)?)
    }

    /// Order transitions after a webhook's cursor, in the order they were committed (see
    /// [`TransitionCursor`]), at most [`WEBHOOK_EVENTS_MAX`]. `horizon` is from
    /// [`crate::Store::settled_horizon`]: only transitions of transactions below it are read.
    pub async fn order_transitions_after(
        &self,
        after: &TransitionCursor,
        horizon: i64,
    ) -> Result<Vec<OrderTransition>, crate::StoreError> {
        let (tenant, limit) = (self.tenant_id.as_str(), WEBHOOK_EVENTS_MAX as u32);
        Ok(transitions_after(self.store, ORDER_TRANSITIONS_AFTER_SQL, tenant, after, horizon, limit).await?)
    }
}

impl crate::Store {
    /// The transaction id below which every writing transaction has ended, for the reads that
    /// page by `tx` (the movement journal, the webhooks' transitions): on PostgreSQL it waits, at
    /// most `wait_max`, for the transactions running now to end (see [`settled_transactions`]),
    /// so that the reader sees what committed before it asked; with no wait it is the oldest
    /// running one (the webhooks: what is not settled yet goes out with the next delivery). On
    /// SQLite, with one writer whose batch times increase, every row has `tx` 0 and the horizon
    /// is unbounded.
    pub async fn settled_horizon(&self, wait_max: Duration) -> Result<i64, crate::StoreError> {
        Ok(match self.pools() {
            crate::backend::Pools::Sqlite { .. } => i64::MAX,
            crate::backend::Pools::Postgres { pool, .. } => settled_transactions(pool, wait_max).await?,
        })
    }

    /// Order webhooks due by `now_unix_ms`, in key order (tenant, webhook) after `after`, at most
    /// `limit`: a worker goes on from where its last poll stopped, so every due webhook gets its
    /// turn however many there are (in the order of their next attempt, the webhooks with nothing
    /// to send, whose next attempt never moves, would take every turn).
    pub async fn due_order_webhooks(
        &self,
        now_unix_ms: i64,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<OrderWebhook>, crate::StoreError> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM order_webhooks WHERE next_attempt_unix_ms <= $1 \
             AND (tenant_id > $2 OR (tenant_id = $2 AND webhook_id > $3)) \
             ORDER BY tenant_id, webhook_id LIMIT {}",
            limit.clamp(1, 1_000)
        );
        let (tenant, webhook) = after.unwrap_or(("", ""));
        Ok(crate::backend::on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(now_unix_ms).bind(tenant).bind(webhook).fetch_all(pool).await)?)
    }

    /// Every tenant's orders placed in `[from, to)` counted by status (the operator's console).
    pub async fn order_counts(
        &self,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<Vec<(String, i64)>, crate::StoreError> {
        let sql = order_counts_sql();
        let rows: Vec<(String, i64)> = crate::backend::on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(None::<&str>).bind(from_unix_ms).bind(to_unix_ms).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// Orders placed in `[from, to)` by region and service (one tenant, or all for the operator),
    /// sorted by region and service (bytewise, the same on both backends). Reads the period's
    /// orders only (`orders_by_placed`, each tenant's range). Measured against the promise made when
    /// the order was placed, even if a later allocation moved it, and against its arrival (at
    /// the door or the pickup point; see [`SlaRow`]).
    pub async fn sla(
        &self,
        tenant: Option<&TenantId>,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<Vec<SlaRow>, crate::StoreError> {
        let sql = sla_sql(tenant.is_some());
        let mut rows: Vec<SlaRow> = crate::backend::on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(tenant.map(TenantId::as_str))
            .bind(from_unix_ms)
            .bind(to_unix_ms)
            .bind(crate::now_unix_ms())
            .fetch_all(pool)
            .await)?;
        // PostgreSQL would sort by its collation, SQLite bytewise: sorted here instead.
        rows.sort_by(|a, b| (&a.region, &a.service).cmp(&(&b.region, &b.service)));
        Ok(rows)
    }

    /// Whether a lot of a GTIN is recalled, whoever holds the GTIN (public: the resolver's
    /// `gs1:recallStatus`). Answers the recall's id and what it tells consumers.
    pub async fn lot_recall(&self, gtin: &str, lot: &str) -> Result<Option<PublicRecall>, crate::StoreError> {
        let row: Option<(String, Option<String>)> = crate::backend::on_pool!(self.pools(), pool => sqlx::query_as(
            "SELECT r.recall_id, c.public_notice FROM recalled_lots r \
             JOIN gtin_owners g ON g.tenant_id = r.tenant_id AND g.gtin = r.gtin \
             LEFT JOIN recalls c ON c.tenant_id = r.tenant_id AND c.recall_id = r.recall_id \
             WHERE r.gtin = $1 AND r.lot = $2")
            .bind(gtin).bind(lot).fetch_optional(pool).await)?;
        Ok(row.map(|(recall_id, public_notice)| PublicRecall { recall_id, public_notice }))
    }

    /// The recalled lots of a GTIN, whoever holds it (public, as [`Store::lot_recall`]): for a
    /// scan or a link that names the product but not its lot. In lot order, at most `limit`
    /// (1 to [`GTIN_RECALLED_LOTS_MAX`]), and whether there are more.
    pub async fn gtin_recalled_lots(
        &self,
        gtin: &str,
        limit: usize,
    ) -> Result<(Vec<(String, PublicRecall)>, bool), crate::StoreError> {
        assert!((1..=GTIN_RECALLED_LOTS_MAX).contains(&limit), "1 to {GTIN_RECALLED_LOTS_MAX} lots a read");
        let rows: Vec<(String, String, Option<String>)> = crate::backend::on_pool!(self.pools(), pool => sqlx::query_as(
            "SELECT r.lot, r.recall_id, c.public_notice FROM gtin_owners g \
             JOIN recalled_lots r ON r.tenant_id = g.tenant_id AND r.gtin = g.gtin \
             LEFT JOIN recalls c ON c.tenant_id = r.tenant_id AND c.recall_id = r.recall_id \
             WHERE g.gtin = $1 ORDER BY r.lot LIMIT $2")
            .bind(gtin).bind(limit as i64 + 1).fetch_all(pool).await)?;
        let more = rows.len() > limit;
        Ok((
            rows.into_iter()
                .take(limit)
                .map(|(lot, recall_id, public_notice)| (lot, PublicRecall { recall_id, public_notice }))
                .collect(),
            more,
        ))
    }

    /// [`Store::lot_recall`] of several lots (GTIN, lot) in one read: the recalled ones'
    /// recalls. At most [`LOT_RECALLS_READ_MAX`] lots.
    pub async fn lot_recalls(
        &self,
        lots: &[(String, String)],
    ) -> Result<std::collections::HashMap<(String, String), PublicRecall>, crate::StoreError> {
        assert!(lots.len() <= LOT_RECALLS_READ_MAX, "at most {LOT_RECALLS_READ_MAX} lots a read");
        if lots.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let mut gtins: Vec<&str> = lots.iter().map(|(gtin, _)| gtin.as_str()).collect();
        let mut names: Vec<&str> = lots.iter().map(|(_, lot)| lot.as_str()).collect();
        gtins.sort_unstable();
        gtins.dedup();
        names.sort_unstable();
        names.dedup();
        let list = |from: usize, count: usize| {
            (from..from + count).map(|index| format!("${index}")).collect::<Vec<_>>().join(", ")
        };
        // Every recalled pair of those GTINs and lots; the pairs asked for are kept below.
        let sql = format!(
            "SELECT r.gtin, r.lot, r.recall_id, c.public_notice FROM recalled_lots r \
             JOIN gtin_owners g ON g.tenant_id = r.tenant_id AND g.gtin = r.gtin \
             LEFT JOIN recalls c ON c.tenant_id = r.tenant_id AND c.recall_id = r.recall_id \
             WHERE r.gtin IN ({}) AND r.lot IN ({})",
            list(1, gtins.len()),
            list(1 + gtins.len(), names.len())
        );
        let rows: Vec<(String, String, String, Option<String>)> = crate::backend::on_pool!(self.pools(), pool => {
            let mut query = sqlx::query_as(&sql);
            for value in gtins.iter().chain(&names) {
                query = query.bind(*value);
            }
            query.fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .map(|(gtin, lot, recall_id, public_notice)| ((gtin, lot), PublicRecall { recall_id, public_notice }))
            .filter(|(pair, _)| lots.contains(pair))
            .collect())
    }
}

/// The most recalled lots of one GTIN [`Store::gtin_recalled_lots`] reads at once.
pub const GTIN_RECALLED_LOTS_MAX: usize = 100;

/// The most lots [`Store::lot_recalls`] reads at once.
pub const LOT_RECALLS_READ_MAX: usize = 256;

/// The most characters of what a recall tells consumers (`public_notice`).
pub const RECALL_NOTICE_CHARS_MAX: usize = 500;

/// A lot's recall as anyone may read it: its id and what it tells consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRecall {
    pub recall_id: String,
    pub public_notice: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extends the reserves' lot index if it is due, as the writer does; answers whether it did.
    async fn build_if_due(conn: &mut Conn, cache: &WriterCache, reserves_written: usize, now_unix_ms: i64) -> bool {
        let due = reserves_index_due(conn, cache, reserves_written);
        if due {
            build_reserves_index(conn, now_unix_ms).await.unwrap();
        }
        due
    }

    /// PostgreSQL: another API node reserved units of a balance while this writer's batch was
    /// written and its cache lent out to apply the next writes ahead. Once the batch commits, the
    /// cache and those writes' reads move by the difference, so the cache holds the row as written
    /// plus the writes applied ahead, and their net change stays their own (the other node's
    /// units counted once).
    #[test]
    fn a_lent_cache_is_corrected_with_the_reads_of_the_writes_applied_ahead() {
        let key = StockKey {
            gtin: "08712345100315".to_owned(),
            location: "8712345001018".to_owned(),
            zone: "chill".to_owned(),
            lot: "HOT".to_owned(),
        };
        let mut cache = WriterCache::default();
        let balance = |on_hand, reserved| Balance { on_hand, reserved };
        let correction = |key: &StockKey, on_hand, reserved| BalanceCorrection {
            tenant: "a".to_owned(),
            key: key.clone(),
            on_hand,
            reserved,
        };
        // After the committing batch reserved 3 of 10 reserved before: 13 expected.
        let cached = CachedBalance::new(key.clone(), None, LotStatus::Available, balance(100, 13)).unwrap();
        let entry = GtinEntry { loaded: Instant::now(), product: None, balances: vec![cached] };
        cache.gtins.insert(("a".to_owned(), key.gtin.clone()), entry);
        // Ahead, the next writes read 13 and reserved 4 more.
        let mut ahead = StockBatch::default();
        ahead.touch("a", &key, Some((balance(100, 13), LotStatus::Available)));
        cache.gtins.get_mut(&("a".to_owned(), key.gtin.clone())).unwrap().balance_mut(&key).unwrap().balance =
            balance(100, 17);
        // The row as written holds 5 more reserved than expected: the other node's.
        let mut committing = StockBatch::default();
        committing.lent_corrections.push(correction(&key, 0, 5));
        assert!(committing.correct_lent_cache(&mut cache, Some(&mut ahead)), "22 of 100 reserved holds");
        assert!(committing.lent_corrections.is_empty());
        let cached =
            cache.gtins.get_mut(&("a".to_owned(), key.gtin.clone())).unwrap().balance_mut(&key).unwrap().balance;
        assert_eq!(cached, balance(100, 22), "the row (18) and the 4 applied ahead");
        let read = ahead.dirty[&("a".to_owned(), key.clone())].read.unwrap().0;
        assert_eq!(read, balance(100, 18), "the writes applied ahead read the row as written");
        assert_eq!(cached.reserved - read.reserved, 4, "their net change is their own");
        // A balance the cache no longer holds (forgotten meanwhile) is read afresh: no correction.
        let mut gone = StockBatch::default();
        let other = StockKey { lot: "GONE".to_owned(), ..key.clone() };
        gone.lent_corrections.push(correction(&other, 1, 1));
        assert!(gone.correct_lent_cache(&mut cache, None));
        let after =
            cache.gtins.get_mut(&("a".to_owned(), key.gtin.clone())).unwrap().balance_mut(&key).unwrap().balance;
        assert_eq!(after, balance(100, 22));
        // The other node reserved 80 of the 82 free as the row was written: with the 4 applied
        // ahead the cache would count 106 reserved of 100. Not so: those writes are applied again.
        let mut oversold = StockBatch::default();
        oversold.lent_corrections.push(correction(&key, 0, 80));
        assert!(!oversold.correct_lent_cache(&mut cache, None), "106 reserved of 100 does not hold");
    }

    /// SQLite's guarded balance update names `on_hand` and `status` only when a balance of the
    /// batch changes them: a batch of reserves and releases leaves the held-at index alone.
    #[test]
    fn a_batch_of_reserves_updates_reserved_alone_on_sqlite() {
        let update = |on_hand_delta: i64, reserved_delta: i64, status: LotStatus| BalanceUpdate {
            tenant: "a".to_owned(),
            key: StockKey {
                gtin: "02".to_owned(),
                location: "x".to_owned(),
                zone: "chill".to_owned(),
                lot: "L1".to_owned(),
            },
            on_hand_delta,
            reserved_delta,
            status,
            read_status: LotStatus::Available,
            expected: Balance { on_hand: 10, reserved: 3 },
        };
        let reserves = [update(0, 3, LotStatus::Available), update(0, -2, LotStatus::Available)];
        assert_eq!(sqlite_balance_set(&reserves), "reserved = reserved + v.v_reserved");
        for other in
            [update(-1, -1, LotStatus::Available), update(5, 0, LotStatus::Available), update(0, 0, LotStatus::Hold)]
        {
            let batch = [update(0, 1, LotStatus::Available), other];
            let set = sqlite_balance_set(&batch);
            assert!(set.contains("on_hand = on_hand + v.v_on_hand") && set.contains("status = v.v_status"), "{set}");
        }
    }

    /// A batch knows which GTINs it changed a balance of, per tenant, whatever GTINs sort beside
    /// them.
    #[test]
    fn a_batch_knows_the_gtins_it_changed() {
        let mut batch = StockBatch::default();
        let key = |gtin: &str, location: &str| StockKey {
            gtin: gtin.to_owned(),
            location: location.to_owned(),
            zone: "chill".to_owned(),
            lot: "L1".to_owned(),
        };
        for (tenant, stock) in
            [("a", key("02", "x")), ("a", key("02", "y")), ("b", key("01", "x")), ("b", key("03", "x"))]
        {
            batch.dirty.insert((tenant.to_owned(), stock), Dirty { read: None, exact: false });
        }
        let changed = |tenant: &str, gtin: &str| batch.changed_gtin(tenant, gtin);
        assert!(changed("a", "02") && changed("b", "01") && changed("b", "03"));
        assert!(!changed("a", "01") && !changed("a", "03") && !changed("b", "02"));
        assert!(!changed("a", "0") && !changed("a", "020") && !changed("c", "02") && !changed("", "02"));
    }

    /// Allocation is offered a lot only on days the stock reads it as available: through its
    /// expiry date (UTC), not after, whatever the destination's day may be.
    #[test]
    fn a_lot_past_its_expiry_date_is_not_offered_to_allocation() {
        let key = StockKey {
            gtin: "08712345100315".into(),
            location: "8712345001018".into(),
            zone: "chill".into(),
            lot: "L".into(),
        };
        let balance = Balance { on_hand: 5, reserved: 0 };
        let lot = CachedBalance::new(key, Some("2026-03-01".into()), LotStatus::Available, balance).unwrap();
        let gtin = Gtin::parse("08712345100315").unwrap();
        let day = |text: &str| text.parse::<jiff::civil::Date>().unwrap();
        assert_eq!(lot.stock_lot(&gtin, 5, day("2026-03-01")).map(|lot| lot.available), Some(5));
        assert!(lot.stock_lot(&gtin, 5, day("2026-03-02")).is_none());
        // As the stock reads it: available on its date, expired the day after.
        assert_eq!(status_as_of(LotStatus::Available, Some("2026-03-01"), "2026-03-01"), LotStatus::Available);
        assert_eq!(status_as_of(LotStatus::Available, Some("2026-03-01"), "2026-03-02"), LotStatus::Expired);
        // 23:30 on 1 March in Los Angeles is 2 March in UTC: the lot is past its date there too.
        assert_eq!(crate::utc_date(1_772_436_600_000), day("2026-03-02"));
    }

    /// SQLite plans the ledger's reads by lot with the lot index, the lots into a zone with their
    /// own index, the lapsed holds from the due reservations, and the SLA's reads of a period's
    /// orders by each tenant's range of `orders_by_placed`, on a fresh database (the seeded statistics, migration 0013), on the
    /// writer's connection (which ran the migrations) and on a reader's. Without them it walked
    /// the tenant's whole journal by primary key (`SEARCH … USING PRIMARY KEY (tenant_id=?)`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_reads_by_lot_use_the_lot_index_not_the_tenants_journal() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        const RESERVES_OF_LOT_PLAN: &[&str] = &[
            "SEARCH i USING PRIMARY KEY (tenant_id=? AND gtin=? AND lot=?)",
            "SEARCH m USING PRIMARY KEY (tenant_id=? AND operation_id=? AND line=?)",
            "SEARCH t USING COVERING INDEX stock_movements_reserved_since (at_unix_ms>?)",
        ];
        let expectations: [(&str, &str, usize, &[&str]); 9] = [
            (
                "a webhook's order transitions",
                ORDER_TRANSITIONS_AFTER_SQL,
                7,
                &["INDEX order_events_by_tx (tenant_id=? AND (tx,"],
            ),
            (
                "a webhook's alarm transitions",
                crate::alarms::ALARM_EVENTS_AFTER_SQL,
                7,
                &["INDEX alarm_events_by_tx (tenant_id=? AND (tx,"],
            ),
            (
                "the due holds of a GTIN",
                DUE_HOLDS_OF_GTIN_SQL,
                3,
                &[
                    "INDEX reservations_due (expires_unix_ms<?)",
                    "SEARCH m USING PRIMARY KEY (tenant_id=? AND operation_id=?)",
                ],
            ),
            ("the recall's reservations", RESERVATIONS_OF_LOT_SQLITE, 3, RESERVES_OF_LOT_PLAN),
            ("a count's reservations", RESERVATIONS_OF_BALANCE_SQLITE, 5, RESERVES_OF_LOT_PLAN),
            (
                "the recall's orders",
                OPERATIONS_TAKING_LOT_SQLITE,
                3,
                &[
                    "INDEX stock_movements_by_lot (tenant_id=? AND gtin=? AND lot=?)",
                    "SEARCH i USING PRIMARY KEY (tenant_id=? AND gtin=? AND lot=?)",
                    "SEARCH t USING COVERING INDEX stock_movements_reserved_since (at_unix_ms>?)",
                ],
            ),
            (
                "the reserves' index built",
                BUILD_RESERVES_INDEX_SQL,
                1,
                &["INDEX stock_movements_reserved_since (at_unix_ms>? AND at_unix_ms<?)"],
            ),
            (
                "the lots into a zone",
                crate::readings::LOTS_INTO_PLACE_SQL,
                4,
                &["INDEX stock_movements_into_place (tenant_id=? AND location_gln=? AND zone=?"],
            ),
            (
                "the lapsed holds",
                LAPSED_UNITS_SQL,
                2,
                &[
                    "INDEX reservations_due (expires_unix_ms<?)",
                    "SEARCH m USING PRIMARY KEY (tenant_id=? AND operation_id=?)",
                ],
            ),
        ];
        // The reserves left behind (`BalancesBehind`): found by time, each read by its key.
        const TAIL_PLAN: &[&str] = &[
            "SEARCH i USING COVERING INDEX stock_movements_reserved_since (at_unix_ms>?)",
            "SEARCH m USING PRIMARY KEY (tenant_id=? AND operation_id=? AND line=?)",
        ];
        let behind: [(&str, String, usize, &[&str]); 2] = [
            ("the reserves left behind, written", SQLITE_CATCH_UP_BALANCES_SQL.to_owned(), 0, TAIL_PLAN),
            (
                "a GTIN's balances with the reserves left behind",
                SQLITE_BALANCES_OF_GTIN_WITH_TAIL.to_owned(),
                2,
                TAIL_PLAN,
            ),
        ];
        // The period's orders, each tenant's range (`orders_by_placed`).
        const PLACED_PLAN: &[&str] =
            &["USING INDEX orders_by_placed (tenant_id=? AND placed_unix_ms>? AND placed_unix_ms<?)"];
        let placed: [(&str, String, usize, &[&str]); 3] = [
            ("a tenant's SLA", sla_sql(true), 4, PLACED_PLAN),
            ("every tenant's SLA", sla_sql(false), 4, PLACED_PLAN),
            ("the orders counted by status", order_counts_sql(), 3, PLACED_PLAN),
        ];
        let expectations: Vec<(&str, String, usize, &[&str])> = expectations
            .into_iter()
            .map(|(what, sql, parameters, wanted)| (what, sql.to_owned(), parameters, wanted))
            .chain(behind)
            .chain(placed)
            .collect();
        for writer in [true, false] {
            let mut conn =
                if writer { store.pools().acquire_writer().await } else { store.pools().acquire_reader().await }
                    .unwrap();
            for (what, sql, parameters, wanted) in &expectations {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
                for _ in 0..*parameters {
                    query = query.bind("x");
                }
                let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
                let plan: Vec<String> =
                    query.fetch_all(&mut **connection).await.unwrap().into_iter().map(|row| row.3).collect();
                for step in wanted.iter() {
                    assert!(
                        plan.iter().any(|line| line.contains(step)),
                        "{what} (writer: {writer}): {step} not in {plan:?}"
                    );
                }
                assert!(
                    !plan.iter().any(|line| line.ends_with(" (tenant_id=?)")),
                    "{what} (writer: {writer}) walks the tenant's rows: {plan:?}"
                );
            }
        }
        store.close().await;
    }

    /// On SQLite a lot's reserves are in the bulk-built `reserves_by_lot` or in the tail after it
    /// (migration 0018). Every read by lot answers what the plain statement over the whole journal
    /// (PostgreSQL's) answers, before and after each build, and the journal pages through all
    /// three parts in its order, each movement once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_reads_by_lot_see_each_reserve_once_before_and_after_the_index_is_built() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        let tenant = TenantId::parse("merchant").unwrap();
        let mut conn = store.pools().acquire_writer().await.unwrap();
        let (mut written, mut written_a) = (0, 0);
        for round in 0..6_i64 {
            let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
            for step in 0..7_i64 {
                let at = 1_000 + round * 100 + step;
                let lot = ["a", "b"][(step % 2) as usize];
                let (kind, operation) = match step % 4 {
                    0 => ("receipt", format!("rcv_{round}_{step}")),
                    1 | 2 => ("reserve", format!("ord_{round}_{step}")),
                    _ => ("ship", format!("ord_{round}_1/shipped")),
                };
                for (line, place) in ["0000000000001", "0000000000002"].iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO stock_movements (tenant_id, operation_id, line, kind, gtin, location_gln, zone, lot, \
                         quantity, reason, at_unix_ms) VALUES ($1, $2, $3, $4, '09506000134352', $5, 'chilled', $6, $7, NULL, $8)",
                    )
                    .bind(tenant.as_str())
                    .bind(&operation)
                    .bind(line as i64)
                    .bind(kind)
                    .bind(*place)
                    .bind(lot)
                    .bind(1 + step)
                    .bind(at)
                    .execute(&mut **connection)
                    .await
                    .unwrap();
                    written += 1;
                    written_a += usize::from(lot == "a");
                }
                if kind == "reserve" && step != 2 {
                    sqlx::query(
                        "INSERT INTO reservations (tenant_id, reservation_id, state, expires_unix_ms, created_unix_ms, \
                         updated_unix_ms) VALUES ($1, $2, 'pending', NULL, $3, $3)",
                    )
                    .bind(tenant.as_str())
                    .bind(&operation)
                    .bind(at)
                    .execute(&mut **connection)
                    .await
                    .unwrap();
                }
            }
            if round % 2 == 1 {
                build_if_due(&mut conn, &WriterCache::default(), 0, 1_000 + round * 100 + 50).await;
            }
            let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
            let (indexed,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM reserves_by_lot").fetch_one(&mut **connection).await.unwrap();
            assert_eq!(indexed, [0, 16, 16, 32, 32, 48][round as usize], "round {round}: the reserves built so far");
            for lot in ["a", "b", "c"] {
                for (what, plain, sqlite, by_balance) in [
                    ("reservations of lot", RESERVATIONS_OF_LOT_SQL, RESERVATIONS_OF_LOT_SQLITE, false),
                    ("reservations of balance", RESERVATIONS_OF_BALANCE_SQL, RESERVATIONS_OF_BALANCE_SQLITE, true),
                    ("operations taking lot", OPERATIONS_TAKING_LOT_SQL, OPERATIONS_TAKING_LOT_SQLITE, false),
                ] {
                    let mut answers = Vec::new();
                    for sql in [plain, sqlite] {
                        let mut query = sqlx::query(sql).bind(tenant.as_str()).bind("09506000134352").bind(lot);
                        if by_balance {
                            query = query.bind("0000000000002").bind("chilled");
                        }
                        let mut rows: Vec<String> = query
                            .fetch_all(&mut **connection)
                            .await
                            .unwrap()
                            .iter()
                            .map(|row| {
                                use sqlx::Row;
                                (0..row.len())
                                    .map(|column| {
                                        row.try_get::<String, _>(column)
                                            .or_else(|_| row.try_get::<i64, _>(column).map(|n| n.to_string()))
                                            .unwrap()
                                    })
                                    .collect::<Vec<_>>()
                                    .join("|")
                            })
                            .collect();
                        rows.sort();
                        answers.push(rows);
                    }
                    assert_eq!(answers[0], answers[1], "round {round}, lot {lot}: {what}");
                    assert!(lot == "c" || !answers[0].is_empty(), "round {round}, lot {lot}: {what} found nothing");
                }
            }
        }
        drop(conn);
        // The journal in pages of 3, by GTIN and by lot: each movement once, in the journal's order.
        for lot in [None, Some("a")] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store.tenant(&tenant).movements("09506000134352", lot, after.as_ref(), 3).await.unwrap();
                if page.is_empty() {
                    break;
                }
                after = page.last().map(|movement| movement.position.clone());
                seen.extend(page.into_iter().map(|movement| movement.position));
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(seen, sorted, "lot {lot:?}: in order, each once");
            assert_eq!(seen.len(), if lot.is_some() { written_a } else { written }, "lot {lot:?}");
        }
        store.close().await;
    }

    /// The writer extends the reserves' lot index once the interval has passed or, within it, once
    /// enough reserves wait; not otherwise.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reserves_index_is_built_after_its_interval_or_its_count() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        let mut conn = store.pools().acquire_writer().await.unwrap();
        let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
        sqlx::query(
            "INSERT INTO stock_movements (tenant_id, operation_id, line, kind, gtin, location_gln, zone, lot, quantity, \
             reason, at_unix_ms) VALUES ('merchant', 'ord_1', 0, 'reserve', '09506000134352', '0000000000001', 'chilled', \
             'a', 1, NULL, 2000)",
        )
        .execute(&mut **connection)
        .await
        .unwrap();
        fn sqlite(conn: &mut Conn) -> &mut sqlx::SqliteConnection {
            let Conn::Sqlite(connection) = conn else { unreachable!("a SQLite store") };
            connection
        }
        async fn through(conn: &mut Conn) -> (i64, i64) {
            let Conn::Sqlite(connection) = conn else { unreachable!("a SQLite store") };
            sqlx::query_as(
                "SELECT (SELECT through_unix_ms FROM reserves_indexed), (SELECT COUNT(*) FROM reserves_by_lot)",
            )
            .fetch_one(&mut **connection)
            .await
            .unwrap()
        }
        let mut cache = WriterCache { reserves_indexed_at: Some(Instant::now()), ..WriterCache::default() };
        assert!(!build_if_due(&mut conn, &cache, 1, 3_000).await);
        assert_eq!(through(&mut conn).await, (0, 0), "within the interval, one reserve waiting");
        cache.reserves_committed(1, false);
        // A batch that would reach the count but rolls back leaves the count as it was.
        assert!(build_if_due(&mut conn, &cache, RESERVES_UNINDEXED_MAX, 2_500).await);
        assert_eq!(cache.reserves_unindexed, 1, "counted only once committed");
        sqlx::query("DELETE FROM reserves_by_lot").execute(&mut *sqlite(&mut conn)).await.unwrap();
        sqlx::query("UPDATE reserves_indexed SET through_unix_ms = 0").execute(&mut *sqlite(&mut conn)).await.unwrap();
        assert!(!build_if_due(&mut conn, &cache, RESERVES_UNINDEXED_MAX - 2, 3_000).await);
        assert!(build_if_due(&mut conn, &cache, RESERVES_UNINDEXED_MAX - 1, 3_000).await);
        assert_eq!(through(&mut conn).await, (3_000, 1), "the count reached");
        cache.reserves_committed(RESERVES_UNINDEXED_MAX - 1, true);
        assert_eq!(cache.reserves_unindexed, 0);
        cache.reserves_indexed_at = Instant::now().checked_sub(RESERVES_INDEX_INTERVAL);
        assert!(build_if_due(&mut conn, &cache, 0, 4_000).await);
        assert_eq!(through(&mut conn).await, (4_000, 1), "the interval passed");
        drop(conn);
        store.close().await;
    }

    /// A SQLite store whose tenant `merchant` holds 10 units of each of `lots` of one GTIN at one
    /// place, with the writer's clock at `last_batch_unix_ms` and the balances' mark at
    /// `through_unix_ms`. Once the store's own writer took its first batch time (its catch-up of
    /// the balances at its start), so that it no longer writes the file the test writes.
    async fn store_with_balances(
        lots: &[&str],
        last_batch_unix_ms: i64,
        through_unix_ms: i64,
    ) -> (scratchdb::SqliteFile, crate::Store) {
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        let mut started = false;
        for _ in 0..500 {
            let mut conn = store.pools().acquire_reader().await.unwrap();
            let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
            let (last,): (i64,) = sqlx::query_as("SELECT last_batch_unix_ms FROM writer_clock")
                .fetch_one(&mut **connection)
                .await
                .unwrap();
            started = last > 0;
            if started {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(started, "the writer took no batch time");
        let mut conn = store.pools().acquire_writer().await.unwrap();
        let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
        let rows: Vec<String> = lots
            .iter()
            .map(|lot| {
                format!(
                    "('merchant', '09506000134352', '8712345000004', 'chill', '{lot}', NULL, 'available', 10, 0, 0)"
                )
            })
            .collect();
        for sql in [
            "INSERT INTO tenants (tenant_id, name, created_unix_ms) VALUES ('merchant', 'Merchant', 0)".to_owned(),
            format!(
                "INSERT INTO stock_balances (tenant_id, gtin, location_gln, zone, lot, expiry_date, status, on_hand, \
                 reserved, updated_unix_ms) VALUES {}",
                rows.join(", ")
            ),
            format!(
                "UPDATE writer_clock SET last_batch_unix_ms = {last_batch_unix_ms}, \
                 balances_through_unix_ms = {through_unix_ms}"
            ),
        ] {
            sqlx::query(&sql).execute(&mut **connection).await.unwrap();
        }
        drop(conn);
        (file, store)
    }

    /// Balances are left behind only by a writer that knows which, within the time and counts.
    #[test]
    fn balances_are_left_behind_within_their_limits() {
        let mut behind = BalancesBehind::default();
        assert!(!behind.may_defer() && !behind.is_clear(), "a writer just started knows nothing");
        behind.written();
        assert!(behind.may_defer() && behind.is_clear());
        behind.since = Instant::now().checked_sub(BALANCES_BEHIND_MAX);
        assert!(!behind.may_defer(), "the oldest left behind for the longest allowed");
        behind.since = Some(Instant::now());
        behind.reserves = BALANCES_BEHIND_RESERVES_MAX;
        assert!(!behind.may_defer(), "as many reserves as allowed");
        behind.reserves = 0;
        let row = (Balance { on_hand: 1, reserved: 0 }, LotStatus::Available);
        for n in 0..BALANCES_BEHIND_ROWS_MAX {
            let key = StockKey { gtin: "g".into(), location: "l".into(), zone: "z".into(), lot: n.to_string() };
            behind.rows.insert(("t".into(), key), row);
        }
        assert!(!behind.may_defer(), "as many rows as allowed");
        behind.written();
        assert!(behind.may_defer() && behind.is_clear());
    }

    /// On SQLite a batch that only reserves may leave its balances behind: the table keeps the
    /// rows as they were, every read adds the reserves after the mark, and the next batch that
    /// writes balances writes them with its own, each once. After a crash (the writer knowing
    /// nothing), the tail is written from the movements.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reserves_left_behind_are_read_with_their_balances_and_written_once() {
        let (_file, store) = store_with_balances(&["a", "b"], 1000, 1000).await;
        const GTIN: &str = "09506000134352";
        let tenant = TenantId::parse("merchant").unwrap();
        let mut conn = store.pools().acquire_writer().await.unwrap();
        fn sqlite(conn: &mut Conn) -> &mut sqlx::SqliteConnection {
            let Conn::Sqlite(connection) = conn else { unreachable!("a SQLite store") };
            connection
        }
        let key = |lot: &str| StockKey {
            gtin: GTIN.to_owned(),
            location: "8712345000004".to_owned(),
            zone: "chill".to_owned(),
            lot: lot.to_owned(),
        };
        // What the table holds, and what a reader reads: (lot, reserved) each.
        async fn table(conn: &mut Conn) -> Vec<(String, i64)> {
            sqlx::query_as("SELECT lot, reserved FROM stock_balances ORDER BY lot")
                .fetch_all(&mut *sqlite(conn))
                .await
                .unwrap()
        }
        // The stock as listed (lot, reserved, available), and the balances as the writer loads
        // them (lot, reserved) with the reserves left behind and without.
        let read = |store: &crate::Store| {
            let tenant = tenant.clone();
            let store = store.clone();
            async move {
                let filter = StockFilter { gtin: Some(GTIN.to_owned()), ..StockFilter::default() };
                let listed: Vec<(String, i64, i64)> = store
                    .tenant(&tenant)
                    .stock(&filter, None, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|balance| (balance.key.lot, balance.reserved, balance.available))
                    .collect();
                let mut reader = store.pools().acquire_reader().await.unwrap();
                let mut loaded: Vec<Vec<(String, i64)>> = Vec::new();
                for lagging in [true, false] {
                    let entry = load_gtin(&mut reader, "merchant", GTIN, lagging).await.unwrap();
                    loaded.push(
                        entry.balances.iter().map(|cached| (cached.key.lot.clone(), cached.balance.reserved)).collect(),
                    );
                }
                (listed, loaded)
            }
        };
        let owned = |rows: &[(&str, i64)]| rows.iter().map(|(lot, n)| ((*lot).to_owned(), *n)).collect::<Vec<_>>();
        let mut cache = WriterCache::default();
        cache.balances_behind.written();
        async fn reserve(
            batch: &mut StockBatch,
            cache: &mut WriterCache,
            conn: &mut Conn,
            operation: &str,
            key: &StockKey,
            kind: MovementKind,
            units: i64,
        ) {
            let changed =
                batch.change(cache, conn, "merchant", operation, 0, kind, key, units, None, None).await.unwrap();
            assert!(changed.is_ok(), "{changed:?}");
        }
        // Two busy batches of orders: the table stays as it was; readers add the tail.
        let mut batch = StockBatch { deferring: true, ..StockBatch::default() };
        reserve(&mut batch, &mut cache, &mut conn, "ord_1", &key("a"), MovementKind::Reserve, 4).await;
        assert!(matches!(batch.flush(&mut cache, &mut conn, 2000).await.unwrap(), Ok(())));
        let mut batch = StockBatch { deferring: true, ..StockBatch::default() };
        reserve(&mut batch, &mut cache, &mut conn, "ord_2", &key("a"), MovementKind::Reserve, 2).await;
        reserve(&mut batch, &mut cache, &mut conn, "ord_3", &key("b"), MovementKind::Reserve, 1).await;
        assert!(matches!(batch.flush(&mut cache, &mut conn, 3000).await.unwrap(), Ok(())));
        assert_eq!(table(&mut conn).await, owned(&[("a", 0), ("b", 0)]), "left behind");
        assert_eq!(cache.balances_behind.rows.len(), 2);
        assert!(!cache.balances_behind.is_clear() && cache.balances_behind.may_defer());
        let (listed, loaded) = read(&store).await;
        assert_eq!(listed, vec![("a".to_owned(), 6, 4), ("b".to_owned(), 1, 9)]);
        assert_eq!(loaded, vec![owned(&[("a", 6), ("b", 1)]), owned(&[("a", 0), ("b", 0)])]);
        // A batch that releases is not left behind, even when it may be: its time moves the mark,
        // and the balances left behind are written with its own change, each once.
        let mut batch = StockBatch { deferring: true, ..StockBatch::default() };
        reserve(&mut batch, &mut cache, &mut conn, "void_3", &key("b"), MovementKind::Release, 1).await;
        assert!(matches!(batch.flush(&mut cache, &mut conn, 4000).await.unwrap(), Ok(())));
        assert_eq!(table(&mut conn).await, owned(&[("a", 6), ("b", 0)]));
        assert!(cache.balances_behind.is_clear());
        let (through,): (i64,) = sqlx::query_as("SELECT balances_through_unix_ms FROM writer_clock")
            .fetch_one(&mut *sqlite(&mut conn))
            .await
            .unwrap();
        assert_eq!(through, 4000);
        let (listed, loaded) = read(&store).await;
        assert_eq!(listed, vec![("a".to_owned(), 6, 4), ("b".to_owned(), 0, 10)]);
        assert_eq!(loaded[0], loaded[1], "nothing left behind");
        // A crash after a batch left reserves behind: a writer knowing nothing writes them from the
        // movements before its batch takes its time.
        let mut batch = StockBatch { deferring: true, ..StockBatch::default() };
        reserve(&mut batch, &mut cache, &mut conn, "ord_4", &key("a"), MovementKind::Reserve, 3).await;
        assert!(matches!(batch.flush(&mut cache, &mut conn, 5000).await.unwrap(), Ok(())));
        let (listed, _) = read(&store).await;
        assert_eq!(listed[0], ("a".to_owned(), 9, 1), "read with the tail");
        assert_eq!(table(&mut conn).await, owned(&[("a", 6), ("b", 0)]));
        catch_up_balances(&mut conn).await.unwrap();
        assert_eq!(table(&mut conn).await, owned(&[("a", 9), ("b", 0)]), "the tail written");
        drop(conn);
        store.close().await;
    }

    /// Another process writing the SQLite file (an admin command of the CLI) writes the reserves
    /// the server's writer left behind (its writer catches up at its start); the server's writer
    /// then forgets what it left behind instead of writing it again. A writer that catches up
    /// moves the mark past the tail even when its batch then leaves reserves behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reserves_left_behind_are_written_once_when_another_process_writes() {
        let (_file, store) = store_with_balances(&["a"], 2000, 1000).await;
        const GTIN: &str = "09506000134352";
        let counters = crate::writer::Counters::default();
        async fn scalar(store: &crate::Store, sql: &str) -> i64 {
            let mut conn = store.pools().acquire_reader().await.unwrap();
            let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
            let (value,): (i64,) = sqlx::query_as(sql).fetch_one(&mut **connection).await.unwrap();
            value
        }
        let key = StockKey {
            gtin: GTIN.to_owned(),
            location: "8712345000004".to_owned(),
            zone: "chill".to_owned(),
            lot: "a".to_owned(),
        };
        // The server's writer: a busy batch of orders leaves 4 units behind.
        let mut server = WriterCache::default();
        {
            let mut conn = store.pools().acquire_writer().await.unwrap();
            server.balances_behind.written();
            server.batch_time(2000);
            let mut batch = StockBatch { deferring: true, ..StockBatch::default() };
            let changed = batch
                .change(&mut server, &mut conn, "merchant", "ord_1", 0, MovementKind::Reserve, &key, 4, None, None)
                .await
                .unwrap();
            assert!(changed.is_ok(), "{changed:?}");
            assert!(matches!(batch.flush(&mut server, &mut conn, 2000).await.unwrap(), Ok(())));
        }
        assert_eq!(scalar(&store, "SELECT reserved FROM stock_balances").await, 0, "left behind");
        // Another process's writer, knowing nothing, writes them (and moves the mark past them).
        let mut other = WriterCache::default();
        crate::writer::apply_in_transaction(store.pools(), &[], &mut other, &counters, false).await.unwrap();
        assert_eq!(scalar(&store, "SELECT reserved FROM stock_balances").await, 4);
        // The server's writer sees another process wrote: it does not write its 4 units again.
        crate::writer::apply_in_transaction(store.pools(), &[], &mut server, &counters, false).await.unwrap();
        assert_eq!(scalar(&store, "SELECT reserved FROM stock_balances").await, 4, "written once");
        assert!(server.balances_behind.is_clear());
        // A crash left a reserve behind; a writer knowing nothing catches up, then its busy batch of
        // orders may leave its own behind: the mark has moved past the tail it wrote, so a read does
        // not add that tail again.
        {
            let mut conn = store.pools().acquire_writer().await.unwrap();
            let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
            let last = scalar(&store, "SELECT last_batch_unix_ms FROM writer_clock").await;
            sqlx::query(
                "INSERT INTO stock_movements (tenant_id, operation_id, line, kind, gtin, location_gln, zone, lot, \
                 quantity, reason, at_unix_ms) VALUES ('merchant', 'ord_2', 0, 'reserve', '09506000134352', \
                 '8712345000004', 'chill', 'a', 2, NULL, $1)",
            )
            .bind(last)
            .execute(&mut **connection)
            .await
            .unwrap();
            sqlx::query("UPDATE writer_clock SET balances_through_unix_ms = $1 - 1")
                .bind(last)
                .execute(&mut **connection)
                .await
                .unwrap();
        }
        let read = |store: &crate::Store| {
            let store = store.clone();
            async move {
                let filter = StockFilter { gtin: Some(GTIN.to_owned()), ..StockFilter::default() };
                let tenant = TenantId::parse("merchant").unwrap();
                store.tenant(&tenant).stock(&filter, None, 10).await.unwrap()[0].reserved
            }
        };
        assert_eq!(read(&store).await, 6, "the tail added to the row");
        let mut conn = store.pools().acquire_writer().await.unwrap();
        conn.begin().await.unwrap();
        catch_up_balances(&mut conn).await.unwrap();
        conn.commit().await.unwrap();
        drop(conn);
        assert_eq!(scalar(&store, "SELECT reserved FROM stock_balances").await, 6);
        assert_eq!(read(&store).await, 6, "the tail written and not added again");
        store.close().await;
    }

    /// A refresh within a batch that changed some of a GTIN's balances keeps those as the batch
    /// left them, takes every other balance as its row is now (another API node changed it), and
    /// adds the lots received meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refresh_keeps_the_batchs_own_changes_and_takes_every_other_row_afresh() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        let mut conn = store.pools().acquire_writer().await.unwrap();
        let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
        const GTIN: &str = "09506000134352";
        for sql in [
            "INSERT INTO tenants (tenant_id, name, created_unix_ms) VALUES ('merchant', 'Merchant', 0)",
            "INSERT INTO stock_balances (tenant_id, gtin, location_gln, zone, lot, expiry_date, status, on_hand, \
             reserved, updated_unix_ms) VALUES ('merchant', '09506000134352', '8712345000004', 'chill', 'a', NULL, \
             'available', 10, 0, 0), ('merchant', '09506000134352', '8712345000004', 'chill', 'b', NULL, \
             'available', 10, 0, 0)",
        ] {
            sqlx::query(sql).execute(&mut **connection).await.unwrap();
        }
        let key = |lot: &str| StockKey {
            gtin: GTIN.to_owned(),
            location: "8712345000004".to_owned(),
            zone: "chill".to_owned(),
            lot: lot.to_owned(),
        };
        let mut cache = WriterCache::default();
        let mut batch = StockBatch::default();
        let changed = batch
            .change(&mut cache, &mut conn, "merchant", "ord_1", 0, MovementKind::Reserve, &key("a"), 4, None, None)
            .await
            .unwrap();
        assert!(changed.is_ok(), "{changed:?}");
        // Another node: lot b shipped 3 units, lot c received.
        let Conn::Sqlite(connection) = &mut conn else { unreachable!("a SQLite store") };
        for sql in [
            "UPDATE stock_balances SET on_hand = 7 WHERE lot = 'b'",
            "INSERT INTO stock_balances (tenant_id, gtin, location_gln, zone, lot, expiry_date, status, on_hand, \
             reserved, updated_unix_ms) VALUES ('merchant', '09506000134352', '8712345000004', 'chill', 'c', NULL, \
             'available', 5, 0, 0)",
        ] {
            sqlx::query(sql).execute(&mut **connection).await.unwrap();
        }
        batch.refresh(&mut cache, &mut conn, "merchant", GTIN).await.unwrap();
        let entry = cache.gtins.get(&("merchant".to_owned(), GTIN.to_owned())).unwrap();
        let held: Vec<(&str, i64, i64)> = entry
            .balances
            .iter()
            .map(|cached| (cached.key.lot.as_str(), cached.balance.on_hand, cached.balance.reserved))
            .collect();
        assert_eq!(held, [("a", 10, 4), ("b", 7, 0), ("c", 5, 0)]);
        drop(conn);
        store.close().await;
    }

    #[test]
    fn batch_times_increase_when_the_clock_stands_still_or_steps_back() {
        let mut cache = WriterCache::default();
        assert_eq!(cache.batch_time(1_000), 1_000);
        assert_eq!(cache.batch_time(1_000), 1_001, "two batches in one millisecond");
        assert_eq!(cache.batch_time(900), 1_002, "the clock stepped back");
        assert_eq!(cache.batch_time(5_000), 5_000, "the clock moved on");
        cache.clear();
        assert_eq!(cache.batch_time(5_000), 5_001, "a rollback keeps the clock");
    }

    #[test]
    fn a_batch_clock_ahead_of_the_wall_clock_is_reported_once_a_minute() {
        let mut cache = WriterCache::default();
        let start = Instant::now();
        assert_eq!(cache.clock_lead_to_report(10_999, 10_000, start), None, "under a second ahead");
        assert_eq!(cache.clock_lead_to_report(11_000, 10_000, start), Some(1_000));
        let later = start + Duration::from_secs(59);
        assert_eq!(cache.clock_lead_to_report(70_000, 10_000, later), None, "reported a minute ago");
        let minute = start + CLOCK_AHEAD_WARN_INTERVAL;
        assert_eq!(cache.clock_lead_to_report(70_000, 10_000, minute), Some(60_000));
        assert_eq!(cache.clock_lead_to_report(70_000, 69_500, minute + CLOCK_AHEAD_WARN_INTERVAL), None, "caught up");
    }

    fn row(line: i64, lot: &str, quantity: i64, kind: MovementKind) -> ReserveRow {
        ReserveRow {
            line,
            gtin: "08712345100015".into(),
            location_gln: "8712345001018".into(),
            zone: "chill".into(),
            lot: lot.into(),
            quantity,
            kind: kind.name().into(),
        }
    }

    #[test]
    fn each_pick_restocks_at_most_what_it_shipped_even_on_a_shared_balance() {
        use MovementKind::{Release, Reserve, Ship};
        // Two lines of one product took the same lot: 5 and 3 units reserved. The first shipped
        // all 5, the second was short-picked to nothing (released whole), then a third pick of
        // another lot shipped 2 of 4.
        let picks = [row(0, "A", 5, Reserve), row(1, "A", 3, Reserve), row(2, "B", 4, Reserve)];
        let posted = [row(0, "A", 5, Ship), row(1, "A", 3, Release), row(2, "B", 2, Ship), row(3, "B", 2, Release)];
        let shipped = shipped_per_pick(&picks, &posted).unwrap();
        assert_eq!(shipped, [5, 0, 2]);
        let state = ReservationState::Posted;
        assert_eq!(stock::check_restock(state, &shipped, &[5, 0, 2]), Ok(()));
        // Pooled by balance the second pick's 5 would fit; per pick it does not.
        assert_eq!(
            stock::check_restock(state, &shipped, &[0, 5, 0]),
            Err(stock::ReservationError::OverRestocked { line: 1, restocked: 5, shipped: 0 })
        );
        assert!(stock::check_restock(state, &shipped, &[1, 1]).is_err(), "one number per pick");
        // A posting that does not add up to the reservation is corrupt, not guessed at.
        assert!(shipped_per_pick(&picks, &posted[..3]).is_err());
        assert!(shipped_per_pick(&picks, &[row(0, "B", 5, Ship)]).is_err());
    }
}
