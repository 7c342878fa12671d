//! `stella import`: a kit is taken whole, verified, or not at all.
//!
//! Order: the kit's signatures are checked (kit-builder's reader), then the site's own checks (sequence above
//! the channel high-water mark, base present, staleness) before any payload is read; payloads are staged in
//! the blob directory while their digests are checked, each new blob listed in a journal; then all metadata
//! is applied in one transaction. A rejected kit's new blobs are removed and only a quarantine record, a
//! signed receipt and an audit event are written. After a crash, [`recover`] removes the new blobs of any
//! import whose transaction did not commit.

use crate::audit::AuditWriter;
use crate::site::{SignerSet, Site, SiteError};
use crate::store::{Batch, MetaStore, Staged, StoreError, Tree};
use crypto_profiles::dsse::{Envelope, SignatureNote, TrustPolicy};
use crypto_profiles::Signer as _;
use kit_builder::clock::Timestamp;
use kit_builder::exit::{Classify, ExitStatus};
use kit_builder::manifest::{Manifest, Payload, PayloadKind};
use kit_builder::read::{BlobSink, KitInput, Limits, ReadOptions, Refusal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

use kit_builder::signers::{SIGNER_SET_PAYLOAD_TYPE, SIGNER_SET_SUFFIX};
/// DSSE payload type of an import receipt.
pub const RECEIPT_PAYLOAD_TYPE: &str = "application/vnd.stella.import-receipt+json";

/// An imported kit, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitRecord {
    /// Kit id.
    pub id: String,
    /// Channel.
    pub channel: String,
    /// Sequence.
    pub sequence: u64,
    /// Created.
    pub created: String,
    /// Expires.
    pub expires: String,
    /// Site-profile digest of its `kit.json` (`alg:hex`).
    pub manifest_digest: String,
    /// Import time.
    pub imported: String,
    /// Payload count.
    pub payloads: usize,
    /// Payload bytes carried.
    pub bytes: u64,
    /// Base kit id for a delta.
    pub base: Option<String>,
    /// The reason given with `--force`.
    pub forced: Option<String>,
    /// Receipt number.
    pub receipt: u64,
}

/// One check and its result, for the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// `ok`, `failed: …`, `skipped`, `overridden: …`.
    pub result: String,
}

/// What an import did, signed by the appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Receipt number.
    pub number: u64,
    /// When.
    pub time: String,
    /// Who.
    pub actor: String,
    /// The kit file or first volume.
    pub input: String,
    /// Kit id, when the manifest was readable.
    pub kit: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Sequence.
    pub sequence: Option<u64>,
    /// Site-profile digest of `kit.json`.
    pub manifest_digest: Option<String>,
    /// Signatures and their outcomes.
    pub signatures: Vec<SignatureNote>,
    /// Checks performed.
    pub checks: Vec<Check>,
    /// Payloads, new blobs, bytes, feed documents, images.
    pub counts: BTreeMap<String, u64>,
    /// `accepted` or `rejected`.
    pub result: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// The exit code `stella import` gave.
    pub exit_code: u8,
    /// Warnings (clock went backwards, forced import).
    pub warnings: Vec<String>,
}

/// A receipt and its DSSE envelope signed by the appliance key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedReceipt {
    /// The receipt.
    pub receipt: Receipt,
    /// DSSE over the receipt's JSON.
    pub envelope: Envelope,
}

/// An import was refused; the store holds only the receipt, quarantine record and audit event.
#[derive(Debug, Error)]
#[error("kit {input} rejected: {message}")]
pub struct ImportError {
    /// The input.
    pub input: String,
    /// The reason.
    pub message: String,
    /// Exit status.
    pub status: ExitStatus,
    /// The signed receipt, when one could be written.
    pub receipt: Option<Box<SignedReceipt>>,
}

impl Classify for ImportError {
    fn exit_status(&self) -> ExitStatus {
        self.status
    }
}

/// What `stella import` needs.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The kit or its volumes.
    pub input: KitInput,
    /// `--force --reason`: accept a sequence at or below the high-water mark.
    pub force_reason: Option<String>,
    /// The appliance clock.
    pub now: Timestamp,
    /// Who asked.
    pub actor: String,
    /// How receipts and the quarantine name the input (default: its path), e.g. `upload:site.kit`.
    pub label: Option<String>,
}

fn journal_dir(root: &Path) -> PathBuf {
    root.join("journal")
}

