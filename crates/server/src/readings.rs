//! Temperature readings in: `POST /v1/readings` takes a JSON batch (`application/json`) or a
//! SenML pack (`application/senml+json`, RFC 8428) from a device key or a tenant writer, and
//! `GET /v1/readings` lists a device's readings.
//!
//! **Partial success.** A batch is parsed record by record (`coldchain`); a record that is not a
//! valid reading (no numeric value, a wrong unit, NaN, an implausible temperature, a clock too far
//! ahead) or that names a device this tenant has not registered is rejected, and the valid rest
//! is stored. When nothing is rejected the answer is 201 with the counts; otherwise it is a 422
//! problem `readings-rejected` whose `errors` name each rejected record by its JSON pointer
//! (`/3`), with `accepted` and `duplicates` telling what was kept. A malformed batch (not JSON,
//! not an array, too many records, a SenML version or must-understand field not understood) is
//! refused whole and stores nothing. Duplicates (same device, same device time) are dropped.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coldchain::{Batch, BatchError, ExposureOptions, ProductClass, Reading, Series, Stay};
use network::{DeviceId, TenantId};
use serde::{Deserialize, Serialize};
use store::readings::{AssignmentRecord, AssignmentTarget, READINGS_PER_WRITE_MAX, StoredReading};
use store::{Mutation, Principal, Scope, Store, Write, WriteOutcome};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::QueryParams;
use crate::dto::{Checker, timestamp};
use crate::extract::{Caller, JsonBody};
use crate::problem::{FieldError, Problem, StoredCounts};

/// The largest readings body: 100,000 SenML records of about 80 bytes.
pub const READINGS_BYTES_MAX: usize = 8 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_readings, list_readings))
        .routes(routes!(assign, list_assignments))
        .routes(routes!(exposure_of))
        .layer(DefaultBodyLimit::max(READINGS_BYTES_MAX))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingsAccepted {
    /// Readings stored now.
    pub accepted: u64,
    /// Valid readings already stored before (same device, same device time), dropped.
    pub duplicates: u64,
}

/// Who may send readings: a device key, or a tenant writer (not the operator: readings belong to
/// a tenant's devices).
fn reading_sender(caller: &Caller) -> Result<&Principal, Problem> {
    let principal = &caller.0;
    if principal.tenant_id.is_network() {
        return Err(Problem::new("forbidden", "readings belong to a tenant's devices: send them with its device key"));
    }
    if principal.has(Scope::Device) || principal.has(Scope::TenantWrite) {
        Ok(principal)
    } else {
        Err(Problem::new("forbidden", "sending readings needs the device or the tenant:write scope"))
    }
}

/// Parses a readings body by its media type.
pub fn parse_body(content_type: &str, body: &[u8], received_at: jiff::Timestamp) -> Result<Batch, Problem> {
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).map_err(|_| Problem::new("malformed-json", "the body is not UTF-8"))?;
    let parsed = match media_type.as_str() {
        "application/senml+json" => coldchain::parse_senml(text, received_at),
        "application/json" => coldchain::parse_json_batch(text, received_at),
        _ => {
            return Err(Problem::new(
                "unsupported-media-type",
                format!("readings are application/json (a batch) or application/senml+json, found {content_type:?}"),
            ));
        }
    };
    parsed.map_err(|error| match error {
        BatchError::NotJson(detail) => Problem::new("malformed-json", detail),
        BatchError::TooManyRecords { .. } => Problem::new("payload-too-large", error.to_string()),
        other => Problem::new("validation-failed", other.to_string()),
    })
}

