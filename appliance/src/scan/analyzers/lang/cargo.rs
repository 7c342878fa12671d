//! Rust crates: `Cargo.lock` (format versions 1 to 4, all `[[package]]` tables) and binaries built with
//! cargo-auditable, whose `.dep-v0` ELF section holds zlib-compressed JSON
//! `{"packages":[{"name","version","source","kind","root"...}]}`.

use super::elf::Elf;
use super::{error, package};
use crate::scan::analyzers::AnalyzeError;
use crate::scan::package::{Ecosystem, Package};
use serde::Deserialize;
use std::io::Read;

/// Largest inflated `.dep-v0` accepted (cargo-auditable's own reader defaults to 8 MiB).
const MAX_AUDIT_JSON: u64 = 8 << 20;

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
}

/// Every `[[package]]` of a `Cargo.lock`, with its `source` (`registry+https://...`, `git+...`, none
/// for workspace members and path dependencies).
pub(super) fn lockfile(path: &str, bytes: &[u8]) -> Result<Vec<Package>, AnalyzeError> {
    let text = std::str::from_utf8(bytes).map_err(|_| error("cargo-lock", path, "not UTF-8"))?;
    let lock: Lock = toml::from_str(text).map_err(|e| error("cargo-lock", path, e.message()))?;
    Ok(lock
        .package
        .into_iter()
        .map(|p| {
            let mut pkg = package(Ecosystem::Cargo, None, &p.name, &p.version, path);
            pkg.source = p.source;
            pkg
        })
        .collect())
}

#[derive(Deserialize)]
struct Audit {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    /// `crates.io`, `git`, `local`, `registry` or `other`.
    #[serde(default)]
    source: Option<String>,
}

/// The crates a cargo-auditable binary was built from, root crate and build dependencies included. A
/// binary without a `.dep-v0` section yields nothing.
pub(super) fn auditable(path: &str, elf: &Elf<'_>) -> Result<Vec<Package>, AnalyzeError> {
    let Some(section) = elf.section(".dep-v0") else {
        return Ok(Vec::new());
    };
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(&section[..])
        .take(MAX_AUDIT_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| error("cargo-auditable", path, format!("bad zlib in .dep-v0: {e}")))?;
    if json.len() as u64 > MAX_AUDIT_JSON {
        return Err(error(
            "cargo-auditable",
            path,
            "inflated .dep-v0 exceeds 8 MiB",
        ));
    }
    let audit: Audit = serde_json::from_slice(&json)
        .map_err(|e| error("cargo-auditable", path, format!("bad .dep-v0 JSON: {e}")))?;
    Ok(audit
        .packages
        .into_iter()
        .map(|p| {
            let mut pkg = package(Ecosystem::Cargo, None, &p.name, &p.version, path);
            pkg.source = p.source;
            pkg
        })
        .collect())
}
