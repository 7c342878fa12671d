//! Rekor transparency-log checks we do ourselves: the Signed Entry Timestamp (SET), the RFC 6962
//! Merkle inclusion proof, the signed checkpoint (a signed note) the proof's root must match, and the
//! consistency of the logged entry body with the bundle's signature, key and artifact.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;

use super::keys::{self, sha256};
use super::model::{InclusionProof, LogInstance, TlogEntry};
use super::{TlogCheck, VerifyError};

/// What an entry proved: the log it is in and, with a verified SET, its integrated time.
#[derive(Debug)]
pub(crate) struct EntryOutcome {
    pub log_url: String,
    pub log_index: i64,
    pub integrated_time: Option<i64>,
    pub body: Value,
    pub kind: String,
    pub version: String,
}

fn fail(log: &str, check: TlogCheck, reason: impl Into<String>) -> VerifyError {
    VerifyError::Tlog {
        log: log.to_owned(),
        check,
        reason: reason.into(),
    }
}

fn b64(field: &'static str, s: &str) -> Result<Vec<u8>, VerifyError> {
    // Go's and Python's decoders skip line breaks, and some producers wrap long values.
    let s: String = s.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    B64.decode(s).map_err(|_| VerifyError::Malformed {
        what: field,
        reason: "invalid base64".into(),
    })
}

/// Verifies one log entry against the trusted logs. `require_proof` is set for bundles v0.2 and
/// later, where an inclusion proof with a checkpoint is mandatory.
pub(crate) fn verify_entry(
    logs: &[LogInstance],
    entry: &TlogEntry,
    require_proof: bool,
) -> Result<EntryOutcome, VerifyError> {
    let log_id = b64("tlog entry logId", &entry.log_id.key_id)?;
    let log = logs
        .iter()
        .find(|l| l.key_id == log_id)
        .ok_or_else(|| VerifyError::UnknownLog {
            log_id: entry.log_id.key_id.clone(),
        })?;
    let name = log.base_url.as_str();
    let log_index = entry.log_index.get("tlog entry logIndex")?;
    if log_index < 0 {
        return Err(fail(
            name,
            TlogCheck::Entry,
            format!("negative log index {log_index}"),
        ));
    }
    let body_bytes = b64("tlog entry canonicalizedBody", &entry.canonicalized_body)?;
    let body: Value = serde_json::from_slice(&body_bytes).map_err(|e| {
        fail(
            name,
            TlogCheck::Entry,
            format!("entry body is not JSON: {e}"),
        )
    })?;
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    let version = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind != entry.kind_version.kind || version != entry.kind_version.version {
        return Err(fail(
            name,
            TlogCheck::Entry,
            format!(
                "entry body is {kind}/{version} but the bundle says {}/{}",
                entry.kind_version.kind, entry.kind_version.version
            ),
        ));
    }

    let integrated_time = match &entry.integrated_time {
        Some(t) => t.get("tlog entry integratedTime")?,
        None => 0,
    };
    let mut authenticated_time = None;
    if let Some(promise) = &entry.inclusion_promise {
        let set = b64("signedEntryTimestamp", &promise.signed_entry_timestamp)?;
        verify_set(
            log,
            &entry.canonicalized_body,
            integrated_time,
            log_index,
            &set,
        )?;
        if !log.valid.contains(integrated_time) {
            return Err(fail(
                name,
                TlogCheck::KeyValidity,
                format!("integrated time {integrated_time} is outside the log key's validity"),
            ));
        }
        authenticated_time = Some(integrated_time);
    } else if integrated_time != 0 {
        // An integrated time without a SET is unauthenticated; a v1 entry must carry its promise.
        return Err(fail(
            name,
            TlogCheck::Set,
            "entry has an integrated time but no signed entry timestamp",
        ));
    }

    match &entry.inclusion_proof {
        Some(proof) => verify_inclusion(log, proof, &body_bytes)?,
        None if require_proof || authenticated_time.is_none() => {
            return Err(fail(
                name,
                TlogCheck::InclusionProof,
                "entry has no inclusion proof",
            ));
        }
        None => {}
    }

    Ok(EntryOutcome {
        log_url: log.base_url.clone(),
        log_index,
        integrated_time: authenticated_time,
        kind: kind.to_owned(),
        version: version.to_owned(),
        body,
    })
}

