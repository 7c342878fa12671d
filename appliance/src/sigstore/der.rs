//! A minimal DER reader: just enough to walk certificates (extensions, the TBS for SCT checks) and
//! RFC 3161 tokens. It never panics on input and refuses indefinite lengths and high tag numbers.

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole element, header included.
    pub raw: &'a [u8],
}

/// Malformed DER; `what` names the structure being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError(pub &'static str);

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const UTF8_STRING: u8 = 0x0c;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;

/// Sequential reader over the contents of a constructed element.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, what }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let err = DerError(self.what);
        let d = self.data;
        let tag = *d.first().ok_or(err)?;
        if tag & 0x1f == 0x1f {
            return Err(err);
        }
        let first = *d.get(1).ok_or(err)?;
        let (len, hdr) = if first < 0x80 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return Err(err);
            }
            let bytes = d.get(2..2 + n).ok_or(err)?;
            let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + n)
        };
        let end = hdr.checked_add(len).ok_or(err)?;
        let raw = d.get(..end).ok_or(err)?;
        self.data = &d[end..];
        Ok(Tlv {
            tag,
            content: &raw[hdr..],
            raw,
        })
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        let t = self.read()?;
        if t.tag != tag {
            return Err(DerError(self.what));
        }
        Ok(t)
    }

    /// Reads a constructed element with `tag` and returns a reader over its contents.
    pub fn enter(&mut self, tag: u8) -> Result<Reader<'a>, DerError> {
        let what = self.what;
        Ok(Reader::new(self.expect(tag)?.content, what))
    }
}

/// Parses one complete element (nothing may follow it).
pub(crate) fn parse_one<'a>(data: &'a [u8], what: &'static str) -> Result<Tlv<'a>, DerError> {
    let mut r = Reader::new(data, what);
    let t = r.read()?;
    if !r.is_empty() {
        return Err(DerError(what));
    }
    Ok(t)
}

/// Encodes one element.
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The certificate's extensions as (OID content, value) pairs.
pub(crate) struct CertExtensions<'a> {
    pub extensions: Vec<(&'a [u8], &'a [u8])>,
}

const EXTENSIONS_TAG: u8 = 0xa3;

pub(crate) fn cert_extensions(cert_der: &[u8]) -> Result<CertExtensions<'_>, DerError> {
    let what = "certificate";
    let cert = parse_one(cert_der, what)?;
    let mut c = Reader::new(cert.content, what);
    let tbs = c.expect(SEQUENCE)?;
    let mut t = Reader::new(tbs.content, what);
    let mut extensions = Vec::new();
    while !t.is_empty() {
        let f = t.read()?;
        if f.tag == EXTENSIONS_TAG {
            let mut seq = Reader::new(f.content, what).enter(SEQUENCE)?;
            while !seq.is_empty() {
                let mut ext = seq.enter(SEQUENCE)?;
                let oid = ext.expect(OID)?;
                if ext.peek_tag() == Some(0x01) {
                    ext.read()?;
                }
                let value = ext.expect(OCTET_STRING)?;
                extensions.push((oid.content, value.content));
            }
        }
    }
    Ok(CertExtensions { extensions })
}

/// The TBSCertificate re-encoded without the extension `drop_oid` (RFC 6962 §3.2: the precertificate
/// TBS an SCT signs is the final certificate's TBS minus the SCT list).
pub(crate) fn tbs_without_extension(cert_der: &[u8], drop_oid: &[u8]) -> Result<Vec<u8>, DerError> {
    let what = "certificate";
    let cert = parse_one(cert_der, what)?;
    let mut c = Reader::new(cert.content, what);
    let tbs = c.expect(SEQUENCE)?;
    let mut t = Reader::new(tbs.content, what);
    let mut body = Vec::new();
    while !t.is_empty() {
        let f = t.read()?;
        if f.tag != EXTENSIONS_TAG {
            body.extend_from_slice(f.raw);
            continue;
        }
        let mut seq = Reader::new(f.content, what).enter(SEQUENCE)?;
        let mut kept = Vec::new();
        while !seq.is_empty() {
            let ext = seq.expect(SEQUENCE)?;
            let oid = Reader::new(ext.content, what).expect(OID)?;
            if oid.content != drop_oid {
                kept.extend_from_slice(ext.raw);
            }
        }
        body.extend_from_slice(&encode(EXTENSIONS_TAG, &encode(SEQUENCE, &kept)));
    }
    Ok(encode(SEQUENCE, &body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let enc = encode(OCTET_STRING, &content);
            let t = parse_one(&enc, "test").unwrap_or_else(|_| panic!("len {len}"));
            assert_eq!(t.content.len(), len);
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(parse_one(&[0x30, 0x05, 0x01], "t").is_err());
        assert!(parse_one(&[0x30, 0x80], "t").is_err());
        assert!(parse_one(&[], "t").is_err());
    }
}