/// The readings of a batch whose devices are this tenant's, as stored rows; the others are added
/// to `rejected` as (record index, reason).
async fn own_readings(
    store: &Store,
    tenant: &TenantId,
    batch: &Batch,
    only_device: Option<&str>,
    rejected: &mut Vec<(usize, String)>,
) -> Result<Vec<StoredReading>, Problem> {
    let mut devices: Vec<&str> = batch.readings.iter().map(Reading::device).collect();
    devices.sort_unstable();
    devices.dedup();
    let known = store.tenant(tenant).known_devices(&devices).await?;
    let mut rows = Vec::with_capacity(batch.readings.len());
    for (reading, index) in batch.readings.iter().zip(record_indexes(batch)) {
        if let Some(only) = only_device
            && reading.device() != only
        {
            rejected.push((
                index,
                format!("device {:?} is not the device {only:?} this message is from", reading.device()),
            ));
        } else if known.contains(reading.device()) {
            rows.push(StoredReading {
                device_id: reading.device().to_owned(),
                device_unix_ms: reading.device_time().as_millisecond(),
                corrected_unix_ms: reading.corrected_time().as_millisecond(),
                received_unix_ms: reading.received_at().as_millisecond(),
                celsius: reading.celsius(),
            });
        } else {
            rejected.push((index, format!("device {:?} is not a registered device of this tenant", reading.device())));
        }
    }
    Ok(rows)
}

/// What one readings body came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// Readings stored now.
    pub accepted: u64,
    /// Valid readings already stored (same device, same device time), dropped.
    pub duplicates: u64,
    /// Rejected records: (index in the batch, why), by index.
    pub rejected: Vec<(usize, String)>,
}

/// Ingests one readings body of a tenant (the endpoint, the MQTT subscriber and the benchmark
/// call it): parsed by its media type, readings of unregistered devices rejected, the rest
/// stored through the writer with duplicates dropped. A malformed body is an error and stores
/// nothing. With `only_device` (an MQTT topic's device), readings of other devices are rejected.
pub async fn ingest(
    store: &Store,
    tenant: &TenantId,
    content_type: &str,
    body: &[u8],
    received_at: jiff::Timestamp,
    only_device: Option<&str>,
) -> Result<Ingested, Problem> {
    let batch = parse_body(content_type, body, received_at)?;
    let mut rejected: Vec<(usize, String)> =
        batch.rejected.iter().map(|record| (record.index, record.reason.to_string())).collect();
    let rows = own_readings(store, tenant, &batch, only_device, &mut rejected).await?;
    let valid = rows.len() as u64;
    let mut accepted = 0;
    for chunk in rows.chunks(READINGS_PER_WRITE_MAX) {
        let write =
            Write { tenant_id: tenant.clone(), mutation: Mutation::Readings(chunk.to_vec()), idempotency: None };
        if let WriteOutcome::Applied(applied) = store.write(write).await? {
            accepted += applied.rows;
        }
    }
    // Each device's alarms over the span of its readings just received (duplicates included:
    // evaluation is idempotent, and a retried batch finds what the first one missed).
    let mut spans: std::collections::BTreeMap<&str, (i64, i64)> = std::collections::BTreeMap::new();
    for row in &rows {
        let span = spans.entry(&row.device_id).or_insert((row.corrected_unix_ms, row.corrected_unix_ms));
        span.0 = span.0.min(row.corrected_unix_ms);
        span.1 = span.1.max(row.corrected_unix_ms);
    }
    let spans: Vec<(&str, i64, i64)> = spans.into_iter().map(|(device, (from, to))| (device, from, to)).collect();
    // Evaluation failures are logged and left to the devices' next readings (see
    // `alarms::Evaluated`): the readings are stored either way.
    crate::alarms::evaluate_devices(store, tenant, &spans, jiff::Timestamp::now()).await;
    rejected.sort_by_key(|(index, _)| *index);
    Ok(Ingested { accepted, duplicates: valid - accepted.min(valid), rejected })
}

