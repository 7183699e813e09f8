//! Reading EPCIS 2.0 XML (and 1.2-style XML with `<extension>` wrappers).
//!
//! The XML is first read into a small tree with resolved namespaces, then converted into the
//! JSON shape of the same document (the EPCIS 2.0 XML/JSON mapping), which [`crate::json`]
//! reads into the model. User extension names become `{namespace}local`. Errors found here
//! (unknown elements, element order) carry the JSON pointer of the equivalent JSON field.

use quick_xml::NsReader;
use quick_xml::events::Event as XmlEvent;
use quick_xml::name::ResolveResult;
use serde_json::{Map, Number, Value};

use crate::error::{Errors, child_pointer, index_pointer};
use crate::model::{EventType, Namespace};

/// The deepest element nesting accepted.
pub const DEPTH_MAXIMUM: usize = 64;
/// The most elements one XML document may hold.
pub const ELEMENT_COUNT_MAXIMUM: usize = 10_000_000;

/// Namespaces of the standard, never user namespaces.
const STANDARD_NAMESPACES: &[&str] = &[
    "urn:epcglobal:epcis:xsd:2",
    "urn:epcglobal:epcis:xsd:1",
    "urn:epcglobal:epcis-query:xsd:2",
    "urn:epcglobal:epcis-query:xsd:1",
    "urn:epcglobal:epcis-masterdata:xsd:2",
    "urn:epcglobal:epcis-masterdata:xsd:1",
    "http://www.w3.org/2001/XMLSchema-instance",
    "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader",
];

#[derive(Debug, Default)]
struct Node {
    namespace: String,
    local_name: String,
    /// (namespace, local name, value); `xmlns` declarations are not attributes.
    attributes: Vec<(String, String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn is_standard(&self) -> bool {
        self.namespace.is_empty() || STANDARD_NAMESPACES.contains(&self.namespace.as_str())
    }

    fn key(&self) -> String {
        match self.is_standard() {
            true => self.local_name.clone(),
            false => format!("{{{}}}{}", self.namespace, self.local_name),
        }
    }

    fn attribute(&self, local_name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(namespace, local, _)| namespace.is_empty() && local == local_name)
            .map(|(_, _, value)| value.as_str())
    }

    fn child(&self, local_name: &str) -> Option<&Node> {
        self.children.iter().find(|child| child.local_name == local_name)
    }

    /// Children with `<extension>` and `<baseExtension>` wrappers (EPCIS 1.x) unwrapped.
    fn flattened_children(&self) -> Vec<&Node> {
        let mut result = Vec::new();
        for child in &self.children {
            let is_wrapper =
                child.is_standard() && (child.local_name == "extension" || child.local_name == "baseExtension");
            match is_wrapper {
                true => result.extend(child.flattened_children()),
                false => result.push(child),
            }
        }
        result
    }
}

fn resolved_namespace(result: &ResolveResult) -> String {
    match result {
        ResolveResult::Bound(namespace) => String::from_utf8_lossy(namespace.as_ref()).into_owned(),
        _ => String::new(),
    }
}

