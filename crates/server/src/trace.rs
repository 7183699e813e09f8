//! `GET /v1/trace?epc=…` or `?gtin=…&lot=…`: the history of an item or lot, backward through
//! transformations to its origin and forward to everything it went into and every container that
//! carried it (the recall question), as a timeline and a graph (nodes: objects, edges: events).
//! The links followed are those of [`epcis::trace`]; only events the caller may see are used.
//!
//! With `proofs=true` each logged event carries its log entry (the commitment) and its inclusion
//! path, and the answer one signed checkpoint (`log`): the whole trace checks offline against the
//! log's key; an event's fields check against its entry with the disclosures of
//! `GET /events/{id}/proof`.
//!
//! Limits: at most [`TRACE_OBJECTS_MAX`] objects and [`TRACE_EVENTS_MAX`] events; a trace that
//! reaches either says `"truncated": true`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use epcis::trace::{Reach, links_from, reach_through};
use epcis::{Event, Identifier, VocabularyKind};
use network::TenantId;
use serde_json::{Value, json};
use store::epcis::{EventFilter, EventOrder, StoredEvent};
use store::{Scope, Store};

use crate::AppState;
use crate::api::QueryParams;
use crate::extract::Caller;
use crate::problem::Problem;

pub const TRACE_OBJECTS_MAX: usize = 500;
pub const TRACE_EVENTS_MAX: usize = 5_000;
/// Candidate rows read per trace (an event named by several traced objects is read again).
pub const TRACE_ROWS_SCANNED_MAX: usize = 50_000;
const TRACE_BATCH_ROWS: u32 = 1_000;

const ALL_ROLES: [&str; 9] = [
    "epc",
    "childEPC",
    "parentID",
    "inputEPC",
    "outputEPC",
    "epcClass",
    "childEPCClass",
    "inputEPCClass",
    "outputEPCClass",
];

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceParameters {
    epc: Option<String>,
    gtin: Option<String>,
    lot: Option<String>,
    /// Add each event's inclusion proof under one signed checkpoint (`"log"`).
    #[serde(default)]
    proofs: bool,
}

/// The object a trace starts from: an EPC (any form), or a GTIN and lot (the lot's class).
fn start_of(parameters: &TraceParameters) -> Result<Identifier, Problem> {
    let invalid = |pointer: &str, detail: String| Problem::field("invalid-parameter", pointer, detail);
    match (&parameters.epc, &parameters.gtin, &parameters.lot) {
        (Some(epc), None, None) => Identifier::parse(epc).map_err(|error| invalid("?epc", error.to_string())),
        (None, Some(gtin), Some(lot)) => {
            let gtin = gs1::Gtin::parse(gtin).map_err(|error| invalid("?gtin", error.to_string()))?;
            lot_identifier(&gtin, lot).map_err(|error| invalid("?lot", error.to_string()))
        }
        _ => Err(Problem::new("invalid-parameter", "give ?epc, or ?gtin and ?lot")),
    }
}

/// The EPC class of a lot of a GTIN, as a Digital Link.
pub fn lot_identifier(gtin: &gs1::Gtin, lot: &str) -> Result<Identifier, epcis::IdentifierError> {
    let text = format!("https://id.gs1.org/01/{}/10/{}", gtin.as_str(), epcis::identifier::encode_value(lot));
    Identifier::parse(&text)
}

/// What a trace's object is to the ledger: a lot of a GTIN, or a serialised item of one (the
/// event record keeps an item's serial, not its lot).
pub(crate) enum Made {
    Lot(String, String),
    Item(String),
}

/// The GTIN and lot, or the GTIN of a serialised item, an identifier names, as the ledger keys
/// them; `None` for anything else (a GTIN's class without a lot, another kind of key).
pub(crate) fn made(identifier: &str) -> Option<Made> {
    let link = epcis::Identifier::unchecked(identifier).digital_link()?;
    let gtin = link.gtin()?.to_string();
    let qualifier = |code: &str| {
        link.qualifiers().iter().find(|element| element.code() == code).map(|element| element.value().to_owned())
    };
    match (qualifier("10"), qualifier("21")) {
        (Some(lot), _) => Some(Made::Lot(gtin, lot)),
        (None, Some(_)) => Some(Made::Item(gtin)),
        (None, None) => None,
    }
}

