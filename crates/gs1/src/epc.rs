//! EPC pure identity URNs (GS1 Tag Data Standard 2.x) and their Digital Link equivalents.
//!
//! A URN splits the key at the end of the GS1 Company Prefix (`urn:epc:id:sgtin:0614141.812345.6789`),
//! a Digital Link does not: going from a Digital Link to a URN needs the company prefix length.

use std::fmt;

use crate::digital_link::{DigitalLink, DigitalLinkError};
use crate::element_string::{Element, INPUT_LENGTH_MAXIMUM};
use crate::keys::check_digit;
use crate::percent_encoding;

/// The EPC schemes this crate converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EpcScheme {
    /// Serialised GTIN, `urn:epc:id:sgtin`: AI (01) + (21).
    Sgtin,
    /// GTIN + lot, `urn:epc:class:lgtin`: AI (01) + (10).
    Lgtin,
    /// `urn:epc:id:sscc`: AI (00).
    Sscc,
    /// GLN with extension, `urn:epc:id:sgln`: AI (414) [+ (254)].
    Sgln,
    /// `urn:epc:id:grai`: AI (8003) with a serial.
    Grai,
    /// `urn:epc:id:giai`: AI (8004).
    Giai,
    /// `urn:epc:id:gsrn`: AI (8018).
    Gsrn,
    /// `urn:epc:id:gsrnp`: AI (8017).
    Gsrnp,
}

impl EpcScheme {
    const ALL: [EpcScheme; 8] = [
        EpcScheme::Sgtin,
        EpcScheme::Lgtin,
        EpcScheme::Sscc,
        EpcScheme::Sgln,
        EpcScheme::Grai,
        EpcScheme::Giai,
        EpcScheme::Gsrn,
        EpcScheme::Gsrnp,
    ];

    /// The URN prefix, up to and including the last `:`.
    pub fn prefix(self) -> &'static str {
        match self {
            EpcScheme::Sgtin => "urn:epc:id:sgtin:",
            EpcScheme::Lgtin => "urn:epc:class:lgtin:",
            EpcScheme::Sscc => "urn:epc:id:sscc:",
            EpcScheme::Sgln => "urn:epc:id:sgln:",
            EpcScheme::Grai => "urn:epc:id:grai:",
            EpcScheme::Giai => "urn:epc:id:giai:",
            EpcScheme::Gsrn => "urn:epc:id:gsrn:",
            EpcScheme::Gsrnp => "urn:epc:id:gsrnp:",
        }
    }

    /// The layout of the URN body, for error messages.
    fn layout(self) -> &'static str {
        match self {
            EpcScheme::Sgtin => "<company prefix>.<indicator digit and item reference>.<serial>",
            EpcScheme::Lgtin => "<company prefix>.<indicator digit and item reference>.<lot>",
            EpcScheme::Sscc => "<company prefix>.<extension digit and serial reference>",
            EpcScheme::Sgln => "<company prefix>.<location reference>.<extension>",
            EpcScheme::Grai => "<company prefix>.<asset type>.<serial>",
            EpcScheme::Giai => "<company prefix>.<individual asset reference>",
            EpcScheme::Gsrn | EpcScheme::Gsrnp => "<company prefix>.<service reference>",
        }
    }

    /// Digits of company prefix + reference (the key without its check digit), if fixed.
    fn key_digit_count(self) -> Option<usize> {
        match self {
            EpcScheme::Sgtin | EpcScheme::Lgtin => Some(13),
            EpcScheme::Sscc | EpcScheme::Gsrn | EpcScheme::Gsrnp => Some(17),
            EpcScheme::Sgln | EpcScheme::Grai => Some(12),
            EpcScheme::Giai => None,
        }
    }

    fn has_third_part(self) -> bool {
        matches!(self, EpcScheme::Sgtin | EpcScheme::Lgtin | EpcScheme::Sgln | EpcScheme::Grai)
    }
}

/// The shortest and longest GS1 Company Prefix an EPC URN may carry.
pub const COMPANY_PREFIX_LENGTH_MINIMUM: usize = 6;
pub const COMPANY_PREFIX_LENGTH_MAXIMUM: usize = 12;

