//! RFC 3161 signed timestamps over the bundle's signature, checked against the trusted timestamp
//! authorities: CMS signature, signer chain at the timestamp's own time (with the timestamping
//! purpose), the authority's validity window, and the message imprint.

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::{hash, MessageDigest};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509PurposeId, X509};

use super::der::{self, Reader};
use super::model::{parse_generalized_time, Authority};
use super::VerifyError;

/// id-ct-TSTInfo, 1.2.840.113549.1.9.16.1.4.
const OID_TST_INFO: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

fn ts_err(reason: impl Into<String>) -> VerifyError {
    VerifyError::Timestamp(reason.into())
}

struct TstInfo {
    hash_oid: Vec<u8>,
    imprint: Vec<u8>,
    gen_time: i64,
}

/// Returns the timeStampToken (a CMS ContentInfo) from a TimeStampResp, or the input if it already
/// is a token.
fn token_of(resp: &[u8]) -> Result<&[u8], der::DerError> {
    let top = der::parse_one(resp, "timestamp")?;
    let mut r = Reader::new(top.content, "timestamp");
    let first = r.read()?;
    if first.tag == der::OID {
        return Ok(top.raw);
    }
    // PKIStatusInfo: status 0 (granted) or 1 (grantedWithMods) only.
    let status = Reader::new(first.content, "timestamp status").expect(der::INTEGER)?;
    if !matches!(status.content, [0] | [1]) {
        return Err(der::DerError("timestamp status is not granted"));
    }
    Ok(r.expect(der::SEQUENCE)?.raw)
}

fn tst_info(token: &[u8]) -> Result<TstInfo, der::DerError> {
    let w = "timestamp token";
    let mut ci = Reader::new(der::parse_one(token, w)?.content, w);
    ci.expect(der::OID)?;
    let mut signed_data = Reader::new(ci.expect(0xa0)?.content, w).enter(der::SEQUENCE)?;
    signed_data.expect(der::INTEGER)?;
    signed_data.expect(der::SET)?;
    let mut encap = signed_data.enter(der::SEQUENCE)?;
    if encap.expect(der::OID)?.content != OID_TST_INFO {
        return Err(der::DerError("timestamp content is not a TSTInfo"));
    }
    let econtent = Reader::new(encap.expect(0xa0)?.content, w).expect(der::OCTET_STRING)?;
    let mut tst = Reader::new(der::parse_one(econtent.content, w)?.content, "TSTInfo");
    tst.expect(der::INTEGER)?;
    tst.expect(der::OID)?;
    let mut imprint = tst.enter(der::SEQUENCE)?;
    let mut alg = imprint.enter(der::SEQUENCE)?;
    let hash_oid = alg.expect(der::OID)?.content.to_vec();
    let hashed = imprint.expect(der::OCTET_STRING)?.content.to_vec();
    tst.expect(der::INTEGER)?;
    let gen = tst.expect(der::GENERALIZED_TIME)?;
    let gen_time = std::str::from_utf8(gen.content)
        .ok()
        .and_then(parse_generalized_time)
        .ok_or(der::DerError("TSTInfo genTime"))?;
    Ok(TstInfo {
        hash_oid,
        imprint: hashed,
        gen_time,
    })
}

/// Verifies one signed timestamp over `signature` and returns its time (Unix seconds).
pub(crate) fn verify_timestamp(
    tsas: &[Authority],
    resp: &[u8],
    signature: &[u8],
) -> Result<(i64, String), VerifyError> {
    let token = token_of(resp).map_err(|e| ts_err(format!("malformed: {}", e.0)))?;
    let info = tst_info(token).map_err(|e| ts_err(format!("malformed: {}", e.0)))?;
    let md = match info.hash_oid.as_slice() {
        OID_SHA256 => MessageDigest::sha256(),
        OID_SHA384 => MessageDigest::sha384(),
        OID_SHA512 => MessageDigest::sha512(),
        _ => return Err(ts_err("unsupported message imprint digest")),
    };
    let expected = hash(md, signature).map_err(|e| ts_err(e.to_string()))?;
    if info.imprint[..] != expected[..] {
        return Err(ts_err(
            "message imprint does not match the bundle signature",
        ));
    }
    if tsas.is_empty() {
        return Err(ts_err("the trusted root has no timestamp authority"));
    }
    let mut last = String::new();
    for tsa in tsas {
        if !tsa.valid.contains(info.gen_time) {
            last = format!(
                "time {} is outside the validity of timestamp authority '{}'",
                info.gen_time, tsa.uri
            );
            continue;
        }
        match cms_verify(tsa, token, info.gen_time) {
            Ok(()) => return Ok((info.gen_time, tsa.uri.clone())),
            Err(e) => {
                let why: Vec<&str> = e
                    .errors()
                    .iter()
                    .filter_map(|x| x.data().or(x.reason()))
                    .collect();
                last = format!(
                    "not signed by timestamp authority '{}': {}",
                    tsa.uri,
                    why.join(": ")
                );
            }
        }
    }
    Err(ts_err(last))
}

fn cms_verify(tsa: &Authority, token: &[u8], time: i64) -> Result<(), openssl::error::ErrorStack> {
    // CMS_verify builds the signer's chain from the certificates inside the token only, so the
    // authority's intermediates go into the store too. They are trust-root material; without
    // X509_V_FLAG_PARTIAL_CHAIN the chain must still end at the self-signed root.
    let mut store = X509StoreBuilder::new()?;
    for c in &tsa.chain {
        store.add_cert(c.clone())?;
    }
    let mut param = X509VerifyParam::new()?;
    param.set_time(time as _);
    param.set_purpose(X509PurposeId::TIMESTAMP_SIGN)?;
    store.set_param(&param)?;
    let store = store.build();
    // The signer is looked up among these and the token's own certificates.
    let mut certs: Stack<X509> = Stack::new()?;
    for c in &tsa.chain {
        certs.push(c.clone())?;
    }
    let mut cms = CmsContentInfo::from_der(token)?;
    cms.verify(Some(&certs), Some(&store), None, None, CMSOptions::BINARY)
}
