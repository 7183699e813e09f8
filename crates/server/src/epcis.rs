//! The EPCIS 2.0 REST binding: capture (`/capture`, `POST /events`), the simple event query
//! (`GET /events` and the resource paths) and capture jobs, on the `epcis` crate's model and
//! validation and the store's event tables.
//!
//! [`capture_document`] is the one capture function: the HTTP capture endpoints and every
//! operation of the platform that records an event go through it.
//!
//! Limits (also sent as the standard's headers): a capture body holds at most
//! [`CAPTURE_BYTES_MAX`] bytes and [`CAPTURE_EVENTS_MAX`] events; a query page at most
//! [`PER_PAGE_MAX`] events; one query request reads at most
//! [`store::epcis::QUERY_SCAN_ROWS_MAX`] candidate events (it then answers with what it found
//! and a `nextPageToken`).

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use epcis::query::{Direction, EventQuery, OrderBy, ParameterValue, PrefixMap, QueryParameterError};
use epcis::{Document, DocumentKind, Event, Namespace, QueryResults, Timestamp, ValidationError};
use network::TenantId;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::epcis::{
    Capture, CaptureJob, EventFilter, EventOrder, EventPosition, EventRecord, MasterDataRecord, StoredEvent,
};
use store::{Scope, Store};

use crate::AppState;
use crate::api::QueryParams;
use crate::extract::Caller;
use crate::problem::{FieldError, Problem};

/// The largest capture body (`GS1-EPCIS-Capture-File-Size-Limit`).
pub const CAPTURE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The most events of one capture (`GS1-EPCIS-Capture-Limit`).
pub const CAPTURE_EVENTS_MAX: usize = store::epcis::CAPTURE_EVENTS_MAX;
/// The page size of a query without `perPage`.
pub const PER_PAGE_DEFAULT: u32 = 30;
/// The largest page.
pub const PER_PAGE_MAX: u32 = 1000;
/// The most errors listed in one problem or capture job.
pub const ERRORS_LISTED_MAX: usize = 100;

const EPCIS_VERSION: &str = "2.0.0";
const CBV_VERSION: &str = "2.0.0";
const JSON_LD: &str = "application/ld+json";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/capture", get(capture_jobs).post(capture).options(discover))
        .route("/capture/{capture_id}", get(capture_job).options(discover))
        .route("/events", get(query_events).post(capture_event).options(discover))
        .route("/events/{event_id}", get(event).options(discover))
        .route("/events/{event_id}/proof", get(event_proof).options(discover))
        .route("/eventTypes", get(event_types).options(discover))
        .route("/eventTypes/{value}/events", get(events_of_type).options(discover))
        .route("/epcs/{value}/events", get(events_of_epc).options(discover))
        .route("/bizSteps/{value}/events", get(events_of_business_step).options(discover))
        .route("/bizLocations/{value}/events", get(events_of_business_location).options(discover))
        .route("/readPoints/{value}/events", get(events_of_read_point).options(discover))
        .route("/dispositions/{value}/events", get(events_of_disposition).options(discover))
        .route("/v1/trace", get(crate::trace::trace_endpoint))
        .route("/queries", get(list_queries).post(create_query).options(discover))
        .route("/queries/{name}", get(get_query).delete(delete_query).options(discover))
        .route("/queries/{name}/events", get(named_query_events).options(discover))
        .route("/queries/{name}/subscriptions", get(list_subscriptions).post(create_subscription).options(discover))
        .route(
            "/queries/{name}/subscriptions/{id}",
            get(get_subscription).delete(delete_subscription).options(discover),
        )
        .layer(DefaultBodyLimit::max(CAPTURE_BYTES_MAX))
}

/// The EPCIS routes with version negotiation and EPC format handling around them.
pub fn layered(state: AppState) -> Router<AppState> {
    routes().layer(axum::middleware::from_fn_with_state(state, version_headers))
}

/// Answers larger than this are not rewritten into EPC URNs (they stay Digital Links).
pub const URN_REWRITE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Adds the version headers to every answer, refuses versions this repository does not speak,
/// and answers `GS1-EPC-Format: Always_EPC_URN` by rewriting the Digital Links of a query answer
/// whose company prefix is known (learned from captured URNs) as EPC URNs.
async fn version_headers(
    State(app): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let wants_urns = request
        .headers()
        .get("gs1-epc-format")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("Always_EPC_URN"));
    let mut response = match negotiate(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(problem) => problem.into_response(),
    };
    let mut format = "Always_GS1_Digital_Link";
    let is_query_answer = response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value == JSON_LD);
    if wants_urns && is_query_answer && response.status() == StatusCode::OK {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, URN_REWRITE_BYTES_MAX).await.unwrap_or_default();
        let rewritten = match (serde_json::from_slice::<Value>(&bytes), app.store.epc_company_prefixes().await) {
            (Ok(mut value), Ok(prefixes)) => {
                epcis::identifier::rewrite_as_epc_urns(&mut value, &|prefix| prefixes.contains(prefix));
                format = "Always_EPC_URN";
                axum::body::Body::from(value.to_string())
            }
            _ => axum::body::Body::from(bytes),
        };
        response = Response::from_parts(parts, rewritten);
        response.headers_mut().remove(header::CONTENT_LENGTH);
    }
    let headers = response.headers_mut();
    for (name, value) in [
        ("gs1-epcis-version", EPCIS_VERSION),
        ("gs1-epcis-min", EPCIS_VERSION),
        ("gs1-epcis-max", EPCIS_VERSION),
        ("gs1-cbv-version", CBV_VERSION),
        ("gs1-cbv-min", CBV_VERSION),
        ("gs1-cbv-max", CBV_VERSION),
        ("gs1-epc-format", format),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Checks `GS1-EPCIS-Version`, `GS1-CBV-Version` and their min/max forms: this repository speaks
/// EPCIS 2.0 and CBV 2.0 (any 2.0.x).
fn negotiate(headers: &HeaderMap) -> Result<(), Problem> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    let speaks = |version: &str| version == "2.0" || version.starts_with("2.0.");
    for (exact, min, max, what) in [
        ("gs1-epcis-version", "gs1-epcis-min", "gs1-epcis-max", "EPCIS"),
        ("gs1-cbv-version", "gs1-cbv-min", "gs1-cbv-max", "CBV"),
    ] {
        if let Some(version) = text(exact)
            && !speaks(version)
        {
            return Err(Problem::new(
                "not-acceptable",
                format!("{what} {version} asked; this repository speaks {what} 2.0"),
            ));
        }
        let parse = |text: &str| -> Option<(u32, u32)> {
            let mut parts = text.split('.');
            Some((parts.next()?.parse().ok()?, parts.next().unwrap_or("0").parse().ok()?))
        };
        let min = text(min).and_then(parse);
        let max = text(max).and_then(parse);
        if min.is_some_and(|min| min > (2, 0)) || max.is_some_and(|max| max < (2, 0)) {
            return Err(Problem::new("not-acceptable", format!("the {what} version range asked excludes 2.0")));
        }
    }
    Ok(())
}

