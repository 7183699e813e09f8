//! Reading EPCIS JSON / JSON-LD into the model, with the structural and semantic checks of
//! each field. Every problem is recorded with its JSON pointer; reading goes on after an
//! error so that a document yields all its errors.
//!
//! The XML reader converts XML into this JSON shape first (extension names already expanded
//! as `{namespace}local`), so both wire formats share these rules.

use serde_json::{Map, Value};

use crate::error::{Errors, child_pointer, index_pointer};
use crate::identifier::{Identifier, is_absolute_uri};
use crate::model::{
    Action, BusinessTransaction, Document, DocumentKind, ErrorDeclaration, Event, EventType, ExpandedName,
    ExtensionField, ExtensionValue, Location, MasterDataElement, MasterDataVocabulary, Namespace,
    PersistentDisposition, QuantityElement, QueryResults, SensorElement, SensorMetadata, SensorReport,
    SourceOrDestination,
};
use crate::time::{TimeZoneOffset, Timestamp};
use crate::vocabulary::{self, VocabularyKind, VocabularyValue};

/// The standard EPCIS 2.0 JSON-LD context.
pub const STANDARD_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

/// Prefixes the standard context defines.
pub const PREDEFINED_PREFIXES: &[(&str, &str)] = &[
    ("epcis", "https://ref.gs1.org/epcis/"),
    ("cbv", "https://ref.gs1.org/cbv/"),
    ("cbvmda", "urn:epcglobal:cbv:mda:"),
    ("gs1", "https://gs1.org/voc/"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("dcterms", "http://purl.org/dc/terms/"),
];

/// The most events one document may hold.
pub const EVENT_COUNT_MAXIMUM: usize = 1_000_000;

/// The prefixes in scope: predefined, then the document's, then an event's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    declared: Vec<Namespace>,
}

impl Scope {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        self.declared
            .iter()
            .rev()
            .find(|namespace| namespace.prefix == prefix)
            .map(|namespace| namespace.iri.as_str())
            .or_else(|| PREDEFINED_PREFIXES.iter().find(|(known, _)| *known == prefix).map(|(_, iri)| *iri))
    }

    /// Adds the prefix definitions of an `@context` value; reports malformed ones.
    fn add_context(&mut self, context: &Value, pointer: &str, errors: &mut Errors) {
        match context {
            Value::String(_) | Value::Null => {}
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.add_context(item, &index_pointer(pointer, index), errors);
                }
            }
            Value::Object(map) => {
                for (key, value) in map {
                    let iri = match value {
                        Value::String(iri) => Some(iri.as_str()),
                        Value::Object(definition) => definition.get("@id").and_then(Value::as_str),
                        _ => None,
                    };
                    if key.starts_with('@') {
                        continue;
                    }
                    match iri {
                        Some(iri) if is_absolute_uri(iri) && !key.contains(':') => {
                            self.declared.push(Namespace { prefix: key.clone(), iri: iri.to_owned() });
                        }
                        Some(_) | None => {}
                    }
                }
            }
            _ => errors.push(pointer, "@context must be a string, an object or an array of them"),
        }
    }

    /// Expands a JSON key of a user field: `prefix:local`, `{iri}local` or an absolute IRI.
    fn expand(&self, key: &str) -> Result<ExpandedName, String> {
        if let Some(rest) = key.strip_prefix('{')
            && let Some((namespace, local_name)) = rest.split_once('}')
        {
            return Ok(ExpandedName::new(namespace, local_name));
        }
        let is_iri = key.starts_with("http://") || key.starts_with("https://");
        if is_iri {
            let split = key.rfind(['/', '#']).unwrap_or(0);
            return Ok(ExpandedName::new(&key[..=split], &key[split + 1..]));
        }
        match key.split_once(':') {
            Some((prefix, local_name)) => match self.lookup(prefix) {
                Some(iri) => Ok(ExpandedName::new(iri, local_name)),
                None if key.starts_with("urn:") => {
                    let split = key.rfind(':').unwrap_or(0);
                    Ok(ExpandedName::new(&key[..=split], &key[split + 1..]))
                }
                None => Err(format!(
                    "namespace prefix {prefix:?} of {key:?} is not declared in @context (rule: user extensions use declared namespaces)"
                )),
            },
            None => {
                Err(format!("{key:?} is not a field of this object (rule: user fields are namespaced, prefix:name)"))
            }
        }
    }
}

