//! Streaming digests under a profile.

use crate::alg::DigestAlg;
use crate::error::{BackendError, DigestError, NotAllowed};
use crate::Profile;
use openssl::hash::MessageDigest;
use std::fmt;
use std::io::{self, Read};

/// A finished digest: algorithm and bytes. Displays as `alg:hex`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    alg: DigestAlg,
    bytes: Vec<u8>,
}

impl Digest {
    /// Wraps existing digest bytes, checking the length for the algorithm.
    pub fn from_bytes(alg: DigestAlg, bytes: Vec<u8>) -> Option<Digest> {
        (bytes.len() == alg.output_len()).then_some(Digest { alg, bytes })
    }

    /// Parses lowercase or uppercase hex for an algorithm.
    pub fn from_hex(alg: DigestAlg, hex_str: &str) -> Option<Digest> {
        let bytes = hex::decode(hex_str).ok()?;
        Digest::from_bytes(alg, bytes)
    }

    /// Parses the `alg:hex` form.
    pub fn parse(s: &str) -> Option<Digest> {
        let (alg, hex_str) = s.split_once(':')?;
        Digest::from_hex(alg.parse().ok()?, hex_str)
    }

    /// The algorithm.
    pub fn alg(&self) -> DigestAlg {
        self.alg
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lowercase hex, as `sha256sum` prints it.
    pub fn hex(&self) -> String {
        hex::encode(&self.bytes)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg, self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub(crate) fn message_digest(alg: DigestAlg) -> Result<MessageDigest, BackendError> {
    match alg {
        DigestAlg::Sha256 => Ok(MessageDigest::sha256()),
        DigestAlg::Sha384 => Ok(MessageDigest::sha384()),
        DigestAlg::Sm3 => Ok(MessageDigest::sm3()),
        DigestAlg::Streebog256 | DigestAlg::Streebog512 => {
            MessageDigest::from_name(alg.openssl_name()).ok_or_else(|| {
                BackendError(format!(
                    "digest '{alg}' unavailable: the gost engine is not loaded"
                ))
            })
        }
    }
}

/// An incremental hasher. Also an [`io::Write`], so `io::copy` streams into it.
pub struct Hasher {
    alg: DigestAlg,
    inner: openssl::hash::Hasher,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    fn new(alg: DigestAlg) -> Result<Hasher, BackendError> {
        Ok(Hasher {
            alg,
            inner: openssl::hash::Hasher::new(message_digest(alg)?)?,
        })
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) -> Result<(), BackendError> {
        Ok(self.inner.update(data)?)
    }

    /// Finishes the digest.
    pub fn finish(mut self) -> Result<Digest, BackendError> {
        let bytes = self.inner.finish()?.to_vec();
        Ok(Digest {
            alg: self.alg,
            bytes,
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> DigestAlg {
        self.alg
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Profile {
    /// A hasher for the profile's primary digest.
    pub fn hasher(&self) -> Result<Hasher, BackendError> {
        Hasher::new(self.digest_alg())
    }

    /// A hasher for another digest the profile admits; strict mode refuses any other.
    pub fn hasher_for(&self, alg: DigestAlg) -> Result<Hasher, DigestError> {
        self.check_digest(alg)?;
        Ok(Hasher::new(alg)?)
    }

    /// The primary digest of a byte string.
    pub fn digest(&self, data: &[u8]) -> Result<Digest, BackendError> {
        let mut h = self.hasher()?;
        h.update(data)?;
        h.finish()
    }

    /// The primary digest of a reader, streamed in 256 KiB chunks.
    pub fn digest_reader(&self, mut r: impl Read) -> io::Result<Digest> {
        let mut h = self.hasher().map_err(io::Error::other)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]).map_err(io::Error::other)?;
        }
        h.finish().map_err(io::Error::other)
    }

    /// Checks `data` against an expected digest under strict mode: the expected digest's algorithm must be
    /// admitted by the profile.
    pub fn check_digest_of(&self, data: &[u8], expected: &Digest) -> Result<bool, NotAllowed> {
        self.check_digest(expected.alg())?;
        Ok(digest_with(expected.alg(), data).is_ok_and(|d| &d == expected))
    }
}

/// A digest of any known algorithm, without a profile check. Only for key ids, which are defined per key
/// family, and for known-answer tests.
pub fn digest_with(alg: DigestAlg, data: &[u8]) -> Result<Digest, BackendError> {
    if matches!(alg, DigestAlg::Streebog256 | DigestAlg::Streebog512) {
        crate::ossl_ffi::load_gost_engine().map_err(BackendError)?;
    }
    let mut h = Hasher::new(alg)?;
    h.update(data)?;
    h.finish()
}