/// Why a text is not a supported EPC URN, or a Digital Link has no URN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpcError {
    #[error("not an EPC URN: must start with urn:epc:id: or urn:epc:class:")]
    NotEpcUrn,
    #[error("URN has {found} bytes, more than the limit of {maximum}")]
    TooLong { maximum: usize, found: usize },
    #[error("unsupported EPC scheme {scheme:?} (supported: sgtin, lgtin, sscc, sgln, grai, giai, gsrn, gsrnp)")]
    UnsupportedScheme { scheme: String },
    #[error("{scheme} must be {layout}")]
    Malformed { scheme: &'static str, layout: &'static str },
    #[error("company prefix must have 6 to 12 digits, found {found}")]
    CompanyPrefixLength { found: usize },
    #[error("company prefix and reference must be digits with {expected} digits together, found {found:?}")]
    KeyDigits { expected: String, found: String },
    #[error("malformed percent-encoding at position {position}")]
    InvalidPercentEncoding { position: usize },
    #[error("{0}")]
    DigitalLink(#[from] DigitalLinkError),
    #[error("({code}) has no EPC URN: {reason}")]
    NoUrnForKey { code: &'static str, reason: &'static str },
}

/// A valid EPC URN: its scheme, the company prefix length, and the equivalent Digital Link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpcUrn {
    scheme: EpcScheme,
    company_prefix_length: usize,
    digital_link: DigitalLink,
}

impl EpcUrn {
    /// Parses `urn:epc:id:sgtin:0614141.812345.6789` and the other supported schemes.
    pub fn parse(text: &str) -> Result<EpcUrn, EpcError> {
        if text.len() > INPUT_LENGTH_MAXIMUM {
            return Err(EpcError::TooLong { maximum: INPUT_LENGTH_MAXIMUM, found: text.len() });
        }
        if !text.starts_with("urn:epc:id:") && !text.starts_with("urn:epc:class:") {
            return Err(EpcError::NotEpcUrn);
        }
        let scheme = EpcScheme::ALL
            .into_iter()
            .find(|scheme| text.starts_with(scheme.prefix()))
            .ok_or_else(|| EpcError::UnsupportedScheme { scheme: text.split(':').nth(3).unwrap_or("").to_owned() })?;
        let body = &text[scheme.prefix().len()..];
        let malformed = EpcError::Malformed { scheme: scheme_name(scheme), layout: scheme.layout() };
        // The last component (serial, lot, extension, asset reference) may itself contain dots.
        let expected_parts = if scheme.has_third_part() { 3 } else { 2 };
        let parts: Vec<&str> = body.splitn(expected_parts, '.').collect();
        if parts.len() != expected_parts {
            return Err(malformed);
        }
        let company_prefix = parts[0];
        if !(COMPANY_PREFIX_LENGTH_MINIMUM..=COMPANY_PREFIX_LENGTH_MAXIMUM).contains(&company_prefix.len()) {
            return Err(EpcError::CompanyPrefixLength { found: company_prefix.len() });
        }
        let reference = parts[1];
        let key_digits = format!("{company_prefix}{reference}");
        let all_digits = key_digits.bytes().all(|byte| byte.is_ascii_digit());
        match scheme.key_digit_count() {
            Some(expected) if !all_digits || key_digits.len() != expected => {
                return Err(EpcError::KeyDigits { expected: expected.to_string(), found: key_digits });
            }
            None if !company_prefix.bytes().all(|byte| byte.is_ascii_digit()) => {
                return Err(EpcError::KeyDigits { expected: "6 to 12 leading".to_owned(), found: key_digits });
            }
            _ => {}
        }
        let decode = |part: &str| {
            percent_encoding::decode(part).map_err(|position| EpcError::InvalidPercentEncoding { position })
        };
        let with_check_digit = |digits: &str| format!("{digits}{}", check_digit_of(digits));
        let element = |code: &str, value: &str| {
            Element::new(code, value).map_err(|error| EpcError::DigitalLink(DigitalLinkError::Element(error)))
        };
        let (primary_key, qualifiers) = match scheme {
            EpcScheme::Sgtin | EpcScheme::Lgtin => {
                let (indicator, item_reference) = reference.split_at(1.min(reference.len()));
                let gtin = with_check_digit(&format!("{indicator}{company_prefix}{item_reference}"));
                let qualifier_code = if scheme == EpcScheme::Sgtin { "21" } else { "10" };
                (element("01", &gtin)?, vec![element(qualifier_code, &decode(parts[2])?)?])
            }
            EpcScheme::Sscc => {
                let (extension, serial_reference) = reference.split_at(1.min(reference.len()));
                (
                    element("00", &with_check_digit(&format!("{extension}{company_prefix}{serial_reference}")))?,
                    Vec::new(),
                )
            }
            EpcScheme::Sgln => {
                let gln = element("414", &with_check_digit(&key_digits))?;
                let extension = decode(parts[2])?;
                match extension.as_str() {
                    "0" => (gln, Vec::new()),
                    _ => (gln, vec![element("254", &extension)?]),
                }
            }
            EpcScheme::Grai => {
                // The EPC GRAI is the serialised GRAI: its serial component must not be empty
                // (TDS 2.x, 6.3.5); an unserialised GRAI has no EPC URN.
                let serial = decode(parts[2])?;
                if serial.is_empty() {
                    return Err(EpcError::NoUrnForKey { code: "8003", reason: "a GRAI needs a serial" });
                }
                let asset = format!("0{}{serial}", with_check_digit(&key_digits));
                (element("8003", &asset)?, Vec::new())
            }
            EpcScheme::Giai => (element("8004", &format!("{company_prefix}{}", decode(reference)?))?, Vec::new()),
            EpcScheme::Gsrn => (element("8018", &with_check_digit(&key_digits))?, Vec::new()),
            EpcScheme::Gsrnp => (element("8017", &with_check_digit(&key_digits))?, Vec::new()),
        };
        let digital_link = DigitalLink::new(primary_key, qualifiers, Vec::new())?;
        Ok(EpcUrn { scheme, company_prefix_length: company_prefix.len(), digital_link })
    }

