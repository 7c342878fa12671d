//! Site crypto profiles for the Stella Ops appliance.
//!
//! A [`Profile`] (FIPS, eIDAS, GOST or SM) is one explicit value that fixes which digests and signature
//! schemes may be used. Everything that hashes or signs takes a profile; callers never name an algorithm
//! except through one. Strict mode is the only mode: a verifier for profile X refuses any algorithm of
//! another family and says which algorithm it met.
//!
//! ```no_run
//! use crypto_profiles::{Profile, ProfileId, PrivateKey, Signer as _, Verifier as _};
//! let profile = Profile::new(ProfileId::Sm)?;
//! let key = PrivateKey::generate(&profile, None)?;
//! let public = key.public_key().clone();
//! let sig = profile.signer(key)?.sign(b"hello")?;
//! profile.verifier(&public)?.verify(b"hello", &sig)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod alg;
mod digest;
pub mod dsse;
mod error;
mod keys;
mod ossl_ffi;
mod profile;
mod selftest;
mod sign;
pub mod x509;

pub use alg::{DigestAlg, SigAlg, RSA_MIN_BITS};
pub use digest::{digest_with, Digest, Hasher};
pub use error::{
    BackendError, DigestError, KeyError, NotAllowed, ProfileError, SignError, UnknownName,
    VerifyError,
};
pub use keys::{KeyId, PrivateKey, PublicKey};
pub use profile::{Profile, ProfileId, SM2_DEFAULT_ID};
pub use selftest::SelfTestItem;
pub use sign::{verify_primitive, ProfileSigner, ProfileVerifier, Signer, Verifier};