/// Reads a JSON document (EPCISDocument or EPCISQueryDocument).
pub(crate) fn read_document(value: &Value, errors: &mut Errors) -> Option<Document> {
    let Some(map) = value.as_object() else {
        errors.push("", "a document is a JSON object");
        return None;
    };
    let kind = match map.get("type").and_then(Value::as_str) {
        Some("EPCISDocument") => DocumentKind::Document,
        Some("EPCISQueryDocument") => DocumentKind::QueryDocument,
        Some(other) => {
            errors.push("/type", format!("type must be EPCISDocument or EPCISQueryDocument, found {other:?}"));
            return None;
        }
        None => {
            errors.push("/type", "type is required (EPCISDocument or EPCISQueryDocument)");
            return None;
        }
    };
    let mut scope = Scope::default();
    match map.get("@context") {
        Some(context) => scope.add_context(context, "/@context", errors),
        None => errors.push("/@context", "@context is required (rule: a JSON-LD document names the EPCIS context)"),
    }
    let schema_version = match map.get("schemaVersion") {
        Some(Value::String(version)) if version.starts_with('2') => version.clone(),
        Some(Value::String(version)) => {
            errors.push("/schemaVersion", format!("schemaVersion must be 2.x, found {version:?}"));
            version.clone()
        }
        Some(Value::Number(number)) => number.to_string(),
        Some(_) => {
            errors.push("/schemaVersion", "schemaVersion must be a string");
            String::new()
        }
        None => {
            errors.push("/schemaVersion", "schemaVersion is required");
            String::new()
        }
    };
    let creation_date = match map.get("creationDate") {
        Some(value) => read_timestamp(value, "/creationDate", errors),
        None if kind == DocumentKind::Document => {
            errors.push("/creationDate", "creationDate is required");
            None
        }
        None => None,
    };
    let master_data =
        map.get("epcisHeader").map(|header| read_header(header, "/epcisHeader", errors)).unwrap_or_default();
    let mut query_results = None;
    let mut query_result_fields = Vec::new();
    let mut events = Vec::new();
    match map.get("epcisBody").and_then(Value::as_object) {
        Some(body) => match kind {
            DocumentKind::Document => {
                events = read_body_events(body, "/epcisBody", &scope, errors);
            }
            DocumentKind::QueryDocument => match body.get("queryResults").and_then(Value::as_object) {
                Some(results) => {
                    let pointer = "/epcisBody/queryResults";
                    let text_of = |key: &str| results.get(key).and_then(Value::as_str).map(str::to_owned);
                    let query_name = text_of("queryName");
                    for (key, value) in results {
                        let standard = ["subscriptionID", "queryName", "resultsBody"];
                        if !standard.contains(&key.as_str())
                            && let Ok(name) = scope.expand(key)
                        {
                            query_result_fields.push(ExtensionField { name, value: extension_value(value, &scope) });
                        }
                    }
                    query_results = Some(QueryResults { subscription_id: text_of("subscriptionID"), query_name });
                    match results.get("resultsBody").and_then(Value::as_object) {
                        Some(results_body) => {
                            events =
                                read_body_events(results_body, &child_pointer(pointer, "resultsBody"), &scope, errors);
                        }
                        None => errors
                            .push(&child_pointer(pointer, "resultsBody"), "resultsBody is required and is an object"),
                    }
                }
                None => errors.push("/epcisBody/queryResults", "queryResults is required in an EPCISQueryDocument"),
            },
        },
        None => errors.push("/epcisBody", "epcisBody is required and is an object"),
    }
    let known = ["@context", "type", "schemaVersion", "creationDate", "epcisHeader", "epcisBody"];
    let mut other_fields = Vec::new();
    for (key, value) in map {
        if known.contains(&key.as_str()) {
            continue;
        }
        let name = scope.expand(key).unwrap_or_else(|_| ExpandedName::new("", key));
        other_fields.push(ExtensionField { name, value: extension_value(value, &scope) });
    }
    let mut hash_ignored_fields = ignored_fields(&other_fields, &scope);
    hash_ignored_fields.extend(ignored_fields(&query_result_fields, &scope));
    Some(Document {
        kind,
        hash_ignored_fields,
        schema_version,
        creation_date,
        namespaces: scope.declared,
        master_data,
        query_results,
        events,
        other_fields,
    })
}

fn read_body_events(body: &Map<String, Value>, pointer: &str, scope: &Scope, errors: &mut Errors) -> Vec<Event> {
    if let Some(list) = body.get("eventList") {
        let list_pointer = child_pointer(pointer, "eventList");
        let Some(items) = list.as_array() else {
            errors.push(&list_pointer, "eventList must be an array");
            return Vec::new();
        };
        if items.len() > EVENT_COUNT_MAXIMUM {
            errors.push(&list_pointer, format!("more than {EVENT_COUNT_MAXIMUM} events in one document"));
            return Vec::new();
        }
        return items
            .iter()
            .enumerate()
            .map(|(index, item)| read_event(item, &index_pointer(&list_pointer, index), scope, errors))
            .collect();
    }
    if let Some(event) = body.get("event") {
        return vec![read_event(event, &child_pointer(pointer, "event"), scope, errors)];
    }
    Vec::new()
}

