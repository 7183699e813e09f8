//! The EPCIS 2.0 event model, one for both wire formats.
//!
//! Every value is normalised when it is built by a parser: identifiers to the constrained
//! Digital Link ([`Identifier`]), vocabulary values to CBV Web URIs ([`VocabularyValue`]),
//! times to UTC instants ([`Timestamp`]). User extensions keep their expanded names
//! (namespace IRI + local name) and their values as written.

use std::fmt;

use crate::identifier::Identifier;
use crate::time::{TimeZoneOffset, Timestamp};
use crate::vocabulary::VocabularyValue;

/// An EPCISDocument or an EPCISQueryDocument.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub kind: DocumentKind,
    pub schema_version: String,
    pub creation_date: Option<Timestamp>,
    /// User namespaces in scope at document level, as (prefix, IRI), in declaration order.
    pub namespaces: Vec<Namespace>,
    /// Master data of `epcisHeader.epcisMasterData`.
    pub master_data: Vec<MasterDataVocabulary>,
    /// For a query document: the subscription and query names of `queryResults`.
    pub query_results: Option<QueryResults>,
    pub events: Vec<Event>,
    /// Other document-level fields (`id`, `sender`, `receiver`, `instanceIdentifier`, …).
    pub other_fields: Vec<ExtensionField>,
    /// User fields that a document-level `ignoreFields` list leaves out of event hashes.
    pub hash_ignored_fields: Vec<ExpandedName>,
}

impl Document {
    /// The event hash ID of every event, in document order, honouring `ignoreFields`.
    pub fn event_hash_ids(&self) -> Vec<String> {
        self.events.iter().map(|event| crate::hash::event_hash_id_ignoring(event, &self.hash_ignored_fields)).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Document,
    QueryDocument,
}

impl DocumentKind {
    pub fn type_name(self) -> &'static str {
        match self {
            DocumentKind::Document => "EPCISDocument",
            DocumentKind::QueryDocument => "EPCISQueryDocument",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    pub prefix: String,
    pub iri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResults {
    pub subscription_id: Option<String>,
    pub query_name: Option<String>,
}

/// One vocabulary of master data, e.g. `urn:epcglobal:epcis:vtype:BusinessLocation`.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterDataVocabulary {
    pub vocabulary_type: String,
    pub elements: Vec<MasterDataElement>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MasterDataElement {
    pub id: String,
    /// (attribute id, value); a value may be structured.
    pub attributes: Vec<(String, ExtensionValue)>,
    pub children: Vec<String>,
}

/// The five event types of EPCIS 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    Object,
    Aggregation,
    Association,
    Transaction,
    Transformation,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::Object,
        EventType::Aggregation,
        EventType::Association,
        EventType::Transaction,
        EventType::Transformation,
    ];

    pub fn type_name(self) -> &'static str {
        match self {
            EventType::Object => "ObjectEvent",
            EventType::Aggregation => "AggregationEvent",
            EventType::Association => "AssociationEvent",
            EventType::Transaction => "TransactionEvent",
            EventType::Transformation => "TransformationEvent",
        }
    }

    pub fn from_type_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|event_type| event_type.type_name() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.type_name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Add,
    Observe,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "ADD",
            Action::Observe => "OBSERVE",
            Action::Delete => "DELETE",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "ADD" => Some(Action::Add),
            "OBSERVE" => Some(Action::Observe),
            "DELETE" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// One EPCIS event of any type. Fields that a type does not have stay empty; the parsers
/// reject them (see [`crate::validate`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub event_type: Option<EventType>,
    pub event_time: Option<Timestamp>,
    pub event_time_zone_offset: Option<TimeZoneOffset>,
    pub record_time: Option<Timestamp>,
    pub event_id: Option<String>,
    pub certification_info: Vec<String>,
    pub error_declaration: Option<ErrorDeclaration>,
    /// Object and Transaction events.
    pub epc_list: Vec<Identifier>,
    /// Aggregation, Association and Transaction events.
    pub parent_id: Option<Identifier>,
    /// Aggregation and Association events.
    pub child_epcs: Vec<Identifier>,
    /// Object and Transaction events.
    pub quantity_list: Vec<QuantityElement>,
    /// Aggregation and Association events.
    pub child_quantity_list: Vec<QuantityElement>,
    /// Transformation events.
    pub input_epc_list: Vec<Identifier>,
    pub input_quantity_list: Vec<QuantityElement>,
    pub output_epc_list: Vec<Identifier>,
    pub output_quantity_list: Vec<QuantityElement>,
    pub transformation_id: Option<Identifier>,
    /// Every type but Transformation.
    pub action: Option<Action>,
    pub business_step: Option<VocabularyValue>,
    pub disposition: Option<VocabularyValue>,
    pub persistent_disposition: Option<PersistentDisposition>,
    pub read_point: Option<Location>,
    pub business_location: Option<Location>,
    pub business_transaction_list: Vec<BusinessTransaction>,
    pub source_list: Vec<SourceOrDestination>,
    pub destination_list: Vec<SourceOrDestination>,
    pub sensor_element_list: Vec<SensorElement>,
    /// Instance/lot master data: user fields in declared namespaces.
    pub instance_lot_master_data: Option<Vec<ExtensionField>>,
    /// Top-level user extensions, in document order.
    pub extensions: Vec<ExtensionField>,
}

