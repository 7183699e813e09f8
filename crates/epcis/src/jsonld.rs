//! Writing the model as EPCIS 2.0 JSON-LD (for query answers): the standard `@context` plus
//! one prefix per user namespace, bare strings for standard vocabulary values, constrained
//! Digital Links for GS1 keys, times in UTC.

use serde_json::{Map, Number, Value};

use crate::json::{PREDEFINED_PREFIXES, STANDARD_CONTEXT};
use crate::model::{
    Document, DocumentKind, ErrorDeclaration, Event, EventType, ExpandedName, ExtensionField, ExtensionValue, Location,
    MasterDataVocabulary, Namespace, QuantityElement, SensorElement, SensorMetadata, SensorReport,
};
use crate::vocabulary::{self, VocabularyKind};

/// Prefixes for the namespaces of a document's user fields.
#[derive(Debug, Clone, Default)]
pub struct Prefixes {
    assigned: Vec<Namespace>,
}

impl Prefixes {
    /// Starts from the namespaces the document declared.
    pub fn from_namespaces(namespaces: &[Namespace]) -> Prefixes {
        let mut prefixes = Prefixes::default();
        for namespace in namespaces {
            let taken =
                prefixes.assigned.iter().any(|known| known.prefix == namespace.prefix || known.iri == namespace.iri);
            if !taken {
                prefixes.assigned.push(namespace.clone());
            }
        }
        prefixes
    }

    fn prefix_of(&mut self, iri: &str) -> String {
        if let Some(known) = self.assigned.iter().find(|known| known.iri == iri) {
            return known.prefix.clone();
        }
        if let Some((prefix, _)) = PREDEFINED_PREFIXES.iter().find(|(_, known)| *known == iri) {
            return (*prefix).to_owned();
        }
        let mut counter = self.assigned.len() + 1;
        let prefix = loop {
            let candidate = format!("ext{counter}");
            let taken = self.assigned.iter().any(|known| known.prefix == candidate)
                || PREDEFINED_PREFIXES.iter().any(|(known, _)| *known == candidate);
            if !taken {
                break candidate;
            }
            counter += 1;
        };
        self.assigned.push(Namespace { prefix: prefix.clone(), iri: iri.to_owned() });
        prefix
    }

    fn key(&mut self, name: &ExpandedName) -> String {
        match name.namespace.is_empty() {
            true => name.local_name.clone(),
            false => format!("{}:{}", self.prefix_of(&name.namespace), name.local_name),
        }
    }

    /// The `@context` value: the standard context and the user prefixes.
    pub fn context(&self) -> Value {
        let mut items = vec![Value::String(STANDARD_CONTEXT.to_owned())];
        if !self.assigned.is_empty() {
            let mut map = Map::new();
            for namespace in &self.assigned {
                map.insert(namespace.prefix.clone(), Value::String(namespace.iri.clone()));
            }
            items.push(Value::Object(map));
        }
        Value::Array(items)
    }
}

/// The JSON-LD form of a document.
pub fn document_to_json(document: &Document) -> Value {
    let mut prefixes = Prefixes::from_namespaces(&document.namespaces);
    let events: Vec<Value> = document.events.iter().map(|event| event_value(event, &mut prefixes)).collect();
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::String(document.kind.type_name().to_owned()));
    map.insert(
        "schemaVersion".to_owned(),
        Value::String(match document.schema_version.is_empty() {
            true => "2.0".to_owned(),
            false => document.schema_version.clone(),
        }),
    );
    if let Some(creation_date) = document.creation_date {
        map.insert("creationDate".to_owned(), Value::String(creation_date.to_string()));
    }
    for field in &document.other_fields {
        let key = prefixes.key(&field.name);
        map.insert(key, extension_value(&field.value, &mut prefixes));
    }
    if !document.master_data.is_empty() {
        let mut header = Map::new();
        header.insert("epcisMasterData".to_owned(), master_data_value(&document.master_data, &mut prefixes));
        map.insert("epcisHeader".to_owned(), Value::Object(header));
    }
    let mut body = Map::new();
    match document.kind {
        DocumentKind::Document => {
            body.insert("eventList".to_owned(), Value::Array(events));
        }
        DocumentKind::QueryDocument => {
            let mut results = Map::new();
            let query = document.query_results.clone().unwrap_or_default();
            if let Some(subscription_id) = query.subscription_id {
                results.insert("subscriptionID".to_owned(), Value::String(subscription_id));
            }
            if let Some(query_name) = query.query_name {
                results.insert("queryName".to_owned(), Value::String(query_name));
            }
            let mut results_body = Map::new();
            results_body.insert("eventList".to_owned(), Value::Array(events));
            results.insert("resultsBody".to_owned(), Value::Object(results_body));
            body.insert("queryResults".to_owned(), Value::Object(results));
        }
    }
    map.insert("epcisBody".to_owned(), Value::Object(body));
    map.insert("@context".to_owned(), prefixes.context());
    Value::Object(map)
}

