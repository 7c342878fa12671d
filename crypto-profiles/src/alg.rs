//! The algorithm tables. Every algorithm states which profiles admit it; a profile's compliance is computed
//! from these tables, never asserted.

use crate::ProfileId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A message digest. Names are the ones used on the command line, in kit manifests and in key files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DigestAlg {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
    /// Streebog-256 (GOST R 34.11-2012, RFC 6986).
    Streebog256,
    /// Streebog-512 (GOST R 34.11-2012, RFC 6986).
    Streebog512,
    /// SM3 (GB/T 32905).
    Sm3,
}

impl DigestAlg {
    /// Every digest the product knows.
    pub const ALL: [DigestAlg; 5] = [
        DigestAlg::Sha256,
        DigestAlg::Sha384,
        DigestAlg::Streebog256,
        DigestAlg::Streebog512,
        DigestAlg::Sm3,
    ];

    /// The stable name (`sha256`, `streebog256`, `sm3`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha256 => "sha256",
            DigestAlg::Sha384 => "sha384",
            DigestAlg::Streebog256 => "streebog256",
            DigestAlg::Streebog512 => "streebog512",
            DigestAlg::Sm3 => "sm3",
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            DigestAlg::Sha256 | DigestAlg::Streebog256 | DigestAlg::Sm3 => 32,
            DigestAlg::Sha384 => 48,
            DigestAlg::Streebog512 => 64,
        }
    }

    /// The profiles that admit this digest.
    pub fn families(self) -> &'static [ProfileId] {
        match self {
            DigestAlg::Sha256 | DigestAlg::Sha384 => &[ProfileId::Fips, ProfileId::Eidas],
            DigestAlg::Streebog256 | DigestAlg::Streebog512 => &[ProfileId::Gost],
            DigestAlg::Sm3 => &[ProfileId::Sm],
        }
    }

    /// OpenSSL's name for the digest (the GOST ones exist only once the engine is loaded).
    pub(crate) fn openssl_name(self) -> &'static str {
        match self {
            DigestAlg::Sha256 => "SHA256",
            DigestAlg::Sha384 => "SHA384",
            DigestAlg::Streebog256 => "md_gost12_256",
            DigestAlg::Streebog512 => "md_gost12_512",
            DigestAlg::Sm3 => "SM3",
        }
    }
}

impl fmt::Display for DigestAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DigestAlg {
    type Err = crate::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let wanted = match lower.as_str() {
            "sha-256" => "sha256",
            "sha-384" => "sha384",
            "streebog-256" | "gost12-256" => "streebog256",
            "streebog-512" | "gost12-512" => "streebog512",
            other => other,
        };
        DigestAlg::ALL
            .into_iter()
            .find(|d| d.name() == wanted)
            .ok_or_else(|| crate::UnknownName::new("digest", s))
    }
}

/// A signature scheme: key type, curve or size, digest and encoding together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SigAlg {
    /// ECDSA over NIST P-256 with SHA-256, ASN.1 DER signatures.
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
    /// ECDSA over NIST P-384 with SHA-384, ASN.1 DER signatures.
    #[serde(rename = "ecdsa-p384-sha384")]
    EcdsaP384Sha384,
    /// Ed25519 (RFC 8032), 64-byte signatures over the raw message.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt; keys of at least 3072 bits.
    #[serde(rename = "rsa-pss-sha256")]
    RsaPssSha256,
    /// ECDSA over brainpoolP256r1 (RFC 5639) with SHA-256, ASN.1 DER signatures.
    #[serde(rename = "ecdsa-brainpoolp256r1-sha256")]
    EcdsaBrainpoolP256r1Sha256,
    /// ECDSA over brainpoolP384r1 (RFC 5639) with SHA-384, ASN.1 DER signatures.
    #[serde(rename = "ecdsa-brainpoolp384r1-sha384")]
    EcdsaBrainpoolP384r1Sha384,
    /// GOST R 34.10-2012 with a 256-bit key and Streebog-256 (64-byte signatures, as OpenSSL writes them).
    #[serde(rename = "gost2012-256")]
    Gost2012_256,
    /// GOST R 34.10-2012 with a 512-bit key and Streebog-512 (128-byte signatures).
    #[serde(rename = "gost2012-512")]
    Gost2012_512,
    /// SM2 with SM3 and the distinguishing ID of the profile (GB/T 32918, GM/T 0009), DER signatures.
    #[serde(rename = "sm2-sm3")]
    Sm2Sm3,
}

/// The smallest RSA modulus any profile accepts.
pub const RSA_MIN_BITS: u32 = 3072;

