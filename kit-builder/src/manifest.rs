//! The kit manifest (`kit.json`): what a kit is and every payload it carries, with digests under each
//! signing profile. Written with a fixed field order so the same inputs give the same bytes.

use crate::clock::Timestamp;
use crypto_profiles::{DigestAlg, ProfileId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The manifest format this code writes and reads.
pub const FORMAT: &str = "stella-kit/1";
/// The DSSE payload type of the manifest envelope.
pub const PAYLOAD_TYPE: &str = "application/vnd.stella.kit.manifest+json";
/// The first tar entry.
pub const MANIFEST_PATH: &str = "kit.json";
/// The second tar entry.
pub const ENVELOPE_PATH: &str = "kit.dsse.json";

/// Digests of one byte string, keyed by algorithm name (`sha256`, `streebog256`, `sm3`).
pub type Digests = BTreeMap<DigestAlg, String>;

/// What kind of thing a payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PayloadKind {
    /// An advisory or VEX feed document (validated at build time).
    Feed,
    /// An OCI blob or manifest of an image.
    OciBlob,
    /// A file of a policy pack.
    Policy,
    /// Trust material: kit-signer keys, Sigstore `trusted_root.json`, eIDAS trust-list certificates.
    Trust,
    /// An opaque file (appliance updates and the like).
    File,
}

/// One payload of the kit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Logical name, unique within the kit (`feeds/osv/GHSA-x.json`, `policy/default/rules.yaml`).
    pub name: String,
    /// Kind.
    pub kind: PayloadKind,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Digests under every signing profile's primary digest.
    pub digests: Digests,
    /// The tar entry that carries it: `blobs/<addressing alg>/<hex>`.
    pub path: String,
    /// False in a delta kit when the base kit carries the bytes.
    pub carried: bool,
}

/// The base of a delta kit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseRef {
    /// The base kit's id.
    pub id: String,
    /// Digests of the base kit's `kit.json`.
    pub digests: Digests,
}

/// An OCI image carried by the kit: its manifest and the blobs it references, by OCI digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    /// A name for people (`alpine:3.10`, or the source file name).
    pub name: String,
    /// Where it came from (`oci-layout:…`, `docker-archive:…`), for the record.
    pub source: String,
    /// The image manifest's OCI digest (`sha256:…`).
    pub manifest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// The config blob's OCI digest.
    pub config: String,
    /// Layer blobs' OCI digests, in order.
    pub layers: Vec<String>,
}

/// The manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Kit id.
    pub id: String,
    /// Channel (`stable`, `feeds-daily`, ...).
    pub channel: String,
    /// Monotonic per channel; a site refuses anything not above its high-water mark.
    pub sequence: u64,
    /// When it was built.
    pub created: String,
    /// After this, sites refuse it.
    pub expires: String,
    /// Profiles it is signed under; payload digests exist for each one's primary digest.
    pub profiles: Vec<ProfileId>,
    /// The digest that names blob entries.
    pub addressing: DigestAlg,
    /// The base kit of a delta.
    pub base: Option<BaseRef>,
    /// Every payload, sorted by name.
    pub payloads: Vec<Payload>,
    /// Images, sorted by name.
    pub images: Vec<ImageRef>,
}

/// A manifest that makes no sense on its own terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kit.json: {0}")]
pub struct ManifestError(pub String);

/// The primary digest of each profile, deduplicated (FIPS and eIDAS share SHA-256).
pub fn digest_algs(profiles: &[ProfileId]) -> Vec<DigestAlg> {
    let mut algs: Vec<DigestAlg> = profiles.iter().map(|p| primary_digest(*p)).collect();
    algs.sort();
    algs.dedup();
    algs
}

/// The primary digest of a profile family.
pub fn primary_digest(p: ProfileId) -> DigestAlg {
    match p {
        ProfileId::Gost => DigestAlg::Streebog256,
        ProfileId::Sm => DigestAlg::Sm3,
        _ => DigestAlg::Sha256,
    }
}