/// Reads the XML into a tree; the user namespace declarations of the root are returned too.
fn read_tree(text: &str, errors: &mut Errors) -> Option<(Node, Vec<Namespace>)> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut namespaces = Vec::new();
    let mut element_count = 0_usize;
    loop {
        let event = match reader.read_resolved_event() {
            Ok(event) => event,
            Err(error) => {
                errors.push("", format!("malformed XML at byte {}: {error}", reader.buffer_position()));
                return None;
            }
        };
        let is_empty = matches!(event.1, XmlEvent::Empty(_));
        match event {
            (result, XmlEvent::Start(start)) | (result, XmlEvent::Empty(start)) => {
                element_count += 1;
                if stack.len() >= DEPTH_MAXIMUM || element_count > ELEMENT_COUNT_MAXIMUM {
                    errors.push(
                        "",
                        format!(
                            "XML deeper than {DEPTH_MAXIMUM} levels or with more than {ELEMENT_COUNT_MAXIMUM} elements"
                        ),
                    );
                    return None;
                }
                let mut node = Node {
                    namespace: resolved_namespace(&result),
                    local_name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                    ..Node::default()
                };
                for attribute in start.attributes() {
                    let attribute = match attribute {
                        Ok(attribute) => attribute,
                        Err(error) => {
                            errors.push("", format!("malformed XML attribute: {error}"));
                            return None;
                        }
                    };
                    let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                    let value = match attribute.unescape_value() {
                        Ok(value) => value.into_owned(),
                        Err(error) => {
                            errors.push("", format!("malformed XML attribute value: {error}"));
                            return None;
                        }
                    };
                    if let Some(prefix) = key.strip_prefix("xmlns:") {
                        if stack.is_empty() && !STANDARD_NAMESPACES.contains(&value.as_str()) {
                            namespaces.push(Namespace { prefix: prefix.to_owned(), iri: value });
                        }
                        continue;
                    }
                    if key == "xmlns" {
                        continue;
                    }
                    let (namespace_result, local) = reader.resolve_attribute(attribute.key);
                    node.attributes.push((
                        resolved_namespace(&namespace_result),
                        String::from_utf8_lossy(local.as_ref()).into_owned(),
                        value,
                    ));
                }
                if is_empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => root = Some(node),
                    }
                } else {
                    stack.push(node);
                }
            }
            (_, XmlEvent::End(_)) => {
                let Some(node) = stack.pop() else {
                    errors.push("", "malformed XML: unbalanced end tag");
                    return None;
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            (_, XmlEvent::Text(text)) => {
                if let Some(node) = stack.last_mut() {
                    match text.unescape() {
                        Ok(text) => node.text.push_str(&text),
                        Err(error) => {
                            errors.push("", format!("malformed XML text: {error}"));
                            return None;
                        }
                    }
                }
            }
            (_, XmlEvent::CData(data)) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&String::from_utf8_lossy(data.into_inner().as_ref()));
                }
            }
            (_, XmlEvent::Eof) => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        errors.push("", "malformed XML: unclosed elements at end of input");
        return None;
    }
    match root {
        Some(root) => Some((root, namespaces)),
        None => {
            errors.push("", "no XML root element");
            None
        }
    }
}

/// Converts an EPCIS XML document into its JSON shape.
pub(crate) fn document_to_json(text: &str, errors: &mut Errors) -> Option<Value> {
    let (root, namespaces) = read_tree(text, errors)?;
    let type_name = match root.local_name.as_str() {
        "EPCISDocument" => "EPCISDocument",
        "EPCISQueryDocument" => "EPCISQueryDocument",
        other => {
            errors.push("/type", format!("root element must be EPCISDocument or EPCISQueryDocument, found {other:?}"));
            return None;
        }
    };
    let mut document = Map::new();
    document.insert("@context".to_owned(), context_of(&namespaces));
    document.insert("type".to_owned(), Value::String(type_name.to_owned()));
    for (namespace, local, value) in &root.attributes {
        if namespace.is_empty() {
            document.insert(local.clone(), Value::String(value.clone()));
        }
    }
    if let Some(header) = root.child("EPCISHeader")
        && let Some(master_data) = find_descendant(header, "EPCISMasterData")
    {
        let mut header_json = Map::new();
        header_json.insert("epcisMasterData".to_owned(), master_data_to_json(master_data));
        document.insert("epcisHeader".to_owned(), Value::Object(header_json));
    }
    for child in &root.children {
        if !child.is_standard() {
            insert_repeated(&mut document, child.key(), extension_to_json(child, false));
        }
    }
    // Some query documents put QueryResults' content directly under the root.
    let body = match root.child("EPCISBody") {
        Some(body) => body,
        None if root.child("resultsBody").is_some() => &root,
        None => {
            errors.push("/epcisBody", "EPCISBody is required");
            return Some(Value::Object(document));
        }
    };
    let mut body_json = Map::new();
    if type_name == "EPCISQueryDocument" {
        let pointer = "/epcisBody/queryResults";
        let results = body.child("QueryResults").or_else(|| body.child("resultsBody").map(|_| body));
        match results {
            Some(results) => {
                let mut results_json = Map::new();
                for child in &results.children {
                    match child.local_name.as_str() {
                        "queryName" | "subscriptionID" => {
                            results_json.insert(child.local_name.clone(), Value::String(child.text.trim().to_owned()));
                        }
                        "resultsBody" => {
                            let mut results_body = Map::new();
                            if let Some(list) = child.child("EventList") {
                                results_body.insert(
                                    "eventList".to_owned(),
                                    event_list_to_json(
                                        list,
                                        &child_pointer(&child_pointer(pointer, "resultsBody"), "eventList"),
                                        errors,
                                    ),
                                );
                            }
                            results_json.insert("resultsBody".to_owned(), Value::Object(results_body));
                        }
                        _ => {}
                    }
                }
                body_json.insert("queryResults".to_owned(), Value::Object(results_json));
            }
            None => errors.push(pointer, "QueryResults is required in an EPCISQueryDocument"),
        }
    } else {
        match body.child("EventList") {
            Some(list) => {
                body_json.insert("eventList".to_owned(), event_list_to_json(list, "/epcisBody/eventList", errors));
            }
            None => {
                body_json.insert("eventList".to_owned(), Value::Array(Vec::new()));
            }
        }
    }
    document.insert("epcisBody".to_owned(), Value::Object(body_json));
    Some(Value::Object(document))
}