/// `OPTIONS`: the methods and the capture limits.
async fn discover(uri: Uri) -> Response {
    let methods = match uri.path() {
        "/capture" | "/events" | "/queries" => "GET, POST, OPTIONS",
        path if path.ends_with("/subscriptions") => "GET, POST, OPTIONS",
        path if path.starts_with("/queries/") && !path.ends_with("/events") => "GET, DELETE, OPTIONS",
        _ => "GET, OPTIONS",
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(methods));
    insert_capture_limits(headers);
    headers.insert("gs1-query-min-record-time", HeaderValue::from_static("1970-01-01T00:00:00Z"));
    headers.insert("gs1-capture-error-behaviour", HeaderValue::from_static("rollback, proceed"));
    response
}

fn insert_capture_limits(headers: &mut HeaderMap) {
    headers.insert("gs1-epcis-capture-limit", HeaderValue::from(CAPTURE_EVENTS_MAX));
    headers.insert("gs1-epcis-capture-file-size-limit", HeaderValue::from(CAPTURE_BYTES_MAX));
}

// ---------------------------------------------------------------------------------------------
// Capture

/// `GS1-Capture-Error-Behaviour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorBehaviour {
    /// All or nothing (the default).
    Rollback,
    /// Store the valid events, report the others.
    Proceed,
}

impl ErrorBehaviour {
    fn from_headers(headers: &HeaderMap) -> Result<ErrorBehaviour, Problem> {
        match headers.get("gs1-capture-error-behaviour").map(|value| value.to_str().unwrap_or("").trim()) {
            None | Some("rollback") => Ok(ErrorBehaviour::Rollback),
            Some("proceed") => Ok(ErrorBehaviour::Proceed),
            Some(other) => Err(Problem::new(
                "invalid-parameter",
                format!("GS1-Capture-Error-Behaviour must be rollback or proceed, found {other:?}"),
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ErrorBehaviour::Rollback => "rollback",
            ErrorBehaviour::Proceed => "proceed",
        }
    }
}

/// What a capture stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureReceipt {
    pub capture_id: String,
    /// The eventID of every event stored or already stored, in document order.
    pub event_ids: Vec<String>,
}

/// Stores the events of a validated document for `tenant`, in one transaction of the writer.
/// `rejected` holds the errors of events left out (under `proceed`), with their indexes in
/// `excluded`; they are kept in the capture job.
pub async fn capture_document(
    store: &Store,
    tenant: &TenantId,
    document: &Document,
    excluded: &BTreeSet<usize>,
    rejected: Vec<ValidationError>,
    behaviour: ErrorBehaviour,
    company_prefixes: Vec<String>,
) -> Result<CaptureReceipt, Problem> {
    let capture = capture_of(tenant, document, excluded, rejected, behaviour, company_prefixes);
    let capture_id = capture.capture_id.clone();
    let mut event_ids: Vec<String> = capture.events.iter().map(|event| event.event_id.clone()).collect();
    let record_keys: Vec<String> = capture.events.iter().map(store::epcis::EventRecord::record_key).collect();
    let written = store.tenant(tenant).write(store::Mutation::CaptureEvents(Box::new(capture)), None).await?;
    // Events captured before (known by their hash) may be stored under another eventID (one the
    // client chose, or the hash): the answer names the one stored, which reads them back.
    let captured = match written {
        store::WriteOutcome::Applied(applied) => applied.rows as usize,
        store::WriteOutcome::Replayed(_) => 0,
    };
    if captured < event_ids.len() {
        let stored = store.tenant(tenant).epcis_stored_event_ids(&record_keys).await?;
        for (event_id, record_key) in event_ids.iter_mut().zip(&record_keys) {
            if let Some(stored_id) = stored.get(record_key) {
                stored_id.clone_into(event_id);
            }
        }
    }
    Ok(CaptureReceipt { capture_id, event_ids })
}

/// The capture job of a document as the store keeps it (hash IDs, records, commitments), not yet
/// written: `capture_document` writes it alone; a fulfilment step writes it with its own change.
pub fn capture_of(
    tenant: &TenantId,
    document: &Document,
    excluded: &BTreeSet<usize>,
    rejected: Vec<ValidationError>,
    behaviour: ErrorBehaviour,
    company_prefixes: Vec<String>,
) -> Capture {
    let hash_ids = document.event_hash_ids();
    let mut events = Vec::with_capacity(document.events.len());
    for (index, (event, hash_id)) in document.events.iter().zip(hash_ids).enumerate() {
        if excluded.contains(&index) {
            continue;
        }
        events.push(event_record(event, hash_id, &document.namespaces, tenant));
    }
    Capture {
        capture_id: format!("{:016x}", rand::random::<u64>()),
        events,
        errors: rejected.into_iter().take(ERRORS_LISTED_MAX).map(|error| (error.pointer, error.detail)).collect(),
        all_or_nothing: behaviour == ErrorBehaviour::Rollback,
        error_behaviour: behaviour.name().to_owned(),
        namespaces: document
            .namespaces
            .iter()
            .map(|namespace| (namespace.prefix.clone(), namespace.iri.clone()))
            .collect(),
        master_data: master_data_records(document),
        company_prefixes,
        premises: Vec::new(),
    }
}

/// Captures a valid document all or nothing: the entry point of the platform's own operations
/// (and of the demo and the benchmarks), which hold a model, not a request.
pub async fn capture_valid_document(
    store: &Store,
    tenant: &TenantId,
    document: &Document,
) -> Result<CaptureReceipt, Problem> {
    capture_document(store, tenant, document, &BTreeSet::new(), Vec::new(), ErrorBehaviour::Rollback, Vec::new()).await
}

/// An event as the store keeps it: indexed fields, identifiers with their GTINs, and the body
/// (JSON-LD with its own `@context`, the eventID set to the hash ID when it had none).
pub fn event_record(event: &Event, hash_id: String, namespaces: &[Namespace], tenant: &TenantId) -> EventRecord {
    let mut event = event.clone();
    event.record_time = None;
    let event_id = event.event_id.get_or_insert_with(|| hash_id.clone()).clone();
    let identifiers = epcis::query::identifier_roles(&event)
        .into_iter()
        .map(|(role, identifier)| (role.to_owned(), identifier.as_str().to_owned(), epcis::query::gtin_of(identifier)))
        .collect();
    let body = epcis::jsonld::event_to_json(&event, namespaces).to_string();
    // Committed as read back from the stored text, so an audit that parses the row recomputes
    // exactly these fields.
    let stored: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let commitment_seed: [u8; 32] = rand::random();
    let commitment = epcis::commitment::commit_json(&stored, tenant.as_str(), &commitment_seed);
    EventRecord {
        event_id,
        hash_id,
        event_type: event.event_type.map(|event_type| event_type.type_name()).unwrap_or("").to_owned(),
        action: event.action.map(|action| action.as_str().to_owned()),
        biz_step: event.business_step.as_ref().map(|value| value.as_str().to_owned()),
        disposition: event.disposition.as_ref().map(|value| value.as_str().to_owned()),
        read_point: event.read_point.as_ref().map(|location| location.id.as_str().to_owned()),
        biz_location: event.business_location.as_ref().map(|location| location.id.as_str().to_owned()),
        event_time_ms: event.event_time.map(|time| time.to_jiff().as_millisecond()).unwrap_or(0),
        error_declared: event.error_declaration.is_some(),
        identifiers,
        body,
        log_entry: commitment.entry,
        commitment_seed,
    }
}

fn master_data_records(document: &Document) -> Vec<MasterDataRecord> {
    let mut prefixes = epcis::jsonld::Prefixes::from_namespaces(&document.namespaces);
    document
        .master_data
        .iter()
        .flat_map(|vocabulary| {
            vocabulary.elements.iter().map(|element| (vocabulary.vocabulary_type.clone(), element)).collect::<Vec<_>>()
        })
        .map(|(vocabulary_type, element)| {
            let attributes: serde_json::Map<String, Value> = element
                .attributes
                .iter()
                .map(|(id, value)| (id.clone(), epcis::jsonld::extension_value(value, &mut prefixes)))
                .collect();
            MasterDataRecord {
                vocabulary_type,
                element_id: normalise_location(&element.id),
                attributes: Value::Object(attributes).to_string(),
                children: element.children.iter().map(|child| normalise_location(child)).collect(),
            }
        })
        .collect()
}

/// Master data ids of locations are normalised like the events' identifiers, so that `WD_`
/// finds children whichever form the document used.
fn normalise_location(id: &str) -> String {
    epcis::Identifier::parse(id).map(|id| id.as_str().to_owned()).unwrap_or_else(|_| id.to_owned())
}

/// The media type of a body: JSON (`application/json`, `application/ld+json`) or XML.
fn is_xml_body(headers: &HeaderMap) -> Result<bool, Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" | "application/ld+json" => Ok(false),
        "application/xml" | "text/xml" => Ok(true),
        _ => Err(Problem::new(
            "unsupported-media-type",
            format!(
                "send EPCIS documents as application/json, application/ld+json or application/xml, not {content_type:?}"
            ),
        )),
    }
}

