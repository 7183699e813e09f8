//! Cold-chain alarms as stored: one row per alarm (a device's rule breached from a condition
//! start) in the state its last evaluation put it in, and their transitions (`alarm_events`:
//! opened, escalated, acknowledged, cleared) in write order for the webhooks.
//!
//! Alarms are evaluated outside the store (the server runs `coldchain::evaluate_alarms` over a
//! device's readings); a write stores the result with the side effects of an opening in the same
//! transaction: the EPCIS event that records it and, for a critical pharma alarm, the lots in
//! custody put on `hold` (released only by a person, through the lot status, with a reason).

use network::TenantId;

use crate::backend::{on_conn, on_pool};
use crate::fulfilment::StockContext;
use crate::writer::{Arg, WriteError, execute};
use crate::{Store, StoreError, TenantStore};

/// Alarms one list answers, at most.
pub const ALARMS_LISTED_MAX: u32 = 1_000;
/// Alarms one evaluation stores, at most.
pub const ALARMS_PER_WRITE_MAX: usize = 1_000;
/// Times an evaluated alarm is read again and merged when a person or the escalation changed it
/// meanwhile.
const ALARM_MERGE_ATTEMPTS_MAX: usize = 3;
/// Lots one alarm puts on hold, at most.
pub const HELD_LOTS_PER_ALARM_MAX: usize = 100;

/// An alarm as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlarmRow {
    pub alarm_id: String,
    pub device_id: String,
    pub assignment_from_unix_ms: i64,
    pub target_kind: String,
    pub target: String,
    pub class: String,
    pub rule: String,
    pub severity: String,
    /// `open`, `escalated`, `acknowledged` or `cleared`.
    pub state: String,
    pub condition_start_unix_ms: i64,
    pub opened_unix_ms: i64,
    pub escalate_due_unix_ms: i64,
    pub escalated_unix_ms: Option<i64>,
    pub condition_end_unix_ms: Option<i64>,
    pub cleared_unix_ms: Option<i64>,
    pub peak_celsius: f64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_comment: Option<String>,
    pub acknowledged_unix_ms: Option<i64>,
    /// The lots this alarm put on hold, `GTIN/lot` separated by spaces.
    pub held_lots: String,
}

const ALARM_COLUMNS: &str = "alarm_id, device_id, assignment_from_unix_ms, target_kind, target, class, rule, severity, \
    state, condition_start_unix_ms, opened_unix_ms, escalate_due_unix_ms, escalated_unix_ms, condition_end_unix_ms, \
    cleared_unix_ms, peak_celsius, acknowledged_by, acknowledged_comment, acknowledged_unix_ms, held_lots";

/// A lot to put on hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LotRef {
    pub gtin: gs1::Gtin,
    pub lot: String,
}

/// An evaluated alarm to store, with what its opening does.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedAlarm {
    pub row: AlarmRow,
    /// Lots to put on hold if this write opens the alarm (a critical pharma alarm).
    pub holds: Vec<LotRef>,
    /// The EPCIS events recording the opening, captured if this write opens the alarm.
    pub events: Option<Box<crate::epcis::Capture>>,
}

/// Where an evaluation of a device's assignment now stands, replacing the progress it started
/// from (`expected_version`; none when there was none), if the device's readings did not change
/// since the evaluation read them (`expected_readings_version`). Every write of a progress, and a
/// reading stored before its `through` (which marks it stale), moves its version on.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    pub device_id: String,
    pub assignment_from_unix_ms: i64,
    pub expected_version: Option<i64>,
    /// The device's readings version the evaluation read (0: none yet).
    pub expected_readings_version: i64,
    /// Where the evaluations of this assignment start when they cannot resume.
    pub window_start_unix_ms: i64,
    pub through_unix_ms: i64,
    pub progress: String,
}

