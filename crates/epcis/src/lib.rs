//! EPCIS 2.0 and CBV 2.0: the event model, reading JSON / JSON-LD and XML, writing JSON-LD,
//! validation, the CBV 2.0 event hash ID and semantic comparison.
//!
//! - [`model`]: [`Document`], [`Event`] and their parts, one model for both wire formats.
//! - [`parse_json_document`], [`parse_xml_document`], [`parse_json_event`],
//!   [`parse_xml_event`]: read and validate; a rejected input yields all its
//!   [`ValidationError`]s, each with a JSON pointer.
//! - [`schema::SchemaValidator`]: the standard's JSON schema, loaded at run time from a path
//!   the caller gives (nothing is embedded; no network).
//! - [`jsonld`]: the model back to JSON-LD with the standard `@context`.
//! - [`hash`]: the pre-hash string and the `ni:///sha-256;…?ver=CBV2.0` event hash ID.
//! - [`compare`]: semantic equality of events and documents.
//! - [`units`]: sensor values in canonical units (°C for temperatures).
//!
//! Architecture invariant: this crate does no IO (no files, no network, no clock, no async)
//! and knows no database or HTTP. Every identifier in the model is normalised (constrained
//! GS1 Digital Link for GS1 keys) and every vocabulary value is a CBV Web URI or a user URI.

pub mod commitment;
pub mod compare;
mod error;
pub mod hash;
pub mod identifier;
mod json;
pub mod jsonld;
pub mod model;
#[cfg(test)]
mod properties;
pub mod query;
pub mod schedule;
pub mod schema;
pub mod time;
pub mod trace;
pub mod units;
pub mod vocabulary;
mod xml;

pub use compare::{documents_equal, events_equal};
pub use error::{ERROR_COUNT_MAXIMUM, ValidationError, ValidationErrors};
pub use hash::{event_hash_id, pre_hash_string};
pub use identifier::{Identifier, IdentifierError};
pub use json::{EVENT_COUNT_MAXIMUM, PREDEFINED_PREFIXES, STANDARD_CONTEXT};
pub use model::{
    Action, BusinessTransaction, Document, DocumentKind, ErrorDeclaration, Event, EventType, ExpandedName,
    ExtensionField, ExtensionValue, Location, MasterDataElement, MasterDataVocabulary, Namespace,
    PersistentDisposition, QuantityElement, QueryResults, SensorElement, SensorMetadata, SensorReport,
    SourceOrDestination,
};
pub use time::{TimeZoneOffset, Timestamp};
pub use vocabulary::{VocabularyKind, VocabularyValue};
pub use xml::{DEPTH_MAXIMUM, ELEMENT_COUNT_MAXIMUM};

use error::Errors;

fn finish<T>(value: Option<T>, errors: Errors) -> Result<T, ValidationErrors> {
    match (value, errors.is_empty()) {
        (Some(value), true) => Ok(value),
        (None, true) => Err(ValidationErrors { errors: vec![ValidationError::new("", "the input holds no document")] }),
        (_, false) => Err(ValidationErrors { errors: errors.into_vec() }),
    }
}

fn parse_json_text(text: &str, errors: &mut Errors) -> Option<serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(error) => {
            errors.push("", format!("malformed JSON at line {} column {}: {error}", error.line(), error.column()));
            None
        }
    }
}

/// Reads and validates an EPCISDocument or EPCISQueryDocument in JSON / JSON-LD.
pub fn parse_json_document(text: &str) -> Result<Document, ValidationErrors> {
    let mut errors = Errors::default();
    let document = parse_json_text(text, &mut errors).and_then(|value| json::read_document(&value, &mut errors));
    finish(document, errors)
}

/// Reads and validates a document already parsed as JSON.
pub fn read_json_document(value: &serde_json::Value) -> Result<Document, ValidationErrors> {
    let mut errors = Errors::default();
    let document = json::read_document(value, &mut errors);
    finish(document, errors)
}

/// Reads and validates a single event in JSON / JSON-LD (the body of `POST /events`).
pub fn parse_json_event(text: &str) -> Result<Event, ValidationErrors> {
    let mut errors = Errors::default();
    let event = parse_json_text(text, &mut errors).map(|value| json::read_single_event(&value, &mut errors));
    finish(event, errors)
}

