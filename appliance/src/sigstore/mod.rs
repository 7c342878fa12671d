//! Offline verification of Sigstore bundles (cosign / sigstore-* signatures and attestations) against a
//! `trusted_root.json` carried in a kit.
//!
//! Everything is checked here, on OpenSSL and serde only: bundle v0.1–v0.3 parsing, the Fulcio chain at
//! a verified time, the embedded SCT, the signer identity, the message or DSSE signature, the Rekor
//! entry's consistency with the bundle, the Signed Entry Timestamp, the Merkle inclusion proof and its
//! signed checkpoint, and RFC 3161 timestamps. We do not use the `sigstore` crate: its 0.15 verifier
//! skips the SET and the inclusion proof, and it links an HTTP client the appliance must not carry.
//!
//! **Invariant:** nothing is fetched; the trust root is only the file given. **Invariant:** the
//! verification time is a time a log (SET) or a trusted timestamp authority signed, never the wall clock.
//! **Invariant:** a bundle's DSSE payload is parsed only after its signature verified.

mod cert;
mod der;
mod keys;
mod model;
mod tlog;
mod tsa;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::x509::X509;
use serde::Serialize;

pub use cert::CertIdentity;
pub use model::{TimeRange, TrustedRoot};

/// Which transparency-log check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TlogCheck {
    /// The entry itself (index, body, kind).
    Entry,
    /// The Signed Entry Timestamp.
    Set,
    /// The log key is not valid at the entry's time.
    KeyValidity,
    /// The Merkle inclusion proof.
    InclusionProof,
    /// The signed checkpoint.
    Checkpoint,
    /// The entry does not record what the bundle signed.
    EntryMismatch,
}

impl std::fmt::Display for TlogCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlogCheck::Entry => "entry",
            TlogCheck::Set => "signed entry timestamp",
            TlogCheck::KeyValidity => "log key validity",
            TlogCheck::InclusionProof => "inclusion proof",
            TlogCheck::Checkpoint => "checkpoint",
            TlogCheck::EntryMismatch => "entry consistency",
        })
    }
}

/// Why a bundle was refused. Each variant names the check; its `code` is stable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The trusted root file is unusable.
    #[error("trusted root rejected: {0}")]
    TrustedRoot(String),
    /// The bundle is not valid JSON or not a Sigstore bundle.
    #[error("bundle is malformed: {0}")]
    BundleJson(String),
    /// The bundle media type is not v0.1, v0.2 or v0.3.
    #[error("bundle media type '{0}' is not supported")]
    UnsupportedVersion(String),
    /// A field does not decode.
    #[error("bundle field {what} is malformed: {reason}")]
    Malformed {
        /// The field.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The bundle lacks something required.
    #[error("bundle is incomplete: {0}")]
    Incomplete(String),
    /// A tlog entry names a log the trusted root does not hold.
    #[error("tlog entry is from log {log_id}, which the trusted root does not trust")]
    UnknownLog {
        /// The base64 log id.
        log_id: String,
    },
    /// A transparency-log check failed.
    #[error("transparency log '{log}': {check} check failed: {reason}")]
    Tlog {
        /// The log's base URL.
        log: String,
        /// The check.
        check: TlogCheck,
        /// What failed.
        reason: String,
    },
    /// An RFC 3161 timestamp failed.
    #[error("signed timestamp rejected: {0}")]
    Timestamp(String),
    /// No verified time (SET or timestamp) to check the certificate at.
    #[error("no verified time: the bundle has neither a signed entry timestamp nor a trusted signed timestamp")]
    NoVerifiedTime,
    /// The signing certificate does not chain to a trusted CA at a verified time.
    #[error("signing certificate rejected: {0}")]
    Certificate(String),
    /// No embedded SCT verified.
    #[error("certificate transparency check failed: {0}")]
    Sct(String),
    /// The certificate identity is not the expected one.
    #[error("identity mismatch: expected {expected}, certificate has {actual}")]
    Identity {
        /// What the policy asked for.
        expected: String,
        /// What the certificate holds.
        actual: String,
    },
    /// A key-signed bundle was given no key, or the key differs from the logged one.
    #[error("public key check failed: {0}")]
    Key(String),
    /// The signature does not verify (opaque on purpose).
    #[error("signature does not verify")]
    BadSignature,
    /// The artifact is not the signed one.
    #[error("artifact mismatch: {0}")]
    Artifact(String),
}