/// The body of a capture as text: within the size limit (413) and UTF-8.
fn body_text(body: &Result<Bytes, axum::extract::rejection::BytesRejection>) -> Result<&str, Problem> {
    let bytes = body.as_ref().map_err(|_| too_large_body())?;
    if bytes.len() > CAPTURE_BYTES_MAX {
        return Err(too_large_body());
    }
    std::str::from_utf8(bytes).map_err(|error| Problem::new("invalid-epcis", format!("the body is not UTF-8: {error}")))
}

fn too_large_body() -> Problem {
    Problem::new(
        "payload-too-large",
        format!("a capture body holds at most {CAPTURE_BYTES_MAX} bytes (GS1-EPCIS-Capture-File-Size-Limit)"),
    )
}

fn validation_problem(what: &str, errors: Vec<ValidationError>) -> Problem {
    let count = errors.len();
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    Problem::new(
        "invalid-epcis",
        format!("{what} was rejected with {count} error(s); nothing was stored. First: {first}"),
    )
    .with_errors(
        errors
            .into_iter()
            .take(ERRORS_LISTED_MAX)
            .map(|error| FieldError { pointer: error.pointer, detail: error.detail })
            .collect(),
    )
}

/// The index of the event a pointer of a document points into.
fn event_index(pointer: &str) -> Option<usize> {
    let rest = pointer.strip_prefix("/epcisBody/eventList/")?;
    rest.split('/').next()?.parse().ok()
}

async fn capture(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantWrite)?;
    let behaviour = ErrorBehaviour::from_headers(&headers)?;
    let xml = is_xml_body(&headers)?;
    let text = body_text(&body)?;
    // The JSON-schema layer (when configured, JSON input), then the semantic layer; their
    // errors together.
    let schema_errors = match (&app.config.epcis_schema, xml) {
        (Some(schema), false) => match serde_json::from_str::<Value>(text) {
            Ok(value) => schema.validate(&value),
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    };
    let strict = match xml {
        true => epcis::parse_xml_document(text),
        false => epcis::parse_json_document(text),
    };
    let strict = match (strict, schema_errors.is_empty()) {
        (Ok(document), true) => Ok(document),
        (Ok(_), false) => Err(epcis::ValidationErrors { errors: schema_errors }),
        (Err(mut errors), _) => {
            let mut all = schema_errors;
            all.append(&mut errors.errors);
            errors.errors = all;
            Err(errors)
        }
    };
    let (document, excluded, rejected) = match strict {
        Ok(document) => (document, BTreeSet::new(), Vec::new()),
        Err(errors) if behaviour == ErrorBehaviour::Rollback => {
            return Err(validation_problem("the document", errors.errors));
        }
        Err(errors) => {
            // proceed: events with errors are left out; an error outside the events fails all.
            let (document, _) = epcis::read_document_leniently(text);
            let document_level = errors.errors.iter().any(|error| event_index(&error.pointer).is_none());
            match document {
                Some(document) if !document_level => {
                    let excluded = errors.errors.iter().filter_map(|error| event_index(&error.pointer)).collect();
                    (document, excluded, errors.errors)
                }
                _ => return Err(validation_problem("the document", errors.errors)),
            }
        }
    };
    if document.kind != DocumentKind::Document {
        return Err(Problem::new("invalid-epcis", "capture takes an EPCISDocument, not an EPCISQueryDocument"));
    }
    if document.events.len() > CAPTURE_EVENTS_MAX {
        return Err(Problem::new(
            "payload-too-large",
            format!(
                "the document has {} events; a capture holds at most {CAPTURE_EVENTS_MAX} (GS1-EPCIS-Capture-Limit)",
                document.events.len()
            ),
        ));
    }
    let prefixes = epcis::identifier::company_prefixes_in(text).into_iter().collect();
    let receipt =
        capture_document(&app.store, &principal.tenant_id, &document, &excluded, rejected, behaviour, prefixes).await?;
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "captureID": receipt.capture_id, "eventIDs": receipt.event_ids }).to_string(),
    )
        .into_response();
    let location = format!("/capture/{}", receipt.capture_id);
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).map_err(Problem::internal)?);
    insert_capture_limits(response.headers_mut());
    Ok(response)
}

