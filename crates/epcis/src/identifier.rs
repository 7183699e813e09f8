//! Identifiers in events: EPC URNs, EPC class and pattern URNs, GS1 Digital Link URIs and any
//! other URI, normalised to the CBV 2.0 constrained canonical Digital Link where they carry a
//! GS1 key.
//!
//! The constrained form (CBV 2.0 §8.1, event hash rule 4) is `https://id.gs1.org`, the primary
//! key and only its finest key qualifier (serial, else lot; a CPV dropped), no query string.
//! Percent-encoding follows the event hash reference: the characters that an EPC URN escapes
//! (`" % & / < > ?`) and `! ( ) * + , :` are encoded, every other character of the GS1 set is
//! kept, so a URN and its Digital Link normalise to the same text.

use std::fmt;

use gs1::{DigitalLink, DigitalLinkError, check_digit};

/// The longest identifier accepted, in bytes.
pub const IDENTIFIER_LENGTH_MAXIMUM: usize = 2048;

/// The canonical GS1 resolver.
pub const CANONICAL_RESOLVER: &str = "https://id.gs1.org";

/// An identifier as it is stored: the constrained Digital Link for GS1 keys, the text
/// unchanged (trimmed) for any other URI.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier(String);

impl Identifier {
    /// Normalises `text`; fails when it is not a URI or is a malformed EPC URN or GS1 key.
    pub fn parse(text: &str) -> Result<Identifier, IdentifierError> {
        normalise(text).map(Identifier)
    }

    /// Wraps a text without checking it (for values the standard leaves free, e.g. an
    /// unrecognised business transaction reference kept for losslessness).
    pub fn unchecked(text: &str) -> Identifier {
        Identifier(text.trim().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Digital Link, when this identifier carries a GS1 key.
    pub fn digital_link(&self) -> Option<DigitalLink> {
        match self.0.starts_with(CANONICAL_RESOLVER) {
            true => DigitalLink::parse(&self.0).ok(),
            false => None,
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Why a text is not an acceptable identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("identifier is empty")]
    Empty,
    #[error("identifier has {found} bytes, more than the limit of {maximum}")]
    TooLong { maximum: usize, found: usize },
    #[error("{text:?} is not an absolute URI (rule: identifiers are URIs, scheme:rest)")]
    NotUri { text: String },
    #[error("{text:?} is not a valid EPC URN: {reason}")]
    EpcUrn { text: String, reason: String },
    #[error("{text:?} is not a valid GS1 Digital Link URI: {source}")]
    DigitalLink { text: String, source: DigitalLinkError },
}

/// Normalises an identifier text (see the module documentation).
pub fn normalise(text: &str) -> Result<String, IdentifierError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(IdentifierError::Empty);
    }
    if text.len() > IDENTIFIER_LENGTH_MAXIMUM {
        return Err(IdentifierError::TooLong { maximum: IDENTIFIER_LENGTH_MAXIMUM, found: text.len() });
    }
    if !is_absolute_uri(text) {
        return Err(IdentifierError::NotUri { text: text.to_owned() });
    }
    if text.starts_with("urn:epc:id:") || text.starts_with("urn:epc:class:") || text.starts_with("urn:epc:idpat:") {
        return match epc_urn_to_digital_link(text) {
            Ok(Some(path)) => Ok(format!("{CANONICAL_RESOLVER}{path}")),
            // Schemes without a Digital Link (e.g. gid, adi, usdod) stay URNs.
            Ok(None) => Ok(text.to_owned()),
            Err(reason) => Err(IdentifierError::EpcUrn { text: text.to_owned(), reason }),
        };
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let with_codes = replace_short_names(text);
        return match DigitalLink::parse(&with_codes) {
            Ok(link) => Ok(constrained_uri(&link)),
            Err(DigitalLinkError::NoPrimaryKey) => Ok(text.to_owned()),
            Err(source) if lower.starts_with("https://id.gs1.org/") => {
                Err(IdentifierError::DigitalLink { text: text.to_owned(), source })
            }
            // A URI at another domain that is not a valid Digital Link is just a URI.
            Err(_) => Ok(text.to_owned()),
        };
    }
    Ok(text.to_owned())
}

/// Digital Link short names of keys and qualifiers, replaced by their AI codes.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("gtin", "01"),
    ("itip", "8006"),
    ("cpid", "8010"),
    ("gln", "414"),
    ("party", "417"),
    ("gsrnp", "8017"),
    ("gsrn", "8018"),
    ("gcn", "255"),
    ("sscc", "00"),
    ("gdti", "253"),
    ("ginc", "401"),
    ("gsin", "402"),
    ("grai", "8003"),
    ("giai", "8004"),
    ("cpv", "22"),
    ("lot", "10"),
    ("ser", "21"),
];