fn read_header(value: &Value, pointer: &str, errors: &mut Errors) -> Vec<MasterDataVocabulary> {
    let Some(master_data) = value.get("epcisMasterData") else {
        return Vec::new();
    };
    let master_pointer = child_pointer(pointer, "epcisMasterData");
    let Some(vocabularies) = master_data.get("vocabularyList").and_then(Value::as_array) else {
        errors.push(&child_pointer(&master_pointer, "vocabularyList"), "vocabularyList is required and is an array");
        return Vec::new();
    };
    let scope = Scope::default();
    let mut result = Vec::new();
    for (index, vocabulary) in vocabularies.iter().enumerate() {
        let vocabulary_pointer = index_pointer(&child_pointer(&master_pointer, "vocabularyList"), index);
        let Some(vocabulary_type) = vocabulary.get("type").and_then(Value::as_str) else {
            errors.push(&child_pointer(&vocabulary_pointer, "type"), "a vocabulary has a type");
            continue;
        };
        let mut elements = Vec::new();
        let element_values =
            vocabulary.get("vocabularyElementList").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (element_index, element) in element_values.iter().enumerate() {
            let element_pointer =
                index_pointer(&child_pointer(&vocabulary_pointer, "vocabularyElementList"), element_index);
            let Some(id) = element.get("id").and_then(Value::as_str) else {
                errors.push(&child_pointer(&element_pointer, "id"), "a vocabulary element has an id");
                continue;
            };
            let attributes = element
                .get("attributes")
                .and_then(Value::as_array)
                .map(|attributes| {
                    attributes
                        .iter()
                        .filter_map(|attribute| {
                            let id = attribute.get("id")?.as_str()?.to_owned();
                            let value = attribute
                                .get("attribute")
                                .map(|value| extension_value(value, &scope))
                                .unwrap_or(ExtensionValue::Null);
                            Some((id, value))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let children = element
                .get("children")
                .and_then(Value::as_array)
                .map(|children| children.iter().filter_map(|child| child.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            elements.push(MasterDataElement { id: id.to_owned(), attributes, children });
        }
        result.push(MasterDataVocabulary { vocabulary_type: vocabulary_type.to_owned(), elements });
    }
    result
}

/// The standard fields of each event type, besides the common ones.
fn fields_of(event_type: EventType) -> &'static [&'static str] {
    match event_type {
        EventType::Object => &[
            "epcList",
            "quantityList",
            "action",
            "bizStep",
            "disposition",
            "persistentDisposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "ilmd",
        ],
        EventType::Aggregation | EventType::Association => &[
            "parentID",
            "childEPCs",
            "childQuantityList",
            "action",
            "bizStep",
            "disposition",
            "persistentDisposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "sourceList",
            "destinationList",
            "sensorElementList",
        ],
        EventType::Transaction => &[
            "parentID",
            "epcList",
            "quantityList",
            "action",
            "bizStep",
            "disposition",
            "persistentDisposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "sourceList",
            "destinationList",
            "sensorElementList",
        ],
        EventType::Transformation => &[
            "inputEPCList",
            "inputQuantityList",
            "outputEPCList",
            "outputQuantityList",
            "transformationID",
            "bizStep",
            "disposition",
            "persistentDisposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "ilmd",
        ],
    }
}

const COMMON_FIELDS: &[&str] = &[
    "@context",
    "type",
    "eventTime",
    "recordTime",
    "eventTimeZoneOffset",
    "eventID",
    "certificationInfo",
    "errorDeclaration",
];

/// Reads one event; `pointer` locates it.
pub(crate) fn read_event(value: &Value, pointer: &str, scope: &Scope, errors: &mut Errors) -> Event {
    let mut event = Event::default();
    let Some(map) = value.as_object() else {
        errors.push(pointer, "an event is a JSON object");
        return event;
    };
    let mut scope = scope.clone();
    if let Some(context) = map.get("@context") {
        scope.add_context(context, &child_pointer(pointer, "@context"), errors);
    }
    let at = |key: &str| child_pointer(pointer, key);
    event.event_type = match map.get("type") {
        Some(Value::String(name)) => match EventType::from_type_name(name) {
            Some(event_type) => Some(event_type),
            None => {
                errors.push(
                    &at("type"),
                    format!("{name:?} is not an event type (ObjectEvent, AggregationEvent, AssociationEvent, TransactionEvent, TransformationEvent)"),
                );
                None
            }
        },
        _ => {
            errors.push(&at("type"), "type is required and names the event type");
            None
        }
    };
    let Some(event_type) = event.event_type else {
        return event;
    };
    let allowed = fields_of(event_type);
    for (key, field_value) in map {
        let field_pointer = at(key);
        let key = key.as_str();
        let is_standard = COMMON_FIELDS.contains(&key) || allowed.contains(&key);
        if !is_standard {
            let is_other_type_field = EventType::ALL.iter().any(|other| fields_of(*other).contains(&key));
            if is_other_type_field {
                errors.push(&field_pointer, format!("{key} is not a field of {event_type}"));
                continue;
            }
            read_extension_field(key, field_value, &field_pointer, &scope, &mut event.extensions, errors);
            continue;
        }
        match key {
            "@context" | "type" => {}
            "eventTime" => event.event_time = read_timestamp(field_value, &field_pointer, errors),
            "recordTime" => event.record_time = read_timestamp(field_value, &field_pointer, errors),
            "eventTimeZoneOffset" => {
                event.event_time_zone_offset = match field_value.as_str() {
                    Some(text) => {
                        TimeZoneOffset::parse(text).map_err(|error| errors.push(&field_pointer, error.to_string())).ok()
                    }
                    None => {
                        errors.push(&field_pointer, "eventTimeZoneOffset must be a string");
                        None
                    }
                }
            }
            "eventID" => match field_value.as_str() {
                Some(text) if is_absolute_uri(text.trim()) => {
                    event.event_id = Some(text.trim().to_owned());
                }
                _ => errors.push(&field_pointer, "eventID must be an absolute URI"),
            },
            "certificationInfo" => {
                event.certification_info = read_certification_info(field_value, &field_pointer, errors);
            }
            "errorDeclaration" => {
                event.error_declaration = read_error_declaration(field_value, &field_pointer, &scope, errors);
            }
            "epcList" => event.epc_list = read_identifier_list(field_value, &field_pointer, errors),
            "childEPCs" => event.child_epcs = read_identifier_list(field_value, &field_pointer, errors),
            "inputEPCList" => {
                event.input_epc_list = read_identifier_list(field_value, &field_pointer, errors);
            }
            "outputEPCList" => {
                event.output_epc_list = read_identifier_list(field_value, &field_pointer, errors);
            }
            "parentID" => event.parent_id = read_identifier(field_value, &field_pointer, errors),
            "transformationID" => {
                event.transformation_id = read_identifier(field_value, &field_pointer, errors);
            }
            "quantityList" => {
                event.quantity_list = read_quantity_list(field_value, &field_pointer, errors);
            }
            "childQuantityList" => {
                event.child_quantity_list = read_quantity_list(field_value, &field_pointer, errors);
            }
            "inputQuantityList" => {
                event.input_quantity_list = read_quantity_list(field_value, &field_pointer, errors);
            }
            "outputQuantityList" => {
                event.output_quantity_list = read_quantity_list(field_value, &field_pointer, errors);
            }
            "action" => match field_value.as_str().and_then(Action::parse) {
                Some(action) => event.action = Some(action),
                None => {
                    errors.push(&field_pointer, format!("action must be ADD, OBSERVE or DELETE, found {field_value}"))
                }
            },
            "bizStep" => {
                event.business_step =
                    read_vocabulary(VocabularyKind::BusinessStep, field_value, &field_pointer, errors);
            }
            "disposition" => {
                event.disposition = read_vocabulary(VocabularyKind::Disposition, field_value, &field_pointer, errors);
            }
            "persistentDisposition" => {
                event.persistent_disposition = read_persistent_disposition(field_value, &field_pointer, errors);
            }
            "readPoint" => event.read_point = read_location(field_value, &field_pointer, &scope, errors),
            "bizLocation" => {
                event.business_location = read_location(field_value, &field_pointer, &scope, errors);
            }
            "bizTransactionList" => {
                event.business_transaction_list = read_business_transactions(field_value, &field_pointer, errors);
            }
            "sourceList" => {
                event.source_list = read_sources_or_destinations(field_value, &field_pointer, "source", errors);
            }
            "destinationList" => {
                event.destination_list =
                    read_sources_or_destinations(field_value, &field_pointer, "destination", errors);
            }
            "sensorElementList" => {
                event.sensor_element_list = read_sensor_elements(field_value, &field_pointer, &scope, errors);
            }
            "ilmd" => event.instance_lot_master_data = read_ilmd(field_value, &field_pointer, &scope, errors),
            _ => {}
        }
    }
    check_required_fields(&event, map, pointer, errors);
    event
}

/// The rules of presence per event type and action (EPCIS 2.0 §7.4).
fn check_required_fields(event: &Event, map: &Map<String, Value>, pointer: &str, errors: &mut Errors) {
    let at = |key: &str| child_pointer(pointer, key);
    if !map.contains_key("eventTime") {
        errors.push(&at("eventTime"), "eventTime is required");
    }
    if !map.contains_key("eventTimeZoneOffset") {
        errors.push(&at("eventTimeZoneOffset"), "eventTimeZoneOffset is required");
    }
    let Some(event_type) = event.event_type else {
        return;
    };
    if event_type != EventType::Transformation && !map.contains_key("action") {
        errors.push(&at("action"), format!("action is required in {event_type}"));
    }
    match event_type {
        EventType::Object => {
            let names_objects = map.contains_key("epcList") || map.contains_key("quantityList");
            let observes_sensors = event.action == Some(Action::Observe) && !event.sensor_element_list.is_empty();
            if !names_objects && !observes_sensors {
                errors.push(
                    &at("epcList"),
                    "an ObjectEvent names its objects: epcList or quantityList is required (only an OBSERVE with sensor data may have neither)",
                );
            }
            if event.instance_lot_master_data.is_some() && event.action != Some(Action::Add) && event.action.is_some() {
                errors.push(&at("ilmd"), "ilmd is only allowed when action is ADD");
            }
        }
        EventType::Aggregation => {
            let needs_parent = matches!(event.action, Some(Action::Add | Action::Delete));
            if needs_parent && !map.contains_key("parentID") {
                errors.push(&at("parentID"), "parentID is required when action is ADD or DELETE");
            }
        }
        EventType::Association => {
            if !map.contains_key("parentID") {
                errors.push(&at("parentID"), "parentID is required in an AssociationEvent");
            }
        }
        EventType::Transaction => {
            if !map.contains_key("bizTransactionList") {
                errors.push(&at("bizTransactionList"), "bizTransactionList is required in a TransactionEvent");
            }
        }
        EventType::Transformation => {
            let has_input = map.contains_key("inputEPCList") || map.contains_key("inputQuantityList");
            let has_output = map.contains_key("outputEPCList") || map.contains_key("outputQuantityList");
            let complete = map.contains_key("transformationID") || (has_input && has_output);
            if !complete {
                errors.push(
                    pointer,
                    "a TransformationEvent without transformationID has at least one input and one output",
                );
            }
        }
    }
}

pub(crate) fn read_timestamp(value: &Value, pointer: &str, errors: &mut Errors) -> Option<Timestamp> {
    match value.as_str() {
        Some(text) => Timestamp::parse(text.trim()).map_err(|error| errors.push(pointer, error.to_string())).ok(),
        None => {
            errors.push(pointer, "a time is a string (xsd:dateTimeStamp)");
            None
        }
    }
}

fn read_identifier(value: &Value, pointer: &str, errors: &mut Errors) -> Option<Identifier> {
    match value.as_str() {
        Some(text) => Identifier::parse(text).map_err(|error| errors.push(pointer, error.to_string())).ok(),
        None => {
            errors.push(pointer, "an identifier is a string (a URI)");
            None
        }
    }
}

fn read_identifier_list(value: &Value, pointer: &str, errors: &mut Errors) -> Vec<Identifier> {
    let Some(items) = value.as_array() else {
        errors.push(pointer, "a list of identifiers is an array of URIs");
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| read_identifier(item, &index_pointer(pointer, index), errors))
        .collect()
}

fn read_certification_info(value: &Value, pointer: &str, errors: &mut Errors) -> Vec<String> {
    let one = |item: &Value, item_pointer: &str, errors: &mut Errors| match item.as_str() {
        Some(text) if is_absolute_uri(text.trim()) => Some(text.trim().to_owned()),
        _ => {
            errors.push(item_pointer, "certificationInfo is a URI (or an array of URIs)");
            None
        }
    };
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| one(item, &index_pointer(pointer, index), errors))
            .collect(),
        other => one(other, pointer, errors).into_iter().collect(),
    }
}

fn read_vocabulary(kind: VocabularyKind, value: &Value, pointer: &str, errors: &mut Errors) -> Option<VocabularyValue> {
    match value.as_str() {
        Some(text) => vocabulary::normalise(kind, text).map_err(|error| errors.push(pointer, error.to_string())).ok(),
        None => {
            errors.push(pointer, format!("{} is a string", kind.field_name()));
            None
        }
    }
}

fn read_number(value: &Value, pointer: &str, field: &str, errors: &mut Errors) -> Option<f64> {
    match value.as_f64() {
        Some(number) if number.is_finite() => Some(number),
        _ => {
            errors.push(pointer, format!("{field} must be a number, found {value}"));
            None
        }
    }
}

fn read_quantity_list(value: &Value, pointer: &str, errors: &mut Errors) -> Vec<QuantityElement> {
    let Some(items) = value.as_array() else {
        errors.push(pointer, "a quantity list is an array of quantity elements");
        return Vec::new();
    };
    let mut result = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_pointer = index_pointer(pointer, index);
        let Some(map) = item.as_object() else {
            errors.push(&item_pointer, "a quantity element is an object");
            continue;
        };
        let mut epc_class = None;
        let mut quantity = None;
        let mut unit_of_measure = None;
        for (key, field_value) in map {
            let field_pointer = child_pointer(&item_pointer, key);
            match key.as_str() {
                "epcClass" => epc_class = read_identifier(field_value, &field_pointer, errors),
                "quantity" => quantity = read_number(field_value, &field_pointer, "quantity", errors),
                "uom" => match field_value.as_str() {
                    Some(code) if is_unit_code(code) => unit_of_measure = Some(code.to_owned()),
                    _ => errors.push(
                        &field_pointer,
                        "uom is a UN/CEFACT Recommendation 20 code (2 or 3 upper-case letters or digits)",
                    ),
                },
                other => errors.push(
                    &field_pointer,
                    format!("{other:?} is not a field of a quantity element (epcClass, quantity, uom)"),
                ),
            }
        }
        if !map.contains_key("epcClass") {
            errors.push(&child_pointer(&item_pointer, "epcClass"), "epcClass is required");
        }
        if unit_of_measure.is_some() && !map.contains_key("quantity") {
            errors.push(&child_pointer(&item_pointer, "uom"), "uom requires quantity");
        }
        if let Some(number) = quantity
            && number < 0.0
        {
            errors.push(&child_pointer(&item_pointer, "quantity"), "quantity must not be negative");
        }
        if let Some(epc_class) = epc_class {
            result.push(QuantityElement { epc_class, quantity, unit_of_measure });
        }
    }
    result
}

/// A UN/CEFACT Recommendation 20 (or 21) unit code.
pub(crate) fn is_unit_code(code: &str) -> bool {
    (2..=3).contains(&code.len()) && code.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
}

fn read_persistent_disposition(value: &Value, pointer: &str, errors: &mut Errors) -> Option<PersistentDisposition> {
    let Some(map) = value.as_object() else {
        errors.push(pointer, "persistentDisposition is an object with set and/or unset");
        return None;
    };
    let mut result = PersistentDisposition::default();
    for (key, list) in map {
        let list_pointer = child_pointer(pointer, key);
        let Some(items) = list.as_array() else {
            errors.push(&list_pointer, format!("{key} is an array of dispositions"));
            continue;
        };
        let values: Vec<VocabularyValue> = items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                read_vocabulary(VocabularyKind::Disposition, item, &index_pointer(&list_pointer, index), errors)
            })
            .collect();
        match key.as_str() {
            "set" => result.set = values,
            "unset" => result.unset = values,
            other => {
                errors.push(&list_pointer, format!("{other:?} is not a field of persistentDisposition (set, unset)"))
            }
        }
    }
    Some(result)
}