    /// The URN of a Digital Link's primary key and qualifiers (data attributes are dropped):
    /// (01)+(21) is an SGTIN, (01)+(10) an LGTIN, (00) an SSCC, (414) an SGLN, (8003) with a
    /// serial a GRAI, (8004) a GIAI, (8018) a GSRN, (8017) a GSRNP.
    pub fn from_digital_link(digital_link: &DigitalLink, company_prefix_length: usize) -> Result<EpcUrn, EpcError> {
        if !(COMPANY_PREFIX_LENGTH_MINIMUM..=COMPANY_PREFIX_LENGTH_MAXIMUM).contains(&company_prefix_length) {
            return Err(EpcError::CompanyPrefixLength { found: company_prefix_length });
        }
        let primary_key = digital_link.primary_key();
        let qualifier = |code: &str| digital_link.qualifiers().iter().find(|element| element.code() == code).cloned();
        let no_urn = |reason| EpcError::NoUrnForKey { code: primary_key.code(), reason };
        let (scheme, qualifiers) = match primary_key.code() {
            "01" => match (qualifier("21"), qualifier("10")) {
                (Some(serial), _) => (EpcScheme::Sgtin, vec![serial]),
                (None, Some(lot)) => (EpcScheme::Lgtin, vec![lot]),
                (None, None) => {
                    return Err(no_urn("a GTIN needs a serial (sgtin) or a lot (lgtin)"));
                }
            },
            "00" => (EpcScheme::Sscc, Vec::new()),
            "414" => (EpcScheme::Sgln, qualifier("254").into_iter().collect()),
            "8003" if primary_key.value().len() > 14 => (EpcScheme::Grai, Vec::new()),
            "8003" => return Err(no_urn("a GRAI needs a serial")),
            "8004" => (EpcScheme::Giai, Vec::new()),
            "8018" => (EpcScheme::Gsrn, Vec::new()),
            "8017" => (EpcScheme::Gsrnp, Vec::new()),
            _ => return Err(no_urn("no EPC scheme is supported for this key")),
        };
        let key_digit_count = scheme.key_digit_count().unwrap_or(primary_key.value().len());
        if company_prefix_length > key_digit_count.min(primary_key.value().len()) {
            return Err(EpcError::CompanyPrefixLength { found: company_prefix_length });
        }
        if scheme == EpcScheme::Giai
            && !primary_key.value()[..company_prefix_length].bytes().all(|byte| byte.is_ascii_digit())
        {
            return Err(no_urn("the company prefix length runs past the digits of the GIAI"));
        }
        let digital_link = DigitalLink::new(primary_key.clone(), qualifiers, Vec::new())?;
        Ok(EpcUrn { scheme, company_prefix_length, digital_link })
    }