/// `POST /events`: one event, captured all or nothing.
async fn capture_event(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantWrite)?;
    let xml = is_xml_body(&headers)?;
    let text = body_text(&body)?;
    let parsed = match xml {
        true => epcis::parse_xml_event(text),
        false => epcis::parse_json_event(text),
    };
    let event = parsed.map_err(|errors| validation_problem("the event", errors.errors))?;
    let namespaces = match xml {
        true => Vec::new(),
        false => serde_json::from_str::<Value>(text).map(|value| context_namespaces(&value)).unwrap_or_default(),
    };
    let document = Document {
        kind: DocumentKind::Document,
        schema_version: "2.0".into(),
        creation_date: None,
        namespaces,
        master_data: Vec::new(),
        query_results: None,
        events: vec![event],
        other_fields: Vec::new(),
        hash_ignored_fields: Vec::new(),
    };
    let receipt = capture_document(
        &app.store,
        &principal.tenant_id,
        &document,
        &BTreeSet::new(),
        Vec::new(),
        ErrorBehaviour::Rollback,
        epcis::identifier::company_prefixes_in(text).into_iter().collect(),
    )
    .await?;
    app.subscriptions_wake.notify_one();
    let event_id = receipt.event_ids.first().cloned().unwrap_or_default();
    let location = format!("/events/{}", encode_path_segment(&event_id));
    let mut response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "eventID": event_id, "captureID": receipt.capture_id }).to_string(),
    )
        .into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).map_err(Problem::internal)?);
    Ok(response)
}

/// Percent-encodes a path segment (event IDs are URIs with `/`, `:`, `?`, `;`).
pub fn encode_path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(byte as char),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

fn capture_job_json(job: &CaptureJob) -> Value {
    let time =
        |unix_ms: i64| jiff::Timestamp::from_millisecond(unix_ms).map(|time| time.to_string()).unwrap_or_default();
    let mut value = json!({
        "captureID": job.capture_id,
        "createdAt": time(job.created_unix_ms),
        "running": job.finished_unix_ms.is_none(),
        "success": job.success,
        "captureErrorBehaviour": job.error_behaviour,
        "eventsCaptured": job.events_captured,
        "eventsAlreadyCaptured": job.events_already_captured,
        "errors": job.errors.iter().map(|(pointer, detail)| json!({"pointer": pointer, "detail": detail})).collect::<Vec<_>>(),
    });
    if let (Some(finished), Some(map)) = (job.finished_unix_ms, value.as_object_mut()) {
        map.insert("finishedAt".into(), Value::String(time(finished)));
    }
    value
}

async fn capture_job(
    State(app): State<AppState>,
    caller: Caller,
    Path(capture_id): Path<String>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let job = app
        .store
        .tenant(&principal.tenant_id)
        .capture_job(&capture_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("capture job {capture_id}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], capture_job_json(&job).to_string()).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureJobsParams {
    #[serde(rename = "perPage")]
    per_page: Option<String>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
}

/// The tenant's capture jobs, newest first, a page at a time (`perPage`, default
/// [`PER_PAGE_DEFAULT`], at most [`PER_PAGE_MAX`]; a `Link: <…>; rel="next"` while there are more).
async fn capture_jobs(
    State(app): State<AppState>,
    caller: Caller,
    crate::api::QueryParams(params): crate::api::QueryParams<CaptureJobsParams>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let per_page = match params.per_page.as_deref() {
        None => PER_PAGE_DEFAULT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|count| (1..=PER_PAGE_MAX).contains(count))
            .ok_or_else(|| Problem::field("invalid-parameter", "?perPage", format!("must be 1..={PER_PAGE_MAX}")))?,
    };
    // The token: the (creation time, capture ID) of the page's last job.
    let bad_token = || Problem::field("invalid-parameter", "?nextPageToken", "not a token this list gave");
    let before: Option<(i64, String)> = match params.next_page_token.as_deref() {
        None => None,
        Some(token) => {
            let decoded = URL_SAFE_NO_PAD.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok());
            let (created, capture_id) = decoded
                .as_deref()
                .and_then(|text| text.strip_prefix("jobs."))
                .and_then(|text| text.split_once('.'))
                .ok_or_else(bad_token)?;
            Some((created.parse().map_err(|_| bad_token())?, capture_id.to_owned()))
        }
    };
    let before = before.as_ref().map(|(created, capture_id)| (*created, capture_id.as_str()));
    // One more than the page: whether there is a next one.
    let mut jobs = app.store.tenant(&principal.tenant_id).capture_jobs(before, per_page + 1).await?;
    let more = jobs.len() > per_page as usize;
    jobs.truncate(per_page as usize);
    let body = Value::Array(jobs.iter().map(capture_job_json).collect());
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if more && let Some(last) = jobs.last() {
        let token = URL_SAFE_NO_PAD.encode(format!("jobs.{}.{}", last.created_unix_ms, last.capture_id));
        let link = format!("</capture?perPage={per_page}&nextPageToken={token}>; rel=\"next\"");
        response.headers_mut().insert(header::LINK, HeaderValue::from_str(&link).map_err(Problem::internal)?);
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Query

fn query_problem(error: QueryParameterError) -> Problem {
    let pointer = format!("?{}", error.parameter);
    Problem::new("invalid-parameter", error.to_string()).with_errors(vec![FieldError { pointer, detail: error.detail }])
}

/// The namespace prefixes of a JSON-LD `@context`.
fn context_namespaces(value: &Value) -> Vec<Namespace> {
    let mut namespaces = Vec::new();
    let mut visit = |item: &Value| {
        if let Value::Object(map) = item {
            for (prefix, iri) in map {
                if let Some(iri) = iri.as_str() {
                    namespaces.push(Namespace { prefix: prefix.clone(), iri: iri.to_owned() });
                }
            }
        }
    };
    match value.get("@context") {
        Some(Value::Array(items)) => items.iter().for_each(&mut visit),
        Some(other) => visit(other),
        None => {}
    }
    namespaces
}

/// A stored event back in the model, with its record time and the prefixes its body declared.
pub(crate) fn decode(stored: &StoredEvent) -> Result<(Event, Vec<Namespace>), Problem> {
    let value: Value = serde_json::from_str(&stored.body).map_err(Problem::internal)?;
    let mut event = epcis::read_json_event(&value).map_err(|errors| {
        Problem::internal(format!("stored event {} does not read back: {errors}", stored.event_id))
    })?;
    event.record_time = jiff::Timestamp::from_millisecond(stored.record_time_ms).ok().map(Timestamp::from_jiff);
    Ok((event, context_namespaces(&value)))
}

/// The position a page continues from, and how many events the query served before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageToken {
    position: EventPosition,
    served: u64,
}

impl PageToken {
    fn encode(&self, fingerprint: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}.{}.{fingerprint}", self.position.key, self.position.seq, self.served))
    }

    fn decode(text: &str, fingerprint: &str) -> Result<PageToken, Problem> {
        let invalid = || Problem::new("invalid-parameter", "nextPageToken is not a token of this query");
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() != 4 || parts[3] != fingerprint {
            return Err(invalid());
        }
        let number = |text: &str| text.parse::<i64>().map_err(|_| invalid());
        Ok(PageToken {
            position: EventPosition { key: number(parts[0])?, seq: number(parts[1])? },
            served: parts[2].parse().map_err(|_| invalid())?,
        })
    }
}

