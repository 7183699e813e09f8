//! Cold-chain alarms: evaluated whenever readings arrive, escalated by the clock, acknowledged
//! by a person.
//!
//! A device's readings are judged while it is assigned with a product class (a zone's class by
//! default, an SSCC's products' class, or the class given with the assignment): the class's rules
//! (`coldchain::AlarmRules::for_class`) over the readings of the assignment — its last
//! [`EVALUATION_WINDOW_MS`] at most, so a cumulative budget counts over that stay. Evaluation is
//! `coldchain::evaluate_alarms`, pure and independent of batching and arrival order; the store
//! keeps each alarm in its evaluated state. An alarm that opens is captured as an EPCIS
//! `ObjectEvent` (`bizStep` `sensor_reporting`, a `sensorElementList` with the condition's
//! minimum, maximum and mean and `exception: ALARM_CONDITION`) of the pallet or lots in custody,
//! and a critical pharma alarm puts those lots on `hold` (released only by a person through the
//! lot status, with a reason). Transitions (opened, escalated, acknowledged, cleared) go to the
//! merchant's signed webhooks.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coldchain::{AcknowledgementRecord, AlarmProgress, AlarmRules, AlarmState, ExposureOptions, ProductClass};
use network::TenantId;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use store::alarms::{AlarmMutation, AlarmRow, EvaluatedAlarm, LotRef, ProgressUpdate};
use store::readings::AssignmentRecord;
use store::{Mutation, Store};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::QueryParams;
use crate::dto::{Checker, timestamp};
use crate::extract::{Caller, JsonBody};
use crate::fulfilment::TenantParam;
use crate::problem::Problem;

/// How far back an evaluation reads a device's readings: cumulative budgets count over at most
/// the last 31 days of an assignment.
pub const EVALUATION_WINDOW_MS: i64 = 31 * 24 * 3_600_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alarms))
        .routes(routes!(get_alarm))
        .routes(routes!(acknowledge))
        .routes(routes!(operator_alarms))
}

fn state_name(state: AlarmState) -> &'static str {
    match state {
        AlarmState::Open => "open",
        AlarmState::Escalated => "escalated",
        AlarmState::Acknowledged => "acknowledged",
        AlarmState::Cleared => "cleared",
    }
}

fn severity_name(severity: coldchain::Severity) -> &'static str {
    match severity {
        coldchain::Severity::Warning => "warning",
        coldchain::Severity::Critical => "critical",
    }
}

/// An alarm's stable id: its tenant, device, assignment, rule and condition start.
pub(crate) fn alarm_id(
    tenant: &TenantId,
    assignment: &AssignmentRecord,
    rule: &str,
    condition_start_unix_ms: i64,
) -> String {
    let digest = sha2::Sha256::digest(
        format!("{tenant}\n{}\n{}\n{rule}\n{condition_start_unix_ms}", assignment.device_id, assignment.from_unix_ms)
            .as_bytes(),
    );
    format!("alm_{}", &hex::encode(digest)[..24])
}