impl VerifyError {
    /// A stable, kebab-case code for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::TrustedRoot(_) => "bad-trusted-root",
            VerifyError::BundleJson(_) => "malformed-bundle",
            VerifyError::UnsupportedVersion(_) => "unsupported-bundle-version",
            VerifyError::Malformed { .. } => "malformed-bundle",
            VerifyError::Incomplete(_) => "incomplete-bundle",
            VerifyError::UnknownLog { .. } => "unknown-log",
            VerifyError::Tlog { check, .. } => match check {
                TlogCheck::Entry => "tlog-entry",
                TlogCheck::Set => "tlog-set",
                TlogCheck::KeyValidity => "tlog-key-validity",
                TlogCheck::InclusionProof => "tlog-inclusion-proof",
                TlogCheck::Checkpoint => "tlog-checkpoint",
                TlogCheck::EntryMismatch => "tlog-entry-mismatch",
            },
            VerifyError::Timestamp(_) => "bad-timestamp",
            VerifyError::NoVerifiedTime => "no-verified-time",
            VerifyError::Certificate(_) => "bad-certificate",
            VerifyError::Sct(_) => "bad-sct",
            VerifyError::Identity { .. } => "identity-mismatch",
            VerifyError::Key(_) => "key-mismatch",
            VerifyError::BadSignature => "bad-signature",
            VerifyError::Artifact(_) => "artifact-mismatch",
        }
    }
}

/// The artifact the bundle must cover.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// Only its SHA-256 (message signatures then need an ECDSA or RSA key).
    Sha256([u8; 32]),
}

/// Who must have signed.
#[derive(Debug, Default)]
pub struct Policy {
    /// Expected certificate identity (SAN) and OIDC issuer; `None` accepts any Fulcio identity.
    pub identity: Option<ExpectedIdentity>,
    /// Public key for key-signed bundles (cosign `--key`).
    pub key: Option<PublicKey>,
}

/// An expected Fulcio identity, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedIdentity {
    /// The subject alternative name (URI or email).
    pub san: String,
    /// The OIDC issuer URL.
    pub issuer: String,
}

/// A verification public key (PEM SubjectPublicKeyInfo).
#[derive(Debug, Clone)]
pub struct PublicKey(PKey<Public>);

impl PublicKey {
    /// Parses a PEM public key.
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, VerifyError> {
        keys::public_key_from_pem(pem)
            .map(PublicKey)
            .ok_or_else(|| {
                VerifyError::Key("the given public key is not a PEM SubjectPublicKeyInfo".into())
            })
    }
}

/// Where a verified time came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "source")]
pub enum VerifiedTime {
    /// A Rekor integrated time, authenticated by its SET.
    Tlog {
        /// The log's base URL.
        log: String,
        /// Unix seconds.
        time: i64,
    },
    /// An RFC 3161 timestamp from a trusted authority.
    Timestamp {
        /// The authority's URI.
        authority: String,
        /// Unix seconds.
        time: i64,
    },
}

/// The signer of a verified bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Signer {
    /// A Fulcio certificate.
    Certificate {
        /// Its identity.
        identity: CertIdentity,
        /// The CT log whose SCT verified.
        ct_log: String,
    },
    /// The key given in the policy.
    Key,
}

/// A log entry that verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedEntry {
    /// The log's base URL.
    pub log: String,
    /// The entry's index.
    pub log_index: i64,
    /// `kind/version` of the entry body.
    pub kind: String,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The bundle media type.
    pub media_type: String,
    /// Who signed.
    pub signer: Signer,
    /// The verified times the certificate was checked at.
    pub times: Vec<VerifiedTime>,
    /// The log entries.
    pub tlog_entries: Vec<VerifiedEntry>,
    /// For DSSE bundles, the payload type.
    pub payload_type: Option<String>,
    /// Whether the identity was checked against a policy.
    pub identity_checked: bool,
}

fn b64(what: &'static str, s: &str) -> Result<Vec<u8>, VerifyError> {
    // Go's and Python's decoders skip line breaks, and some producers wrap long values.
    let s: String = s.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    B64.decode(s).map_err(|_| VerifyError::Malformed {
        what,
        reason: "invalid base64".into(),
    })
}

/// The bundle version from its media type: 1, 2 or 3 (minor of 0.x).
fn bundle_version(media_type: &str) -> Option<u8> {
    match media_type {
        "application/vnd.dev.sigstore.bundle+json;version=0.1" => Some(1),
        "application/vnd.dev.sigstore.bundle+json;version=0.2" => Some(2),
        "application/vnd.dev.sigstore.bundle+json;version=0.3"
        | "application/vnd.dev.sigstore.bundle.v0.3+json" => Some(3),
        _ => None,
    }
}

