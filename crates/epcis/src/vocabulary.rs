//! CBV 2.0 standard vocabularies and the normalisation of their values.
//!
//! A standard value may arrive in three forms: a bare string (`receiving`, the JSON-LD form),
//! an EPCIS 1.x URN (`urn:epcglobal:cbv:bizstep:receiving`) or a Web URI
//! (`https://ref.gs1.org/cbv/BizStep-receiving`, also as the CURIE `cbv:BizStep-receiving`).
//! All three normalise to the Web URI; a user vocabulary value must be an absolute URI and is
//! kept as it is.

use std::fmt;

/// The CBV Web URI base.
pub const CBV_BASE: &str = "https://ref.gs1.org/cbv/";
/// The GS1 Web Vocabulary base (measurement types, sensor alert types).
pub const GS1_VOCABULARY_BASE: &str = "https://gs1.org/voc/";

/// The standard vocabularies an event field draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VocabularyKind {
    BusinessStep,
    Disposition,
    BusinessTransactionType,
    SourceDestinationType,
    ErrorReason,
    Component,
}

impl VocabularyKind {
    /// The term prefix of the Web URI, e.g. `BizStep-`.
    pub fn web_prefix(self) -> &'static str {
        match self {
            VocabularyKind::BusinessStep => "BizStep-",
            VocabularyKind::Disposition => "Disp-",
            VocabularyKind::BusinessTransactionType => "BTT-",
            VocabularyKind::SourceDestinationType => "SDT-",
            VocabularyKind::ErrorReason => "ER-",
            VocabularyKind::Component => "Comp-",
        }
    }

    /// The EPCIS 1.x URN prefix, if the vocabulary had one.
    pub fn urn_prefix(self) -> Option<&'static str> {
        match self {
            VocabularyKind::BusinessStep => Some("urn:epcglobal:cbv:bizstep:"),
            VocabularyKind::Disposition => Some("urn:epcglobal:cbv:disp:"),
            VocabularyKind::BusinessTransactionType => Some("urn:epcglobal:cbv:btt:"),
            VocabularyKind::SourceDestinationType => Some("urn:epcglobal:cbv:sdt:"),
            VocabularyKind::ErrorReason => Some("urn:epcglobal:cbv:er:"),
            VocabularyKind::Component => None,
        }
    }

    /// The standard terms of CBV 2.0.
    pub fn terms(self) -> &'static [&'static str] {
        match self {
            VocabularyKind::BusinessStep => BUSINESS_STEPS,
            VocabularyKind::Disposition => DISPOSITIONS,
            VocabularyKind::BusinessTransactionType => BUSINESS_TRANSACTION_TYPES,
            VocabularyKind::SourceDestinationType => SOURCE_DESTINATION_TYPES,
            VocabularyKind::ErrorReason => ERROR_REASONS,
            VocabularyKind::Component => COMPONENTS,
        }
    }

    /// The field name, for messages.
    pub fn field_name(self) -> &'static str {
        match self {
            VocabularyKind::BusinessStep => "bizStep",
            VocabularyKind::Disposition => "disposition",
            VocabularyKind::BusinessTransactionType => "business transaction type",
            VocabularyKind::SourceDestinationType => "source/destination type",
            VocabularyKind::ErrorReason => "error reason",
            VocabularyKind::Component => "component",
        }
    }
}

pub const BUSINESS_STEPS: &[&str] = &[
    "accepting",
    "arriving",
    "assembling",
    "collecting",
    "commissioning",
    "consigning",
    "creating_class_instance",
    "cycle_counting",
    "decommissioning",
    "departing",
    "destroying",
    "disassembling",
    "dispensing",
    "encoding",
    "entering_exiting",
    "holding",
    "inspecting",
    "installing",
    "killing",
    "loading",
    "other",
    "packing",
    "picking",
    "receiving",
    "removing",
    "repackaging",
    "repairing",
    "replacing",
    "reserving",
    "retail_selling",
    "sampling",
    "sensor_reporting",
    "shipping",
    "staging_outbound",
    "stock_taking",
    "stocking",
    "storing",
    "transporting",
    "unloading",
    "unpacking",
    "void_shipping",
];

pub const DISPOSITIONS: &[&str] = &[
    "active",
    "available",
    "completeness_inferred",
    "completeness_verified",
    "conformant",
    "container_closed",
    "container_open",
    "damaged",
    "destroyed",
    "dispensed",
    "disposed",
    "encoded",
    "expired",
    "in_progress",
    "in_transit",
    "inactive",
    "mismatch_class",
    "mismatch_instance",
    "mismatch_quantity",
    "needs_replacement",
    "no_pedigree_match",
    "non_conformant",
    "non_sellable_other",
    "partially_dispensed",
    "recalled",
    "reserved",
    "retail_sold",
    "returned",
    "sellable_accessible",
    "sellable_not_accessible",
    "stolen",
    "unavailable",
    "unknown",
];

pub const BUSINESS_TRANSACTION_TYPES: &[&str] = &[
    "bol",
    "cert",
    "desadv",
    "inv",
    "pedigree",
    "po",
    "poc",
    "prodorder",
    "recadv",
    "rma",
    "testprd",
    "testres",
    "upevt",
];

pub const SOURCE_DESTINATION_TYPES: &[&str] = &["location", "owning_party", "possessing_party"];

pub const ERROR_REASONS: &[&str] = &["did_not_occur", "incorrect_data"];

pub const COMPONENTS: &[&str] = &[
    "altitude",
    "axial_distance",
    "azimuth",
    "easting",
    "elevation_angle",
    "height",
    "latitude",
    "longitude",
    "northing",
    "polar_angle",
    "spherical_radius",
    "x",
    "y",
    "z",
];

