//! Sign/verify round trips and negative cases, once per profile and per scheme.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crypto_profiles::dsse::{DsseError, Envelope, SignatureOutcome, TrustPolicy};
use crypto_profiles::{
    DigestAlg, KeyError, PrivateKey, Profile, ProfileId, PublicKey, SigAlg, Signer as _,
    Verifier as _, VerifyError,
};

fn profile(id: ProfileId) -> Profile {
    Profile::new(id).unwrap()
}

/// Every scheme of a profile: sign, verify, and the negative cases.
fn check_profile(id: ProfileId) {
    let p = profile(id);
    for &alg in p.signatures() {
        let key = PrivateKey::generate(&p, Some(alg)).unwrap();
        assert_eq!(key.algorithm(), alg);
        let public = key.public_key().clone();
        // PEM round trip, plain and encrypted.
        let pem = key.to_pkcs8_pem(None).unwrap();
        let again = PrivateKey::from_pem(pem.as_bytes(), None).unwrap();
        assert_eq!(again.key_id(), public.key_id());
        let enc = key.to_pkcs8_pem(Some(b"correct horse")).unwrap();
        assert!(enc.contains("ENCRYPTED PRIVATE KEY"));
        assert!(matches!(
            PrivateKey::from_pem(enc.as_bytes(), None),
            Err(KeyError::Passphrase)
        ));
        assert!(matches!(
            PrivateKey::from_pem(enc.as_bytes(), Some(b"wrong")),
            Err(KeyError::Passphrase)
        ));
        let dec = PrivateKey::from_pem(enc.as_bytes(), Some(b"correct horse")).unwrap();
        assert_eq!(dec.key_id(), public.key_id());
        let pub_again = PublicKey::from_pem(public.to_pem().as_bytes()).unwrap();
        assert_eq!(pub_again, public);
        // Key id is the family digest of the SPKI DER.
        let expect_id = crypto_profiles::digest_with(alg.key_id_digest(), public.spki_der())
            .unwrap()
            .hex();
        assert_eq!(public.key_id().as_str(), expect_id);
        // Debug never shows key material.
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("BEGIN"), "{dbg}");

        let signer = p.signer(key).unwrap();
        let msg = b"stella ops kit manifest";
        let sig = signer.sign(msg).unwrap();
        let verifier = p.verifier(&public).unwrap();
        verifier
            .verify(msg, &sig)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));

        // Flipped bit in the signature and in the message.
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            verifier.verify(msg, &bad),
            Err(VerifyError::BadSignature),
            "{alg} flipped sig"
        );
        assert_eq!(
            verifier.verify(b"stella ops kit manifesT", &sig),
            Err(VerifyError::BadSignature)
        );
        // Truncated signature.
        assert_eq!(
            verifier.verify(msg, &sig[..sig.len() - 1]),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(verifier.verify(msg, &[]), Err(VerifyError::BadSignature));
        // Wrong key of the same scheme.
        let other = PrivateKey::generate(&p, Some(alg)).unwrap();
        assert_eq!(
            p.verify(other.public_key(), msg, &sig),
            Err(VerifyError::BadSignature),
            "{alg} wrong key"
        );
    }
}

/// Strict mode: every other profile refuses this profile's keys, naming algorithm and profile.
fn check_strict(id: ProfileId) {
    let p = profile(id);
    let key = PrivateKey::generate(&p, None).unwrap();
    for other in ProfileId::ALL {
        if key.algorithm().families().contains(&other) {
            continue;
        }
        let q = profile(other);
        let err = q.verify(key.public_key(), b"m", b"s").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "algorithm '{}' is not allowed under profile '{}'",
                key.algorithm(),
                other
            ),
        );
        for &d in p.digests().iter().filter(|d| !q.allows_digest(**d)) {
            let e = q.hasher_for(d).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("'{d}' is not allowed under profile '{other}'")),
                "{e}"
            );
        }
    }
    // Generating a key of a foreign scheme is refused too.
    let foreign = SigAlg::ALL
        .into_iter()
        .find(|a| !a.families().contains(&id))
        .unwrap();
    assert!(PrivateKey::generate(&p, Some(foreign)).is_err());
}