/// Removes the new blobs of imports that never committed (after a crash), and their journals.
pub fn recover(site: &Site) -> Result<usize, StoreError> {
    let dir = journal_dir(&site.root);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut recovered = 0;
    for entry in rd.flatten() {
        let path = entry.path();
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let committed = site
            .store
            .get(Tree::Meta, format!("import/{id}").as_bytes())?
            .is_some();
        if !committed {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                if let Some((alg, hex)) = line.split_once('/') {
                    site.store.cas().remove(alg, hex)?;
                }
            }
            recovered += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(recovered)
}

struct Journal {
    path: PathBuf,
    file: std::fs::File,
    new_blobs: Vec<(String, String)>,
}

impl Journal {
    fn create(root: &Path, id: &str) -> io::Result<Journal> {
        let dir = journal_dir(root);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{id}.log"));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(Journal {
            path,
            file,
            new_blobs: Vec::new(),
        })
    }

    /// Records the blobs about to become visible, in one write and one sync, so a crash can always find them.
    fn record_all(&mut self, blobs: &[(String, String)]) -> io::Result<()> {
        let mut text = String::new();
        for (alg, hex) in blobs {
            text.push_str(&format!("{alg}/{hex}\n"));
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        self.new_blobs.extend(blobs.iter().cloned());
        Ok(())
    }

    fn rollback(self, site: &Site) {
        for (alg, hex) in &self.new_blobs {
            let _ = site.store.cas().remove(alg, hex);
        }
        let _ = std::fs::remove_file(&self.path);
    }

    fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

struct ImportSink<'a> {
    site: &'a Site,
    alg: String,
    staged: Option<Staged>,
    /// Verified new blobs, durable in the staging directory, published only when the kit is accepted.
    sealed: BTreeMap<String, tempfile::TempPath>,
    now: Timestamp,
    force_reason: Option<String>,
    checks: Vec<Check>,
    warnings: Vec<String>,
    failure: Option<String>,
    seen: Option<(String, String, u64)>,
}

impl BlobSink for ImportSink<'_> {
    fn check_manifest(&mut self, m: &Manifest) -> Result<(), (Refusal, String)> {
        self.seen = Some((m.id.clone(), m.channel.clone(), m.sequence));
        let store = &self.site.store;
        let err = |e: StoreError| (Refusal::Stale, e.to_string());
        // Replay and rollback.
        if let Some(rec) = store
            .get_json::<KitRecord>(Tree::Kits, m.id.as_bytes())
            .map_err(err)?
        {
            if self.force_reason.is_none() {
                let msg = format!(
                    "kit '{}' was already imported at {} (replay)",
                    m.id, rec.imported
                );
                self.checks.push(Check {
                    name: "replay".into(),
                    result: format!("failed: {msg}"),
                });
                return Err((Refusal::Rollback, msg));
            }
        }
        let hwm = store
            .get_json::<u64>(Tree::Channels, m.channel.as_bytes())
            .map_err(err)?
            .unwrap_or(0);
        if m.sequence <= hwm {
            let msg = format!(
                "sequence {} is not above the last imported {} on channel '{}'",
                m.sequence, hwm, m.channel
            );
            match &self.force_reason {
                Some(reason) => {
                    self.checks.push(Check {
                        name: "sequence".into(),
                        result: format!("overridden: {msg}"),
                    });
                    self.warnings
                        .push(format!("forced import: {msg}; reason: {reason}"));
                }
                None => {
                    self.checks.push(Check {
                        name: "sequence".into(),
                        result: format!("failed: {msg}"),
                    });
                    return Err((Refusal::Rollback, msg));
                }
            }
        } else {
            self.checks.push(Check {
                name: "sequence".into(),
                result: format!("ok: {} > {hwm}", m.sequence),
            });
        }
        // Staleness and clock sanity.
        let created = m
            .created_at()
            .map_err(|e| (Refusal::Stale, e.to_string()))?;
        let budget = self.site.config.staleness_days as i64 * 86_400;
        if created.0 < self.now.0 - budget {
            let msg = format!(
                "kit '{}' was created {} and is older than the staleness budget of {} days",
                m.id, m.created, self.site.config.staleness_days
            );
            self.checks.push(Check {
                name: "staleness".into(),
                result: format!("failed: {msg}"),
            });
            return Err((Refusal::Stale, msg));
        }
        if created.0 > self.now.0 + self.site.config.clock_skew_seconds as i64 {
            let msg = format!(
                "kit '{}' was created {} in the future of the appliance clock {}: check the clock",
                m.id, m.created, self.now
            );
            self.checks.push(Check {
                name: "staleness".into(),
                result: format!("failed: {msg}"),
            });
            return Err((Refusal::Stale, msg));
        }
        self.checks.push(Check {
            name: "staleness".into(),
            result: "ok".into(),
        });
        // Delta base.
        if let Some(base) = &m.base {
            let have = store
                .get_json::<KitRecord>(Tree::Kits, base.id.as_bytes())
                .map_err(err)?;
            let want = format!(
                "{}:{}",
                self.alg,
                base.digests
                    .get(&self.site.profile.digest_alg())
                    .cloned()
                    .unwrap_or_default()
            );
            match have {
                Some(rec) if rec.manifest_digest == want => {
                    self.checks.push(Check {
                        name: "base".into(),
                        result: format!("ok: {}", base.id),
                    });
                }
                Some(_) => {
                    let msg = format!("delta kit '{}' needs base kit '{}' with manifest {want}, but this site imported a different kit under that id", m.id, base.id);
                    return Err((Refusal::BaseMissing, msg));
                }
                None => {
                    let msg = format!("delta kit '{}' needs base kit '{}' ({want}), which this site has not imported", m.id, base.id);
                    self.checks.push(Check {
                        name: "base".into(),
                        result: format!("failed: {msg}"),
                    });
                    return Err((Refusal::BaseMissing, msg));
                }
            }
            for p in m.payloads.iter().filter(|p| !p.carried) {
                let hex = p
                    .digests
                    .get(&self.site.profile.digest_alg())
                    .cloned()
                    .unwrap_or_default();
                if !self.site.store.cas().has(&self.alg, &hex) {
                    let msg = format!("delta kit '{}': payload '{}' should come from base '{}' but is not in the store", m.id, p.name, base.id);
                    return Err((Refusal::BaseMissing, msg));
                }
            }
        }
        Ok(())
    }

    fn stage(&mut self, _payload: &Payload, data: &mut dyn Read) -> io::Result<()> {
        let mut staged = self.site.store.cas().stage().map_err(io::Error::other)?;
        io::copy(data, &mut staged)?;
        self.staged = Some(staged);
        Ok(())
    }

    fn keep(&mut self, payload: &Payload) -> io::Result<()> {
        let staged = self
            .staged
            .take()
            .ok_or_else(|| io::Error::other("nothing staged"))?;
        let hex = payload
            .digests
            .get(&self.site.profile.digest_alg())
            .cloned()
            .unwrap_or_default();
        if self.site.store.cas().has(&self.alg, &hex) || self.sealed.contains_key(&hex) {
            return Ok(());
        }
        let path = self
            .site
            .store
            .cas()
            .seal(staged)
            .map_err(io::Error::other)?;
        self.sealed.insert(hex, path);
        Ok(())
    }

    fn discard(&mut self, payload: &Payload) {
        self.staged = None;
        self.failure = Some(format!("payload '{}' failed verification", payload.name));
    }
}