/// Whether a kit or channel id is acceptable: 1–128 of `[A-Za-z0-9._-]`, not starting with a dot.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Manifest {
    /// Canonical bytes: pretty JSON with the struct's fixed field order and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses and checks internal consistency (ids, times, paths, digests per profile, no duplicates).
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| ManifestError(format!("not a valid manifest: {e}")))?;
        m.check()?;
        Ok(m)
    }

    /// Expiry as a timestamp.
    pub fn expires_at(&self) -> Result<Timestamp, ManifestError> {
        self.expires
            .parse()
            .map_err(|e| ManifestError(format!("expires: {e}")))
    }

    /// Creation as a timestamp.
    pub fn created_at(&self) -> Result<Timestamp, ManifestError> {
        self.created
            .parse()
            .map_err(|e| ManifestError(format!("created: {e}")))
    }

    /// The digest algorithms every payload must carry.
    pub fn digest_algs(&self) -> Vec<DigestAlg> {
        digest_algs(&self.profiles)
    }

    fn check(&self) -> Result<(), ManifestError> {
        let err = |s: String| Err(ManifestError(s));
        if self.format != FORMAT {
            return err(format!(
                "format '{}' is not supported (expected '{FORMAT}')",
                self.format
            ));
        }
        if !valid_id(&self.id) {
            return err(format!("kit id '{}' is not valid", self.id));
        }
        if !valid_id(&self.channel) {
            return err(format!("channel '{}' is not valid", self.channel));
        }
        let created = self.created_at()?;
        let expires = self.expires_at()?;
        if expires <= created {
            return err(format!(
                "expires {} is not after created {}",
                self.expires, self.created
            ));
        }
        if self.profiles.is_empty() {
            return err("no signing profile".into());
        }
        let algs = self.digest_algs();
        if !algs.contains(&self.addressing) {
            return err(format!(
                "addressing digest '{}' is not one of the profiles' digests",
                self.addressing
            ));
        }
        if let Some(b) = &self.base {
            if !valid_id(&b.id) || b.digests.keys().copied().collect::<Vec<_>>() != algs {
                return err(format!(
                    "base '{}' must name a valid id and a digest per profile",
                    b.id
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        let mut by_path: BTreeMap<&str, &Payload> = BTreeMap::new();
        for p in &self.payloads {
            if !names.insert(p.name.as_str()) {
                return err(format!("payload name '{}' appears twice", p.name));
            }
            if p.name.is_empty() || p.name.len() > 1024 {
                return err(format!("payload name '{}' is empty or too long", p.name));
            }
            if p.digests.keys().copied().collect::<Vec<_>>() != algs {
                return err(format!(
                    "payload '{}' must carry exactly the digests {:?}",
                    p.name,
                    names_of(&algs)
                ));
            }
            for (alg, hex) in &p.digests {
                if hex.len() != alg.output_len() * 2
                    || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return err(format!(
                        "payload '{}': {alg} digest is not lowercase hex of the right length",
                        p.name
                    ));
                }
            }
            let expected_path = blob_path(self.addressing, &p.digests[&self.addressing]);
            if p.path != expected_path {
                return err(format!(
                    "payload '{}': path '{}' should be '{expected_path}'",
                    p.name, p.path
                ));
            }
            if !p.carried && self.base.is_none() {
                return err(format!(
                    "payload '{}' is not carried but the kit has no base",
                    p.name
                ));
            }
            if let Some(prev) = by_path.insert(&p.path, p) {
                if prev.digests != p.digests || prev.size != p.size || prev.carried != p.carried {
                    return err(format!(
                        "payloads '{}' and '{}' share a path but disagree",
                        prev.name, p.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The distinct tar entries the kit must carry, by path, with size and digests.
    pub fn carried_entries(&self) -> BTreeMap<&str, &Payload> {
        self.payloads
            .iter()
            .filter(|p| p.carried)
            .map(|p| (p.path.as_str(), p))
            .collect()
    }
}

fn names_of(algs: &[DigestAlg]) -> Vec<&'static str> {
    algs.iter().map(|a| a.name()).collect()
}

/// The tar path of a blob.
pub fn blob_path(alg: DigestAlg, hex: &str) -> String {
    format!("blobs/{}/{hex}", alg.name())
}
