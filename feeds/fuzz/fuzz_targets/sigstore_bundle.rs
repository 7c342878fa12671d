//! Sigstore bundle verification over arbitrary bundle bytes, against a fixed (empty) trusted root: parsing,
//! DER and every check must refuse, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

const ROOT: &[u8] = br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(root) = appliance::sigstore::TrustedRoot::from_json(ROOT) else { return };
    let policy = appliance::sigstore::Policy { identity: None, key: None };
    let _ = appliance::sigstore::verify_bundle(&root, data, appliance::sigstore::Artifact::Bytes(b"artifact"), &policy);
});