fn sign_receipt(site: &Site, receipt: &Receipt) -> Result<SignedReceipt, SiteError> {
    let signer = site.signer()?;
    let bytes = serde_json::to_vec(receipt).unwrap_or_default();
    let env = Envelope::sign(
        RECEIPT_PAYLOAD_TYPE,
        &bytes,
        &[&signer as &dyn crypto_profiles::Signer],
    )
    .map_err(|e| SiteError::Key {
        path: "appliance key".into(),
        reason: e.to_string(),
    })?;
    let _ = signer.key_id();
    Ok(SignedReceipt {
        receipt: receipt.clone(),
        envelope: env,
    })
}

fn next_receipt_number(site: &Site) -> Result<u64, StoreError> {
    Ok(site
        .store
        .scan(Tree::Receipts, b"")?
        .last()
        .map(|(k, _)| k.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0))
        .unwrap_or(0)
        + 1)
}

/// Checks a kit-signer set carried by the kit: signed by a threshold of the current set under the site
/// profile, a higher version, usable keys.
fn rotation(
    site: &Site,
    policy: &TrustPolicy,
    payload: &Payload,
    path: &Path,
) -> Result<SignerSet, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", payload.name))?;
    let env = Envelope::from_json(&bytes).map_err(|e| format!("{}: {e}", payload.name))?;
    let verified = env
        .verify_typed(policy, SIGNER_SET_PAYLOAD_TYPE)
        .map_err(|e| format!("unauthorised kit-signer set '{}': {e}", payload.name))?;
    let set: SignerSet = serde_json::from_slice(&verified.payload)
        .map_err(|e| format!("{}: malformed signer set: {e}", payload.name))?;
    let current = site.signer_set().map_err(|e| e.to_string())?;
    if set.version <= current.version {
        return Err(format!(
            "kit-signer set version {} is not above the current {}",
            set.version, current.version
        ));
    }
    let keys = set
        .public_keys()
        .map_err(|e| format!("{}: {e}", payload.name))?;
    TrustPolicy::new(site.profile.clone(), keys, set.threshold)
        .map_err(|e| format!("{}: {e}", payload.name))?;
    Ok(set)
}

