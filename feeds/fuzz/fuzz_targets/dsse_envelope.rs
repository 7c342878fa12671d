//! `Envelope::from_json` over arbitrary bytes, then decoding and verification against a fixed policy.
//! An envelope that parses must round-trip through `to_json`.
#![no_main]

use crypto_profiles::dsse::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::from_json(data) else {
        return;
    };
    let again = Envelope::from_json(&env.to_json()).expect("to_json output parses");
    assert_eq!(again, env);
    let _ = env.payload_bytes();
    let _ = env.verify(stella_fuzz::trust_policy());
});
