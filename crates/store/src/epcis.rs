//! The EPCIS repository's storage: captured events with their index rows, capture jobs, the
//! namespace prefixes and master data of captured documents.
//!
//! The store knows no EPCIS semantics: the caller (the server's capture function) hands it
//! events already validated, normalised and hashed, as [`EventRecord`]s, and queries it with an
//! [`EventFilter`] that selects a superset of the answer, which the caller then filters exactly.
//!
//! Visibility: a tenant sees the events it captured, the network operator's events that name a
//! GTIN it holds, and other tenants' events that name a GTIN it holds under a GS1 company prefix
//! the operator verified as its own (`gtin_owners.verified`): a brand follows its goods through
//! its partners' hands.

use std::collections::{BTreeMap, HashMap, HashSet};

use network::TenantId;

use crate::backend::{Conn, on_conn, on_pool};
use crate::log::LogBatch;
use crate::writer::{Arg, WriteError, execute, exists};
use crate::{Store, StoreError, TenantStore};

/// The most events one capture stores.
pub const CAPTURE_EVENTS_MAX: usize = 10_000;
/// The most records of one eventID read back (tenants may each hold one, plus declarations).
pub const EVENT_RECORDS_MAX: u32 = 100;
/// The most candidate rows one query reads before it answers with what it found so far.
pub const QUERY_SCAN_ROWS_MAX: u32 = 20_000;

/// An identifier an event names: (role, identifier, GTIN).
pub type IdentifierRow = (String, String, Option<String>);

/// One event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The event's own eventID, or its hash ID when it had none.
    pub event_id: String,
    /// The CBV 2.0 event hash ID: capturing an event with the same hash again stores nothing.
    pub hash_id: String,
    pub event_type: String,
    pub action: Option<String>,
    pub biz_step: Option<String>,
    pub disposition: Option<String>,
    pub read_point: Option<String>,
    pub biz_location: Option<String>,
    pub event_time_ms: i64,
    pub error_declared: bool,
    /// (role, identifier, GTIN) for every identifier the event names.
    pub identifiers: Vec<IdentifierRow>,
    /// The event as JSON-LD with its own `@context`, without `recordTime` (the store sets it).
    pub body: String,
    /// The event's transparency-log entry (its commitment) and the secret seed it derives from.
    pub log_entry: Vec<u8>,
    pub commitment_seed: [u8; 32],
}

impl EventRecord {
    /// What makes a capture of this record idempotent: the event hash ID, or for an event with
    /// an errorDeclaration (which the hash leaves out) the hash ID and the digest of the record.
    pub fn record_key(&self) -> String {
        use sha2::Digest;
        match self.error_declared {
            false => self.hash_id.clone(),
            true => format!("{}#declared-{}", self.hash_id, hex::encode(sha2::Sha256::digest(self.body.as_bytes()))),
        }
    }
}

/// A master-data element of `epcisHeader.epcisMasterData`.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterDataRecord {
    pub vocabulary_type: String,
    pub element_id: String,
    /// The attributes as JSON.
    pub attributes: String,
    pub children: Vec<String>,
}

/// One capture job: what to store and how to treat events that cannot be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub capture_id: String,
    pub events: Vec<EventRecord>,
    /// Errors found before storing (validation), kept in the job: (JSON pointer, detail).
    pub errors: Vec<(String, String)>,
    /// `rollback` (all or nothing) when true; `proceed` (store what can be stored) when false.
    pub all_or_nothing: bool,
    /// The `GS1-Capture-Error-Behaviour` asked, as the job reports it.
    pub error_behaviour: String,
    pub namespaces: Vec<(String, String)>,
    pub master_data: Vec<MasterDataRecord>,
    /// GS1 company prefixes of the EPC URNs in the captured text.
    pub company_prefixes: Vec<String>,
    /// What the platform's own step assumed about the stored events when it built these events
    /// (none for a capture sent to `/capture`); the writer checks them in the capture's
    /// transaction, see [`Premise`].
    pub premises: Vec<Premise>,
}

/// A fact about the stored events that a step's capture was built on. The handler reads it
/// before the write; the writer decides it again in the capture's transaction, after taking the
/// transparency log (which serialises captures on every API node, see `LogBatch::lock`), so two
/// concurrent steps cannot both build on the same absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Premise {
    /// No stored event names `identifier` as one object (`epc`, `childEPC`, `parentID`,
    /// `inputEPC`, `outputEPC`): an SSCC names one pallet for good. Otherwise the write is
    /// refused as a `conflict` at `field` (a JSON pointer of the request), saying `detail`.
    Unnamed { identifier: String, field: String, detail: String },
    /// The capture's event at index `event` commissions the class `identifier` (a lot entering
    /// the network): it is left out if a stored event names the class already, so a lot is
    /// commissioned once however many receipts of it run at the same time.
    FirstOfClass { identifier: String, event: usize },
}

/// A capture job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureJob {
    pub capture_id: String,
    pub created_unix_ms: i64,
    pub finished_unix_ms: Option<i64>,
    pub error_behaviour: String,
    pub success: bool,
    pub events_captured: i64,
    pub events_already_captured: i64,
    /// (JSON pointer, detail).
    pub errors: Vec<(String, String)>,
}

/// The statement that finds an event naming an identifier, as a class or as one object.
fn named_sql(as_class: bool) -> &'static str {
    if as_class {
        "SELECT event_seq FROM epcis_event_identifiers WHERE identifier = $1 \
         AND role IN ('epcClass', 'childEPCClass', 'inputEPCClass', 'outputEPCClass') LIMIT 1"
    } else {
        "SELECT event_seq FROM epcis_event_identifiers WHERE identifier = $1 \
         AND role IN ('epc', 'childEPC', 'parentID', 'inputEPC', 'outputEPC') LIMIT 1"
    }
}

