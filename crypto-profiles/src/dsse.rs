//! DSSE (Dead Simple Signing Envelope) v1: PAE, signing with one or more signers (several profiles in one
//! envelope), and verification against a trust policy.
//!
//! Verification fails closed: a signature counts only when its `keyid` names a trusted key, that key's
//! scheme is admitted by the required profile, and the signature verifies. Signatures by keys of other
//! profiles are reported, never counted. The threshold counts distinct keys.

use crate::error::{SignError, VerifyError};
use crate::keys::{KeyId, PublicKey};
use crate::sign::Signer;
use crate::{Profile, ProfileId};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// The JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Base64 of the serialized body.
    pub payload: String,
    /// The payload type (a URI or media type).
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// One entry per signature.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signer's key id (unset is the same as empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// Base64 of the signature over the PAE.
    pub sig: String,
}

/// DSSE pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

/// Decodes base64 in the standard or URL-safe alphabet, padded or not, as the DSSE spec allows.
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let engines = [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD];
    engines.iter().find_map(|e| e.decode(s).ok())
}

/// Signing or parsing an envelope failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DsseError {
    /// The envelope is not valid JSON of the DSSE shape.
    #[error("malformed dsse envelope: {0}")]
    Malformed(String),
    /// A signer failed.
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
    /// Fewer distinct trusted keys under the required profile signed than the threshold asks.
    #[error("dsse envelope has {counted} valid signature(s) from trusted '{profile}' keys, {threshold} required{}", render_notes(.notes))]
    ThresholdNotMet {
        /// Signatures that counted.
        counted: usize,
        /// The threshold.
        threshold: usize,
        /// The required profile.
        profile: ProfileId,
        /// Why each other signature did not count.
        notes: Vec<SignatureNote>,
    },
    /// The payload type is not the one expected.
    #[error("dsse payload type is '{found}', expected '{expected}'")]
    PayloadType {
        /// What the envelope says.
        found: String,
        /// What the caller wanted.
        expected: String,
    },
    /// The trust policy itself is unusable.
    #[error("trust policy: {0}")]
    Policy(String),
}

fn render_notes(notes: &[SignatureNote]) -> String {
    if notes.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = notes
        .iter()
        .map(|n| format!("{}: {}", n.keyid_display(), n.outcome))
        .collect();
    format!(" ({})", parts.join("; "))
}

/// What happened to one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureNote {
    /// The key id as written in the envelope.
    pub keyid: String,
    /// The outcome.
    pub outcome: SignatureOutcome,
}

impl SignatureNote {
    fn keyid_display(&self) -> String {
        if self.keyid.is_empty() {
            "signature without keyid".to_owned()
        } else {
            format!("key {}", &self.keyid[..self.keyid.len().min(16)])
        }
    }
}

/// The outcome of one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum SignatureOutcome {
    /// Valid, by a trusted key under the required profile: counted.
    Counted {
        /// The scheme.
        algorithm: String,
        /// The key that made it.
        key: KeyId,
    },
    /// Valid, by a trusted key of another profile: recorded, not counted.
    OtherProfile {
        /// The scheme.
        algorithm: String,
        /// The profiles the scheme belongs to.
        profiles: Vec<ProfileId>,
    },
    /// The key id names no trusted key (or is unset).
    UntrustedKey,
    /// A second signature by a key already counted.
    Duplicate,
    /// The signature does not verify, or is not base64.
    Invalid {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for SignatureOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureOutcome::Counted { algorithm, .. } => {
                write!(f, "valid {algorithm} signature, counted")
            }
            SignatureOutcome::OtherProfile {
                algorithm,
                profiles,
            } => {
                let names: Vec<&str> = profiles.iter().map(|p| p.name()).collect();
                write!(
                    f,
                    "valid {algorithm} signature of profile {}, not counted",
                    names.join("/")
                )
            }
            SignatureOutcome::UntrustedKey => f.write_str("key is not trusted"),
            SignatureOutcome::Duplicate => {
                f.write_str("second signature by the same key, not counted")
            }
            SignatureOutcome::Invalid { reason } => write!(f, "invalid signature ({reason})"),
        }
    }
}

/// Which keys are trusted, how many must sign, under which profile.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    profile: Profile,
    keys: BTreeMap<KeyId, PublicKey>,
    threshold: usize,
}

impl TrustPolicy {
    /// A policy over trusted keys; the threshold must be between 1 and the number of keys of the profile.
    pub fn new(
        profile: Profile,
        keys: Vec<PublicKey>,
        threshold: usize,
    ) -> Result<TrustPolicy, DsseError> {
        let keys: BTreeMap<KeyId, PublicKey> =
            keys.into_iter().map(|k| (k.key_id().clone(), k)).collect();
        let usable = keys
            .values()
            .filter(|k| profile.allows_signature(k.algorithm()))
            .count();
        if threshold == 0 {
            return Err(DsseError::Policy("threshold must be at least 1".into()));
        }
        if threshold > usable {
            return Err(DsseError::Policy(format!(
                "threshold {threshold} exceeds the {usable} trusted key(s) usable under profile '{}'",
                profile.id()
            )));
        }
        Ok(TrustPolicy {
            profile,
            keys,
            threshold,
        })
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The threshold.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The trusted keys.
    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.values()
    }
}

