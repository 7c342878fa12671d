//! Public keys and signature checks for the algorithms Sigstore uses: ECDSA P-256/P-384/P-521 with
//! the curve's SHA-2, Ed25519, and RSA PKCS#1 v1.5 with SHA-256. The algorithm comes from the key, as
//! in Sigstore's clients; a verifier never picks a weaker digest than the curve's.

use openssl::hash::{hash, MessageDigest};
use openssl::md::Md;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::Verifier;

/// The digest a key signs messages with.
pub(crate) fn digest_for(key: &PKeyRef<Public>) -> Option<MessageDigest> {
    match key.id() {
        Id::EC => {
            let ec = key.ec_key().ok()?;
            match ec.group().curve_name()? {
                Nid::X9_62_PRIME256V1 => Some(MessageDigest::sha256()),
                Nid::SECP384R1 => Some(MessageDigest::sha384()),
                Nid::SECP521R1 => Some(MessageDigest::sha512()),
                _ => None,
            }
        }
        Id::RSA => Some(MessageDigest::sha256()),
        _ => None,
    }
}

/// Verifies `sig` over `data` with the key's own digest. Any failure, including a malformed
/// signature, is `false`.
pub(crate) fn verify(key: &PKeyRef<Public>, data: &[u8], sig: &[u8]) -> bool {
    verify_with(key, None, data, sig)
}

/// As [`verify`], but an ECDSA key may be told the SHA-2 digest to use: Sigstore clients sign
/// message bundles with the digest named in the bundle (sigstore-python signs SHA-256 with P-384
/// keys), and the log entry records that digest too.
pub(crate) fn verify_with(
    key: &PKeyRef<Public>,
    md: Option<MessageDigest>,
    data: &[u8],
    sig: &[u8],
) -> bool {
    let result = match key.id() {
        Id::ED25519 => {
            Verifier::new_without_digest(key).and_then(|mut v| v.verify_oneshot(sig, data))
        }
        Id::EC | Id::RSA => {
            let md = match (key.id(), md) {
                (Id::EC, Some(md)) => Some(md),
                _ => digest_for(key),
            };
            match md {
                Some(md) => Verifier::new(md, key).and_then(|mut v| {
                    v.update(data)?;
                    v.verify(sig)
                }),
                None => return false,
            }
        }
        _ => return false,
    };
    result.unwrap_or(false)
}

/// Verifies `sig` over a message known only by its SHA-256 (ECDSA and RSA-SHA256 only: Ed25519
/// signs the message itself).
pub(crate) fn verify_prehashed_sha256(key: &PKeyRef<Public>, digest: &[u8], sig: &[u8]) -> bool {
    let allowed = match key.id() {
        Id::EC => digest_for(key).is_some(),
        Id::RSA => true,
        _ => false,
    };
    if !allowed {
        return false;
    }
    let run = || -> Result<bool, openssl::error::ErrorStack> {
        let mut ctx = PkeyCtx::new(key)?;
        ctx.verify_init()?;
        if key.id() == Id::RSA {
            ctx.set_rsa_padding(Padding::PKCS1)?;
            ctx.set_signature_md(Md::sha256())?;
        }
        ctx.verify(digest, sig)
    };
    run().unwrap_or(false)
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(d) = hash(MessageDigest::sha256(), data) {
        out.copy_from_slice(&d);
    }
    out
}

/// Parses a PEM public key (SPKI).
pub(crate) fn public_key_from_pem(pem: &[u8]) -> Option<PKey<Public>> {
    PKey::public_key_from_pem(pem).ok()
}

/// DER SubjectPublicKeyInfo of a key, for comparisons.
pub(crate) fn spki_der(key: &PKeyRef<Public>) -> Vec<u8> {
    key.public_key_to_der().unwrap_or_default()
}