/// DSSE pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

enum Content {
    Message {
        digest: Option<(String, Vec<u8>)>,
        sig: Vec<u8>,
    },
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
        sig: Vec<u8>,
    },
}

enum Material {
    Cert(X509),
    Key,
}

/// Verifies a bundle (JSON bytes) for `artifact` under `policy`, against `root`.
pub fn verify_bundle(
    root: &TrustedRoot,
    bundle: &[u8],
    artifact: Artifact<'_>,
    policy: &Policy,
) -> Result<Verified, VerifyError> {
    let _span = tracing::info_span!("sigstore_verify").entered();
    let b: model::BundleJson =
        serde_json::from_slice(bundle).map_err(|e| VerifyError::BundleJson(e.to_string()))?;
    let version = bundle_version(&b.media_type)
        .ok_or_else(|| VerifyError::UnsupportedVersion(b.media_type.clone()))?;
    let vm = b
        .verification_material
        .as_ref()
        .ok_or_else(|| VerifyError::Incomplete("no verification material".into()))?;

    // What was signed.
    let content = match (&b.message_signature, &b.dsse_envelope) {
        (Some(m), None) => Content::Message {
            digest: match &m.message_digest {
                Some(d) => Some((d.algorithm.clone(), b64("messageDigest", &d.digest)?)),
                None => None,
            },
            sig: b64("messageSignature signature", &m.signature)?,
        },
        (None, Some(d)) => {
            if d.signatures.len() != 1 {
                return Err(VerifyError::Incomplete(format!(
                    "DSSE envelope has {} signatures, exactly one is required",
                    d.signatures.len()
                )));
            }
            Content::Dsse {
                payload_type: d.payload_type.clone(),
                payload: b64("dsseEnvelope payload", &d.payload)?,
                sig: b64("dsseEnvelope signature", &d.signatures[0].sig)?,
            }
        }
        _ => {
            return Err(VerifyError::Incomplete(
                "bundle must hold exactly one of messageSignature and dsseEnvelope".into(),
            ))
        }
    };

    // Who signed.
    let material = if let Some(chain) = &vm.x509_certificate_chain {
        let first = chain
            .certificates
            .first()
            .ok_or_else(|| VerifyError::Incomplete("certificate chain is empty".into()))?;
        for c in &chain.certificates {
            let der = b64("certificate", &c.raw_bytes)?;
            let x = X509::from_der(&der).map_err(|_| VerifyError::Malformed {
                what: "certificate",
                reason: "not a DER certificate".into(),
            })?;
            if cert::is_self_signed(&x) {
                return Err(VerifyError::Certificate(
                    "the bundle's chain contains a root certificate".into(),
                ));
            }
        }
        let der = b64("certificate", &first.raw_bytes)?;
        Material::Cert(X509::from_der(&der).map_err(|_| VerifyError::Malformed {
            what: "certificate",
            reason: "not a DER certificate".into(),
        })?)
    } else if let Some(c) = &vm.certificate {
        let der = b64("certificate", &c.raw_bytes)?;
        Material::Cert(X509::from_der(&der).map_err(|_| VerifyError::Malformed {
            what: "certificate",
            reason: "not a DER certificate".into(),
        })?)
    } else if vm.public_key.is_some() {
        Material::Key
    } else {
        return Err(VerifyError::Incomplete(
            "no certificate or public key".into(),
        ));
    };
    let key: PKey<Public> = match &material {
        Material::Cert(c) => c
            .public_key()
            .map_err(|_| VerifyError::Certificate("certificate key does not parse".into()))?,
        Material::Key => policy.key.as_ref().map(|k| k.0.clone()).ok_or_else(|| {
            VerifyError::Key("the bundle is signed with a key but no key was given".into())
        })?,
    };

    // The signature itself (before anything in a DSSE payload is read).
    let artifact_sha256 = match artifact {
        Artifact::Bytes(bytes) => keys::sha256(bytes),
        Artifact::Sha256(d) => d,
    };
    let sig_bytes: &[u8] = match &content {
        Content::Message { digest, sig } => {
            // The bundle's digest is an unauthenticated hint: it only names the SHA-2 variant an
            // ECDSA key signed with, and must agree with the artifact when it is SHA-256.
            let md = match digest.as_ref().map(|(alg, _)| alg.as_str()) {
                Some("SHA2_256") | None => None,
                Some("SHA2_384") => Some(MessageDigest::sha384()),
                Some("SHA2_512") => Some(MessageDigest::sha512()),
                Some(other) => {
                    return Err(VerifyError::Malformed {
                        what: "messageDigest algorithm",
                        reason: format!("'{other}' is not supported"),
                    })
                }
            };
            let md = md.or_else(|| digest.as_ref().map(|_| MessageDigest::sha256()));
            if let Some((alg, d)) = digest {
                if alg == "SHA2_256" && d[..] != artifact_sha256[..] {
                    return Err(VerifyError::Artifact(
                        "the bundle's message digest is not the artifact's SHA-256".into(),
                    ));
                }
            }
            let ok = match artifact {
                Artifact::Bytes(bytes) => keys::verify_with(&key, md, bytes, sig),
                Artifact::Sha256(d) => {
                    let sha256_signed = match md {
                        Some(m) => m.type_() == MessageDigest::sha256().type_(),
                        None => {
                            keys::digest_for(&key).map(|m| m.type_())
                                == Some(MessageDigest::sha256().type_())
                        }
                    };
                    if !sha256_signed {
                        return Err(VerifyError::Artifact(
                            "this signature is not over a SHA-256: give the artifact, not its digest".into(),
                        ));
                    }
                    keys::verify_prehashed_sha256(&key, &d, sig)
                }
            };
            if !ok {
                return Err(VerifyError::BadSignature);
            }
            sig
        }
        Content::Dsse {
            payload_type,
            payload,
            sig,
        } => {
            if !keys::verify(&key, &pae(payload_type, payload), sig) {
                return Err(VerifyError::BadSignature);
            }
            sig
        }
    };

    // The transparency log.
    if vm.tlog_entries.is_empty() {
        return Err(VerifyError::Incomplete("no transparency log entry".into()));
    }
    let signed = match &content {
        Content::Message { sig, .. } => tlog::Signed::Message {
            sha256: artifact_sha256,
            sig,
        },
        Content::Dsse {
            payload_type,
            payload,
            sig,
        } => tlog::Signed::Dsse {
            payload,
            pae_sha256: keys::sha256(&pae(payload_type, payload)),
            sig,
        },
    };
    let mut times = Vec::new();
    let mut entries = Vec::new();
    for e in &vm.tlog_entries {
        let out = tlog::verify_entry(&root.tlogs, e, version >= 2)?;
        let logged = tlog::check_body(&out, &signed)?;
        let same = match (&logged, &material) {
            (tlog::LoggedKey::Cert(der), Material::Cert(c)) => {
                c.to_der().ok().as_deref() == Some(der.as_slice())
            }
            (tlog::LoggedKey::Key(spki), _) => *spki == keys::spki_der(&key),
            (tlog::LoggedKey::Cert(_), Material::Key) => false,
        };
        if !same {
            return Err(VerifyError::Tlog {
                log: out.log_url.clone(),
                check: TlogCheck::EntryMismatch,
                reason: "the logged key or certificate is not the bundle's".into(),
            });
        }
        if let Some(t) = out.integrated_time {
            times.push(VerifiedTime::Tlog {
                log: out.log_url.clone(),
                time: t,
            });
        }
        entries.push(VerifiedEntry {
            log: out.log_url,
            log_index: out.log_index,
            kind: format!("{}/{}", out.kind, out.version),
        });
    }

    // Signed timestamps: every one present must verify.
    if let Some(tsd) = &vm.timestamp_verification_data {
        for ts in &tsd.rfc3161_timestamps {
            let der = b64("rfc3161 signedTimestamp", &ts.signed_timestamp)?;
            let (time, authority) = tsa::verify_timestamp(&root.tsas, &der, sig_bytes)?;
            times.push(VerifiedTime::Timestamp { authority, time });
        }
    }
    if times.is_empty() {
        return Err(VerifyError::NoVerifiedTime);
    }

    // The certificate at every verified time, its SCT and identity.
    let (signer, identity_checked) = match &material {
        Material::Cert(leaf) => {
            let mut issuer = None;
            for t in &times {
                let time = match t {
                    VerifiedTime::Tlog { time, .. } | VerifiedTime::Timestamp { time, .. } => *time,
                };
                issuer = Some(cert::verify_chain(&root.cas, leaf, time)?);
            }
            let issuer = issuer.ok_or(VerifyError::NoVerifiedTime)?;
            let ct_log = cert::verify_sct(&root.ctlogs, leaf, &issuer)?;
            let identity = cert::identity(leaf);
            if let Some(want) = &policy.identity {
                if !identity.san.contains(&want.san)
                    || identity.issuer.as_deref() != Some(want.issuer.as_str())
                {
                    return Err(VerifyError::Identity {
                        expected: format!("'{}' from '{}'", want.san, want.issuer),
                        actual: format!(
                            "'{}' from '{}'",
                            identity.san.join(", "),
                            identity.issuer.as_deref().unwrap_or("?")
                        ),
                    });
                }
            }
            (
                Signer::Certificate { identity, ct_log },
                policy.identity.is_some(),
            )
        }
        Material::Key => (Signer::Key, true),
    };

    // Only now read the DSSE payload: the in-toto subject must name the artifact.
    let payload_type = match &content {
        Content::Dsse {
            payload_type,
            payload,
            ..
        } => {
            check_statement(payload_type, payload, &artifact_sha256)?;
            Some(payload_type.clone())
        }
        Content::Message { .. } => None,
    };

    Ok(Verified {
        media_type: b.media_type,
        signer,
        times,
        tlog_entries: entries,
        payload_type,
        identity_checked,
    })
}