/// A query's identity for its page tokens: its parameters without the paging ones, sorted.
fn fingerprint(parameters: &[(String, String)]) -> String {
    let mut kept: Vec<&(String, String)> =
        parameters.iter().filter(|(name, _)| name != "nextPageToken" && name != "perPage").collect();
    kept.sort();
    let mut hasher = Sha256::new();
    for (name, value) in kept {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

fn filter_of(query: &EventQuery) -> EventFilter {
    let hints = query.index_hints();
    let floor = |time: Option<Timestamp>| time.map(|time| time.to_jiff().as_millisecond());
    // Stored times are whole milliseconds (rounded down): an exclusive bound rounds up.
    let ceiling = |time: Option<Timestamp>| {
        time.map(|time| {
            let jiff = time.to_jiff();
            let milliseconds = jiff.as_millisecond();
            match i128::from(milliseconds) * 1_000_000 == jiff.as_nanosecond() {
                true => milliseconds,
                false => milliseconds + 1,
            }
        })
    };
    let strings = |roles: &[&str]| roles.iter().map(|role| (*role).to_owned()).collect::<Vec<_>>();
    EventFilter {
        event_types: hints.event_types,
        event_time_at_least_ms: floor(hints.event_time.at_least),
        event_time_before_ms: ceiling(hints.event_time.before),
        record_time_at_least_ms: floor(hints.record_time.at_least),
        record_time_before_ms: ceiling(hints.record_time.before),
        actions: hints.actions.map(|actions| actions.iter().map(|action| (*action).to_owned()).collect()),
        biz_steps: hints.business_steps,
        dispositions: hints.dispositions,
        read_points: hints.read_points,
        biz_locations: hints.business_locations,
        event_ids: hints.event_ids,
        error_declared: hints.error_declaration_exists,
        identifiers: hints.identifiers.iter().map(|(roles, values)| (strings(roles), values.clone())).collect(),
        gtins: hints.gtins.iter().map(|(roles, values)| (strings(roles), values.clone())).collect(),
    }
}

fn order_of(query: &EventQuery) -> EventOrder {
    match (query.order_by, query.direction.unwrap_or(Direction::Descending)) {
        (None, _) => EventOrder::RecordAscending,
        (Some(OrderBy::RecordTime), Direction::Ascending) => EventOrder::RecordAscending,
        (Some(OrderBy::RecordTime), Direction::Descending) => EventOrder::RecordDescending,
        (Some(OrderBy::EventTime), Direction::Ascending) => EventOrder::EventTimeAscending,
        (Some(OrderBy::EventTime), Direction::Descending) => EventOrder::EventTimeDescending,
    }
}

/// The events of one page of a query, and where the next page starts.
#[derive(Debug)]
pub struct QueryPage {
    pub events: Vec<(Event, Vec<Namespace>)>,
    next: Option<PageToken>,
}

/// A query to run: its parameters, the prefixes its user fields use, and its identity (for page
/// tokens) and name (for the answer).
#[derive(Debug, Clone)]
pub struct QuerySource {
    pub parameters: Vec<(String, ParameterValue)>,
    pub prefixes: PrefixMap,
    pub fingerprint: String,
    pub query_name: String,
}

impl QuerySource {
    /// The query of a URL: every parameter but the paging ones.
    fn from_url(parameters: &[(String, String)]) -> QuerySource {
        QuerySource {
            parameters: parameters
                .iter()
                .filter(|(name, _)| name != "perPage" && name != "nextPageToken")
                .map(|(name, value)| epcis::query::url_parameter(name, value))
                .collect(),
            prefixes: PrefixMap::new(),
            fingerprint: fingerprint(parameters),
            query_name: "SimpleEventQuery".into(),
        }
    }

    /// A named query's stored definition (the query-schema JSON).
    pub fn from_definition(name: &str, definition: &Value) -> Result<QuerySource, Problem> {
        let mut prefixes = PrefixMap::new();
        let parameters = epcis::query::json_parameters(definition, &mut prefixes).map_err(query_problem)?;
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(definition.to_string().as_bytes());
        Ok(QuerySource {
            parameters,
            prefixes,
            fingerprint: hex::encode(&hasher.finalize()[..8]),
            query_name: name.to_owned(),
        })
    }

    /// Parses the query for `viewer`, with the viewer's declared prefixes and master-data
    /// hierarchy.
    pub async fn prepare(&self, store: &Store, viewer: &TenantId) -> Result<EventQuery, Problem> {
        let tenant_store = store.tenant(viewer);
        let mut prefixes: PrefixMap = tenant_store.epcis_namespaces().await?;
        for (prefix, iris) in &self.prefixes {
            let entry = prefixes.entry(prefix.clone()).or_default();
            for iri in iris {
                if !entry.contains(iri) {
                    entry.push(iri.clone());
                }
            }
        }
        let mut query = EventQuery::parse(&self.parameters, &prefixes).map_err(query_problem)?;
        if query.read_points_with_descendants.is_some() || query.business_locations_with_descendants.is_some() {
            let children = tenant_store.epcis_children().await?;
            query.expand_hierarchy(&|id| children.get(id).cloned().unwrap_or_default()).map_err(query_problem)?;
        }
        Ok(query)
    }
}

/// The matching events after `after` in `order`, at most `want`, reading at most
/// [`store::epcis::QUERY_SCAN_ROWS_MAX`] candidates; answers them, the position of the last
/// candidate read, and whether no candidate is left.
pub async fn collect_matches(
    store: &Store,
    viewer: &TenantId,
    query: &EventQuery,
    order: EventOrder,
    mut after: Option<EventPosition>,
    want: u64,
) -> Result<(Vec<(Event, Vec<Namespace>)>, Option<EventPosition>, bool), Problem> {
    let filter = filter_of(query);
    let mut events = Vec::new();
    let mut scanned: u64 = 0;
    let mut exhausted = want == 0;
    let scan_max = u64::from(store::epcis::QUERY_SCAN_ROWS_MAX);
    while !exhausted && (events.len() as u64) < want && scanned < scan_max {
        let batch_rows = (want - events.len() as u64).clamp(64, 2_000).min(scan_max - scanned) as u32;
        let batch = store.epcis_candidates(viewer, &filter, order, after, batch_rows).await?;
        exhausted = (batch.len() as u32) < batch_rows;
        for stored in &batch {
            scanned += 1;
            after = Some(stored.position(order));
            let (event, namespaces) = decode(stored)?;
            if query.matches(&event) {
                events.push((event, namespaces));
                if events.len() as u64 == want {
                    // Whether more follow is unknown until the next page is read.
                    exhausted = exhausted && stored == batch.last().unwrap_or(stored);
                    break;
                }
            }
        }
    }
    Ok((events, after, exhausted))
}

/// Runs one page of a simple event query for `viewer`: the store narrows with indexes,
/// [`EventQuery::matches`] decides.
async fn run_query(
    store: &Store,
    viewer: &TenantId,
    source: &QuerySource,
    paging: &[(String, String)],
) -> Result<QueryPage, Problem> {
    let query = source.prepare(store, viewer).await?;
    let value_of = |name: &str| paging.iter().find(|(known, _)| known == name).map(|(_, value)| value.as_str());
    let per_page = match value_of("perPage") {
        None => PER_PAGE_DEFAULT,
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|count| (1..=PER_PAGE_MAX).contains(count))
            .ok_or_else(|| Problem::new("invalid-parameter", format!("perPage must be 1 to {PER_PAGE_MAX}")))?,
    };
    let token = value_of("nextPageToken").map(|text| PageToken::decode(text, &source.fingerprint)).transpose()?;
    let served = token.map_or(0, |token| token.served);
    let mut want = u64::from(per_page);
    if let Some(limit) = query.event_count_limit {
        want = want.min(limit.saturating_sub(served));
    }
    if let Some(maximum) = query.max_event_count {
        want = maximum.saturating_add(1);
    }
    let order = order_of(&query);
    let (events, after, exhausted) =
        collect_matches(store, viewer, &query, order, token.map(|token| token.position), want).await?;
    if let Some(maximum) = query.max_event_count
        && (events.len() as u64 > maximum || !exhausted)
    {
        return Err(Problem::new(
            "query-too-large",
            format!(
                "the query matches more than maxEventCount = {maximum} events (or more than this repository scans in one request)"
            ),
        ));
    }
    let served_now = served + events.len() as u64;
    let limit_reached = query.event_count_limit.is_some_and(|limit| served_now >= limit);
    let next = match (exhausted || limit_reached, after) {
        (false, Some(position)) => Some(PageToken { position, served: served_now }),
        _ => None,
    };
    Ok(QueryPage { events, next })
}

/// An EPCISQueryDocument of `events`, answering `query_name` (and `subscription_id`).
pub fn query_document(events: Vec<(Event, Vec<Namespace>)>, query_name: &str, subscription_id: Option<&str>) -> Value {
    let mut namespaces: Vec<Namespace> = Vec::new();
    let mut list = Vec::with_capacity(events.len());
    for (event, declared) in events {
        for namespace in declared {
            if !namespaces.iter().any(|known| known.prefix == namespace.prefix || known.iri == namespace.iri) {
                namespaces.push(namespace);
            }
        }
        list.push(event);
    }
    let document = Document {
        kind: DocumentKind::QueryDocument,
        schema_version: "2.0".into(),
        creation_date: Some(Timestamp::from_jiff(jiff::Timestamp::now())),
        namespaces,
        master_data: Vec::new(),
        query_results: Some(QueryResults {
            subscription_id: subscription_id.map(str::to_owned),
            query_name: Some(query_name.to_owned()),
        }),
        events: list,
        other_fields: Vec::new(),
        hash_ignored_fields: Vec::new(),
    };
    epcis::jsonld::document_to_json(&document)
}

/// Answers a query: the EPCISQueryDocument, and a `Link` to the next page when there is one.
async fn answer_query(
    app: &AppState,
    caller: &Caller,
    uri: &Uri,
    parameters: Vec<(String, String)>,
) -> Result<Response, Problem> {
    answer_source(app, caller, uri, &QuerySource::from_url(&parameters), parameters).await
}

/// Answers one page of a query; the `Link` repeats the URL's parameters with the next token.
async fn answer_source(
    app: &AppState,
    caller: &Caller,
    uri: &Uri,
    source: &QuerySource,
    parameters: Vec<(String, String)>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let page = run_query(&app.store, &principal.tenant_id, source, &parameters).await?;
    let next = page.next.map(|token| token.encode(&source.fingerprint));
    let body = query_document(page.events, &source.query_name, None).to_string();
    let mut response = ([(header::CONTENT_TYPE, JSON_LD)], body).into_response();
    if let Some(token) = next {
        let mut query: Vec<String> = parameters
            .iter()
            .filter(|(name, _)| name != "nextPageToken")
            .map(|(name, value)| format!("{}={}", encode_path_segment(name), encode_path_segment(value)))
            .collect();
        query.push(format!("nextPageToken={token}"));
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&"));
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

type Parameters = QueryParams<Vec<(String, String)>>;

async fn query_events(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
    QueryParams(parameters): Parameters,
) -> Result<Response, Problem> {
    answer_query(&app, &caller, &uri, parameters).await
}

/// `GET /events/{eventID}`: a query document with the one event.
async fn event(State(app): State<AppState>, caller: Caller, Path(event_id): Path<String>) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let records = app.store.epcis_event(&principal.tenant_id, &event_id).await?;
    if records.is_empty() {
        return Err(Problem::not_found(format!("event {event_id}")));
    }
    let events = records.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    let body = query_document(events, "SimpleEventQuery", None).to_string();
    Ok(([(header::CONTENT_TYPE, JSON_LD)], body).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProofQuery {
    /// Which record of the eventID (its log index, as `logIndex` answers it).
    log_index: Option<i64>,
}

/// `GET /events/{eventID}/proof[?logIndex=N]`: the event's C2SP tlog-proof (its log entry as the `extra` data)
/// under a signed checkpoint; with `Accept: application/json`, also the disclosures (salted
/// fields) that let the viewer check each field of the event against the entry.
async fn event_proof(
    State(app): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<ProofQuery>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let records = app.store.epcis_event(&principal.tenant_id, &event_id).await?;
    // Several records may carry one eventID (an error declaration, or another tenant's event
    // visible through a GTIN): the caller's own first record unless `logIndex` names one.
    let own = |record: &&&StoredEvent| record.tenant_id == principal.tenant_id.as_str();
    let logged: Vec<&StoredEvent> = records.iter().filter(|record| record.log_index.is_some()).collect();
    let chosen = match query.log_index {
        Some(index) => logged.iter().find(|record| record.log_index == Some(index)).copied(),
        None => logged.iter().find(own).or(logged.first()).copied(),
    };
    let Some(record) = chosen else {
        return Err(Problem::not_found(match (records.is_empty(), query.log_index) {
            (true, _) => format!("event {event_id}"),
            (false, Some(index)) => format!("a record of event {event_id} at log index {index}"),
            (false, None) => format!("a log entry of event {event_id} (captured before the log existed)"),
        }));
    };
    let index = record.log_index.unwrap_or_default() as u64;
    let (bundle, _) = crate::log::proof_bundle(&app, index).await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if !wants_json {
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bundle.to_text()).into_response());
    }
    let stored: serde_json::Value = serde_json::from_str(&record.body)
        .map_err(|error| Problem::new("internal", format!("stored event {event_id}: {error}")))?;
    let seed: [u8; 32] = record
        .commitment_seed
        .as_deref()
        .and_then(|seed| seed.try_into().ok())
        .ok_or_else(|| Problem::new("internal", format!("stored event {event_id} has no commitment seed")))?;
    // Who captured an event is the capturer's business: others get every field but that one.
    let is_own = record.tenant_id == principal.tenant_id.as_str();
    let disclosures: Vec<serde_json::Value> = epcis::commitment::disclosures(&stored, &record.tenant_id, &seed)
        .into_iter()
        .filter(|disclosure| is_own || disclosure.name != epcis::commitment::CAPTURED_BY)
        .map(|disclosure| {
            json!({ "salt": BASE64.encode(disclosure.salt), "name": disclosure.name, "value": disclosure.value })
        })
        .collect();
    let body = json!({
        "eventID": event_id,
        "logIndex": index,
        "proof": bundle.to_text(),
        "disclosures": disclosures,
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

async fn event_types(caller: Caller) -> Result<Response, Problem> {
    caller.require(Scope::TenantRead)?;
    let names: Vec<&str> = epcis::EventType::ALL.iter().map(|event_type| event_type.type_name()).collect();
    Ok(([(header::CONTENT_TYPE, "application/json")], json!({ "@set": names }).to_string()).into_response())
}

/// The resource paths: a query with one fixed parameter from the path, plus the query string.
async fn events_of(
    app: AppState,
    caller: Caller,
    uri: Uri,
    fixed: (&str, String),
    parameters: Vec<(String, String)>,
) -> Result<Response, Problem> {
    if parameters.iter().any(|(name, _)| name == fixed.0) {
        return Err(Problem::new("invalid-parameter", format!("{} is given by the path", fixed.0)));
    }
    let mut all = parameters.clone();
    all.push((fixed.0.to_owned(), fixed.1));
    // The Link to the next page repeats the query string only: the path gives the rest.
    answer_source(&app, &caller, &uri, &QuerySource::from_url(&all), parameters).await
}

macro_rules! resource_path {
    ($name:ident, $parameter:literal) => {
        async fn $name(
            State(app): State<AppState>,
            caller: Caller,
            uri: Uri,
            Path(value): Path<String>,
            QueryParams(parameters): Parameters,
        ) -> Result<Response, Problem> {
            events_of(app, caller, uri, ($parameter, value), parameters).await
        }
    };
}

resource_path!(events_of_type, "eventType");
resource_path!(events_of_epc, "MATCH_anyEPC");
resource_path!(events_of_business_step, "EQ_bizStep");
resource_path!(events_of_business_location, "EQ_bizLocation");
resource_path!(events_of_read_point, "EQ_readPoint");
resource_path!(events_of_disposition, "EQ_disposition");

// ---------------------------------------------------------------------------------------------
// Named queries and subscriptions

/// The longest query name.
pub const QUERY_NAME_LENGTH_MAX: usize = 128;

fn check_query_name(name: &str) -> Result<(), Problem> {
    let valid = !name.is_empty()
        && name.len() <= QUERY_NAME_LENGTH_MAX
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
    match valid {
        true => Ok(()),
        false => Err(Problem::field(
            "validation-failed",
            "/name",
            format!("a query name is 1-{QUERY_NAME_LENGTH_MAX} characters of A-Z, a-z, 0-9, - _ ."),
        )),
    }
}

async fn stored_query(app: &AppState, tenant: &TenantId, name: &str) -> Result<Value, Problem> {
    let definition =
        app.store.tenant(tenant).epcis_query(name).await?.ok_or_else(|| Problem::not_found(format!("query {name}")))?;
    serde_json::from_str(&definition).map_err(Problem::internal)
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

async fn list_queries(State(app): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let queries = app.store.tenant(&principal.tenant_id).epcis_queries().await?;
    let list: Vec<Value> = queries
        .into_iter()
        .map(|(name, definition)| json!({"name": name, "query": serde_json::from_str::<Value>(&definition).unwrap_or(Value::Null)}))
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(list)))
}

async fn create_query(
    State(app): State<AppState>,
    caller: Caller,
    body: crate::extract::JsonBody<Value>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantWrite)?;
    let name = body.value.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
    check_query_name(&name)?;
    let definition = body
        .value
        .get("query")
        .filter(|query| query.is_object())
        .ok_or_else(|| Problem::field("validation-failed", "/query", "a named query has a query object"))?;
    // The definition must be a valid query now (for this tenant's prefixes), not at first use.
    QuerySource::from_definition(&name, definition)?.prepare(&app.store, &principal.tenant_id).await?;
    let change = store::epcis::QueryMutation::CreateQuery { name: name.clone(), definition: definition.to_string() };
    app.store.tenant(&principal.tenant_id).write(store::Mutation::EpcisQuery(change), None).await?;
    let mut response = json_response(StatusCode::CREATED, &json!({"name": name, "query": definition}));
    let location = format!("/queries/{}", encode_path_segment(&name));
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).map_err(Problem::internal)?);
    Ok(response)
}

async fn get_query(State(app): State<AppState>, caller: Caller, Path(name): Path<String>) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let definition = stored_query(&app, &principal.tenant_id, &name).await?;
    Ok(json_response(StatusCode::OK, &json!({"name": name, "query": definition})))
}

