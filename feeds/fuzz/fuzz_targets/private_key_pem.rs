//! `PrivateKey::from_pem`, without and with a passphrase.
#![no_main]

use crypto_profiles::PrivateKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = PrivateKey::from_pem(data, None) {
        let _ = key.public_key().to_pem();
    }
    let _ = PrivateKey::from_pem(data, Some(b"fuzz"));
});
