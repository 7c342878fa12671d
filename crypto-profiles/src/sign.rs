//! Signing and verification under a profile.
//!
//! Backends: ring for ECDSA P-256/P-384, Ed25519 and RSA-PSS; OpenSSL for brainpool, GOST (through the
//! engine) and SM2. Signatures are byte-compatible with the `openssl` command line for the same key and
//! scheme (`openssl dgst -sign` for ECDSA, GOST, SM2 and RSA-PSS with `rsa_pss_saltlen:32`, `openssl pkeyutl
//! -sign -rawin` for Ed25519).

use crate::alg::{SigAlg, RSA_MIN_BITS};
use crate::digest::message_digest;
use crate::error::{BackendError, KeyError, SignError, VerifyError};
use crate::keys::{KeyId, PrivateKey, PublicKey};
use crate::{ossl_ffi, Profile};
use openssl::md::Md;
use openssl::md_ctx::MdCtx;
use openssl::pkey::{HasPublic, PKey};
use ring::signature as rsig;
use std::fmt;
use zeroize::Zeroizing;

/// Something that signs under a profile.
pub trait Signer: Send + Sync {
    /// The scheme.
    fn algorithm(&self) -> SigAlg;
    /// The signing key's public half.
    fn public_key(&self) -> &PublicKey;
    /// The signing key's id.
    fn key_id(&self) -> &KeyId {
        self.public_key().key_id()
    }
    /// Signs a message (the scheme hashes it).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Something that verifies under a profile.
pub trait Verifier: Send + Sync {
    /// The scheme.
    fn algorithm(&self) -> SigAlg;
    /// The key id of the verifying key.
    fn key_id(&self) -> &KeyId;
    /// Verifies `sig` over `msg`; a wrong signature is the opaque [`VerifyError::BadSignature`].
    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), VerifyError>;
}

enum Backend {
    RingEcdsa(rsig::EcdsaKeyPair),
    RingEd25519(rsig::Ed25519KeyPair),
    RingRsa(rsig::RsaKeyPair),
    Openssl,
}

/// A key bound to a profile, ready to sign.
pub struct ProfileSigner {
    key: PrivateKey,
    backend: Backend,
    sm2_id: Option<Vec<u8>>,
}

impl fmt::Debug for ProfileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileSigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn ring_ecdsa(
    key: &PrivateKey,
    alg: &'static rsig::EcdsaSigningAlgorithm,
    len: usize,
) -> Result<Backend, KeyError> {
    let ec = key.pkey().ec_key().map_err(BackendError::from)?;
    let scalar = Zeroizing::new(
        ec.private_key()
            .to_vec_padded(len as i32)
            .map_err(BackendError::from)?,
    );
    let mut bn = openssl::bn::BigNumContext::new().map_err(BackendError::from)?;
    let point = ec
        .public_key()
        .to_bytes(
            ec.group(),
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut bn,
        )
        .map_err(BackendError::from)?;
    let rng = ring::rand::SystemRandom::new();
    rsig::EcdsaKeyPair::from_private_key_and_public_key(alg, &scalar, &point, &rng)
        .map(Backend::RingEcdsa)
        .map_err(|e| KeyError::Malformed {
            what: "private key",
            reason: format!("ecdsa key rejected: {e}"),
        })
}

impl ProfileSigner {
    fn new(profile: &Profile, key: PrivateKey) -> Result<ProfileSigner, SignError> {
        let alg = key.algorithm();
        profile.check_signature(alg)?;
        let backend = match alg {
            SigAlg::EcdsaP256Sha256 => ring_ecdsa(&key, &rsig::ECDSA_P256_SHA256_ASN1_SIGNING, 32)?,
            SigAlg::EcdsaP384Sha384 => ring_ecdsa(&key, &rsig::ECDSA_P384_SHA384_ASN1_SIGNING, 48)?,
            SigAlg::Ed25519 => {
                let seed =
                    Zeroizing::new(key.pkey().raw_private_key().map_err(BackendError::from)?);
                let public = key.pkey().raw_public_key().map_err(BackendError::from)?;
                Backend::RingEd25519(
                    rsig::Ed25519KeyPair::from_seed_and_public_key(&seed, &public).map_err(
                        |e| KeyError::Malformed {
                            what: "private key",
                            reason: format!("ed25519 key rejected: {e}"),
                        },
                    )?,
                )
            }
            SigAlg::RsaPssSha256 => {
                let bits = key.pkey().bits();
                if bits < RSA_MIN_BITS {
                    return Err(KeyError::WeakKey {
                        bits,
                        min: RSA_MIN_BITS,
                    }
                    .into());
                }
                let rsa = key.pkey().rsa().map_err(BackendError::from)?;
                let der = Zeroizing::new(rsa.private_key_to_der().map_err(BackendError::from)?);
                Backend::RingRsa(rsig::RsaKeyPair::from_der(&der).map_err(|e| {
                    KeyError::Malformed {
                        what: "private key",
                        reason: format!("rsa key rejected: {e}"),
                    }
                })?)
            }
            SigAlg::EcdsaBrainpoolP256r1Sha256
            | SigAlg::EcdsaBrainpoolP384r1Sha384
            | SigAlg::Gost2012_256
            | SigAlg::Gost2012_512
            | SigAlg::Sm2Sm3 => Backend::Openssl,
        };
        let sm2_id = (alg == SigAlg::Sm2Sm3).then(|| profile.sm2_id().to_vec());
        Ok(ProfileSigner {
            key,
            backend,
            sm2_id,
        })
    }
}

