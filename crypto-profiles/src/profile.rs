//! The site crypto profile: one explicit value that fixes which digests and signature schemes may be used.

use crate::alg::{DigestAlg, SigAlg};
use crate::error::ProfileError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The four profile families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProfileId {
    /// FIPS 186-5 / 180-4 algorithms.
    Fips,
    /// eIDAS (ETSI TS 119 312) algorithms, signers optionally identified by X.509 certificates.
    Eidas,
    /// Russian national algorithms: GOST R 34.10-2012 and Streebog.
    Gost,
    /// Chinese national algorithms: SM2 and SM3.
    Sm,
}

impl ProfileId {
    /// Every profile family.
    pub const ALL: [ProfileId; 4] = [
        ProfileId::Fips,
        ProfileId::Eidas,
        ProfileId::Gost,
        ProfileId::Sm,
    ];

    /// The stable lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            ProfileId::Fips => "fips",
            ProfileId::Eidas => "eidas",
            ProfileId::Gost => "gost",
            ProfileId::Sm => "sm",
        }
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProfileId {
    type Err = crate::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        ProfileId::ALL
            .into_iter()
            .find(|p| p.name() == lower)
            .ok_or_else(|| crate::UnknownName::new("profile", s))
    }
}

/// The GM/T 0009 default SM2 distinguishing ID.
pub const SM2_DEFAULT_ID: &[u8] = b"1234567812345678";

/// A crypto profile: a plain value of parts, passed explicitly to everything that hashes or signs.
///
/// Compliance is computed from the parts: [`Profile::from_parts`] refuses any part whose algorithm table
/// does not list the profile's family.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    id: ProfileId,
    digest: DigestAlg,
    digests: &'static [DigestAlg],
    signatures: &'static [SigAlg],
    default_signature: SigAlg,
    sm2_id: Arc<[u8]>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("id", &self.id)
            .field("digest", &self.digest)
            .field("default_signature", &self.default_signature)
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// The standard profile of a family, with its default parts (and, for SM, the default distinguishing ID).
    ///
    /// For GOST this loads OpenSSL's GOST engine; a missing engine is an error naming the Debian package.
    pub fn new(id: ProfileId) -> Result<Profile, ProfileError> {
        let (digest, digests, signatures, default_signature): (
            DigestAlg,
            &'static [DigestAlg],
            &'static [SigAlg],
            SigAlg,
        ) = match id {
            ProfileId::Fips => (
                DigestAlg::Sha256,
                &[DigestAlg::Sha256, DigestAlg::Sha384],
                &[
                    SigAlg::EcdsaP256Sha256,
                    SigAlg::EcdsaP384Sha384,
                    SigAlg::Ed25519,
                    SigAlg::RsaPssSha256,
                ],
                SigAlg::EcdsaP256Sha256,
            ),
            ProfileId::Eidas => (
                DigestAlg::Sha256,
                &[DigestAlg::Sha256, DigestAlg::Sha384],
                &[
                    SigAlg::EcdsaBrainpoolP256r1Sha256,
                    SigAlg::EcdsaP256Sha256,
                    SigAlg::EcdsaBrainpoolP384r1Sha384,
                    SigAlg::EcdsaP384Sha384,
                    SigAlg::RsaPssSha256,
                ],
                SigAlg::EcdsaBrainpoolP256r1Sha256,
            ),
            ProfileId::Gost => (
                DigestAlg::Streebog256,
                &[DigestAlg::Streebog256, DigestAlg::Streebog512],
                &[SigAlg::Gost2012_256, SigAlg::Gost2012_512],
                SigAlg::Gost2012_256,
            ),
            ProfileId::Sm => (
                DigestAlg::Sm3,
                &[DigestAlg::Sm3],
                &[SigAlg::Sm2Sm3],
                SigAlg::Sm2Sm3,
            ),
        };
        Profile::from_parts(id, digest, digests, signatures, default_signature)
    }

    /// Builds a profile from explicit parts, refusing any part that is not of the profile's family.
    pub fn from_parts(
        id: ProfileId,
        digest: DigestAlg,
        digests: &'static [DigestAlg],
        signatures: &'static [SigAlg],
        default_signature: SigAlg,
    ) -> Result<Profile, ProfileError> {
        for d in std::iter::once(&digest).chain(digests) {
            if !d.families().contains(&id) {
                return Err(ProfileError::NotCompliant {
                    profile: id,
                    part: d.name().to_owned(),
                });
            }
        }
        for s in std::iter::once(&default_signature).chain(signatures) {
            if !s.families().contains(&id) {
                return Err(ProfileError::NotCompliant {
                    profile: id,
                    part: s.name().to_owned(),
                });
            }
        }
        if !digests.contains(&digest) || !signatures.contains(&default_signature) {
            return Err(ProfileError::NotCompliant {
                profile: id,
                part: "default not among the allowed parts".to_owned(),
            });
        }
        if id == ProfileId::Gost {
            crate::ossl_ffi::load_gost_engine()
                .map_err(|reason| ProfileError::GostEngineMissing { reason })?;
        } else {
            openssl::init();
        }
        Ok(Profile {
            id,
            digest,
            digests,
            signatures,
            default_signature,
            sm2_id: Arc::from(SM2_DEFAULT_ID),
        })
    }

    /// The SM profile with a site-specific distinguishing ID instead of the default.
    pub fn with_sm2_id(mut self, id: &[u8]) -> Result<Profile, ProfileError> {
        if self.id != ProfileId::Sm {
            return Err(ProfileError::NotCompliant {
                profile: self.id,
                part: "sm2 distinguishing id".to_owned(),
            });
        }
        if id.is_empty() || id.len() > 8191 {
            return Err(ProfileError::BadSm2Id { len: id.len() });
        }
        self.sm2_id = Arc::from(id);
        Ok(self)
    }

    /// The profile family.
    pub fn id(&self) -> ProfileId {
        self.id
    }

    /// The primary digest: content addressing, key ids, audit chains.
    pub fn digest_alg(&self) -> DigestAlg {
        self.digest
    }

    /// Every digest the profile admits.
    pub fn digests(&self) -> &'static [DigestAlg] {
        self.digests
    }

    /// Every signature scheme the profile admits.
    pub fn signatures(&self) -> &'static [SigAlg] {
        self.signatures
    }

    /// The scheme used for new keys when none is named.
    pub fn default_signature(&self) -> SigAlg {
        self.default_signature
    }

    /// The SM2 distinguishing ID (only meaningful for the SM profile).
    pub fn sm2_id(&self) -> &[u8] {
        &self.sm2_id
    }

    /// Whether the profile admits a digest.
    pub fn allows_digest(&self, alg: DigestAlg) -> bool {
        self.digests.contains(&alg)
    }

    /// Whether the profile admits a signature scheme.
    pub fn allows_signature(&self, alg: SigAlg) -> bool {
        self.signatures.contains(&alg)
    }

    /// Refuses, with a message naming both, any digest the profile does not admit.
    pub fn check_digest(&self, alg: DigestAlg) -> Result<(), crate::NotAllowed> {
        if self.allows_digest(alg) {
            Ok(())
        } else {
            Err(crate::NotAllowed {
                algorithm: alg.name(),
                profile: self.id,
            })
        }
    }

    /// Refuses, with a message naming both, any signature scheme the profile does not admit.
    pub fn check_signature(&self, alg: SigAlg) -> Result<(), crate::NotAllowed> {
        if self.allows_signature(alg) {
            Ok(())
        } else {
            Err(crate::NotAllowed {
                algorithm: alg.name(),
                profile: self.id,
            })
        }
    }
}
