//! The site: its data directory, typed config (`site.toml`), the appliance's own signing key, and the trusted
//! kit-signer set kept in the store.

use crate::audit::AuditWriter;
use crate::store::{Batch, MetaStore, Store, StoreError, Tree};
use crypto_profiles::dsse::TrustPolicy;
use crypto_profiles::{PrivateKey, Profile, ProfileId, PublicKey};
use kit_builder::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The data directory used when neither `--data` nor `STELLA_DATA` is given.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/stella";

/// Resolves the data directory: the flag, else `STELLA_DATA`, else [`DEFAULT_DATA_DIR`].
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_owned)
        .or_else(|| std::env::var_os("STELLA_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

fn default_staleness() -> u64 {
    90
}
fn default_skew() -> u64 {
    300
}
fn default_ratio() -> u64 {
    kit_builder::read::Limits::default().max_ratio
}
fn default_max_gib() -> u64 {
    256
}

/// `site.toml`. Every key is documented in docs/operator-guide.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's crypto profile.
    pub profile: ProfileId,
    /// SM2 distinguishing ID (profile `sm` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm2_id: Option<String>,
    /// Kits created longer ago than this many days are refused as stale.
    #[serde(default = "default_staleness")]
    pub staleness_days: u64,
    /// Tolerated clock difference, in seconds, before a kit counts as created in the future.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    /// Largest decompression ratio accepted in a kit.
    #[serde(default = "default_ratio")]
    pub max_kit_ratio: u64,
    /// Largest total payload size of a kit, in GiB.
    #[serde(default = "default_max_gib")]
    pub max_kit_gib: u64,
    /// age identity file (relative to the data directory) for encrypted kits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_identity: Option<String>,
}

pub use kit_builder::signers::SignerSet;

/// Setting up or opening a site failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SiteError {
    /// No site at the data directory.
    #[error("no site at {0}: run `stella init --data {0} --profile P --kit-signer PUB` first")]
    NotInitialised(String),
    /// A site already exists.
    #[error("a site already exists at {0}")]
    Exists(String),
    /// The config file is wrong.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A key is wrong.
    #[error("{path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Filesystem.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// An open site.
#[derive(Debug)]
pub struct Site {
    /// Data directory.
    pub root: PathBuf,
    /// Config.
    pub config: SiteConfig,
    /// The profile built from the config.
    pub profile: Profile,
    /// The store.
    pub store: Store,
    key: PrivateKey,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SiteError + '_ {
    move |source| SiteError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What `stella init` needs.
#[derive(Debug)]
pub struct InitRequest {
    /// Data directory.
    pub root: PathBuf,
    /// Profile.
    pub profile: ProfileId,
    /// Kit-signer public keys (PEM text, with the file they came from).
    pub kit_signers: Vec<(PathBuf, String)>,
    /// Threshold.
    pub threshold: usize,
    /// age identity file to copy in.
    pub age_identity: Option<PathBuf>,
    /// SM2 distinguishing ID.
    pub sm2_id: Option<String>,
    /// Now.
    pub now: Timestamp,
}

fn profile_of(config: &SiteConfig) -> Result<Profile, SiteError> {
    let p = Profile::new(config.profile).map_err(|e| SiteError::Config {
        path: "site.toml".into(),
        reason: e.to_string(),
    })?;
    match &config.sm2_id {
        Some(id) => p.with_sm2_id(id.as_bytes()).map_err(|e| SiteError::Config {
            path: "site.toml".into(),
            reason: e.to_string(),
        }),
        None => Ok(p),
    }
}

impl Site {
    /// Creates a site. Refuses if one exists.
    pub fn init(req: InitRequest) -> Result<Site, SiteError> {
        let cfg_path = req.root.join("site.toml");
        if cfg_path.exists() {
            return Err(SiteError::Exists(req.root.display().to_string()));
        }
        let config = SiteConfig {
            profile: req.profile,
            sm2_id: req.sm2_id.clone(),
            staleness_days: default_staleness(),
            clock_skew_seconds: default_skew(),
            max_kit_ratio: default_ratio(),
            max_kit_gib: default_max_gib(),
            age_identity: req
                .age_identity
                .as_ref()
                .map(|_| "keys/site.age".to_owned()),
        };
        let profile = profile_of(&config)?;
        let mut keys = Vec::new();
        for (path, pem) in &req.kit_signers {
            let k = PublicKey::from_pem(pem.as_bytes()).map_err(|e| SiteError::Key {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            if !profile.allows_signature(k.algorithm()) {
                return Err(SiteError::Key {
                    path: path.display().to_string(),
                    reason: format!(
                        "algorithm '{}' is not allowed under profile '{}'",
                        k.algorithm(),
                        profile.id()
                    ),
                });
            }
            keys.push(k);
        }
        let set = SignerSet {
            version: 1,
            threshold: req.threshold,
            keys: keys.iter().map(|k| k.to_pem()).collect(),
        };
        TrustPolicy::new(profile.clone(), keys.clone(), req.threshold).map_err(|e| {
            SiteError::Config {
                path: "--threshold".into(),
                reason: e.to_string(),
            }
        })?;

        std::fs::create_dir_all(req.root.join("keys")).map_err(io(&req.root))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&req.root, std::fs::Permissions::from_mode(0o700))
                .map_err(io(&req.root))?;
        }
        let key = PrivateKey::generate(&profile, None).map_err(|e| SiteError::Key {
            path: "appliance key".into(),
            reason: e.to_string(),
        })?;
        let pem = key.to_pkcs8_pem(None).map_err(|e| SiteError::Key {
            path: "appliance key".into(),
            reason: e.to_string(),
        })?;
        let key_path = req.root.join("keys/appliance.key.pem");
        kit_builder::files::write_atomic(&key_path, pem.as_bytes(), 0o600, false)
            .map_err(io(&key_path))?;
        let pub_path = req.root.join("keys/appliance.pub.pem");
        kit_builder::files::write_atomic(
            &pub_path,
            key.public_key().to_pem().as_bytes(),
            0o644,
            false,
        )
        .map_err(io(&pub_path))?;
        if let Some(id) = &req.age_identity {
            let text = zeroize::Zeroizing::new(std::fs::read(id).map_err(io(id))?);
            kit_builder::cli::identities(std::slice::from_ref(id)).map_err(|e| SiteError::Key {
                path: id.display().to_string(),
                reason: e.to_string(),
            })?;
            let dest = req.root.join("keys/site.age");
            kit_builder::files::write_atomic(&dest, &text, 0o600, false).map_err(io(&dest))?;
        }
        let store = Store::open(&req.root)?;
        let mut batch = Batch::default();
        batch.put_json(Tree::Trust, "current", &set);
        batch.put_json(Tree::Trust, format!("v/{:010}", set.version), &set);
        batch.put_json(Tree::Meta, "clock_hwm", &req.now.0);
        let mut audit = AuditWriter::new(&store, &profile)?;
        audit.append(
            &mut batch,
            &req.now.to_string(),
            "site-init",
            "cli",
            serde_json::json!({
                "profile": profile.id(),
                "appliance_key": key.key_id(),
                "kit_signers": keys.iter().map(|k| k.key_id().to_string()).collect::<Vec<_>>(),
                "threshold": req.threshold,
            }),
        );
        store.apply(batch)?;
        // The config is written last: a site without site.toml is not a site, so a crash above leaves
        // nothing that `open` would accept.
        let toml = toml::to_string(&config).map_err(|e| SiteError::Config {
            path: cfg_path.display().to_string(),
            reason: e.to_string(),
        })?;
        kit_builder::files::write_atomic(&cfg_path, toml.as_bytes(), 0o600, false)
            .map_err(io(&cfg_path))?;
        Ok(Site {
            root: req.root,
            config,
            profile,
            store,
            key,
        })
    }

    /// Opens an existing site.
    pub fn open(root: &Path) -> Result<Site, SiteError> {
        let cfg_path = root.join("site.toml");
        let text = match std::fs::read_to_string(&cfg_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SiteError::NotInitialised(root.display().to_string()))
            }
            Err(e) => {
                return Err(SiteError::Io {
                    path: cfg_path.display().to_string(),
                    source: e,
                })
            }
        };
        let config: SiteConfig = toml::from_str(&text).map_err(|e| SiteError::Config {
            path: cfg_path.display().to_string(),
            reason: e.to_string(),
        })?;
        let profile = profile_of(&config)?;
        let key_path = root.join("keys/appliance.key.pem");
        let pem = zeroize::Zeroizing::new(std::fs::read(&key_path).map_err(io(&key_path))?);
        let key = PrivateKey::from_pem(&pem, None).map_err(|e| SiteError::Key {
            path: key_path.display().to_string(),
            reason: e.to_string(),
        })?;
        let store = Store::open(root)?;
        Ok(Site {
            root: root.to_owned(),
            config,
            profile,
            store,
            key,
        })
    }

    /// Replaces the config (validated by building its profile) and writes `site.toml` atomically. The
    /// profile itself cannot change on a live site: its keys, digests and audit chain depend on it.
    pub fn update_config(&mut self, config: SiteConfig) -> Result<(), SiteError> {
        if config.profile != self.config.profile || config.sm2_id != self.config.sm2_id {
            return Err(SiteError::Config {
                path: "site.toml".into(),
                reason: "the crypto profile of an initialised site cannot be changed".into(),
            });
        }
        let cfg_path = self.root.join("site.toml");
        let toml = toml::to_string(&config).map_err(|e| SiteError::Config {
            path: cfg_path.display().to_string(),
            reason: e.to_string(),
        })?;
        kit_builder::files::write_atomic(&cfg_path, toml.as_bytes(), 0o600, true)
            .map_err(io(&cfg_path))?;
        self.config = config;
        Ok(())
    }

    /// The current kit-signer set.
    pub fn signer_set(&self) -> Result<SignerSet, SiteError> {
        self.store
            .get_json::<SignerSet>(Tree::Trust, b"current")?
            .ok_or_else(|| SiteError::Config {
                path: "store".into(),
                reason: "no kit-signer set".into(),
            })
    }

    /// The trust policy for kits: the current signer set under the site profile.
    pub fn kit_policy(&self) -> Result<TrustPolicy, SiteError> {
        let set = self.signer_set()?;
        let keys = set.public_keys().map_err(|e| SiteError::Key {
            path: "store: kit-signer set".into(),
            reason: e.to_string(),
        })?;
        TrustPolicy::new(self.profile.clone(), keys, set.threshold).map_err(|e| SiteError::Config {
            path: "store: kit-signer set".into(),
            reason: e.to_string(),
        })
    }

    /// The appliance's signing key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// A signer over the appliance key.
    pub fn signer(&self) -> Result<crypto_profiles::ProfileSigner, SiteError> {
        let pem = self.key.to_pkcs8_pem(None).map_err(|e| SiteError::Key {
            path: "appliance key".into(),
            reason: e.to_string(),
        })?;
        let k = PrivateKey::from_pem(pem.as_bytes(), None).map_err(|e| SiteError::Key {
            path: "appliance key".into(),
            reason: e.to_string(),
        })?;
        self.profile.signer(k).map_err(|e| SiteError::Key {
            path: "appliance key".into(),
            reason: e.to_string(),
        })
    }

    /// The age identities for encrypted kits.
    pub fn identities(&self) -> Result<Vec<Box<dyn age::Identity>>, SiteError> {
        match &self.config.age_identity {
            Some(rel) => {
                let p = self.root.join(rel);
                kit_builder::cli::identities(std::slice::from_ref(&p)).map_err(|e| SiteError::Key {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })
            }
            None => Ok(Vec::new()),
        }
    }

    /// The highest time the appliance has seen.
    pub fn clock_hwm(&self) -> Result<Timestamp, SiteError> {
        Ok(Timestamp(
            self.store
                .get_json::<i64>(Tree::Meta, b"clock_hwm")?
                .unwrap_or(0),
        ))
    }
}