/// The JSON-LD form of one event with its own `@context` (e.g. for `GET /events/{id}`).
pub fn event_to_json(event: &Event, namespaces: &[Namespace]) -> Value {
    let mut prefixes = Prefixes::from_namespaces(namespaces);
    let mut value = event_value(event, &mut prefixes);
    if let Value::Object(map) = &mut value {
        map.insert("@context".to_owned(), prefixes.context());
    }
    value
}

fn number(value: f64) -> Value {
    let is_integer = value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0;
    match is_integer {
        #[allow(clippy::cast_possible_truncation)]
        true => Value::Number(Number::from(value as i64)),
        false => Number::from_f64(value).map_or(Value::Null, Value::Number),
    }
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

fn identifiers(list: &[crate::Identifier]) -> Value {
    Value::Array(list.iter().map(|id| text(id.as_str())).collect())
}

fn quantities(list: &[QuantityElement]) -> Value {
    Value::Array(
        list.iter()
            .map(|element| {
                let mut map = Map::new();
                map.insert("epcClass".to_owned(), text(element.epc_class.as_str()));
                if let Some(quantity) = element.quantity {
                    map.insert("quantity".to_owned(), number(quantity));
                }
                if let Some(unit) = &element.unit_of_measure {
                    map.insert("uom".to_owned(), text(unit));
                }
                Value::Object(map)
            })
            .collect(),
    )
}

fn insert_extensions(map: &mut Map<String, Value>, fields: &[ExtensionField], prefixes: &mut Prefixes) {
    for field in fields {
        let key = prefixes.key(&field.name);
        let value = extension_value(&field.value, prefixes);
        match map.get_mut(&key) {
            // Two fields of one name (from XML) become one array.
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(key, value);
            }
        }
    }
}

/// The JSON form of a user value.
pub fn extension_value(value: &ExtensionValue, prefixes: &mut Prefixes) -> Value {
    match value {
        ExtensionValue::Text(text) => Value::String(text.clone()),
        ExtensionValue::Number(lexical) => {
            serde_json::from_str::<Number>(lexical).map_or_else(|_| Value::String(lexical.clone()), Value::Number)
        }
        ExtensionValue::Boolean(flag) => Value::Bool(*flag),
        ExtensionValue::Null => Value::Null,
        ExtensionValue::Array(items) => {
            Value::Array(items.iter().map(|item| extension_value(item, prefixes)).collect())
        }
        ExtensionValue::Object(fields) => {
            let mut map = Map::new();
            insert_extensions(&mut map, fields, prefixes);
            Value::Object(map)
        }
    }
}

fn location(location: &Location, prefixes: &mut Prefixes) -> Value {
    let mut map = Map::new();
    map.insert("id".to_owned(), text(location.id.as_str()));
    insert_extensions(&mut map, &location.extensions, prefixes);
    Value::Object(map)
}

fn error_declaration(declaration: &ErrorDeclaration, prefixes: &mut Prefixes) -> Value {
    let mut map = Map::new();
    if let Some(time) = declaration.declaration_time {
        map.insert("declarationTime".to_owned(), text(&time.to_string()));
    }
    if let Some(reason) = &declaration.reason {
        map.insert("reason".to_owned(), text(reason.json_form(VocabularyKind::ErrorReason)));
    }
    if !declaration.corrective_event_ids.is_empty() {
        map.insert(
            "correctiveEventIDs".to_owned(),
            Value::Array(declaration.corrective_event_ids.iter().map(|id| text(id)).collect()),
        );
    }
    insert_extensions(&mut map, &declaration.extensions, prefixes);
    Value::Object(map)
}

fn sensor_metadata(metadata: &SensorMetadata, prefixes: &mut Prefixes) -> Value {
    let mut map = Map::new();
    let times = [("time", metadata.time), ("startTime", metadata.start_time), ("endTime", metadata.end_time)];
    for (key, time) in times {
        if let Some(time) = time {
            map.insert(key.to_owned(), text(&time.to_string()));
        }
    }
    let identifiers = [
        ("deviceID", &metadata.device_id),
        ("deviceMetadata", &metadata.device_metadata),
        ("rawData", &metadata.raw_data),
        ("dataProcessingMethod", &metadata.data_processing_method),
        ("bizRules", &metadata.business_rules),
    ];
    for (key, identifier) in identifiers {
        if let Some(identifier) = identifier {
            map.insert(key.to_owned(), text(identifier.as_str()));
        }
    }
    insert_extensions(&mut map, &metadata.extensions, prefixes);
    Value::Object(map)
}

