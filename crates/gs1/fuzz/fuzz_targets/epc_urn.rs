//! EPC URNs: parsing never panics, and a parsed URN prints back to an equal URN.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(urn) = gs1::EpcUrn::parse(text) {
        assert_eq!(gs1::EpcUrn::parse(&urn.to_string()).as_ref(), Ok(&urn));
        let link = urn.to_digital_link();
        assert_eq!(
            gs1::EpcUrn::from_digital_link(&link, urn.company_prefix_length()).as_ref(),
            Ok(&urn)
        );
    }
});
