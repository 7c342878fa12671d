//! Error types, one per operation.

use crate::ProfileId;
use thiserror::Error;

/// A name (profile, digest, algorithm) that the product does not know.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("unknown {kind} '{name}'")]
pub struct UnknownName {
    /// What kind of name it was.
    pub kind: &'static str,
    /// The name as given.
    pub name: String,
}

impl UnknownName {
    pub(crate) fn new(kind: &'static str, name: &str) -> Self {
        UnknownName {
            kind,
            name: name.to_owned(),
        }
    }
}

/// Strict mode: an algorithm met under a profile that does not admit it.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("algorithm '{algorithm}' is not allowed under profile '{profile}'")]
pub struct NotAllowed {
    /// The algorithm that was met.
    pub algorithm: &'static str,
    /// The profile in force.
    pub profile: ProfileId,
}

/// Building a profile failed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A part is not of the profile's family.
    #[error("profile '{profile}' refuses to start: part '{part}' is not of its family")]
    NotCompliant {
        /// The profile being built.
        profile: ProfileId,
        /// The offending part.
        part: String,
    },
    /// OpenSSL's GOST engine could not be loaded.
    #[error(
        "profile 'gost' needs OpenSSL's GOST engine, which could not be loaded \
         (install the Debian package 'libengine-gost-openssl'): {reason}"
    )]
    GostEngineMissing {
        /// OpenSSL's reason.
        reason: String,
    },
    /// The SM2 distinguishing ID is empty or too long.
    #[error("sm2 distinguishing id of {len} bytes is not allowed (1 to 8191 bytes)")]
    BadSm2Id {
        /// Its length.
        len: usize,
    },
}

/// An OpenSSL or ring call failed for a reason that is not the caller's input.
#[derive(Debug, Clone, Error)]
#[error("crypto backend failure: {0}")]
pub struct BackendError(pub String);

impl From<openssl::error::ErrorStack> for BackendError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        BackendError(e.to_string())
    }
}

/// Reading, writing or generating a key failed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a PEM key of the expected kind.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `private key` or `public key`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The private key is encrypted and no passphrase, or a wrong one, was given.
    #[error("private key is encrypted: passphrase missing or wrong")]
    Passphrase,
    /// A key type or curve the product does not sign with.
    #[error("unsupported key type: {0}")]
    Unsupported(String),
    /// An RSA key below the minimum size.
    #[error("rsa key of {bits} bits is below the minimum of {min} bits")]
    WeakKey {
        /// Its size.
        bits: u32,
        /// The minimum.
        min: u32,
    },
    /// The key's algorithm is not admitted by the profile.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// The profile could not be built (GOST engine missing).
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A backend failure.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Signing failed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum SignError {
    /// The key's algorithm is not admitted by the profile.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// The key is unusable (too small, wrong kind).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A backend failure.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Verification failed. A wrong signature is always the one opaque [`VerifyError::BadSignature`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Strict mode: the signature's algorithm is not admitted by the profile.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// The public key is too weak for any profile.
    #[error("rsa key of {bits} bits is below the minimum of {min} bits")]
    WeakKey {
        /// Its size.
        bits: u32,
        /// The minimum.
        min: u32,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

/// Hashing under a profile failed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum DigestError {
    /// Strict mode: the digest is not admitted by the profile.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// A backend failure.
    #[error(transparent)]
    Backend(#[from] BackendError),
}