/// Imports a kit. On success returns the signed receipt; on refusal, an error carrying it.
pub fn import(site: &Site, req: &ImportRequest) -> Result<SignedReceipt, ImportError> {
    let input_label = req.label.clone().unwrap_or_else(|| req.input.label());
    let fail = |message: String, status: ExitStatus| ImportError {
        input: input_label.clone(),
        message,
        status,
        receipt: None,
    };
    let policy = site
        .kit_policy()
        .map_err(|e| fail(e.to_string(), ExitStatus::Usage))?;
    let identities = site
        .identities()
        .map_err(|e| fail(e.to_string(), ExitStatus::Usage))?;
    let hwm = site
        .clock_hwm()
        .map_err(|e| fail(e.to_string(), ExitStatus::Usage))?;
    let mut warnings = Vec::new();
    if req.now.0 + (site.config.clock_skew_seconds as i64) < hwm.0 {
        warnings.push(format!("appliance clock {} is behind the latest time seen {}: the clock went backwards; checks use {}", req.now, hwm, hwm));
    }
    let now = Timestamp(req.now.0.max(hwm.0));
    let number = next_receipt_number(site).map_err(|e| fail(e.to_string(), ExitStatus::Usage))?;
    let import_id = format!("{}-{}-{number}", now.0, std::process::id());
    let alg = site.profile.digest_alg().name().to_owned();
    let mut sink = ImportSink {
        site,
        alg: alg.clone(),
        staged: None,
        sealed: BTreeMap::new(),
        now,
        force_reason: req.force_reason.clone(),
        checks: Vec::new(),
        warnings,
        failure: None,
        seen: None,
    };
    let limits = Limits {
        max_ratio: site.config.max_kit_ratio,
        max_total_bytes: site.config.max_kit_gib << 30,
        ..Limits::default()
    };
    let opts = ReadOptions {
        policy: &policy,
        now: Some(now),
        limits,
        identities: &identities,
    };
    let result = kit_builder::read::verify(&req.input, &opts, &mut sink);
    let ImportSink {
        sealed,
        mut checks,
        warnings,
        seen,
        ..
    } = sink;
    // Where an accepted payload's bytes are before they are published: staged, or already in the store.
    let blob_path = |hex: &str| -> PathBuf {
        match sealed.get(hex) {
            Some(p) => p.to_path_buf(),
            None => site.store.cas().path(&alg, hex),
        }
    };
    let mut receipt = Receipt {
        number,
        time: now.to_string(),
        actor: req.actor.clone(),
        input: input_label.clone(),
        kit: None,
        channel: None,
        sequence: None,
        manifest_digest: None,
        signatures: Vec::new(),
        checks: Vec::new(),
        counts: BTreeMap::new(),
        result: "rejected".into(),
        reason: None,
        exit_code: 0,
        warnings,
    };
    let verified = match result {
        Ok(v) => v,
        Err(e) => {
            // The sealed blobs are dropped with `sealed`: nothing reached the blob directory.
            if let Some((id, channel, sequence)) = seen {
                receipt.kit = Some(id);
                receipt.channel = Some(channel);
                receipt.sequence = Some(sequence);
            }
            checks.push(Check {
                name: "verification".into(),
                result: format!("failed: {e}"),
            });
            receipt.checks = checks;
            return Err(reject(
                site,
                receipt,
                &e.to_string(),
                e.exit_status(),
                &input_label,
            ));
        }
    };
    checks.insert(
        0,
        Check {
            name: "signatures".into(),
            result: format!(
                "ok: {} of {} under {}",
                verified
                    .signatures
                    .iter()
                    .filter(|n| matches!(
                        n.outcome,
                        crypto_profiles::dsse::SignatureOutcome::Counted { .. }
                    ))
                    .count(),
                policy.threshold(),
                site.profile.id()
            ),
        },
    );
    checks.push(Check {
        name: "payload digests".into(),
        result: format!(
            "ok: {} under {alg}",
            verified.manifest.carried_entries().len()
        ),
    });
    let m = &verified.manifest;
    receipt.kit = Some(m.id.clone());
    receipt.channel = Some(m.channel.clone());
    receipt.sequence = Some(m.sequence);
    receipt.manifest_digest = Some(format!("{alg}:{}", verified.manifest_digest));
    receipt.signatures = verified.signatures.clone();

    // Content checks that need the staged bytes: trust rotation and feed documents.
    let mut new_set = None;
    let mut batch = Batch::default();
    let mut feed_docs = 0u64;
    let mut ingest = crate::vuln::Ingest::default();
    for p in &m.payloads {
        let hex = p
            .digests
            .get(&site.profile.digest_alg())
            .cloned()
            .unwrap_or_default();
        if p.kind == PayloadKind::Trust && p.name.ends_with(SIGNER_SET_SUFFIX) {
            match rotation(site, &policy, p, &blob_path(&hex)) {
                Ok(set) => {
                    checks.push(Check {
                        name: "kit-signer rotation".into(),
                        result: format!("ok: version {}", set.version),
                    });
                    new_set = Some(set);
                }
                Err(msg) => {
                    checks.push(Check {
                        name: "kit-signer rotation".into(),
                        result: format!("failed: {msg}"),
                    });
                    receipt.checks = checks;
                    return Err(reject(
                        site,
                        receipt,
                        &msg,
                        ExitStatus::VerificationFailed,
                        &input_label,
                    ));
                }
            }
        }
        if p.kind == PayloadKind::Feed {
            let bytes = std::fs::read(blob_path(&hex)).unwrap_or_default();
            match feeds::parse(&p.name, &bytes) {
                Ok(doc) => {
                    feed_docs += 1;
                    let digest = format!("{alg}:{hex}");
                    if let Err(e) = ingest.add(
                        &site.store,
                        &mut batch,
                        &doc.observations,
                        &digest,
                        &p.name,
                        &m.id,
                        &now.to_string(),
                    ) {
                        return Err(fail(e.to_string(), ExitStatus::Usage));
                    }
                    batch.put_json(
                        Tree::Feeds,
                        p.name.as_bytes(),
                        &serde_json::json!({"digest": format!("{alg}:{hex}"), "kit": m.id, "format": doc.format.name(), "observations": doc.observations.len(), "created": m.created}),
                    );
                }
                Err(e) => {
                    let msg = format!("feed document refused: {e}");
                    receipt.checks = checks;
                    return Err(reject(
                        site,
                        receipt,
                        &msg,
                        ExitStatus::Malformed,
                        &input_label,
                    ));
                }
            }
        }
        // OCI blobs are named by their SHA-256 in image manifests; map that name to the site digest the
        // store keeps them under (for a GOST or SM site the name is never the check).
        if p.kind == PayloadKind::OciBlob {
            if let Some(oci_hex) = p.name.strip_prefix("oci/sha256/") {
                batch.put_json(
                    Tree::Images,
                    format!("blob|sha256:{oci_hex}"),
                    &format!("{alg}/{hex}"),
                );
            }
        }
        let blob_key = format!("{alg}/{hex}");
        let mut kits: Vec<String> = site
            .store
            .get_json(Tree::Blobs, blob_key.as_bytes())
            .ok()
            .flatten()
            .unwrap_or_default();
        if !kits.contains(&m.id) {
            kits.push(m.id.clone());
        }
        batch.put_json(Tree::Blobs, blob_key.as_bytes(), &kits);
    }
    for img in &m.images {
        batch.put_json(Tree::Images, img.manifest.as_bytes(), &serde_json::json!({"name": img.name, "kit": m.id, "source": img.source, "config": img.config, "layers": img.layers, "media_type": img.media_type}));
    }
    receipt
        .counts
        .insert("payloads".into(), m.payloads.len() as u64);
    receipt
        .counts
        .insert("new_blobs".into(), sealed.len() as u64);
    receipt
        .counts
        .insert("bytes".into(), verified.payload_bytes);
    receipt.counts.insert("feed_documents".into(), feed_docs);
    receipt
        .counts
        .insert("observations_new".into(), ingest.counts.new);
    receipt
        .counts
        .insert("observations_superseded".into(), ingest.counts.superseded);
    receipt
        .counts
        .insert("observations_unchanged".into(), ingest.counts.unchanged);
    receipt
        .counts
        .insert("images".into(), m.images.len() as u64);
    receipt.result = "accepted".into();
    receipt.checks = checks;
    let forced = req.force_reason.clone().filter(|_| {
        receipt
            .checks
            .iter()
            .any(|c| c.result.starts_with("overridden"))
    });
    let signed =
        sign_receipt(site, &receipt).map_err(|e| fail(e.to_string(), ExitStatus::Usage))?;

    let hwm_channel = site
        .store
        .get_json::<u64>(Tree::Channels, m.channel.as_bytes())
        .ok()
        .flatten()
        .unwrap_or(0);
    let record = KitRecord {
        id: m.id.clone(),
        channel: m.channel.clone(),
        sequence: m.sequence,
        created: m.created.clone(),
        expires: m.expires.clone(),
        manifest_digest: format!("{alg}:{}", verified.manifest_digest),
        imported: now.to_string(),
        payloads: m.payloads.len(),
        bytes: verified.payload_bytes,
        base: m.base.as_ref().map(|b| b.id.clone()),
        forced: forced.clone(),
        receipt: number,
    };
    batch.put_json(Tree::Kits, m.id.as_bytes(), &record);
    batch.put(
        Tree::Kits,
        format!("manifest/{}", m.id),
        verified.manifest_bytes.clone(),
    );
    batch.put_json(
        Tree::Channels,
        m.channel.as_bytes(),
        &hwm_channel.max(m.sequence),
    );
    if let Some(set) = &new_set {
        batch.put_json(Tree::Trust, "current", set);
        batch.put_json(Tree::Trust, format!("v/{:010}", set.version), set);
    }
    batch.put_json(Tree::Meta, "clock_hwm", &now.0);
    batch.put_json(Tree::Meta, format!("import/{import_id}"), &m.id);
    batch.put_json(Tree::Receipts, number.to_be_bytes(), &signed);
    let mut audit = AuditWriter::new(&site.store, &site.profile)
        .map_err(|e| fail(e.to_string(), ExitStatus::Usage))?;
    audit.append(&mut batch, &now.to_string(), "kit-imported", &req.actor, serde_json::json!({"kit": m.id, "channel": m.channel, "sequence": m.sequence, "manifest": record.manifest_digest, "receipt": number}));
    if let Some(reason) = &forced {
        audit.append(
            &mut batch,
            &now.to_string(),
            "import-forced",
            &req.actor,
            serde_json::json!({"kit": m.id, "reason": reason}),
        );
    }
    if let Some(set) = &new_set {
        audit.append(&mut batch, &now.to_string(), "kit-signers-rotated", &req.actor, serde_json::json!({"kit": m.id, "version": set.version, "threshold": set.threshold, "keys": set.keys.len()}));
    }
    // Publish: journal every new blob (one sync), move them into place, then commit the metadata. A crash
    // before the commit leaves journaled blobs that `recover` removes; after it, the import is complete.
    let mut journal = Journal::create(&site.root, &import_id)
        .map_err(|e| fail(format!("journal: {e}"), ExitStatus::Usage))?;
    let names: Vec<(String, String)> = sealed.keys().map(|h| (alg.clone(), h.clone())).collect();
    if let Err(e) = journal.record_all(&names) {
        journal.rollback(site);
        return Err(fail(format!("journal: {e}"), ExitStatus::Usage));
    }
    let to_publish = sealed
        .into_iter()
        .map(|(h, p)| (alg.clone(), h, p))
        .collect();
    if let Err(e) = site.store.cas().publish(to_publish) {
        journal.rollback(site);
        return Err(fail(e.to_string(), ExitStatus::Usage));
    }
    if let Err(e) = site.store.apply(batch) {
        journal.rollback(site);
        return Err(fail(e.to_string(), ExitStatus::Usage));
    }
    journal.finish();
    // New knowledge re-evaluates every stored SBOM (no image is unpacked); each changed finding is recorded
    // with this kit. A failure here leaves the import committed and is repaired by the next evaluation.
    if feed_docs > 0 {
        if let Err(e) =
            crate::scan::findings::reevaluate(&site.store, &m.id, &now.to_string(), None)
        {
            tracing::warn!(kit_id = %m.id, error = %e, "re-evaluating findings failed");
        }
    }
    Ok(signed)
}

