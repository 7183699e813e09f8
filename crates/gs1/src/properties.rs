//! Property tests across the parsers: printing then parsing canonical values is the identity,
//! and no parser panics on arbitrary input.

use proptest::prelude::*;

use crate::application_identifier::CSET82;
use crate::digital_link::DigitalLink;
use crate::element_string::{Element, ElementString, GROUP_SEPARATOR};
use crate::epc::EpcUrn;
use crate::keys::check_digit;
use crate::scan::{ScanData, Symbology};

fn digits(length: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0u8..10, length)
}

fn digit_string(values: &[u8]) -> String {
    values.iter().map(|digit| char::from(b'0' + digit)).collect()
}

fn with_check_digit(body: &[u8]) -> String {
    let mut all = body.to_vec();
    all.push(check_digit(body));
    digit_string(&all)
}

fn cset82_text(length_maximum: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(CSET82.to_vec()), 1..=length_maximum)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
}

fn gtin() -> impl Strategy<Value = String> {
    digits(13).prop_map(|body| with_check_digit(&body))
}

fn yymmdd() -> impl Strategy<Value = String> {
    (0u8..100, 1u8..13, 0u8..29).prop_map(|(year, month, day)| format!("{year:02}{month:02}{day:02}"))
}

/// Valid element strings around a GTIN: optional lot, expiry, serial, net weight, price.
fn element_string() -> impl Strategy<Value = ElementString> {
    (
        gtin(),
        proptest::option::of(cset82_text(20)),
        proptest::option::of(yymmdd()),
        proptest::option::of(cset82_text(20)),
        proptest::option::of((0u8..6, digits(6))),
        proptest::option::of(cset82_text(30)),
    )
        .prop_map(|(gtin, lot, expiry, serial, weight, internal)| {
            let mut elements = vec![Element::new("01", &gtin).unwrap()];
            if let Some(lot) = lot {
                elements.push(Element::new("10", &lot).unwrap());
            }
            if let Some(expiry) = expiry {
                elements.push(Element::new("17", &expiry).unwrap());
            }
            if let Some(serial) = serial {
                elements.push(Element::new("21", &serial).unwrap());
            }
            if let Some((decimals, weight)) = weight {
                elements.push(Element::new(&format!("310{decimals}"), &digit_string(&weight)).unwrap());
            }
            if let Some(internal) = internal {
                elements.push(Element::new("91", &internal).unwrap());
            }
            ElementString::new(elements).unwrap()
        })
}

/// Text biased towards the syntax of the parsers: brackets, separators, percent signs, digits.
fn syntax_noise() -> impl Strategy<Value = String> {
    let pieces = proptest::sample::select(vec![
        "(",
        ")",
        "\\(",
        "\u{1d}",
        "%",
        "%2F",
        "%C3%A9",
        "/",
        "?",
        "&",
        "=",
        "#",
        ".",
        ":",
        "]C1",
        "]Q1",
        "]E0",
        "https://",
        "urn:epc:id:sgtin:",
        "01",
        "10",
        "21",
        "17",
        "00",
        "414",
        "254",
        "8003",
        "3103",
        "0950600013435",
        "2",
        "9",
        "A",
        "é",
        " ",
        "",
    ]);
    proptest::collection::vec(pieces, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn element_strings_print_and_parse_back(element_string in element_string()) {
        prop_assert_eq!(&ElementString::parse_bracketed(&element_string.to_bracketed()).unwrap(), &element_string);
        prop_assert_eq!(&ElementString::parse_unbracketed(&element_string.to_unbracketed()).unwrap(), &element_string);
        let scanned = ScanData::parse(&element_string.to_scan_data(Symbology::Gs1DataMatrix).unwrap()).unwrap();
        prop_assert_eq!(scanned.element_string(), element_string);
    }

    #[test]
    fn digital_links_print_and_parse_back(element_string in element_string(), stem in "(/[a-z]{1,8}){0,2}") {
        let link = DigitalLink::from_element_string(&element_string).unwrap();
        let uri = link.uri(&format!("https://example.com{stem}"));
        let parsed = DigitalLink::parse(&uri).unwrap();
        prop_assert_eq!(parsed.to_string(), uri);
        prop_assert_eq!(parsed.to_element_string(), link.to_element_string());
        let canonical = DigitalLink::parse(&link.canonical_uri()).unwrap();
        prop_assert_eq!(canonical.canonical_uri(), link.canonical_uri());
        let constrained = DigitalLink::parse_constrained(&link.constrained_uri()).unwrap();
        prop_assert_eq!(constrained.constrained_uri(), link.constrained_uri());
    }

    #[test]
    fn epc_urns_print_and_parse_back(body in digits(13), company_prefix_length in 6usize..=12, serial in cset82_text(20)) {
        let gtin = with_check_digit(&body);
        let link = DigitalLink::new(Element::new("01", &gtin).unwrap(), vec![Element::new("21", &serial).unwrap()], Vec::new()).unwrap();
        let urn = EpcUrn::from_digital_link(&link, company_prefix_length).unwrap();
        let parsed = EpcUrn::parse(&urn.to_string()).unwrap();
        prop_assert_eq!(&parsed, &urn);
        prop_assert_eq!(parsed.to_digital_link(), link);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in ".{0,80}") {
        let _ = ElementString::parse_bracketed(&text);
        let _ = ElementString::parse_unbracketed(&text);
        let _ = ScanData::parse(&text);
        let _ = DigitalLink::parse(&text);
        let _ = EpcUrn::parse(&text);
    }

    #[test]
    fn parsers_never_panic_on_syntax_noise(text in syntax_noise()) {
        let _ = ElementString::parse_bracketed(&text);
        let _ = ElementString::parse_unbracketed(&text);
        let _ = ScanData::parse(&text);
        let _ = ScanData::parse(&format!("]d2{text}"));
        let _ = DigitalLink::parse(&format!("https://example.com/{text}"));
        let _ = DigitalLink::parse(&text);
        let _ = EpcUrn::parse(&text);
        let _ = EpcUrn::parse(&format!("urn:epc:id:sgtin:{text}"));
    }

    #[test]
    fn unbracketed_values_never_swallow_separators(element_string in element_string()) {
        let unbracketed = element_string.to_unbracketed();
        prop_assert!(!unbracketed.ends_with(GROUP_SEPARATOR));
    }
}
