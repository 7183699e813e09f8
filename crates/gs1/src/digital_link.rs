//! GS1 Digital Link URIs (GS1 Digital Link Standard: URI Syntax 1.x).
//!
//! `https://example.com/any/stem/01/09506000134352/10/ABC123/21/XYZ?17=261231&linkType=gs1:pip`:
//! any domain and path stem, then a primary key and its key qualifiers in the order the standard
//! gives, then GS1 data attributes (and other parameters) in the query string.

use std::fmt;

use crate::application_identifier::{self, ApplicationIdentifierDefinition};
use crate::element_string::{Element, ElementString, ElementStringError, INPUT_LENGTH_MAXIMUM};
use crate::keys::Gtin;
use crate::percent_encoding;

/// The canonical GS1 resolver, the domain of canonical and CBV-constrained URIs.
pub const CANONICAL_RESOLVER: &str = "https://id.gs1.org";

/// The most query parameters one URI may carry (data attributes and others).
pub const QUERY_PARAMETER_COUNT_MAXIMUM: usize = 64;

/// Why a URI is not a valid GS1 Digital Link URI; each message names the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigitalLinkError {
    #[error("URI is empty")]
    Empty,
    #[error("URI has {found} bytes, more than the limit of {maximum}")]
    TooLong { maximum: usize, found: usize },
    #[error("character {found:?} at position {position} is not allowed in a URI (rule: RFC 3986, percent-encode it)")]
    InvalidCharacter { position: usize, found: char },
    #[error("malformed percent-encoding at position {position} (rule: '%' is followed by two hex digits of UTF-8)")]
    InvalidPercentEncoding { position: usize },
    #[error("scheme must be http or https, found {found:?} (rule: a GS1 Digital Link URI is an HTTP(S) URI)")]
    Scheme { found: String },
    #[error("URI has no host (rule: a GS1 Digital Link URI names a domain)")]
    MissingHost,
    #[error(
        "path holds no GS1 primary key (rule: the path ends with /<primary key AI>/<value> and its key qualifiers)"
    )]
    NoPrimaryKey,
    #[error("path must not end with '/' (rule: the path ends with a key or key qualifier value)")]
    TrailingSlash,
    #[error("({qualifier}) is not a key qualifier of ({primary_key}) (rule: allowed key qualifiers are {allowed})")]
    QualifierNotAllowed { primary_key: &'static str, qualifier: &'static str, allowed: String },
    #[error("({qualifier}) is out of order (rule: key qualifiers of ({primary_key}) follow the order {allowed})")]
    QualifierOrder { primary_key: &'static str, qualifier: &'static str, allowed: String },
    #[error("query parameter {key:?} is numeric but not a GS1 Application Identifier")]
    UnknownApplicationIdentifier { key: String },
    #[error(
        "({code}) may not be a query string data attribute (rule: only AIs marked as Digital Link data attributes)"
    )]
    NotDataAttribute { code: &'static str },
    #[error("({code}) appears both in the path and in the query string (rule: an AI appears once)")]
    AttributeRepeatsPath { code: &'static str },
    #[error("more than {maximum} query parameters")]
    TooManyParameters { maximum: usize },
    #[error("{0}")]
    Element(#[from] ElementStringError),
    #[error(
        "not the CBV 2.0 constrained form, expected {expected:?} (rule: https://id.gs1.org, finest key only, no query, no trailing slash)"
    )]
    NotConstrainedForm { expected: String },
}

/// A valid GS1 Digital Link URI: the resolver (scheme, host and path stem) and an element string
/// whose first element is the primary key, followed by its key qualifiers and the data attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalLink {
    resolver: String,
    element_string: ElementString,
    qualifier_count: usize,
    other_parameters: Vec<(String, String)>,
}