/// Decides a step's premises in the writer's transaction (see [`Premise`]): answers the capture
/// to store (without the commissionings of classes named meanwhile), or the refusal.
pub(crate) async fn decide_premises<'c>(
    conn: &mut Conn,
    capture: &'c Capture,
    log: &mut LogBatch,
) -> Result<Result<std::borrow::Cow<'c, Capture>, WriteError>, sqlx::Error> {
    if capture.premises.is_empty() {
        return Ok(Ok(std::borrow::Cow::Borrowed(capture)));
    }
    // Another node's capture naming the identifier commits before this reads, or waits for
    // this one to commit.
    log.lock(conn).await?;
    let mut left_out = HashSet::new();
    for premise in &capture.premises {
        match premise {
            Premise::Unnamed { identifier, field, detail } => {
                if exists(conn, named_sql(false), &[Arg::Text(identifier)]).await? {
                    return Ok(Err(WriteError::Refused {
                        code: "conflict",
                        detail: format!("{field}: {detail}"),
                        errors: vec![(field.clone(), detail.clone())],
                    }));
                }
            }
            Premise::FirstOfClass { identifier, event } => {
                if exists(conn, named_sql(true), &[Arg::Text(identifier)]).await? {
                    left_out.insert(*event);
                }
            }
        }
    }
    if left_out.is_empty() {
        return Ok(Ok(std::borrow::Cow::Borrowed(capture)));
    }
    let mut kept = capture.clone();
    kept.events = (capture.events.iter().enumerate())
        .filter(|(index, _)| !left_out.contains(index))
        .map(|(_, event)| event.clone())
        .collect();
    Ok(Ok(std::borrow::Cow::Owned(kept)))
}

/// Applies a capture in the writer's transaction; answers how many events were new.
pub(crate) async fn apply_capture(
    conn: &mut Conn,
    tenant_id: &TenantId,
    capture: &Capture,
    now_unix_ms: i64,
    log: &mut LogBatch,
) -> Result<Result<usize, WriteError>, sqlx::Error> {
    let tenant = tenant_id.as_str();
    if capture.events.len() > CAPTURE_EVENTS_MAX {
        return Ok(Err(WriteError::Limit(format!("a capture stores at most {CAPTURE_EVENTS_MAX} events"))));
    }
    if exists(
        conn,
        "SELECT 1 FROM epcis_captures WHERE tenant_id = $1 AND capture_id = $2",
        &[Arg::Text(tenant), Arg::Text(&capture.capture_id)],
    )
    .await?
    {
        return Ok(Err(WriteError::Conflict(format!("capture {}", capture.capture_id))));
    }
    // Taking the log first serialises captures across API nodes (PostgreSQL: a row lock), so the
    // sequence read next cannot race.
    log.lock(conn).await?;
    let (last_seq,): (i64,) = on_conn!(conn, connection => {
        sqlx::query_as("SELECT COALESCE(MAX(event_seq), 0) FROM epcis_events").fetch_one(&mut *connection).await
    })?;
    let mut errors = capture.errors.clone();
    let mut already = 0i64;
    let mut refused = Vec::new();
    // What is stored already, read in a few statements rather than two per event.
    let keys: Vec<String> = capture.events.iter().map(EventRecord::record_key).collect();
    let stored_keys: HashSet<String> =
        select_in(conn, "record_key", "record_key", tenant, &keys).await?.into_iter().collect();
    let ids: Vec<String> = capture.events.iter().map(|event| event.event_id.clone()).collect();
    let mut hashes_by_id: HashMap<String, Vec<String>> = HashMap::new();
    for (event_id, hash_id) in select_pairs_in(conn, tenant, &ids).await? {
        hashes_by_id.entry(event_id).or_default().push(hash_id);
    }
    let mut seen_keys = HashSet::new();
    let mut new_events = Vec::with_capacity(capture.events.len());
    for (index, (event, record_key)) in capture.events.iter().zip(&keys).enumerate() {
        if stored_keys.contains(record_key) || !seen_keys.insert(record_key.as_str()) {
            already += 1;
            continue;
        }
        // An eventID names one event: a second record under it must be the same event (same
        // hash) declared erroneous.
        let earlier = hashes_by_id.entry(event.event_id.clone()).or_default();
        if !earlier.is_empty() && (!event.error_declared || earlier.iter().any(|hash| *hash != event.hash_id)) {
            refused.push((
                format!("/epcisBody/eventList/{index}/eventID"),
                format!(
                    "eventID {} was captured before for a different event (a later record under one eventID must be the same event with an errorDeclaration)",
                    event.event_id
                ),
            ));
            continue;
        }
        earlier.push(event.hash_id.clone());
        new_events.push((event, record_key.as_str()));
    }
    let captured = new_events.len();
    if refused.is_empty() || !capture.all_or_nothing {
        let first_log_index = log.next_index();
        insert_events(conn, tenant, &new_events, last_seq + 1, first_log_index, &capture.capture_id, now_unix_ms)
            .await?;
        let entries: Vec<(&[u8], i64)> = new_events
            .iter()
            .enumerate()
            .map(|(offset, (event, _))| (event.log_entry.as_slice(), last_seq + 1 + offset as i64))
            .collect();
        log.append(conn, tenant, &entries).await?;
    }
    if !refused.is_empty() && capture.all_or_nothing {
        // The problem reads "<this> already exists".
        let (pointer, _) = &refused[0];
        let event_id = capture
            .events
            .iter()
            .enumerate()
            .find(|(index, _)| pointer.starts_with(&format!("/epcisBody/eventList/{index}/")))
            .map(|(_, event)| event.event_id.as_str())
            .unwrap_or("");
        return Ok(Err(WriteError::Conflict(format!(
            "a different event under eventID {event_id} (at {pointer}; {} event(s) of the document refused, none stored)",
            refused.len()
        ))));
    }
    errors.extend(refused);
    for prefix in &capture.company_prefixes {
        execute(
            conn,
            "INSERT INTO epc_company_prefixes (company_prefix, created_unix_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[Arg::Text(prefix), Arg::Integer(now_unix_ms)],
        )
        .await?;
    }
    for (prefix, iri) in &capture.namespaces {
        execute(
            conn,
            "INSERT INTO epcis_namespaces (tenant_id, prefix, iri) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[Arg::Text(tenant), Arg::Text(prefix), Arg::Text(iri)],
        )
        .await?;
    }
    for element in &capture.master_data {
        let children = serde_json::to_string(&element.children).unwrap_or_else(|_| "[]".into());
        execute(
            conn,
            "INSERT INTO epcis_master_data (tenant_id, vocabulary_type, element_id, attributes, children, updated_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, vocabulary_type, element_id) DO UPDATE SET \
             attributes = excluded.attributes, children = excluded.children, updated_unix_ms = excluded.updated_unix_ms",
            &[
                Arg::Text(tenant),
                Arg::Text(&element.vocabulary_type),
                Arg::Text(&element.element_id),
                Arg::Text(&element.attributes),
                Arg::Text(&children),
                Arg::Integer(now_unix_ms),
            ],
        )
        .await?;
    }
    let errors_json = serde_json::to_string(
        &errors
            .iter()
            .map(|(pointer, detail)| serde_json::json!({"pointer": pointer, "detail": detail}))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into());
    execute(
        conn,
        "INSERT INTO epcis_captures (tenant_id, capture_id, created_unix_ms, finished_unix_ms, error_behaviour, success, \
         events_captured, events_already_captured, errors) VALUES ($1, $2, $3, $3, $8, $4, $5, $6, $7)",
        &[
            Arg::Text(tenant),
            Arg::Text(&capture.capture_id),
            Arg::Integer(now_unix_ms),
            Arg::Boolean(errors.is_empty()),
            Arg::Integer(captured as i64),
            Arg::Integer(already),
            Arg::Text(&errors_json),
            Arg::Text(&capture.error_behaviour),
        ],
    )
    .await?;
    Ok(Ok(captured))
}