fn read_location(value: &Value, pointer: &str, scope: &Scope, errors: &mut Errors) -> Option<Location> {
    let Some(map) = value.as_object() else {
        errors.push(pointer, "a location is an object with an id");
        return None;
    };
    let mut id = None;
    let mut extensions = Vec::new();
    for (key, field_value) in map {
        let field_pointer = child_pointer(pointer, key);
        match key.as_str() {
            "id" => id = read_identifier(field_value, &field_pointer, errors),
            other => read_extension_field(other, field_value, &field_pointer, scope, &mut extensions, errors),
        }
    }
    if !map.contains_key("id") {
        errors.push(&child_pointer(pointer, "id"), "id is required");
    }
    id.map(|id| Location { id, extensions })
}

fn read_extension_field(
    key: &str,
    value: &Value,
    pointer: &str,
    scope: &Scope,
    extensions: &mut Vec<ExtensionField>,
    errors: &mut Errors,
) {
    let name = match scope.expand(key) {
        Ok(name) => name,
        Err(detail) => {
            // Reported, and kept (without namespace) for lenient readers.
            errors.push(pointer, detail);
            ExpandedName::new("", key)
        }
    };
    extensions.push(ExtensionField { name, value: extension_value(value, scope) });
}

fn read_business_transactions(value: &Value, pointer: &str, errors: &mut Errors) -> Vec<BusinessTransaction> {
    let Some(items) = value.as_array() else {
        errors.push(pointer, "bizTransactionList is an array");
        return Vec::new();
    };
    let mut result = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_pointer = index_pointer(pointer, index);
        let Some(map) = item.as_object() else {
            errors.push(&item_pointer, "a business transaction is an object");
            continue;
        };
        let mut transaction_type = None;
        let mut id = None;
        for (key, field_value) in map {
            let field_pointer = child_pointer(&item_pointer, key);
            match key.as_str() {
                "type" => {
                    transaction_type =
                        read_vocabulary(VocabularyKind::BusinessTransactionType, field_value, &field_pointer, errors);
                }
                "bizTransaction" => id = read_identifier(field_value, &field_pointer, errors),
                other => errors.push(
                    &field_pointer,
                    format!("{other:?} is not a field of a business transaction (type, bizTransaction)"),
                ),
            }
        }
        if !map.contains_key("bizTransaction") {
            errors.push(&child_pointer(&item_pointer, "bizTransaction"), "bizTransaction is required");
        }
        if let Some(id) = id {
            result.push(BusinessTransaction { transaction_type, id });
        }
    }
    result
}