/// The lots in custody at an assignment's target during `[from, to]`: an SSCC's announced lots,
/// the lots with stock in a zone then (none for a vehicle: its load is not known lot by lot).
pub(crate) async fn lots_at(
    store: &Store,
    tenant: &TenantId,
    assignment: &AssignmentRecord,
    from_unix_ms: i64,
    to_unix_ms: i64,
) -> Result<Vec<LotRef>, Problem> {
    let tenant_store = store.tenant(tenant);
    let pairs = match assignment.target_kind.as_str() {
        "sscc" => tenant_store.lots_on_pallet(&assignment.target).await?,
        "zone" => match assignment.target.split_once('/') {
            Some((gln, zone)) => tenant_store.lots_in_zone_during(gln, zone, from_unix_ms, to_unix_ms).await?,
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    Ok(pairs
        .into_iter()
        .filter_map(|(gtin, lot)| gs1::Gtin::parse(&gtin).ok().map(|gtin| LotRef { gtin, lot }))
        .collect())
}

/// Evaluations of one device retried when another raced them, at most.
const EVALUATION_ATTEMPTS_MAX: usize = 5;
/// Devices of one ingest evaluated at once, at most.
const EVALUATIONS_IN_FLIGHT_MAX: usize = 16;

/// Evaluates the alarms of the devices whose readings were just stored, each over the span
/// `[from, to]` of those readings' corrected times, and stores them with the evaluations'
/// progress.
pub async fn evaluate_devices(
    store: &Store,
    tenant: &TenantId,
    spans: &[(&str, i64, i64)],
    now: jiff::Timestamp,
) -> Evaluated {
    // First every device at once, stored in one write; a device whose evaluation failed, or all
    // of them when that write was raced, then go one by one with retries.
    let mut inputs = match store.tenant(tenant).evaluation_inputs(spans).await {
        Ok(inputs) => inputs,
        Err(error) => {
            tracing::warn!(%error, "reading the alarm evaluations' inputs failed; trying the devices one by one");
            return evaluate_one_by_one(store, tenant, spans, now).await;
        }
    };
    let mut running = tokio::task::JoinSet::new();
    let mut alarms = Vec::new();
    let mut progress = Vec::new();
    let mut again: Vec<usize> = Vec::new();
    let mut evaluated_devices = Vec::new();
    let mut panicked = 0;
    let mut collect = |done: Result<(usize, DeviceEvaluation), tokio::task::JoinError>| match done {
        Ok((index, Ok((device_alarms, device_progress)))) => {
            alarms.extend(device_alarms);
            progress.extend(device_progress);
            evaluated_devices.push(index);
        }
        Ok((index, Err(problem))) => {
            tracing::debug!(detail = %problem.detail, "an alarm evaluation failed; trying the device alone");
            again.push(index);
        }
        // A panicked evaluation stored nothing: the device's next readings evaluate again.
        Err(error) => {
            tracing::error!(%error, "an alarm evaluation panicked");
            panicked += 1;
        }
    };
    for (index, &(device_id, ..)) in spans.iter().enumerate() {
        let Some(device_inputs) = inputs.remove(device_id) else { continue };
        if device_inputs.assignments.is_empty() {
            continue;
        }
        while running.len() >= EVALUATIONS_IN_FLIGHT_MAX {
            if let Some(done) = running.join_next().await {
                collect(done);
            }
        }
        let (store, tenant, device_id) = (store.clone(), tenant.clone(), device_id.to_owned());
        running.spawn(async move {
            let mut alarms = Vec::new();
            let mut progress = Vec::new();
            let result =
                evaluate_device(&store, &tenant, &device_id, device_inputs, now, &mut alarms, &mut progress).await;
            (index, result.map(|()| (alarms, progress)))
        });
    }
    while let Some(done) = running.join_next().await {
        collect(done);
    }
    let mut stored = 0;
    if !progress.is_empty() {
        if alarms.len() > store::alarms::ALARMS_PER_WRITE_MAX {
            again.extend(evaluated_devices);
        } else {
            // One order for the rows a write locks (readings writes take devices in order too).
            progress.sort_by(|first, second| {
                (&first.device_id, first.assignment_from_unix_ms)
                    .cmp(&(&second.device_id, second.assignment_from_unix_ms))
            });
            alarms.sort_by(|first, second| first.row.alarm_id.cmp(&second.row.alarm_id));
            let count = alarms.len();
            let mutation = Mutation::Alarms(AlarmMutation::Evaluated { alarms, progress });
            match store.tenant(tenant).write(mutation, None).await {
                Ok(_) => stored = count,
                Err(_) => again.extend(evaluated_devices),
            }
        }
    }
    if again.is_empty() {
        return Evaluated { stored, failed: panicked };
    }
    again.sort_unstable();
    let retried: Vec<(&str, i64, i64)> = again.iter().map(|&index| spans[index]).collect();
    let one_by_one = evaluate_one_by_one(store, tenant, &retried, now).await;
    Evaluated { stored: stored + one_by_one.stored, failed: panicked + one_by_one.failed }
}

/// The devices' evaluations each in a write of its own, retried when raced.
async fn evaluate_one_by_one(
    store: &Store,
    tenant: &TenantId,
    spans: &[(&str, i64, i64)],
    now: jiff::Timestamp,
) -> Evaluated {
    let mut running = tokio::task::JoinSet::new();
    let mut stored = 0;
    let mut failed = 0;
    let mut tally = |done: Result<Result<usize, Problem>, tokio::task::JoinError>| match done {
        Ok(Ok(count)) => stored += count,
        Ok(Err(problem)) => {
            failed += 1;
            tracing::warn!(tenant = %tenant, detail = %problem.detail, "an alarm evaluation failed; the device's next readings evaluate again");
        }
        Err(error) => {
            failed += 1;
            tracing::error!(tenant = %tenant, %error, "an alarm evaluation panicked");
        }
    };
    for &(device_id, from, to) in spans {
        while running.len() >= EVALUATIONS_IN_FLIGHT_MAX {
            if let Some(done) = running.join_next().await {
                tally(done);
            }
        }
        let (store, tenant, device_id) = (store.clone(), tenant.clone(), device_id.to_owned());
        running.spawn(async move { evaluate_and_store(&store, &tenant, &device_id, from, to, now).await });
    }
    while let Some(done) = running.join_next().await {
        tally(done);
    }
    Evaluated { stored, failed }
}

/// One device's evaluation: its alarms and progress, or why it failed.
type DeviceEvaluation = Result<(Vec<EvaluatedAlarm>, Vec<ProgressUpdate>), Problem>;

/// What the evaluations of one ingest came to. A failed evaluation does not fail the ingest: its
/// readings are stored, its device's progress did not move (or was marked stale by them), so the
/// device's next evaluation covers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluated {
    pub stored: usize,
    pub failed: usize,
}

/// One device's evaluation and its write. Raced by another evaluation of the device (its
/// progress moved meanwhile), it evaluates again; after [`EVALUATION_ATTEMPTS_MAX`] attempts it
/// leaves the rest to the device's next readings (its progress did not move, so they resume from
/// before these).
async fn evaluate_and_store(
    store: &Store,
    tenant: &TenantId,
    device_id: &str,
    from: i64,
    to: i64,
    now: jiff::Timestamp,
) -> Result<usize, Problem> {
    for _ in 0..EVALUATION_ATTEMPTS_MAX {
        let mut alarms = Vec::new();
        let mut progress = Vec::new();
        let Some(inputs) = store.tenant(tenant).evaluation_inputs(&[(device_id, from, to)]).await?.remove(device_id)
        else {
            return Ok(0);
        };
        evaluate_device(store, tenant, device_id, inputs, now, &mut alarms, &mut progress).await?;
        if progress.is_empty() {
            return Ok(0);
        }
        let count = alarms.len();
        let mutation = Mutation::Alarms(AlarmMutation::Evaluated { alarms, progress });
        match store.tenant(tenant).write(mutation, None).await {
            Ok(_) => return Ok(count),
            Err(store::WriteError::Conflict(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    tracing::warn!(tenant = %tenant, device = device_id, "alarm evaluations of the device kept racing; its next readings resume them");
    Ok(0)
}

/// Evaluates one device's assignments (`inputs`: those under a class that overlap its new
/// readings): from the kept progress when it is not stale, else from the assignment's window (its last [`EVALUATION_WINDOW_MS`] at most,
/// anchored at the first evaluation).
#[allow(clippy::too_many_arguments)]
async fn evaluate_device(
    store: &Store,
    tenant: &TenantId,
    device_id: &str,
    inputs: store::alarms::EvaluationInputs,
    now: jiff::Timestamp,
    evaluated: &mut Vec<EvaluatedAlarm>,
    updates: &mut Vec<ProgressUpdate>,
) -> Result<(), Problem> {
    let now_unix_ms = now.as_millisecond();
    let tenant_store = store.tenant(tenant);
    let at = |unix_ms: i64| jiff::Timestamp::from_millisecond(unix_ms).map_err(Problem::internal);
    for (assignment, kept) in inputs.assignments {
        let Some(class) = assignment.class.as_deref().and_then(|class| class.parse::<ProductClass>().ok()) else {
            continue;
        };
        let end = assignment.to_unix_ms.unwrap_or(now_unix_ms).min(now_unix_ms);
        // The window is anchored once, so that evaluating again names the same alarms.
        let window_start = kept
            .as_ref()
            .map_or(assignment.from_unix_ms.max(end - EVALUATION_WINDOW_MS), |kept| kept.window_start_unix_ms);
        // Readings before `through` mark the progress stale in their own transaction, and every
        // readings write moves the device's readings version on, so an evaluation that did not
        // see them cannot store its result. A progress that is not stale has therefore seen every
        // reading before `through`, those of this ingest included (another evaluation may have
        // taken them in first).
        let resumed =
            kept.as_ref().filter(|kept| kept.stale == 0).and_then(|kept| AlarmProgress::from_json(&kept.progress));
        let start = match &resumed {
            Some(progress) => progress.through.as_millisecond(),
            None => window_start,
        };
        if end <= start {
            continue;
        }
        let mut budget = crate::readings::EXPOSURE_READINGS_MAX;
        let series = crate::readings::series_of(
            store,
            tenant,
            device_id,
            inputs.reading_interval_seconds,
            start,
            end,
            &mut budget,
        )
        .await?;
        let segments = series.timeline(at(start)?, at(end)?);
        let latest = series.span().map_or(at(start)?, |(_, last)| last);
        let rules = AlarmRules::for_class(class);
        let (mut alarms, mut progress) =
            coldchain::evaluate_alarms_from(resumed.as_ref(), &segments, latest, &rules, &[], now);
        // Alarms are rare: the stored ones (and their acknowledgements) are read only when the
        // evaluation finds any.
        let stored = if alarms.is_empty() {
            Vec::new()
        } else {
            tenant_store.device_alarms(device_id, assignment.from_unix_ms, end + 1).await?
        };
        let acknowledgements: Vec<AcknowledgementRecord> = stored
            .iter()
            .filter(|row| row.assignment_from_unix_ms == assignment.from_unix_ms)
            .filter_map(|row| {
                Some(AcknowledgementRecord {
                    alarm: coldchain::AlarmId {
                        rule: row.rule.clone(),
                        condition_start: jiff::Timestamp::from_millisecond(row.condition_start_unix_ms).ok()?,
                    },
                    acknowledgement: coldchain::Acknowledgement {
                        person: row.acknowledged_by.clone()?,
                        comment: row.acknowledged_comment.clone().unwrap_or_default(),
                        at: jiff::Timestamp::from_millisecond(row.acknowledged_unix_ms?).ok()?,
                    },
                })
            })
            .collect();
        if !acknowledgements.is_empty() {
            (alarms, progress) =
                coldchain::evaluate_alarms_from(resumed.as_ref(), &segments, latest, &rules, &acknowledgements, now);
        }
        updates.push(ProgressUpdate {
            device_id: device_id.to_owned(),
            assignment_from_unix_ms: assignment.from_unix_ms,
            expected_version: kept.as_ref().map(|kept| kept.version),
            expected_readings_version: inputs.readings_version,
            window_start_unix_ms: window_start,
            through_unix_ms: progress.through.as_millisecond(),
            progress: progress.to_json(),
        });
        // The stored alarms an alarm of this evaluation is: by its id, or under another start
        // (each stored alarm once).
        let exact: Vec<String> = alarms
            .iter()
            .map(|alarm| alarm_id(tenant, &assignment, &alarm.id().rule, alarm.id().condition_start.as_millisecond()))
            .filter(|id| stored.iter().any(|row| row.alarm_id == *id))
            .collect();
        let mut merged: Vec<&str> = exact.iter().map(String::as_str).collect();
        for alarm in alarms {
            let rule = rules.rules().iter().find(|rule| rule.name == alarm.id().rule);
            let escalate_after = rule.map(|rule| rule.escalate_after).unwrap_or_default();
            let condition_start_unix_ms = alarm.id().condition_start.as_millisecond();
            let mut id = alarm_id(tenant, &assignment, &alarm.id().rule, condition_start_unix_ms);
            // Readings that came late (a device uploading its backlog, MQTT's redeliveries) can
            // move a condition's start: the alarm stored from the readings seen first is the same
            // alarm, and keeps its id, history and acknowledgement, with the start and figures of
            // all the readings. It is the same when its condition overlaps this one's (a
            // continuous rule), or for the same rule at all (a cumulative rule: one alarm a
            // window).
            if !stored.iter().any(|row| row.alarm_id == id) {
                let cumulative =
                    rule.is_some_and(|rule| matches!(rule.persistence, coldchain::Persistence::Cumulative { .. }));
                let end_unix_ms = alarm.condition_end().map_or(i64::MAX, jiff::Timestamp::as_millisecond);
                let same = stored.iter().find(|row| {
                    row.assignment_from_unix_ms == assignment.from_unix_ms
                        && row.rule == alarm.id().rule
                        && !merged.contains(&row.alarm_id.as_str())
                        && (cumulative
                            || row.condition_start_unix_ms <= end_unix_ms
                                && condition_start_unix_ms <= row.condition_end_unix_ms.unwrap_or(i64::MAX))
                });
                if let Some(row) = same {
                    merged.push(&row.alarm_id);
                    id = row.alarm_id.clone();
                }
            }
            let row = AlarmRow {
                alarm_id: id.clone(),
                device_id: device_id.to_owned(),
                assignment_from_unix_ms: assignment.from_unix_ms,
                target_kind: assignment.target_kind.clone(),
                target: assignment.target.clone(),
                class: class.name().to_owned(),
                rule: alarm.id().rule.clone(),
                severity: severity_name(alarm.severity()).to_owned(),
                state: state_name(alarm.state()).to_owned(),
                condition_start_unix_ms,
                opened_unix_ms: alarm.opened_at().as_millisecond(),
                escalate_due_unix_ms: alarm.opened_at().as_millisecond() + escalate_after.as_millis() as i64,
                escalated_unix_ms: alarm.escalated_at().map(jiff::Timestamp::as_millisecond),
                condition_end_unix_ms: alarm.condition_end().map(jiff::Timestamp::as_millisecond),
                cleared_unix_ms: alarm.cleared_at().map(jiff::Timestamp::as_millisecond),
                peak_celsius: alarm.peak_celsius(),
                acknowledged_by: None,
                acknowledged_comment: None,
                acknowledged_unix_ms: None,
                held_lots: String::new(),
            };
            let known = stored.iter().any(|stored| stored.alarm_id == id);
            let (holds, events) = if known {
                (Vec::new(), None)
            } else {
                let condition_end = alarm.condition_end().unwrap_or(at(end)?);
                let condition_start_ms = alarm.id().condition_start.as_millisecond();
                let condition_end_ms = condition_end.as_millisecond();
                let lots = lots_at(store, tenant, &assignment, condition_start_ms, condition_end_ms).await?;
                let holds = if class == ProductClass::Pharma && alarm.severity() == coldchain::Severity::Critical {
                    lots.clone()
                } else {
                    Vec::new()
                };
                // The whole condition, which may have begun before this evaluation's segments.
                let mut budget = crate::readings::EXPOSURE_READINGS_MAX;
                let condition_series = crate::readings::device_series(
                    store,
                    tenant,
                    device_id,
                    condition_start_ms,
                    condition_end_ms,
                    &mut budget,
                )
                .await?;
                let condition = condition_series.timeline(alarm.id().condition_start, condition_end);
                let statistics =
                    coldchain::exposure_of_segments(&condition, &ExposureOptions::new(class.range())).statistics;
                let evidence = crate::steps::SensorEvidence {
                    device_id,
                    target_kind: &assignment.target_kind,
                    target: &assignment.target,
                    lots: &lots,
                    rule: Some(&alarm.id().rule),
                    breached: true,
                    start: alarm.id().condition_start,
                    end: condition_end,
                    minimum_celsius: statistics.map(|statistics| statistics.min_celsius),
                    maximum_celsius: statistics.map(|statistics| statistics.max_celsius),
                    mean_celsius: statistics.map(|statistics| statistics.mean_celsius),
                };
                // The alarm is stored even if its site's zone cannot be read (its event says UTC).
                let zones = match crate::steps::SiteZones::of_target(store, &assignment.target_kind, &assignment.target)
                    .await
                {
                    Ok(zones) => zones,
                    Err(problem) => {
                        tracing::warn!(alarm = %id, detail = %problem.detail, "an alarm site's time zone could not be read");
                        crate::steps::SiteZones::default()
                    }
                };
                // The alarm is stored even if its event cannot be built.
                let events = match crate::steps::sensor_event(tenant, &evidence, alarm.opened_at(), &zones) {
                    Ok(events) => events,
                    Err(problem) => {
                        tracing::warn!(alarm = %id, detail = %problem.detail, "an alarm's EPCIS event could not be built");
                        None
                    }
                };
                (holds, events.map(Box::new))
            };
            evaluated.push(EvaluatedAlarm { row, holds, events });
        }
    }
    Ok(())
}

/// The EPCIS event of the leg a new assignment at `new_from_unix_ms` ends: the open assignment's
/// readings aggregated (minimum, maximum, mean) with `ALARM_CONDITION` when the leg saw an alarm,
/// of the pallet or lots in custody. None without an open assignment, readings or objects.
pub async fn leg_event(
    store: &Store,
    tenant: &TenantId,
    device_id: &str,
    new_from_unix_ms: i64,
) -> Result<Option<store::epcis::Capture>, Problem> {
    let tenant_store = store.tenant(tenant);
    let Some(open) = tenant_store
        .device_assignments_between(device_id, new_from_unix_ms - 1, new_from_unix_ms)
        .await?
        .into_iter()
        .find(|assignment| assignment.to_unix_ms.is_none() && assignment.from_unix_ms < new_from_unix_ms)
    else {
        return Ok(None);
    };
    let at = |unix_ms: i64| jiff::Timestamp::from_millisecond(unix_ms).map_err(Problem::internal);
    let start = open.from_unix_ms.max(new_from_unix_ms - EVALUATION_WINDOW_MS);
    let mut budget = crate::readings::EXPOSURE_READINGS_MAX;
    let series = crate::readings::device_series(store, tenant, device_id, start, new_from_unix_ms, &mut budget).await?;
    let segments = series.timeline(at(start)?, at(new_from_unix_ms)?);
    let range = match open.class.as_deref().and_then(|class| class.parse::<ProductClass>().ok()) {
        Some(class) => class.range(),
        None => coldchain::TemperatureRange::new(None, None).map_err(Problem::internal)?,
    };
    let Some(statistics) = coldchain::exposure_of_segments(&segments, &ExposureOptions::new(range)).statistics else {
        return Ok(None);
    };
    let breached = tenant_store
        .device_alarms(device_id, open.from_unix_ms, new_from_unix_ms)
        .await?
        .iter()
        .any(|alarm| alarm.assignment_from_unix_ms == open.from_unix_ms);
    let lots = lots_at(store, tenant, &open, start, new_from_unix_ms).await?;
    let end = at(new_from_unix_ms)?;
    let zones = crate::steps::SiteZones::of_target(store, &open.target_kind, &open.target).await?;
    crate::steps::sensor_event(
        tenant,
        &crate::steps::SensorEvidence {
            device_id,
            target_kind: &open.target_kind,
            target: &open.target,
            lots: &lots,
            rule: None,
            breached,
            start: at(start)?,
            end,
            minimum_celsius: Some(statistics.min_celsius),
            maximum_celsius: Some(statistics.max_celsius),
            mean_celsius: Some(statistics.mean_celsius),
        },
        end.min(jiff::Timestamp::now()),
        &zones,
    )
}

/// Escalates every tenant's open alarms past their deadline (the worker calls it each tick).
pub async fn escalate_due(store: &Store) -> Result<usize, Problem> {
    let tenants = store.tenants_with_escalations_due(store::now_unix_ms()).await?;
    for tenant in &tenants {
        let Ok(tenant) = TenantId::parse(tenant) else { continue };
        store.tenant(&tenant).write(Mutation::Alarms(AlarmMutation::EscalateDue), None).await?;
    }
    Ok(tenants.len())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlarmView {
    pub alarm_id: String,
    pub device: String,
    /// `zone`, `vehicle` or `sscc`, and which.
    pub target_kind: String,
    pub target: String,
    pub class: String,
    pub rule: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// `open`, `escalated`, `acknowledged` or `cleared`.
    pub state: String,
    pub condition_start: String,
    pub opened_at: String,
    /// When it escalates (or escalated) if not acknowledged.
    pub escalate_at: String,
    pub escalated_at: Option<String>,
    /// When the condition ended; absent while it goes on.
    pub condition_end: Option<String>,
    pub cleared_at: Option<String>,
    /// The worst temperature of the condition.
    pub peak_celsius: f64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_comment: Option<String>,
    pub acknowledged_at: Option<String>,
    /// The lots this alarm put on hold (`GTIN/lot`).
    pub held_lots: Vec<String>,
}

impl From<AlarmRow> for AlarmView {
    fn from(row: AlarmRow) -> Self {
        AlarmView {
            alarm_id: row.alarm_id,
            device: row.device_id,
            target_kind: row.target_kind,
            target: row.target,
            class: row.class,
            rule: row.rule,
            severity: row.severity,
            state: row.state,
            condition_start: timestamp(row.condition_start_unix_ms),
            opened_at: timestamp(row.opened_unix_ms),
            escalate_at: timestamp(row.escalate_due_unix_ms),
            escalated_at: row.escalated_unix_ms.map(timestamp),
            condition_end: row.condition_end_unix_ms.map(timestamp),
            cleared_at: row.cleared_unix_ms.map(timestamp),
            peak_celsius: (row.peak_celsius * 100.0).round() / 100.0,
            acknowledged_by: row.acknowledged_by,
            acknowledged_comment: row.acknowledged_comment,
            acknowledged_at: row.acknowledged_unix_ms.map(timestamp),
            held_lots: row.held_lots.split_whitespace().map(str::to_owned).collect(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlarmListParams {
    /// Comma-separated states (`open,escalated` for those needing a person); default all.
    pub state: Option<String>,
    pub device: Option<String>,
    /// The tenant an operator key acts for.
    pub tenant: Option<String>,
    /// 1–1,000 (default 100).
    pub limit: Option<u32>,
}

fn states(text: Option<&str>) -> Result<Vec<&str>, Problem> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .map(|state| match state {
            "open" | "escalated" | "acknowledged" | "cleared" => Ok(state),
            other => Err(Problem::field(
                "invalid-parameter",
                "?state",
                format!("{other:?} is not open, escalated, acknowledged or cleared"),
            )),
        })
        .collect()
}

fn limit(limit: Option<u32>) -> Result<u32, Problem> {
    let limit = limit.unwrap_or(100);
    if !(1..=store::alarms::ALARMS_LISTED_MAX).contains(&limit) {
        return Err(Problem::field("invalid-parameter", "?limit", "must be 1..=1000"));
    }
    Ok(limit)
}

/// A tenant's cold-chain alarms, newest first.
#[utoipa::path(get, path = "/v1/alarms", tag = "coldchain", params(AlarmListParams),
    responses((status = 200, body = Vec<AlarmView>), (status = 400, body = Problem)))]
async fn list_alarms(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<AlarmListParams>,
) -> Result<Json<Vec<AlarmView>>, Problem> {
    let (_, tenant) = crate::fulfilment::acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let states = states(params.state.as_deref())?;
    let rows = app.store.tenant(&tenant).alarms(&states, params.device.as_deref(), limit(params.limit)?).await?;
    Ok(Json(rows.into_iter().map(AlarmView::from).collect()))
}

/// One alarm.
#[utoipa::path(get, path = "/v1/alarms/{alarm_id}", tag = "coldchain", params(("alarm_id" = String, Path), TenantParam),
    responses((status = 200, body = AlarmView), (status = 404, body = Problem)))]
async fn get_alarm(
    State(app): State<AppState>,
    caller: Caller,
    Path(alarm_id): Path<String>,
    QueryParams(params): QueryParams<TenantParam>,
) -> Result<Json<AlarmView>, Problem> {
    let (_, tenant) = crate::fulfilment::acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let row = app.store.tenant(&tenant).alarm(&alarm_id).await?;
    row.map(|row| Json(AlarmView::from(row))).ok_or_else(|| Problem::not_found(format!("alarm {alarm_id}")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementInput {
    /// Who acknowledges (a name or an employee id), 1–256 bytes.
    pub person: String,
    /// What was seen or done, 1–4,096 bytes.
    pub comment: String,
}

/// A person acknowledges an open or escalated alarm, with a comment. It clears at once if its
/// condition has ended, otherwise when the condition ends.
#[utoipa::path(post, path = "/v1/alarms/{alarm_id}/acknowledge", tag = "coldchain", request_body = AcknowledgementInput,
    params(("alarm_id" = String, Path), TenantParam),
    responses((status = 200, body = AlarmView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn acknowledge(
    State(app): State<AppState>,
    caller: Caller,
    Path(alarm_id): Path<String>,
    QueryParams(params): QueryParams<TenantParam>,
    body: JsonBody<AcknowledgementInput>,
) -> Result<Response, Problem> {
    let (_, tenant) = crate::fulfilment::acting_tenant(&app, &caller, params.tenant.as_deref(), true).await?;
    let row = acknowledge_alarm(&app.store, &tenant, &alarm_id, body.value).await?;
    Ok((StatusCode::OK, Json(AlarmView::from(row))).into_response())
}

/// A person acknowledges a tenant's alarm (the API and the operator's console).
pub async fn acknowledge_alarm(
    store: &Store,
    tenant: &TenantId,
    alarm_id: &str,
    input: AcknowledgementInput,
) -> Result<store::alarms::AlarmRow, Problem> {
    let mut checker = Checker::default();
    if input.person.trim().is_empty() || input.person.len() > coldchain::alarm::PERSON_LENGTH_MAX {
        checker.fail("/person", "1 to 256 bytes");
    }
    if input.comment.trim().is_empty() || input.comment.len() > coldchain::alarm::COMMENT_LENGTH_MAX {
        checker.fail("/comment", "1 to 4096 bytes");
    }
    checker.finish()?;
    let mutation = Mutation::Alarms(AlarmMutation::Acknowledge {
        alarm_id: alarm_id.to_owned(),
        person: input.person,
        comment: input.comment,
    });
    match store.tenant(tenant).write(mutation, None).await {
        Ok(_) => {}
        Err(store::WriteError::NotFound) => return Err(Problem::not_found(format!("alarm {alarm_id}"))),
        Err(error) => return Err(error.into()),
    }
    let row = store.tenant(tenant).alarm(alarm_id).await?;
    row.ok_or_else(|| Problem::not_found(format!("alarm {alarm_id}")))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorAlarmView {
    pub tenant_id: String,
    #[serde(flatten)]
    pub alarm: AlarmView,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperatorAlarmParams {
    /// Comma-separated states; default `open,escalated`.
    pub state: Option<String>,
    /// 1–1,000 (default 100).
    pub limit: Option<u32>,
}

/// Every tenant's alarms needing a person (the operator's console), newest first.
#[utoipa::path(get, path = "/v1/operator/alarms", tag = "coldchain", params(OperatorAlarmParams),
    responses((status = 200, body = Vec<OperatorAlarmView>), (status = 403, body = Problem)))]
async fn operator_alarms(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<OperatorAlarmParams>,
) -> Result<Json<Vec<OperatorAlarmView>>, Problem> {
    if !caller.0.is_operator() {
        return Err(Problem::new("forbidden", "the operator's alarms need an operator key"));
    }
    let states = states(Some(params.state.as_deref().unwrap_or("open,escalated")))?;
    let rows = app.store.all_alarms(&states, limit(params.limit)?).await?;
    Ok(Json(
        rows.into_iter().map(|(tenant_id, row)| OperatorAlarmView { tenant_id, alarm: AlarmView::from(row) }).collect(),
    ))
}