/// Rows per multi-row INSERT of events (18 values each) and of identifiers (5 values each):
/// well under the bound-parameter limits of SQLite (32,766) and PostgreSQL (65,535).
const EVENT_ROWS_PER_STATEMENT: usize = 200;
const IDENTIFIER_ROWS_PER_STATEMENT: usize = 1_000;

/// `($first, $first+1, …)` for one row of `width` values; on SQLite plain `?`s, bound in order.
/// (SQLite finds the name of a numbered parameter by a linear search, so thousands of `$n` in
/// one statement cost time quadratic in their number; `?` costs nothing.)
pub(crate) fn placeholders(conn: &Conn, first: usize, width: usize) -> String {
    use std::fmt::Write as _;
    let mut list = String::with_capacity(2 + width * 7);
    list.push('(');
    for number in first..first + width {
        if number > first {
            list.push_str(", ");
        }
        match conn {
            Conn::Sqlite(_) => list.push('?'),
            Conn::Postgres(_) => {
                let _ = write!(list, "${number}");
            }
        }
    }
    list.push(')');
    list
}

pub(crate) fn placeholder(conn: &Conn, number: usize) -> String {
    match conn {
        Conn::Sqlite(_) => "?".to_owned(),
        Conn::Postgres(_) => format!("${number}"),
    }
}

/// The values of `column` among this tenant's events whose `key_column` is one of `keys`.
async fn select_in(
    conn: &mut Conn,
    column: &str,
    key_column: &str,
    tenant: &str,
    keys: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rows: Vec<(String,)> = crate::writer::fetch_for_keys(conn, tenant, &keys, |tenant, condition| {
        format!("SELECT {column} FROM epcis_events WHERE tenant_id = {tenant} AND {key_column} {condition}")
    })
    .await?;
    Ok(rows.into_iter().map(|(value,)| value).collect())
}

/// (eventID, hash ID) of this tenant's events with one of `event_ids`.
async fn select_pairs_in(
    conn: &mut Conn,
    tenant: &str,
    event_ids: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let event_ids: Vec<&str> = event_ids.iter().map(String::as_str).collect();
    crate::writer::fetch_for_keys(conn, tenant, &event_ids, |tenant, condition| {
        format!("SELECT event_id, hash_id FROM epcis_events WHERE tenant_id = {tenant} AND event_id {condition}")
    })
    .await
}