fn read_sources_or_destinations(
    value: &Value,
    pointer: &str,
    field: &str,
    errors: &mut Errors,
) -> Vec<SourceOrDestination> {
    let Some(items) = value.as_array() else {
        errors.push(pointer, format!("{field}List is an array"));
        return Vec::new();
    };
    let mut result = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_pointer = index_pointer(pointer, index);
        let Some(map) = item.as_object() else {
            errors.push(&item_pointer, format!("a {field} is an object"));
            continue;
        };
        let mut kind = None;
        let mut id = None;
        for (key, field_value) in map {
            let field_pointer = child_pointer(&item_pointer, key);
            if key == "type" {
                kind = read_vocabulary(VocabularyKind::SourceDestinationType, field_value, &field_pointer, errors);
            } else if key == field {
                id = read_identifier(field_value, &field_pointer, errors);
            } else {
                errors.push(&field_pointer, format!("{key:?} is not a field of a {field} (type, {field})"));
            }
        }
        for required in ["type", field] {
            if !map.contains_key(required) {
                errors.push(&child_pointer(&item_pointer, required), format!("{required} is required"));
            }
        }
        if let (Some(kind), Some(id)) = (kind, id) {
            result.push(SourceOrDestination { kind, id });
        }
    }
    result
}

fn read_error_declaration(
    value: &Value,
    pointer: &str,
    scope: &Scope,
    errors: &mut Errors,
) -> Option<ErrorDeclaration> {
    let Some(map) = value.as_object() else {
        errors.push(pointer, "errorDeclaration is an object");
        return None;
    };
    let mut declaration = ErrorDeclaration {
        declaration_time: None,
        reason: None,
        corrective_event_ids: Vec::new(),
        extensions: Vec::new(),
    };
    for (key, field_value) in map {
        let field_pointer = child_pointer(pointer, key);
        match key.as_str() {
            "declarationTime" => {
                declaration.declaration_time = read_timestamp(field_value, &field_pointer, errors);
            }
            "reason" => {
                declaration.reason = read_vocabulary(VocabularyKind::ErrorReason, field_value, &field_pointer, errors);
            }
            "correctiveEventIDs" => match field_value.as_array() {
                Some(items) => {
                    for (index, item) in items.iter().enumerate() {
                        match item.as_str() {
                            Some(text) if is_absolute_uri(text.trim()) => {
                                declaration.corrective_event_ids.push(text.trim().to_owned());
                            }
                            _ => errors.push(&index_pointer(&field_pointer, index), "a corrective event ID is a URI"),
                        }
                    }
                }
                None => errors.push(&field_pointer, "correctiveEventIDs is an array of URIs"),
            },
            other => {
                read_extension_field(other, field_value, &field_pointer, scope, &mut declaration.extensions, errors)
            }
        }
    }
    if !map.contains_key("declarationTime") {
        errors.push(&child_pointer(pointer, "declarationTime"), "declarationTime is required");
    }
    Some(declaration)
}