/// Converts a single XML event (an `<ObjectEvent>` … root) into its JSON shape.
pub(crate) fn event_to_json_value(text: &str, errors: &mut Errors) -> Option<Value> {
    let (root, namespaces) = read_tree(text, errors)?;
    let mut event = event_to_json(&root, "", errors);
    if let Value::Object(map) = &mut event {
        map.insert("@context".to_owned(), context_of(&namespaces));
    }
    Some(event)
}

fn context_of(namespaces: &[Namespace]) -> Value {
    let mut items = vec![Value::String(crate::json::STANDARD_CONTEXT.to_owned())];
    for namespace in namespaces {
        let mut entry = Map::new();
        entry.insert(namespace.prefix.clone(), Value::String(namespace.iri.clone()));
        items.push(Value::Object(entry));
    }
    Value::Array(items)
}

fn find_descendant<'a>(node: &'a Node, local_name: &str) -> Option<&'a Node> {
    for child in &node.children {
        if child.local_name == local_name {
            return Some(child);
        }
        if let Some(found) = find_descendant(child, local_name) {
            return Some(found);
        }
    }
    None
}

fn master_data_to_json(master_data: &Node) -> Value {
    let mut vocabularies = Vec::new();
    let list = master_data.child("VocabularyList");
    for vocabulary in list.iter().flat_map(|list| list.children.iter()) {
        let mut vocabulary_json = Map::new();
        vocabulary_json.insert("type".to_owned(), Value::String(vocabulary.attribute("type").unwrap_or("").to_owned()));
        let mut elements = Vec::new();
        let element_list = vocabulary.child("VocabularyElementList");
        for element in element_list.iter().flat_map(|list| list.children.iter()) {
            let mut element_json = Map::new();
            element_json.insert("id".to_owned(), Value::String(element.attribute("id").unwrap_or("").to_owned()));
            let mut attributes = Vec::new();
            let mut children = Vec::new();
            for child in &element.children {
                match child.local_name.as_str() {
                    "attribute" => {
                        let mut attribute = Map::new();
                        attribute
                            .insert("id".to_owned(), Value::String(child.attribute("id").unwrap_or("").to_owned()));
                        attribute.insert("attribute".to_owned(), extension_to_json(child, true));
                        attributes.push(Value::Object(attribute));
                    }
                    "children" => {
                        for id in &child.children {
                            children.push(Value::String(id.text.trim().to_owned()));
                        }
                    }
                    _ => {}
                }
            }
            if !attributes.is_empty() {
                element_json.insert("attributes".to_owned(), Value::Array(attributes));
            }
            if !children.is_empty() {
                element_json.insert("children".to_owned(), Value::Array(children));
            }
            elements.push(Value::Object(element_json));
        }
        vocabulary_json.insert("vocabularyElementList".to_owned(), Value::Array(elements));
        vocabularies.push(Value::Object(vocabulary_json));
    }
    let mut master_data_json = Map::new();
    master_data_json.insert("vocabularyList".to_owned(), Value::Array(vocabularies));
    Value::Object(master_data_json)
}

fn event_list_to_json(list: &Node, pointer: &str, errors: &mut Errors) -> Value {
    let events = list
        .flattened_children()
        .into_iter()
        .enumerate()
        .map(|(index, event)| event_to_json(event, &index_pointer(pointer, index), errors))
        .collect();
    Value::Array(events)
}