/// Reads and validates a single event already parsed as JSON.
pub fn read_json_event(value: &serde_json::Value) -> Result<Event, ValidationErrors> {
    let mut errors = Errors::default();
    let event = json::read_single_event(value, &mut errors);
    finish(Some(event), errors)
}

/// Reads and validates an EPCIS 2.0 XML EPCISDocument or EPCISQueryDocument.
pub fn parse_xml_document(text: &str) -> Result<Document, ValidationErrors> {
    let mut errors = Errors::default();
    let document = xml::document_to_json(text, &mut errors).and_then(|value| json::read_document(&value, &mut errors));
    finish(document, errors)
}

/// Reads and validates a single XML event (root element `ObjectEvent`, …).
pub fn parse_xml_event(text: &str) -> Result<Event, ValidationErrors> {
    let mut errors = Errors::default();
    let event = xml::event_to_json_value(text, &mut errors).map(|value| json::read_single_event(&value, &mut errors));
    finish(event, errors)
}

/// Converts an XML document into the JSON shape of the same document without validating it
/// (for the JSON-schema layer on XML input).
pub fn xml_to_json_value(text: &str) -> Result<serde_json::Value, ValidationErrors> {
    let mut errors = Errors::default();
    let value = xml::document_to_json(text, &mut errors);
    finish(value, errors)
}

/// Reads a document (XML when it starts with `<`, JSON otherwise) and returns the model even
/// when it has errors (fields with invalid values left out), with all the errors. For tools
/// that must hash or inspect what they can; capture uses the strict functions.
pub fn read_document_leniently(text: &str) -> (Option<Document>, Vec<ValidationError>) {
    let mut errors = Errors::default();
    let value = match text.trim_start().starts_with('<') {
        true => xml::document_to_json(text, &mut errors),
        false => parse_json_text(text, &mut errors),
    };
    let document = value.and_then(|value| json::read_document(&value, &mut errors));
    (document, errors.into_vec())
}

#[cfg(test)]
mod tests {
    /// Reads one JSON event and lists its errors as `pointer: detail` lines (or `ok`).
    fn check(event: &str, expected: &[&str]) {
        let actual: Vec<String> = match crate::parse_json_event(event) {
            Ok(_) => vec!["ok".to_owned()],
            Err(errors) => errors.errors.iter().map(|error| format!("{}: {}", error.pointer, error.detail)).collect(),
        };
        assert_eq!(actual, expected, "event {event}");
    }

    const HEAD: &str = r#""@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{"ex":"https://ns.example.com/"}],"eventTime":"2020-01-01T00:00:00Z","eventTimeZoneOffset":"+01:00""#;

    #[test]
    fn valid_events() {
        check(
            &format!(
                r#"{{{HEAD},"type":"ObjectEvent","action":"ADD","epcList":["urn:epc:id:sgtin:4012345.011111.9876"],"ex:note":"x"}}"#
            ),
            &["ok"],
        );
        check(&format!(r#"{{{HEAD},"type":"AggregationEvent","action":"OBSERVE","childEPCs":[]}}"#), &["ok"]);
    }

    #[test]
    fn every_error_is_reported_with_its_pointer() {
        check(
            &format!(
                r#"{{{HEAD},"type":"ObjectEvent","action":"MOVE","bizStep":"flying","epcList":["urn:epc:id:sgtin:4012345.011111"],"note":"x","other:note":1}}"#
            ),
            &[
                "/action: action must be ADD, OBSERVE or DELETE, found \"MOVE\"",
                "/bizStep: \"flying\" is not a standard bizStep of CBV 2.0 (rule: a bare term must be one of the standard values, a user value must be an absolute URI)",
                "/epcList/0: \"urn:epc:id:sgtin:4012345.011111\" is not a valid EPC URN: id:sgtin needs 3 dot-separated fields",
                "/note: \"note\" is not a field of this object (rule: user fields are namespaced, prefix:name)",
                "/other:note: namespace prefix \"other\" of \"other:note\" is not declared in @context (rule: user extensions use declared namespaces)",
            ],
        );
        check(
            &format!(r#"{{{HEAD},"type":"TransformationEvent","action":"ADD","epcList":[]}}"#),
            &[
                "/action: action is not a field of TransformationEvent",
                "/epcList: epcList is not a field of TransformationEvent",
                ": a TransformationEvent without transformationID has at least one input and one output",
            ],
        );
    }
}