impl Event {
    /// Every EPC named by the event (epcList, parentID, childEPCs, inputs, outputs).
    pub fn all_epcs(&self) -> impl Iterator<Item = &Identifier> {
        self.epc_list
            .iter()
            .chain(self.parent_id.iter())
            .chain(self.child_epcs.iter())
            .chain(self.input_epc_list.iter())
            .chain(self.output_epc_list.iter())
    }

    /// Every EPC class of a quantity element.
    pub fn all_epc_classes(&self) -> impl Iterator<Item = &Identifier> {
        self.quantity_list
            .iter()
            .chain(self.child_quantity_list.iter())
            .chain(self.input_quantity_list.iter())
            .chain(self.output_quantity_list.iter())
            .map(|element| &element.epc_class)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantityElement {
    pub epc_class: Identifier,
    pub quantity: Option<f64>,
    /// UN/CEFACT Recommendation 20 code, e.g. `KGM`.
    pub unit_of_measure: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersistentDisposition {
    pub set: Vec<VocabularyValue>,
    pub unset: Vec<VocabularyValue>,
}

/// A read point or business location: an identifier plus user extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub id: Identifier,
    pub extensions: Vec<ExtensionField>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BusinessTransaction {
    pub transaction_type: Option<VocabularyValue>,
    pub id: Identifier,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceOrDestination {
    pub kind: VocabularyValue,
    pub id: Identifier,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDeclaration {
    pub declaration_time: Option<Timestamp>,
    pub reason: Option<VocabularyValue>,
    pub corrective_event_ids: Vec<String>,
    pub extensions: Vec<ExtensionField>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SensorElement {
    pub metadata: Option<SensorMetadata>,
    pub reports: Vec<SensorReport>,
    pub extensions: Vec<ExtensionField>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SensorMetadata {
    pub time: Option<Timestamp>,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub device_id: Option<Identifier>,
    pub device_metadata: Option<Identifier>,
    pub raw_data: Option<Identifier>,
    pub data_processing_method: Option<Identifier>,
    pub business_rules: Option<Identifier>,
    pub extensions: Vec<ExtensionField>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SensorReport {
    /// Measurement type, expanded (`https://gs1.org/voc/Temperature`).
    pub measurement_type: Option<String>,
    /// Sensor alert type, expanded (`https://gs1.org/voc/ALARM_CONDITION`).
    pub exception: Option<String>,
    pub device_id: Option<Identifier>,
    pub device_metadata: Option<Identifier>,
    pub raw_data: Option<Identifier>,
    pub data_processing_method: Option<Identifier>,
    pub time: Option<Timestamp>,
    pub microorganism: Option<String>,
    pub chemical_substance: Option<String>,
    pub value: Option<f64>,
    /// Component, expanded (`https://ref.gs1.org/cbv/Comp-x`) or a user URI.
    pub component: Option<String>,
    pub string_value: Option<String>,
    pub boolean_value: Option<bool>,
    pub hex_binary_value: Option<String>,
    pub uri_value: Option<String>,
    pub minimum_value: Option<f64>,
    pub maximum_value: Option<f64>,
    pub mean_value: Option<f64>,
    pub standard_deviation: Option<f64>,
    pub percentile_rank: Option<f64>,
    pub percentile_value: Option<f64>,
    pub unit_of_measure: Option<String>,
    pub coordinate_reference_system: Option<String>,
    pub extensions: Vec<ExtensionField>,
}

/// An expanded name: namespace IRI and local name. Standard names have an empty namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpandedName {
    pub namespace: String,
    pub local_name: String,
}

impl ExpandedName {
    pub fn new(namespace: &str, local_name: &str) -> ExpandedName {
        ExpandedName { namespace: namespace.to_owned(), local_name: local_name.to_owned() }
    }

    /// `{namespace}local_name`, the event hash form (the local name alone without namespace).
    pub fn clark_notation(&self) -> String {
        match self.namespace.is_empty() {
            true => self.local_name.clone(),
            false => format!("{{{}}}{}", self.namespace, self.local_name),
        }
    }
}

/// A user extension field (or an ILMD field): a name and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionField {
    pub name: ExpandedName,
    pub value: ExtensionValue,
}

/// The value of a user extension, as written. XML gives text and elements only; JSON may give
/// numbers, booleans, null and arrays (an array is the JSON form of a repeated element).
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionValue {
    Text(String),
    /// The lexical form of a JSON number.
    Number(String),
    Boolean(bool),
    Null,
    Object(Vec<ExtensionField>),
    Array(Vec<ExtensionValue>),
}

impl ExtensionValue {
    /// The text of a leaf value (numbers and booleans in their lexical form).
    pub fn leaf_text(&self) -> Option<String> {
        match self {
            ExtensionValue::Text(text) | ExtensionValue::Number(text) => Some(text.clone()),
            ExtensionValue::Boolean(value) => Some(value.to_string()),
            ExtensionValue::Null => Some(String::new()),
            ExtensionValue::Object(_) | ExtensionValue::Array(_) => None,
        }
    }
}