/// A verified envelope.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The payload type.
    pub payload_type: String,
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// The keys whose signatures counted.
    pub counted: Vec<KeyId>,
    /// Every signature and what happened to it, in envelope order.
    pub notes: Vec<SignatureNote>,
}

impl Envelope {
    /// Signs `payload` with each signer, in order.
    pub fn sign(
        payload_type: &str,
        payload: &[u8],
        signers: &[&dyn Signer],
    ) -> Result<Envelope, DsseError> {
        let message = pae(payload_type, payload);
        let mut signatures = Vec::with_capacity(signers.len());
        for s in signers {
            let sig = s.sign(&message)?;
            signatures.push(EnvelopeSignature {
                keyid: s.key_id().to_string(),
                sig: base64::engine::general_purpose::STANDARD.encode(sig),
            });
        }
        Ok(Envelope {
            payload: base64::engine::general_purpose::STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures,
        })
    }

    /// Parses the JSON envelope.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DsseError> {
        let env: Envelope =
            serde_json::from_slice(bytes).map_err(|e| DsseError::Malformed(e.to_string()))?;
        Ok(env)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The decoded payload, unverified.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, DsseError> {
        decode_b64(&self.payload)
            .ok_or_else(|| DsseError::Malformed("payload is not base64".into()))
    }

    /// Verifies against a trust policy. Returns every signature's outcome on success and on failure.
    pub fn verify(&self, policy: &TrustPolicy) -> Result<Verified, DsseError> {
        let payload = self.payload_bytes()?;
        let message = pae(&self.payload_type, &payload);
        let mut counted: Vec<KeyId> = Vec::new();
        let mut notes = Vec::with_capacity(self.signatures.len());
        for s in &self.signatures {
            let outcome = self.judge(policy, s, &message, &counted);
            if let SignatureOutcome::Counted { key, .. } = &outcome {
                counted.push(key.clone());
            }
            notes.push(SignatureNote {
                keyid: s.keyid.clone(),
                outcome,
            });
        }
        if counted.len() < policy.threshold {
            let notes = notes
                .into_iter()
                .filter(|n| !matches!(n.outcome, SignatureOutcome::Counted { .. }))
                .collect();
            return Err(DsseError::ThresholdNotMet {
                counted: counted.len(),
                threshold: policy.threshold,
                profile: policy.profile.id(),
                notes,
            });
        }
        Ok(Verified {
            payload_type: self.payload_type.clone(),
            payload,
            counted,
            notes,
        })
    }

    fn judge(
        &self,
        policy: &TrustPolicy,
        s: &EnvelopeSignature,
        message: &[u8],
        counted: &[KeyId],
    ) -> SignatureOutcome {
        let Some(sig) = decode_b64(&s.sig) else {
            return SignatureOutcome::Invalid {
                reason: "signature is not base64".into(),
            };
        };
        let key = if s.keyid.is_empty() {
            // An unset keyid is only a missing hint (DSSE protocol): try the trusted keys of the profile, and
            // count the one whose signature verifies.
            match policy
                .keys
                .values()
                .find(|k| policy.profile.verify(k, message, &sig).is_ok())
            {
                Some(k) if counted.contains(k.key_id()) => return SignatureOutcome::Duplicate,
                Some(k) => {
                    return SignatureOutcome::Counted {
                        algorithm: k.algorithm().name().into(),
                        key: k.key_id().clone(),
                    }
                }
                None => return SignatureOutcome::UntrustedKey,
            }
        } else {
            match KeyId::parse(&s.keyid).and_then(|id| policy.keys.get(&id)) {
                Some(k) => k,
                None => return SignatureOutcome::UntrustedKey,
            }
        };
        let alg = key.algorithm();
        if !policy.profile.allows_signature(alg) {
            // Verified for the record with the key's own primitive; never counted.
            let valid =
                crate::sign::verify_primitive(key, message, &sig, policy.profile.sm2_id()).is_ok();
            return if valid {
                SignatureOutcome::OtherProfile {
                    algorithm: alg.name().into(),
                    profiles: alg.families().to_vec(),
                }
            } else {
                SignatureOutcome::Invalid {
                    reason: format!("bad {alg} signature"),
                }
            };
        }
        match policy.profile.verify(key, message, &sig) {
            Ok(()) if counted.contains(key.key_id()) => SignatureOutcome::Duplicate,
            Ok(()) => SignatureOutcome::Counted {
                algorithm: alg.name().into(),
                key: key.key_id().clone(),
            },
            Err(VerifyError::BadSignature) => SignatureOutcome::Invalid {
                reason: format!("bad {alg} signature"),
            },
            Err(e) => SignatureOutcome::Invalid {
                reason: e.to_string(),
            },
        }
    }

    /// Verifies and also checks the payload type.
    pub fn verify_typed(
        &self,
        policy: &TrustPolicy,
        payload_type: &str,
    ) -> Result<Verified, DsseError> {
        if self.payload_type != payload_type {
            return Err(DsseError::PayloadType {
                found: self.payload_type.clone(),
                expected: payload_type.into(),
            });
        }
        self.verify(policy)
    }
}
