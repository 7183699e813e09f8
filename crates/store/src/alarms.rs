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
use crate::fulfilment::{FulfilmentMutation, StockContext};
use crate::writer::{Arg, WriteError, execute, exists};
use crate::{Store, StoreError, TenantStore};

/// Alarms one list answers, at most.
pub const ALARMS_LISTED_MAX: u32 = 1_000;
/// Alarms one evaluation stores, at most.
pub const ALARMS_PER_WRITE_MAX: usize = 1_000;
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
/// from (`expected_through`; none when it started from scratch).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    pub device_id: String,
    pub assignment_from_unix_ms: i64,
    pub expected_through_unix_ms: Option<i64>,
    pub through_unix_ms: i64,
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
            // Every progress first: a raced evaluation stores nothing.
            for update in progress {
                if !move_progress(conn, tenant, update, now_unix_ms).await? {
                    return Ok(Err(WriteError::Conflict(format!(
                        "the alarm evaluation of device {}",
                        update.device_id
                    ))));
                }
            }
            for alarm in alarms {
                let row = &alarm.row;
                match stored_alarm(conn, tenant, &row.alarm_id).await? {
                    None => {
                        let held =
                            hold_lots(conn, tenant_id, &alarm.holds, &row.alarm_id, now_unix_ms, &mut stock).await?;
                        insert_alarm(conn, tenant, row, &held, now_unix_ms).await?;
                        record_transition(conn, tenant, &row.alarm_id, "opened", now_unix_ms, &mut transitions).await?;
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
                    }
                    Some(stored) => {
                        let state = if rank(&row.state) >= rank(&stored.state) { &row.state } else { &stored.state };
                        let escalated = stored.escalated_unix_ms.or(row.escalated_unix_ms);
                        let changed = state != &stored.state
                            || escalated != stored.escalated_unix_ms
                            || row.condition_end_unix_ms != stored.condition_end_unix_ms
                            || row.peak_celsius != stored.peak_celsius;
                        if !changed {
                            continue;
                        }
                        let cleared = if state == "cleared" {
                            stored.cleared_unix_ms.or(row.cleared_unix_ms).or(Some(now_unix_ms))
                        } else {
                            None
                        };
                        execute(
                            conn,
                            "UPDATE alarms SET state = $3, escalated_unix_ms = $4, condition_end_unix_ms = $5, \
                             cleared_unix_ms = $6, peak_celsius = $7, updated_unix_ms = $8 WHERE tenant_id = $1 AND alarm_id = $2",
                            &[
                                Arg::Text(tenant),
                                Arg::Text(&row.alarm_id),
                                Arg::Text(state),
                                Arg::OptionalInteger(escalated),
                                Arg::OptionalInteger(row.condition_end_unix_ms),
                                Arg::OptionalInteger(cleared),
                                Arg::Real(row.peak_celsius),
                                Arg::Integer(now_unix_ms),
                            ],
                        )
                        .await?;
                        if escalated.is_some() && stored.escalated_unix_ms.is_none() {
                            record_transition(conn, tenant, &row.alarm_id, "escalated", now_unix_ms, &mut transitions)
                                .await?;
                        }
                        if state == "cleared" && stored.state != "cleared" {
                            record_transition(conn, tenant, &row.alarm_id, "cleared", now_unix_ms, &mut transitions)
                                .await?;
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
            execute(
                conn,
                "UPDATE alarms SET state = $3, acknowledged_by = $4, acknowledged_comment = $5, acknowledged_unix_ms = $6, \
                 cleared_unix_ms = $7, updated_unix_ms = $6 WHERE tenant_id = $1 AND alarm_id = $2",
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
                execute(
                    conn,
                    "UPDATE alarms SET state = 'escalated', escalated_unix_ms = $3, updated_unix_ms = $3 \
                     WHERE tenant_id = $1 AND alarm_id = $2 AND state = 'open'",
                    &[Arg::Text(tenant), Arg::Text(&alarm_id), Arg::Integer(now_unix_ms)],
                )
                .await?;
                record_transition(conn, tenant, &alarm_id, "escalated", now_unix_ms, &mut transitions).await?;
            }
            Ok(Ok(transitions))
        }
    }
}

/// Compare-and-set of one progress: answers whether it moved.
async fn move_progress(
    conn: &mut crate::backend::Conn,
    tenant: &str,
    update: &ProgressUpdate,
    now_unix_ms: i64,
) -> Result<bool, sqlx::Error> {
    let moved = match update.expected_through_unix_ms {
        None => {
            execute(
                conn,
                "INSERT INTO alarm_progress (tenant_id, device_id, assignment_from_unix_ms, through_unix_ms, progress, updated_unix_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, device_id, assignment_from_unix_ms) DO NOTHING",
                &[
                    Arg::Text(tenant),
                    Arg::Text(&update.device_id),
                    Arg::Integer(update.assignment_from_unix_ms),
                    Arg::Integer(update.through_unix_ms),
                    Arg::Text(&update.progress),
                    Arg::Integer(now_unix_ms),
                ],
            )
            .await?
        }
        Some(expected) => {
            execute(
                conn,
                "UPDATE alarm_progress SET through_unix_ms = $4, progress = $5, updated_unix_ms = $6 \
                 WHERE tenant_id = $1 AND device_id = $2 AND assignment_from_unix_ms = $3 AND through_unix_ms = $7",
                &[
                    Arg::Text(tenant),
                    Arg::Text(&update.device_id),
                    Arg::Integer(update.assignment_from_unix_ms),
                    Arg::Integer(update.through_unix_ms),
                    Arg::Text(&update.progress),
                    Arg::Integer(now_unix_ms),
                    Arg::Integer(expected),
                ],
            )
            .await?
        }
    };
    Ok(moved == 1)
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

/// Puts each lot with available stock on `hold` (everywhere), answering those held as
/// `GTIN/lot` separated by spaces.
async fn hold_lots(
    conn: &mut crate::backend::Conn,
    tenant_id: &TenantId,
    lots: &[LotRef],
    alarm_id: &str,
    now_unix_ms: i64,
    stock: &mut StockContext<'_>,
) -> Result<String, sqlx::Error> {
    let mut held = Vec::new();
    for lot in lots.iter().take(HELD_LOTS_PER_ALARM_MAX) {
        if !exists(
            conn,
            "SELECT 1 FROM stock_balances WHERE tenant_id = $1 AND gtin = $2 AND lot = $3 AND status = 'available'",
            &[Arg::Text(tenant_id.as_str()), Arg::Text(lot.gtin.as_str()), Arg::Text(&lot.lot)],
        )
        .await?
        {
            continue;
        }
        let change = FulfilmentMutation::SetLotStatus {
            operation_id: format!("hold-{alarm_id}-{}-{}", lot.gtin, lot.lot),
            gtin: lot.gtin.clone(),
            lot: lot.lot.clone(),
            location: None,
            status: stock::LotStatus::Hold,
            reason: format!("cold-chain alarm {alarm_id}"),
        };
        let context = StockContext { batch: &mut *stock.batch, cache: &mut *stock.cache };
        if crate::fulfilment::apply_fulfilment(conn, tenant_id, &change, now_unix_ms, context).await?.is_ok() {
            held.push(format!("{}/{}", lot.gtin, lot.lot));
        }
    }
    Ok(held.join(" "))
}

/// An alarm transition, for the webhooks.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlarmEventRow {
    pub at_unix_ms: i64,
    pub alarm_id: String,
    pub step: i64,
    pub kind: String,
}

impl TenantStore<'_> {
    /// Where the evaluation of a device's assignment stands: (through, progress JSON).
    pub async fn alarm_progress(
        &self,
        device_id: &str,
        assignment_from_unix_ms: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(
            "SELECT through_unix_ms, progress FROM alarm_progress WHERE tenant_id = $1 AND device_id = $2 \
             AND assignment_from_unix_ms = $3")
            .bind(self.tenant_id.as_str()).bind(device_id).bind(assignment_from_unix_ms).fetch_optional(pool).await)?)
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
             AND condition_start_unix_ms >= $3 AND condition_start_unix_ms < $4 ORDER BY condition_start_unix_ms LIMIT {ALARMS_LISTED_MAX}"
        );
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(device_id).bind(from_unix_ms).bind(to_unix_ms).fetch_all(pool).await)?)
    }

    /// Alarm transitions after a cursor (at, alarm, step), oldest first.
    pub async fn alarm_events_after(
        &self,
        after: (i64, &str, i64),
        limit: u32,
    ) -> Result<Vec<AlarmEventRow>, StoreError> {
        let sql = format!(
            "SELECT at_unix_ms, alarm_id, step, kind FROM alarm_events WHERE tenant_id = $1 AND \
             (at_unix_ms > $2 OR (at_unix_ms = $2 AND (alarm_id > $3 OR (alarm_id = $3 AND step > $4)))) \
             ORDER BY at_unix_ms, alarm_id, step LIMIT {}",
            limit.clamp(1, 1_000)
        );
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(after.0).bind(after.1).bind(after.2).fetch_all(pool).await)?)
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