/// Inserts events (with sequence numbers from `first_seq`) and their identifiers in multi-row
/// statements.
async fn insert_events(
    conn: &mut Conn,
    tenant: &str,
    events: &[(&EventRecord, &str)],
    first_seq: i64,
    first_log_index: i64,
    capture_id: &str,
    now_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    const EVENT_COLUMNS_INSERTED: usize = 18;
    for (chunk_index, chunk) in events.chunks(EVENT_ROWS_PER_STATEMENT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO epcis_events (tenant_id, event_id, event_seq, hash_id, capture_id, event_type, action, biz_step, \
             disposition, read_point, biz_location, event_time_ms, record_time_ms, error_declared, body, record_key, \
             log_index, commitment_seed) VALUES ",
        );
        let mut args = Vec::with_capacity(chunk.len() * EVENT_COLUMNS_INSERTED);
        for (row, (event, record_key)) in chunk.iter().enumerate() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholders(conn, row * EVENT_COLUMNS_INSERTED + 1, EVENT_COLUMNS_INSERTED));
            let offset = (chunk_index * EVENT_ROWS_PER_STATEMENT + row) as i64;
            let seq = first_seq + offset;
            args.extend([
                Arg::Text(tenant),
                Arg::Text(&event.event_id),
                Arg::Integer(seq),
                Arg::Text(&event.hash_id),
                Arg::Text(capture_id),
                Arg::Text(&event.event_type),
                Arg::OptionalText(event.action.as_deref()),
                Arg::OptionalText(event.biz_step.as_deref()),
                Arg::OptionalText(event.disposition.as_deref()),
                Arg::OptionalText(event.read_point.as_deref()),
                Arg::OptionalText(event.biz_location.as_deref()),
                Arg::Integer(event.event_time_ms),
                Arg::Integer(now_unix_ms),
                Arg::Boolean(event.error_declared),
                Arg::Text(&event.body),
                Arg::Text(record_key),
                Arg::Integer(first_log_index + offset),
                Arg::Bytes(&event.commitment_seed),
            ]);
        }
        execute(conn, &sql, &args).await?;
    }
    let identifiers: Vec<(i64, &IdentifierRow)> = events
        .iter()
        .enumerate()
        .flat_map(|(index, (event, _))| {
            event.identifiers.iter().map(move |identifier| (first_seq + index as i64, identifier))
        })
        .collect();
    for chunk in identifiers.chunks(IDENTIFIER_ROWS_PER_STATEMENT) {
        let mut sql =
            String::from("INSERT INTO epcis_event_identifiers (tenant_id, event_seq, role, identifier, gtin) VALUES ");
        let mut args = Vec::with_capacity(chunk.len() * 5);
        for (row, (seq, (role, identifier, gtin))) in chunk.iter().enumerate() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholders(conn, row * 5 + 1, 5));
            args.extend([
                Arg::Text(tenant),
                Arg::Integer(*seq),
                Arg::Text(role),
                Arg::Text(identifier),
                Arg::OptionalText(gtin.as_deref()),
            ]);
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        execute(conn, &sql, &args).await?;
    }
    Ok(())
}

/// What an index can narrow a query to; every condition selects a superset of the answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub event_types: Option<Vec<String>>,
    pub event_time_at_least_ms: Option<i64>,
    pub event_time_before_ms: Option<i64>,
    pub record_time_at_least_ms: Option<i64>,
    pub record_time_before_ms: Option<i64>,
    pub actions: Option<Vec<String>>,
    pub biz_steps: Option<Vec<String>>,
    pub dispositions: Option<Vec<String>>,
    pub read_points: Option<Vec<String>>,
    pub biz_locations: Option<Vec<String>>,
    pub event_ids: Option<Vec<String>>,
    pub error_declared: bool,
    /// Each: the event names one of the identifiers in one of the roles.
    pub identifiers: Vec<(Vec<String>, Vec<String>)>,
    /// Each: the event names an identifier of one of the GTINs in one of the roles.
    pub gtins: Vec<(Vec<String>, Vec<String>)>,
}

/// The order of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOrder {
    /// Capture order (record time), oldest first.
    RecordAscending,
    RecordDescending,
    EventTimeAscending,
    EventTimeDescending,
}

/// Where a page of events continues: after the event with this order key and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPosition {
    pub key: i64,
    pub seq: i64,
}

/// A stored event as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub tenant_id: String,
    pub event_id: String,
    pub seq: i64,
    pub event_time_ms: i64,
    pub record_time_ms: i64,
    pub body: String,
    /// The event's index in the transparency log and its commitment seed (none for events
    /// captured before the log existed).
    pub log_index: Option<i64>,
    pub commitment_seed: Option<Vec<u8>>,
}

impl StoredEvent {
    pub fn position(&self, order: EventOrder) -> EventPosition {
        let key = match order {
            EventOrder::RecordAscending | EventOrder::RecordDescending => self.seq,
            EventOrder::EventTimeAscending | EventOrder::EventTimeDescending => self.event_time_ms,
        };
        EventPosition { key, seq: self.seq }
    }
}

#[derive(sqlx::FromRow)]
struct StoredEventRow {
    tenant_id: String,
    event_id: String,
    event_seq: i64,
    event_time_ms: i64,
    record_time_ms: i64,
    body: String,
    log_index: Option<i64>,
    commitment_seed: Option<Vec<u8>>,
}

impl From<StoredEventRow> for StoredEvent {
    fn from(row: StoredEventRow) -> StoredEvent {
        StoredEvent {
            tenant_id: row.tenant_id,
            event_id: row.event_id,
            seq: row.event_seq,
            event_time_ms: row.event_time_ms,
            record_time_ms: row.record_time_ms,
            body: row.body,
            log_index: row.log_index,
            commitment_seed: row.commitment_seed,
        }
    }
}

/// A query's SQL being built: text and bound values, `$n` numbered.
#[derive(Default)]
struct Sql {
    text: String,
    values: Vec<Bound>,
}

enum Bound {
    Text(String),
    Integer(i64),
}

impl Sql {
    fn text_parameter(&mut self, value: &str) -> String {
        self.values.push(Bound::Text(value.to_owned()));
        format!("${}", self.values.len())
    }

    fn integer_parameter(&mut self, value: i64) -> String {
        self.values.push(Bound::Integer(value));
        format!("${}", self.values.len())
    }

    fn list(&mut self, values: &[String]) -> String {
        let list: Vec<String> = values.iter().map(|value| self.text_parameter(value)).collect();
        match list.is_empty() {
            true => "NULL".to_owned(),
            false => list.join(", "),
        }
    }
}

macro_rules! bind_sql {
    ($query:expr, $sql:expr) => {{
        let mut query = $query;
        for value in &$sql.values {
            query = match value {
                Bound::Text(text) => query.bind(text.as_str()),
                Bound::Integer(integer) => query.bind(*integer),
            };
        }
        query
    }};
}

const CAPTURE_COLUMNS: &str = "capture_id, created_unix_ms, finished_unix_ms, error_behaviour, success, events_captured, \
     events_already_captured, errors";

