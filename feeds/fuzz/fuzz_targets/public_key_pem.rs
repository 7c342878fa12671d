//! `PublicKey::from_pem` (and `from_der` on the same bytes). A key that parses must round-trip
//! through `to_pem`.
#![no_main]

use crypto_profiles::PublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = PublicKey::from_pem(data) {
        let again = PublicKey::from_pem(key.to_pem().as_bytes()).expect("to_pem output parses");
        assert_eq!(again, key);
        let _ = key.rsa_bits();
    }
    let _ = PublicKey::from_der(data);
});