/// A kept progress.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredProgress {
    pub through_unix_ms: i64,
    pub window_start_unix_ms: i64,
    pub version: i64,
    /// A reading before `through` was stored since: evaluate from the window start.
    pub stale: i64,
    pub progress: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlarmMutation {
    /// The alarms of one evaluation: each stored in its evaluated state (never back from
    /// acknowledged or cleared, never losing a recorded acknowledgement); a new alarm captures its
    /// events and puts its lots on hold. Refused with `Conflict` (nothing stored) when another
    /// evaluation moved a progress meanwhile: evaluate again.
    Evaluated { alarms: Vec<EvaluatedAlarm>, progress: Vec<ProgressUpdate> },
    /// A person acknowledges an open or escalated alarm; it clears if its condition has ended.
    Acknowledge { alarm_id: String, person: String, comment: String },
    /// Escalates this tenant's open alarms whose deadline has passed.
    EscalateDue,
}

/// What an alarm write did: the transitions it recorded, as (alarm id, kind).
pub type AlarmTransitions = Vec<(String, &'static str)>;

async fn stored_alarm(
    conn: &mut crate::backend::Conn,
    tenant: &str,
    alarm_id: &str,
) -> Result<Option<AlarmRow>, sqlx::Error> {
    let sql = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE tenant_id = $1 AND alarm_id = $2");
    on_conn!(conn, connection => sqlx::query_as(&sql).bind(tenant).bind(alarm_id).fetch_optional(&mut *connection).await)
}

async fn record_transition(
    conn: &mut crate::backend::Conn,
    tenant: &str,
    alarm_id: &str,
    kind: &'static str,
    now_unix_ms: i64,
    transitions: &mut AlarmTransitions,
) -> Result<(), sqlx::Error> {
    let step = match kind {
        "opened" => 0,
        "escalated" => 1,
        "acknowledged" => 2,
        _ => 3,
    };
    execute(
        conn,
        "INSERT INTO alarm_events (tenant_id, at_unix_ms, alarm_id, step, kind) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
        &[Arg::Text(tenant), Arg::Integer(now_unix_ms), Arg::Text(alarm_id), Arg::Integer(step), Arg::Text(kind)],
    )
    .await?;
    transitions.push((alarm_id.to_owned(), kind));
    Ok(())
}

/// The rank of a state: an evaluation never moves an alarm back.
fn rank(state: &str) -> u8 {
    match state {
        "open" => 0,
        "escalated" => 1,
        "acknowledged" => 2,
        _ => 3,
    }
}

pub(crate) async fn apply_alarms(
    conn: &mut crate::backend::Conn,
    tenant_id: &TenantId,
    change: &AlarmMutation,
    now_unix_ms: i64,
    mut stock: StockContext<'_>,
    log: &mut crate::log::LogBatch,
) -> Result<Result<AlarmTransitions, WriteError>, sqlx::Error> {
    let tenant = tenant_id.as_str();
    let mut transitions = AlarmTransitions::new();
    match change {
        AlarmMutation::Evaluated { alarms, progress } => {
            if alarms.len() > ALARMS_PER_WRITE_MAX {
                return Ok(Err(WriteError::Limit(format!("one write stores at most {ALARMS_PER_WRITE_MAX} alarms"))));
            }
            // Every check before any change: a raced evaluation stores nothing (a write has no
            // savepoint of its own in the group's transaction) but the version rows (0) a first
            // check makes, which say what no row said (the inputs read a missing one as 0).
            for update in progress {
                if !progress_unchanged(conn, tenant, update).await? {
                    return Ok(Err(WriteError::Conflict(format!(
                        "the alarm evaluation of device {}",
                        update.device_id
                    ))));
                }
            }
            for update in progress {
                move_progress(conn, tenant, update, now_unix_ms).await?;
            }
            for alarm in alarms {
                let row = &alarm.row;
                for _attempt in 0..ALARM_MERGE_ATTEMPTS_MAX {
                    match stored_alarm(conn, tenant, &row.alarm_id).await? {
                        None => {
                            let held = hold_lots(conn, tenant_id, &alarm.holds, &row.alarm_id, &mut stock).await?;
                            insert_alarm(conn, tenant, row, &held, now_unix_ms).await?;
                            record_transition(conn, tenant, &row.alarm_id, "opened", now_unix_ms, &mut transitions)
                                .await?;
                            for (kind, happened) in
                                [("escalated", row.escalated_unix_ms.is_some()), ("cleared", row.state == "cleared")]
                            {
                                if happened {
                                    record_transition(conn, tenant, &row.alarm_id, kind, now_unix_ms, &mut transitions)
                                        .await?;
                                }
                            }
                            if let Some(events) = &alarm.events {
                                match crate::epcis::apply_capture(conn, tenant_id, events, now_unix_ms, log).await? {
                                    Ok(_) => {}
                                    Err(refused) => {
                                        return Err(sqlx::Error::Decode(
                                            format!("the events of an alarm were refused: {refused}").into(),
                                        ));
                                    }
                                }
                            }
                            break;
                        }
                        Some(stored) => {
                            let mut state = if rank(&row.state) >= rank(&stored.state) {
                                row.state.clone()
                            } else {
                                stored.state.clone()
                            };
                            // An alarm a person acknowledged clears once its condition has ended.
                            if state == "acknowledged" && row.condition_end_unix_ms.is_some() {
                                state = "cleared".to_owned();
                            }
                            // Escalation only precedes an acknowledgement.
                            let escalated = match stored.escalated_unix_ms {
                                Some(at) => Some(at),
                                None if rank(&stored.state) < 2 => row.escalated_unix_ms,
                                None => None,
                            };
                            // Readings that came late may move the condition's start (the server
                            // keeps the alarm's id for it).
                            let changed = state != stored.state
                                || escalated != stored.escalated_unix_ms
                                || row.condition_start_unix_ms != stored.condition_start_unix_ms
                                || row.condition_end_unix_ms != stored.condition_end_unix_ms
                                || row.peak_celsius != stored.peak_celsius;
                            if !changed {
                                break;
                            }
                            let cleared = match state.as_str() {
                                "cleared" => stored.cleared_unix_ms.or(row.cleared_unix_ms).or_else(|| {
                                    Some(
                                        stored
                                            .acknowledged_unix_ms
                                            .unwrap_or(now_unix_ms)
                                            .max(row.condition_end_unix_ms.unwrap_or(0)),
                                    )
                                }),
                                _ => None,
                            };
                            // Guarded by the state read: a concurrent acknowledgement wins, and the
                            // next evaluation reconciles.
                            let updated = execute(
                                conn,
                                "UPDATE alarms SET state = $3, escalated_unix_ms = $4, condition_end_unix_ms = $5, \
                             cleared_unix_ms = $6, peak_celsius = $7, updated_unix_ms = $8, \
                             condition_start_unix_ms = $10, opened_unix_ms = $11, escalate_due_unix_ms = $12 \
                             WHERE tenant_id = $1 AND alarm_id = $2 AND state = $9",
                                &[
                                    Arg::Text(tenant),
                                    Arg::Text(&row.alarm_id),
                                    Arg::Text(&state),
                                    Arg::OptionalInteger(escalated),
                                    Arg::OptionalInteger(row.condition_end_unix_ms),
                                    Arg::OptionalInteger(cleared),
                                    Arg::Real(row.peak_celsius),
                                    Arg::Integer(now_unix_ms),
                                    Arg::Text(&stored.state),
                                    Arg::Integer(row.condition_start_unix_ms),
                                    Arg::Integer(row.opened_unix_ms),
                                    Arg::Integer(row.escalate_due_unix_ms),
                                ],
                            )
                            .await?;
                            if updated == 0 {
                                // Acknowledged or escalated meanwhile: read it again and merge.
                                continue;
                            }
                            if escalated.is_some() && stored.escalated_unix_ms.is_none() {
                                record_transition(
                                    conn,
                                    tenant,
                                    &row.alarm_id,
                                    "escalated",
                                    now_unix_ms,
                                    &mut transitions,
                                )
                                .await?;
                            }
                            if state == "cleared" && stored.state != "cleared" {
                                record_transition(
                                    conn,
                                    tenant,
                                    &row.alarm_id,
                                    "cleared",
                                    now_unix_ms,
                                    &mut transitions,
                                )
                                .await?;
                            }
                            break;
                        }
                    }
                }
            }
            Ok(Ok(transitions))
        }
        AlarmMutation::Acknowledge { alarm_id, person, comment } => {
            let Some(stored) = stored_alarm(conn, tenant, alarm_id).await? else {
                return Ok(Err(WriteError::NotFound));
            };
            if stored.state != "open" && stored.state != "escalated" {
                return Ok(Err(WriteError::Refused {
                    code: "alarm-acknowledged",
                    detail: format!("alarm {alarm_id} is {} already", stored.state),
                    errors: Vec::new(),
                }));
            }
            let clears = stored.condition_end_unix_ms.is_some();
            let state = if clears { "cleared" } else { "acknowledged" };
            let updated = execute(
                conn,
                "UPDATE alarms SET state = $3, acknowledged_by = $4, acknowledged_comment = $5, acknowledged_unix_ms = $6, \
                 cleared_unix_ms = $7, updated_unix_ms = $6 WHERE tenant_id = $1 AND alarm_id = $2 \
                 AND state IN ('open', 'escalated') AND acknowledged_by IS NULL",
                &[
                    Arg::Text(tenant),
                    Arg::Text(alarm_id),
                    Arg::Text(state),
                    Arg::Text(person),
                    Arg::Text(comment),
                    Arg::Integer(now_unix_ms),
                    Arg::OptionalInteger(clears.then_some(now_unix_ms)),
                ],
            )
            .await?;
            if updated == 0 {
                return Ok(Err(WriteError::Refused {
                    code: "alarm-acknowledged",
                    detail: format!("alarm {alarm_id} was acknowledged meanwhile"),
                    errors: Vec::new(),
                }));
            }
            record_transition(conn, tenant, alarm_id, "acknowledged", now_unix_ms, &mut transitions).await?;
            if clears {
                record_transition(conn, tenant, alarm_id, "cleared", now_unix_ms, &mut transitions).await?;
            }
            Ok(Ok(transitions))
        }
        AlarmMutation::EscalateDue => {
            let due: Vec<(String,)> = on_conn!(conn, connection => sqlx::query_as(
                "SELECT alarm_id FROM alarms WHERE tenant_id = $1 AND state = 'open' AND escalate_due_unix_ms <= $2 \
                 ORDER BY escalate_due_unix_ms LIMIT 1000")
                .bind(tenant).bind(now_unix_ms).fetch_all(&mut *connection).await)?;
            for (alarm_id,) in due {
                let updated = execute(
                    conn,
                    "UPDATE alarms SET state = 'escalated', escalated_unix_ms = $3, updated_unix_ms = $3 \
                     WHERE tenant_id = $1 AND alarm_id = $2 AND state = 'open'",
                    &[Arg::Text(tenant), Arg::Text(&alarm_id), Arg::Integer(now_unix_ms)],
                )
                .await?;
                if updated == 1 {
                    record_transition(conn, tenant, &alarm_id, "escalated", now_unix_ms, &mut transitions).await?;
                }
            }
            Ok(Ok(transitions))
        }
    }
}

/// Whether the device's readings and the progress are still those the evaluation read. Both
/// checks are UPDATEs that change nothing: on PostgreSQL they lock the rows (waiting for a
/// readings write in flight), so nothing moves them before this write commits.
async fn progress_unchanged(
    conn: &mut crate::backend::Conn,
    tenant: &str,
    update: &ProgressUpdate,
) -> Result<bool, sqlx::Error> {
    // A device's first evaluation: make its version row (0) if no readings write has yet; an
    // insert in flight is waited for.
    execute(
        conn,
        "INSERT INTO device_reading_versions (tenant_id, device_id, version) VALUES ($1, $2, 0) \
         ON CONFLICT (tenant_id, device_id) DO NOTHING",
        &[Arg::Text(tenant), Arg::Text(&update.device_id)],
    )
    .await?;
    let readings_unchanged = execute(
        conn,
        "UPDATE device_reading_versions SET version = version WHERE tenant_id = $1 AND device_id = $2 AND version = $3",
        &[Arg::Text(tenant), Arg::Text(&update.device_id), Arg::Integer(update.expected_readings_version)],
    )
    .await?
        == 1;
    if !readings_unchanged {
        return Ok(false);
    }
    let (tenant_arg, device_arg, from_arg) =
        (Arg::Text(tenant), Arg::Text(&update.device_id), Arg::Integer(update.assignment_from_unix_ms));
    Ok(match update.expected_version {
        None => {
            !crate::writer::exists(
                conn,
                "SELECT 1 FROM alarm_progress WHERE tenant_id = $1 AND device_id = $2 AND assignment_from_unix_ms = $3",
                &[tenant_arg, device_arg, from_arg],
            )
            .await?
        }
        Some(expected) => {
            execute(
                conn,
                "UPDATE alarm_progress SET version = version WHERE tenant_id = $1 AND device_id = $2 \
                 AND assignment_from_unix_ms = $3 AND version = $4",
                &[tenant_arg, device_arg, from_arg, Arg::Integer(expected)],
            )
            .await?
                == 1
        }
    })
}

/// Stores one progress (checked by [`progress_unchanged`] in this transaction).
async fn move_progress(
    conn: &mut crate::backend::Conn,
    tenant: &str,
    update: &ProgressUpdate,
    now_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    let args = [
        Arg::Text(tenant),
        Arg::Text(&update.device_id),
        Arg::Integer(update.assignment_from_unix_ms),
        Arg::Integer(update.through_unix_ms),
        Arg::Integer(update.window_start_unix_ms),
        Arg::Text(&update.progress),
        Arg::Integer(now_unix_ms),
    ];
    execute(
        conn,
        "INSERT INTO alarm_progress (tenant_id, device_id, assignment_from_unix_ms, through_unix_ms, \
         window_start_unix_ms, version, stale, progress, updated_unix_ms) VALUES ($1, $2, $3, $4, $5, 1, 0, $6, $7) \
         ON CONFLICT (tenant_id, device_id, assignment_from_unix_ms) DO UPDATE SET through_unix_ms = excluded.through_unix_ms, \
         window_start_unix_ms = excluded.window_start_unix_ms, progress = excluded.progress, \
         updated_unix_ms = excluded.updated_unix_ms, version = alarm_progress.version + 1, stale = 0",
        &args,
    )
    .await?;
    Ok(())
}

/// In the readings' transaction: moves the device's readings version on (an evaluation that read
/// the device before cannot store its result, so it evaluates again and sees these readings) and
/// marks its progress stale where a reading lies before its `through` (the next evaluation starts
/// from the window).
pub(crate) async fn mark_stale(
    conn: &mut crate::backend::Conn,
    tenant: &str,
    device_id: &str,
    earliest_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    execute(
        conn,
        "INSERT INTO device_reading_versions (tenant_id, device_id, version) VALUES ($1, $2, 1) \
         ON CONFLICT (tenant_id, device_id) DO UPDATE SET version = device_reading_versions.version + 1",
        &[Arg::Text(tenant), Arg::Text(device_id)],
    )
    .await?;
    execute(
        conn,
        "UPDATE alarm_progress SET stale = 1, version = version + 1 \
         WHERE tenant_id = $1 AND device_id = $2 AND through_unix_ms > $3",
        &[Arg::Text(tenant), Arg::Text(device_id), Arg::Integer(earliest_unix_ms)],
    )
    .await?;
    Ok(())
}

async fn insert_alarm(
    conn: &mut crate::backend::Conn,
    tenant: &str,
    row: &AlarmRow,
    held: &str,
    now_unix_ms: i64,
) -> Result<(), sqlx::Error> {
    execute(
        conn,
        "INSERT INTO alarms (tenant_id, alarm_id, device_id, assignment_from_unix_ms, target_kind, target, class, rule, \
         severity, state, condition_start_unix_ms, opened_unix_ms, escalate_due_unix_ms, escalated_unix_ms, \
         condition_end_unix_ms, cleared_unix_ms, peak_celsius, acknowledged_by, acknowledged_comment, acknowledged_unix_ms, \
         held_lots, created_unix_ms, updated_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, NULL, NULL, NULL, $18, $19, $19)",
        &[
            Arg::Text(tenant),
            Arg::Text(&row.alarm_id),
            Arg::Text(&row.device_id),
            Arg::Integer(row.assignment_from_unix_ms),
            Arg::Text(&row.target_kind),
            Arg::Text(&row.target),
            Arg::Text(&row.class),
            Arg::Text(&row.rule),
            Arg::Text(&row.severity),
            // A new alarm has no acknowledgement yet: it is at most escalated.
            Arg::Text(if row.escalated_unix_ms.is_some() { "escalated" } else { "open" }),
            Arg::Integer(row.condition_start_unix_ms),
            Arg::Integer(row.opened_unix_ms),
            Arg::Integer(row.escalate_due_unix_ms),
            Arg::OptionalInteger(row.escalated_unix_ms),
            Arg::OptionalInteger(row.condition_end_unix_ms),
            Arg::OptionalInteger(None),
            Arg::Real(row.peak_celsius),
            Arg::Text(held),
            Arg::Integer(now_unix_ms),
        ],
    )
    .await?;
    Ok(())
}

/// Puts the available stock of each lot on `hold` (recalled, expired or quarantined balances keep
/// their status), answering the lots held as `GTIN/lot` separated by spaces.
async fn hold_lots(
    conn: &mut crate::backend::Conn,
    tenant_id: &TenantId,
    lots: &[LotRef],
    alarm_id: &str,
    stock: &mut StockContext<'_>,
) -> Result<String, sqlx::Error> {
    let mut held = Vec::new();
    for lot in lots.iter().take(HELD_LOTS_PER_ALARM_MAX) {
        let context = StockContext { batch: &mut *stock.batch, cache: &mut *stock.cache };
        let places = crate::fulfilment::hold_available(
            conn,
            tenant_id.as_str(),
            lot.gtin.as_str(),
            &lot.lot,
            &format!("hold-{alarm_id}-{}-{}", lot.gtin, lot.lot),
            &format!("cold-chain alarm {alarm_id}"),
            context,
        )
        .await?;
        if !places.is_empty() {
            held.push(format!("{}/{}", lot.gtin, lot.lot));
        }
    }
    Ok(held.join(" "))
}

/// An alarm transition, for the webhooks.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlarmEventRow {
    pub tx: i64,
    pub at_unix_ms: i64,
    pub alarm_id: String,
    pub step: i64,
    pub kind: String,
}