/// The SET is the log's signature over the canonical JSON (RFC 8785; here all keys are fixed and
/// sorted) of `{body, integratedTime, logID, logIndex}`.
fn verify_set(
    log: &LogInstance,
    body_b64: &str,
    integrated_time: i64,
    log_index: i64,
    set: &[u8],
) -> Result<(), VerifyError> {
    let payload = format!(
        "{{\"body\":{},\"integratedTime\":{integrated_time},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
        Value::String(body_b64.to_owned()),
        hex::encode(&log.key_id)
    );
    if keys::verify(&log.key, payload.as_bytes(), set) {
        Ok(())
    } else {
        Err(fail(
            &log.base_url,
            TlogCheck::Set,
            "signed entry timestamp does not verify under the log key",
        ))
    }
}

fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(65);
    buf.push(1u8);
    buf.extend_from_slice(left);
    buf.extend_from_slice(right);
    sha256(&buf)
}

/// RFC 9162 §2.1.3.2: the root a proof implies for `leaf` at `index` in a tree of `size` leaves.
pub(crate) fn root_from_proof(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    if proof.len() != inner + border {
        return None;
    }
    let mut h = leaf;
    for (i, p) in proof[..inner].iter().enumerate() {
        h = if (index >> i) & 1 == 0 {
            node_hash(&h, p)
        } else {
            node_hash(p, &h)
        };
    }
    for p in &proof[inner..] {
        h = node_hash(p, &h);
    }
    Some(h)
}

fn verify_inclusion(
    log: &LogInstance,
    proof: &InclusionProof,
    body: &[u8],
) -> Result<(), VerifyError> {
    let name = log.base_url.as_str();
    let bad = |r: &str| fail(name, TlogCheck::InclusionProof, r);
    let index = proof.log_index.get("inclusionProof logIndex")?;
    let size = proof.tree_size.get("inclusionProof treeSize")?;
    let (Ok(index), Ok(size)) = (u64::try_from(index), u64::try_from(size)) else {
        return Err(bad("negative index or tree size"));
    };
    let root = b64("inclusionProof rootHash", &proof.root_hash)?;
    let mut hashes = Vec::with_capacity(proof.hashes.len());
    for h in &proof.hashes {
        let h = b64("inclusionProof hashes", h)?;
        hashes.push(
            <[u8; 32]>::try_from(h.as_slice()).map_err(|_| bad("a proof hash is not 32 bytes"))?,
        );
    }
    let mut leaf_input = Vec::with_capacity(body.len() + 1);
    leaf_input.push(0u8);
    leaf_input.extend_from_slice(body);
    let computed = root_from_proof(index, size, sha256(&leaf_input), &hashes)
        .ok_or_else(|| bad("proof has the wrong shape for its index and tree size"))?;
    if computed[..] != root[..] {
        return Err(bad("proof does not lead to its root hash"));
    }
    let checkpoint = proof.checkpoint.as_ref().ok_or_else(|| {
        fail(
            name,
            TlogCheck::Checkpoint,
            "inclusion proof has no checkpoint",
        )
    })?;
    let cp = verify_checkpoint(log, &checkpoint.envelope)?;
    if cp.size != size || cp.root != root {
        return Err(fail(
            name,
            TlogCheck::Checkpoint,
            format!(
                "checkpoint (size {}) does not commit to the proof's root and size {size}",
                cp.size
            ),
        ));
    }
    Ok(())
}

struct CheckpointBody {
    size: u64,
    root: Vec<u8>,
}

/// Verifies a signed note (`c2sp.org/signed-note`, `tlog-checkpoint`): at least one signature line
/// named after the log's host, with the log's key hint, must verify under the log's key. Other lines
/// (witness cosignatures, other keys) are ignored.
fn verify_checkpoint(log: &LogInstance, envelope: &str) -> Result<CheckpointBody, VerifyError> {
    let name = log.base_url.as_str();
    let bad = |r: &str| fail(name, TlogCheck::Checkpoint, r);
    let (text, sigs) = envelope
        .split_once("\n\n")
        .ok_or_else(|| bad("checkpoint has no blank line before its signatures"))?;
    let note = &envelope[..text.len() + 1];
    let mut lines = text.split('\n');
    let origin = lines.next().unwrap_or_default();
    let size_line = lines
        .next()
        .ok_or_else(|| bad("checkpoint has no tree size"))?;
    let root_line = lines
        .next()
        .ok_or_else(|| bad("checkpoint has no root hash"))?;
    if origin.is_empty() {
        return Err(bad("checkpoint has an empty origin"));
    }
    let size: u64 = size_line
        .parse()
        .map_err(|_| bad("checkpoint tree size is not a number"))?;
    let root = B64
        .decode(root_line)
        .map_err(|_| bad("checkpoint root hash is not base64"))?;
    if root.len() != 32 {
        return Err(bad("checkpoint root hash is not 32 bytes"));
    }
    let host = log.host();
    if origin != host && !origin.starts_with(&format!("{host} - ")) {
        return Err(bad("checkpoint origin does not name the log"));
    }
    let hint = log.key_id.get(..4).unwrap_or_default();
    let mut verified = false;
    for line in sigs.split('\n').filter(|l| !l.is_empty()) {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(bad("malformed checkpoint signature line"));
        };
        let Some((signer, sig)) = rest.split_once(' ') else {
            return Err(bad("malformed checkpoint signature line"));
        };
        if signer != host {
            continue;
        }
        let Ok(sig) = B64.decode(sig) else {
            continue;
        };
        if sig.len() < 5 || &sig[..4] != hint {
            continue;
        }
        if keys::verify(&log.key, note.as_bytes(), &sig[4..]) {
            verified = true;
            break;
        }
        return Err(bad(
            "checkpoint signature does not verify under the log key",
        ));
    }
    if !verified {
        return Err(bad("no checkpoint signature from the log's key"));
    }
    Ok(CheckpointBody { size, root })
}