/// Replaces the short-name path segments of a Digital Link (`/gtin/…`) by AI codes.
fn replace_short_names(uri: &str) -> String {
    let (before_query, query) = match uri.find(['?', '#']) {
        Some(position) => uri.split_at(position),
        None => (uri, ""),
    };
    let segments: Vec<&str> = before_query.split('/').collect();
    let mut replaced: Vec<&str> = Vec::with_capacity(segments.len());
    for (index, segment) in segments.iter().enumerate() {
        // Only segments followed by a value; the first three are scheme and host.
        let is_key_position = index >= 3 && index + 1 < segments.len();
        let code = SHORT_NAMES.iter().find(|(name, _)| is_key_position && name == segment).map(|(_, code)| *code);
        replaced.push(code.unwrap_or(segment));
    }
    format!("{}{query}", replaced.join("/"))
}

/// Whether `text` has an RFC 3986 scheme followed by `:` and no whitespace.
pub fn is_absolute_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut scheme_characters = scheme.chars();
    let starts_with_letter = scheme_characters.next().is_some_and(|character| character.is_ascii_alphabetic());
    starts_with_letter
        && scheme_characters.all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character))
        && !rest.is_empty()
        && !text.chars().any(|character| character.is_whitespace())
}

/// The constrained canonical URI of a parsed Digital Link.
pub fn constrained_uri(link: &DigitalLink) -> String {
    let primary_key = link.primary_key();
    let qualifiers = link.qualifiers();
    let mut path = String::new();
    let primary_value = match primary_key.code() {
        "01" if primary_key.value().len() < 14 => {
            format!("{:0>14}", primary_key.value())
        }
        _ => primary_key.value().to_owned(),
    };
    push_segment(&mut path, primary_key.code(), &primary_value);
    let finest: Vec<(&str, &str)> = match primary_key.code() {
        "01" | "8006" => ["21", "235", "10"]
            .iter()
            .find_map(|code| {
                qualifiers
                    .iter()
                    .find(|qualifier| qualifier.code() == *code)
                    .map(|qualifier| (qualifier.code(), qualifier.value()))
            })
            .into_iter()
            .collect(),
        _ => qualifiers.iter().map(|qualifier| (qualifier.code(), qualifier.value())).collect(),
    };
    for (code, value) in finest {
        push_segment(&mut path, code, value);
    }
    format!("{CANONICAL_RESOLVER}{path}")
}

fn push_segment(path: &mut String, code: &str, value: &str) {
    path.push('/');
    path.push_str(code);
    path.push('/');
    path.push_str(&encode_value(value));
}

/// Percent-encodes a decoded key or qualifier value for a Digital Link path.
pub fn encode_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for character in value.chars() {
        let must_encode = !character.is_ascii_graphic() || "!\"%&()*+,/:<>?#".contains(character);
        if must_encode {
            let mut buffer = [0_u8; 4];
            for byte in character.encode_utf8(&mut buffer).bytes() {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        } else {
            encoded.push(character);
        }
    }
    encoded
}

