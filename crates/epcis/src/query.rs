//! The EPCIS 2.0 simple event query: its parameters (the query string of `GET /events` or the
//! body of a named query, see the standard's `query-schema.json`) and the predicate that decides
//! whether an event matches.
//!
//! The predicate [`EventQuery::matches`] is the whole truth of a query. A repository may narrow
//! the candidates first with indexes ([`EventQuery::index_hints`]), but it must still apply the
//! predicate: hints only ever select a superset.
//!
//! Limits: at most [`QUERY_PARAMETERS_MAX`] parameters and [`QUERY_VALUES_MAX`] values per
//! parameter. `orderBy` accepts `eventTime` and `recordTime` (ordering by an extension field is
//! refused with a message, not silently ignored).

use std::collections::BTreeMap;

use crate::identifier::Identifier;
use crate::model::{Action, Event, EventType, ExtensionField, ExtensionValue, SensorReport};
use crate::time::Timestamp;
use crate::units;
use crate::vocabulary::{self, VocabularyKind, VocabularyValue};

/// The most parameters one query may have.
pub const QUERY_PARAMETERS_MAX: usize = 64;
/// The most values one list parameter may have.
pub const QUERY_VALUES_MAX: usize = 256;
/// The deepest master-data hierarchy followed for `WD_` parameters.
pub const HIERARCHY_DEPTH_MAX: usize = 16;
/// The most locations a `WD_` parameter expands to.
pub const HIERARCHY_LOCATIONS_MAX: usize = 1_000;

/// A parameter value: a list (pipe-delimited in a URL, an array in JSON) or one scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum ParameterValue {
    List(Vec<String>),
    Scalar(String),
}

impl ParameterValue {
    fn values(&self) -> Vec<&str> {
        match self {
            ParameterValue::List(items) => items.iter().map(String::as_str).collect(),
            ParameterValue::Scalar(text) => vec![text.as_str()],
        }
    }

    fn scalar(&self) -> Option<&str> {
        match self {
            ParameterValue::Scalar(text) => Some(text),
            ParameterValue::List(items) if items.len() == 1 => Some(&items[0]),
            ParameterValue::List(_) => None,
        }
    }
}

/// Why a query was refused (the standard's `QueryParameterException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter {parameter}: {detail}")]
pub struct QueryParameterError {
    pub parameter: String,
    pub detail: String,
}

fn refuse(parameter: &str, detail: impl Into<String>) -> QueryParameterError {
    QueryParameterError { parameter: parameter.to_owned(), detail: detail.into() }
}

/// Which timestamp orders the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderBy {
    EventTime,
    RecordTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

/// A comparison operator of `GT_`, `GE_`, `LT_`, `LE_` and `EQ_` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Comparison {
    fn from_prefix(prefix: &str) -> Option<Comparison> {
        match prefix {
            "EQ" => Some(Comparison::Equal),
            "GT" => Some(Comparison::Greater),
            "GE" => Some(Comparison::GreaterOrEqual),
            "LT" => Some(Comparison::Less),
            "LE" => Some(Comparison::LessOrEqual),
            _ => None,
        }
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Comparison::Equal => ordering == Equal,
            Comparison::Greater => ordering == Greater,
            Comparison::GreaterOrEqual => ordering != Less,
            Comparison::Less => ordering == Less,
            Comparison::LessOrEqual => ordering != Greater,
        }
    }

    fn numbers(self, left: f64, right: f64) -> bool {
        left.partial_cmp(&right).is_some_and(|ordering| self.holds(ordering))
    }
}

/// The EPC fields a `MATCH_` parameter looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpcField {
    /// `MATCH_epc`: epcList and childEPCs.
    Epc,
    ParentId,
    InputEpc,
    OutputEpc,
    /// Every EPC of the event.
    AnyEpc,
    /// `MATCH_epcClass`: quantityList and childQuantityList.
    EpcClass,
    InputEpcClass,
    OutputEpcClass,
    AnyEpcClass,
}

impl EpcField {
    fn from_name(name: &str) -> Option<EpcField> {
        Some(match name {
            "epc" => EpcField::Epc,
            "parentID" => EpcField::ParentId,
            "inputEPC" => EpcField::InputEpc,
            "outputEPC" => EpcField::OutputEpc,
            "anyEPC" => EpcField::AnyEpc,
            "epcClass" => EpcField::EpcClass,
            "inputEPCClass" => EpcField::InputEpcClass,
            "outputEPCClass" => EpcField::OutputEpcClass,
            "anyEPCClass" => EpcField::AnyEpcClass,
            _ => return None,
        })
    }

    /// The identifiers of `event` this field names.
    pub fn identifiers<'e>(self, event: &'e Event) -> Vec<&'e Identifier> {
        let classes = |lists: &[&'e [crate::model::QuantityElement]]| -> Vec<&'e Identifier> {
            lists.iter().flat_map(|list| list.iter().map(|element| &element.epc_class)).collect()
        };
        match self {
            EpcField::Epc => event.epc_list.iter().chain(&event.child_epcs).collect(),
            EpcField::ParentId => event.parent_id.iter().collect(),
            EpcField::InputEpc => event.input_epc_list.iter().collect(),
            EpcField::OutputEpc => event.output_epc_list.iter().collect(),
            EpcField::AnyEpc => event.all_epcs().collect(),
            EpcField::EpcClass => classes(&[&event.quantity_list, &event.child_quantity_list]),
            EpcField::InputEpcClass => classes(&[&event.input_quantity_list]),
            EpcField::OutputEpcClass => classes(&[&event.output_quantity_list]),
            EpcField::AnyEpcClass => event.all_epc_classes().collect(),
        }
    }

    /// The index roles (see [`identifier_roles`]) this field covers.
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            EpcField::Epc => &["epc", "childEPC"],
            EpcField::ParentId => &["parentID"],
            EpcField::InputEpc => &["inputEPC"],
            EpcField::OutputEpc => &["outputEPC"],
            EpcField::AnyEpc => &["epc", "childEPC", "parentID", "inputEPC", "outputEPC"],
            EpcField::EpcClass => &["epcClass", "childEPCClass"],
            EpcField::InputEpcClass => &["inputEPCClass"],
            EpcField::OutputEpcClass => &["outputEPCClass"],
            EpcField::AnyEpcClass => &["epcClass", "childEPCClass", "inputEPCClass", "outputEPCClass"],
        }
    }
}

/// Every identifier of an event with its role, for an index: (role, identifier).
pub fn identifier_roles(event: &Event) -> Vec<(&'static str, &Identifier)> {
    let mut roles = Vec::new();
    roles.extend(event.epc_list.iter().map(|id| ("epc", id)));
    roles.extend(event.child_epcs.iter().map(|id| ("childEPC", id)));
    roles.extend(event.parent_id.iter().map(|id| ("parentID", id)));
    roles.extend(event.input_epc_list.iter().map(|id| ("inputEPC", id)));
    roles.extend(event.output_epc_list.iter().map(|id| ("outputEPC", id)));
    roles.extend(event.quantity_list.iter().map(|element| ("epcClass", &element.epc_class)));
    roles.extend(event.child_quantity_list.iter().map(|element| ("childEPCClass", &element.epc_class)));
    roles.extend(event.input_quantity_list.iter().map(|element| ("inputEPCClass", &element.epc_class)));
    roles.extend(event.output_quantity_list.iter().map(|element| ("outputEPCClass", &element.epc_class)));
    roles.sort();
    roles.dedup();
    roles
}