/// The position of a standard element in the XML schema sequence of its event type; elements
/// of equal rank may come in any order.
fn rank_of(event_type: EventType, local_name: &str) -> Option<u8> {
    let common = match local_name {
        "eventTime" => Some(0),
        "recordTime" => Some(1),
        "eventTimeZoneOffset" => Some(2),
        "eventID" | "errorDeclaration" | "certificationInfo" => Some(3),
        _ => None,
    };
    if common.is_some() {
        return common;
    }
    let sequence: &[&str] = match event_type {
        EventType::Object => &[
            "epcList",
            "action",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "quantityList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
            "ilmd",
        ],
        EventType::Association => &[
            "parentID",
            "childEPCs",
            "childQuantityList",
            "action",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
        ],
        EventType::Aggregation => &[
            "parentID",
            "childEPCs",
            "action",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "childQuantityList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
        ],
        EventType::Transaction => &[
            "bizTransactionList",
            "parentID",
            "epcList",
            "action",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "quantityList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
        ],
        EventType::Transformation => &[
            "inputEPCList",
            "inputQuantityList",
            "outputEPCList",
            "outputQuantityList",
            "transformationID",
            "bizStep",
            "disposition",
            "readPoint",
            "bizLocation",
            "bizTransactionList",
            "sourceList",
            "destinationList",
            "sensorElementList",
            "persistentDisposition",
            "ilmd",
        ],
    };
    sequence.iter().position(|name| *name == local_name).and_then(|position| u8::try_from(position + 10).ok())
}

/// Inserts `value` under `key`; a repeated key becomes an array (a repeated XML element).
fn insert_repeated(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.get_mut(&key) {
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

fn text_value(node: &Node) -> Value {
    Value::String(node.text.trim().to_owned())
}

fn number_value(text: &str) -> Value {
    let trimmed = text.trim();
    match trimmed.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(number)
            if !trimmed.is_empty() && trimmed.bytes().all(|byte| byte.is_ascii_digit() || b"+-.eE".contains(&byte)) =>
        {
            Value::Number(number)
        }
        _ => Value::String(trimmed.to_owned()),
    }
}

fn event_to_json(node: &Node, pointer: &str, errors: &mut Errors) -> Value {
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::String(node.local_name.clone()));
    let event_type = EventType::from_type_name(&node.local_name);
    if event_type.is_none() {
        // The JSON reader reports the unknown type.
        return Value::Object(map);
    }
    let mut highest_rank = 0_u8;
    for child in node.flattened_children() {
        let key = child.key();
        let at = child_pointer(pointer, &key);
        if !child.is_standard() {
            insert_repeated(&mut map, key, extension_to_json(child, false));
            continue;
        }
        if let Some(event_type) = event_type
            && let Some(rank) = rank_of(event_type, &child.local_name)
        {
            if rank < highest_rank {
                errors.push(
                    &at,
                    format!(
                        "{} is out of order (rule: the EPCIS 2.0 XML schema sequence of {event_type})",
                        child.local_name
                    ),
                );
            }
            highest_rank = highest_rank.max(rank);
        }
        let value = match child.local_name.as_str() {
            "epcList" | "childEPCs" | "inputEPCList" | "outputEPCList" => {
                let mut items = Vec::new();
                for (index, epc) in child.children.iter().enumerate() {
                    if epc.local_name != "epc" {
                        errors.push(
                            &index_pointer(&at, index),
                            format!("{} holds only <epc> elements", child.local_name),
                        );
                    }
                    items.push(text_value(epc));
                }
                Value::Array(items)
            }
            "quantityList" | "childQuantityList" | "inputQuantityList" | "outputQuantityList" => {
                let items = child
                    .children
                    .iter()
                    .map(|element| {
                        let mut element_json = Map::new();
                        for field in &element.children {
                            let is_nil = field.attributes.iter().any(|(namespace, local, value)| {
                                namespace == "http://www.w3.org/2001/XMLSchema-instance"
                                    && local == "nil"
                                    && value.trim() == "true"
                            });
                            if is_nil {
                                continue;
                            }
                            let value = match field.local_name.as_str() {
                                "quantity" => number_value(&field.text),
                                _ => text_value(field),
                            };
                            element_json.insert(field.key(), value);
                        }
                        Value::Object(element_json)
                    })
                    .collect();
                Value::Array(items)
            }
            "readPoint" | "bizLocation" => object_of_children(child),
            "bizTransactionList" | "sourceList" | "destinationList" => {
                let items = child
                    .children
                    .iter()
                    .map(|item| {
                        let mut item_json = Map::new();
                        if let Some(kind) = item.attribute("type") {
                            item_json.insert("type".to_owned(), Value::String(kind.trim().to_owned()));
                        }
                        item_json.insert(item.local_name.clone(), text_value(item));
                        Value::Object(item_json)
                    })
                    .collect();
                Value::Array(items)
            }
            "persistentDisposition" => {
                let mut disposition = Map::new();
                for item in &child.children {
                    let list = disposition.entry(item.local_name.clone()).or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(items) = list {
                        items.push(text_value(item));
                    }
                }
                Value::Object(disposition)
            }
            "errorDeclaration" => {
                let mut declaration = Map::new();
                for item in child.flattened_children() {
                    match item.local_name.as_str() {
                        "correctiveEventIDs" if item.is_standard() => {
                            let ids = item.children.iter().map(text_value).collect();
                            declaration.insert("correctiveEventIDs".to_owned(), Value::Array(ids));
                        }
                        _ if !item.is_standard() => {
                            insert_repeated(&mut declaration, item.key(), extension_to_json(item, false));
                        }
                        _ => {
                            declaration.insert(item.key(), text_value(item));
                        }
                    }
                }
                Value::Object(declaration)
            }
            "sensorElementList" => {
                let items = child.children.iter().map(sensor_element_to_json).collect();
                Value::Array(items)
            }
            "ilmd" => {
                let mut ilmd = Map::new();
                for item in child.flattened_children() {
                    let value = extension_to_json(item, false);
                    insert_repeated(&mut ilmd, item.key(), value);
                }
                Value::Object(ilmd)
            }
            _ => text_value(child),
        };
        match child.local_name.as_str() {
            "certificationInfo" => insert_repeated(&mut map, key, value),
            _ if map.contains_key(&key) => {
                errors.push(&at, format!("{} appears more than once", child.local_name));
            }
            _ => {
                map.insert(key, value);
            }
        }
    }
    Value::Object(map)
}