impl DigitalLink {
    /// Builds a Digital Link from a primary key, its qualifiers (checked against the qualifier
    /// sequences) and data attributes; the resolver is [`CANONICAL_RESOLVER`].
    pub fn new(
        primary_key: Element,
        qualifiers: Vec<Element>,
        attributes: Vec<Element>,
    ) -> Result<DigitalLink, DigitalLinkError> {
        let primary_key_definition = primary_key.definition();
        if primary_key_definition.digital_link_primary_key.is_none() {
            return Err(DigitalLinkError::NoPrimaryKey);
        }
        check_qualifiers(primary_key_definition, &qualifiers)?;
        for attribute in &attributes {
            if !attribute.definition().digital_link_data_attribute {
                return Err(DigitalLinkError::NotDataAttribute { code: attribute.code() });
            }
            let in_path = attribute.code() == primary_key.code()
                || qualifiers.iter().any(|qualifier| qualifier.code() == attribute.code());
            if in_path {
                return Err(DigitalLinkError::AttributeRepeatsPath { code: attribute.code() });
            }
        }
        let qualifier_count = qualifiers.len();
        let mut elements = Vec::with_capacity(1 + qualifiers.len() + attributes.len());
        elements.push(primary_key);
        elements.extend(qualifiers);
        elements.extend(attributes);
        let element_string = ElementString::new(elements)?;
        Ok(DigitalLink {
            resolver: CANONICAL_RESOLVER.to_owned(),
            element_string,
            qualifier_count,
            other_parameters: Vec::new(),
        })
    }