fn sensor_report(report: &SensorReport, prefixes: &mut Prefixes) -> Value {
    let mut map = Map::new();
    if let Some(measurement_type) = &report.measurement_type {
        map.insert("type".to_owned(), text(vocabulary::compact_gs1_term(measurement_type)));
    }
    if let Some(exception) = &report.exception {
        map.insert("exception".to_owned(), text(vocabulary::compact_gs1_term(exception)));
    }
    let identifiers = [
        ("deviceID", &report.device_id),
        ("deviceMetadata", &report.device_metadata),
        ("rawData", &report.raw_data),
        ("dataProcessingMethod", &report.data_processing_method),
    ];
    for (key, identifier) in identifiers {
        if let Some(identifier) = identifier {
            map.insert(key.to_owned(), text(identifier.as_str()));
        }
    }
    if let Some(time) = report.time {
        map.insert("time".to_owned(), text(&time.to_string()));
    }
    let texts = [
        ("microorganism", &report.microorganism),
        ("chemicalSubstance", &report.chemical_substance),
        ("stringValue", &report.string_value),
        ("hexBinaryValue", &report.hex_binary_value),
        ("uriValue", &report.uri_value),
        ("uom", &report.unit_of_measure),
        ("coordinateReferenceSystem", &report.coordinate_reference_system),
    ];
    for (key, value) in texts {
        if let Some(value) = value {
            map.insert(key.to_owned(), text(value));
        }
    }
    if let Some(component) = &report.component {
        let compact = component
            .strip_prefix(vocabulary::CBV_BASE)
            .and_then(|rest| rest.strip_prefix(VocabularyKind::Component.web_prefix()))
            .unwrap_or(component);
        map.insert("component".to_owned(), text(compact));
    }
    if let Some(flag) = report.boolean_value {
        map.insert("booleanValue".to_owned(), Value::Bool(flag));
    }
    let numbers = [
        ("value", report.value),
        ("minValue", report.minimum_value),
        ("maxValue", report.maximum_value),
        ("meanValue", report.mean_value),
        ("sDev", report.standard_deviation),
        ("percRank", report.percentile_rank),
        ("percValue", report.percentile_value),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            map.insert(key.to_owned(), number(value));
        }
    }
    insert_extensions(&mut map, &report.extensions, prefixes);
    Value::Object(map)
}

fn sensor_element(element: &SensorElement, prefixes: &mut Prefixes) -> Value {
    let mut map = Map::new();
    if let Some(metadata) = &element.metadata {
        map.insert("sensorMetadata".to_owned(), sensor_metadata(metadata, prefixes));
    }
    map.insert(
        "sensorReport".to_owned(),
        Value::Array(element.reports.iter().map(|report| sensor_report(report, prefixes)).collect()),
    );
    insert_extensions(&mut map, &element.extensions, prefixes);
    Value::Object(map)
}

fn master_data_value(vocabularies: &[MasterDataVocabulary], prefixes: &mut Prefixes) -> Value {
    let list = vocabularies
        .iter()
        .map(|vocabulary| {
            let elements = vocabulary
                .elements
                .iter()
                .map(|element| {
                    let mut map = Map::new();
                    map.insert("id".to_owned(), text(&element.id));
                    if !element.attributes.is_empty() {
                        let attributes = element
                            .attributes
                            .iter()
                            .map(|(id, value)| {
                                let mut attribute = Map::new();
                                attribute.insert("id".to_owned(), text(id));
                                attribute.insert("attribute".to_owned(), extension_value(value, prefixes));
                                Value::Object(attribute)
                            })
                            .collect();
                        map.insert("attributes".to_owned(), Value::Array(attributes));
                    }
                    if !element.children.is_empty() {
                        map.insert(
                            "children".to_owned(),
                            Value::Array(element.children.iter().map(|child| text(child)).collect()),
                        );
                    }
                    Value::Object(map)
                })
                .collect();
            let mut map = Map::new();
            map.insert("type".to_owned(), text(&vocabulary.vocabulary_type));
            map.insert("vocabularyElementList".to_owned(), Value::Array(elements));
            Value::Object(map)
        })
        .collect();
    let mut map = Map::new();
    map.insert("vocabularyList".to_owned(), Value::Array(list));
    Value::Object(map)
}