/// A DSSE envelope signed by this profile's key and a key of another profile: the other signature is
/// recorded, never counted.
fn check_dsse(id: ProfileId) {
    let p = profile(id);
    let other_id = if id == ProfileId::Gost {
        ProfileId::Sm
    } else {
        ProfileId::Gost
    };
    let q = profile(other_id);
    let k1 = PrivateKey::generate(&p, None).unwrap();
    let k2 = PrivateKey::generate(&q, None).unwrap();
    let (pub1, pub2) = (k1.public_key().clone(), k2.public_key().clone());
    let s1 = p.signer(k1).unwrap();
    let s2 = q.signer(k2).unwrap();
    let env = Envelope::sign(
        "application/vnd.stella.test+json",
        b"{\"a\":1}",
        &[&s1, &s2],
    )
    .unwrap();
    let env = Envelope::from_json(&env.to_json()).unwrap();

    let policy = TrustPolicy::new(p.clone(), vec![pub1.clone(), pub2.clone()], 1).unwrap();
    let ok = env.verify(&policy).unwrap();
    assert_eq!(ok.payload, b"{\"a\":1}");
    assert_eq!(ok.counted, vec![pub1.key_id().clone()]);
    assert!(
        matches!(ok.notes[1].outcome, SignatureOutcome::OtherProfile { .. }),
        "{:?}",
        ok.notes
    );

    // Threshold 2 under this profile cannot be met by one key of it plus one of another profile.
    assert!(TrustPolicy::new(p.clone(), vec![pub1.clone(), pub2.clone()], 2).is_err());
    // Untrusted signer.
    let policy2 = TrustPolicy::new(q.clone(), vec![pub2.clone()], 1).unwrap();
    assert!(env.verify(&policy2).is_ok());
    let stranger = PrivateKey::generate(&p, None).unwrap();
    let policy3 = TrustPolicy::new(p.clone(), vec![stranger.public_key().clone()], 1).unwrap();
    let err = env.verify(&policy3).unwrap_err();
    assert!(
        matches!(
            err,
            DsseError::ThresholdNotMet {
                counted: 0,
                threshold: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("key is not trusted"), "{err}");
    // Tampered payload.
    let mut bad = env.clone();
    bad.payload = base64_of(b"{\"a\":2}");
    assert!(bad.verify(&policy).is_err());
    // Tampered payload type.
    let mut bad = env.clone();
    bad.payload_type.push('x');
    assert!(bad.verify(&policy).is_err());
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

macro_rules! per_profile {
    ($($name:ident => $id:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[test] fn sign_verify_and_negatives() { check_profile($id) }
            #[test] fn strict_mode() { check_strict($id) }
            #[test] fn dsse_multi_profile() { check_dsse($id) }
            #[test] fn digests_stream() {
                let p = profile($id);
                for &d in p.digests() {
                    let mut h = p.hasher_for(d).unwrap();
                    h.update(b"ab").unwrap();
                    h.update(b"c").unwrap();
                    let streamed = h.finish().unwrap();
                    assert_eq!(streamed, crypto_profiles::digest_with(d, b"abc").unwrap());
                    assert_eq!(streamed.as_bytes().len(), d.output_len());
                }
                let _ = DigestAlg::ALL;
            }
        }
    )*};
}

per_profile! {
    fips => ProfileId::Fips,
    eidas => ProfileId::Eidas,
    gost => ProfileId::Gost,
    sm => ProfileId::Sm,
}

#[test]
fn non_compliant_profile_refuses_to_start() {
    let err = Profile::from_parts(
        ProfileId::Fips,
        DigestAlg::Sha256,
        &[DigestAlg::Sha256, DigestAlg::Streebog256],
        &[SigAlg::EcdsaP256Sha256],
        SigAlg::EcdsaP256Sha256,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "profile 'fips' refuses to start: part 'streebog256' is not of its family"
    );
}

#[test]
fn malformed_pem_is_named() {
    let e = PublicKey::from_pem(b"hello").unwrap_err();
    assert_eq!(e.to_string(), "malformed public key: no PEM 'BEGIN' line");
    let e = PublicKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("malformed public key: not a valid SPKI structure"),
        "{e}"
    );
    let e = PrivateKey::from_pem(
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("expected 'PRIVATE KEY'"), "{e}");
}

#[test]
fn sm2_distinguishing_id_is_part_of_the_signature() {
    let p = profile(ProfileId::Sm);
    let key = PrivateKey::generate(&p, None).unwrap();
    let public = key.public_key().clone();
    let sig = p.signer(key).unwrap().sign(b"m").unwrap();
    p.verify(&public, b"m", &sig).unwrap();
    let other = profile(ProfileId::Sm)
        .with_sm2_id(b"ALICE123@YAHOO.COM")
        .unwrap();
    assert_eq!(
        other.verify(&public, b"m", &sig),
        Err(VerifyError::BadSignature)
    );
}