fn check_statement(
    payload_type: &str,
    payload: &[u8],
    sha256: &[u8; 32],
) -> Result<(), VerifyError> {
    if payload_type != "application/vnd.in-toto+json" {
        return Err(VerifyError::Artifact(format!(
            "DSSE payload type '{payload_type}' is not in-toto"
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| VerifyError::Artifact(format!("in-toto statement is not JSON: {e}")))?;
    let want = hex::encode(sha256);
    let found = v
        .get("subject")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s.get("digest")
                    .and_then(|d| d.get("sha256"))
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|h| h.eq_ignore_ascii_case(&want))
            })
        });
    if found {
        Ok(())
    } else {
        Err(VerifyError::Artifact(
            "no in-toto subject has the artifact's SHA-256".into(),
        ))
    }
}

/// Parses `sha256:HEX` (64 hex digits).
pub fn parse_sha256_digest(s: &str) -> Result<[u8; 32], VerifyError> {
    let bad = || VerifyError::Artifact(format!("'{s}' is not sha256:<64 hex digits>"));
    let hex_part = s.strip_prefix("sha256:").ok_or_else(bad)?;
    let bytes = hex::decode(hex_part).map_err(|_| bad())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad())
}

/// The JSON report of a verification: `{"ok": true, ...Verified}` or `{"ok": false, "code", "error"}`.
pub fn report_json(result: &Result<Verified, VerifyError>) -> serde_json::Value {
    match result {
        Ok(v) => {
            let mut j = serde_json::to_value(v).unwrap_or_default();
            if let Some(o) = j.as_object_mut() {
                o.insert("ok".into(), true.into());
            }
            j
        }
        Err(e) => serde_json::json!({ "ok": false, "code": e.code(), "error": e.to_string() }),
    }
}