/// A value of a `MATCH_` parameter: an identifier, or an EPC pattern (`urn:epc:idpat:…` with
/// `*` for the serial), which matches every instance of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpcPattern {
    Exact(Identifier),
    /// Every serial of one GTIN: `urn:epc:idpat:sgtin:CP.IR.*`; also every lot of it for classes.
    AnyOfGtin(String),
}

impl EpcPattern {
    fn parse(text: &str) -> Result<EpcPattern, String> {
        if let Some(rest) = text.strip_prefix("urn:epc:idpat:sgtin:") {
            let parts: Vec<&str> = rest.split('.').collect();
            if parts.len() == 3 && parts[2] == "*" && parts[0] != "*" && parts[1] != "*" {
                let instance = format!("urn:epc:id:sgtin:{}.{}.0", parts[0], parts[1]);
                let identifier = Identifier::parse(&instance).map_err(|error| error.to_string())?;
                let gtin = gtin_of(&identifier).ok_or_else(|| format!("{text:?} names no GTIN"))?;
                return Ok(EpcPattern::AnyOfGtin(gtin));
            }
            return Err(format!(
                "{text:?}: the patterns supported are an exact EPC and urn:epc:idpat:sgtin:COMPANY.ITEM.* (every serial of one GTIN)"
            ));
        }
        if text.starts_with("urn:epc:idpat:") {
            return Err(format!(
                "{text:?}: of the EPC patterns, this repository matches urn:epc:idpat:sgtin:COMPANY.ITEM.* (every serial of one GTIN); give exact EPCs otherwise"
            ));
        }
        Identifier::parse(text).map(EpcPattern::Exact).map_err(|error| error.to_string())
    }

    fn matches(&self, identifier: &Identifier) -> bool {
        match self {
            EpcPattern::Exact(expected) => expected == identifier,
            EpcPattern::AnyOfGtin(gtin) => gtin_of(identifier).is_some_and(|found| found == *gtin),
        }
    }
}

/// The GTIN of an identifier that carries one (an SGTIN, an LGTIN, a GTIN class).
pub fn gtin_of(identifier: &Identifier) -> Option<String> {
    let link = identifier.digital_link()?;
    let key = link.primary_key();
    (key.code() == "01").then(|| key.value().to_owned())
}

/// A filter on a user extension field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldFilter {
    pub scope: FieldScope,
    /// `INNER_`: the field is looked for inside structured values, not at the top of the scope.
    pub inner: bool,
    /// The namespace IRIs the prefix may stand for (a prefix may be declared differently by
    /// different documents) and the local name.
    pub namespaces: Vec<String>,
    pub local_name: String,
    pub test: FieldTest,
}

/// Where a user field is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldScope {
    TopLevel,
    Ilmd,
    ErrorDeclaration,
    SensorElement,
    SensorMetadata,
    SensorReport,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldTest {
    Exists,
    Compare(Comparison, Vec<String>),
}

/// A comparison on a sensor report value in a unit: `GE_value_CEL=2`.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorValueFilter {
    pub field: SensorValueField,
    pub comparison: Comparison,
    pub unit: String,
    pub bound: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorValueField {
    Value,
    Minimum,
    Maximum,
    Mean,
    Percentile,
}

impl SensorValueField {
    fn of(self, report: &SensorReport) -> Option<f64> {
        match self {
            SensorValueField::Value => report.value,
            SensorValueField::Minimum => report.minimum_value,
            SensorValueField::Maximum => report.maximum_value,
            SensorValueField::Mean => report.mean_value,
            SensorValueField::Percentile => report.percentile_value,
        }
    }
}

/// A time range, half open: `[at_least, before)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub at_least: Option<Timestamp>,
    pub before: Option<Timestamp>,
}

impl TimeRange {
    fn is_set(&self) -> bool {
        self.at_least.is_some() || self.before.is_some()
    }

    fn contains(&self, time: Option<Timestamp>) -> bool {
        let Some(time) = time else { return !self.is_set() };
        self.at_least.is_none_or(|bound| time >= bound) && self.before.is_none_or(|bound| time < bound)
    }
}

/// Prefix declarations a query's user-field names are resolved against.
pub type PrefixMap = BTreeMap<String, Vec<String>>;

/// A parsed simple event query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventQuery {
    pub event_types: Option<Vec<String>>,
    pub event_time: TimeRange,
    pub record_time: TimeRange,
    pub actions: Option<Vec<Action>>,
    pub business_steps: Option<Vec<VocabularyValue>>,
    pub dispositions: Option<Vec<VocabularyValue>>,
    pub persistent_set: Option<Vec<VocabularyValue>>,
    pub persistent_unset: Option<Vec<VocabularyValue>>,
    pub read_points: Option<Vec<Identifier>>,
    /// `WD_readPoint`: these and their descendants (filled in by [`EventQuery::expand_hierarchy`]).
    pub read_points_with_descendants: Option<Vec<Identifier>>,
    pub business_locations: Option<Vec<Identifier>>,
    pub business_locations_with_descendants: Option<Vec<Identifier>>,
    pub transformation_ids: Option<Vec<Identifier>>,
    pub epc_matches: Vec<(EpcField, Vec<EpcPattern>)>,
    pub quantity_equal: Option<Vec<f64>>,
    pub quantity_comparisons: Vec<(Comparison, f64)>,
    pub event_ids: Option<Vec<String>>,
    pub error_declaration_exists: bool,
    pub error_declaration_time: TimeRange,
    pub error_reasons: Option<Vec<VocabularyValue>>,
    pub corrective_event_ids: Option<Vec<String>>,
    pub business_transactions: Vec<(VocabularyValue, Vec<Identifier>)>,
    pub sources: Vec<(VocabularyValue, Vec<Identifier>)>,
    pub destinations: Vec<(VocabularyValue, Vec<Identifier>)>,
    pub sensor_element_list_exists: bool,
    pub sensor_time: TimeRange,
    pub sensor_start_time: TimeRange,
    pub sensor_end_time: TimeRange,
    pub measurement_types: Option<Vec<String>>,
    pub device_ids: Option<Vec<Identifier>>,
    pub data_processing_methods: Option<Vec<Identifier>>,
    pub microorganisms: Option<Vec<String>>,
    pub chemical_substances: Option<Vec<String>>,
    pub business_rules: Option<Vec<Identifier>>,
    pub string_values: Option<Vec<String>>,
    pub boolean_values: Option<Vec<bool>>,
    pub hex_binary_values: Option<Vec<String>>,
    pub uri_values: Option<Vec<String>>,
    pub percentile_rank: Vec<(Comparison, f64)>,
    pub sensor_values: Vec<SensorValueFilter>,
    pub fields: Vec<FieldFilter>,
    pub order_by: Option<OrderBy>,
    pub direction: Option<Direction>,
    pub event_count_limit: Option<u64>,
    pub max_event_count: Option<u64>,
}