    /// Parses a Digital Link URI with any domain and path stem.
    pub fn parse(uri: &str) -> Result<DigitalLink, DigitalLinkError> {
        check_uri_characters(uri)?;
        let without_fragment = uri.split_once('#').map_or(uri, |(before, _)| before);
        let (before_query, query) = match without_fragment.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (without_fragment, None),
        };
        let Some((scheme, rest)) = before_query.split_once("://") else {
            let found = before_query.split(':').next().unwrap_or("");
            let is_web_scheme = found.eq_ignore_ascii_case("http") || found.eq_ignore_ascii_case("https");
            return Err(match is_web_scheme {
                true => DigitalLinkError::MissingHost,
                false => DigitalLinkError::Scheme { found: found.to_owned() },
            });
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(DigitalLinkError::Scheme { found: scheme.to_owned() });
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |slash| rest.split_at(slash));
        if authority.is_empty() {
            return Err(DigitalLinkError::MissingHost);
        }
        if path.len() <= 1 {
            return Err(DigitalLinkError::NoPrimaryKey);
        }
        if path.ends_with('/') {
            return Err(DigitalLinkError::TrailingSlash);
        }
        let segments: Vec<&str> = path[1..].split('/').collect();
        let (stem_length, pairs) = find_key_path(&segments)?;
        let mut resolver = format!("{}://{}", scheme.to_ascii_lowercase(), authority);
        for segment in &segments[..stem_length] {
            resolver.push('/');
            resolver.push_str(segment);
        }
        let mut path_elements = Vec::with_capacity(pairs.len());
        for (definition, raw_value) in pairs {
            path_elements.push(element_from_uri(definition, raw_value)?);
        }
        let primary_key = path_elements.remove(0);
        let (attributes, other_parameters) = parse_query(query.unwrap_or(""))?;
        let mut link = DigitalLink::new(primary_key, path_elements, attributes)?;
        link.resolver = resolver;
        link.other_parameters = other_parameters;
        Ok(link)
    }

    /// Parses the constrained form CBV 2.0 requires inside EPCIS events: `https://id.gs1.org`,
    /// the finest key only, no query, no fragment, no trailing slash, GTIN-14.
    pub fn parse_constrained(uri: &str) -> Result<DigitalLink, DigitalLinkError> {
        let link = DigitalLink::parse(uri)?;
        let expected = link.constrained_uri();
        match expected == uri {
            true => Ok(link),
            false => Err(DigitalLinkError::NotConstrainedForm { expected }),
        }
    }

    /// Converts an element string: the first AI that is a Digital Link primary key becomes the
    /// key, the present qualifiers of its longest matching sequence follow it, every other AI must
    /// be a data attribute. Identical repeated elements are kept once.
    pub fn from_element_string(element_string: &ElementString) -> Result<DigitalLink, DigitalLinkError> {
        let elements = element_string.elements();
        let primary_key_index = elements
            .iter()
            .position(|element| element.definition().digital_link_primary_key.is_some())
            .ok_or(DigitalLinkError::NoPrimaryKey)?;
        let primary_key = &elements[primary_key_index];
        let sequences = primary_key.definition().digital_link_primary_key.unwrap_or(&[]);
        let present = |code: &str| elements.iter().find(|element| element.code() == code);
        let best_sequence = sequences
            .iter()
            .max_by_key(|sequence| {
                let count = sequence.iter().filter(|code| present(code).is_some()).count();
                // Prefer the earlier sequence on ties: max_by_key keeps the last maximum.
                (count, usize::MAX - sequences.iter().position(|other| other == *sequence).unwrap_or(0))
            })
            .copied()
            .unwrap_or(&[]);
        let qualifiers: Vec<Element> = best_sequence.iter().filter_map(|code| present(code).cloned()).collect();
        let mut attributes: Vec<Element> = Vec::new();
        for element in elements {
            let in_path = element.code() == primary_key.code()
                || qualifiers.iter().any(|qualifier| qualifier.code() == element.code());
            let already = attributes.iter().any(|attribute| attribute == element);
            if !in_path && !already {
                attributes.push(element.clone());
            }
        }
        DigitalLink::new(primary_key.clone(), qualifiers, attributes)
    }

    /// The primary key, qualifiers and data attributes as one element string.
    pub fn to_element_string(&self) -> ElementString {
        self.element_string.clone()
    }

    /// Scheme, host and path stem, e.g. `https://example.com/products`.
    pub fn resolver(&self) -> &str {
        &self.resolver
    }

    pub fn primary_key(&self) -> &Element {
        &self.element_string.elements()[0]
    }

    pub fn qualifiers(&self) -> &[Element] {
        &self.element_string.elements()[1..1 + self.qualifier_count]
    }

    /// The GS1 data attributes of the query string.
    pub fn attributes(&self) -> &[Element] {
        &self.element_string.elements()[1 + self.qualifier_count..]
    }

    /// Query parameters that are not AIs (e.g. `linkType`), decoded.
    pub fn other_parameters(&self) -> &[(String, String)] {
        &self.other_parameters
    }

    /// The GTIN, if the primary key is AI (01).
    pub fn gtin(&self) -> Option<Gtin> {
        match self.primary_key().code() {
            "01" => Gtin::parse(self.primary_key().value()).ok(),
            _ => None,
        }
    }

    /// The path of the primary key and its qualifiers, `/01/09506000134352/10/ABC`.
    pub fn key_path(&self) -> String {
        path_of(std::iter::once(self.primary_key()).chain(self.qualifiers()))
    }

    /// The data attributes as a query string without `?`, e.g. `17=261231&3103=000195`.
    pub fn attribute_query(&self) -> String {
        let mut parts: Vec<String> = self
            .attributes()
            .iter()
            .map(|attribute| format!("{}={}", attribute.code(), percent_encoding::encode(attribute.value())))
            .collect();
        parts.extend(
            self.other_parameters
                .iter()
                .map(|(key, value)| format!("{}={}", percent_encoding::encode(key), percent_encoding::encode(value))),
        );
        parts.join("&")
    }

    /// The canonical form: `https://id.gs1.org`, the key path with a GTIN-14, no query.
    pub fn canonical_uri(&self) -> String {
        format!("{CANONICAL_RESOLVER}{}", self.key_path())
    }

    /// The URI at another resolver, e.g. `http://127.0.0.1:8080`, with data attributes.
    pub fn uri(&self, resolver_base: &str) -> String {
        let base = resolver_base.trim_end_matches('/');
        let query = self.attribute_query();
        match query.is_empty() {
            true => format!("{base}{}", self.key_path()),
            false => format!("{base}{}?{query}", self.key_path()),
        }
    }

    /// The constrained form for EPCIS events (CBV 2.0): canonical domain, the finest key only
    /// (for a GTIN: serial if present, else lot, else none; a CPV is dropped), no query.
    pub fn constrained_uri(&self) -> String {
        let primary_key = self.primary_key();
        let qualifiers = self.qualifiers();
        let finest: Vec<&Element> = match primary_key.code() {
            "01" | "8006" => ["21", "235", "10"]
                .iter()
                .find_map(|code| qualifiers.iter().find(|qualifier| qualifier.code() == *code))
                .into_iter()
                .collect(),
            _ => qualifiers.iter().collect(),
        };
        format!("{CANONICAL_RESOLVER}{}", path_of(std::iter::once(primary_key).chain(finest)))
    }
}

