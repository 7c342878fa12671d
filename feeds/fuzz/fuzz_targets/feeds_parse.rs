//! `feeds::parse` over arbitrary bytes, under each name extension that changes detection (JSON, YAML,
//! CSV). A document that parses must survive a JSON round trip of its observations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["fuzz.json", "fuzz.yaml", "fuzz.csv"] {
        let Ok(doc) = feeds::parse(name, data) else {
            continue;
        };
        let json = serde_json::to_string(&doc).expect("a parsed document serialises");
        let back: feeds::Document =
            serde_json::from_str(&json).expect("a serialised document deserialises");
        assert_eq!(back.format, doc.format);
        assert_eq!(back.observations.len(), doc.observations.len());
    }
});
