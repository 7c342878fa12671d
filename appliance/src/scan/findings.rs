//! Findings: an image's packages × the linksets whose sources say they are affected. Stored per image and
//! recomputed whenever knowledge changes; every change (new, resolved, changed) is recorded with the kit
//! that caused it. No image is unpacked again.

use super::ScanRecord;
use crate::store::{Batch, MetaStore, StoreError, Tree};
use crate::vuln::{self, SourceVerdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Linkset id (the CVE when there is one).
    pub vulnerability: String,
    /// Every id of the linkset.
    pub ids: Vec<String>,
    /// The package's purl.
    pub purl: String,
    /// Package name.
    pub package: String,
    /// Installed version.
    pub version: String,
    /// Where it was found.
    pub path: String,
    /// Highest CVSS base score any source states.
    pub cvss: Option<f64>,
    /// Qualitative severity of that score (`critical`, `high`, ...), or `unknown`.
    pub severity: String,
    /// Listed in CISA KEV.
    pub kev: bool,
    /// Fixed versions stated by the sources that say affected.
    pub fixed: Vec<String>,
    /// Each source's verdict, as it stated it.
    pub verdicts: Vec<SourceVerdict>,
    /// Number of conflicts in the linkset.
    pub conflicts: usize,
}

impl Finding {
    fn key(&self, image: &str) -> String {
        format!("{image}|{}|{}", self.vulnerability, self.purl)
    }

    /// What a change compares: everything a person would call "the finding changed".
    fn essence(&self) -> String {
        serde_json::to_string(&(
            &self.severity,
            &self.fixed,
            &self.verdicts,
            &self.kev,
            self.conflicts,
        ))
        .unwrap_or_default()
    }
}

/// A finding change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingEvent {
    /// `new`, `resolved` or `changed`.
    pub change: String,
    /// Image.
    pub image: String,
    /// Vulnerability.
    pub vulnerability: String,
    /// Package purl.
    pub purl: String,
    /// The kit whose import caused it (or `scan` for a first scan).
    pub cause: String,
    /// When.
    pub time: String,
}

/// Computes an image's findings from the current knowledge.
pub fn compute(store: &impl MetaStore, rec: &ScanRecord) -> Result<Vec<Finding>, StoreError> {
    let mut out = Vec::new();
    for p in &rec.packages {
        let Ok(purl) = feeds::matching::parse_purl(&p.purl) else {
            continue;
        };
        for m in vuln::affects(store, &purl)? {
            let mut fixed: Vec<String> = m
                .verdicts
                .iter()
                .filter_map(|v| match &v.verdict {
                    feeds::matching::Verdict::Affected { fixed, .. } => Some(fixed.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            fixed.sort();
            fixed.dedup();
            out.push(Finding {
                vulnerability: m.id.clone(),
                ids: m.ids.clone(),
                purl: p.purl.clone(),
                package: p.name.clone(),
                version: p.version.clone(),
                path: p.path.clone(),
                cvss: m.cvss,
                severity: m
                    .cvss
                    .map_or("unknown", feeds::linkset::rating)
                    .to_ascii_lowercase(),
                kev: m.kev,
                fixed,
                verdicts: m.verdicts,
                conflicts: m.conflicts.len(),
            });
        }
    }
    out.sort_by(|a, b| (&a.vulnerability, &a.purl).cmp(&(&b.vulnerability, &b.purl)));
    Ok(out)
}

/// The stored findings of an image.
pub fn stored(store: &impl MetaStore, image: &str) -> Result<Vec<Finding>, StoreError> {
    store
        .scan(Tree::Findings, format!("{image}|").as_bytes())?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "findings",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Recomputes every stored image's findings and records each change with `cause`. Returns the number of
/// changes per kind.
pub fn reevaluate(
    store: &impl MetaStore,
    cause: &str,
    time: &str,
    only: Option<&str>,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut counts = BTreeMap::new();
    let mut seq = store.scan(Tree::FindingEvents, b"")?.len() as u64;
    for rec in super::records(store)? {
        if only.is_some_and(|d| d != rec.digest) {
            continue;
        }
        let old: BTreeMap<String, Finding> = stored(store, &rec.digest)?
            .into_iter()
            .map(|f| (f.key(&rec.digest), f))
            .collect();
        let new: BTreeMap<String, Finding> = compute(store, &rec)?
            .into_iter()
            .map(|f| (f.key(&rec.digest), f))
            .collect();
        let mut batch = Batch::default();
        let mut event = |batch: &mut Batch, change: &str, f: &Finding| {
            seq += 1;
            *counts.entry(change.to_owned()).or_insert(0) += 1;
            batch.put_json(
                Tree::FindingEvents,
                format!("{}|{seq:012}", rec.digest),
                &FindingEvent {
                    change: change.into(),
                    image: rec.digest.clone(),
                    vulnerability: f.vulnerability.clone(),
                    purl: f.purl.clone(),
                    cause: cause.into(),
                    time: time.into(),
                },
            );
        };
        for (k, f) in &new {
            match old.get(k) {
                None => event(&mut batch, "new", f),
                Some(o) if o.essence() != f.essence() => event(&mut batch, "changed", f),
                Some(_) => {}
            }
            batch.put_json(Tree::Findings, k.as_bytes(), f);
        }
        for (k, f) in &old {
            if !new.contains_key(k) {
                event(&mut batch, "resolved", f);
                batch.remove(Tree::Findings, k.as_bytes());
            }
        }
        store.apply(batch)?;
    }
    Ok(counts)
}

/// Finding changes of an image, oldest first.
pub fn events(store: &impl MetaStore, image: &str) -> Result<Vec<FindingEvent>, StoreError> {
    store
        .scan(Tree::FindingEvents, format!("{image}|").as_bytes())?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "finding-events",
                reason: e.to_string(),
            })
        })
        .collect()
}