/// What an index can narrow on; every hint selects a superset of the matching events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexHints {
    pub event_types: Option<Vec<String>>,
    pub event_time: TimeRange,
    pub record_time: TimeRange,
    pub actions: Option<Vec<&'static str>>,
    pub business_steps: Option<Vec<String>>,
    pub dispositions: Option<Vec<String>>,
    pub read_points: Option<Vec<String>>,
    pub business_locations: Option<Vec<String>>,
    pub event_ids: Option<Vec<String>>,
    pub error_declaration_exists: bool,
    /// Each entry: (roles, exact identifiers); an event must name one of them in one of the roles.
    pub identifiers: Vec<(&'static [&'static str], Vec<String>)>,
    /// Each entry: (roles, GTINs) for patterns.
    pub gtins: Vec<(&'static [&'static str], Vec<String>)>,
}

/// Parameters that control the answer rather than select events.
const PAGING_PARAMETERS: &[&str] = &["perPage", "nextPageToken"];

impl EventQuery {
    /// Reads the parameters; `prefixes` resolves the `prefix:name` of user-field parameters.
    pub fn parse(
        parameters: &[(String, ParameterValue)],
        prefixes: &PrefixMap,
    ) -> Result<EventQuery, QueryParameterError> {
        if parameters.len() > QUERY_PARAMETERS_MAX {
            return Err(refuse("", format!("a query has at most {QUERY_PARAMETERS_MAX} parameters")));
        }
        let mut query = EventQuery::default();
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in parameters {
            if PAGING_PARAMETERS.contains(&name.as_str()) || name == "@context" {
                continue;
            }
            if !seen.insert(name.clone()) {
                return Err(refuse(name, "given twice (repeat values with | inside one parameter)"));
            }
            if value.values().len() > QUERY_VALUES_MAX {
                return Err(refuse(name, format!("at most {QUERY_VALUES_MAX} values")));
            }
            query.read_parameter(name, value, prefixes)?;
        }
        if query.event_count_limit.is_some() && query.max_event_count.is_some() {
            return Err(refuse("eventCountLimit", "eventCountLimit and maxEventCount are mutually exclusive"));
        }
        if query.event_count_limit.is_some() && query.order_by.is_none() {
            return Err(refuse("eventCountLimit", "eventCountLimit needs orderBy"));
        }
        // orderDirection without orderBy is ignored, as the standard says.
        Ok(query)
    }

    fn read_parameter(
        &mut self,
        name: &str,
        value: &ParameterValue,
        prefixes: &PrefixMap,
    ) -> Result<(), QueryParameterError> {
        let values = value.values();
        let time = || -> Result<Timestamp, QueryParameterError> {
            let text = value.scalar().ok_or_else(|| refuse(name, "expects one time"))?;
            Timestamp::parse(text).map_err(|error| refuse(name, format!("{text:?}: {error}")))
        };
        let number = || -> Result<f64, QueryParameterError> {
            let text = value.scalar().ok_or_else(|| refuse(name, "expects one number"))?;
            parse_number(text).ok_or_else(|| refuse(name, format!("{text:?} is not a number")))
        };
        let count = || -> Result<u64, QueryParameterError> {
            let text = value.scalar().ok_or_else(|| refuse(name, "expects one integer"))?;
            text.trim().parse::<u64>().map_err(|_| refuse(name, format!("{text:?} is not a non-negative integer")))
        };
        let vocabulary = |kind: VocabularyKind| -> Result<Vec<VocabularyValue>, QueryParameterError> {
            values
                .iter()
                .map(|text| vocabulary::normalise(kind, text).map_err(|error| refuse(name, error.to_string())))
                .collect()
        };
        let identifiers = || -> Result<Vec<Identifier>, QueryParameterError> {
            values.iter().map(|text| Identifier::parse(text).map_err(|error| refuse(name, error.to_string()))).collect()
        };
        let texts = || values.iter().map(|text| (*text).to_owned()).collect::<Vec<_>>();
        let presence = || -> Result<bool, QueryParameterError> {
            match value.scalar().map(str::trim) {
                None | Some("") | Some("true") => Ok(true),
                Some(other) => Err(refuse(name, format!("{other:?}: an EXISTS_ parameter takes no value"))),
            }
        };
        match name {
            "eventType" => self.event_types = Some(texts()),
            "GE_eventTime" => self.event_time.at_least = Some(time()?),
            "LT_eventTime" => self.event_time.before = Some(time()?),
            "GE_recordTime" => self.record_time.at_least = Some(time()?),
            "LT_recordTime" => self.record_time.before = Some(time()?),
            "EQ_action" => {
                let actions = values
                    .iter()
                    .map(|text| {
                        Action::parse(text)
                            .ok_or_else(|| refuse(name, format!("{text:?} is not ADD, OBSERVE or DELETE")))
                    })
                    .collect::<Result<_, _>>()?;
                self.actions = Some(actions);
            }
            "EQ_bizStep" => self.business_steps = Some(vocabulary(VocabularyKind::BusinessStep)?),
            "EQ_disposition" => self.dispositions = Some(vocabulary(VocabularyKind::Disposition)?),
            "EQ_persistentDisposition_set" => self.persistent_set = Some(vocabulary(VocabularyKind::Disposition)?),
            "EQ_persistentDisposition_unset" => self.persistent_unset = Some(vocabulary(VocabularyKind::Disposition)?),
            "EQ_readPoint" => self.read_points = Some(identifiers()?),
            "WD_readPoint" => self.read_points_with_descendants = Some(identifiers()?),
            "EQ_bizLocation" => self.business_locations = Some(identifiers()?),
            "WD_bizLocation" => self.business_locations_with_descendants = Some(identifiers()?),
            "EQ_transformationID" => self.transformation_ids = Some(identifiers()?),
            "EQ_quantity" => {
                let quantities = values
                    .iter()
                    .map(|text| parse_number(text).ok_or_else(|| refuse(name, format!("{text:?} is not a number"))))
                    .collect::<Result<_, _>>()?;
                self.quantity_equal = Some(quantities);
            }
            "GT_quantity" | "GE_quantity" | "LT_quantity" | "LE_quantity" => {
                let comparison = Comparison::from_prefix(&name[..2]).unwrap_or(Comparison::Equal);
                self.quantity_comparisons.push((comparison, number()?));
            }
            "EQ_eventID" => self.event_ids = Some(texts()),
            "EXISTS_errorDeclaration" => self.error_declaration_exists = presence()?,
            "GE_errorDeclarationTime" | "GE_errorDeclaration_Time" => {
                self.error_declaration_time.at_least = Some(time()?)
            }
            "LT_errorDeclarationTime" | "LT_errorDeclaration_Time" => {
                self.error_declaration_time.before = Some(time()?)
            }
            "EQ_errorReason" => self.error_reasons = Some(vocabulary(VocabularyKind::ErrorReason)?),
            "EQ_correctiveEventID" => self.corrective_event_ids = Some(texts()),
            "orderBy" => {
                self.order_by = Some(match value.scalar() {
                    Some("eventTime") => OrderBy::EventTime,
                    Some("recordTime") => OrderBy::RecordTime,
                    Some(other) => {
                        return Err(refuse(
                            name,
                            format!("{other:?}: this repository orders by eventTime or recordTime only"),
                        ));
                    }
                    None => return Err(refuse(name, "expects one field name")),
                });
            }
            "orderDirection" => {
                self.direction = Some(match value.scalar() {
                    Some("ASC") => Direction::Ascending,
                    Some("DESC") => Direction::Descending,
                    _ => return Err(refuse(name, "must be ASC or DESC")),
                });
            }
            "eventCountLimit" => self.event_count_limit = Some(count()?),
            "maxEventCount" => self.max_event_count = Some(count()?),
            "EXISTS_sensorElementList" => self.sensor_element_list_exists = presence()?,
            "GE_time" => self.sensor_time.at_least = Some(time()?),
            "LT_time" => self.sensor_time.before = Some(time()?),
            "GE_startTime" => self.sensor_start_time.at_least = Some(time()?),
            "LT_startTime" => self.sensor_start_time.before = Some(time()?),
            "GE_endTime" => self.sensor_end_time.at_least = Some(time()?),
            "LT_endTime" => self.sensor_end_time.before = Some(time()?),
            "EQ_type" => {
                self.measurement_types = Some(values.iter().map(|text| vocabulary::expand_gs1_term(text)).collect())
            }
            "EQ_deviceID" => self.device_ids = Some(identifiers()?),
            "EQ_dataProcessingMethod" => self.data_processing_methods = Some(identifiers()?),
            "EQ_microorganism" => self.microorganisms = Some(texts()),
            "EQ_chemicalSubstance" => self.chemical_substances = Some(texts()),
            "EQ_bizRules" => self.business_rules = Some(identifiers()?),
            "EQ_stringValue" => self.string_values = Some(texts()),
            "EQ_booleanValue" => {
                let booleans = values
                    .iter()
                    .map(|text| match *text {
                        "true" => Ok(true),
                        "false" => Ok(false),
                        other => Err(refuse(name, format!("{other:?} is not true or false"))),
                    })
                    .collect::<Result<_, _>>()?;
                self.boolean_values = Some(booleans);
            }
            "EQ_hexBinaryValue" => {
                self.hex_binary_values = Some(values.iter().map(|text| text.to_ascii_uppercase()).collect())
            }
            "EQ_uriValue" => self.uri_values = Some(texts()),
            _ => return self.read_patterned_parameter(name, value, prefixes),
        }
        Ok(())
    }