impl AlarmEventRow {
    pub fn cursor(&self) -> crate::fulfilment::TransitionCursor {
        crate::fulfilment::TransitionCursor {
            tx: self.tx,
            at_unix_ms: self.at_unix_ms,
            id: self.alarm_id.clone(),
            seq: self.step,
        }
    }
}

/// Alarm transitions after a webhook's cursor (the id is the alarm, `seq` its step), read only
/// below the horizon of settled transactions ($6).
pub(crate) const ALARM_EVENTS_AFTER_SQL: &str = "SELECT tx, at_unix_ms, alarm_id, step, kind FROM alarm_events \
     WHERE tenant_id = $1 AND tx < $6 AND (tx, at_unix_ms, alarm_id, step) > ($2, $3, $4, $5) \
     ORDER BY tx, at_unix_ms, alarm_id, step LIMIT $7";

/// What an alarm evaluation of a device needs: its assignments under a class that overlap the
/// readings, each with its kept progress, and the device's reading interval.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvaluationInputs {
    pub assignments: Vec<(crate::readings::AssignmentRecord, Option<StoredProgress>)>,
    pub reading_interval_seconds: u32,
    /// The device's readings version when read (0: none yet).
    pub readings_version: i64,
}

impl TenantStore<'_> {
    /// The evaluation inputs of devices, each for its span `[from, to]`, in two reads (devices
    /// not found are left out).
    pub async fn evaluation_inputs(
        &self,
        spans: &[(&str, i64, i64)],
    ) -> Result<std::collections::HashMap<String, EvaluationInputs>, StoreError> {
        let mut inputs: std::collections::HashMap<String, EvaluationInputs> = std::collections::HashMap::new();
        for chunk in spans.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|index| format!("${}", index + 2)).collect();
            let sql = format!(
                "SELECT d.device_id, d.reading_interval_seconds, COALESCE(v.version, 0) FROM devices d \
                 LEFT JOIN device_reading_versions v ON v.tenant_id = d.tenant_id AND v.device_id = d.device_id \
                 WHERE d.tenant_id = $1 AND d.device_id IN ({})",
                list.join(", ")
            );
            let devices: Vec<(String, i64, i64)> = on_pool!(self.store.pools(), pool => {
                let mut query = sqlx::query_as(&sql).bind(self.tenant_id.as_str());
                for (device, ..) in chunk {
                    query = query.bind(*device);
                }
                query.fetch_all(pool).await
            })?;
            for (device, interval, version) in devices {
                let entry = inputs.entry(device).or_default();
                entry.reading_interval_seconds = interval.clamp(1, i64::from(u32::MAX)) as u32;
                entry.readings_version = version;
            }
            let sql = format!(
                "SELECT a.device_id, a.from_unix_ms, a.to_unix_ms, a.target_kind, a.target, a.class, \
                 p.through_unix_ms, p.window_start_unix_ms, p.version, p.stale, p.progress \
                 FROM device_assignments a LEFT JOIN alarm_progress p ON p.tenant_id = a.tenant_id \
                 AND p.device_id = a.device_id AND p.assignment_from_unix_ms = a.from_unix_ms \
                 WHERE a.tenant_id = $1 AND a.class IS NOT NULL AND a.device_id IN ({}) ORDER BY a.device_id, a.from_unix_ms",
                list.join(", ")
            );
            #[derive(sqlx::FromRow)]
            struct Row {
                #[sqlx(flatten)]
                assignment: crate::readings::AssignmentRecord,
                through_unix_ms: Option<i64>,
                window_start_unix_ms: Option<i64>,
                version: Option<i64>,
                stale: Option<i64>,
                progress: Option<String>,
            }
            // Every assignment of the devices: few per device in practice, at most
            // `ASSIGNMENTS_PER_DEVICE_MAX`; the spans pick the overlapping ones.
            let rows: Vec<Row> = on_pool!(self.store.pools(), pool => {
                let mut query = sqlx::query_as(&sql).bind(self.tenant_id.as_str());
                for (device, ..) in chunk {
                    query = query.bind(*device);
                }
                query.fetch_all(pool).await
            })?;
            for row in rows {
                let Some(&(_, from, to)) = chunk.iter().find(|(device, ..)| *device == row.assignment.device_id) else {
                    continue;
                };
                let overlaps =
                    row.assignment.from_unix_ms <= to && row.assignment.to_unix_ms.is_none_or(|end| end > from);
                if !overlaps {
                    continue;
                }
                let kept = match (row.through_unix_ms, row.window_start_unix_ms, row.version, row.stale, row.progress) {
                    (Some(through_unix_ms), Some(window_start_unix_ms), Some(version), Some(stale), Some(progress)) => {
                        Some(StoredProgress { through_unix_ms, window_start_unix_ms, version, stale, progress })
                    }
                    _ => None,
                };
                if let Some(entry) = inputs.get_mut(&row.assignment.device_id) {
                    entry.assignments.push((row.assignment, kept));
                }
            }
        }
        Ok(inputs)
    }

    /// This tenant's alarms, newest first: all, or those in `states`, or of one device.
    pub async fn alarms(
        &self,
        states: &[&str],
        device_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AlarmRow>, StoreError> {
        let state_filter = if states.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = states
                .iter()
                .filter(|state| ["open", "escalated", "acknowledged", "cleared"].contains(state))
                .map(|state| format!("'{state}'"))
                .collect();
            format!(" AND state IN ({})", names.join(", "))
        };
        let sql = format!(
            "SELECT {ALARM_COLUMNS} FROM alarms WHERE tenant_id = $1 AND ($2 IS NULL OR device_id = $2){state_filter} \
             ORDER BY opened_unix_ms DESC, alarm_id LIMIT {}",
            limit.clamp(1, ALARMS_LISTED_MAX)
        );
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(device_id).fetch_all(pool).await)?)
    }

    pub async fn alarm(&self, alarm_id: &str) -> Result<Option<AlarmRow>, StoreError> {
        let sql = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE tenant_id = $1 AND alarm_id = $2");
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(alarm_id).fetch_optional(pool).await)?)
    }

    /// The alarms of a device whose condition started in `[from, to)`.
    pub async fn device_alarms(
        &self,
        device_id: &str,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<Vec<AlarmRow>, StoreError> {
        let sql = format!(
            "SELECT {ALARM_COLUMNS} FROM alarms WHERE tenant_id = $1 AND device_id = $2 \
             AND condition_start_unix_ms >= $3 AND condition_start_unix_ms < $4 ORDER BY condition_start_unix_ms DESC LIMIT {ALARMS_LISTED_MAX}"
        );
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(device_id).bind(from_unix_ms).bind(to_unix_ms).fetch_all(pool).await)?)
    }

    /// Alarm transitions after a webhook's cursor, in the order they were committed (see
    /// [`crate::fulfilment::TransitionCursor`]); `horizon` is from [`Store::settled_horizon`].
    pub async fn alarm_events_after(
        &self,
        after: &crate::fulfilment::TransitionCursor,
        horizon: i64,
        limit: u32,
    ) -> Result<Vec<AlarmEventRow>, StoreError> {
        let tenant = self.tenant_id.as_str();
        Ok(crate::fulfilment::transitions_after(self.store, ALARM_EVENTS_AFTER_SQL, tenant, after, horizon, limit)
            .await?)
    }
}