impl fmt::Display for DigitalLink {
    /// The URI at its own resolver, with data attributes and other parameters.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.uri(&self.resolver))
    }
}

fn path_of<'a>(elements: impl Iterator<Item = &'a Element>) -> String {
    let mut path = String::new();
    for element in elements {
        path.push('/');
        path.push_str(element.code());
        path.push('/');
        path.push_str(&percent_encoding::encode(element.value()));
    }
    path
}

fn check_uri_characters(uri: &str) -> Result<(), DigitalLinkError> {
    if uri.is_empty() {
        return Err(DigitalLinkError::Empty);
    }
    if uri.len() > INPUT_LENGTH_MAXIMUM {
        return Err(DigitalLinkError::TooLong { maximum: INPUT_LENGTH_MAXIMUM, found: uri.len() });
    }
    let forbidden = |character: char| !character.is_ascii_graphic() || "\"<>\\^`{|}".contains(character);
    match uri.char_indices().find(|(_, character)| forbidden(*character)) {
        Some((position, found)) => Err(DigitalLinkError::InvalidCharacter { position, found }),
        None => Ok(()),
    }
}

/// The number of path stem segments, then the (AI, raw value) pairs from the primary key on.
type KeyPath<'a> = (usize, Vec<(&'static ApplicationIdentifierDefinition, &'a str)>);

/// Finds the primary key by walking the path from its end in (AI, value) pairs; returns the
/// number of stem segments and the pairs from the primary key on.
fn find_key_path<'a>(segments: &[&'a str]) -> Result<KeyPath<'a>, DigitalLinkError> {
    let mut pairs = Vec::new();
    let mut end = segments.len();
    while end >= 2 {
        let code = segments[end - 2];
        let definition = match code.bytes().all(|byte| byte.is_ascii_digit()) {
            true => application_identifier::lookup(code),
            false => None,
        };
        let Some(definition) = definition else { break };
        pairs.push((definition, segments[end - 1]));
        end -= 2;
        if definition.digital_link_primary_key.is_some() {
            pairs.reverse();
            return Ok((end, pairs));
        }
    }
    Err(DigitalLinkError::NoPrimaryKey)
}

fn element_from_uri(
    definition: &'static ApplicationIdentifierDefinition,
    raw_value: &str,
) -> Result<Element, DigitalLinkError> {
    let value = percent_encoding::decode(raw_value)
        .map_err(|position| DigitalLinkError::InvalidPercentEncoding { position })?;
    // GTIN-8, -12 and -13 are accepted and normalised to GTIN-14.
    let is_short_gtin = definition.code == "01" && matches!(value.len(), 8 | 12 | 13);
    let value = match is_short_gtin && value.bytes().all(|byte| byte.is_ascii_digit()) {
        true => format!("{value:0>14}"),
        false => value,
    };
    Ok(Element::with_definition(definition, &value)?)
}

type QueryParts = (Vec<Element>, Vec<(String, String)>);