    fn read_patterned_parameter(
        &mut self,
        name: &str,
        value: &ParameterValue,
        prefixes: &PrefixMap,
    ) -> Result<(), QueryParameterError> {
        let values = value.values();
        if let Some(field) = name.strip_prefix("MATCH_") {
            let field =
                EpcField::from_name(field).ok_or_else(|| refuse(name, "not a MATCH_ parameter of EPCIS 2.0"))?;
            let patterns: Result<Vec<EpcPattern>, _> =
                values.iter().map(|text| EpcPattern::parse(text).map_err(|error| refuse(name, error))).collect();
            self.epc_matches.push((field, patterns?));
            return Ok(());
        }
        for (prefix, kind, target) in [
            ("EQ_bizTransaction_", VocabularyKind::BusinessTransactionType, 0),
            ("EQ_source_", VocabularyKind::SourceDestinationType, 1),
            ("EQ_destination_", VocabularyKind::SourceDestinationType, 2),
        ] {
            if let Some(kind_text) = name.strip_prefix(prefix) {
                let kind_value =
                    vocabulary::normalise(kind, kind_text).map_err(|error| refuse(name, error.to_string()))?;
                let ids = values.iter().map(|text| parse_loose_identifier(text)).collect();
                let list = match target {
                    0 => &mut self.business_transactions,
                    1 => &mut self.sources,
                    _ => &mut self.destinations,
                };
                list.push((kind_value, ids));
                return Ok(());
            }
        }
        let Some((operator, rest)) = name.split_once('_') else {
            return Err(refuse(name, "not a parameter of the EPCIS 2.0 simple event query"));
        };
        // Sensor values in a unit: GE_value_CEL, LT_meanValue_KEL, …
        if let Some((field, unit)) = rest.split_once('_')
            && let Some(field) = match field {
                "value" => Some(SensorValueField::Value),
                "minValue" => Some(SensorValueField::Minimum),
                "maxValue" => Some(SensorValueField::Maximum),
                "meanValue" => Some(SensorValueField::Mean),
                "percValue" => Some(SensorValueField::Percentile),
                _ => None,
            }
        {
            let comparison = Comparison::from_prefix(operator).ok_or_else(|| refuse(name, "unknown comparison"))?;
            if units::canonical_unit(unit).is_none() {
                return Err(refuse(name, format!("{unit:?} is not a unit of measure this repository converts")));
            }
            let text = value.scalar().ok_or_else(|| refuse(name, "expects one number"))?;
            let bound = parse_number(text).ok_or_else(|| refuse(name, format!("{text:?} is not a number")))?;
            self.sensor_values.push(SensorValueFilter { field, comparison, unit: unit.to_owned(), bound });
            return Ok(());
        }
        if rest == "percRank" {
            let comparison = Comparison::from_prefix(operator).ok_or_else(|| refuse(name, "unknown comparison"))?;
            let text = value.scalar().ok_or_else(|| refuse(name, "expects one number"))?;
            let bound = parse_number(text).ok_or_else(|| refuse(name, format!("{text:?} is not a number")))?;
            self.percentile_rank.push((comparison, bound));
            return Ok(());
        }
        // User fields: EQ_ns:field, GE_ILMD_ns:field, EXISTS_INNER_ns:field, …
        let test = match operator {
            "EXISTS" => FieldTest::Exists,
            _ => {
                let comparison = Comparison::from_prefix(operator)
                    .ok_or_else(|| refuse(name, "not a parameter of the simple event query"))?;
                FieldTest::Compare(comparison, values.iter().map(|text| (*text).to_owned()).collect())
            }
        };
        let inner = rest.starts_with("INNER_");
        let rest = rest.strip_prefix("INNER_").unwrap_or(rest);
        let (scope, field) = [
            ("ILMD_", FieldScope::Ilmd),
            ("ERROR_DECLARATION_", FieldScope::ErrorDeclaration),
            ("SENSORELEMENT_", FieldScope::SensorElement),
            ("SENSORMETADATA_", FieldScope::SensorMetadata),
            ("SENSORREPORT_", FieldScope::SensorReport),
        ]
        .into_iter()
        .find_map(|(prefix, scope)| rest.strip_prefix(prefix).map(|field| (scope, field)))
        .unwrap_or((FieldScope::TopLevel, rest));
        let Some((prefix, local_name)) = field.split_once(':') else {
            return Err(refuse(name, "not a parameter of the simple event query (user fields are prefix:name)"));
        };
        let namespaces = prefixes.get(prefix).cloned().unwrap_or_default();
        if namespaces.is_empty() {
            return Err(refuse(name, format!("namespace prefix {prefix:?} is not declared")));
        }
        self.fields.push(FieldFilter { scope, inner, namespaces, local_name: local_name.to_owned(), test });
        Ok(())
    }

