//! The library side of `stella-kit build`, `verify` and `inspect`: turning flags into build requests and
//! trust policies, the per-channel sequence state, age keys, and the reports printed.

use crate::build::BaseKit;
use crate::manifest::{ImageRef, Manifest, PayloadKind};
use crate::oci::{Images, Staging};
use crate::read::{KitInput, VerifiedKit};
use crate::signing::{self, ToolError};
use crate::source::{plan_files, Planned};
use crypto_profiles::dsse::TrustPolicy;
use crypto_profiles::{ProfileId, PublicKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Inputs named on the command line.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// `--feeds DIR|FILE`.
    pub feeds: Vec<PathBuf>,
    /// `--image SPEC`.
    pub images: Vec<String>,
    /// `--policy DIR`.
    pub policy: Vec<PathBuf>,
    /// `--trust FILE`.
    pub trust: Vec<PathBuf>,
    /// `--file FILE`.
    pub files: Vec<PathBuf>,
    /// How `--image registry:…` inputs are reached (`--insecure-registry`, `--registry-ca`).
    pub registry: crate::registry::RegistryOptions,
}

/// Plans every payload and image record from the inputs. Images named `registry:…` are pulled now, into
/// the returned [`Staging`] directory: keep it until the kit is written.
pub fn plan(inputs: &Inputs) -> anyhow::Result<(Vec<Planned>, Vec<ImageRef>, Staging)> {
    let mut planned = Vec::new();
    for f in &inputs.feeds {
        planned.extend(plan_files(f, PayloadKind::Feed, "feeds")?);
    }
    for p in &inputs.policy {
        planned.extend(plan_files(p, PayloadKind::Policy, "policy")?);
    }
    for t in &inputs.trust {
        planned.extend(plan_files(t, PayloadKind::Trust, "trust")?);
    }
    for f in &inputs.files {
        planned.extend(plan_files(f, PayloadKind::File, "files")?);
    }
    let mut images = Images::new(inputs.registry.clone());
    for spec in &inputs.images {
        images.add_input(spec)?;
    }
    let (blobs, refs, staging) = images.into_parts();
    planned.extend(blobs.into_values());
    Ok((planned, refs, staging))
}

/// Checks a feed document at build time with the same parsers the appliance ingests with, so a broken
/// feed is refused on the connected side.
pub fn validate_feed(name: &str, bytes: &[u8]) -> Result<(), String> {
    feeds::parse(name, bytes).map(|_| ()).map_err(|e| {
        let msg = e.to_string();
        msg.strip_prefix(&format!("{name}: "))
            .map(str::to_owned)
            .unwrap_or(msg)
    })
}

/// The per-channel record of the last sequence built, so builds continue where they left off.
#[derive(Debug, Clone)]
pub struct SequenceState {
    path: PathBuf,
}

impl SequenceState {
    /// The state file under `dir`, or `$STELLA_KIT_STATE`, or `~/.local/state/stella-kit`.
    pub fn new(dir: Option<&Path>) -> SequenceState {
        let dir = dir.map(Path::to_owned).unwrap_or_else(|| {
            std::env::var_os("STELLA_KIT_STATE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    let home = std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from("."));
                    home.join(".local/state/stella-kit")
                })
        });
        SequenceState {
            path: dir.join("sequences.json"),
        }
    }

    fn load(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(serde_json::from_slice(&b)
                .map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", self.path.display())),
        }
    }

    /// The next sequence on a channel (1 for a new channel).
    pub fn next(&self, channel: &str) -> anyhow::Result<u64> {
        Ok(self.load()?.get(channel).copied().unwrap_or(0) + 1)
    }

    /// Records a built sequence (never lowers the recorded one).
    pub fn record(&self, channel: &str, sequence: u64) -> anyhow::Result<()> {
        let mut m = self.load()?;
        let e = m.entry(channel.to_owned()).or_insert(0);
        *e = (*e).max(sequence);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::files::write_atomic(&self.path, &serde_json::to_vec_pretty(&m)?, 0o644, true)?;
        Ok(())
    }
}

/// Parses age recipients (`age1…`).
pub fn recipients(list: &[String]) -> anyhow::Result<Vec<Box<dyn age::Recipient + Send>>> {
    list.iter()
        .map(|r| {
            age::x25519::Recipient::from_str(r)
                .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
                .map_err(|e| anyhow::anyhow!("age recipient '{r}': {e}"))
        })
        .collect()
}

