//! `Manifest::from_bytes` over arbitrary bytes. A manifest that parses must re-serialise to bytes that
//! parse to the same value.
#![no_main]

use kit_builder::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_bytes(data) {
        let again = Manifest::from_bytes(&m.to_bytes()).expect("canonical bytes parse");
        assert_eq!(again, m);
        let _ = m.expires_at();
        let _ = m.created_at();
    }
});