/// Sends temperature readings: a JSON batch (`[{"device", "time", "value", "unit"}]`) or a SenML
/// pack (`application/senml+json`; base name, time, unit; relative times; `Cel`, `K`, `[degF]`).
/// Stored in °C with the device's, the corrected and the receive time. Partial success: the
/// valid readings are kept and the rejected ones listed in a 422 problem (see the module docs).
#[utoipa::path(post, path = "/v1/readings", tag = "coldchain",
    request_body(content = String, description = "A JSON batch or a SenML pack", content_type = "application/senml+json"),
    responses((status = 201, body = ReadingsAccepted), (status = 422, body = Problem), (status = 415, body = Problem)))]
async fn post_readings(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Problem> {
    let principal = reading_sender(&caller)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new("payload-too-large", format!("a readings body is at most {READINGS_BYTES_MAX} bytes"))
        } else {
            Problem::new("malformed-json", rejection.body_text())
        }
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let ingested = ingest(&app.store, &principal.tenant_id, content_type, &body, jiff::Timestamp::now(), None).await?;
    let counts = ReadingsAccepted { accepted: ingested.accepted, duplicates: ingested.duplicates };
    if ingested.rejected.is_empty() {
        return Ok((StatusCode::CREATED, Json(counts)).into_response());
    }
    let mut problem = Problem::new(
        "readings-rejected",
        format!(
            "{} of the batch's records were rejected; the {} valid readings were kept ({} stored, {} duplicates)",
            ingested.rejected.len(),
            counts.accepted + counts.duplicates,
            counts.accepted,
            counts.duplicates
        ),
    );
    problem.errors = ingested
        .rejected
        .into_iter()
        .take(crate::dto::FIELD_ERRORS_MAX)
        .map(|(index, detail)| FieldError { pointer: format!("/{index}"), detail })
        .collect();
    problem.stored = Some(Box::new(StoredCounts { accepted: counts.accepted, duplicates: counts.duplicates }));
    Err(problem)
}

/// The record index of each parsed reading: parsing keeps the records' order, so the readings
/// are the records not rejected, in order.
fn record_indexes(batch: &Batch) -> Vec<usize> {
    let rejected: std::collections::HashSet<usize> = batch.rejected.iter().map(|record| record.index).collect();
    (0..).filter(|index| !rejected.contains(index)).take(batch.readings.len()).collect()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadingListParams {
    pub device: String,
    /// RFC 3339; default 24 h before `to`.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now.
    pub to: Option<String>,
    /// 1–10,000 (default 1,000).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingView {
    pub device: String,
    pub device_time: String,
    pub corrected_time: String,
    pub received_at: String,
    pub celsius: f64,
}

/// A device's readings in a period, oldest first (by device time).
#[utoipa::path(get, path = "/v1/readings", tag = "coldchain", params(ReadingListParams),
    responses((status = 200, body = Vec<ReadingView>), (status = 400, body = Problem)))]
async fn list_readings(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ReadingListParams>,
) -> Result<Json<Vec<ReadingView>>, Problem> {
    let principal = crate::api::require_reader(&caller)?;
    let time = |text: &Option<String>, name: &str| -> Result<Option<i64>, Problem> {
        text.as_deref()
            .map(|text| {
                text.parse::<jiff::Timestamp>()
                    .map(|time| time.as_millisecond())
                    .map_err(|error| Problem::field("invalid-parameter", format!("?{name}"), error.to_string()))
            })
            .transpose()
    };
    let to = time(&params.to, "to")?.unwrap_or_else(store::now_unix_ms);
    let from = time(&params.from, "from")?.unwrap_or(to - 24 * 3_600_000);
    let limit = params.limit.unwrap_or(1_000);
    if !(1..=store::readings::READINGS_LISTED_MAX).contains(&limit) {
        return Err(Problem::field("invalid-parameter", "?limit", "must be 1..=10000"));
    }
    let readings = app.store.tenant(&principal.tenant_id).readings(&params.device, from, to, limit).await?;
    Ok(Json(
        readings
            .into_iter()
            .map(|reading| ReadingView {
                device: reading.device_id,
                device_time: timestamp(reading.device_unix_ms),
                corrected_time: timestamp(reading.corrected_unix_ms),
                received_at: timestamp(reading.received_unix_ms),
                celsius: reading.celsius,
            })
            .collect(),
    ))
}