#[derive(sqlx::FromRow)]
struct CaptureRow {
    capture_id: String,
    created_unix_ms: i64,
    finished_unix_ms: Option<i64>,
    error_behaviour: String,
    success: bool,
    events_captured: i64,
    events_already_captured: i64,
    errors: String,
}

impl CaptureRow {
    fn into_job(self) -> Result<CaptureJob, StoreError> {
        let errors: Vec<serde_json::Value> = serde_json::from_str(&self.errors)
            .map_err(|error| StoreError::Corrupt(format!("capture errors: {error}")))?;
        let errors = errors
            .iter()
            .map(|error| {
                let field = |name: &str| error.get(name).and_then(|value| value.as_str()).unwrap_or("").to_owned();
                (field("pointer"), field("detail"))
            })
            .collect();
        Ok(CaptureJob {
            capture_id: self.capture_id,
            created_unix_ms: self.created_unix_ms,
            finished_unix_ms: self.finished_unix_ms,
            error_behaviour: self.error_behaviour,
            success: self.success,
            events_captured: self.events_captured,
            events_already_captured: self.events_already_captured,
            errors,
        })
    }
}

/// The events a tenant sees: its own, and those naming a GTIN it holds, captured by the network's
/// operator (handling the holder's goods) or by another tenant if the holder's claim is verified
/// (under a GS1 company prefix the operator verified as its own: a claim alone, first come,
/// proves nothing).
const VISIBLE: &str = "(e.tenant_id = $1 OR EXISTS (SELECT 1 FROM epcis_event_identifiers v JOIN gtin_owners o ON o.gtin = v.gtin \
     WHERE v.tenant_id = e.tenant_id AND v.event_seq = e.event_seq AND o.tenant_id = $1 \
     AND (o.verified = 1 OR e.tenant_id = 'network')))";

const EVENT_COLUMNS: &str =
    "e.tenant_id, e.event_id, e.event_seq, e.event_time_ms, e.record_time_ms, e.body, e.log_index, e.commitment_seed";