impl SigAlg {
    /// Every signature scheme the product knows.
    pub const ALL: [SigAlg; 9] = [
        SigAlg::EcdsaP256Sha256,
        SigAlg::EcdsaP384Sha384,
        SigAlg::Ed25519,
        SigAlg::RsaPssSha256,
        SigAlg::EcdsaBrainpoolP256r1Sha256,
        SigAlg::EcdsaBrainpoolP384r1Sha384,
        SigAlg::Gost2012_256,
        SigAlg::Gost2012_512,
        SigAlg::Sm2Sm3,
    ];

    /// The stable name, as in `--algorithm` and key listings.
    pub fn name(self) -> &'static str {
        match self {
            SigAlg::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SigAlg::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SigAlg::Ed25519 => "ed25519",
            SigAlg::RsaPssSha256 => "rsa-pss-sha256",
            SigAlg::EcdsaBrainpoolP256r1Sha256 => "ecdsa-brainpoolp256r1-sha256",
            SigAlg::EcdsaBrainpoolP384r1Sha384 => "ecdsa-brainpoolp384r1-sha384",
            SigAlg::Gost2012_256 => "gost2012-256",
            SigAlg::Gost2012_512 => "gost2012-512",
            SigAlg::Sm2Sm3 => "sm2-sm3",
        }
    }

    /// Short aliases accepted by `--algorithm` (`p256`, `brainpool256`, `gost256`, `sm2`, ...).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            SigAlg::EcdsaP256Sha256 => &["p256", "p-256", "ecdsa-p256", "secp256r1", "prime256v1"],
            SigAlg::EcdsaP384Sha384 => &["p384", "p-384", "ecdsa-p384", "secp384r1"],
            SigAlg::Ed25519 => &[],
            SigAlg::RsaPssSha256 => &["rsa-pss", "rsa"],
            SigAlg::EcdsaBrainpoolP256r1Sha256 => &["brainpool256", "brainpoolp256r1"],
            SigAlg::EcdsaBrainpoolP384r1Sha384 => &["brainpool384", "brainpoolp384r1"],
            SigAlg::Gost2012_256 => &["gost256", "gost2012_256"],
            SigAlg::Gost2012_512 => &["gost512", "gost2012_512"],
            SigAlg::Sm2Sm3 => &["sm2"],
        }
    }

    /// The digest the scheme hashes the message with.
    pub fn digest(self) -> DigestAlg {
        match self {
            SigAlg::EcdsaP256Sha256
            | SigAlg::Ed25519
            | SigAlg::RsaPssSha256
            | SigAlg::EcdsaBrainpoolP256r1Sha256 => DigestAlg::Sha256,
            SigAlg::EcdsaP384Sha384 | SigAlg::EcdsaBrainpoolP384r1Sha384 => DigestAlg::Sha384,
            SigAlg::Gost2012_256 => DigestAlg::Streebog256,
            SigAlg::Gost2012_512 => DigestAlg::Streebog512,
            SigAlg::Sm2Sm3 => DigestAlg::Sm3,
        }
    }

    /// The profiles that admit this scheme.
    pub fn families(self) -> &'static [ProfileId] {
        match self {
            SigAlg::EcdsaP256Sha256 | SigAlg::EcdsaP384Sha384 | SigAlg::RsaPssSha256 => {
                &[ProfileId::Fips, ProfileId::Eidas]
            }
            SigAlg::Ed25519 => &[ProfileId::Fips],
            SigAlg::EcdsaBrainpoolP256r1Sha256 | SigAlg::EcdsaBrainpoolP384r1Sha384 => {
                &[ProfileId::Eidas]
            }
            SigAlg::Gost2012_256 | SigAlg::Gost2012_512 => &[ProfileId::Gost],
            SigAlg::Sm2Sm3 => &[ProfileId::Sm],
        }
    }

    /// The digest a key id of this scheme's keys is computed with: the primary digest of its family, so a
    /// key has one id whichever profile looks at it.
    pub fn key_id_digest(self) -> DigestAlg {
        match self.families().first() {
            Some(ProfileId::Gost) => DigestAlg::Streebog256,
            Some(ProfileId::Sm) => DigestAlg::Sm3,
            _ => DigestAlg::Sha256,
        }
    }
}

impl fmt::Display for SigAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SigAlg {
    type Err = crate::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        SigAlg::ALL
            .into_iter()
            .find(|a| a.name() == lower || a.aliases().contains(&lower.as_str()))
            .ok_or_else(|| crate::UnknownName::new("signature algorithm", s))
    }
}