fn event_value(event: &Event, prefixes: &mut Prefixes) -> Value {
    let mut map = Map::new();
    if let Some(event_type) = event.event_type {
        map.insert("type".to_owned(), text(event_type.type_name()));
    }
    if let Some(time) = event.event_time {
        map.insert("eventTime".to_owned(), text(&time.to_string()));
    }
    if let Some(time) = event.record_time {
        map.insert("recordTime".to_owned(), text(&time.to_string()));
    }
    if let Some(offset) = event.event_time_zone_offset {
        map.insert("eventTimeZoneOffset".to_owned(), text(&offset.to_string()));
    }
    if let Some(event_id) = &event.event_id {
        map.insert("eventID".to_owned(), text(event_id));
    }
    match event.certification_info.as_slice() {
        [] => {}
        [single] => {
            map.insert("certificationInfo".to_owned(), text(single));
        }
        many => {
            map.insert("certificationInfo".to_owned(), Value::Array(many.iter().map(|item| text(item)).collect()));
        }
    }
    if let Some(declaration) = &event.error_declaration {
        map.insert("errorDeclaration".to_owned(), error_declaration(declaration, prefixes));
    }
    let names_objects_by_list = matches!(event.event_type, Some(EventType::Object | EventType::Transaction));
    if !event.epc_list.is_empty() || (names_objects_by_list && event.quantity_list.is_empty()) {
        map.insert("epcList".to_owned(), identifiers(&event.epc_list));
    }
    if let Some(parent) = &event.parent_id {
        map.insert("parentID".to_owned(), text(parent.as_str()));
    }
    let identifier_lists = [
        ("childEPCs", &event.child_epcs),
        ("inputEPCList", &event.input_epc_list),
        ("outputEPCList", &event.output_epc_list),
    ];
    for (key, list) in identifier_lists {
        if !list.is_empty() {
            map.insert(key.to_owned(), identifiers(list));
        }
    }
    let quantity_lists = [
        ("quantityList", &event.quantity_list),
        ("childQuantityList", &event.child_quantity_list),
        ("inputQuantityList", &event.input_quantity_list),
        ("outputQuantityList", &event.output_quantity_list),
    ];
    for (key, list) in quantity_lists {
        if !list.is_empty() {
            map.insert(key.to_owned(), quantities(list));
        }
    }
    if let Some(transformation_id) = &event.transformation_id {
        map.insert("transformationID".to_owned(), text(transformation_id.as_str()));
    }
    if let Some(action) = event.action {
        map.insert("action".to_owned(), text(action.as_str()));
    }
    if let Some(step) = &event.business_step {
        map.insert("bizStep".to_owned(), text(step.json_form(VocabularyKind::BusinessStep)));
    }
    if let Some(disposition) = &event.disposition {
        map.insert("disposition".to_owned(), text(disposition.json_form(VocabularyKind::Disposition)));
    }
    if let Some(persistent) = &event.persistent_disposition {
        let mut persistent_map = Map::new();
        let lists = [("set", &persistent.set), ("unset", &persistent.unset)];
        for (key, list) in lists {
            if !list.is_empty() {
                persistent_map.insert(
                    key.to_owned(),
                    Value::Array(list.iter().map(|value| text(value.json_form(VocabularyKind::Disposition))).collect()),
                );
            }
        }
        map.insert("persistentDisposition".to_owned(), Value::Object(persistent_map));
    }
    if let Some(read_point) = &event.read_point {
        map.insert("readPoint".to_owned(), location(read_point, prefixes));
    }
    if let Some(business_location) = &event.business_location {
        map.insert("bizLocation".to_owned(), location(business_location, prefixes));
    }
    if !event.business_transaction_list.is_empty() {
        let list = event
            .business_transaction_list
            .iter()
            .map(|transaction| {
                let mut item = Map::new();
                if let Some(kind) = &transaction.transaction_type {
                    item.insert("type".to_owned(), text(kind.json_form(VocabularyKind::BusinessTransactionType)));
                }
                item.insert("bizTransaction".to_owned(), text(transaction.id.as_str()));
                Value::Object(item)
            })
            .collect();
        map.insert("bizTransactionList".to_owned(), Value::Array(list));
    }
    let party_lists =
        [("sourceList", "source", &event.source_list), ("destinationList", "destination", &event.destination_list)];
    for (key, field, list) in party_lists {
        if list.is_empty() {
            continue;
        }
        let items = list
            .iter()
            .map(|item| {
                let mut item_map = Map::new();
                item_map.insert("type".to_owned(), text(item.kind.json_form(VocabularyKind::SourceDestinationType)));
                item_map.insert(field.to_owned(), text(item.id.as_str()));
                Value::Object(item_map)
            })
            .collect();
        map.insert(key.to_owned(), Value::Array(items));
    }
    if !event.sensor_element_list.is_empty() {
        map.insert(
            "sensorElementList".to_owned(),
            Value::Array(event.sensor_element_list.iter().map(|element| sensor_element(element, prefixes)).collect()),
        );
    }
    if let Some(fields) = &event.instance_lot_master_data {
        let mut ilmd = Map::new();
        insert_extensions(&mut ilmd, fields, prefixes);
        map.insert("ilmd".to_owned(), Value::Object(ilmd));
    }
    insert_extensions(&mut map, &event.extensions, prefixes);
    Value::Object(map)
}