impl Store {
    /// Candidate events for a query, visible to `viewer`, in `order`, after `after`, at most
    /// `limit` rows (capped at [`QUERY_SCAN_ROWS_MAX`]).
    pub async fn epcis_candidates(
        &self,
        viewer: &TenantId,
        filter: &EventFilter,
        order: EventOrder,
        after: Option<EventPosition>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut sql = Sql::default();
        let viewer_parameter = sql.text_parameter(viewer.as_str());
        debug_assert_eq!(viewer_parameter, "$1");
        let mut conditions = vec![VISIBLE.to_owned()];
        let mut in_list = |sql: &mut Sql, column: &str, values: &Option<Vec<String>>| {
            if let Some(values) = values {
                let list = sql.list(values);
                conditions.push(format!("{column} IN ({list})"));
            }
        };
        in_list(&mut sql, "e.event_type", &filter.event_types);
        in_list(&mut sql, "e.action", &filter.actions);
        in_list(&mut sql, "e.biz_step", &filter.biz_steps);
        in_list(&mut sql, "e.disposition", &filter.dispositions);
        in_list(&mut sql, "e.read_point", &filter.read_points);
        in_list(&mut sql, "e.biz_location", &filter.biz_locations);
        in_list(&mut sql, "e.event_id", &filter.event_ids);
        for (column, operator, bound) in [
            ("e.event_time_ms", ">=", filter.event_time_at_least_ms),
            ("e.event_time_ms", "<", filter.event_time_before_ms),
            ("e.record_time_ms", ">=", filter.record_time_at_least_ms),
            ("e.record_time_ms", "<", filter.record_time_before_ms),
        ] {
            if let Some(bound) = bound {
                let parameter = sql.integer_parameter(bound);
                conditions.push(format!("{column} {operator} {parameter}"));
            }
        }
        if filter.error_declared {
            conditions.push("e.error_declared = TRUE".to_owned());
        }
        for (column, entries) in [("identifier", &filter.identifiers), ("gtin", &filter.gtins)] {
            for (roles, values) in entries {
                let roles = sql.list(roles);
                let values = sql.list(values);
                // event_seq is unique platform-wide: an uncorrelated IN lets the planner start from
                // the identifier index instead of scanning every event.
                conditions.push(format!(
                    "e.event_seq IN (SELECT i.event_seq FROM epcis_event_identifiers i \
                     WHERE i.{column} IN ({values}) AND i.role IN ({roles}))"
                ));
            }
        }
        let (key, direction, comparison) = match order {
            EventOrder::RecordAscending => ("e.event_seq", "ASC", ">"),
            EventOrder::RecordDescending => ("e.event_seq", "DESC", "<"),
            EventOrder::EventTimeAscending => ("e.event_time_ms", "ASC", ">"),
            EventOrder::EventTimeDescending => ("e.event_time_ms", "DESC", "<"),
        };
        if let Some(after) = after {
            let key_parameter = sql.integer_parameter(after.key);
            let seq_parameter = sql.integer_parameter(after.seq);
            conditions.push(format!(
                "({key} {comparison} {key_parameter} OR ({key} = {key_parameter} AND e.event_seq {comparison} {seq_parameter}))"
            ));
        }
        let limit_parameter = sql.integer_parameter(i64::from(limit.clamp(1, QUERY_SCAN_ROWS_MAX)));
        let order_clause = match key == "e.event_seq" {
            true => format!("e.event_seq {direction}"),
            false => format!("{key} {direction}, e.event_seq {direction}"),
        };
        sql.text = format!(
            "SELECT {EVENT_COLUMNS} FROM epcis_events e WHERE {} ORDER BY {order_clause} LIMIT {limit_parameter}",
            conditions.join(" AND ")
        );
        let rows: Vec<StoredEventRow> = on_pool!(self.pools(), pool => {
            bind_sql!(sqlx::query_as(&sql.text), sql).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    /// The records of one eventID that `viewer` may see: the event, and its error declaration
    /// when one was captured (at most [`EVENT_RECORDS_MAX`]).
    pub async fn epcis_event(&self, viewer: &TenantId, event_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let filter = EventFilter { event_ids: Some(vec![event_id.to_owned()]), ..EventFilter::default() };
        self.epcis_candidates(viewer, &filter, EventOrder::RecordAscending, None, EVENT_RECORDS_MAX).await
    }

    /// Whether any event in the network, of any tenant, names `identifier`: as a class of
    /// objects (`epcClass` and its child, input and output roles; a lot already commissioned
    /// upstream, or seen by the network before), or as one object (`epc`, `childEPC`,
    /// `parentID`, `inputEPC`, `outputEPC`; a pallet's SSCC already in use).
    pub async fn epc_seen(&self, identifier: &str, as_class: bool) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = on_pool!(self.pools(), pool => {
            sqlx::query_as(named_sql(as_class)).bind(identifier).fetch_optional(pool).await
        })?;
        Ok(row.is_some())
    }

    /// How many events are stored platform-wide.
    pub async fn epcis_event_count(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self.pools(), pool => {
            sqlx::query_as("SELECT COUNT(*) FROM epcis_events").fetch_one(pool).await
        })?;
        Ok(count)
    }
}

impl TenantStore<'_> {
    /// The eventIDs this tenant's events are stored under, by record key (an event captured
    /// again, known by its hash, under another eventID: the first one's).
    pub async fn epcis_stored_event_ids(&self, record_keys: &[String]) -> Result<HashMap<String, String>, StoreError> {
        assert!(record_keys.len() <= CAPTURE_EVENTS_MAX, "at most {CAPTURE_EVENTS_MAX} keys a read");
        let mut conn = match self.store.pools() {
            crate::backend::Pools::Sqlite { read, .. } => Conn::Sqlite(read.acquire().await?),
            crate::backend::Pools::Postgres { pool, .. } => Conn::Postgres(pool.acquire().await?),
        };
        let keys: Vec<&str> = record_keys.iter().map(String::as_str).collect();
        let rows: Vec<(String, String)> =
            crate::writer::fetch_for_keys(&mut conn, self.tenant_id.as_str(), &keys, |tenant, condition| {
                format!("SELECT record_key, event_id FROM epcis_events WHERE tenant_id = {tenant} AND record_key {condition}")
            })
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// A capture job of this tenant.
    pub async fn capture_job(&self, capture_id: &str) -> Result<Option<CaptureJob>, StoreError> {
        let sql = format!("SELECT {CAPTURE_COLUMNS} FROM epcis_captures WHERE tenant_id = $1 AND capture_id = $2");
        let row: Option<CaptureRow> = on_pool!(self.store.pools(), pool => {
            sqlx::query_as(&sql).bind(self.tenant_id.as_str()).bind(capture_id).fetch_optional(pool).await
        })?;
        row.map(CaptureRow::into_job).transpose()
    }

    /// This tenant's capture jobs, newest first (by creation, then capture ID, both descending),
    /// after `before` (the (creation time, capture ID) of the last job of the page before), at
    /// most `limit`.
    pub async fn capture_jobs(&self, before: Option<(i64, &str)>, limit: u32) -> Result<Vec<CaptureJob>, StoreError> {
        let sql = format!(
            "SELECT {CAPTURE_COLUMNS} FROM epcis_captures WHERE tenant_id = $1 \
             AND (created_unix_ms < $2 OR (created_unix_ms = $2 AND capture_id < $3)) \
             ORDER BY created_unix_ms DESC, capture_id DESC LIMIT $4"
        );
        let (created, capture_id) = before.unwrap_or((i64::MAX, ""));
        // Without a cursor, every job: no capture ID is below "" at i64::MAX, and none is created then.
        let rows: Vec<CaptureRow> = on_pool!(self.store.pools(), pool => {
            sqlx::query_as(&sql).bind(self.tenant_id.as_str()).bind(created).bind(capture_id).bind(i64::from(limit))
                .fetch_all(pool).await
        })?;
        rows.into_iter().map(CaptureRow::into_job).collect()
    }

    /// The namespace prefixes this tenant's documents declared: prefix → IRIs.
    pub async fn epcis_namespaces(&self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(self.store.pools(), pool => {
            sqlx::query_as("SELECT prefix, iri FROM epcis_namespaces WHERE tenant_id = $1 ORDER BY prefix, iri")
                .bind(self.tenant_id.as_str())
                .fetch_all(pool)
                .await
        })?;
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (prefix, iri) in rows {
            map.entry(prefix).or_default().push(iri);
        }
        Ok(map)
    }

    /// The children of every master-data element of this tenant (for `WD_` queries).
    pub async fn epcis_children(&self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(self.store.pools(), pool => {
            sqlx::query_as("SELECT element_id, children FROM epcis_master_data WHERE tenant_id = $1 AND children <> '[]'")
                .bind(self.tenant_id.as_str())
                .fetch_all(pool)
                .await
        })?;
        let mut map = BTreeMap::new();
        for (element_id, children) in rows {
            let children: Vec<String> = serde_json::from_str(&children)
                .map_err(|error| StoreError::Corrupt(format!("master data children: {error}")))?;
            map.insert(element_id, children);
        }
        Ok(map)
    }
}

/// The most named queries a tenant keeps, and subscriptions per query.
pub const QUERIES_PER_TENANT_MAX: i64 = 100;
pub const SUBSCRIPTIONS_PER_QUERY_MAX: i64 = 20;

/// A webhook subscription to a named query.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Subscription {
    pub tenant_id: String,
    pub subscription_id: String,
    pub query_name: String,
    pub destination: String,
    pub signature_token: Option<String>,
    pub stream: bool,
    /// The schedule as JSON (the standard's `second`, `minute`, … fields), when not streaming.
    pub schedule: Option<String>,
    pub report_if_empty: bool,
    /// The last event_seq delivered.
    pub after_seq: i64,
    pub next_attempt_unix_ms: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub deliveries: i64,
    pub created_unix_ms: i64,
}