    /// Replaces each `WD_` list by the listed locations and all their descendants, found with
    /// `children` (from master data), at most [`HIERARCHY_DEPTH_MAX`] levels deep and
    /// [`HIERARCHY_LOCATIONS_MAX`] locations.
    pub fn expand_hierarchy(&mut self, children: &dyn Fn(&str) -> Vec<String>) -> Result<(), QueryParameterError> {
        for (name, list) in [
            ("WD_readPoint", &mut self.read_points_with_descendants),
            ("WD_bizLocation", &mut self.business_locations_with_descendants),
        ] {
            let Some(list) = list else { continue };
            let mut known: std::collections::HashSet<Identifier> = list.iter().cloned().collect();
            let mut frontier: Vec<Identifier> = list.clone();
            for _ in 0..HIERARCHY_DEPTH_MAX {
                let mut next = Vec::new();
                for parent in &frontier {
                    for child in children(parent.as_str()) {
                        let child = Identifier::parse(&child).unwrap_or_else(|_| Identifier::unchecked(&child));
                        if known.insert(child.clone()) {
                            if known.len() > HIERARCHY_LOCATIONS_MAX {
                                return Err(refuse(
                                    name,
                                    format!("the locations and their descendants exceed {HIERARCHY_LOCATIONS_MAX}"),
                                ));
                            }
                            list.push(child.clone());
                            next.push(child);
                        }
                    }
                }
                if next.is_empty() {
                    break;
                }
                frontier = next;
            }
        }
        Ok(())
    }

    /// Whether `event` satisfies every parameter.
    pub fn matches(&self, event: &Event) -> bool {
        self.matches_header(event)
            && self.matches_epcs(event)
            && self.matches_error_declaration(event)
            && self.matches_sources(event)
            && self.matches_sensors(event)
            && self.fields.iter().all(|filter| filter.matches(event))
    }

    fn matches_header(&self, event: &Event) -> bool {
        let one_of = |list: &Option<Vec<Identifier>>, value: Option<&Identifier>| match list {
            None => true,
            Some(list) => value.is_some_and(|value| list.contains(value)),
        };
        let vocabulary_one_of = |list: &Option<Vec<VocabularyValue>>, value: Option<&VocabularyValue>| match list {
            None => true,
            Some(list) => value.is_some_and(|value| list.contains(value)),
        };
        let type_name = event.event_type.map(EventType::type_name).unwrap_or("");
        self.event_types.as_ref().is_none_or(|types| types.iter().any(|name| name == type_name))
            && self.event_time.contains(event.event_time)
            && self.record_time.contains(event.record_time)
            && self.actions.as_ref().is_none_or(|actions| event.action.is_some_and(|action| actions.contains(&action)))
            && vocabulary_one_of(&self.business_steps, event.business_step.as_ref())
            && vocabulary_one_of(&self.dispositions, event.disposition.as_ref())
            && self.persistent_set.as_ref().is_none_or(|list| {
                event.persistent_disposition.as_ref().is_some_and(|value| value.set.iter().any(|v| list.contains(v)))
            })
            && self.persistent_unset.as_ref().is_none_or(|list| {
                event.persistent_disposition.as_ref().is_some_and(|value| value.unset.iter().any(|v| list.contains(v)))
            })
            && one_of(&self.read_points, event.read_point.as_ref().map(|location| &location.id))
            && one_of(&self.read_points_with_descendants, event.read_point.as_ref().map(|location| &location.id))
            && one_of(&self.business_locations, event.business_location.as_ref().map(|location| &location.id))
            && one_of(
                &self.business_locations_with_descendants,
                event.business_location.as_ref().map(|location| &location.id),
            )
            && one_of(&self.transformation_ids, event.transformation_id.as_ref())
            && self
                .event_ids
                .as_ref()
                .is_none_or(|ids| event.event_id.as_ref().is_some_and(|id| ids.iter().any(|wanted| wanted == id)))
    }

    fn matches_epcs(&self, event: &Event) -> bool {
        let quantities = || {
            event
                .quantity_list
                .iter()
                .chain(&event.child_quantity_list)
                .chain(&event.input_quantity_list)
                .chain(&event.output_quantity_list)
                .filter_map(|element| element.quantity)
        };
        self.epc_matches.iter().all(|(field, patterns)| {
            field.identifiers(event).into_iter().any(|id| patterns.iter().any(|pattern| pattern.matches(id)))
        }) && self.quantity_equal.as_ref().is_none_or(|wanted| quantities().any(|q| wanted.contains(&q)))
            && self
                .quantity_comparisons
                .iter()
                .all(|(comparison, bound)| quantities().any(|q| comparison.numbers(q, *bound)))
    }

    fn matches_error_declaration(&self, event: &Event) -> bool {
        let declaration = event.error_declaration.as_ref();
        let needs_declaration = self.error_declaration_exists
            || self.error_declaration_time.is_set()
            || self.error_reasons.is_some()
            || self.corrective_event_ids.is_some();
        if !needs_declaration {
            return true;
        }
        let Some(declaration) = declaration else { return false };
        self.error_declaration_time.contains(declaration.declaration_time)
            && self
                .error_reasons
                .as_ref()
                .is_none_or(|reasons| declaration.reason.as_ref().is_some_and(|reason| reasons.contains(reason)))
            && self.corrective_event_ids.as_ref().is_none_or(|ids| {
                declaration.corrective_event_ids.iter().any(|id| ids.iter().any(|wanted| wanted == id))
            })
    }

    fn matches_sources(&self, event: &Event) -> bool {
        self.business_transactions.iter().all(|(kind, ids)| {
            event
                .business_transaction_list
                .iter()
                .any(|transaction| transaction.transaction_type.as_ref() == Some(kind) && ids.contains(&transaction.id))
        }) && self
            .sources
            .iter()
            .all(|(kind, ids)| event.source_list.iter().any(|source| &source.kind == kind && ids.contains(&source.id)))
            && self.destinations.iter().all(|(kind, ids)| {
                event
                    .destination_list
                    .iter()
                    .any(|destination| &destination.kind == kind && ids.contains(&destination.id))
            })
    }

    fn has_sensor_filters(&self) -> bool {
        self.sensor_element_list_exists
            || self.sensor_time.is_set()
            || self.sensor_start_time.is_set()
            || self.sensor_end_time.is_set()
            || self.measurement_types.is_some()
            || self.device_ids.is_some()
            || self.data_processing_methods.is_some()
            || self.microorganisms.is_some()
            || self.chemical_substances.is_some()
            || self.business_rules.is_some()
            || self.string_values.is_some()
            || self.boolean_values.is_some()
            || self.hex_binary_values.is_some()
            || self.uri_values.is_some()
            || !self.percentile_rank.is_empty()
            || !self.sensor_values.is_empty()
    }