impl Store {
    /// The tenants with open alarms past their escalation deadline.
    pub async fn tenants_with_escalations_due(&self, now_unix_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pools(), pool => sqlx::query_as(
            "SELECT DISTINCT tenant_id FROM alarms WHERE state = 'open' AND escalate_due_unix_ms <= $1 LIMIT 1000")
            .bind(now_unix_ms).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(tenant,)| tenant).collect())
    }

    /// Every tenant's alarms in `states` (the operator's console), newest first.
    pub async fn all_alarms(&self, states: &[&str], limit: u32) -> Result<Vec<(String, AlarmRow)>, StoreError> {
        let names: Vec<String> = states
            .iter()
            .filter(|state| ["open", "escalated", "acknowledged", "cleared"].contains(state))
            .map(|state| format!("'{state}'"))
            .collect();
        let filter = if names.is_empty() { String::new() } else { format!("WHERE state IN ({})", names.join(", ")) };
        let sql = format!(
            "SELECT tenant_id, {ALARM_COLUMNS} FROM alarms {filter} ORDER BY opened_unix_ms DESC, alarm_id LIMIT {}",
            limit.clamp(1, ALARMS_LISTED_MAX)
        );
        #[derive(sqlx::FromRow)]
        struct Tagged {
            tenant_id: String,
            #[sqlx(flatten)]
            row: AlarmRow,
        }
        let rows: Vec<Tagged> = on_pool!(self.pools(), pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|tagged| (tagged.tenant_id, tagged.row)).collect())
    }
}