/// A standard element with an `id` child and user extensions (readPoint, bizLocation).
fn object_of_children(node: &Node) -> Value {
    let mut map = Map::new();
    for child in node.flattened_children() {
        let value = match child.is_standard() {
            true => text_value(child),
            false => extension_to_json(child, false),
        };
        insert_repeated(&mut map, child.key(), value);
    }
    Value::Object(map)
}

const SENSOR_NUMBERS: &[&str] = &["value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"];

fn attributes_to_json(node: &Node) -> Map<String, Value> {
    let mut map = Map::new();
    for (namespace, local, value) in &node.attributes {
        let is_standard = namespace.is_empty() || STANDARD_NAMESPACES.contains(&namespace.as_str());
        let json_value = match local.as_str() {
            _ if !is_standard => Value::String(value.clone()),
            name if SENSOR_NUMBERS.contains(&name) => number_value(value),
            "booleanValue" => match value.trim() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                other => Value::String(other.to_owned()),
            },
            _ => Value::String(value.trim().to_owned()),
        };
        let key = match is_standard {
            true => local.clone(),
            false => format!("{{{namespace}}}{local}"),
        };
        map.insert(key, json_value);
    }
    map
}

fn sensor_element_to_json(element: &Node) -> Value {
    let mut map = Map::new();
    for child in element.flattened_children() {
        match (child.is_standard(), child.local_name.as_str()) {
            (true, "sensorMetadata") => {
                let mut metadata = attributes_to_json(child);
                for extension in &child.children {
                    insert_repeated(&mut metadata, extension.key(), extension_to_json(extension, false));
                }
                map.insert("sensorMetadata".to_owned(), Value::Object(metadata));
            }
            (true, "sensorReport") => {
                let mut report = attributes_to_json(child);
                for extension in &child.children {
                    insert_repeated(&mut report, extension.key(), extension_to_json(extension, false));
                }
                let reports = map.entry("sensorReport".to_owned()).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = reports {
                    items.push(Value::Object(report));
                }
            }
            _ => insert_repeated(&mut map, child.key(), extension_to_json(child, false)),
        }
    }
    Value::Object(map)
}

/// A user element: text when it has no children and no attributes, an object otherwise.
fn extension_to_json(node: &Node, skip_id_attribute: bool) -> Value {
    let attributes: Vec<&(String, String, String)> = node
        .attributes
        .iter()
        .filter(|(namespace, local, _)| !(skip_id_attribute && namespace.is_empty() && local == "id"))
        .collect();
    if node.children.is_empty() && attributes.is_empty() {
        return text_value(node);
    }
    let mut map = Map::new();
    for (namespace, local, value) in attributes {
        let key = match namespace.is_empty() {
            true => local.clone(),
            false => format!("{{{namespace}}}{local}"),
        };
        map.insert(key, Value::String(value.clone()));
    }
    for child in &node.children {
        let key = match child.namespace.is_empty() {
            true => child.local_name.clone(),
            false => format!("{{{}}}{}", child.namespace, child.local_name),
        };
        insert_repeated(&mut map, key, extension_to_json(child, false));
    }
    Value::Object(map)
}
