//! The Fulcio signing certificate: chain to a trusted certificate authority at a verified time, the
//! embedded Signed Certificate Timestamp (RFC 6962) against the trusted CT logs, and the identity.

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509Ref, X509StoreContext, X509};

use super::der::{self, Reader};
use super::keys;
use super::model::{Authority, LogInstance};
use super::VerifyError;

/// 1.3.6.1.4.1.11129.2.4.2, the embedded SCT list.
const OID_SCT_LIST: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// 1.3.6.1.4.1.57264.1.1, Fulcio's OIDC issuer (raw string, deprecated).
const OID_ISSUER_V1: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x01];
/// 1.3.6.1.4.1.57264.1.8, Fulcio's OIDC issuer (DER UTF8String).
const OID_ISSUER_V2: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x08];

fn cert_err(reason: impl Into<String>) -> VerifyError {
    VerifyError::Certificate(reason.into())
}

/// Verifies `leaf` up to one of the trusted CAs valid at `time`, with every certificate's validity
/// checked at `time`. Returns the issuer of the leaf.
pub(crate) fn verify_chain(
    cas: &[Authority],
    leaf: &X509Ref,
    time: i64,
) -> Result<X509, VerifyError> {
    let mut last = format!("no certificate authority in the trusted root is valid at {time}");
    for ca in cas.iter().filter(|ca| ca.valid.contains(time)) {
        match chain_to(ca, leaf, time, None) {
            Ok(issuer) => return Ok(issuer),
            Err(e) => last = format!("not issued by '{}' at {time}: {e}", ca.uri),
        }
    }
    Err(cert_err(last))
}

/// Builds and verifies a chain from `leaf` to the last certificate of `authority.chain` at `time`.
pub(crate) fn chain_to(
    authority: &Authority,
    leaf: &X509Ref,
    time: i64,
    purpose: Option<openssl::x509::X509PurposeId>,
) -> Result<X509, String> {
    let (root, intermediates) = authority
        .chain
        .split_last()
        .ok_or_else(|| "empty chain".to_owned())?;
    let build = || -> Result<(X509StoreBuilder, Stack<X509>), openssl::error::ErrorStack> {
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(root.clone())?;
        let mut param = X509VerifyParam::new()?;
        param.set_time(time as _);
        if let Some(p) = purpose {
            param.set_purpose(p)?;
        }
        store.set_param(&param)?;
        let mut untrusted = Stack::new()?;
        for c in intermediates {
            untrusted.push(c.clone())?;
        }
        Ok((store, untrusted))
    };
    let (store, untrusted) = build().map_err(|e| e.to_string())?;
    let store = store.build();
    let mut ctx = X509StoreContext::new().map_err(|e| e.to_string())?;
    let result = ctx
        .init(&store, leaf, &untrusted, |c| {
            let ok = c.verify_cert()?;
            let issuer = c.chain().and_then(|ch| ch.get(1)).map(|i| i.to_owned());
            Ok((ok, c.error().error_string(), issuer))
        })
        .map_err(|e| e.to_string())?;
    match result {
        (true, _, Some(issuer)) => Ok(issuer),
        (true, _, None) => Err("the leaf is its own root".into()),
        (false, why, _) => Err(why.to_owned()),
    }
}

/// Whether a certificate is self-signed (a root).
pub(crate) fn is_self_signed(cert: &X509Ref) -> bool {
    cert.issued(cert) == openssl::x509::X509VerifyResult::OK
        && cert
            .public_key()
            .and_then(|k| cert.verify(&k))
            .unwrap_or(false)
}

fn u16_prefixed<'a>(d: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u16::from_be_bytes([*d.first()?, *d.get(1)?]) as usize;
    let v = d.get(2..2 + len)?;
    *d = &d[2 + len..];
    Some(v)
}