    pub fn scheme(&self) -> EpcScheme {
        self.scheme
    }

    pub fn company_prefix_length(&self) -> usize {
        self.company_prefix_length
    }

    /// The equivalent Digital Link, at the canonical resolver.
    pub fn to_digital_link(&self) -> DigitalLink {
        self.digital_link.clone()
    }
}

impl fmt::Display for EpcUrn {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let length = self.company_prefix_length;
        let key = self.digital_link.primary_key().value();
        let qualifier =
            self.digital_link.qualifiers().first().map(|element| percent_encoding::encode_epc(element.value()));
        formatter.write_str(self.scheme.prefix())?;
        match self.scheme {
            EpcScheme::Sgtin | EpcScheme::Lgtin => {
                let (indicator, rest) = key.split_at(1);
                let (company_prefix, item_reference) = rest[..12].split_at(length);
                write!(formatter, "{company_prefix}.{indicator}{item_reference}.{}", qualifier.unwrap_or_default())
            }
            EpcScheme::Sscc => {
                let (extension, rest) = key.split_at(1);
                let (company_prefix, serial_reference) = rest[..16].split_at(length);
                write!(formatter, "{company_prefix}.{extension}{serial_reference}")
            }
            EpcScheme::Sgln => {
                let (company_prefix, location_reference) = key[..12].split_at(length);
                let extension = qualifier.unwrap_or_else(|| "0".to_owned());
                write!(formatter, "{company_prefix}.{location_reference}.{extension}")
            }
            EpcScheme::Grai => {
                let (company_prefix, asset_type) = key[1..13].split_at(length);
                write!(formatter, "{company_prefix}.{asset_type}.{}", percent_encoding::encode_epc(&key[14..]))
            }
            EpcScheme::Giai => {
                let (company_prefix, asset_reference) = key.split_at(length);
                write!(formatter, "{company_prefix}.{}", percent_encoding::encode_epc(asset_reference))
            }
            EpcScheme::Gsrn | EpcScheme::Gsrnp => {
                let (company_prefix, service_reference) = key[..17].split_at(length);
                write!(formatter, "{company_prefix}.{service_reference}")
            }
        }
    }
}

fn scheme_name(scheme: EpcScheme) -> &'static str {
    scheme.prefix().trim_end_matches(':').rsplit(':').next().unwrap_or("")
}

