//! eIDAS signer certificates: a signer may be identified by an X.509 certificate, checked offline against a
//! trust list of CA certificates at a time the caller gives. No OCSP or CRL is fetched, ever.

use crate::error::KeyError;
use crate::keys::PublicKey;
use crate::{Profile, ProfileId};
use openssl::nid::Nid;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509KeyUsage, X509StoreContext, X509};
use thiserror::Error;

/// Checking a certificate chain failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CertError {
    /// Certificates could not be parsed.
    #[error("malformed certificate in {what}: {reason}")]
    Malformed {
        /// Which input.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The chain does not lead to the trust list, or is not valid at the time given.
    #[error("certificate '{subject}' not trusted at {at}: {reason}")]
    Untrusted {
        /// The leaf's subject.
        subject: String,
        /// The verification time (Unix seconds).
        at: i64,
        /// OpenSSL's verdict.
        reason: String,
    },
    /// A certificate in the chain is signed with an algorithm outside the profile.
    #[error("certificate '{subject}' is signed with '{algorithm}', which is not allowed under profile '{profile}'")]
    NotAllowed {
        /// The certificate's subject.
        subject: String,
        /// Its signature algorithm.
        algorithm: String,
        /// The profile.
        profile: ProfileId,
    },
    /// The leaf's key is unusable under the profile.
    #[error("certificate '{subject}' key: {source}")]
    Key {
        /// The leaf's subject.
        subject: String,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The leaf may not sign (keyUsage lacks digitalSignature / nonRepudiation).
    #[error("certificate '{subject}' may not sign: key usage lacks digitalSignature")]
    KeyUsage {
        /// The leaf's subject.
        subject: String,
    },
}

/// Parses every certificate in a PEM bundle.
pub fn certs_from_pem(pem: &[u8], what: &'static str) -> Result<Vec<X509>, CertError> {
    let certs = X509::stack_from_pem(pem).map_err(|e| CertError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(CertError::Malformed {
            what,
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

fn subject_of(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn signature_allowed(profile: &Profile, nid: Nid) -> bool {
    match profile.id() {
        ProfileId::Fips | ProfileId::Eidas => {
            matches!(
                nid,
                Nid::ECDSA_WITH_SHA256 | Nid::ECDSA_WITH_SHA384 | Nid::RSASSAPSS
            ) || (profile.id() == ProfileId::Fips
                && nid == crate::ossl_ffi::nid_from_short_name("ED25519"))
        }
        ProfileId::Sm => nid == crate::ossl_ffi::nid_from_short_name("SM2-SM3"),
        ProfileId::Gost => {
            let n = nid.short_name().unwrap_or("");
            n.starts_with("id-tc26-signwithdigest-gost3410-2012")
        }
    }
}

/// Checks `leaf` (with `intermediates`) against `trust_list` at Unix time `at` and returns the leaf's key,
/// bound to the profile's schemes. Every certificate's signature algorithm must be the profile's.
pub fn verify_signer_certificate(
    profile: &Profile,
    leaf: &X509,
    intermediates: &[X509],
    trust_list: &[X509],
    at: i64,
) -> Result<PublicKey, CertError> {
    let subject = subject_of(leaf);
    let mut store = X509StoreBuilder::new().map_err(|e| untrusted(&subject, at, e.to_string()))?;
    for ca in trust_list {
        store
            .add_cert(ca.clone())
            .map_err(|e| untrusted(&subject, at, e.to_string()))?;
    }
    let mut param = X509VerifyParam::new().map_err(|e| untrusted(&subject, at, e.to_string()))?;
    param.set_time(at as _);
    param
        .set_flags(X509VerifyFlags::X509_STRICT)
        .map_err(|e| untrusted(&subject, at, e.to_string()))?;
    store
        .set_param(&param)
        .map_err(|e| untrusted(&subject, at, e.to_string()))?;
    let store = store.build();
    let mut chain = Stack::new().map_err(|e| untrusted(&subject, at, e.to_string()))?;
    for c in intermediates {
        chain
            .push(c.clone())
            .map_err(|e| untrusted(&subject, at, e.to_string()))?;
    }
    let mut ctx = X509StoreContext::new().map_err(|e| untrusted(&subject, at, e.to_string()))?;
    let verified_chain: Result<Vec<X509>, String> = ctx
        .init(&store, leaf, &chain, |c| {
            if c.verify_cert()? {
                Ok(Ok(c
                    .chain()
                    .map(|s| s.iter().map(|x| x.to_owned()).collect())
                    .unwrap_or_default()))
            } else {
                Ok(Err(c.error().error_string().to_owned()))
            }
        })
        .map_err(|e| untrusted(&subject, at, e.to_string()))?;
    let verified_chain = verified_chain.map_err(|reason| untrusted(&subject, at, reason))?;
    // Strict mode over the whole path, trust anchor's self-signature excepted only if it is in the list.
    for cert in verified_chain
        .iter()
        .filter(|c| !trust_list.iter().any(|t| t == *c))
    {
        let nid = cert.signature_algorithm().object().nid();
        if !signature_allowed(profile, nid) {
            return Err(CertError::NotAllowed {
                subject: subject_of(cert),
                algorithm: nid.long_name().unwrap_or("unknown").to_owned(),
                profile: profile.id(),
            });
        }
    }
    // A signer certificate must allow signing; an absent keyUsage extension is unrestricted (RFC 5280).
    if let Some(usage) = leaf.key_usage() {
        if !usage.intersects(X509KeyUsage::DIGITAL_SIGNATURE | X509KeyUsage::NON_REPUDIATION) {
            return Err(CertError::KeyUsage { subject });
        }
    }
    let spki = leaf
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .map_err(|e| CertError::Malformed {
            what: "leaf certificate",
            reason: e.to_string(),
        })?;
    let key = PublicKey::from_der(&spki).map_err(|source| CertError::Key {
        subject: subject.clone(),
        source,
    })?;
    profile
        .check_signature(key.algorithm())
        .map_err(|e| CertError::Key {
            subject: subject.clone(),
            source: KeyError::NotAllowed(e),
        })?;
    Ok(key)
}

fn untrusted(subject: &str, at: i64, reason: String) -> CertError {
    CertError::Untrusted {
        subject: subject.to_owned(),
        at,
        reason,
    }
}