impl Signer for ProfileSigner {
    fn algorithm(&self) -> SigAlg {
        self.key.algorithm()
    }

    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = ring::rand::SystemRandom::new();
        let ring_err =
            |e: ring::error::Unspecified| SignError::Backend(BackendError(format!("ring: {e}")));
        match &self.backend {
            Backend::RingEcdsa(kp) => Ok(kp.sign(&rng, msg).map_err(ring_err)?.as_ref().to_vec()),
            Backend::RingEd25519(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
            Backend::RingRsa(kp) => {
                let mut sig = vec![0u8; kp.public().modulus_len()];
                kp.sign(&rsig::RSA_PSS_SHA256, &rng, msg, &mut sig)
                    .map_err(ring_err)?;
                Ok(sig)
            }
            Backend::Openssl => {
                let key = self.key.pkey();
                Ok(match self.key.algorithm() {
                    SigAlg::EcdsaBrainpoolP384r1Sha384 => {
                        openssl_sign(key, Md::sha384(), None, msg)?
                    }
                    SigAlg::Sm2Sm3 => openssl_sign(key, Md::sm3(), self.sm2_id.as_deref(), msg)?,
                    // GOST digests live in the engine, not a provider, so the legacy EVP path signs.
                    SigAlg::Gost2012_256 | SigAlg::Gost2012_512 => openssl_sign_legacy(
                        key,
                        message_digest(self.key.algorithm().digest())?,
                        msg,
                    )?,
                    _ => openssl_sign(key, Md::sha256(), None, msg)?,
                })
            }
        }
    }
}

fn openssl_sign(
    key: &PKey<openssl::pkey::Private>,
    md: &openssl::md::MdRef,
    sm2_id: Option<&[u8]>,
    msg: &[u8],
) -> Result<Vec<u8>, BackendError> {
    let mut ctx = MdCtx::new()?;
    let pctx = ctx.digest_sign_init(Some(md), key)?;
    if let Some(id) = sm2_id {
        ossl_ffi::set_sm2_id(pctx, id)?;
    }
    let mut sig = Vec::new();
    ctx.digest_sign_to_vec(msg, &mut sig)?;
    Ok(sig)
}

fn openssl_sign_legacy(
    key: &PKey<openssl::pkey::Private>,
    md: openssl::hash::MessageDigest,
    msg: &[u8],
) -> Result<Vec<u8>, BackendError> {
    let mut s = openssl::sign::Signer::new(md, key)?;
    s.update(msg)?;
    Ok(s.sign_to_vec()?)
}

/// A public key bound to a profile, ready to verify.
#[derive(Debug)]
pub struct ProfileVerifier {
    key: PublicKey,
    sm2_id: Vec<u8>,
}

impl ProfileVerifier {
    fn new(profile: &Profile, key: &PublicKey) -> Result<ProfileVerifier, VerifyError> {
        profile.check_signature(key.algorithm())?;
        if let Some(bits) = key.rsa_bits() {
            if bits < RSA_MIN_BITS {
                return Err(VerifyError::WeakKey {
                    bits,
                    min: RSA_MIN_BITS,
                });
            }
        }
        Ok(ProfileVerifier {
            key: key.clone(),
            sm2_id: profile.sm2_id().to_vec(),
        })
    }
}

impl Verifier for ProfileVerifier {
    fn algorithm(&self) -> SigAlg {
        self.key.algorithm()
    }

    fn key_id(&self) -> &KeyId {
        self.key.key_id()
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
        verify_primitive(&self.key, msg, sig, &self.sm2_id)
    }
}