fn read_ilmd(value: &Value, pointer: &str, scope: &Scope, errors: &mut Errors) -> Option<Vec<ExtensionField>> {
    let Some(map) = value.as_object() else {
        errors.push(pointer, "ilmd is an object of namespaced fields");
        return None;
    };
    let mut fields = Vec::new();
    for (key, field_value) in map {
        let field_pointer = child_pointer(pointer, key);
        read_extension_field(key, field_value, &field_pointer, scope, &mut fields, errors);
    }
    Some(fields)
}

fn read_sensor_elements(value: &Value, pointer: &str, scope: &Scope, errors: &mut Errors) -> Vec<SensorElement> {
    let Some(items) = value.as_array() else {
        errors.push(pointer, "sensorElementList is an array");
        return Vec::new();
    };
    let mut result = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_pointer = index_pointer(pointer, index);
        let Some(map) = item.as_object() else {
            errors.push(&item_pointer, "a sensor element is an object");
            continue;
        };
        let mut element = SensorElement::default();
        for (key, field_value) in map {
            let field_pointer = child_pointer(&item_pointer, key);
            match key.as_str() {
                "sensorMetadata" => {
                    element.metadata = read_sensor_metadata(field_value, &field_pointer, scope, errors);
                }
                "sensorReport" => match field_value.as_array() {
                    Some(reports) => {
                        for (report_index, report) in reports.iter().enumerate() {
                            if let Some(report) =
                                read_sensor_report(report, &index_pointer(&field_pointer, report_index), scope, errors)
                            {
                                element.reports.push(report);
                            }
                        }
                    }
                    None => errors.push(&field_pointer, "sensorReport is an array"),
                },
                other => {
                    read_extension_field(other, field_value, &field_pointer, scope, &mut element.extensions, errors)
                }
            }
        }
        if element.reports.is_empty() && !map.contains_key("sensorReport") {
            errors.push(&child_pointer(&item_pointer, "sensorReport"), "sensorReport is required in a sensor element");
        }
        result.push(element);
    }
    result
}

