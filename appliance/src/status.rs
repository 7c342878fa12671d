//! `stella status`, `stella kits` and `stella fsck`: what the site knows, and whether the store is whole.

use crate::import::KitRecord;
use crate::site::Site;
use crate::store::{MetaStore, StoreError, Tree};
use kit_builder::clock::Timestamp;
use serde::Serialize;

/// One channel's state.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStatus {
    /// Channel.
    pub channel: String,
    /// High-water mark.
    pub sequence: u64,
    /// Newest kit imported on it.
    pub latest_kit: Option<String>,
    /// When that kit was created.
    pub created: Option<String>,
    /// Its age in days at `now`.
    pub age_days: Option<f64>,
    /// Whether it is older than the staleness budget.
    pub stale: bool,
}

/// The site's status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Data directory.
    pub data: String,
    /// Profile.
    pub profile: String,
    /// Appliance key id.
    pub appliance_key: String,
    /// Kit-signer set version.
    pub signer_set_version: u64,
    /// Threshold.
    pub threshold: usize,
    /// Kit-signer key ids.
    pub kit_signers: Vec<String>,
    /// Channels.
    pub channels: Vec<ChannelStatus>,
    /// Kits imported.
    pub kits: usize,
    /// Kits quarantined.
    pub quarantined: usize,
    /// Feed documents stored.
    pub feed_documents: usize,
    /// Images stored.
    pub images: usize,
    /// Staleness budget.
    pub staleness_days: u64,
    /// Latest time the appliance has seen.
    pub clock_high_water: String,
}

/// Every imported kit, by import order of receipts.
pub fn kits(site: &Site) -> Result<Vec<KitRecord>, StoreError> {
    let mut out: Vec<KitRecord> = Vec::new();
    for (k, v) in site.store.scan(Tree::Kits, b"")? {
        if k.starts_with(b"manifest/") {
            continue;
        }
        out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
            tree: "kits",
            reason: e.to_string(),
        })?);
    }
    out.sort_by_key(|k| k.receipt);
    Ok(out)
}

/// Quarantine records, oldest first.
pub fn quarantine(site: &Site) -> Result<Vec<serde_json::Value>, StoreError> {
    site.store
        .scan(Tree::Quarantine, b"")?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "quarantine",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The status at `now`.
pub fn status(site: &Site, now: Timestamp) -> Result<Status, crate::site::SiteError> {
    let set = site.signer_set()?;
    let keys = set.public_keys().map_err(|e| crate::site::SiteError::Key {
        path: "store".into(),
        reason: e.to_string(),
    })?;
    let all = kits(site)?;
    let mut channels = Vec::new();
    for (k, v) in site.store.scan(Tree::Channels, b"")? {
        let channel = String::from_utf8_lossy(&k).into_owned();
        let sequence: u64 = serde_json::from_slice(&v).unwrap_or(0);
        let latest = all
            .iter()
            .filter(|r| r.channel == channel)
            .max_by_key(|r| r.sequence);
        let created = latest.map(|r| r.created.clone());
        let age_days = created
            .as_deref()
            .and_then(|c| c.parse::<Timestamp>().ok())
            .map(|t| (now.0 - t.0) as f64 / 86_400.0);
        channels.push(ChannelStatus {
            channel,
            sequence,
            latest_kit: latest.map(|r| r.id.clone()),
            created,
            age_days,
            stale: age_days.is_some_and(|d| d > site.config.staleness_days as f64),
        });
    }
    Ok(Status {
        data: site.root.display().to_string(),
        profile: site.profile.id().to_string(),
        appliance_key: site.key().key_id().to_string(),
        signer_set_version: set.version,
        threshold: set.threshold,
        kit_signers: keys
            .iter()
            .map(|k| format!("{} ({})", k.key_id(), k.algorithm()))
            .collect(),
        channels,
        kits: all.len(),
        quarantined: site.store.scan(Tree::Quarantine, b"")?.len(),
        feed_documents: site.store.scan(Tree::Feeds, b"")?.len(),
        // Image records are keyed by manifest digest; `blob|…` keys are the OCI-name index.
        images: site.store.scan(Tree::Images, b"sha256:")?.len(),
        staleness_days: site.config.staleness_days,
        clock_high_water: site.clock_hwm()?.to_string(),
    })
}

/// Plain-text status.
pub fn render_status(s: &Status) -> String {
    let mut out = format!(
        "data:       {}\nprofile:    {}\nappliance:  key {}\nsigners:    set v{}, threshold {} of {}\n",
        s.data,
        s.profile,
        s.appliance_key,
        s.signer_set_version,
        s.threshold,
        s.kit_signers.len()
    );
    for k in &s.kit_signers {
        out.push_str(&format!("  {k}\n"));
    }
    out.push_str(&format!(
        "kits:       {} imported, {} quarantined\n",
        s.kits, s.quarantined
    ));
    out.push_str(&format!(
        "knowledge:  {} feed documents, {} images\n",
        s.feed_documents, s.images
    ));
    if s.channels.is_empty() {
        out.push_str("channels:   none yet: import a kit\n");
    }
    for c in &s.channels {
        out.push_str(&format!(
            "channel {}: sequence {}, latest {} created {}{}\n",
            c.channel,
            c.sequence,
            c.latest_kit.as_deref().unwrap_or("-"),
            c.created.as_deref().unwrap_or("-"),
            match (c.age_days, c.stale) {
                (Some(d), true) => format!(
                    " ({d:.1} days old: STALE, budget {} days)",
                    s.staleness_days
                ),
                (Some(d), false) => format!(" ({d:.1} days old)"),
                _ => String::new(),
            }
        ));
    }
    out.push_str(&format!("clock:      latest seen {}\n", s.clock_high_water));
    out
}

/// Re-hashes every blob and checks every reference; returns the problems found.
pub fn fsck(site: &Site) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let alg = site.profile.digest_alg();
    let listed = site.store.cas().list()?;
    let refs = site.store.scan(Tree::Blobs, b"")?;
    let referenced: std::collections::BTreeSet<String> = refs
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    for (a, hex) in &listed {
        let key = format!("{a}/{hex}");
        if a != alg.name() {
            problems.push(format!(
                "blob {key}: digest algorithm is not the site profile's ({alg})"
            ));
            continue;
        }
        let path = site.store.cas().path(a, hex);
        match std::fs::File::open(&path)
            .and_then(|f| site.profile.digest_reader(std::io::BufReader::new(f)))
        {
            Ok(d) if d.hex() == *hex => {}
            Ok(d) => problems.push(format!(
                "blob {key}: content hashes to {} (corrupt)",
                d.hex()
            )),
            Err(e) => problems.push(format!("blob {key}: {e}")),
        }
        if !referenced.contains(&key) {
            problems.push(format!("blob {key}: not referenced by any kit (orphan)"));
        }
    }
    let present: std::collections::BTreeSet<String> =
        listed.iter().map(|(a, h)| format!("{a}/{h}")).collect();
    for key in &referenced {
        if !present.contains(key) {
            problems.push(format!(
                "blob {key}: referenced but missing from the blob directory"
            ));
        }
    }
    for k in kits(site)? {
        if site
            .store
            .get(Tree::Kits, format!("manifest/{}", k.id).as_bytes())?
            .is_none()
        {
            problems.push(format!("kit {}: manifest missing", k.id));
        }
    }
    if let Err(e) = crate::audit::verify(&site.store, &site.profile) {
        problems.push(e.to_string());
    }
    Ok(problems)
}
