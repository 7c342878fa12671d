//! Keys: generation, PKCS#8 / SPKI PEM, key ids.

use crate::alg::{SigAlg, RSA_MIN_BITS};
use crate::digest::digest_with;
use crate::error::{BackendError, KeyError};
use crate::{ossl_ffi, Profile};
use base64::Engine as _;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// A key id: the hex digest of the SPKI DER under the key family's primary digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key id as written elsewhere (DSSE `keyid`, manifests). Only shape is checked.
    pub fn parse(s: &str) -> Option<KeyId> {
        (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| KeyId(s.to_ascii_lowercase()))
    }

    /// The first 16 hex digits, for display.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(16)]
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// A public key whose scheme is known.
#[derive(Clone)]
pub struct PublicKey {
    alg: SigAlg,
    spki_der: Vec<u8>,
    pkey: PKey<Public>,
    key_id: KeyId,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("alg", &self.alg)
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// GOST R 34.10-2012 OID prefix 1.2.643.7.1.1.1 as DER content bytes.
const GOST_OID_PREFIX: &[u8] = &[0x2a, 0x85, 0x03, 0x07, 0x01, 0x01, 0x01];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Decodes the first PEM block; returns (label, der).
fn pem_block(pem: &[u8], what: &'static str) -> Result<(String, Zeroizing<Vec<u8>>), KeyError> {
    let text = std::str::from_utf8(pem).map_err(|_| KeyError::Malformed {
        what,
        reason: "not UTF-8 text".into(),
    })?;
    let malformed = |reason: &str| KeyError::Malformed {
        what,
        reason: reason.to_owned(),
    };
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| malformed("no PEM 'BEGIN' line"))?;
    let rest = &text[start + 11..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| malformed("unterminated PEM 'BEGIN' line"))?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let end = rest[body_start..]
        .find(&end_marker)
        .ok_or_else(|| malformed("no matching PEM 'END' line"))?
        + body_start;
    let body: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| malformed(&format!("bad base64 in PEM body: {e}")))?;
    Ok((label, Zeroizing::new(der)))
}

/// Loads the GOST engine when a key needs it, so GOST keys parse in any process.
fn ensure_engine_for(der: &[u8], label: &str) -> Result<(), KeyError> {
    if contains(der, GOST_OID_PREFIX) {
        ossl_ffi::load_gost_engine().map_err(|reason| {
            KeyError::Profile(crate::ProfileError::GostEngineMissing { reason })
        })?;
    } else if label == "ENCRYPTED PRIVATE KEY" {
        // The algorithm is hidden until decryption; the engine is loaded opportunistically.
        let _ = ossl_ffi::load_gost_engine();
    }
    Ok(())
}

/// The SM2 curve OID 1.2.156.10197.1.301 as a DER object identifier.
const SM2_CURVE_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d];

/// The scheme of an SPKI. OpenSSL 3.0 gives provider-native SM2 keys no legacy type id, so SM2 is
/// recognised by its curve OID in the SPKI; everything else by OpenSSL's key type and curve.
fn alg_of_spki<T: openssl::pkey::HasParams>(
    spki_der: &[u8],
    pkey: &PKey<T>,
) -> Result<SigAlg, KeyError> {
    if contains(spki_der, SM2_CURVE_OID) {
        return Ok(SigAlg::Sm2Sm3);
    }
    alg_of(pkey)
}