fn read_sensor_metadata(value: &Value, pointer: &str, scope: &Scope, errors: &mut Errors) -> Option<SensorMetadata> {
    let Some(map) = value.as_object() else {
        errors.push(pointer, "sensorMetadata is an object");
        return None;
    };
    let mut metadata = SensorMetadata::default();
    for (key, field_value) in map {
        let field_pointer = child_pointer(pointer, key);
        match key.as_str() {
            "time" => metadata.time = read_timestamp(field_value, &field_pointer, errors),
            "startTime" => metadata.start_time = read_timestamp(field_value, &field_pointer, errors),
            "endTime" => metadata.end_time = read_timestamp(field_value, &field_pointer, errors),
            "deviceID" => metadata.device_id = read_identifier(field_value, &field_pointer, errors),
            "deviceMetadata" => {
                metadata.device_metadata = read_identifier(field_value, &field_pointer, errors);
            }
            "rawData" => metadata.raw_data = read_identifier(field_value, &field_pointer, errors),
            "dataProcessingMethod" => {
                metadata.data_processing_method = read_identifier(field_value, &field_pointer, errors);
            }
            "bizRules" => metadata.business_rules = read_identifier(field_value, &field_pointer, errors),
            other => read_extension_field(other, field_value, &field_pointer, scope, &mut metadata.extensions, errors),
        }
    }
    if let (Some(start), Some(end)) = (metadata.start_time, metadata.end_time)
        && start > end
    {
        errors.push(&child_pointer(pointer, "endTime"), "endTime is before startTime");
    }
    Some(metadata)
}

fn read_text(value: &Value, pointer: &str, field: &str, errors: &mut Errors) -> Option<String> {
    match value.as_str() {
        Some(text) => Some(text.trim().to_owned()),
        None => {
            errors.push(pointer, format!("{field} is a string"));
            None
        }
    }
}

fn read_uri(value: &Value, pointer: &str, field: &str, errors: &mut Errors) -> Option<String> {
    let text = read_text(value, pointer, field, errors)?;
    match is_absolute_uri(&text) {
        true => Some(text),
        false => {
            errors.push(pointer, format!("{field} must be an absolute URI, found {text:?}"));
            None
        }
    }
}