/// Verifies that at least one embedded SCT verifies under a trusted CT log valid at its timestamp.
pub(crate) fn verify_sct(
    ctlogs: &[LogInstance],
    leaf: &X509Ref,
    issuer: &X509Ref,
) -> Result<String, VerifyError> {
    let sct_err = |r: &str| VerifyError::Sct(r.to_owned());
    let leaf_der = leaf
        .to_der()
        .map_err(|_| cert_err("leaf does not encode"))?;
    let exts =
        der::cert_extensions(&leaf_der).map_err(|_| cert_err("leaf extensions do not parse"))?;
    let value = exts
        .extensions
        .iter()
        .find(|(oid, _)| *oid == OID_SCT_LIST)
        .map(|(_, v)| *v)
        .ok_or_else(|| sct_err("certificate has no embedded SCT"))?;
    let list = Reader::new(value, "SCT list")
        .expect(der::OCTET_STRING)
        .map_err(|_| sct_err("SCT list is not an OCTET STRING"))?
        .content;
    let mut list = list;
    let mut scts = u16_prefixed(&mut list).ok_or_else(|| sct_err("SCT list is truncated"))?;
    let tbs = der::tbs_without_extension(&leaf_der, OID_SCT_LIST)
        .map_err(|_| cert_err("leaf TBS does not parse"))?;
    let issuer_key_hash = keys::sha256(
        &issuer
            .public_key()
            .map(|k| keys::spki_der(&k))
            .unwrap_or_default(),
    );
    let mut last = "no SCT from a trusted CT log".to_owned();
    while !scts.is_empty() {
        let mut sct = u16_prefixed(&mut scts).ok_or_else(|| sct_err("SCT is truncated"))?;
        let parsed = (|| {
            let version = *sct.first()?;
            let log_id = sct.get(1..33)?;
            let timestamp = sct.get(33..41)?;
            sct = sct.get(41..)?;
            let extensions = u16_prefixed(&mut sct)?;
            let _algs = sct.get(..2)?;
            sct = sct.get(2..)?;
            let sig = u16_prefixed(&mut sct)?;
            Some((version, log_id, timestamp, extensions, sig))
        })();
        let Some((version, log_id, timestamp, extensions, sig)) = parsed else {
            return Err(sct_err("SCT is malformed"));
        };
        let Some(log) = ctlogs.iter().find(|l| l.key_id == log_id) else {
            last = format!("SCT from unknown CT log {}", hex::encode(log_id));
            continue;
        };
        let ts_ms = u64::from_be_bytes(timestamp.try_into().unwrap_or([0; 8]));
        if !log.valid.contains((ts_ms / 1000) as i64) {
            last = format!(
                "SCT time is outside the validity of CT log '{}'",
                log.base_url
            );
            continue;
        }
        // RFC 6962 §3.2 digitally-signed struct for a precertificate entry.
        let mut signed = vec![version, 0];
        signed.extend_from_slice(timestamp);
        signed.extend_from_slice(&[0, 1]);
        signed.extend_from_slice(&issuer_key_hash);
        let tbs_len = (tbs.len() as u32).to_be_bytes();
        signed.extend_from_slice(&tbs_len[1..]);
        signed.extend_from_slice(&tbs);
        signed.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        signed.extend_from_slice(extensions);
        if keys::verify(&log.key, &signed, sig) {
            return Ok(log.base_url.clone());
        }
        last = format!(
            "SCT signature does not verify under CT log '{}'",
            log.base_url
        );
    }
    Err(VerifyError::Sct(last))
}

/// The identity Fulcio bound into a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertIdentity {
    /// Subject alternative names (URIs and emails).
    pub san: Vec<String>,
    /// The OIDC issuer extension, if present.
    pub issuer: Option<String>,
}

pub(crate) fn identity(leaf: &X509Ref) -> CertIdentity {
    let mut san = Vec::new();
    if let Some(names) = leaf.subject_alt_names() {
        for n in &names {
            if let Some(u) = n.uri() {
                san.push(u.to_owned());
            } else if let Some(e) = n.email() {
                san.push(e.to_owned());
            }
        }
    }
    let der = leaf.to_der().unwrap_or_default();
    let mut issuer = None;
    if let Ok(exts) = der::cert_extensions(&der) {
        for (oid, value) in &exts.extensions {
            if *oid == OID_ISSUER_V2 {
                if let Ok(t) = der::parse_one(value, "issuer") {
                    if t.tag == der::UTF8_STRING {
                        issuer = std::str::from_utf8(t.content).ok().map(str::to_owned);
                    }
                }
            } else if *oid == OID_ISSUER_V1 && issuer.is_none() {
                issuer = std::str::from_utf8(value).ok().map(str::to_owned);
            }
        }
    }
    CertIdentity { san, issuer }
}