async fn delete_query(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantWrite)?;
    let change = store::epcis::QueryMutation::DeleteQuery { name };
    app.store.tenant(&principal.tenant_id).write(store::Mutation::EpcisQuery(change), None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn named_query_events(
    State(app): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    QueryParams(parameters): Parameters,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    if let Some((other, _)) = parameters.iter().find(|(known, _)| known != "perPage" && known != "nextPageToken") {
        return Err(Problem::new(
            "invalid-parameter",
            format!("{other}: a named query takes only perPage and nextPageToken"),
        ));
    }
    let definition = stored_query(&app, &principal.tenant_id, &name).await?;
    let source = QuerySource::from_definition(&name, &definition)?;
    answer_source(&app, &caller, &uri, &source, parameters).await
}

fn subscription_json(subscription: &store::epcis::Subscription) -> Value {
    let time =
        |unix_ms: i64| jiff::Timestamp::from_millisecond(unix_ms).map(|time| time.to_string()).unwrap_or_default();
    let mut value = json!({
        "subscriptionID": subscription.subscription_id,
        "dest": subscription.destination,
        "createdAt": time(subscription.created_unix_ms),
        "reportIfEmpty": subscription.report_if_empty,
        "deliveries": subscription.deliveries,
        "failedAttempts": subscription.attempts,
    });
    if let Some(map) = value.as_object_mut() {
        match &subscription.schedule {
            Some(schedule) => {
                map.insert("schedule".into(), serde_json::from_str(schedule).unwrap_or(Value::Null));
            }
            None => {
                map.insert("stream".into(), Value::Bool(true));
            }
        }
        if let Some(error) = &subscription.last_error {
            map.insert("lastError".into(), Value::String(error.clone()));
        }
    }
    value
}

/// The most bytes of a signature token.
pub const SIGNATURE_TOKEN_LENGTH_MAX: usize = 256;

async fn create_subscription(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: crate::extract::JsonBody<Value>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantWrite)?;
    stored_query(&app, &principal.tenant_id, &name).await?;
    let body = body.value;
    let field = |pointer: &str, detail: &str| Problem::field("validation-failed", pointer, detail);
    let object = body.as_object().ok_or_else(|| field("", "a subscription is a JSON object"))?;
    for key in object.keys() {
        if !["dest", "signatureToken", "stream", "schedule", "reportIfEmpty", "initialRecordTime"]
            .contains(&key.as_str())
        {
            return Err(field(&format!("/{key}"), "not a field of a subscription"));
        }
    }
    let destination = object.get("dest").and_then(Value::as_str).unwrap_or("");
    let https_only = app.config.webhooks_https_only;
    let schemes = crate::subscriptions::destination_schemes(https_only);
    let refused = || field("/dest", &format!("dest must be {schemes} with a host"));
    let parsed = reqwest::Url::parse(destination).map_err(|_| refused())?;
    if !crate::subscriptions::is_destination(&parsed, https_only) {
        return Err(refused());
    }
    if let Err(reason) =
        crate::subscriptions::check_destination(destination, app.config.webhooks_to_private_addresses).await
    {
        return Err(field("/dest", &format!("dest is refused: {reason}")));
    }
    let token = match object.get("signatureToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) if !token.is_empty() && token.len() <= SIGNATURE_TOKEN_LENGTH_MAX => {
            Some(token.clone())
        }
        Some(_) => return Err(field("/signatureToken", "signatureToken is a string of 1-256 bytes")),
    };
    let stream = match object.get("stream") {
        None => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(field("/stream", "stream is true when given")),
    };
    let schedule = match object.get("schedule") {
        None => None,
        Some(value) => {
            epcis::schedule::Schedule::parse(value).map_err(|error| field("/schedule", &error.to_string()))?;
            Some(value.to_string())
        }
    };
    if stream == schedule.is_some() {
        return Err(field("", "a subscription has either \"stream\": true or a schedule"));
    }
    let report_if_empty = match object.get("reportIfEmpty") {
        None => false,
        Some(Value::Bool(value)) => *value,
        Some(_) => return Err(field("/reportIfEmpty", "reportIfEmpty is a boolean")),
    };
    let initial = match object.get("initialRecordTime") {
        None => None,
        Some(Value::String(text)) => Some(
            Timestamp::parse(text)
                .map_err(|error| field("/initialRecordTime", &error.to_string()))?
                .to_jiff()
                .as_millisecond(),
        ),
        Some(_) => return Err(field("/initialRecordTime", "initialRecordTime is a date-time")),
    };
    let after_seq = crate::subscriptions::initial_cursor(&app.store, initial).await?;
    let now = store::now_unix_ms();
    let next_attempt_unix_ms = match &schedule {
        None => now,
        Some(text) => {
            let value: Value = serde_json::from_str(text).map_err(Problem::internal)?;
            let schedule = epcis::schedule::Schedule::parse(&value).map_err(Problem::internal)?;
            let from = jiff::Timestamp::from_millisecond(now).map_err(Problem::internal)?;
            schedule.next_after(from).map_or(i64::MAX, |time| time.as_millisecond())
        }
    };
    let subscription = store::epcis::Subscription {
        tenant_id: principal.tenant_id.to_string(),
        subscription_id: format!("{:032x}", rand::random::<u128>()),
        query_name: name.clone(),
        destination: destination.to_owned(),
        signature_token: token,
        stream,
        schedule,
        report_if_empty,
        after_seq,
        next_attempt_unix_ms,
        attempts: 0,
        last_error: None,
        deliveries: 0,
        created_unix_ms: now,
    };
    let change = store::epcis::QueryMutation::CreateSubscription(Box::new(subscription.clone()));
    app.store.tenant(&principal.tenant_id).write(store::Mutation::EpcisQuery(change), None).await?;
    app.subscriptions_wake.notify_one();
    let mut response = json_response(StatusCode::CREATED, &subscription_json(&subscription));
    let location = format!("/queries/{}/subscriptions/{}", encode_path_segment(&name), subscription.subscription_id);
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).map_err(Problem::internal)?);
    Ok(response)
}