fn read_sensor_report(value: &Value, pointer: &str, scope: &Scope, errors: &mut Errors) -> Option<SensorReport> {
    let Some(map) = value.as_object() else {
        errors.push(pointer, "a sensor report is an object");
        return None;
    };
    let mut report = SensorReport::default();
    for (key, field_value) in map {
        let field_pointer = child_pointer(pointer, key);
        let number = |errors: &mut Errors| read_number(field_value, &field_pointer, key, errors);
        match key.as_str() {
            "type" => {
                report.measurement_type =
                    read_text(field_value, &field_pointer, key, errors).map(|text| vocabulary::expand_gs1_term(&text));
            }
            "exception" => {
                report.exception = read_text(field_value, &field_pointer, key, errors).and_then(|text| {
                    let expanded = vocabulary::expand_gs1_term(&text);
                    let term = vocabulary::compact_gs1_term(&expanded);
                    match vocabulary::SENSOR_ALERT_TYPES.contains(&term) || is_absolute_uri(&text) {
                        true => Some(expanded),
                        false => {
                            errors.push(
                                &field_pointer,
                                format!("{text:?} is not a sensor alert type (ALARM_CONDITION, ERROR_CONDITION)"),
                            );
                            None
                        }
                    }
                });
            }
            "deviceID" => report.device_id = read_identifier(field_value, &field_pointer, errors),
            "deviceMetadata" => report.device_metadata = read_identifier(field_value, &field_pointer, errors),
            "rawData" => report.raw_data = read_identifier(field_value, &field_pointer, errors),
            "dataProcessingMethod" => {
                report.data_processing_method = read_identifier(field_value, &field_pointer, errors);
            }
            "time" => report.time = read_timestamp(field_value, &field_pointer, errors),
            "microorganism" => report.microorganism = read_uri(field_value, &field_pointer, key, errors),
            "chemicalSubstance" => {
                report.chemical_substance = read_uri(field_value, &field_pointer, key, errors);
            }
            "value" => report.value = number(errors),
            "component" => {
                report.component = read_text(field_value, &field_pointer, key, errors).and_then(|text| {
                    match vocabulary::normalise(VocabularyKind::Component, &text) {
                        Ok(value) => Some(value.as_str().to_owned()),
                        // A CURIE of a user namespace (e.g. example:x) is kept as written.
                        Err(_) if text.contains(':') => Some(text),
                        Err(error) => {
                            errors.push(&field_pointer, error.to_string());
                            None
                        }
                    }
                });
            }
            "stringValue" => report.string_value = read_text(field_value, &field_pointer, key, errors),
            "booleanValue" => match field_value {
                Value::Bool(flag) => report.boolean_value = Some(*flag),
                _ => errors.push(&field_pointer, "booleanValue must be true or false"),
            },
            "hexBinaryValue" => {
                report.hex_binary_value = read_text(field_value, &field_pointer, key, errors).and_then(|text| {
                    let is_hex = text.len() % 2 == 0 && text.bytes().all(|byte| byte.is_ascii_hexdigit());
                    match is_hex {
                        true => Some(text),
                        false => {
                            errors.push(&field_pointer, "hexBinaryValue must be pairs of hexadecimal digits");
                            None
                        }
                    }
                });
            }
            "uriValue" => report.uri_value = read_uri(field_value, &field_pointer, key, errors),
            "minValue" => report.minimum_value = number(errors),
            "maxValue" => report.maximum_value = number(errors),
            "meanValue" => report.mean_value = number(errors),
            "sDev" => report.standard_deviation = number(errors),
            "percRank" => report.percentile_rank = number(errors),
            "percValue" => report.percentile_value = number(errors),
            "uom" => match field_value.as_str() {
                Some(code) if is_unit_code(code) => report.unit_of_measure = Some(code.to_owned()),
                _ => errors.push(
                    &field_pointer,
                    "uom is a UN/CEFACT Recommendation 20 code (2 or 3 upper-case letters or digits)",
                ),
            },
            "coordinateReferenceSystem" => {
                report.coordinate_reference_system = read_uri(field_value, &field_pointer, key, errors);
            }
            // Not a sensorReport field of EPCIS 2.0 but written by GS1's own sensor examples;
            // kept as a field without namespace.
            "bizRules" => report
                .extensions
                .push(ExtensionField { name: ExpandedName::new("", key), value: extension_value(field_value, scope) }),
            other => read_extension_field(other, field_value, &field_pointer, scope, &mut report.extensions, errors),
        }
    }
    if let Some(rank) = report.percentile_rank
        && !(0.0..=100.0).contains(&rank)
    {
        errors.push(&child_pointer(pointer, "percRank"), "percRank is between 0 and 100");
    }
    Some(report)
}

/// Converts a JSON value of a user field; nested keys are expanded where possible.
pub(crate) fn extension_value(value: &Value, scope: &Scope) -> ExtensionValue {
    match value {
        Value::Null => ExtensionValue::Null,
        Value::Bool(flag) => ExtensionValue::Boolean(*flag),
        Value::Number(number) => ExtensionValue::Number(number.to_string()),
        Value::String(text) => ExtensionValue::Text(text.clone()),
        Value::Array(items) => ExtensionValue::Array(items.iter().map(|item| extension_value(item, scope)).collect()),
        Value::Object(map) => ExtensionValue::Object(
            map.iter()
                .map(|(key, item)| ExtensionField {
                    name: scope.expand(key).unwrap_or_else(|_| ExpandedName::new("", key)),
                    value: extension_value(item, scope),
                })
                .collect(),
        ),
    }
}

/// Reads a single event (the body of `POST /events`), with its own `@context`.
pub(crate) fn read_single_event(value: &Value, errors: &mut Errors) -> Event {
    let mut scope = Scope::default();
    if let Some(context) = value.get("@context") {
        scope.add_context(context, "/@context", errors);
    }
    read_event(value, "", &scope, errors)
}

/// The names listed by a document-level `ignoreFields` field (JSON: an array of `prefix:name`
/// strings; XML: empty elements named like the fields).
fn ignored_fields(fields: &[ExtensionField], scope: &Scope) -> Vec<ExpandedName> {
    let mut names = Vec::new();
    for field in fields.iter().filter(|field| field.name.local_name == "ignoreFields") {
        collect_ignored(&field.value, scope, &mut names);
    }
    names
}

fn collect_ignored(value: &ExtensionValue, scope: &Scope, names: &mut Vec<ExpandedName>) {
    match value {
        ExtensionValue::Text(text) => {
            if let Ok(name) = scope.expand(text.trim()) {
                names.push(name);
            }
        }
        ExtensionValue::Array(items) => {
            for item in items {
                collect_ignored(item, scope, names);
            }
        }
        ExtensionValue::Object(fields) => {
            names.extend(fields.iter().map(|field| field.name.clone()));
        }
        _ => {}
    }
}