/// Decodes `%XX` escapes of an EPC URN component; `None` when malformed or not UTF-8.
fn decode_component(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Whether a decoded component holds only characters of GS1 AI encodable character set 82.
fn is_character_set_82(text: &str) -> bool {
    text.chars().all(|character| character.is_ascii_alphanumeric() || "!\"%&'()*+,-./:;<=>?_".contains(character))
}

fn digits_of(text: &str) -> Option<Vec<u8>> {
    text.bytes().map(|byte| byte.is_ascii_digit().then(|| byte - b'0')).collect()
}

/// `digits` (ASCII) followed by their GS1 check digit.
fn with_check_digit(digits: &str) -> String {
    let values = digits_of(digits).unwrap_or_default();
    format!("{digits}{}", check_digit(&values))
}

/// A GS1 Company Prefix and a reference that together have `total` digits.
fn company_prefix_and_reference<'a>(
    company_prefix: &'a str,
    reference: &'a str,
    total: usize,
) -> Result<(&'a str, &'a str), String> {
    if !(6..=12).contains(&company_prefix.len()) || digits_of(company_prefix).is_none() {
        return Err(format!("the company prefix must have 6 to 12 digits, found {company_prefix:?}"));
    }
    if digits_of(reference).is_none() || company_prefix.len() + reference.len() != total {
        return Err(format!(
            "company prefix and reference must be {total} digits together, found {company_prefix}.{reference}"
        ));
    }
    Ok((company_prefix, reference))
}

/// A serial-like component: decoded, in character set 82, at most `maximum` characters.
fn serial_component(text: &str, maximum: usize, what: &str) -> Result<String, String> {
    let decoded = decode_component(text).ok_or_else(|| format!("malformed percent-encoding in {what}"))?;
    if decoded.is_empty() || decoded.chars().count() > maximum {
        return Err(format!("{what} must have 1 to {maximum} characters"));
    }
    if !is_character_set_82(&decoded) {
        return Err(format!("{what} holds a character outside GS1 character set 82"));
    }
    Ok(decoded)
}

