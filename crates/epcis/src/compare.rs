//! Semantic comparison: two events are equal when they say the same thing, whatever their
//! wire format, field order, list order, identifier form (EPC URN or Digital Link),
//! vocabulary form (bare, URN or Web URI), time-zone of the times or number formatting.

use crate::hash::{canonical_value, pre_hash_string};
use crate::model::{Document, Event, ExtensionField, ExtensionValue, MasterDataVocabulary};

/// The canonical text of an event: its pre-hash string plus the fields the hash leaves out
/// (eventID, recordTime, errorDeclaration).
pub fn canonical_form(event: &Event) -> String {
    let mut text = pre_hash_string(event);
    if let Some(event_id) = &event.event_id {
        text.push_str(&format!("|eventID={event_id}"));
    }
    if let Some(record_time) = event.record_time {
        text.push_str(&format!("|recordTime={}", record_time.hash_form()));
    }
    if let Some(declaration) = &event.error_declaration {
        text.push_str("|errorDeclaration");
        if let Some(time) = declaration.declaration_time {
            text.push_str(&format!("declarationTime={}", time.hash_form()));
        }
        if let Some(reason) = &declaration.reason {
            text.push_str(&format!("reason={reason}"));
        }
        let mut identifiers = declaration.corrective_event_ids.clone();
        identifiers.sort();
        for identifier in identifiers {
            text.push_str(&format!("correctiveEventID={identifier}"));
        }
        text.push_str(&fields_form(&declaration.extensions));
    }
    text
}

fn fields_form(fields: &[ExtensionField]) -> String {
    let mut strings = Vec::new();
    for field in fields {
        value_form(&field.name.clark_notation(), &field.value, &mut strings);
    }
    strings.sort();
    strings.concat()
}

fn value_form(name: &str, value: &ExtensionValue, output: &mut Vec<String>) {
    match value {
        ExtensionValue::Array(items) => {
            for item in items {
                value_form(name, item, output);
            }
        }
        ExtensionValue::Object(fields) => output.push(format!("{name}{{{}}}", fields_form(fields))),
        leaf => output.push(format!("{name}={}", canonical_value(&leaf.leaf_text().unwrap_or_default()))),
    }
}

/// Whether two events have the same content.
pub fn events_equal(left: &Event, right: &Event) -> bool {
    canonical_form(left) == canonical_form(right)
}

fn master_data_form(vocabularies: &[MasterDataVocabulary]) -> Vec<String> {
    let mut forms: Vec<String> = vocabularies
        .iter()
        .flat_map(|vocabulary| {
            vocabulary.elements.iter().map(move |element| {
                let mut attributes: Vec<String> = element
                    .attributes
                    .iter()
                    .map(|(id, value)| {
                        let mut strings = Vec::new();
                        value_form(id, value, &mut strings);
                        strings.sort();
                        strings.concat()
                    })
                    .collect();
                attributes.sort();
                let mut children = element.children.clone();
                children.sort();
                format!("{}|{}|{}|{}", vocabulary.vocabulary_type, element.id, attributes.concat(), children.join(","))
            })
        })
        .collect();
    forms.sort();
    forms
}

/// Whether two documents have the same kind, creation date, master data and events (events
/// compared as a multiset).
pub fn documents_equal(left: &Document, right: &Document) -> bool {
    let mut left_events: Vec<String> = left.events.iter().map(canonical_form).collect();
    let mut right_events: Vec<String> = right.events.iter().map(canonical_form).collect();
    left_events.sort();
    right_events.sort();
    left.kind == right.kind
        && left.creation_date == right.creation_date
        && left.query_results == right.query_results
        && master_data_form(&left.master_data) == master_data_form(&right.master_data)
        && left_events == right_events
}

/// A readable list of the differences of two documents' events, for test messages.
pub fn document_differences(left: &Document, right: &Document) -> Vec<String> {
    let mut differences = Vec::new();
    if left.kind != right.kind {
        differences.push(format!("kind {:?} != {:?}", left.kind, right.kind));
    }
    if left.creation_date != right.creation_date {
        differences.push("creationDate differs".to_owned());
    }
    if master_data_form(&left.master_data) != master_data_form(&right.master_data) {
        differences.push("master data differs".to_owned());
    }
    if left.events.len() != right.events.len() {
        differences.push(format!("{} events != {} events", left.events.len(), right.events.len()));
    }
    for (index, (left_event, right_event)) in left.events.iter().zip(&right.events).enumerate() {
        let left_form = canonical_form(left_event);
        let right_form = canonical_form(right_event);
        if left_form != right_form {
            differences.push(format!("event {index}:\n  {left_form}\n  {right_form}"));
        }
    }
    differences
}