/// The scheme a key is used with, from its type and curve.
fn alg_of<T: openssl::pkey::HasParams>(pkey: &PKey<T>) -> Result<SigAlg, KeyError> {
    let gost256 = ossl_ffi::nid_from_short_name("gost2012_256").as_raw();
    let gost512 = ossl_ffi::nid_from_short_name("gost2012_512").as_raw();
    let id = pkey.id();
    match id {
        Id::ED25519 => Ok(SigAlg::Ed25519),
        Id::SM2 => Ok(SigAlg::Sm2Sm3),
        Id::RSA | Id::RSA_PSS => Ok(SigAlg::RsaPssSha256),
        Id::EC => alg_of_ec(pkey),
        other if other.as_raw() == gost256 && gost256 != 0 => Ok(SigAlg::Gost2012_256),
        other if other.as_raw() == gost512 && gost512 != 0 => Ok(SigAlg::Gost2012_512),
        // Provider-native keys (SM2 generated through OpenSSL 3's key manager) report no legacy id; they
        // are EC keys underneath, identified by their curve.
        other => alg_of_ec(pkey).map_err(|_| {
            KeyError::Unsupported(format!("key type with openssl id {}", other.as_raw()))
        }),
    }
}

fn alg_of_ec<T: openssl::pkey::HasParams>(pkey: &PKey<T>) -> Result<SigAlg, KeyError> {
    let ec = pkey.ec_key().map_err(BackendError::from)?;
    match ec.group().curve_name() {
        Some(Nid::X9_62_PRIME256V1) => Ok(SigAlg::EcdsaP256Sha256),
        Some(Nid::SECP384R1) => Ok(SigAlg::EcdsaP384Sha384),
        Some(Nid::BRAINPOOL_P256R1) => Ok(SigAlg::EcdsaBrainpoolP256r1Sha256),
        Some(Nid::BRAINPOOL_P384R1) => Ok(SigAlg::EcdsaBrainpoolP384r1Sha384),
        Some(Nid::SM2) => Ok(SigAlg::Sm2Sm3),
        Some(other) => Err(KeyError::Unsupported(format!(
            "ec key on curve '{}'",
            other.short_name().unwrap_or("unknown")
        ))),
        None => Err(KeyError::Unsupported(
            "ec key with explicit curve parameters".into(),
        )),
    }
}

impl PublicKey {
    /// Parses an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, KeyError> {
        let (label, der) = pem_block(pem, "public key")?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Malformed {
                what: "public key",
                reason: format!("PEM label is '{label}', expected 'PUBLIC KEY' (SPKI)"),
            });
        }
        PublicKey::from_der(&der)
    }

    /// Parses SPKI DER.
    pub fn from_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        openssl::init();
        ensure_engine_for(der, "PUBLIC KEY")?;
        let pkey = PKey::public_key_from_der(der).map_err(|e| KeyError::Malformed {
            what: "public key",
            reason: format!("not a valid SPKI structure ({})", first_reason(&e)),
        })?;
        PublicKey::from_pkey(pkey)
    }

    pub(crate) fn from_pkey(pkey: PKey<Public>) -> Result<PublicKey, KeyError> {
        let spki_der = pkey.public_key_to_der().map_err(BackendError::from)?;
        let alg = alg_of_spki(&spki_der, &pkey)?;
        let key_id = KeyId(digest_with(alg.key_id_digest(), &spki_der)?.hex());
        Ok(PublicKey {
            alg,
            spki_der,
            pkey,
            key_id,
        })
    }

    /// The scheme this key verifies.
    pub fn algorithm(&self) -> SigAlg {
        self.alg
    }

    /// The key id.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The SPKI DER bytes.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SPKI PEM.
    pub fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.spki_der);
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }

    /// RSA modulus size, for RSA keys.
    pub fn rsa_bits(&self) -> Option<u32> {
        (self.alg == SigAlg::RsaPssSha256).then(|| self.pkey.bits())
    }

    pub(crate) fn pkey(&self) -> &PKey<Public> {
        &self.pkey
    }
}

fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|x| x.reason().map(str::to_owned))
        .unwrap_or_else(|| "unparseable".to_owned())
}