/// Sensor alert types of the GS1 Web Vocabulary.
pub const SENSOR_ALERT_TYPES: &[&str] = &["ALARM_CONDITION", "ERROR_CONDITION"];

/// A vocabulary value in its normalised form (the Web URI for standard terms).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VocabularyValue(String);

impl VocabularyValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bare term when the value is a standard term of `kind`, e.g. `receiving`.
    pub fn standard_term(&self, kind: VocabularyKind) -> Option<&str> {
        let term = self.0.strip_prefix(CBV_BASE)?.strip_prefix(kind.web_prefix())?;
        kind.terms().contains(&term).then_some(term)
    }

    /// The JSON-LD form: the bare term for a standard value, the URI otherwise.
    pub fn json_form(&self, kind: VocabularyKind) -> &str {
        self.standard_term(kind).unwrap_or(&self.0)
    }
}

impl fmt::Display for VocabularyValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Why a value is not acceptable for its vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabularyError {
    #[error(
        "{value:?} is not a standard {field} of CBV 2.0 (rule: a bare term must be one of the standard values, a user value must be an absolute URI)"
    )]
    UnknownTerm { field: &'static str, value: String },
    #[error("{field} is empty")]
    Empty { field: &'static str },
}

/// Normalises a vocabulary value of `kind`.
pub fn normalise(kind: VocabularyKind, text: &str) -> Result<VocabularyValue, VocabularyError> {
    let text = text.trim();
    let field = kind.field_name();
    if text.is_empty() {
        return Err(VocabularyError::Empty { field });
    }
    let unknown = || VocabularyError::UnknownTerm { field, value: text.to_owned() };
    let standard = |term: &str| match kind.terms().contains(&term) {
        true => Ok(VocabularyValue(format!("{CBV_BASE}{}{term}", kind.web_prefix()))),
        false => Err(unknown()),
    };
    if let Some(term) = kind.urn_prefix().and_then(|prefix| text.strip_prefix(prefix)) {
        return standard(term);
    }
    let web_term = text
        .strip_prefix(CBV_BASE)
        .or_else(|| text.strip_prefix("cbv:"))
        .and_then(|rest| rest.strip_prefix(kind.web_prefix()));
    if let Some(term) = web_term {
        return standard(term);
    }
    if text.starts_with(CBV_BASE) || text.starts_with("urn:epcglobal:cbv:") {
        // A CBV namespace URI of another vocabulary or an unknown term.
        return Err(unknown());
    }
    if crate::identifier::is_absolute_uri(text) {
        return Ok(VocabularyValue(text.to_owned()));
    }
    standard(text)
}

/// Expands a GS1 Web Vocabulary term (measurement type, sensor alert type): a bare term or
/// `gs1:` CURIE becomes `https://gs1.org/voc/…`; any other URI is kept.
pub fn expand_gs1_term(text: &str) -> String {
    let text = text.trim();
    if let Some(term) = text.strip_prefix("gs1:") {
        return format!("{GS1_VOCABULARY_BASE}{term}");
    }
    if let Some(term) = text.strip_prefix("cbv:") {
        return format!("{CBV_BASE}{term}");
    }
    match crate::identifier::is_absolute_uri(text) {
        true => text.to_owned(),
        false => format!("{GS1_VOCABULARY_BASE}{text}"),
    }
}

/// The JSON-LD form of a GS1 Web Vocabulary term: bare when in the GS1 namespace.
pub fn compact_gs1_term(uri: &str) -> &str {
    match uri.strip_prefix(GS1_VOCABULARY_BASE) {
        Some(term) if !term.contains(['/', '#', ':']) => term,
        _ => uri,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: VocabularyKind, input: &str, expected: &str) {
        let actual = match normalise(kind, input) {
            Ok(value) => value.as_str().to_owned(),
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(actual, expected, "input {input}");
    }

    #[test]
    fn three_forms_normalise_to_the_web_uri() {
        let expected = "https://ref.gs1.org/cbv/BizStep-receiving";
        check(VocabularyKind::BusinessStep, "receiving", expected);
        check(VocabularyKind::BusinessStep, "urn:epcglobal:cbv:bizstep:receiving", expected);
        check(VocabularyKind::BusinessStep, expected, expected);
        check(VocabularyKind::BusinessStep, "cbv:BizStep-receiving", expected);
        check(VocabularyKind::Disposition, "in_transit", "https://ref.gs1.org/cbv/Disp-in_transit");
        check(VocabularyKind::BusinessTransactionType, "urn:epcglobal:cbv:btt:po", "https://ref.gs1.org/cbv/BTT-po");
    }

    #[test]
    fn user_values_are_uris() {
        check(
            VocabularyKind::BusinessStep,
            "http://epcis.example.com/user/vocab/bizstep/exampling",
            "http://epcis.example.com/user/vocab/bizstep/exampling",
        );
        check(
            VocabularyKind::BusinessStep,
            "sleeping",
            "error: \"sleeping\" is not a standard bizStep of CBV 2.0 (rule: a bare term must be one of the standard values, a user value must be an absolute URI)",
        );
        assert!(normalise(VocabularyKind::Disposition, "urn:epcglobal:cbv:disp:nap").is_err());
    }

    #[test]
    fn json_form_is_bare_for_standard_terms() {
        let value = normalise(VocabularyKind::BusinessStep, "shipping").unwrap();
        assert_eq!(value.json_form(VocabularyKind::BusinessStep), "shipping");
        assert_eq!(expand_gs1_term("Temperature"), "https://gs1.org/voc/Temperature");
        assert_eq!(compact_gs1_term("https://gs1.org/voc/Temperature"), "Temperature");
    }
}
