//! Walking one layer: every regular file an analyser wants is read and analysed; whiteouts are recorded.
//! The result depends only on the layer's bytes, so it is cached by layer digest.

use super::analyzers::{self, MAX_FILE};
use super::image::{Layer, TarStream};
use super::package::{OsRelease, Package};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// What one layer contributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerResult {
    /// The layer's digest.
    pub digest: String,
    /// Packages per file path that yielded any (later layers replace a path wholesale).
    pub files: BTreeMap<String, Vec<Package>>,
    /// os-release contents found in this layer, per path.
    pub os: BTreeMap<String, OsRelease>,
    /// Paths deleted by whiteouts (`.wh.<name>`).
    pub whiteouts: Vec<String>,
    /// Directories made opaque (`.wh..wh..opq`): nothing from lower layers survives under them.
    pub opaque: Vec<String>,
    /// Files analysed.
    pub analysed: u64,
    /// Analyser errors, with the path (the scan goes on).
    pub errors: Vec<String>,
}

/// Normalises a tar path to an absolute image path (`./usr/bin/x` → `/usr/bin/x`), or `None` when it
/// escapes the root.
fn image_path(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Analyses a layer.
///
/// A gzip layer is inflated on several cores; if that fails for any reason, the layer is read again
/// with the serial zlib-rs decoder, so a layer is accepted or rejected exactly as zlib would.
pub fn analyse(layer: &Layer) -> std::io::Result<LayerResult> {
    match walk(layer, layer.tar_stream()?) {
        Ok(r) => Ok(r),
        Err(_) => walk(layer, layer.tar_stream_serial()?),
    }
}

fn walk(layer: &Layer, stream: Box<dyn TarStream>) -> std::io::Result<LayerResult> {
    let mut out = LayerResult {
        digest: layer.digest.clone(),
        ..Default::default()
    };
    let mut archive = tar::Archive::new(stream);
    // File bodies no analyser wants are skipped, not copied out of the stream.
    for entry in archive.entries_with_seek()? {
        let mut e = entry?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(path) = image_path(&raw) else {
            continue;
        };
        let (dir, base) = path.rsplit_once('/').unwrap_or(("", &path));
        if base == ".wh..wh..opq" {
            out.opaque.push(if dir.is_empty() {
                "/".into()
            } else {
                dir.to_owned()
            });
            continue;
        }
        if let Some(name) = base.strip_prefix(".wh.") {
            out.whiteouts.push(format!("{dir}/{name}"));
            continue;
        }
        if !e.header().entry_type().is_file() || e.size() > MAX_FILE {
            continue;
        }
        let mut head = [0u8; 512];
        let mut got = 0;
        while got < head.len() {
            let n = e.read(&mut head[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let head = &head[..got];
        if !analyzers::wants(&path, head) {
            continue;
        }
        out.analysed += 1;
        let result = if analyzers::is_executable(&path, head)
            && e.size() > analyzers::EXECUTABLE_IN_MEMORY
        {
            // Copied to an unlinked temporary file; the analysers read only headers and sections.
            let mut f = tempfile::tempfile()?;
            f.write_all(head)?;
            let len = head.len() as u64 + std::io::copy(&mut e, &mut f)?;
            analyzers::analyze_executable(&path, &analyzers::FileAccess::new(f, len))
        } else {
            let mut bytes = head.to_vec();
            e.read_to_end(&mut bytes)?;
            analyzers::analyze(&path, &bytes, None)
        };
        match result {
            Ok(r) => {
                if let Some(os) = r.os {
                    out.os.insert(path.clone(), os);
                }
                if !r.packages.is_empty() {
                    let mut pkgs = r.packages;
                    for p in &mut pkgs {
                        p.layer = layer.digest.clone();
                    }
                    pkgs.sort();
                    out.files.insert(path, pkgs);
                }
            }
            Err(err) => out.errors.push(err.to_string()),
        }
    }
    Ok(out)
}

/// The image's packages and OS after applying layers bottom-up: whiteouts and opaque directories remove
/// lower layers' files; a file in a higher layer replaces the same path below.
pub fn merge(layers: &[LayerResult]) -> (Vec<Package>, Option<OsRelease>) {
    let mut files: BTreeMap<String, Vec<Package>> = BTreeMap::new();
    let mut os: BTreeMap<String, OsRelease> = BTreeMap::new();
    let under = |p: &str, dir: &str| dir == "/" || p == dir || p.starts_with(&format!("{dir}/"));
    for l in layers {
        for dir in &l.opaque {
            files.retain(|p, _| !(under(p, dir) && p != dir));
            os.retain(|p, _| !(under(p, dir) && p != dir));
        }
        for w in &l.whiteouts {
            files.retain(|p, _| !under(p, w));
            os.retain(|p, _| !under(p, w));
        }
        for (p, pkgs) in &l.files {
            files.insert(p.clone(), pkgs.clone());
        }
        for (p, o) in &l.os {
            os.insert(p.clone(), o.clone());
        }
    }
    let os = os
        .get("/etc/os-release")
        .or_else(|| os.get("/usr/lib/os-release"))
        .cloned();
    let mut packages: Vec<Package> = files.into_values().flatten().collect();
    analyzers::qualify(&mut packages, os.as_ref());
    packages.sort();
    packages.dedup();
    (packages, os)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scan::package::Ecosystem;

    fn pkg(name: &str, path: &str) -> Package {
        Package {
            ecosystem: Ecosystem::Npm,
            name: name.into(),
            version: "1.0.0".into(),
            purl: format!("pkg:npm/{name}@1.0.0"),
            source: None,
            license: None,
            arch: None,
            path: path.into(),
            layer: String::new(),
        }
    }

    #[test]
    fn paths_are_normalised_and_escapes_dropped() {
        assert_eq!(image_path("./usr/lib/x").as_deref(), Some("/usr/lib/x"));
        assert_eq!(image_path("a/../b").as_deref(), Some("/b"));
        assert_eq!(image_path("../../etc/passwd"), None);
    }

    #[test]
    fn whiteouts_opaque_dirs_and_replacement() {
        let mut l1 = LayerResult::default();
        l1.files.insert(
            "/app/a/package.json".into(),
            vec![pkg("a", "/app/a/package.json")],
        );
        l1.files.insert(
            "/app/b/package.json".into(),
            vec![pkg("b", "/app/b/package.json")],
        );
        l1.files.insert(
            "/srv/c/package.json".into(),
            vec![pkg("c", "/srv/c/package.json")],
        );
        let mut l2 = LayerResult::default();
        l2.whiteouts.push("/app/a".into());
        l2.opaque.push("/srv".into());
        l2.files.insert(
            "/app/b/package.json".into(),
            vec![pkg("b2", "/app/b/package.json")],
        );
        let (pkgs, _) = merge(&[l1, l2]);
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["b2"]);
    }
}