fn check_digit_of(digits: &str) -> u8 {
    let values: Vec<u8> = digits.bytes().map(|byte| byte - b'0').collect();
    check_digit(&values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(urn: &str, expected_digital_link: Result<&str, &str>) {
        let actual =
            EpcUrn::parse(urn).map(|parsed| parsed.to_digital_link().to_string()).map_err(|error| error.to_string());
        assert_eq!(actual, expected_digital_link.map(str::to_owned).map_err(str::to_owned), "{urn}");
        if let Ok(parsed) = EpcUrn::parse(urn) {
            assert_eq!(parsed.to_string(), urn);
            let back = EpcUrn::from_digital_link(&parsed.to_digital_link(), parsed.company_prefix_length()).unwrap();
            assert_eq!(back, parsed);
        }
    }

    #[test]
    fn urns_to_digital_links() {
        check("urn:epc:id:sgtin:0614141.812345.6789", Ok("https://id.gs1.org/01/80614141123458/21/6789"));
        check("urn:epc:id:sgtin:0614141.812345.a%2Fb", Ok("https://id.gs1.org/01/80614141123458/21/a%2Fb"));
        check("urn:epc:id:sgtin:0614141.812345.1.2", Ok("https://id.gs1.org/01/80614141123458/21/1.2"));
        check("urn:epc:class:lgtin:4012345.012345.998877", Ok("https://id.gs1.org/01/04012345123456/10/998877"));
        check("urn:epc:id:sscc:0614141.1234567890", Ok("https://id.gs1.org/00/106141412345678908"));
        check("urn:epc:id:sgln:0614141.12345.400", Ok("https://id.gs1.org/414/0614141123452/254/400"));
        check("urn:epc:id:sgln:0614141.12345.0", Ok("https://id.gs1.org/414/0614141123452"));
        check("urn:epc:id:grai:0614141.12345.400", Ok("https://id.gs1.org/8003/00614141123452400"));
        check("urn:epc:id:giai:0614141.12345400", Ok("https://id.gs1.org/8004/061414112345400"));
        check("urn:epc:id:gsrn:0614141.1234567890", Ok("https://id.gs1.org/8018/061414112345678902"));
        check("urn:epc:id:gsrnp:0614141.1234567890", Ok("https://id.gs1.org/8017/061414112345678902"));
    }

    #[test]
    fn rejects_malformed_urns() {
        check(
            "urn:epc:id:sgtin:0614141.812345",
            Err("sgtin must be <company prefix>.<indicator digit and item reference>.<serial>"),
        );
        check("urn:epc:id:sgtin:06141.8123456.1", Err("company prefix must have 6 to 12 digits, found 5"));
        check(
            "urn:epc:id:sgtin:0614141.81234.1",
            Err("company prefix and reference must be digits with 13 digits together, found \"061414181234\""),
        );
        check("urn:epc:id:sgtin:0614141.812345.a b", Err("(21) character ' ' at position 1 is not in CSET 82 (X)"));
        check("urn:epc:id:sgtin:0614141.812345.", Err("(21) has no value"));
        check(
            "urn:epc:id:usdod:1.2",
            Err("unsupported EPC scheme \"usdod\" (supported: sgtin, lgtin, sscc, sgln, grai, giai, gsrn, gsrnp)"),
        );
        check(
            "https://id.gs1.org/01/09506000134352",
            Err("not an EPC URN: must start with urn:epc:id: or urn:epc:class:"),
        );
        check("urn:epc:id:sgtin:0614141.812345.%G", Err("malformed percent-encoding at position 0"));
        // Found by the epc_urn fuzz target: a GRAI without a serial has no EPC URN.
        check("urn:epc:id:grai:822622.822622.", Err("(8003) has no EPC URN: a GRAI needs a serial"));
    }

    #[test]
    fn digital_links_to_urns_need_the_company_prefix_length() {
        let link = DigitalLink::parse("https://example.com/01/80614141123458/22/V/10/L1/21/6789?17=261231").unwrap();
        assert_eq!(EpcUrn::from_digital_link(&link, 7).unwrap().to_string(), "urn:epc:id:sgtin:0614141.812345.6789");
        assert_eq!(EpcUrn::from_digital_link(&link, 9).unwrap().to_string(), "urn:epc:id:sgtin:061414112.8345.6789");
        assert_eq!(
            EpcUrn::from_digital_link(&link, 5).unwrap_err().to_string(),
            "company prefix must have 6 to 12 digits, found 5"
        );
        let lot = DigitalLink::parse("https://id.gs1.org/01/80614141123458/10/L1").unwrap();
        assert_eq!(EpcUrn::from_digital_link(&lot, 7).unwrap().to_string(), "urn:epc:class:lgtin:0614141.812345.L1");
        let class = DigitalLink::parse("https://id.gs1.org/01/80614141123458").unwrap();
        assert_eq!(
            EpcUrn::from_digital_link(&class, 7).unwrap_err().to_string(),
            "(01) has no EPC URN: a GTIN needs a serial (sgtin) or a lot (lgtin)"
        );
        let giai = DigitalLink::parse("https://id.gs1.org/8004/0614141AB").unwrap();
        assert_eq!(EpcUrn::from_digital_link(&giai, 7).unwrap().to_string(), "urn:epc:id:giai:0614141.AB");
        assert!(EpcUrn::from_digital_link(&giai, 8).is_err());
    }
}