fn reject(
    site: &Site,
    mut receipt: Receipt,
    reason: &str,
    status: ExitStatus,
    input: &str,
) -> ImportError {
    receipt.result = "rejected".into();
    receipt.reason = Some(reason.to_owned());
    receipt.exit_code = status.code();
    let signed = sign_receipt(site, &receipt).ok();
    let mut batch = Batch::default();
    let number = receipt.number;
    batch.put_json(Tree::Quarantine, number.to_be_bytes(), &serde_json::json!({
        "input": input, "kit": receipt.kit, "reason": reason, "time": receipt.time, "exit_code": status.code(), "receipt": number,
    }));
    if let Some(s) = &signed {
        batch.put_json(Tree::Receipts, number.to_be_bytes(), s);
    }
    if let Ok(mut audit) = AuditWriter::new(&site.store, &site.profile) {
        audit.append(&mut batch, &receipt.time, "kit-rejected", &receipt.actor, serde_json::json!({"input": input, "kit": receipt.kit, "reason": reason, "receipt": number}));
    }
    let _ = site.store.apply(batch);
    ImportError {
        input: input.to_owned(),
        message: reason.to_owned(),
        status,
        receipt: signed.map(Box::new),
    }
}

/// Groups the files of a watched directory into kit inputs: each `*.kit`, and each volume set
/// (`NAME.kit.NNN` with `NAME.kit.index`, imported once the index and every listed volume are there).
pub fn pending_inputs(dir: &Path) -> io::Result<Vec<(String, KitInput)>> {
    let mut kits = Vec::new();
    let mut sets: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for p in names {
        let name = p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || !p.is_file() {
            continue;
        }
        if name.ends_with(".kit") {
            kits.push((name, KitInput::File(p)));
        } else if let Some(stem) = name.strip_suffix(".index") {
            sets.entry(stem.to_owned()).or_default().push(p);
        } else if let Some((stem, _)) = name
            .rsplit_once('.')
            .filter(|_| kit_builder::volume::volume_number_of(&p).is_some())
        {
            if stem.ends_with(".kit") {
                sets.entry(stem.to_owned()).or_default().push(p);
            }
        }
    }
    for (stem, files) in sets {
        // Only complete-looking sets: the index plus at least one volume.
        if files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "index"))
            && files.len() > 1
        {
            kits.push((stem, KitInput::Volumes(files)));
        }
    }
    Ok(kits)
}