fn parse_query(query: &str) -> Result<QueryParts, DigitalLinkError> {
    let mut attributes = Vec::new();
    let mut other_parameters = Vec::new();
    for (count, parameter) in query.split('&').filter(|parameter| !parameter.is_empty()).enumerate() {
        if count == QUERY_PARAMETER_COUNT_MAXIMUM {
            return Err(DigitalLinkError::TooManyParameters { maximum: QUERY_PARAMETER_COUNT_MAXIMUM });
        }
        let (raw_key, raw_value) = parameter.split_once('=').unwrap_or((parameter, ""));
        let key = percent_encoding::decode(raw_key)
            .map_err(|position| DigitalLinkError::InvalidPercentEncoding { position })?;
        if !key.is_empty() && key.bytes().all(|byte| byte.is_ascii_digit()) {
            let definition = application_identifier::lookup(&key)
                .ok_or_else(|| DigitalLinkError::UnknownApplicationIdentifier { key: key.clone() })?;
            if !definition.digital_link_data_attribute {
                return Err(DigitalLinkError::NotDataAttribute { code: definition.code });
            }
            attributes.push(element_from_uri(definition, raw_value)?);
        } else {
            let value = percent_encoding::decode(raw_value)
                .map_err(|position| DigitalLinkError::InvalidPercentEncoding { position })?;
            other_parameters.push((key, value));
        }
    }
    Ok((attributes, other_parameters))
}

fn describe_sequences(sequences: &[&[&str]]) -> String {
    let described: Vec<String> = sequences.iter().map(|sequence| sequence.join(", ")).collect();
    match described.is_empty() {
        true => "none".to_owned(),
        false => described.join(" or "),
    }
}