// ---------- device assignments ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneRef {
    /// The location's GLN.
    pub location: String,
    pub zone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentInput {
    /// From when (RFC 3339; default now); must be after the device's latest assignment.
    pub from: Option<String>,
    /// Exactly one of `zone`, `vehicle`, `sscc`.
    pub zone: Option<ZoneRef>,
    /// A vehicle's id (a reefer trailer, a van), 1–64 characters.
    pub vehicle: Option<String>,
    /// A container or pallet: its SSCC.
    pub sscc: Option<String>,
    /// The product class whose alarm rules judge the readings taken there (`pharma`, `chilled`,
    /// `frozen`, `fish`). Default: the zone's class by its range, or the class of the SSCC's
    /// announced products; none for a vehicle (readings kept, not judged).
    pub class: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentView {
    pub device: String,
    pub from: String,
    /// When the next assignment began; open while none.
    pub to: Option<String>,
    /// `zone`, `vehicle` or `sscc`.
    pub kind: String,
    /// `GLN/zone`, the vehicle id, or the SSCC.
    pub target: String,
    /// The product class whose alarm rules judge the readings, if any.
    pub class: Option<String>,
}

impl From<AssignmentRecord> for AssignmentView {
    fn from(record: AssignmentRecord) -> Self {
        AssignmentView {
            device: record.device_id,
            from: timestamp(record.from_unix_ms),
            to: record.to_unix_ms.map(timestamp),
            kind: record.target_kind,
            target: record.target,
            class: record.class,
        }
    }
}

const VEHICLE_KEY_LENGTH_MAX: usize = 64;
/// How far ahead of now an assignment may start (history is appended: a start far ahead would
/// block every assignment before it).
pub const ASSIGNMENT_AHEAD_MS_MAX: i64 = 5 * 60 * 1000;

fn assignment_target(input: &AssignmentInput, checker: &mut Checker) -> Option<AssignmentTarget> {
    let given =
        [input.zone.is_some(), input.vehicle.is_some(), input.sscc.is_some()].iter().filter(|given| **given).count();
    if given != 1 {
        checker.fail("/zone", "give exactly one of zone, vehicle, sscc");
        return None;
    }
    if let Some(zone) = &input.zone {
        let gln = checker.check("/zone/location", gs1::Gln::parse(&zone.location));
        let name = checker.check("/zone/zone", network::ZoneName::parse(&zone.zone));
        return Some(AssignmentTarget::Zone { gln: gln?, zone: name? });
    }
    if let Some(vehicle) = &input.vehicle {
        if vehicle.len() > VEHICLE_KEY_LENGTH_MAX {
            checker.fail("/vehicle", format!("at most {VEHICLE_KEY_LENGTH_MAX} characters"));
            return None;
        }
        return checker
            .check("/vehicle", coldchain::reading::check_device_key(vehicle).map(|_| vehicle.clone()))
            .map(AssignmentTarget::Vehicle);
    }
    let sscc = input.sscc.as_deref().unwrap_or_default();
    checker.check("/sscc", gs1::Sscc::parse(sscc)).map(AssignmentTarget::Sscc)
}

/// Places a device from a time on: in a location zone, on a vehicle, or in a container (an SSCC).
/// Its open assignment ends there; history is kept. The leg it ends is captured as an EPCIS
/// `sensor_reporting` event of the pallet or lots there with its readings' minimum, maximum and
/// mean (and `ALARM_CONDITION` when the leg saw an alarm).
#[utoipa::path(post, path = "/v1/devices/{device_id}/assignments", tag = "coldchain", request_body = AssignmentInput,
    params(("device_id" = String, Path)),
    responses((status = 201, body = AssignmentView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn assign(
    State(app): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
    body: JsonBody<AssignmentInput>,
) -> Result<Response, Problem> {
    let principal = crate::api::require_writer(&caller)?;
    let input = body.value;
    let mut checker = Checker::default();
    let device = checker.check("/device_id", DeviceId::parse(&device_id));
    let from = crate::fulfilment::parse_time(&mut checker, "/from", &input.from);
    let target = assignment_target(&input, &mut checker);
    let class = input
        .class
        .as_deref()
        .and_then(|class| checker.check("/class", class.parse::<ProductClass>().map_err(|error| error.to_string())));
    checker.finish()?;
    let (Some(device), Some(target)) = (device, target) else {
        return Err(Problem::internal("a field failed without an error"));
    };
    let now = store::now_unix_ms();
    let from_unix_ms = from.unwrap_or(now);
    if from_unix_ms > now + ASSIGNMENT_AHEAD_MS_MAX {
        return Err(Problem::field("validation-failed", "/from", "must not lie more than 5 minutes ahead of now"));
    }
    let class = match class {
        Some(class) => Some(class),
        None => default_class(&app.store, &principal.tenant_id, &target).await?,
    };
    let class = class.map(|class| class.name().to_owned());
    let view = AssignmentView {
        device: device.to_string(),
        from: timestamp(from_unix_ms),
        to: None,
        kind: target.kind().to_owned(),
        target: target.key(),
        class: class.clone(),
    };
    // The leg the device leaves is recorded with its readings' aggregates.
    let events = match crate::alarms::leg_event(&app.store, &principal.tenant_id, device.as_str(), from_unix_ms).await {
        Ok(events) => events.map(Box::new),
        // The device moves on regardless; the leg's event is left out.
        Err(problem) => {
            tracing::warn!(device = %device, detail = %problem.detail, "the leg's EPCIS event could not be built");
            None
        }
    };
    let mutation = Mutation::AssignDevice { device_id: device, from_unix_ms, target, class, events };
    let tenant = principal.tenant_id.clone();
    crate::api::write(&app, principal, crate::extract::IdempotencyKey(None), None, tenant, mutation, |_| {
        store::StoredResponse { status: 201, body: Vec::new() }
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The class a target keeps by default: a zone's by its range (−18 °C or colder: frozen; within
/// 2–8 °C: pharma; within 0–4 °C: chilled), an SSCC's by its announced products (the strictest
/// of pharma, frozen, chilled); none otherwise.
async fn default_class(
    store: &Store,
    tenant: &TenantId,
    target: &AssignmentTarget,
) -> Result<Option<ProductClass>, Problem> {
    match target {
        AssignmentTarget::Zone { gln, zone } => {
            let location = store.tenant(tenant).location(gln).await?;
            let range = location
                .and_then(|location| location.value.zones.into_iter().find(|candidate| candidate.name == *zone))
                .map(|zone| zone.range);
            Ok(range.and_then(|range| {
                let within = |class: network::TemperatureClass| class.range().covers(&range);
                if range.max_celsius.is_some_and(|max| max <= -18.0) {
                    Some(ProductClass::Frozen)
                } else if within(network::TemperatureClass::Pharma) {
                    Some(ProductClass::Pharma)
                } else if within(network::TemperatureClass::Chilled) {
                    Some(ProductClass::Chilled)
                } else {
                    None
                }
            }))
        }
        AssignmentTarget::Sscc(sscc) => {
            let mut found = None;
            for (gtin, _) in store.tenant(tenant).lots_on_pallet(sscc.as_str()).await? {
                let Ok(gtin) = gs1::Gtin::parse(&gtin) else { continue };
                let Some(product) = store.tenant(tenant).product(&gtin).await? else { continue };
                let Some(class) = crate::reports::product_class(&product.temperature_class) else { continue };
                let rank = |class: ProductClass| match class {
                    ProductClass::Pharma => 3,
                    ProductClass::Frozen => 2,
                    _ => 1,
                };
                if found.is_none_or(|found| rank(class) > rank(found)) {
                    found = Some(class);
                }
            }
            Ok(found)
        }
        AssignmentTarget::Vehicle(_) => Ok(None),
    }
}

/// A device's assignments, oldest first.
#[utoipa::path(get, path = "/v1/devices/{device_id}/assignments", tag = "coldchain", params(("device_id" = String, Path)),
    responses((status = 200, body = Vec<AssignmentView>)))]
async fn list_assignments(
    State(app): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> Result<Json<Vec<AssignmentView>>, Problem> {
    let principal = crate::api::require_reader(&caller)?;
    let records = app.store.tenant(&principal.tenant_id).device_assignments(&device_id).await?;
    Ok(Json(records.into_iter().map(AssignmentView::from).collect()))
}

// ---------- exposure ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExposureParams {
    /// One device's readings…
    pub device: Option<String>,
    /// …or every device assigned to a zone (`GLN/zone`), a vehicle, or an SSCC in the period.
    pub zone: Option<String>,
    pub vehicle: Option<String>,
    pub sscc: Option<String>,
    /// RFC 3339.
    pub from: String,
    /// RFC 3339, exclusive; at most 31 days after `from`.
    pub to: String,
    /// `pharma`, `chilled`, `frozen` or `fish`: the range and how it is judged.
    pub class: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationTimeView {
    pub location: String,
    pub seconds: i64,
    /// Of `seconds`, the time with a known temperature.
    pub known_seconds: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodView {
    pub start: String,
    pub end: String,
    /// The warmest (above the range) or coldest (below) temperature; absent for gaps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_celsius: Option<f64>,
}

/// The same figures as `keten coldchain analyse --json`, computed by the same code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExposureView {
    pub class: String,
    pub min_range_celsius: Option<f64>,
    pub max_range_celsius: Option<f64>,
    pub devices: Vec<String>,
    pub readings: usize,
    pub mkt_celsius: Option<f64>,
    pub min_celsius: Option<f64>,
    pub max_celsius: Option<f64>,
    pub mean_celsius: Option<f64>,
    pub time_out_of_range_s: i64,
    pub excursions: Vec<PeriodView>,
    pub gaps: Vec<PeriodView>,
    pub time_per_location: Vec<LocationTimeView>,
    pub pass: bool,
    pub verdict: String,
}

/// The longest period an exposure covers.
pub const EXPOSURE_PERIOD_MS_MAX: i64 = 31 * 24 * 3_600_000;
/// Readings one exposure reads, at most.
pub const EXPOSURE_READINGS_MAX: usize = 200_000;

fn hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A device's series over `[from, to)` (from one interval earlier, so the first reading holds).
pub(crate) async fn device_series(
    store: &Store,
    tenant: &TenantId,
    device_id: &str,
    from_unix_ms: i64,
    to_unix_ms: i64,
    budget: &mut usize,
) -> Result<Series, Problem> {
    let parsed = DeviceId::parse(device_id).map_err(|_| Problem::not_found(format!("device {device_id}")))?;
    let device =
        store.tenant(tenant).device(&parsed).await?.ok_or_else(|| Problem::not_found(format!("device {device_id}")))?;
    series_of(store, tenant, device_id, device.reading_interval_seconds, from_unix_ms, to_unix_ms, budget).await
}

/// [`device_series`] of a device whose reading interval is known.
pub(crate) async fn series_of(
    store: &Store,
    tenant: &TenantId,
    device_id: &str,
    reading_interval_seconds: u32,
    from_unix_ms: i64,
    to_unix_ms: i64,
    budget: &mut usize,
) -> Result<Series, Problem> {
    let store = store.tenant(tenant);
    let interval = jiff::SignedDuration::from_secs(i64::from(reading_interval_seconds.max(1)));
    let mut series = Series::new(device_id, interval).map_err(|error| Problem::internal(error.to_string()))?;
    let mut after = from_unix_ms - interval.as_millis() as i64 * 2;
    loop {
        // Readings just after the period (a clock ahead, a late sample) close its last stretch.
        let until =
            to_unix_ms + coldchain::reading::CLOCK_AHEAD_LIMIT.as_millis() as i64 + interval.as_millis() as i64 * 2;
        let page = store.readings(device_id, after, until, store::readings::READINGS_LISTED_MAX).await?;
        let full = page.len() == store::readings::READINGS_LISTED_MAX as usize;
        for stored in &page {
            *budget = budget.checked_sub(1).ok_or_else(|| {
                Problem::new("limit-reached", format!("an exposure reads at most {EXPOSURE_READINGS_MAX} readings"))
            })?;
            let time = jiff::Timestamp::from_millisecond(stored.corrected_unix_ms)
                .map_err(|error| Problem::internal(error.to_string()))?;
            let reading = Reading::celsius_at(device_id, time, stored.celsius)
                .map_err(|error| Problem::internal(error.to_string()))?;
            series.insert(&reading).map_err(|error| Problem::internal(error.to_string()))?;
        }
        match page.last() {
            Some(last) if full => after = last.device_unix_ms + 1,
            _ => break,
        }
    }
    Ok(series)
}

/// Exposure over a period: of one device, or of a zone, vehicle or SSCC through the devices
/// assigned there — time per location, min / max / mean, mean kinetic temperature, time out of
/// range, excursions, gaps (unknown time is never in range), pass or fail for the class. The
/// logger-file analysis (`keten coldchain analyse`) computes the same figures with the same code.
#[utoipa::path(get, path = "/v1/exposure", tag = "coldchain", params(ExposureParams),
    responses((status = 200, body = ExposureView), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn exposure_of(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ExposureParams>,
) -> Result<Json<ExposureView>, Problem> {
    let principal = crate::api::require_reader(&caller)?;
    let tenant = principal.tenant_id.clone();
    let invalid = |name: &str, detail: String| Problem::field("invalid-parameter", format!("?{name}"), detail);
    let time =
        |text: &str, name: &str| text.parse::<jiff::Timestamp>().map_err(|error| invalid(name, error.to_string()));
    let from = time(&params.from, "from")?;
    let to = time(&params.to, "to")?;
    let (from_ms, to_ms) = (from.as_millisecond(), to.as_millisecond());
    if to_ms <= from_ms || to_ms - from_ms > EXPOSURE_PERIOD_MS_MAX {
        return Err(invalid("to", "must be after from, at most 31 days".into()));
    }
    let class: ProductClass =
        params.class.parse().map_err(|error: coldchain::ProductClassError| invalid("class", error.0))?;
    let range = class.range();
    let given =
        [&params.device, &params.zone, &params.vehicle, &params.sscc].iter().filter(|given| given.is_some()).count();
    if given != 1 {
        return Err(invalid("device", "give exactly one of device, zone, vehicle, sscc".into()));
    }
    let mut budget = EXPOSURE_READINGS_MAX;
    let mut parts: Vec<(String, Series, jiff::Timestamp, jiff::Timestamp)> = Vec::new();
    if let Some(device) = &params.device {
        let series = device_series(&app.store, &tenant, device, from_ms, to_ms, &mut budget).await?;
        parts.push((device.clone(), series, from, to));
    } else {
        let target = if let Some(zone) = &params.zone {
            let (gln, name) = zone.split_once('/').ok_or_else(|| invalid("zone", "must be GLN/zone".into()))?;
            AssignmentTarget::Zone {
                gln: gs1::Gln::parse(gln).map_err(|error| invalid("zone", error.to_string()))?,
                zone: network::ZoneName::parse(name).map_err(|error| invalid("zone", error.to_string()))?,
            }
        } else if let Some(vehicle) = &params.vehicle {
            AssignmentTarget::Vehicle(vehicle.clone())
        } else {
            let sscc = params.sscc.as_deref().unwrap_or_default();
            AssignmentTarget::Sscc(gs1::Sscc::parse(sscc).map_err(|error| invalid("sscc", error.to_string()))?)
        };
        let location = target.key();
        let assignments = app.store.tenant(&tenant).assignments_at(&target, from_ms, to_ms).await?;
        if assignments.len() >= store::readings::ASSIGNMENTS_AT_TARGET_MAX {
            return Err(Problem::new(
                "limit-reached",
                format!(
                    "more than {} devices measured at {location} in the period: ask for a shorter one",
                    store::readings::ASSIGNMENTS_AT_TARGET_MAX - 1
                ),
            ));
        }
        for assignment in assignments {
            let start = assignment.from_unix_ms.max(from_ms);
            let end = assignment.to_unix_ms.unwrap_or(to_ms).min(to_ms);
            let series = device_series(&app.store, &tenant, &assignment.device_id, start, end, &mut budget).await?;
            let at = |unix_ms: i64| {
                jiff::Timestamp::from_millisecond(unix_ms).map_err(|error| Problem::internal(error.to_string()))
            };
            parts.push((location.clone(), series, at(start)?, at(end)?));
        }
        if parts.is_empty() {
            return Err(Problem::not_found(format!("a device assigned to {location} in the period")));
        }
    }
    // The period's own readings (those around it tell only the temperature at its edges).
    let readings = parts.iter().map(|(_, series, start, end)| series.count_within(*start, *end)).sum();
    let mut devices: Vec<String> = parts.iter().map(|(_, series, ..)| series.device().to_owned()).collect();
    devices.sort();
    devices.dedup();
    let stays: Vec<Stay<'_>> = parts
        .iter()
        .map(|(location, series, start, end)| Stay { location, series, start: *start, end: *end })
        .collect();
    let exposure = coldchain::exposure(&stays, &ExposureOptions::new(range));
    let (pass, verdict) = match exposure.statistics {
        Some(statistics) => coldchain::judge(class, range, &exposure, statistics),
        None => (false, "no reading in the period".to_owned()),
    };
    let statistic = |pick: fn(&coldchain::Statistics) -> f64| {
        exposure.statistics.as_ref().map(|statistics| hundredths(pick(statistics)))
    };
    Ok(Json(ExposureView {
        class: class.name().to_owned(),
        min_range_celsius: range.min_celsius(),
        max_range_celsius: range.max_celsius(),
        devices,
        readings,
        mkt_celsius: statistic(|statistics| statistics.mean_kinetic_celsius),
        min_celsius: statistic(|statistics| statistics.min_celsius),
        max_celsius: statistic(|statistics| statistics.max_celsius),
        mean_celsius: statistic(|statistics| statistics.mean_celsius),
        time_out_of_range_s: coldchain::whole_seconds(exposure.time_out_of_range),
        excursions: exposure
            .excursions
            .iter()
            .map(|excursion| PeriodView {
                start: excursion.start.to_string(),
                end: excursion.end.to_string(),
                peak_celsius: Some(hundredths(excursion.peak_celsius)),
            })
            .collect(),
        gaps: exposure
            .gaps
            .iter()
            .map(|gap| PeriodView { start: gap.start.to_string(), end: gap.end.to_string(), peak_celsius: None })
            .collect(),
        time_per_location: exposure
            .time_per_location
            .iter()
            .map(|entry| LocationTimeView {
                location: entry.location.clone(),
                seconds: coldchain::whole_seconds(entry.duration),
                known_seconds: coldchain::whole_seconds(entry.known_duration),
            })
            .collect(),
        pass,
        verdict,
    }))
}
