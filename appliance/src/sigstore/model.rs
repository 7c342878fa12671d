//! Serde models of the protobuf-JSON documents we read: the Sigstore bundle (v0.1, v0.2, v0.3) and the
//! trusted root (`sigstore_trustroot.proto`), and the parsed, typed trusted root.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use serde::Deserialize;

use super::VerifyError;

/// protobuf-JSON writes int64 as a string, but some producers write a number.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum Int64 {
    Str(String),
    Num(i64),
}

impl Int64 {
    pub fn get(&self, field: &'static str) -> Result<i64, VerifyError> {
        match self {
            Int64::Num(n) => Ok(*n),
            Int64::Str(s) => s.parse().map_err(|_| VerifyError::Malformed {
                what: field,
                reason: format!("'{s}' is not an integer"),
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawBytes {
    pub raw_bytes: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BundleJson {
    pub media_type: String,
    pub verification_material: Option<VerificationMaterial>,
    pub message_signature: Option<MessageSignature>,
    pub dsse_envelope: Option<DsseEnvelope>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerificationMaterial {
    pub x509_certificate_chain: Option<CertChain>,
    pub certificate: Option<RawBytes>,
    pub public_key: Option<serde_json::Value>,
    #[serde(default)]
    pub tlog_entries: Vec<TlogEntry>,
    pub timestamp_verification_data: Option<TimestampData>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CertChain {
    #[serde(default)]
    pub certificates: Vec<RawBytes>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TimestampData {
    #[serde(default)]
    pub rfc3161_timestamps: Vec<SignedTimestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignedTimestamp {
    pub signed_timestamp: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TlogEntry {
    pub log_index: Int64,
    pub log_id: KeyIdJson,
    pub kind_version: KindVersion,
    pub integrated_time: Option<Int64>,
    pub inclusion_promise: Option<InclusionPromise>,
    pub inclusion_proof: Option<InclusionProof>,
    pub canonicalized_body: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyIdJson {
    pub key_id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KindVersion {
    pub kind: String,
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InclusionPromise {
    pub signed_entry_timestamp: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InclusionProof {
    pub log_index: Int64,
    pub root_hash: String,
    pub tree_size: Int64,
    #[serde(default)]
    pub hashes: Vec<String>,
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Checkpoint {
    pub envelope: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageSignature {
    pub message_digest: Option<MessageDigest>,
    pub signature: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MessageDigest {
    pub algorithm: String,
    pub digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DsseEnvelope {
    pub payload: String,
    pub payload_type: String,
    #[serde(default)]
    pub signatures: Vec<DsseSignature>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DsseSignature {
    pub sig: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustedRootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    ctlogs: Vec<LogJson>,
    #[serde(default)]
    timestamp_authorities: Vec<AuthorityJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogJson {
    #[serde(default)]
    base_url: String,
    public_key: PublicKeyJson,
    log_id: KeyIdJson,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: Option<String>,
    #[serde(default)]
    key_details: String,
    valid_for: Option<TimeRangeJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    #[serde(default)]
    uri: String,
    cert_chain: CertChain,
    valid_for: Option<TimeRangeJson>,
}

#[derive(Debug, Deserialize)]
struct TimeRangeJson {
    start: Option<String>,
    end: Option<String>,
}

/// A closed interval of Unix seconds; an absent end is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Start (inclusive).
    pub start: i64,
    /// End (inclusive), if any.
    pub end: Option<i64>,
}

impl TimeRange {
    /// Whether `t` lies inside the closed interval.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency log (Rekor) or certificate-transparency log from the trusted root.
#[derive(Debug)]
pub(crate) struct LogInstance {
    pub base_url: String,
    pub key_id: Vec<u8>,
    pub key: PKey<Public>,
    pub valid: TimeRange,
}

impl LogInstance {
    /// The host part of the base URL: the name a log signs its checkpoints with.
    pub fn host(&self) -> &str {
        let s = self.base_url.split("://").nth(1).unwrap_or(&self.base_url);
        s.split('/').next().unwrap_or(s)
    }
}

/// A certificate or timestamp authority from the trusted root; `chain` runs from the issuing
/// certificate to the root.
#[derive(Debug)]
pub(crate) struct Authority {
    pub uri: String,
    pub chain: Vec<X509>,
    pub valid: TimeRange,
}

/// A Sigstore trusted root (`application/vnd.dev.sigstore.trustedroot+json`), read from a file the
/// kit carries. Nothing here is ever fetched.
#[derive(Debug)]
pub struct TrustedRoot {
    pub(crate) tlogs: Vec<LogInstance>,
    pub(crate) ctlogs: Vec<LogInstance>,
    pub(crate) cas: Vec<Authority>,
    pub(crate) tsas: Vec<Authority>,
}

fn bad_root(reason: impl Into<String>) -> VerifyError {
    VerifyError::TrustedRoot(reason.into())
}

fn parse_range(r: Option<&TimeRangeJson>, what: &str) -> Result<TimeRange, VerifyError> {
    let r = r.ok_or_else(|| bad_root(format!("{what} has no validFor")))?;
    let start = r
        .start
        .as_deref()
        .ok_or_else(|| bad_root(format!("{what} validFor has no start")))?;
    let start =
        parse_rfc3339(start).ok_or_else(|| bad_root(format!("{what} validFor start '{start}'")))?;
    let end = match r.end.as_deref() {
        None => None,
        Some(e) => {
            Some(parse_rfc3339(e).ok_or_else(|| bad_root(format!("{what} validFor end '{e}'")))?)
        }
    };
    Ok(TimeRange { start, end })
}

fn parse_log(l: &LogJson, what: &str) -> Result<LogInstance, VerifyError> {
    let name = format!("{what} '{}'", l.base_url);
    let raw = l
        .public_key
        .raw_bytes
        .as_deref()
        .ok_or_else(|| bad_root(format!("{name} has no public key")))?;
    let der = B64
        .decode(raw)
        .map_err(|_| bad_root(format!("{name} public key is not base64")))?;
    let key = PKey::public_key_from_der(&der)
        .or_else(|_| Rsa::public_key_from_der_pkcs1(&der).and_then(PKey::from_rsa))
        .map_err(|_| {
            bad_root(format!(
                "{name} public key ({}) does not parse",
                l.public_key.key_details
            ))
        })?;
    let key_id = B64
        .decode(&l.log_id.key_id)
        .map_err(|_| bad_root(format!("{name} log id is not base64")))?;
    Ok(LogInstance {
        base_url: l.base_url.clone(),
        key_id,
        key,
        valid: parse_range(l.public_key.valid_for.as_ref(), &name)?,
    })
}

fn parse_authority(a: &AuthorityJson, what: &str) -> Result<Authority, VerifyError> {
    let name = format!("{what} '{}'", a.uri);
    let mut chain = Vec::new();
    for c in &a.cert_chain.certificates {
        let der = B64
            .decode(&c.raw_bytes)
            .map_err(|_| bad_root(format!("{name} certificate is not base64")))?;
        chain.push(
            X509::from_der(&der)
                .map_err(|_| bad_root(format!("{name} certificate does not parse")))?,
        );
    }
    if chain.is_empty() {
        return Err(bad_root(format!("{name} has an empty certificate chain")));
    }
    Ok(Authority {
        uri: a.uri.clone(),
        chain,
        valid: parse_range(a.valid_for.as_ref(), &name)?,
    })
}

impl TrustedRoot {
    /// Parses a `trusted_root.json`. Every key and certificate must parse and every validity range
    /// must have a start.
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, VerifyError> {
        let j: TrustedRootJson =
            serde_json::from_slice(bytes).map_err(|e| bad_root(format!("not valid JSON: {e}")))?;
        if !j
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(bad_root(format!("unknown media type '{}'", j.media_type)));
        }
        Ok(TrustedRoot {
            tlogs: j
                .tlogs
                .iter()
                .map(|l| parse_log(l, "tlog"))
                .collect::<Result<_, _>>()?,
            ctlogs: j
                .ctlogs
                .iter()
                .map(|l| parse_log(l, "ctlog"))
                .collect::<Result<_, _>>()?,
            cas: j
                .certificate_authorities
                .iter()
                .map(|a| parse_authority(a, "certificate authority"))
                .collect::<Result<_, _>>()?,
            tsas: j
                .timestamp_authorities
                .iter()
                .map(|a| parse_authority(a, "timestamp authority"))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to Unix seconds (fraction dropped).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let base = unix(
        num(s.get(0..4)?)?,
        num(s.get(5..7)?)?,
        num(s.get(8..10)?)?,
        num(s.get(11..13)?)?,
        num(s.get(14..16)?)?,
        num(s.get(17..19)?)?,
    )?;
    let mut rest = s.get(19..)?;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &r[digits..];
    }
    match rest {
        "Z" | "z" => Some(base),
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => -1,
                b'-' => 1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let off = num(&rest[1..3])? * 3600 + num(&rest[4..6])? * 60;
            Some(base + sign * off)
        }
    }
}

/// Parses an ASN.1 GeneralizedTime `YYYYMMDDHHMMSS[.frac]Z` to Unix seconds (fraction dropped).
pub(crate) fn parse_generalized_time(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| num(f).is_none()) || main.len() != 14 {
        return None;
    }
    unix(
        num(main.get(0..4)?)?,
        num(main.get(4..6)?)?,
        num(main.get(6..8)?)?,
        num(main.get(8..10)?)?,
        num(main.get(10..12)?)?,
        num(main.get(12..14)?)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-07-12T15:56:36Z"), Some(1_689_177_396));
        assert_eq!(
            parse_rfc3339("2023-07-12T15:56:36.999Z"),
            Some(1_689_177_396)
        );
        assert_eq!(
            parse_rfc3339("2023-07-12T17:56:36+02:00"),
            Some(1_689_177_396)
        );
        assert_eq!(parse_rfc3339("2023-07-12 15:56:36Z"), None);
        assert_eq!(
            parse_generalized_time("20230712155636Z"),
            Some(1_689_177_396)
        );
        assert_eq!(
            parse_generalized_time("20230712155636.25Z"),
            Some(1_689_177_396)
        );
        assert_eq!(parse_generalized_time("2023071215563Z"), None);
    }
}