/// Qualifiers must all come from one sequence of the primary key, in that sequence's order.
fn check_qualifiers(
    primary_key: &ApplicationIdentifierDefinition,
    qualifiers: &[Element],
) -> Result<(), DigitalLinkError> {
    let sequences = primary_key.digital_link_primary_key.unwrap_or(&[]);
    let allowed = || describe_sequences(sequences);
    for qualifier in qualifiers {
        if !sequences.iter().any(|sequence| sequence.contains(&qualifier.code())) {
            return Err(DigitalLinkError::QualifierNotAllowed {
                primary_key: primary_key.code,
                qualifier: qualifier.code(),
                allowed: allowed(),
            });
        }
    }
    let fits = |sequence: &&[&str]| {
        let mut next_index = 0;
        qualifiers.iter().all(|qualifier| {
            match sequence[next_index..].iter().position(|code| *code == qualifier.code()) {
                Some(offset) => {
                    next_index += offset + 1;
                    true
                }
                None => false,
            }
        })
    };
    if qualifiers.is_empty() || sequences.iter().any(fits) {
        return Ok(());
    }
    // Name the first qualifier that breaks the order of the sequence containing the first one.
    let sequence = sequences.iter().find(|sequence| sequence.contains(&qualifiers[0].code())).copied().unwrap_or(&[]);
    let mut next_index = 0;
    for qualifier in qualifiers {
        match sequence[next_index..].iter().position(|code| *code == qualifier.code()) {
            Some(offset) => next_index += offset + 1,
            None => {
                return Err(DigitalLinkError::QualifierOrder {
                    primary_key: primary_key.code,
                    qualifier: qualifier.code(),
                    allowed: allowed(),
                });
            }
        }
    }
    Err(DigitalLinkError::QualifierOrder {
        primary_key: primary_key.code,
        qualifier: qualifiers[0].code(),
        allowed: allowed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, expected: Result<&str, &str>) {
        let actual = DigitalLink::parse(uri).map(|link| link.to_string()).map_err(|error| error.to_string());
        assert_eq!(actual, expected.map(str::to_owned).map_err(str::to_owned), "{uri}");
    }

    #[test]
    fn parses_any_domain_and_stem() {
        check("https://id.gs1.org/01/09506000134352", Ok("https://id.gs1.org/01/09506000134352"));
        check(
            "https://example.com/some/stem/01/09506000134352/10/ABC%2F1/21/XYZ?17=261231&linkType=gs1:pip#top",
            Ok("https://example.com/some/stem/01/09506000134352/10/ABC%2F1/21/XYZ?17=261231&linkType=gs1%3Apip"),
        );
        check("HTTP://Example.com/01/9506000134352", Ok("http://Example.com/01/09506000134352"));
        check("https://example.com/01/95010014", Ok("https://example.com/01/00000095010014"));
        check("https://example.com/414/9506000134352/254/A1", Ok("https://example.com/414/9506000134352/254/A1"));
        check("https://example.com/00/106141411234567897", Ok("https://example.com/00/106141411234567897"));
        check("https://example.com/8004/0614141ABC", Ok("https://example.com/8004/0614141ABC"));
        check("https://example.com/01/09506000134352/235/TPX1", Ok("https://example.com/01/09506000134352/235/TPX1"));
    }

    #[test]
    fn rejects_with_the_rule_named() {
        check(
            "ftp://example.com/01/09506000134352",
            Err("scheme must be http or https, found \"ftp\" (rule: a GS1 Digital Link URI is an HTTP(S) URI)"),
        );
        check("https:///01/09506000134352", Err("URI has no host (rule: a GS1 Digital Link URI names a domain)"));
        check("https:/01/09506000134352", Err("URI has no host (rule: a GS1 Digital Link URI names a domain)"));
        check(
            "urn:epc:id:sgtin:0614141.812345.1",
            Err("scheme must be http or https, found \"urn\" (rule: a GS1 Digital Link URI is an HTTP(S) URI)"),
        );
        check(
            "https://example.com/",
            Err(
                "path holds no GS1 primary key (rule: the path ends with /<primary key AI>/<value> and its key qualifiers)",
            ),
        );
        check(
            "https://example.com/10/ABC",
            Err(
                "path holds no GS1 primary key (rule: the path ends with /<primary key AI>/<value> and its key qualifiers)",
            ),
        );
        check(
            "https://example.com/01/09506000134352/",
            Err("path must not end with '/' (rule: the path ends with a key or key qualifier value)"),
        );
        check("https://example.com/01/09506000134353", Err("(01) check digit at position 13 should be 2, found 3"));
        check(
            "https://example.com/01/09506000134352/21/XYZ/10/ABC",
            Err("(10) is out of order (rule: key qualifiers of (01) follow the order 22, 10, 21 or 235)"),
        );
        check(
            "https://example.com/01/09506000134352/10/ABC/235/X",
            Err("(235) is out of order (rule: key qualifiers of (01) follow the order 22, 10, 21 or 235)"),
        );
        check(
            "https://example.com/00/106141411234567897/10/ABC",
            Err("(10) is not a key qualifier of (00) (rule: allowed key qualifiers are none)"),
        );
        check(
            "https://example.com/01/09506000134352?21=XYZ",
            Err(
                "(21) may not be a query string data attribute (rule: only AIs marked as Digital Link data attributes)",
            ),
        );
        check(
            "https://example.com/01/09506000134352/10/A?10=B",
            Err("(10) appears both in the path and in the query string (rule: an AI appears once)"),
        );
        check(
            "https://example.com/01/09506000134352?9999=1",
            Err("query parameter \"9999\" is numeric but not a GS1 Application Identifier"),
        );
        check(
            "https://example.com/01/09506000134352/10/A%2",
            Err("malformed percent-encoding at position 1 (rule: '%' is followed by two hex digits of UTF-8)"),
        );
        check(
            "https://example.com/01/09506000134352/10/A B",
            Err("character ' ' at position 42 is not allowed in a URI (rule: RFC 3986, percent-encode it)"),
        );
        check("https://example.com/00/106141411234567897?3103=000100", Err("(3103) requires one of (01), (02)"));
        check(
            "https://example.com/01/09506000134352/10/%C3%A9",
            Err("(10) character 'é' at position 0 is not in CSET 82 (X)"),
        );
    }

    #[test]
    fn canonical_resolver_and_constrained_forms() {
        let link =
            DigitalLink::parse("https://brand.example/p/01/9506000134352/22/V1/10/LOT%201/21/S1?17=261231&3103=000195")
                .unwrap_err();
        assert_eq!(link.to_string(), "(10) character ' ' at position 3 is not in CSET 82 (X)");
        let link =
            DigitalLink::parse("https://brand.example/p/01/9506000134352/22/V1/10/LOT1/21/S1?17=261231&3103=000195")
                .unwrap();
        assert_eq!(link.canonical_uri(), "https://id.gs1.org/01/09506000134352/22/V1/10/LOT1/21/S1");
        assert_eq!(
            link.uri("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/01/09506000134352/22/V1/10/LOT1/21/S1?17=261231&3103=000195"
        );
        assert_eq!(link.constrained_uri(), "https://id.gs1.org/01/09506000134352/21/S1");
        assert_eq!(link.resolver(), "https://brand.example/p");
        assert_eq!(link.gtin().unwrap().as_str(), "09506000134352");
        let lot = DigitalLink::parse("https://id.gs1.org/01/09506000134352/22/V1/10/LOT1").unwrap();
        assert_eq!(lot.constrained_uri(), "https://id.gs1.org/01/09506000134352/10/LOT1");
        let location = DigitalLink::parse("https://id.gs1.org/414/9506000134352/254/7").unwrap();
        assert_eq!(location.constrained_uri(), "https://id.gs1.org/414/9506000134352/254/7");
    }

    #[test]
    fn parse_constrained_accepts_only_the_epcis_form() {
        assert!(DigitalLink::parse_constrained("https://id.gs1.org/01/09506000134352/21/S1").is_ok());
        assert!(DigitalLink::parse_constrained("https://id.gs1.org/00/106141411234567897").is_ok());
        for rejected in [
            "https://example.com/01/09506000134352/21/S1",
            "https://id.gs1.org/01/9506000134352/21/S1",
            "https://id.gs1.org/01/09506000134352/10/L/21/S1",
            "https://id.gs1.org/01/09506000134352/21/S1?17=261231",
            "http://id.gs1.org/01/09506000134352/21/S1",
        ] {
            let error = DigitalLink::parse_constrained(rejected).unwrap_err();
            assert!(matches!(error, DigitalLinkError::NotConstrainedForm { .. }), "{rejected}: {error}");
        }
    }

    #[test]
    fn converts_to_and_from_element_strings() {
        let element_string =
            ElementString::parse_bracketed("(01)09506000134352(17)261231(10)ABC123(21)XYZ(3103)000195").unwrap();
        let link = DigitalLink::from_element_string(&element_string).unwrap();
        assert_eq!(link.to_string(), "https://id.gs1.org/01/09506000134352/10/ABC123/21/XYZ?17=261231&3103=000195");
        assert_eq!(link.to_element_string().to_string(), "(01)09506000134352(10)ABC123(21)XYZ(17)261231(3103)000195");
        let tpx = ElementString::parse_bracketed("(01)09506000134352(235)T1").unwrap();
        assert_eq!(
            DigitalLink::from_element_string(&tpx).unwrap().to_string(),
            "https://id.gs1.org/01/09506000134352/235/T1"
        );
        let no_key = ElementString::parse_bracketed("(410)9506000134352").unwrap();
        assert_eq!(DigitalLink::from_element_string(&no_key).unwrap_err(), DigitalLinkError::NoPrimaryKey);
        let not_attribute = ElementString::parse_bracketed("(8010)0614141ABC(8011)12(8004)0614141X").unwrap();
        assert_eq!(
            DigitalLink::from_element_string(&not_attribute).unwrap().to_string(),
            "https://id.gs1.org/8010/0614141ABC/8011/12?8004=0614141X"
        );
    }
}