async fn list_subscriptions(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    stored_query(&app, &principal.tenant_id, &name).await?;
    let list = app.store.tenant(&principal.tenant_id).epcis_subscriptions(&name).await?;
    Ok(json_response(StatusCode::OK, &Value::Array(list.iter().map(subscription_json).collect())))
}

async fn get_subscription(
    State(app): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let list = app.store.tenant(&principal.tenant_id).epcis_subscriptions(&name).await?;
    let subscription = list
        .iter()
        .find(|subscription| subscription.subscription_id == id)
        .ok_or_else(|| Problem::not_found(format!("subscription {id}")))?;
    Ok(json_response(StatusCode::OK, &subscription_json(subscription)))
}

async fn delete_subscription(
    State(app): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantWrite)?;
    let change = store::epcis::QueryMutation::DeleteSubscription { query_name: name, subscription_id: id };
    app.store.tenant(&principal.tenant_id).write(store::Mutation::EpcisQuery(change), None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_indexes_come_from_document_pointers() {
        assert_eq!(event_index("/epcisBody/eventList/12/action"), Some(12));
        assert_eq!(event_index("/epcisBody/eventList/3"), Some(3));
        assert_eq!(event_index("/epcisHeader/epcisMasterData"), None);
        assert_eq!(event_index(""), None);
    }

    #[test]
    fn page_tokens_belong_to_their_query() {
        let token = PageToken { position: EventPosition { key: 1_700_000_000_000, seq: 42 }, served: 30 };
        let text = token.encode("abc");
        assert_eq!(PageToken::decode(&text, "abc").ok(), Some(token));
        assert!(PageToken::decode(&text, "abd").is_err());
        assert!(PageToken::decode("%%%", "abc").is_err());
    }

    #[test]
    fn versions_are_negotiated() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(negotiate(&headers(&[])).is_ok());
        assert!(negotiate(&headers(&[("gs1-epcis-version", "2.0.0")])).is_ok());
        assert!(negotiate(&headers(&[("gs1-epcis-version", "1.2")])).is_err());
        assert!(negotiate(&headers(&[("gs1-cbv-min", "2.1")])).is_err());
        assert!(negotiate(&headers(&[("gs1-epcis-max", "1.2")])).is_err());
        assert!(negotiate(&headers(&[("gs1-epcis-min", "1.2"), ("gs1-epcis-max", "2.0")])).is_ok());
    }
}
