//! Digital Link URIs: parsing never panics, and a parsed link prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(link) = gs1::DigitalLink::parse(text) {
        let printed = link.to_string();
        assert_eq!(
            gs1::DigitalLink::parse(&printed).map(|again| again.to_string()),
            Ok(printed)
        );
        let _ = gs1::DigitalLink::parse_constrained(&link.constrained_uri())
            .expect("constrained form parses");
    }
});