/// The raw primitive of each scheme, without profile policy (minimum sizes, allowed families). Product code
/// reaches it only through [`ProfileVerifier`]; it is public for known-answer tests over third-party vectors.
pub fn verify_primitive(
    key: &PublicKey,
    msg: &[u8],
    sig: &[u8],
    sm2_id: &[u8],
) -> Result<(), VerifyError> {
    let ring_verify = |alg: &'static dyn rsig::VerificationAlgorithm, public: &[u8]| {
        rsig::UnparsedPublicKey::new(alg, public)
            .verify(msg, sig)
            .map_err(|_| VerifyError::BadSignature)
    };
    let pkey = key.pkey();
    match key.algorithm() {
        SigAlg::EcdsaP256Sha256 => ring_verify(&rsig::ECDSA_P256_SHA256_ASN1, &ec_point(pkey)?),
        SigAlg::EcdsaP384Sha384 => ring_verify(&rsig::ECDSA_P384_SHA384_ASN1, &ec_point(pkey)?),
        SigAlg::Ed25519 => {
            let raw = pkey
                .raw_public_key()
                .map_err(|_| VerifyError::BadSignature)?;
            if !ed25519_key_is_strict(&raw) {
                return Err(VerifyError::BadSignature);
            }
            ring_verify(&rsig::ED25519, &raw)
        }
        SigAlg::RsaPssSha256 => {
            let rsa = pkey.rsa().map_err(|_| VerifyError::BadSignature)?;
            let der = rsa
                .public_key_to_der_pkcs1()
                .map_err(|_| VerifyError::BadSignature)?;
            ring_verify(&rsig::RSA_PSS_2048_8192_SHA256, &der)
        }
        SigAlg::EcdsaBrainpoolP256r1Sha256 | SigAlg::EcdsaBrainpoolP384r1Sha384 => {
            let md = if key.algorithm() == SigAlg::EcdsaBrainpoolP256r1Sha256 {
                Md::sha256()
            } else {
                Md::sha384()
            };
            openssl_verify(pkey, Some(md), None, msg, sig)
        }
        SigAlg::Sm2Sm3 => openssl_verify(pkey, Some(Md::sm3()), Some(sm2_id), msg, sig),
        SigAlg::Gost2012_256 | SigAlg::Gost2012_512 => {
            let md =
                message_digest(key.algorithm().digest()).map_err(|_| VerifyError::BadSignature)?;
            let mut v =
                openssl::sign::Verifier::new(md, pkey).map_err(|_| VerifyError::BadSignature)?;
            v.update(msg).map_err(|_| VerifyError::BadSignature)?;
            match v.verify(sig) {
                Ok(true) => Ok(()),
                _ => Err(VerifyError::BadSignature),
            }
        }
    }
}

/// The `y` coordinates (sign bit clear) of the eight Ed25519 points of small order: 0 (order 4), 1 (the
/// identity), p - 1 (order 2) and the two of order 8.
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Whether an Ed25519 public key may verify anything: a canonical encoding (y < p, RFC 8032 5.1.3) of a
/// point that is not of small order. ring checks neither, so without this the signature (R = identity,
/// S = 0) verifies for every message under the identity key, also when encoded non-canonically with the
/// sign bit set (which RFC 8032 requires decoding to refuse), and for many messages under the other
/// small-order keys, e.g. the all-zero key.
fn ed25519_key_is_strict(raw: &[u8]) -> bool {
    let Ok(mut y) = <[u8; 32]>::try_from(raw) else {
        return false;
    };
    y[31] &= 0x7f;
    // p = 2^255 - 19: little-endian ed ff .. ff 7f.
    let at_least_p = y[0] >= 0xed && y[1..31].iter().all(|&b| b == 0xff) && y[31] == 0x7f;
    !at_least_p && !ED25519_SMALL_ORDER_Y.contains(&y)
}

fn ec_point<T: HasPublic>(pkey: &PKey<T>) -> Result<Vec<u8>, VerifyError> {
    let ec = pkey.ec_key().map_err(|_| VerifyError::BadSignature)?;
    let mut bn = openssl::bn::BigNumContext::new().map_err(|_| VerifyError::BadSignature)?;
    ec.public_key()
        .to_bytes(
            ec.group(),
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut bn,
        )
        .map_err(|_| VerifyError::BadSignature)
}

fn openssl_verify<T: HasPublic>(
    pkey: &PKey<T>,
    md: Option<&openssl::md::MdRef>,
    sm2_id: Option<&[u8]>,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    let run = || -> Result<bool, openssl::error::ErrorStack> {
        let mut ctx = MdCtx::new()?;
        let pctx = ctx.digest_verify_init(md, pkey)?;
        if let Some(id) = sm2_id {
            ossl_ffi::set_sm2_id(pctx, id)?;
        }
        ctx.digest_verify(msg, sig)
    };
    // OpenSSL reports some malformed signatures as errors rather than `false`: both are a bad signature.
    match run() {
        Ok(true) => Ok(()),
        _ => Err(VerifyError::BadSignature),
    }
}

impl Profile {
    /// Binds a private key to this profile for signing. Strict: the key's scheme must be the profile's.
    pub fn signer(&self, key: PrivateKey) -> Result<ProfileSigner, SignError> {
        ProfileSigner::new(self, key)
    }

    /// Binds a public key to this profile for verification. Strict: the key's scheme must be the profile's.
    pub fn verifier(&self, key: &PublicKey) -> Result<ProfileVerifier, VerifyError> {
        ProfileVerifier::new(self, key)
    }

    /// One-shot verification under this profile.
    pub fn verify(&self, key: &PublicKey, msg: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
        self.verifier(key)?.verify(msg, sig)
    }
}