    /// Each sensor parameter must hold for some element (metadata) or report of the event.
    fn matches_sensors(&self, event: &Event) -> bool {
        if !self.has_sensor_filters() {
            return true;
        }
        let elements = &event.sensor_element_list;
        if elements.is_empty() {
            return false;
        }
        let metadata = || elements.iter().filter_map(|element| element.metadata.as_ref());
        let reports = || elements.iter().flat_map(|element| element.reports.iter());
        fn any_of<T: PartialEq>(list: &Option<Vec<T>>, values: &mut dyn Iterator<Item = Option<&T>>) -> bool {
            let Some(list) = list else { return true };
            for value in values.flatten() {
                if list.contains(value) {
                    return true;
                }
            }
            false
        }
        let any_identifier = any_of::<Identifier>;
        let any_text = any_of::<String>;
        let sensor_times =
            || metadata().map(|meta| meta.time).chain(reports().map(|report| report.time)).collect::<Vec<_>>();
        (!self.sensor_time.is_set()
            || sensor_times().into_iter().any(|time| time.is_some() && self.sensor_time.contains(time)))
            && (!self.sensor_start_time.is_set()
                || metadata().any(|meta| meta.start_time.is_some() && self.sensor_start_time.contains(meta.start_time)))
            && (!self.sensor_end_time.is_set()
                || metadata().any(|meta| meta.end_time.is_some() && self.sensor_end_time.contains(meta.end_time)))
            && any_text(&self.measurement_types, &mut reports().map(|report| report.measurement_type.as_ref()))
            && any_identifier(
                &self.device_ids,
                &mut metadata()
                    .map(|meta| meta.device_id.as_ref())
                    .chain(reports().map(|report| report.device_id.as_ref())),
            )
            && any_identifier(
                &self.data_processing_methods,
                &mut metadata()
                    .map(|meta| meta.data_processing_method.as_ref())
                    .chain(reports().map(|report| report.data_processing_method.as_ref())),
            )
            && any_identifier(&self.business_rules, &mut metadata().map(|meta| meta.business_rules.as_ref()))
            && any_text(&self.microorganisms, &mut reports().map(|report| report.microorganism.as_ref()))
            && any_text(&self.chemical_substances, &mut reports().map(|report| report.chemical_substance.as_ref()))
            && any_text(&self.string_values, &mut reports().map(|report| report.string_value.as_ref()))
            && any_text(&self.uri_values, &mut reports().map(|report| report.uri_value.as_ref()))
            && self.boolean_values.as_ref().is_none_or(|list| {
                reports().any(|report| report.boolean_value.is_some_and(|value| list.contains(&value)))
            })
            && self.hex_binary_values.as_ref().is_none_or(|list| {
                reports().any(|report| {
                    report.hex_binary_value.as_ref().is_some_and(|value| list.contains(&value.to_ascii_uppercase()))
                })
            })
            && self.percentile_rank.iter().all(|(comparison, bound)| {
                reports().any(|report| report.percentile_rank.is_some_and(|rank| comparison.numbers(rank, *bound)))
            })
            && self.sensor_values.iter().all(|filter| reports().any(|report| filter.matches(report)))
    }

    /// What an index may use to narrow the candidates (a superset of the matches).
    pub fn index_hints(&self) -> IndexHints {
        let strings = |list: &Option<Vec<Identifier>>| {
            list.as_ref().map(|list| list.iter().map(|id| id.as_str().to_owned()).collect::<Vec<_>>())
        };
        let vocabulary = |list: &Option<Vec<VocabularyValue>>| {
            list.as_ref().map(|list| list.iter().map(|value| value.as_str().to_owned()).collect::<Vec<_>>())
        };
        let mut hints = IndexHints {
            event_types: self.event_types.clone(),
            event_time: self.event_time,
            record_time: self.record_time,
            actions: self.actions.as_ref().map(|actions| actions.iter().map(|action| action.as_str()).collect()),
            business_steps: vocabulary(&self.business_steps),
            dispositions: vocabulary(&self.dispositions),
            read_points: strings(&self.read_points),
            business_locations: strings(&self.business_locations),
            event_ids: self.event_ids.clone(),
            error_declaration_exists: self.error_declaration_exists
                || self.error_declaration_time.is_set()
                || self.error_reasons.is_some()
                || self.corrective_event_ids.is_some(),
            identifiers: Vec::new(),
            gtins: Vec::new(),
        };
        // An index narrows on WD_ lists too once they are expanded.
        if let Some(expanded) = strings(&self.read_points_with_descendants) {
            hints.read_points = Some(intersect(hints.read_points.take(), expanded));
        }
        if let Some(expanded) = strings(&self.business_locations_with_descendants) {
            hints.business_locations = Some(intersect(hints.business_locations.take(), expanded));
        }
        for (field, patterns) in &self.epc_matches {
            let exact: Vec<String> = patterns
                .iter()
                .filter_map(|pattern| match pattern {
                    EpcPattern::Exact(id) => Some(id.as_str().to_owned()),
                    EpcPattern::AnyOfGtin(_) => None,
                })
                .collect();
            if exact.len() == patterns.len() {
                hints.identifiers.push((field.roles(), exact));
            } else if exact.is_empty() {
                let gtins = patterns
                    .iter()
                    .filter_map(|pattern| match pattern {
                        EpcPattern::AnyOfGtin(gtin) => Some(gtin.clone()),
                        EpcPattern::Exact(_) => None,
                    })
                    .collect();
                hints.gtins.push((field.roles(), gtins));
            }
        }
        hints
    }
}

fn intersect(existing: Option<Vec<String>>, more: Vec<String>) -> Vec<String> {
    match existing {
        None => more,
        Some(existing) => existing.into_iter().filter(|value| more.contains(value)).collect(),
    }
}

impl SensorValueFilter {
    fn matches(&self, report: &SensorReport) -> bool {
        let (Some(value), Some(unit)) = (self.field.of(report), report.unit_of_measure.as_deref()) else {
            return false;
        };
        let converted = match unit == self.unit {
            true => Some(value),
            false => units::convert(value, unit, &self.unit),
        };
        converted.is_some_and(|value| {
            let tolerance = 1e-9 * value.abs().max(1.0);
            match self.comparison {
                Comparison::Equal => (value - self.bound).abs() <= tolerance,
                other => other.numbers(value, self.bound),
            }
        })
    }
}

