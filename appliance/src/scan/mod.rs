//! The scanner: SBOM first. An image is analysed layer by layer; each layer's result is cached by layer
//! digest, so an image that shares base layers costs only its new layers. Findings come from matching the
//! SBOM against the knowledge store and are recomputed when knowledge changes, without rescanning.

pub mod analyzers;
pub mod findings;
pub mod gzip;
pub mod image;
pub mod inflate;
pub mod layer;
pub mod package;
pub mod sbom;

use crate::store::{Batch, MetaStore, Store, StoreError, Tree};
use layer::LayerResult;
use package::{OsRelease, Package};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// A scanned image: its inventory (the SBOM's content), stored by manifest digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// Manifest digest.
    pub digest: String,
    /// Name.
    pub name: String,
    /// Source.
    pub source: String,
    /// Config digest.
    pub config: String,
    /// Layer digests, bottom first.
    pub layers: Vec<String>,
    /// OS release.
    pub os: Option<OsRelease>,
    /// Packages, sorted.
    pub packages: Vec<Package>,
    /// When it was scanned.
    pub scanned: String,
    /// Analyser errors.
    pub errors: Vec<String>,
}

/// What a scan did, for the caller.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// The record.
    pub record: ScanRecord,
    /// Layers analysed now.
    pub layers_analysed: usize,
    /// Layers taken from the cache.
    pub layers_cached: usize,
}

/// A scan failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The image could not be opened.
    #[error(transparent)]
    Image(#[from] image::ImageError),
    /// A layer could not be read.
    #[error("layer {digest}: {source}")]
    Layer {
        /// The layer.
        digest: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Scans an image (cached layers are not read again) and stores its record.
pub fn scan(store: &Store, spec: &str, now: &str) -> Result<ScanReport, ScanError> {
    let img = image::open(spec, store)?;
    let mut results: Vec<LayerResult> = Vec::with_capacity(img.layers.len());
    let mut analysed = 0;
    let mut batch = Batch::default();
    // Layers analysed in this scan, not yet in the store: an image may list the same layer twice.
    let mut fresh: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &img.layers {
        if let Some(&i) = fresh.get(l.digest.as_str()) {
            results.push(results[i].clone());
            continue;
        }
        match store.get_json::<LayerResult>(Tree::Layers, l.digest.as_bytes())? {
            Some(cached) => results.push(cached),
            None => {
                let r = layer::analyse(l).map_err(|source| ScanError::Layer {
                    digest: l.digest.clone(),
                    source,
                })?;
                batch.put_json(Tree::Layers, l.digest.as_bytes(), &r);
                analysed += 1;
                fresh.insert(&l.digest, results.len());
                results.push(r);
            }
        }
    }
    let (packages, os) = layer::merge(&results);
    // A rescan that finds the same inventory keeps the first scan time, so the SBOM bytes stay the same.
    let previous: Option<ScanRecord> = store.get_json(Tree::Sboms, img.digest.as_bytes())?;
    let now = match &previous {
        Some(p) if p.packages == packages && p.os == os => p.scanned.clone(),
        _ => now.to_owned(),
    };
    let record = ScanRecord {
        digest: img.digest.clone(),
        name: img.name.clone(),
        source: img.source.clone(),
        config: img.config.clone(),
        layers: img.layers.iter().map(|l| l.digest.clone()).collect(),
        os,
        packages,
        scanned: now,
        errors: results.iter().flat_map(|r| r.errors.clone()).collect(),
    };
    batch.put_json(Tree::Sboms, img.digest.as_bytes(), &record);
    store.apply(batch)?;
    Ok(ScanReport {
        layers_cached: img.layers.len() - analysed,
        layers_analysed: analysed,
        record,
    })
}

/// Every scanned image.
pub fn records(store: &impl MetaStore) -> Result<Vec<ScanRecord>, StoreError> {
    store
        .scan(Tree::Sboms, b"")?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "sboms",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// One scanned image by manifest digest (a unique prefix of the hex is enough).
pub fn record(store: &impl MetaStore, digest: &str) -> Result<Option<ScanRecord>, StoreError> {
    if let Some(r) = store.get_json(Tree::Sboms, digest.as_bytes())? {
        return Ok(Some(r));
    }
    let want = if digest.starts_with("sha256:") {
        digest.to_owned()
    } else {
        format!("sha256:{digest}")
    };
    let all = records(store)?;
    let mut hits = all.into_iter().filter(|r| r.digest.starts_with(&want));
    match (hits.next(), hits.next()) {
        (Some(r), None) => Ok(Some(r)),
        _ => Ok(None),
    }
}
