//! Python: installed distributions' core metadata, `*.dist-info/METADATA` (wheels) and
//! `*.egg-info/PKG-INFO` or `EGG-INFO/PKG-INFO` (eggs; an `*.egg-info` may also be a single file). The
//! metadata is RFC 822 style: headers up to the first blank line, names case-insensitive.

use super::{error, package};
use crate::scan::analyzers::AnalyzeError;
use crate::scan::package::{Ecosystem, Package};

/// Whether `path` is a distribution's metadata file.
pub(super) fn is_metadata_path(path: &str) -> bool {
    let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
    let parent = dir.rsplit('/').next().unwrap_or(dir);
    (base == "METADATA" && parent.ends_with(".dist-info"))
        || (base == "PKG-INFO" && (parent.ends_with(".egg-info") || parent == "EGG-INFO"))
        || base.ends_with(".egg-info")
}

/// The headers of a metadata file, first occurrence of each winning. Continuation lines (leading
/// whitespace) extend the previous header; lines that are neither are ignored, as pip tolerates them.
fn headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            if !k.is_empty() && !k.contains(' ') {
                out.push((k.to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
    }
    out
}

/// PEP 503: lowercase, runs of `-`, `_` and `.` become one `-`.
pub(super) fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// The distribution a metadata file describes; one without a name or version is an error.
pub(super) fn metadata(path: &str, bytes: &[u8]) -> Result<Vec<Package>, AnalyzeError> {
    let text = String::from_utf8_lossy(bytes);
    let h = headers(&text);
    let get = |k: &str| {
        h.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let (Some(name), Some(version)) = (get("name"), get("version")) else {
        return Err(error(
            "python-metadata",
            path,
            "no Name and Version headers",
        ));
    };
    let purl_name = normalise(name);
    let mut p = package(Ecosystem::Pypi, None, &purl_name, version, path);
    p.name = name.to_owned();
    // License-Expression (metadata 2.4) is SPDX; the older License is free text, sometimes the whole
    // license, so only its first line is kept.
    p.license = get("license-expression")
        .or_else(|| get("license").and_then(|l| l.lines().next()))
        .filter(|l| !l.eq_ignore_ascii_case("UNKNOWN"))
        .map(str::to_owned);
    Ok(vec![p])
}