impl FieldFilter {
    fn matches(&self, event: &Event) -> bool {
        let mut lists: Vec<&[ExtensionField]> = Vec::new();
        match self.scope {
            FieldScope::TopLevel => {
                lists.push(&event.extensions);
                for location in event.read_point.iter().chain(event.business_location.iter()) {
                    lists.push(&location.extensions);
                }
            }
            FieldScope::Ilmd => lists.extend(event.instance_lot_master_data.as_deref()),
            FieldScope::ErrorDeclaration => {
                lists.extend(event.error_declaration.as_ref().map(|declaration| declaration.extensions.as_slice()))
            }
            FieldScope::SensorElement => {
                lists.extend(event.sensor_element_list.iter().map(|element| element.extensions.as_slice()))
            }
            FieldScope::SensorMetadata => lists.extend(
                event
                    .sensor_element_list
                    .iter()
                    .filter_map(|element| element.metadata.as_ref())
                    .map(|m| m.extensions.as_slice()),
            ),
            FieldScope::SensorReport => lists.extend(
                event
                    .sensor_element_list
                    .iter()
                    .flat_map(|element| element.reports.iter())
                    .map(|r| r.extensions.as_slice()),
            ),
        }
        let mut values = Vec::new();
        for list in lists {
            for field in list {
                match self.inner {
                    false
                        if field.name.local_name == self.local_name
                            && self.namespaces.contains(&field.name.namespace) =>
                    {
                        values.push(&field.value)
                    }
                    false => {}
                    true => collect_inner(&field.value, &self.namespaces, &self.local_name, &mut values),
                }
            }
        }
        match &self.test {
            FieldTest::Exists => !values.is_empty(),
            FieldTest::Compare(comparison, wanted) => values.iter().any(|value| {
                let mut leaves = Vec::new();
                leaf_texts(value, &mut leaves);
                leaves.iter().any(|leaf| wanted.iter().any(|wanted| compare_text(leaf, wanted, *comparison)))
            }),
        }
    }
}

/// Finds the fields of one expanded name at any depth inside structured values (`INNER_`).
fn collect_fields<'a>(
    fields: &'a [ExtensionField],
    namespaces: &[String],
    local_name: &str,
    found: &mut Vec<&'a ExtensionValue>,
) {
    for field in fields {
        if field.name.local_name == local_name && namespaces.contains(&field.name.namespace) {
            found.push(&field.value);
        }
        collect_inner(&field.value, namespaces, local_name, found);
    }
}

fn collect_inner<'a>(
    value: &'a ExtensionValue,
    namespaces: &[String],
    local_name: &str,
    found: &mut Vec<&'a ExtensionValue>,
) {
    match value {
        ExtensionValue::Object(fields) => collect_fields(fields, namespaces, local_name, found),
        ExtensionValue::Array(items) => {
            for item in items {
                collect_inner(item, namespaces, local_name, found);
            }
        }
        _ => {}
    }
}

fn leaf_texts(value: &ExtensionValue, leaves: &mut Vec<String>) {
    match value {
        ExtensionValue::Array(items) => items.iter().for_each(|item| leaf_texts(item, leaves)),
        ExtensionValue::Object(_) => {}
        leaf => leaves.extend(leaf.leaf_text()),
    }
}

/// Compares a stored value with a query value: as numbers when both are numbers, as instants
/// when both are times, else (equality only) as text.
fn compare_text(stored: &str, wanted: &str, comparison: Comparison) -> bool {
    if let (Some(left), Some(right)) = (parse_number(stored), parse_number(wanted)) {
        return comparison.numbers(left, right);
    }
    if let (Ok(left), Ok(right)) = (Timestamp::parse(stored), Timestamp::parse(wanted)) {
        return comparison.holds(left.cmp(&right));
    }
    comparison == Comparison::Equal && stored == wanted
}

fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|value| value.is_finite())
}

/// Business transaction, source and destination ids may be any URI; GS1 keys are normalised.
fn parse_loose_identifier(text: &str) -> Identifier {
    Identifier::parse(text).unwrap_or_else(|_| Identifier::unchecked(text))
}

/// Splits a URL query parameter value: EPCIS lists are pipe-delimited.
pub fn url_parameter(name: &str, value: &str) -> (String, ParameterValue) {
    let value = match value.contains('|') {
        true => ParameterValue::List(value.split('|').map(str::to_owned).collect()),
        false => ParameterValue::Scalar(value.to_owned()),
    };
    (name.to_owned(), value)
}

/// Reads the parameters of a named query's JSON body (`query-schema.json`): arrays become lists,
/// numbers and strings scalars; `@context` gives user prefixes, added to `prefixes`.
pub fn json_parameters(
    body: &serde_json::Value,
    prefixes: &mut PrefixMap,
) -> Result<Vec<(String, ParameterValue)>, QueryParameterError> {
    let object = body.as_object().ok_or_else(|| refuse("", "a query is a JSON object"))?;
    let mut parameters = Vec::new();
    for (name, value) in object {
        if name == "@context" {
            read_context(value, prefixes);
            continue;
        }
        let scalar = |value: &serde_json::Value| match value {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            serde_json::Value::Bool(value) => Some(value.to_string()),
            serde_json::Value::Null => Some(String::new()),
            _ => None,
        };
        let parameter = match value {
            serde_json::Value::Array(items) => ParameterValue::List(
                items
                    .iter()
                    .map(|item| scalar(item).ok_or_else(|| refuse(name, "list items are strings or numbers")))
                    .collect::<Result<_, _>>()?,
            ),
            other => {
                ParameterValue::Scalar(scalar(other).ok_or_else(|| refuse(name, "expects a string, number or list"))?)
            }
        };
        parameters.push((name.clone(), parameter));
    }
    Ok(parameters)
}

