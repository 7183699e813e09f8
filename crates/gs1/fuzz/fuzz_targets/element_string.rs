//! Element strings: bracketed and unbracketed parsing never panics, and whatever parses prints
//! back to text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [
        gs1::ElementString::parse_bracketed(text),
        gs1::ElementString::parse_unbracketed(text),
    ]
    .into_iter()
    .flatten()
    {
        assert_eq!(
            gs1::ElementString::parse_bracketed(&parsed.to_bracketed()).as_ref(),
            Ok(&parsed)
        );
        assert_eq!(
            gs1::ElementString::parse_unbracketed(&parsed.to_unbracketed()).as_ref(),
            Ok(&parsed)
        );
    }
});