/// Converts an EPC URN (pure identity, class or pattern) to a constrained Digital Link path;
/// `Ok(None)` for a scheme without a GS1 key.
pub fn epc_urn_to_digital_link(text: &str) -> Result<Option<String>, String> {
    let mut parts = text.splitn(5, ':');
    let (_, _, kind, scheme, body) = (
        parts.next(),
        parts.next(),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let fields: Vec<&str> = body.split('.').collect();
    let field = |index: usize| fields.get(index).copied().unwrap_or("");
    let field_count = |expected: usize| -> Result<(), String> {
        match fields.len() == expected {
            true => Ok(()),
            false => Err(format!("{kind}:{scheme} needs {expected} dot-separated fields")),
        }
    };
    let mut path = String::new();
    let gtin_of = |company_prefix: &str, item_reference: &str| -> Result<String, String> {
        let (company_prefix, item_reference) = company_prefix_and_reference(company_prefix, item_reference, 13)?;
        let (indicator, rest) = item_reference.split_at(1);
        Ok(with_check_digit(&format!("{indicator}{company_prefix}{rest}")))
    };
    match (kind, scheme) {
        ("id", "sgtin") | ("id", "upui") => {
            field_count(3)?;
            let gtin = gtin_of(field(0), field(1))?;
            let (code, maximum) = if scheme == "sgtin" { ("21", 20) } else { ("235", 28) };
            let serial = serial_component(field(2), maximum, "the serial")?;
            push_segment(&mut path, "01", &gtin);
            push_segment(&mut path, code, &serial);
        }
        ("class", "lgtin") => {
            field_count(3)?;
            let gtin = gtin_of(field(0), field(1))?;
            let lot = serial_component(field(2), 20, "the lot")?;
            push_segment(&mut path, "01", &gtin);
            push_segment(&mut path, "10", &lot);
        }
        ("idpat", "sgtin") | ("idpat", "upui") | ("idpat", "lgtin") => {
            field_count(3)?;
            if field(2) != "*" {
                return Err("a pattern URN ends with .*".to_owned());
            }
            push_segment(&mut path, "01", &gtin_of(field(0), field(1))?);
        }
        ("id", "sscc") => {
            field_count(2)?;
            let (company_prefix, reference) = company_prefix_and_reference(field(0), field(1), 17)?;
            let (extension, rest) = reference.split_at(1);
            let sscc = with_check_digit(&format!("{extension}{company_prefix}{rest}"));
            push_segment(&mut path, "00", &sscc);
        }
        ("id", "sgln") => {
            field_count(3)?;
            let (company_prefix, reference) = company_prefix_and_reference(field(0), field(1), 12)?;
            let gln = with_check_digit(&format!("{company_prefix}{reference}"));
            let extension = serial_component(field(2), 20, "the GLN extension")?;
            push_segment(&mut path, "414", &gln);
            if extension != "0" {
                push_segment(&mut path, "254", &extension);
            }
        }
        ("id", "pgln") => {
            field_count(2)?;
            let (company_prefix, reference) = company_prefix_and_reference(field(0), field(1), 12)?;
            let gln = with_check_digit(&format!("{company_prefix}{reference}"));
            push_segment(&mut path, "417", &gln);
        }
        ("id", "grai") | ("idpat", "grai") => {
            field_count(3)?;
            let (company_prefix, reference) = company_prefix_and_reference(field(0), field(1), 12)?;
            let grai = with_check_digit(&format!("0{company_prefix}{reference}"));
            let serial = match kind {
                "idpat" if field(2) == "*" => String::new(),
                "idpat" => return Err("a pattern URN ends with .*".to_owned()),
                _ => serial_component(field(2), 16, "the serial")?,
            };
            push_segment(&mut path, "8003", &format!("{grai}{serial}"));
        }
        ("id", "gdti") | ("idpat", "gdti") | ("id", "sgcn") | ("idpat", "sgcn") => {
            field_count(3)?;
            let (company_prefix, reference) = company_prefix_and_reference(field(0), field(1), 12)?;
            let key = with_check_digit(&format!("{company_prefix}{reference}"));
            let (code, maximum) = if scheme == "gdti" { ("253", 17) } else { ("255", 12) };
            let serial = match (kind, field(2)) {
                ("idpat", "*") => String::new(),
                ("idpat", _) => return Err("a pattern URN ends with .*".to_owned()),
                // A GDTI may be captured without a serial component.
                ("id", "") if scheme == "gdti" => String::new(),
                _ => serial_component(field(2), maximum, "the serial")?,
            };
            if scheme == "sgcn" && digits_of(&serial).is_none() {
                return Err("an SGCN serial is numeric".to_owned());
            }
            push_segment(&mut path, code, &format!("{key}{serial}"));
        }
        ("id", "giai") | ("id", "ginc") => {
            field_count(2)?;
            let company_prefix = field(0);
            if !(6..=12).contains(&company_prefix.len()) || digits_of(company_prefix).is_none() {
                return Err("the company prefix must have 6 to 12 digits".to_owned());
            }
            let reference =
                serial_component(field(1), 30 - company_prefix.len(), "the asset or consignment reference")?;
            let code = if scheme == "giai" { "8004" } else { "401" };
            push_segment(&mut path, code, &format!("{company_prefix}{reference}"));
        }
        ("id", "gsrn") | ("id", "gsrnp") => {
            field_count(2)?;
            let (company_prefix, reference) = company_prefix_and_reference(field(0), field(1), 17)?;
            let key = with_check_digit(&format!("{company_prefix}{reference}"));
            let code = if scheme == "gsrn" { "8018" } else { "8017" };
            push_segment(&mut path, code, &key);
        }
        ("id", "gsin") => {
            field_count(2)?;
            let (company_prefix, reference) = company_prefix_and_reference(field(0), field(1), 16)?;
            push_segment(&mut path, "402", &with_check_digit(&format!("{company_prefix}{reference}")));
        }
        ("id", "cpi") | ("idpat", "cpi") => {
            field_count(3)?;
            let company_prefix = field(0);
            if !(6..=12).contains(&company_prefix.len()) || digits_of(company_prefix).is_none() {
                return Err("the company prefix must have 6 to 12 digits".to_owned());
            }
            let reference = decode_component(field(1))
                .filter(|reference| {
                    !reference.is_empty()
                        && reference.len() <= 30 - company_prefix.len()
                        && reference
                            .bytes()
                            .all(|byte| byte.is_ascii_digit() || byte.is_ascii_uppercase() || b"#-/".contains(&byte))
                })
                .ok_or_else(|| "a CPI reference has digits, upper-case letters, # - /".to_owned())?;
            push_segment(&mut path, "8010", &format!("{company_prefix}{reference}"));
            match (kind, field(2)) {
                ("idpat", "*") => {}
                ("idpat", _) => return Err("a pattern URN ends with .*".to_owned()),
                (_, serial) => {
                    if serial.is_empty() || serial.len() > 12 || digits_of(serial).is_none() {
                        return Err("a CPI serial has 1 to 12 digits".to_owned());
                    }
                    push_segment(&mut path, "8011", serial);
                }
            }
        }
        ("id", "itip") | ("idpat", "itip") => {
            field_count(5)?;
            let gtin = gtin_of(field(0), field(1))?;
            let (piece, total) = (field(2), field(3));
            let two_digits = |text: &str| text.len() == 2 && digits_of(text).is_some();
            if !two_digits(piece) || !two_digits(total) {
                return Err("ITIP piece and total have two digits each".to_owned());
            }
            push_segment(&mut path, "8006", &format!("{gtin}{piece}{total}"));
            match (kind, field(4)) {
                ("idpat", "*") => {}
                ("idpat", _) => return Err("a pattern URN ends with .*".to_owned()),
                (_, serial) => {
                    let serial = serial_component(serial, 20, "the serial")?;
                    push_segment(&mut path, "21", &serial);
                }
            }
        }
        ("id", "gid" | "usdod" | "adi" | "bic" | "imovn")
        | ("idpat", "gid" | "usdod" | "adi" | "sscc" | "sgln" | "giai" | "gsrn" | "gsrnp")
        | ("class", _) => return Ok(None),
        _ => {
            return Err(format!("unknown EPC scheme urn:epc:{kind}:{scheme} (rule: GS1 Tag Data Standard schemes)"));
        }
    }
    // Validate the result with the gs1 crate (value formats and lengths of each AI).
    let uri = format!("{CANONICAL_RESOLVER}{path}");
    match DigitalLink::parse(&uri) {
        Ok(_) => Ok(Some(path)),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let actual = match normalise(input) {
            Ok(text) => text,
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(actual, expected, "input {input}");
    }

    #[test]
    fn epc_urns_become_constrained_digital_links() {
        check("urn:epc:id:sscc:4012345.0000000333", "https://id.gs1.org/00/040123450000003338");
        check("urn:epc:id:sgln:4012345.00011.987", "https://id.gs1.org/414/4012345000115/254/987");
        check("urn:epc:id:sgln:4012345.00011.0", "https://id.gs1.org/414/4012345000115");
        check("urn:epc:id:sgtin:0614141.107346.2018", "https://id.gs1.org/01/10614141073464/21/2018");
        check("urn:epc:class:lgtin:4012345.012345.998877", "https://id.gs1.org/01/04012345123456/10/998877");
        check("urn:epc:idpat:sgtin:4012345.066666.*", "https://id.gs1.org/01/04012345666663");
        check("urn:epc:id:pgln:4012345.00225", "https://id.gs1.org/417/4012345002256");
        check("urn:epc:id:giai:4000001.111", "https://id.gs1.org/8004/4000001111");
        check("urn:epc:id:sgtin:4012345.011111.98%22", "https://id.gs1.org/01/04012345111118/21/98%22");
    }

    #[test]
    fn digital_links_are_constrained() {
        check("https://id.gs1.de/01/04012345999990/21/XYZ-1234", "https://id.gs1.org/01/04012345999990/21/XYZ-1234");
        check(
            "https://example.com/01/04012345999990/10/LOT/21/S1?17=261231",
            "https://id.gs1.org/01/04012345999990/21/S1",
        );
        check("geo:47.506694,11.104301", "geo:47.506694,11.104301");
        check("urn:epcglobal:cbv:bt:4012345000009:ASN1099", "urn:epcglobal:cbv:bt:4012345000009:ASN1099");
    }

    #[test]
    fn malformed_identifiers_are_rejected() {
        check("", "error: identifier is empty");
        check("not a uri", "error: \"not a uri\" is not an absolute URI (rule: identifiers are URIs, scheme:rest)");
        assert!(normalise("urn:epc:id:sgtin:0614141.107346").is_err());
        assert!(normalise("https://id.gs1.org/01/04012345999991").is_err());
    }
}

/// The most company prefixes learned from one input.
pub const COMPANY_PREFIXES_PER_INPUT_MAX: usize = 1_000;

/// The GS1 company prefixes of the EPC URNs written in `text` (`urn:epc:id:…`, `urn:epc:class:…`).
/// A URN shows where its company prefix ends; a Digital Link does not, so a repository that
/// answers in URNs learns the prefixes from what it was sent.
pub fn company_prefixes_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut prefixes = std::collections::BTreeSet::new();
    for marker in ["urn:epc:id:", "urn:epc:class:"] {
        let mut rest = text;
        while let Some(start) = rest.find(marker) {
            let candidate = &rest[start..];
            let end = candidate
                .find(|character: char| character.is_whitespace() || "\"'<>,;[]{}()\\".contains(character))
                .unwrap_or(candidate.len());
            if let Ok(urn) = gs1::EpcUrn::parse(&candidate[..end]) {
                let written = urn.to_string();
                let prefix =
                    written.strip_prefix(urn.scheme().prefix()).and_then(|tail| tail.split('.').next()).unwrap_or("");
                if !prefix.is_empty() && prefixes.len() < COMPANY_PREFIXES_PER_INPUT_MAX {
                    prefixes.insert(prefix.to_owned());
                }
            }
            rest = &candidate[end.max(1)..];
        }
    }
    prefixes
}

/// The EPC URN of a constrained Digital Link whose company prefix is `known`, if any.
pub fn epc_urn_of(identifier: &str, known: &dyn Fn(&str) -> bool) -> Option<String> {
    let link = DigitalLink::parse(identifier).ok()?;
    (6..=12).find_map(|length| {
        let urn = gs1::EpcUrn::from_digital_link(&link, length).ok()?;
        let written = urn.to_string();
        let prefix = written.strip_prefix(urn.scheme().prefix())?.split('.').next()?;
        known(prefix).then_some(written)
    })
}

/// Rewrites, in a JSON document, every GS1 Digital Link whose company prefix is `known` as its
/// EPC URN (the answer to `GS1-EPC-Format: Always_EPC_URN`); others stay Digital Links.
pub fn rewrite_as_epc_urns(value: &mut serde_json::Value, known: &dyn Fn(&str) -> bool) {
    match value {
        serde_json::Value::String(text) if text.starts_with(CANONICAL_RESOLVER) => {
            if let Some(urn) = epc_urn_of(text, known) {
                *text = urn;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| rewrite_as_epc_urns(item, known)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|item| rewrite_as_epc_urns(item, known)),
        _ => {}
    }
}

#[cfg(test)]
mod epc_format_tests {
    use super::*;

    #[test]
    fn prefixes_are_learned_from_urns_and_used_to_answer_in_urns() {
        let text = r#"{"epcList":["urn:epc:id:sgtin:4012345.011111.9876","urn:epc:id:sscc:0614141.1234567890"],
            "parentID":"urn:epc:class:lgtin:4012345.011111.LOT-1","other":"urn:epc:id:sgtin:bad"}"#;
        let prefixes = company_prefixes_in(text);
        assert_eq!(prefixes.iter().map(String::as_str).collect::<Vec<_>>(), ["0614141", "4012345"]);
        let known = |prefix: &str| prefixes.contains(prefix);
        let mut document = serde_json::json!({
            "epcList": [normalise("urn:epc:id:sgtin:4012345.011111.9876").unwrap(), "https://id.gs1.org/01/09506000134352/21/1"],
            "parentID": normalise("urn:epc:id:sscc:0614141.1234567890").unwrap(),
            "eventID": "ni:///sha-256;abc?ver=CBV2.0"
        });
        rewrite_as_epc_urns(&mut document, &known);
        assert_eq!(document["epcList"][0], "urn:epc:id:sgtin:4012345.011111.9876");
        assert_eq!(document["epcList"][1], "https://id.gs1.org/01/09506000134352/21/1", "unknown prefix: kept");
        assert_eq!(document["parentID"], "urn:epc:id:sscc:0614141.1234567890");
        assert_eq!(document["eventID"], "ni:///sha-256;abc?ver=CBV2.0");
    }
}