/// What a trace found.
#[derive(Debug, Default)]
pub struct Trace {
    /// Object → how it was reached.
    pub objects: BTreeMap<String, Reach>,
    /// Events by capture sequence.
    pub events: BTreeMap<i64, (StoredEvent, Event)>,
    /// (from, to, relation, eventID).
    pub edges: BTreeSet<(String, String, &'static str, String)>,
    pub truncated: bool,
}

/// Follows the links from `start` through the events `viewer` may see.
pub async fn trace(store: &Store, viewer: &TenantId, start: &Identifier) -> Result<Trace, Problem> {
    let mut found = Trace::default();
    let mut queue = VecDeque::from([start.as_str().to_owned()]);
    found.objects.insert(start.as_str().to_owned(), Reach::Start);
    let mut scanned = 0usize;
    while let Some(object) = queue.pop_front() {
        let reached_as = found.objects.get(&object).copied().unwrap_or(Reach::Container);
        let filter = EventFilter {
            identifiers: vec![(ALL_ROLES.iter().map(|role| (*role).to_owned()).collect(), vec![object.clone()])],
            ..EventFilter::default()
        };
        let mut after = None;
        loop {
            if found.events.len() >= TRACE_EVENTS_MAX || scanned >= TRACE_ROWS_SCANNED_MAX {
                found.truncated = true;
                break;
            }
            let batch =
                store.epcis_candidates(viewer, &filter, EventOrder::RecordAscending, after, TRACE_BATCH_ROWS).await?;
            let full = batch.len() == TRACE_BATCH_ROWS as usize;
            scanned += batch.len();
            for stored in batch {
                after = Some(stored.position(EventOrder::RecordAscending));
                let event = match found.events.get(&stored.seq) {
                    Some((_, event)) => event.clone(),
                    None if found.events.len() >= TRACE_EVENTS_MAX => {
                        found.truncated = true;
                        break;
                    }
                    None => crate::epcis::decode(&stored)?.0,
                };
                for link in links_from(&event, &object, reached_as) {
                    let event_id = event.event_id.clone().unwrap_or_default();
                    found.edges.insert((link.from.clone(), link.to.clone(), link.relation(), event_id));
                    if !found.objects.contains_key(&link.to) {
                        if found.objects.len() >= TRACE_OBJECTS_MAX {
                            found.truncated = true;
                            continue;
                        }
                        found.objects.insert(link.to.clone(), reach_through(reached_as, link.reach));
                        queue.push_back(link.to.clone());
                    }
                }
                found.events.entry(stored.seq).or_insert((stored, event));
            }
            if !full {
                break;
            }
        }
    }
    Ok(found)
}

/// What kind of object an identifier names, for people reading the graph.
fn kind_of(identifier: &str) -> &'static str {
    let Some(link) = Identifier::unchecked(identifier).digital_link() else { return "object" };
    let qualifiers: Vec<&str> = link.qualifiers().iter().map(|qualifier| qualifier.code()).collect();
    match link.primary_key().code() {
        "00" => "logistic unit",
        "01" if qualifiers.contains(&"21") => "item",
        "01" if qualifiers.contains(&"10") => "lot",
        "01" => "product",
        "414" => "location",
        "8003" => "returnable asset",
        "8004" => "individual asset",
        _ => "object",
    }
}

fn timeline_entry(stored: &StoredEvent, event: &Event) -> Value {
    let vocabulary = |value: &Option<epcis::VocabularyValue>, kind: VocabularyKind| {
        value.as_ref().map(|value| value.json_form(kind).to_owned())
    };
    let objects: BTreeSet<&str> = event.all_epcs().chain(event.all_epc_classes()).map(Identifier::as_str).collect();
    json!({
        "eventID": event.event_id,
        "eventType": event.event_type.map(|event_type| event_type.type_name()),
        "eventTime": event.event_time.map(|time| time.to_string()),
        "eventTimeZoneOffset": event.event_time_zone_offset.map(|offset| offset.to_string()),
        "recordTime": jiff::Timestamp::from_millisecond(stored.record_time_ms).map(|time| time.to_string()).ok(),
        "action": event.action.map(|action| action.as_str()),
        "bizStep": vocabulary(&event.business_step, VocabularyKind::BusinessStep),
        "disposition": vocabulary(&event.disposition, VocabularyKind::Disposition),
        "readPoint": event.read_point.as_ref().map(|location| location.id.as_str()),
        "bizLocation": event.business_location.as_ref().map(|location| location.id.as_str()),
        "objects": objects,
        "bizTransactions": event.business_transaction_list.iter().map(|transaction| transaction.id.as_str()).collect::<Vec<_>>(),
        "errorDeclared": event.error_declaration.is_some(),
        "logIndex": stored.log_index,
    })
}

pub async fn trace_endpoint(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(parameters): QueryParams<TraceParameters>,
) -> Result<Response, Problem> {
    let principal = caller.require(Scope::TenantRead)?;
    let start = start_of(&parameters)?;
    let found = trace(&app.store, &principal.tenant_id, &start).await?;
    let mut timeline: Vec<(&StoredEvent, &Event)> =
        found.events.values().map(|(stored, event)| (stored, event)).collect();
    timeline.sort_by_key(|(stored, event)| (event.event_time, stored.seq));
    let mut entries: Vec<Value> = timeline.iter().map(|(stored, event)| timeline_entry(stored, event)).collect();
    // With `proofs=true`: every logged event's inclusion path under one signed checkpoint, so the
    // whole trace checks offline against the log's key.
    let mut log = Value::Null;
    if parameters.proofs {
        let indexes: Vec<u64> =
            timeline.iter().filter_map(|(stored, _)| stored.log_index).map(|index| index as u64).collect();
        if !indexes.is_empty() {
            let (checkpoint, paths) = crate::log::inclusion_proofs(&app, &indexes).await?;
            let mut paths = paths.into_iter();
            for entry in entries.iter_mut().filter(|entry| entry["logIndex"].is_u64()) {
                let index = entry["logIndex"].as_u64().unwrap_or_default();
                let logged = app.store.log_entries(index, 1).await?.pop().unwrap_or_default();
                let path: Vec<String> = paths.next().unwrap_or_default().iter().map(|hash| hash.to_base64()).collect();
                entry["logEntry"] = json!(BASE64.encode(logged));
                entry["inclusionPath"] = json!(path);
            }
            let note = crate::log::with_cosignatures(&app.store, &checkpoint).await?;
            log = json!({ "treeSize": checkpoint.size, "checkpoint": note });
        }
    }
    let body = json!({
        "start": start.as_str(),
        "timeline": entries,
        "log": log,
        "graph": {
            "nodes": found.objects.iter().map(|(id, reach)| json!({"id": id, "kind": kind_of(id), "reach": reach.name()})).collect::<Vec<_>>(),
            "edges": found.edges.iter().map(|(from, to, relation, event_id)| json!({"from": from, "to": to, "relation": relation, "eventID": event_id})).collect::<Vec<_>>(),
        },
        "truncated": found.truncated,
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}
