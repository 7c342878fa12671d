//! `feeds::matching::parse_purl` over arbitrary text, and the index keys built from what it returns.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(purl) = feeds::matching::parse_purl(&text) {
        let _ = feeds::matching::lookup_keys(&purl);
    }
});