/// A human-readable summary of a verified bundle.
pub fn render(v: &Verified) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "bundle verified ({})", v.media_type);
    match &v.signer {
        Signer::Certificate { identity, ct_log } => {
            let _ = writeln!(
                s,
                "  signer:   {} (issuer {}){}",
                identity.san.join(", "),
                identity.issuer.as_deref().unwrap_or("?"),
                if v.identity_checked {
                    ""
                } else {
                    " -- identity NOT checked: pass --identity and --issuer"
                }
            );
            let _ = writeln!(s, "  sct:      {ct_log}");
        }
        Signer::Key => {
            let _ = writeln!(s, "  signer:   the given public key");
        }
    }
    if let Some(t) = &v.payload_type {
        let _ = writeln!(s, "  payload:  {t}");
    }
    for e in &v.tlog_entries {
        let _ = writeln!(
            s,
            "  tlog:     {} index {} ({})",
            e.log, e.log_index, e.kind
        );
    }
    for t in &v.times {
        match t {
            VerifiedTime::Tlog { log, time } => {
                let _ = writeln!(s, "  time:     {time} (integrated time, SET of {log})");
            }
            VerifiedTime::Timestamp { authority, time } => {
                let _ = writeln!(
                    s,
                    "  time:     {time} (RFC 3161 timestamp from {authority})"
                );
            }
        }
    }
    s
}