/// The signing key or certificate as the log recorded it.
#[derive(Debug)]
pub(crate) enum LoggedKey {
    /// DER of a certificate.
    Cert(Vec<u8>),
    /// DER SubjectPublicKeyInfo.
    Key(Vec<u8>),
}

/// What the bundle signed, for comparing with the entry body.
pub(crate) enum Signed<'a> {
    /// A message signature over an artifact with this SHA-256.
    Message { sha256: [u8; 32], sig: &'a [u8] },
    /// A DSSE envelope: payload and its signature; `pae_sha256` is SHA-256 of the PAE.
    Dsse {
        payload: &'a [u8],
        pae_sha256: [u8; 32],
        sig: &'a [u8],
    },
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn pem_to_logged(pem_b64: &str) -> Option<LoggedKey> {
    let pem = B64.decode(pem_b64).ok()?;
    if let Ok(cert) = openssl::x509::X509::from_pem(&pem) {
        return cert.to_der().ok().map(LoggedKey::Cert);
    }
    keys::public_key_from_pem(&pem).map(|k| LoggedKey::Key(keys::spki_der(&k)))
}

/// Checks the entry body against what the bundle signed and returns the key the log recorded.
pub(crate) fn check_body(
    out: &EntryOutcome,
    signed: &Signed<'_>,
) -> Result<LoggedKey, VerifyError> {
    let name = out.log_url.as_str();
    let mismatch = |r: &str| fail(name, TlogCheck::EntryMismatch, r);
    let spec = out
        .body
        .get("spec")
        .ok_or_else(|| mismatch("entry has no spec"))?;
    match (out.kind.as_str(), out.version.as_str(), signed) {
        ("hashedrekord", "0.0.1", Signed::Message { sha256, sig }) => {
            let alg = str_at(spec, &["data", "hash", "algorithm"]);
            let value = str_at(spec, &["data", "hash", "value"]);
            if alg != Some("sha256") || value != Some(hex::encode(sha256).as_str()) {
                return Err(mismatch("logged artifact digest differs from the artifact"));
            }
            let logged_sig =
                str_at(spec, &["signature", "content"]).and_then(|s| B64.decode(s).ok());
            if logged_sig.as_deref() != Some(*sig) {
                return Err(mismatch("logged signature differs from the bundle's"));
            }
            str_at(spec, &["signature", "publicKey", "content"])
                .and_then(pem_to_logged)
                .ok_or_else(|| mismatch("logged public key does not parse"))
        }
        ("hashedrekord", "0.0.2", _) => {
            let (digest, sig) = match signed {
                Signed::Message { sha256, sig } => (sha256, sig),
                Signed::Dsse {
                    pae_sha256, sig, ..
                } => (pae_sha256, sig),
            };
            let v2 = spec
                .get("hashedRekordV002")
                .ok_or_else(|| mismatch("entry has no hashedRekordV002"))?;
            let alg = str_at(v2, &["data", "algorithm"]);
            let logged = str_at(v2, &["data", "digest"]).and_then(|s| B64.decode(s).ok());
            if alg != Some("SHA2_256") || logged.as_deref() != Some(&digest[..]) {
                return Err(mismatch("logged digest differs from the signed content"));
            }
            let logged_sig = str_at(v2, &["signature", "content"]).and_then(|s| B64.decode(s).ok());
            if logged_sig.as_deref() != Some(*sig) {
                return Err(mismatch("logged signature differs from the bundle's"));
            }
            let verifier = v2
                .get("signature")
                .and_then(|s| s.get("verifier"))
                .ok_or_else(|| mismatch("entry has no verifier"))?;
            if let Some(c) = str_at(verifier, &["x509Certificate", "rawBytes"]) {
                return B64
                    .decode(c)
                    .map(LoggedKey::Cert)
                    .map_err(|_| mismatch("logged certificate is not base64"));
            }
            if let Some(k) = str_at(verifier, &["publicKey", "rawBytes"]) {
                return B64
                    .decode(k)
                    .map(LoggedKey::Key)
                    .map_err(|_| mismatch("logged key is not base64"));
            }
            Err(mismatch("entry verifier has neither certificate nor key"))
        }
        ("dsse", "0.0.1", Signed::Dsse { payload, sig, .. }) => {
            let alg = str_at(spec, &["payloadHash", "algorithm"]);
            let value = str_at(spec, &["payloadHash", "value"]);
            if alg != Some("sha256") || value != Some(hex::encode(keys::sha256(payload)).as_str()) {
                return Err(mismatch(
                    "logged payload hash differs from the envelope's payload",
                ));
            }
            let sigs = spec
                .get("signatures")
                .and_then(Value::as_array)
                .ok_or_else(|| mismatch("entry has no signatures"))?;
            if sigs.len() != 1 {
                return Err(mismatch("entry must log exactly one signature"));
            }
            let logged_sig = str_at(&sigs[0], &["signature"]).and_then(|s| B64.decode(s).ok());
            if logged_sig.as_deref() != Some(*sig) {
                return Err(mismatch("logged signature differs from the envelope's"));
            }
            str_at(&sigs[0], &["verifier"])
                .and_then(pem_to_logged)
                .ok_or_else(|| mismatch("logged verifier does not parse"))
        }
        ("intoto", "0.0.2", Signed::Dsse { payload, sig, .. }) => {
            let content = spec
                .get("content")
                .ok_or_else(|| mismatch("entry has no content"))?;
            let alg = str_at(content, &["payloadHash", "algorithm"]);
            let value = str_at(content, &["payloadHash", "value"]);
            if alg != Some("sha256") || value != Some(hex::encode(keys::sha256(payload)).as_str()) {
                return Err(mismatch(
                    "logged payload hash differs from the envelope's payload",
                ));
            }
            let sigs = content
                .get("envelope")
                .and_then(|e| e.get("signatures"))
                .and_then(Value::as_array)
                .ok_or_else(|| mismatch("entry has no envelope signatures"))?;
            if sigs.len() != 1 {
                return Err(mismatch("entry must log exactly one signature"));
            }
            // intoto v0.0.2 stores the envelope's base64 signature base64-encoded once more.
            let logged_sig = str_at(&sigs[0], &["sig"])
                .and_then(|s| B64.decode(s).ok())
                .and_then(|s| B64.decode(s).ok());
            if logged_sig.as_deref() != Some(*sig) {
                return Err(mismatch("logged signature differs from the envelope's"));
            }
            str_at(&sigs[0], &["publicKey"])
                .and_then(pem_to_logged)
                .ok_or_else(|| mismatch("logged public key does not parse"))
        }
        (k, v, _) => Err(mismatch(&format!(
            "entry kind {k}/{v} does not fit a {} bundle",
            match signed {
                Signed::Message { .. } => "message-signature",
                Signed::Dsse { .. } => "DSSE",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_leaf_tree_has_empty_proof() {
        let leaf = sha256(b"\0x");
        assert_eq!(root_from_proof(0, 1, leaf, &[]), Some(leaf));
        assert_eq!(root_from_proof(1, 1, leaf, &[]), None);
    }

    #[test]
    fn three_leaf_tree() {
        let l: Vec<[u8; 32]> = (0u8..3).map(|i| sha256(&[0, i])).collect();
        let n01 = node_hash(&l[0], &l[1]);
        let root = node_hash(&n01, &l[2]);
        assert_eq!(root_from_proof(2, 3, l[2], &[n01]), Some(root));
        assert_eq!(root_from_proof(0, 3, l[0], &[l[1], l[2]]), Some(root));
        assert_eq!(root_from_proof(1, 3, l[1], &[l[0], l[2]]), Some(root));
        assert_ne!(root_from_proof(1, 3, l[1], &[l[2], l[0]]), Some(root));
    }
}
