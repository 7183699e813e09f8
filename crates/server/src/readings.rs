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
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coldchain::{Batch, BatchError, Reading};
use network::TenantId;
use serde::{Deserialize, Serialize};
use store::readings::{READINGS_PER_WRITE_MAX, StoredReading};
use store::{Mutation, Principal, Scope, Store, Write, WriteOutcome};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::QueryParams;
use crate::dto::timestamp;
use crate::extract::Caller;
use crate::problem::{FieldError, Problem, StoredCounts};

/// The largest readings body: 100,000 SenML records of about 80 bytes.
pub const READINGS_BYTES_MAX: usize = 8 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_readings, list_readings)).layer(DefaultBodyLimit::max(READINGS_BYTES_MAX))
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
    body: Bytes,
) -> Result<Response, Problem> {
    let principal = reading_sender(&caller)?;
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