/// A private key. Its bytes are never printed and are wiped when dropped (OpenSSL clears its own copy).
pub struct PrivateKey {
    alg: SigAlg,
    pkey: PKey<Private>,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg)
            .field("key_id", self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates a key for `alg`, or the profile's default scheme. Strict: the scheme must be the profile's.
    pub fn generate(profile: &Profile, alg: Option<SigAlg>) -> Result<PrivateKey, KeyError> {
        let alg = alg.unwrap_or(profile.default_signature());
        profile.check_signature(alg)?;
        let ec = |nid: Nid| -> Result<PKey<Private>, BackendError> {
            let group = EcGroup::from_curve_name(nid)?;
            Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
        };
        let pkey = match alg {
            SigAlg::EcdsaP256Sha256 => ec(Nid::X9_62_PRIME256V1)?,
            SigAlg::EcdsaP384Sha384 => ec(Nid::SECP384R1)?,
            SigAlg::EcdsaBrainpoolP256r1Sha256 => ec(Nid::BRAINPOOL_P256R1)?,
            SigAlg::EcdsaBrainpoolP384r1Sha384 => ec(Nid::BRAINPOOL_P384R1)?,
            SigAlg::Ed25519 => PKey::generate_ed25519().map_err(BackendError::from)?,
            SigAlg::RsaPssSha256 => {
                PKey::from_rsa(Rsa::generate(RSA_MIN_BITS).map_err(BackendError::from)?)
                    .map_err(BackendError::from)?
            }
            SigAlg::Gost2012_256 => {
                ossl_ffi::gost_keygen("gost2012_256", "TCA").map_err(BackendError::from)?
            }
            SigAlg::Gost2012_512 => {
                ossl_ffi::gost_keygen("gost2012_512", "A").map_err(BackendError::from)?
            }
            SigAlg::Sm2Sm3 => {
                let mut ctx =
                    openssl::pkey_ctx::PkeyCtx::new_id(Id::SM2).map_err(BackendError::from)?;
                ctx.keygen_init().map_err(BackendError::from)?;
                ctx.keygen().map_err(BackendError::from)?
            }
        };
        PrivateKey::from_pkey(pkey)
    }

    /// Parses a PKCS#8 PEM private key (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with a passphrase).
    pub fn from_pem(pem: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        openssl::init();
        let (label, der) = pem_block(pem, "private key")?;
        ensure_engine_for(&der, &label)?;
        let pkey = match label.as_str() {
            "PRIVATE KEY" => {
                PKey::private_key_from_pkcs8(&der).map_err(|e| KeyError::Malformed {
                    what: "private key",
                    reason: format!("not a valid PKCS#8 structure ({})", first_reason(&e)),
                })?
            }
            "ENCRYPTED PRIVATE KEY" => {
                let pass = passphrase.ok_or(KeyError::Passphrase)?;
                PKey::private_key_from_pkcs8_passphrase(&der, pass)
                    .map_err(|_| KeyError::Passphrase)?
            }
            other => {
                return Err(KeyError::Malformed {
                    what: "private key",
                    reason: format!("PEM label is '{other}', expected 'PRIVATE KEY' (PKCS#8)"),
                })
            }
        };
        PrivateKey::from_pkey(pkey)
    }

    fn from_pkey(pkey: PKey<Private>) -> Result<PrivateKey, KeyError> {
        let spki = pkey.public_key_to_der().map_err(BackendError::from)?;
        let public = PublicKey::from_der(&spki)?;
        Ok(PrivateKey {
            alg: public.algorithm(),
            pkey,
            public,
        })
    }

    /// PKCS#8 PEM, encrypted with AES-256-CBC under PBKDF2 when a passphrase is given.
    pub fn to_pkcs8_pem(&self, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>, KeyError> {
        let bytes = match passphrase {
            Some(p) => self
                .pkey
                .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), p)
                .map_err(BackendError::from)?,
            None => self
                .pkey
                .private_key_to_pem_pkcs8()
                .map_err(BackendError::from)?,
        };
        let bytes = Zeroizing::new(bytes);
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Backend(BackendError("openssl wrote non-UTF-8 PEM".into())))
    }

    /// The scheme this key signs with.
    pub fn algorithm(&self) -> SigAlg {
        self.alg
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key id.
    pub fn key_id(&self) -> &KeyId {
        self.public.key_id()
    }

    pub(crate) fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }
}