fn read_context(value: &serde_json::Value, prefixes: &mut PrefixMap) {
    match value {
        serde_json::Value::Array(items) => items.iter().for_each(|item| read_context(item, prefixes)),
        serde_json::Value::Object(map) => {
            for (prefix, iri) in map {
                if let Some(iri) = iri.as_str() {
                    let entry = prefixes.entry(prefix.clone()).or_default();
                    if !entry.iter().any(|known| known == iri) {
                        entry.push(iri.to_owned());
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#""@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{"ex":"https://ns.example.com/"}],"eventTimeZoneOffset":"+01:00""#;

    fn event(body: &str) -> Event {
        let mut event = crate::parse_json_event(&format!("{{{HEAD},{body}}}")).expect("valid event");
        event.record_time = Timestamp::parse("2024-03-01T00:00:00Z").ok();
        event
    }

    fn query(text: &str) -> Result<EventQuery, QueryParameterError> {
        let mut prefixes = PrefixMap::new();
        prefixes.insert("ex".into(), vec!["https://ns.example.com/".into()]);
        let parameters: Vec<_> = text
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                url_parameter(name, value)
            })
            .collect();
        EventQuery::parse(&parameters, &prefixes)
    }

    /// Each case: a query and whether it matches the sample events a, b, c.
    #[test]
    fn parameter_families_select_the_right_events() {
        let a = event(
            r#""type":"ObjectEvent","eventTime":"2024-01-10T10:00:00Z","action":"OBSERVE","bizStep":"shipping","disposition":"in_transit",
            "epcList":["urn:epc:id:sgtin:4012345.011111.1001"],"readPoint":{"id":"urn:epc:id:sgln:4012345.00001.0"},
            "bizTransactionList":[{"type":"po","bizTransaction":"urn:epcglobal:cbv:bt:4012345000009:PO1"}],
            "sourceList":[{"type":"location","source":"urn:epc:id:sgln:4012345.00001.0"}],
            "ex:temperatureZone":"chilled","ex:count":7"#,
        );
        let b = event(
            r#""type":"ObjectEvent","eventTime":"2024-02-10T10:00:00Z","action":"ADD","bizStep":"commissioning",
            "quantityList":[{"epcClass":"urn:epc:class:lgtin:4012345.011111.LOT7","quantity":12.5,"uom":"KGM"}],
            "ilmd":{"ex:harvest":"2024-02-01"},
            "sensorElementList":[{"sensorMetadata":{"deviceID":"urn:epc:id:giai:4000001.111"},
              "sensorReport":[{"type":"Temperature","value":275.15,"uom":"KEL"}]}]"#,
        );
        let c = event(
            r#""type":"AggregationEvent","eventTime":"2024-03-10T10:00:00Z","action":"ADD",
            "parentID":"urn:epc:id:sscc:4012345.0000000001","childEPCs":["urn:epc:id:sgtin:4012345.011111.1002"],
            "errorDeclaration":{"declarationTime":"2024-03-11T00:00:00Z","reason":"incorrect_data"}"#,
        );
        let cases: &[(&str, [bool; 3])] = &[
            ("", [true, true, true]),
            ("eventType=ObjectEvent", [true, true, false]),
            ("eventType=AggregationEvent|TransformationEvent", [false, false, true]),
            ("GE_eventTime=2024-02-01T00:00:00Z", [false, true, true]),
            ("LT_eventTime=2024-02-10T10:00:00Z", [true, false, false]),
            ("GE_recordTime=2024-03-01T00:00:00Z", [true, true, true]),
            ("LT_recordTime=2024-03-01T00:00:00Z", [false, false, false]),
            ("EQ_action=ADD", [false, true, true]),
            ("EQ_bizStep=shipping", [true, false, false]),
            ("EQ_bizStep=urn:epcglobal:cbv:bizstep:commissioning", [false, true, false]),
            ("EQ_disposition=in_transit", [true, false, false]),
            ("EQ_readPoint=https://id.gs1.org/414/4012345000016", [true, false, false]),
            ("MATCH_epc=urn:epc:id:sgtin:4012345.011111.1001", [true, false, false]),
            ("MATCH_epc=urn:epc:id:sgtin:4012345.011111.1002", [false, false, true]),
            ("MATCH_epc=urn:epc:idpat:sgtin:4012345.011111.*", [true, false, true]),
            ("MATCH_parentID=urn:epc:id:sscc:4012345.0000000001", [false, false, true]),
            ("MATCH_anyEPC=urn:epc:id:sscc:4012345.0000000001", [false, false, true]),
            ("MATCH_epcClass=urn:epc:class:lgtin:4012345.011111.LOT7", [false, true, false]),
            ("MATCH_anyEPCClass=urn:epc:idpat:sgtin:4012345.011111.*", [false, true, false]),
            ("GT_quantity=12", [false, true, false]),
            ("LE_quantity=12", [false, false, false]),
            ("EQ_quantity=12.5", [false, true, false]),
            ("EXISTS_errorDeclaration", [false, false, true]),
            ("EQ_errorReason=incorrect_data", [false, false, true]),
            ("GE_errorDeclarationTime=2024-03-12T00:00:00Z", [false, false, false]),
            ("EQ_bizTransaction_po=urn:epcglobal:cbv:bt:4012345000009:PO1", [true, false, false]),
            ("EQ_source_location=urn:epc:id:sgln:4012345.00001.0", [true, false, false]),
            ("EXISTS_sensorElementList", [false, true, false]),
            ("EQ_type=Temperature", [false, true, false]),
            ("GE_value_CEL=1.9&LT_value_CEL=2.1", [false, true, false]),
            ("GT_value_CEL=2.5", [false, false, false]),
            ("EQ_deviceID=urn:epc:id:giai:4000001.111", [false, true, false]),
            ("EQ_ex:temperatureZone=chilled", [true, false, false]),
            ("GT_ex:count=6", [true, false, false]),
            ("EXISTS_ex:count", [true, false, false]),
            ("EQ_ILMD_ex:harvest=2024-02-01", [false, true, false]),
            ("EXISTS_ILMD_ex:harvest&EQ_action=OBSERVE", [false, false, false]),
            ("EXISTS_INNER_ex:count", [false, false, false]),
            ("orderDirection=ASC", [true, true, true]),
        ];
        for (text, expected) in cases {
            let query = query(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            let actual = [query.matches(&a), query.matches(&b), query.matches(&c)];
            assert_eq!(&actual, expected, "query {text}");
        }
    }

    #[test]
    fn bad_parameters_are_refused_with_their_name() {
        let cases: &[(&str, &str)] = &[
            ("EQ_action=MOVE", "EQ_action"),
            ("GE_eventTime=yesterday", "GE_eventTime"),
            ("EQ_bizStep=flying", "EQ_bizStep"),
            ("MATCH_epc=urn:epc:id:sgtin:4012345.011111", "MATCH_epc"),
            ("MATCH_color=red", "MATCH_color"),
            ("eventCountLimit=3", "eventCountLimit"),
            ("orderBy=eventTime&eventCountLimit=3&maxEventCount=4", "eventCountLimit"),
            ("orderBy=ex:count", "orderBy"),
            ("EQ_other:field=1", "EQ_other:field"),
            ("MATCH_epc=urn:epc:idpat:sscc:4012345.*", "MATCH_epc"),
            ("GE_value_XYZ=1", "GE_value_XYZ"),
            ("frobnicate=1", "frobnicate"),
        ];
        for (text, parameter) in cases {
            match query(text) {
                Ok(_) => panic!("{text} was accepted"),
                Err(error) => assert_eq!(error.parameter, *parameter, "{text}: {error}"),
            }
        }
    }

    #[test]
    fn hints_select_a_superset() {
        let query = query("MATCH_epc=urn:epc:id:sgtin:4012345.011111.1001&EQ_bizStep=shipping").expect("query");
        let hints = query.index_hints();
        assert_eq!(
            hints.identifiers,
            vec![(EpcField::Epc.roles(), vec!["https://id.gs1.org/01/04012345111118/21/1001".to_owned()])]
        );
        assert_eq!(hints.business_steps, Some(vec!["https://ref.gs1.org/cbv/BizStep-shipping".to_owned()]));
    }

    #[test]
    fn with_descendants_follows_the_hierarchy() {
        let mut query = query("WD_bizLocation=urn:epc:id:sgln:4012345.00001.0").expect("query");
        let parent = "https://id.gs1.org/414/4012345000016";
        let child = "https://id.gs1.org/414/4012345000016/254/1";
        query.expand_hierarchy(&|id| if id == parent { vec![child.to_owned()] } else { Vec::new() }).expect("small");
        let located = event(&format!(
            r#""type":"ObjectEvent","eventTime":"2024-01-10T10:00:00Z","action":"OBSERVE","epcList":[],"bizLocation":{{"id":"{child}"}}"#
        ));
        assert!(query.matches(&located));
        assert_eq!(query.index_hints().business_locations, Some(vec![parent.to_owned(), child.to_owned()]));
    }
}