/// Reads age identity files (`AGE-SECRET-KEY-1…` lines, `#` comments).
pub fn identities(paths: &[PathBuf]) -> anyhow::Result<Vec<Box<dyn age::Identity>>> {
    let mut out: Vec<Box<dyn age::Identity>> = Vec::new();
    for p in paths {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        );
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let id = age::x25519::Identity::from_str(line)
                .map_err(|e| anyhow::anyhow!("{}: not an age identity: {e}", p.display()))?;
            out.push(Box::new(id));
        }
    }
    Ok(out)
}

/// Generates an age identity file (mode 0600) and returns its recipient.
pub fn generate_age_identity(out: &Path, overwrite: bool) -> anyhow::Result<String> {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let text = zeroize::Zeroizing::new(format!(
        "# stella-kit age identity\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    ));
    crate::files::write_atomic(out, text.as_bytes(), 0o600, overwrite)
        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    Ok(recipient)
}

/// A trust policy from public key files: the profile named, or the first key's family.
pub fn trust_policy(
    pubs: &[PathBuf],
    threshold: usize,
    profile: Option<ProfileId>,
) -> anyhow::Result<TrustPolicy> {
    let keys: Vec<PublicKey> = pubs
        .iter()
        .map(|p| signing::load_public_key(p))
        .collect::<Result<_, _>>()?;
    let first = keys
        .first()
        .ok_or_else(|| ToolError::Usage("at least one --trust key is required".into()))?;
    let profile = signing::profile_for(first.algorithm(), profile, None)?;
    Ok(TrustPolicy::new(profile, keys, threshold).map_err(|e| ToolError::Usage(e.to_string()))?)
}

/// Reads a base kit's header for a delta build (signatures are the builder's own and not rechecked).
pub fn read_base(
    paths: Vec<PathBuf>,
    ids: &[Box<dyn age::Identity>],
    profiles: &[crypto_profiles::Profile],
) -> anyhow::Result<BaseKit> {
    let input = KitInput::one(paths)?;
    let (manifest, bytes, _, _) = crate::read::read_header(&input, ids, None)?;
    let mut digests = BTreeMap::new();
    for p in profiles {
        digests.insert(p.digest_alg(), p.digest(&bytes)?.hex());
    }
    Ok(BaseKit { manifest, digests })
}

/// The lines `stella-kit inspect` prints.
pub fn render_manifest(m: &Manifest, signer_ids: &[String]) -> String {
    let mut out = String::new();
    let carried: u64 = m.carried_entries().values().map(|p| p.size).sum();
    let total: u64 = m.payloads.iter().map(|p| p.size).sum();
    out.push_str(&format!("kit:        {}\n", m.id));
    out.push_str(&format!(
        "channel:    {} (sequence {})\n",
        m.channel, m.sequence
    ));
    out.push_str(&format!("created:    {}\n", m.created));
    out.push_str(&format!("expires:    {}\n", m.expires));
    let profiles: Vec<&str> = m.profiles.iter().map(|p| p.name()).collect();
    out.push_str(&format!("profiles:   {}\n", profiles.join(", ")));
    match &m.base {
        Some(b) => out.push_str(&format!(
            "base:       {} (delta; {} of {} payloads carried)\n",
            b.id,
            m.carried_entries().len(),
            m.payloads.len()
        )),
        None => out.push_str("base:       none (full kit)\n"),
    }
    for s in signer_ids {
        out.push_str(&format!("signer:     {s}\n"));
    }
    out.push_str(&format!(
        "payloads:   {} ({} bytes, {} carried)\n",
        m.payloads.len(),
        total,
        carried
    ));
    for p in &m.payloads {
        let kind = serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<10} {:>12}  {}{}\n",
            kind,
            p.size,
            p.name,
            if p.carried { "" } else { "  (in base)" }
        ));
    }
    for i in &m.images {
        out.push_str(&format!(
            "image:      {} {} ({} layers)\n",
            i.name,
            i.manifest,
            i.layers.len()
        ));
    }
    out
}

/// The lines `stella-kit verify` prints on success.
pub fn render_verified(v: &VerifiedKit) -> String {
    let mut out = String::new();
    for n in &v.signatures {
        let id = if n.keyid.is_empty() {
            "(no keyid)".to_owned()
        } else {
            n.keyid.clone()
        };
        out.push_str(&format!("signature {id}: {}\n", n.outcome));
    }
    if let Some(vol) = &v.volumes {
        out.push_str(&format!("volumes: {} verified\n", vol.volumes.len()));
    }
    out.push_str(&format!(
        "Verified OK: kit '{}' channel '{}' sequence {}, {} payloads ({} bytes), expires {}\n",
        v.manifest.id,
        v.manifest.channel,
        v.manifest.sequence,
        v.manifest.payloads.len(),
        v.payload_bytes,
        v.manifest.expires
    ));
    out
}