/// Changes to named queries and subscriptions.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryMutation {
    CreateQuery {
        name: String,
        definition: String,
    },
    DeleteQuery {
        name: String,
    },
    CreateSubscription(Box<Subscription>),
    DeleteSubscription {
        query_name: String,
        subscription_id: String,
    },
    /// A delivery attempt begins: the subscription is due again only at `lease_until_unix_ms`, so
    /// no other API node sends it meanwhile. Refused (`Conflict`) unless it is still due at
    /// `seen_next_attempt_unix_ms`, as the delivery read it (another node claimed it since).
    ClaimSubscription {
        subscription_id: String,
        seen_next_attempt_unix_ms: i64,
        lease_until_unix_ms: i64,
    },
    /// A delivery attempt ended. `moved`: the cursor moves to `after_seq` (after a delivery the
    /// subscriber acknowledged, `delivered`, or after reading events none of which matched);
    /// otherwise the attempt failed with `error` and is retried at `next_attempt_unix_ms`.
    /// Nothing is written unless the subscription still holds the attempt's lease
    /// (`lease_until_unix_ms`, from [`QueryMutation::ClaimSubscription`]): after it lapsed, another
    /// node's attempt owns the cursor.
    RecordDelivery {
        lease_until_unix_ms: i64,
        subscription_id: String,
        after_seq: i64,
        moved: bool,
        delivered: bool,
        next_attempt_unix_ms: i64,
        error: Option<String>,
    },
}

pub(crate) async fn apply_query_mutation(
    conn: &mut Conn,
    tenant_id: &TenantId,
    mutation: &QueryMutation,
    now_unix_ms: i64,
) -> Result<Result<bool, WriteError>, sqlx::Error> {
    let tenant = tenant_id.as_str();
    match mutation {
        QueryMutation::CreateQuery { name, definition } => {
            let (count,): (i64,) = on_conn!(conn, connection => {
                sqlx::query_as("SELECT COUNT(*) FROM epcis_queries WHERE tenant_id = $1").bind(tenant).fetch_one(&mut *connection).await
            })?;
            if count >= QUERIES_PER_TENANT_MAX {
                return Ok(Err(WriteError::Limit(format!(
                    "a tenant keeps at most {QUERIES_PER_TENANT_MAX} named queries"
                ))));
            }
            let inserted = execute(
                conn,
                "INSERT INTO epcis_queries (tenant_id, name, definition, created_unix_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, name) DO NOTHING",
                &[Arg::Text(tenant), Arg::Text(name), Arg::Text(definition), Arg::Integer(now_unix_ms)],
            )
            .await?;
            if inserted == 0 {
                return Ok(Err(WriteError::Conflict(format!("query {name}"))));
            }
            Ok(Ok(true))
        }
        QueryMutation::DeleteQuery { name } => {
            execute(
                conn,
                "DELETE FROM epcis_subscriptions WHERE tenant_id = $1 AND query_name = $2",
                &[Arg::Text(tenant), Arg::Text(name)],
            )
            .await?;
            let deleted = execute(
                conn,
                "DELETE FROM epcis_queries WHERE tenant_id = $1 AND name = $2",
                &[Arg::Text(tenant), Arg::Text(name)],
            )
            .await?;
            Ok(if deleted == 0 { Err(WriteError::NotFound) } else { Ok(false) })
        }
        QueryMutation::CreateSubscription(subscription) => {
            if !exists(
                conn,
                "SELECT 1 FROM epcis_queries WHERE tenant_id = $1 AND name = $2",
                &[Arg::Text(tenant), Arg::Text(&subscription.query_name)],
            )
            .await?
            {
                return Ok(Err(WriteError::NotFound));
            }
            let (count,): (i64,) = on_conn!(conn, connection => {
                sqlx::query_as("SELECT COUNT(*) FROM epcis_subscriptions WHERE tenant_id = $1 AND query_name = $2")
                    .bind(tenant)
                    .bind(subscription.query_name.as_str())
                    .fetch_one(&mut *connection)
                    .await
            })?;
            if count >= SUBSCRIPTIONS_PER_QUERY_MAX {
                return Ok(Err(WriteError::Limit(format!(
                    "a named query has at most {SUBSCRIPTIONS_PER_QUERY_MAX} subscriptions"
                ))));
            }
            execute(
                conn,
                "INSERT INTO epcis_subscriptions (tenant_id, subscription_id, query_name, destination, signature_token, stream, \
                 schedule, report_if_empty, after_seq, next_attempt_unix_ms, attempts, last_error, deliveries, created_unix_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, NULL, 0, $11)",
                &[
                    Arg::Text(tenant),
                    Arg::Text(&subscription.subscription_id),
                    Arg::Text(&subscription.query_name),
                    Arg::Text(&subscription.destination),
                    Arg::OptionalText(subscription.signature_token.as_deref()),
                    Arg::Boolean(subscription.stream),
                    Arg::OptionalText(subscription.schedule.as_deref()),
                    Arg::Boolean(subscription.report_if_empty),
                    Arg::Integer(subscription.after_seq),
                    Arg::Integer(subscription.next_attempt_unix_ms),
                    Arg::Integer(now_unix_ms),
                ],
            )
            .await?;
            Ok(Ok(true))
        }
        QueryMutation::DeleteSubscription { query_name, subscription_id } => {
            let deleted = execute(
                conn,
                "DELETE FROM epcis_subscriptions WHERE tenant_id = $1 AND query_name = $2 AND subscription_id = $3",
                &[Arg::Text(tenant), Arg::Text(query_name), Arg::Text(subscription_id)],
            )
            .await?;
            Ok(if deleted == 0 { Err(WriteError::NotFound) } else { Ok(false) })
        }
        QueryMutation::ClaimSubscription { subscription_id, seen_next_attempt_unix_ms, lease_until_unix_ms } => {
            let claim = crate::writer::Claim {
                table: "epcis_subscriptions",
                id_column: "subscription_id",
                id: subscription_id,
                seen_next_attempt_unix_ms: *seen_next_attempt_unix_ms,
                lease_until_unix_ms: *lease_until_unix_ms,
            };
            if !claim.take(conn, tenant).await? {
                return Ok(Err(WriteError::Conflict(format!(
                    "subscription {subscription_id} is being delivered by another API node, or was deleted"
                ))));
            }
            Ok(Ok(false))
        }
        QueryMutation::RecordDelivery {
            lease_until_unix_ms,
            subscription_id,
            after_seq,
            moved,
            delivered,
            next_attempt_unix_ms,
            error,
        } => {
            // The next attempt is never the lease's time: a node that read the subscription at
            // its lease cannot claim it after the record.
            let next_attempt_unix_ms = if next_attempt_unix_ms == lease_until_unix_ms {
                next_attempt_unix_ms + 1
            } else {
                *next_attempt_unix_ms
            };
            let sql = match moved {
                true => {
                    "UPDATE epcis_subscriptions SET after_seq = CASE WHEN after_seq < $3 THEN $3 ELSE after_seq END, \
                     next_attempt_unix_ms = $4, attempts = 0, last_error = $5, deliveries = deliveries + $6 \
                     WHERE tenant_id = $1 AND subscription_id = $2 AND next_attempt_unix_ms = $7"
                }
                false => {
                    "UPDATE epcis_subscriptions SET next_attempt_unix_ms = $4, attempts = attempts + 1, last_error = $5 \
                     WHERE tenant_id = $1 AND subscription_id = $2 AND next_attempt_unix_ms = $7 AND $3 >= 0 AND $6 >= 0"
                }
            };
            execute(
                conn,
                sql,
                &[
                    Arg::Text(tenant),
                    Arg::Text(subscription_id),
                    Arg::Integer(*after_seq),
                    Arg::Integer(next_attempt_unix_ms),
                    Arg::OptionalText(error.as_deref()),
                    Arg::Integer(i64::from(*delivered)),
                    Arg::Integer(*lease_until_unix_ms),
                ],
            )
            .await?;
            Ok(Ok(false))
        }
    }
}

