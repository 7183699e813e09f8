//! Property tests: the readers never panic, whatever the input, and what they accept survives
//! a JSON-LD round trip with the same hash.

use proptest::prelude::*;

use crate::{identifier, time, vocabulary};

/// A small valid document whose field values the strategies replace.
fn document_with(event_time: &str, epc: &str, step: &str, quantity: &str, extension: &str) -> String {
    format!(
        r#"{{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{{"ex":"https://ns.example.com/"}}],
"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2020-01-01T00:00:00Z",
"epcisBody":{{"eventList":[{{"type":"ObjectEvent","eventTime":{event_time},"eventTimeZoneOffset":"+01:00",
"epcList":[{epc}],"action":"OBSERVE","bizStep":{step},
"quantityList":[{{"epcClass":"urn:epc:class:lgtin:4012345.012345.998877","quantity":{quantity},"uom":"KGM"}}],
"ex:field":{extension}}}]}}}}"#
    )
}

fn json_string() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|text| serde_json::Value::String(text).to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn readers_never_panic_on_arbitrary_text(text in any::<String>()) {
        let _ = crate::parse_json_document(&text);
        let _ = crate::parse_json_event(&text);
        let _ = crate::parse_xml_document(&text);
        let _ = crate::parse_xml_event(&text);
        let _ = crate::read_document_leniently(&text);
    }

    #[test]
    fn readers_never_panic_on_xml_like_text(text in "(<[a-zA-Z:]{1,12}( [a-z]{1,6}=\"[^\"<]{0,8}\")?>|</[a-zA-Z:]{1,12}>|[^<]{0,12}|<!\\[CDATA\\[[^\\]]{0,6}\\]\\]>){0,40}") {
        let _ = crate::parse_xml_document(&text);
        let _ = crate::parse_xml_event(&text);
        let wrapped = format!("<epcis:EPCISDocument xmlns:epcis=\"urn:epcglobal:epcis:xsd:2\" schemaVersion=\"2.0\" creationDate=\"2020-01-01T00:00:00Z\"><EPCISBody><EventList><ObjectEvent>{text}</ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>");
        let _ = crate::parse_xml_document(&wrapped);
    }

    #[test]
    fn value_parsers_never_panic(text in any::<String>()) {
        let _ = identifier::normalise(&text);
        let _ = time::Timestamp::parse(&text);
        let _ = time::TimeZoneOffset::parse(&text);
        let _ = vocabulary::normalise(vocabulary::VocabularyKind::BusinessStep, &text);
        let _ = crate::hash::canonical_value(&text);
        let _ = vocabulary::expand_gs1_term(&text);
    }

    #[test]
    fn identifier_like_text_never_panics(
        scheme in "(sgtin|sscc|sgln|grai|giai|gsrn|gsrnp|gdti|cpi|sgcn|ginc|gsin|itip|upui|pgln|lgtin|gid|xyz)",
        kind in "(id|class|idpat)",
        body in "[0-9A-Za-z.%*!'()-]{0,40}",
        path in "(/[0-9a-z]{1,5}/[0-9A-Za-z%.-]{0,20}){0,4}",
    ) {
        let _ = identifier::normalise(&format!("urn:epc:{kind}:{scheme}:{body}"));
        let _ = identifier::normalise(&format!("https://id.gs1.org{path}"));
        let _ = identifier::normalise(&format!("https://example.com/x{path}?17=201231"));
    }

    #[test]
    fn accepted_documents_round_trip_with_the_same_hash(
        event_time in prop_oneof![Just("\"2020-03-04T11:00:30.123+01:00\"".to_owned()), json_string()],
        epc in prop_oneof![Just("\"urn:epc:id:sgtin:4012345.011111.9876\"".to_owned()), json_string()],
        step in prop_oneof![Just("\"shipping\"".to_owned()), Just("\"urn:epcglobal:cbv:bizstep:receiving\"".to_owned()), json_string()],
        quantity in prop_oneof![any::<u32>().prop_map(|number| number.to_string()), any::<f64>().prop_map(|number| serde_json::json!(number).to_string()), json_string()],
        extension in prop_oneof![json_string(), any::<i64>().prop_map(|number| number.to_string()), Just("{\"ex:inner\":[\"1.50\",\"x\"]}".to_owned())],
    ) {
        let text = document_with(&event_time, &epc, &step, &quantity, &extension);
        if let Ok(document) = crate::parse_json_document(&text) {
            let output = crate::jsonld::document_to_json(&document);
            let reparsed = crate::read_json_document(&output);
            prop_assert!(reparsed.is_ok(), "output rejected: {:?}", reparsed.err());
            let reparsed = reparsed.unwrap_or_else(|_| unreachable!());
            prop_assert!(crate::documents_equal(&document, &reparsed));
            prop_assert_eq!(document.event_hash_ids(), reparsed.event_hash_ids());
        }
    }
}