/// A stable identity for a watched input (names, sizes, modification times), so each is imported once.
pub fn input_fingerprint(input: &KitInput) -> String {
    let files = match input {
        KitInput::File(p) => vec![p.clone()],
        KitInput::Volumes(v) => v.clone(),
    };
    files
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok();
            let len = m.as_ref().map(|m| m.len()).unwrap_or(0);
            let mtime = m
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!("{}:{len}:{mtime}", p.display())
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Puts kits in import order: a delta kit after its base when the base is among them (by id and manifest
/// digest), and otherwise the order given. Only each kit's first two entries are read, unverified, to learn
/// its id and base; a kit whose header cannot be read keeps its place (its import then says why).
pub fn order_by_base(site: &Site, inputs: Vec<KitInput>) -> Vec<KitInput> {
    let identities = site.identities().unwrap_or_default();
    let alg = site.profile.digest_alg();
    /// What ordering needs of a kit: its (id, digest of `kit.json`) and its base's (id, digest).
    #[derive(Default)]
    struct Head {
        me: Option<(String, String)>,
        base: Option<(String, Option<String>)>,
    }
    let heads: Vec<Head> = inputs
        .iter()
        .map(
            |input| match kit_builder::read::read_header(input, &identities, None) {
                Ok((m, bytes, _, _)) => Head {
                    me: site
                        .profile
                        .digest(&bytes)
                        .ok()
                        .map(|d| (m.id.clone(), d.hex())),
                    base: m.base.map(|b| (b.id, b.digests.get(&alg).cloned())),
                },
                Err(_) => Head::default(),
            },
        )
        .collect();
    let is_base_of = |k: usize, delta: usize| match (&heads[k].me, &heads[delta].base) {
        (Some((id, digest)), Some((base_id, base_digest))) => {
            id == base_id && base_digest.as_ref().is_none_or(|d| d == digest)
        }
        _ => false,
    };
    let mut placed = vec![false; inputs.len()];
    let mut order = Vec::with_capacity(inputs.len());
    while order.len() < inputs.len() {
        let waiting =
            |i: usize| (0..inputs.len()).any(|k| k != i && !placed[k] && is_base_of(k, i));
        let next = (0..inputs.len())
            .filter(|&i| !placed[i])
            .find(|&i| !waiting(i))
            // A cycle cannot be signed into real kits; take the given order then.
            .or_else(|| (0..inputs.len()).find(|&i| !placed[i]));
        let Some(next) = next else { break };
        placed[next] = true;
        order.push(next);
    }
    let mut slots: Vec<Option<KitInput>> = inputs.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// What the watcher has done with an input (by its fingerprint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchState {
    /// Not seen yet (or changed since).
    New,
    /// Imported, or rejected for good: handled again only when the file changes.
    Handled,
    /// Rejected because its base kit was missing when the site had `imports` accepted imports; retried
    /// once the site has more.
    WaitingForBase {
        /// The site's accepted imports at the rejection.
        imports: u64,
    },
}

/// A watcher's record of an input, under `meta/watch/<fingerprint>`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum WatchRecord {
    /// Rejected for a missing base: worth retrying after another import.
    WaitingForBase {
        waiting_for_base: u64,
        reason: String,
    },
    /// `imported` or `rejected: <reason>`.
    Handled(String),
}

/// The number of imports this site has accepted: one commit marker each (`meta/import/<id>`), never
/// removed.
pub fn accepted_imports(site: &Site) -> Result<u64, StoreError> {
    Ok(site.store.count(Tree::Meta, b"import/")? as u64)
}

/// What the watcher did with an input before.
pub fn watch_state(site: &Site, fingerprint: &str) -> Result<WatchState, StoreError> {
    let Some(rec) = site
        .store
        .get_json::<WatchRecord>(Tree::Meta, format!("watch/{fingerprint}").as_bytes())?
    else {
        return Ok(WatchState::New);
    };
    Ok(match rec {
        WatchRecord::WaitingForBase {
            waiting_for_base, ..
        } => WatchState::WaitingForBase {
            imports: waiting_for_base,
        },
        WatchRecord::Handled(_) => WatchState::Handled,
    })
}

/// Marks a watched input as handled (`imported`, `rejected: …`): not imported again until it changes.
pub fn mark_seen(site: &Site, fingerprint: &str, result: &str) -> Result<(), StoreError> {
    put_watch_record(site, fingerprint, &WatchRecord::Handled(result.to_owned()))
}

/// Marks a watched input as rejected for a missing base, to retry after the site's next accepted import.
pub fn mark_waiting_for_base(
    site: &Site,
    fingerprint: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let rec = WatchRecord::WaitingForBase {
        waiting_for_base: accepted_imports(site)?,
        reason: reason.to_owned(),
    };
    put_watch_record(site, fingerprint, &rec)
}

fn put_watch_record(site: &Site, fingerprint: &str, rec: &WatchRecord) -> Result<(), StoreError> {
    let mut b = Batch::default();
    b.put_json(Tree::Meta, format!("watch/{fingerprint}"), rec);
    site.store.apply(b)
}

/// What one watched input came to in a pass.
#[derive(Debug)]
pub struct WatchOutcome {
    /// The input's name in the directory: the kit file's, or `NAME.kit` for the volumes of a split kit.
    pub name: String,
    /// The receipt, or the refusal.
    pub result: Result<SignedReceipt, ImportError>,
    /// A refusal for a missing base, to be retried after the next accepted import.
    pub will_retry: bool,
}

/// One scan of a watched directory: imports every new input (a delta after its base when both are new), and
/// retries each input earlier rejected for a missing base once the site has accepted an import since, in
/// this pass or an earlier one, until a pass imports nothing more. Inputs rejected for any other reason
/// wait until their files change. `report` sees each outcome as it happens.
pub fn watch_pass(
    site: &Site,
    dir: &Path,
    now: &mut dyn FnMut() -> Timestamp,
    report: &mut dyn FnMut(&WatchOutcome) -> io::Result<()>,
) -> Result<(), WatchError> {
    let inputs = pending_inputs(dir).map_err(|source| WatchError::List {
        dir: dir.display().to_string(),
        source,
    })?;
    let names: BTreeMap<String, String> = inputs
        .iter()
        .map(|(name, input)| (input.label(), name.clone()))
        .collect();
    // Rounds: the inputs due (new, or waiting for a base since fewer imports than now), deltas after their
    // bases; another round only if this one imported something, so each round but the first follows an
    // import and the pass ends.
    loop {
        let imports = accepted_imports(site)?;
        let mut due = Vec::new();
        for (_, input) in &inputs {
            let fp = input_fingerprint(input);
            let ready = match watch_state(site, &fp)? {
                WatchState::New => true,
                WatchState::WaitingForBase { imports: then } => imports > then,
                WatchState::Handled => false,
            };
            if ready {
                due.push(input.clone());
            }
        }
        let mut imported = false;
        for input in order_by_base(site, due) {
            let fp = input_fingerprint(&input);
            let label = input.label();
            let req = ImportRequest {
                input,
                force_reason: None,
                now: now(),
                actor: "watch".into(),
                label: None,
            };
            let result = import(site, &req);
            let will_retry = matches!(&result, Err(e) if e.status == ExitStatus::BaseMissing);
            match &result {
                Ok(_) => {
                    imported = true;
                    mark_seen(site, &fp, "imported")?;
                }
                Err(e) if will_retry => mark_waiting_for_base(site, &fp, &e.message)?,
                Err(e) => mark_seen(site, &fp, &format!("rejected: {}", e.message))?,
            }
            let outcome = WatchOutcome {
                name: names.get(&label).cloned().unwrap_or(label),
                result,
                will_retry,
            };
            report(&outcome).map_err(WatchError::Report)?;
        }
        if !imported {
            return Ok(());
        }
    }
}

/// A watch pass could not go on (an input's own refusal is an outcome, not this).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The directory could not be listed.
    #[error("{dir}: cannot list")]
    List {
        /// The directory.
        dir: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reporting an outcome failed.
    #[error("reporting: {0}")]
    Report(#[source] io::Error),
}
