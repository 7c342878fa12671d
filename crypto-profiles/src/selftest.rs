//! Power-on self-test: known answers for every digest of a profile and a sign/verify pair for every scheme,
//! run before a profile is trusted with real data (as FIPS 140 modules do at start-up).

use crate::{digest_with, DigestAlg, PrivateKey, Profile, Signer as _, Verifier as _};

/// Published known answers (FIPS 180-4 "abc", RFC 6986 example 1, GB/T 32905 "abc").
fn known_answer(alg: DigestAlg) -> (&'static [u8], &'static str) {
    match alg {
        DigestAlg::Sha256 => (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        DigestAlg::Sha384 => (
            b"abc",
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        DigestAlg::Streebog256 => (
            b"012345678901234567890123456789012345678901234567890123456789012",
            "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500",
        ),
        DigestAlg::Streebog512 => (
            b"012345678901234567890123456789012345678901234567890123456789012",
            "1b54d01a4af5b9d5cc3d86d68d285462b19abc2475222f35c085122be4ba1ffa00ad30f8767b3a82384c6574f024c311e2a481332b08ef7f41797891c1646f48",
        ),
        DigestAlg::Sm3 => (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    }
}

/// One self-test result line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SelfTestItem {
    /// The algorithm tested.
    pub algorithm: String,
    /// `ok` or what failed.
    pub result: String,
}

impl Profile {
    /// Runs the self-test; every item is reported, and the result is an error if any failed.
    pub fn self_test(&self) -> Result<Vec<SelfTestItem>, Vec<SelfTestItem>> {
        let mut items = Vec::new();
        let mut failed = false;
        for &d in self.digests() {
            let (input, expected) = known_answer(d);
            let result = match digest_with(d, input) {
                Ok(got) if got.hex() == expected => "ok".to_owned(),
                Ok(got) => format!("known answer mismatch: got {}", got.hex()),
                Err(e) => e.to_string(),
            };
            failed |= result != "ok";
            items.push(SelfTestItem {
                algorithm: d.name().into(),
                result,
            });
        }
        for &alg in self.signatures() {
            let result = (|| -> Result<(), String> {
                let key = PrivateKey::generate(self, Some(alg)).map_err(|e| e.to_string())?;
                let public = key.public_key().clone();
                let sig = self
                    .signer(key)
                    .map_err(|e| e.to_string())?
                    .sign(b"self-test")
                    .map_err(|e| e.to_string())?;
                let v = self.verifier(&public).map_err(|e| e.to_string())?;
                v.verify(b"self-test", &sig)
                    .map_err(|e| format!("pairwise check failed: {e}"))?;
                if v.verify(b"self-tesT", &sig).is_ok() {
                    return Err("a wrong message verified".into());
                }
                Ok(())
            })();
            let result = result.err().unwrap_or_else(|| "ok".into());
            failed |= result != "ok";
            items.push(SelfTestItem {
                algorithm: alg.name().into(),
                result,
            });
        }
        if failed {
            Err(items)
        } else {
            Ok(items)
        }
    }
}
