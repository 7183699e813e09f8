//! Scanner output with symbology identifiers never panics the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scan) = gs1::ScanData::parse(text) {
        let _ = scan.element_string().to_scan_data(scan.symbology());
    }
});