const SUBSCRIPTION_COLUMNS: &str = "tenant_id, subscription_id, query_name, destination, signature_token, stream, schedule, \
     report_if_empty, after_seq, next_attempt_unix_ms, attempts, last_error, deliveries, created_unix_ms";

impl Store {
    /// Subscriptions due for a delivery attempt at `now_unix_ms`, platform-wide (the delivery
    /// worker's view), soonest first. A stream subscription is due only when events were
    /// recorded after its cursor, so idle streams never crowd out the others.
    pub async fn due_subscriptions(&self, now_unix_ms: i64, limit: u32) -> Result<Vec<Subscription>, StoreError> {
        let last_seq = self.epcis_last_seq().await?;
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM epcis_subscriptions WHERE next_attempt_unix_ms <= $1 \
             AND (stream = FALSE OR after_seq < $3) ORDER BY next_attempt_unix_ms LIMIT $2"
        );
        let rows = on_pool!(self.pools(), pool => {
            sqlx::query_as(&sql).bind(now_unix_ms).bind(i64::from(limit)).bind(last_seq).fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// The GS1 company prefixes learned from captured EPC URNs.
    pub async fn epc_company_prefixes(&self) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pools(), pool => {
            sqlx::query_as("SELECT company_prefix FROM epc_company_prefixes").fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(|(prefix,)| prefix).collect())
    }

    /// The highest event_seq recorded before `record_time_ms` (0 when none).
    pub async fn epcis_seq_before(&self, record_time_ms: i64) -> Result<i64, StoreError> {
        let (seq,): (i64,) = on_pool!(self.pools(), pool => {
            sqlx::query_as("SELECT COALESCE(MAX(event_seq), 0) FROM epcis_events WHERE record_time_ms < $1")
                .bind(record_time_ms)
                .fetch_one(pool)
                .await
        })?;
        Ok(seq)
    }

    /// The highest event_seq stored (0 when none).
    pub async fn epcis_last_seq(&self) -> Result<i64, StoreError> {
        let (seq,): (i64,) = on_pool!(self.pools(), pool => {
            sqlx::query_as("SELECT COALESCE(MAX(event_seq), 0) FROM epcis_events").fetch_one(pool).await
        })?;
        Ok(seq)
    }
}

impl TenantStore<'_> {
    /// The named queries of this tenant: (name, definition), by name.
    pub async fn epcis_queries(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = on_pool!(self.store.pools(), pool => {
            sqlx::query_as("SELECT name, definition FROM epcis_queries WHERE tenant_id = $1 ORDER BY name")
                .bind(self.tenant_id.as_str())
                .fetch_all(pool)
                .await
        })?;
        Ok(rows)
    }

    /// One named query's definition.
    pub async fn epcis_query(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(self.store.pools(), pool => {
            sqlx::query_as("SELECT definition FROM epcis_queries WHERE tenant_id = $1 AND name = $2")
                .bind(self.tenant_id.as_str())
                .bind(name)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(definition,)| definition))
    }

    /// The subscriptions of one named query.
    pub async fn epcis_subscriptions(&self, query_name: &str) -> Result<Vec<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM epcis_subscriptions WHERE tenant_id = $1 AND query_name = $2 ORDER BY subscription_id"
        );
        let rows = on_pool!(self.store.pools(), pool => {
            sqlx::query_as(&sql).bind(self.tenant_id.as_str()).bind(query_name).fetch_all(pool).await
        })?;
        Ok(rows)
    }
}
