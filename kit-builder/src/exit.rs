//! The exit codes of `stella-kit` and `stella`, one table, stable across releases (docs/exit-codes.md).

use crypto_profiles::dsse::DsseError;
use crypto_profiles::x509::CertError;
use crypto_profiles::{ProfileError, VerifyError};

/// A process exit status. The numbers never change meaning; new failure classes get new numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// Success.
    Ok = 0,
    /// A signature, digest, certificate chain, threshold or trust check failed.
    VerificationFailed = 1,
    /// Bad flags, unreadable or malformed input files.
    Usage = 2,
    /// The crypto environment is incomplete (e.g. OpenSSL's GOST engine is not installed).
    Environment = 3,
    /// The kit has expired (or the appliance data is past its staleness budget).
    Expired = 4,
    /// The kit's sequence is not above the channel's high-water mark (rollback or replay).
    RollbackRefused = 5,
    /// A delta kit's base kit is not present.
    BaseMissing = 6,
    /// The kit is malformed: truncated, undeclared, duplicate, link or escaping entries, missing payloads,
    /// missing, duplicated, foreign or truncated volumes.
    Malformed = 7,
    /// A size or decompression-ratio limit was exceeded.
    LimitExceeded = 8,
}

impl ExitStatus {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A failure that knows its exit status. Library errors implement it; the binaries walk an error's chain
/// and take the first status they find.
pub trait Classify {
    /// The exit status this failure maps to.
    fn exit_status(&self) -> ExitStatus;
}

/// Finds the exit status of an error chain: the first known error type in it decides, else `Usage`.
pub fn classify(err: &anyhow::Error) -> ExitStatus {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<crate::read::KitError>() {
            return e.exit_status();
        }
        // A registry whose TLS certificate fails its check: a failed verification, like a signer's.
        let registry = cause
            .downcast_ref::<crate::registry::RegistryError>()
            .or_else(|| {
                cause
                    .downcast_ref::<Box<crate::registry::RegistryError>>()
                    .map(|b| &**b)
            });
        if let Some(crate::registry::RegistryError::Certificate { .. }) = registry {
            return ExitStatus::VerificationFailed;
        }
        // A build refused for its inputs (a broken feed, a name given twice) is a usage error.
        if cause.downcast_ref::<crate::build::BuildError>().is_some() {
            return ExitStatus::Usage;
        }
        if let Some(e) = cause.downcast_ref::<crate::signing::ToolError>() {
            return e.exit_status();
        }
        // Every verification error (bad signature, algorithm not allowed, weak key) is a failed check.
        if cause.downcast_ref::<VerifyError>().is_some() {
            return ExitStatus::VerificationFailed;
        }
        if let Some(e) = cause.downcast_ref::<DsseError>() {
            return match e {
                DsseError::Malformed(_) | DsseError::Policy(_) => ExitStatus::Usage,
                _ => ExitStatus::VerificationFailed,
            };
        }
        if let Some(e) = cause.downcast_ref::<CertError>() {
            return match e {
                CertError::Malformed { .. } => ExitStatus::Usage,
                _ => ExitStatus::VerificationFailed,
            };
        }
        if let Some(ProfileError::GostEngineMissing { .. }) = cause.downcast_ref::<ProfileError>() {
            return ExitStatus::Environment;
        }
        if let Some(crypto_profiles::KeyError::Profile(ProfileError::GostEngineMissing {
            ..
        })) = cause.downcast_ref::<crypto_profiles::KeyError>()
        {
            return ExitStatus::Environment;
        }
    }
    ExitStatus::Usage
}

/// Renders an error chain on one line, dropping causes whose text the message before them already shows.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

impl Classify for crate::read::KitError {
    fn exit_status(&self) -> ExitStatus {
        use crate::read::KitError as K;
        use crate::volume::VolumeError as V;
        match self {
            K::Malformed(_) | K::Entry { .. } | K::Manifest(_) => ExitStatus::Malformed,
            K::Signature(DsseError::Malformed(_)) => ExitStatus::Malformed,
            K::Signature(DsseError::Policy(_)) => ExitStatus::Usage,
            K::Signature(_) | K::ManifestNotSigned | K::NotForProfile { .. } | K::Digest { .. } => {
                ExitStatus::VerificationFailed
            }
            K::Expired { .. } => ExitStatus::Expired,
            K::Limit(_) => ExitStatus::LimitExceeded,
            K::Encrypted(_) => ExitStatus::Usage,
            // A corrupt volume is a digest mismatch like a corrupt payload's; a missing, duplicated, foreign
            // or truncated one makes an incomplete kit.
            K::Volume(V::Corrupt { .. } | V::Index { .. }) => ExitStatus::VerificationFailed,
            K::Volume(V::Io { .. }) => ExitStatus::Usage,
            K::Volume(
                V::NoIndex(_)
                | V::Missing { .. }
                | V::Duplicate { .. }
                | V::Foreign { .. }
                | V::Truncated { .. },
            ) => ExitStatus::Malformed,
            K::Io { .. } => ExitStatus::Usage,
            K::Refused { class, .. } => match class {
                crate::read::Refusal::Rollback => ExitStatus::RollbackRefused,
                crate::read::Refusal::BaseMissing => ExitStatus::BaseMissing,
                crate::read::Refusal::Stale => ExitStatus::Expired,
                _ => ExitStatus::VerificationFailed,
            },
        }
    }
}
