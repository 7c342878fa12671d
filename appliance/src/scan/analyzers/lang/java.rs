//! Java archives (`.jar`, `.war`, `.ear`): Maven coordinates from `pom.properties`, falling back to
//! `META-INF/MANIFEST.MF` when an archive has none, and nested archives (Spring Boot `BOOT-INF/lib/`,
//! `WEB-INF/lib/`, modules of an ear) read recursively.
//!
//! Work is bounded: archives nest at most [`MAX_DEPTH`] deep, and all entries inflated for one file,
//! nested ones included, total at most [`MAX_INFLATED`] bytes.

use super::zip::Archive;
use super::{error, package};
use crate::scan::analyzers::AnalyzeError;
use crate::scan::package::{Ecosystem, Package};
use std::borrow::Cow;

/// Deepest nesting of archives followed (the outer archive is depth 0).
const MAX_DEPTH: usize = 16;
/// Bytes inflated for one file in total, nested archives and metadata included.
const MAX_INFLATED: u64 = 256 << 20;
/// Largest `pom.properties` or manifest read.
const MAX_METADATA: u64 = 1 << 20;

/// Why a walk stopped early.
#[derive(Default)]
struct Limits {
    budget_left: u64,
    depth_hit: bool,
    budget_hit: bool,
}

/// Packages of an archive and the archives nested in it. Packages found in a nested archive have the
/// path `outer.jar!/BOOT-INF/lib/inner.jar`. When a cap stops the walk, what was found is returned, or
/// an error naming the cap when nothing was.
pub(super) fn archive(path: &str, bytes: &[u8]) -> Result<Vec<Package>, AnalyzeError> {
    let mut out = Vec::new();
    let mut limits = Limits {
        budget_left: MAX_INFLATED,
        ..Limits::default()
    };
    walk(path, bytes, 0, &mut limits, &mut out).map_err(|r| error("java-archive", path, r))?;
    if out.is_empty() && limits.depth_hit {
        return Err(error(
            "java-archive",
            path,
            format!("archives nest deeper than {MAX_DEPTH}"),
        ));
    }
    if out.is_empty() && limits.budget_hit {
        return Err(error(
            "java-archive",
            path,
            "inflated entries exceed 256 MiB",
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(
    location: &str,
    bytes: &[u8],
    depth: usize,
    limits: &mut Limits,
    out: &mut Vec<Package>,
) -> Result<(), String> {
    let zip = Archive::open(bytes)?;
    let mut found_pom = false;
    let mut manifest = None;
    for e in &zip.entries {
        let base = e.name.rsplit('/').next().unwrap_or(&e.name);
        let is_pom = base == "pom.properties";
        let is_manifest = e.name.eq_ignore_ascii_case("META-INF/MANIFEST.MF");
        if !is_pom && !is_manifest {
            continue;
        }
        let Some(data) = read(&zip, e, MAX_METADATA, limits)? else {
            continue;
        };
        if is_pom {
            if let Some(p) = pom_properties(&data, location) {
                out.push(p);
                found_pom = true;
            }
        } else {
            manifest = Some(data);
        }
    }
    if !found_pom {
        if let Some(p) = manifest.and_then(|m| from_manifest(&m, location)) {
            out.push(p);
        }
    }
    for e in &zip.entries {
        let lower = e.name.to_ascii_lowercase();
        if !(lower.ends_with(".jar") || lower.ends_with(".war") || lower.ends_with(".ear")) {
            continue;
        }
        if depth + 1 > MAX_DEPTH {
            limits.depth_hit = true;
            return Ok(());
        }
        // A damaged nested archive loses only its own packages.
        let Ok(Some(inner)) = read(&zip, e, limits.budget_left, limits) else {
            continue;
        };
        let inner_location = format!("{location}!/{}", e.name);
        let _ = walk(&inner_location, &inner, depth + 1, limits, out);
    }
    Ok(())
}

/// Reads an entry within the remaining budget; exhausting the budget stops reading, not the walk.
/// Stored entries (Spring Boot's nested jars) are borrowed but count against the budget all the same,
/// so that central-directory entries aliasing one big entry cannot multiply the work.
fn read<'a>(
    zip: &Archive<'a>,
    e: &super::zip::Entry,
    limit: u64,
    limits: &mut Limits,
) -> Result<Option<Cow<'a, [u8]>>, String> {
    if limits.budget_left == 0 {
        limits.budget_hit = true;
        return Ok(None);
    }
    match zip.read(e, limit.min(limits.budget_left)) {
        Ok(Some(data)) => {
            limits.budget_left = limits.budget_left.saturating_sub(data.len() as u64);
            Ok(Some(data))
        }
        Ok(None) => Ok(None),
        Err(_) if limit >= limits.budget_left => {
            limits.budget_hit = true;
            limits.budget_left = 0;
            Ok(None)
        }
        // One unreadable metadata entry does not hide the rest of the archive.
        Err(_) => Ok(None),
    }
}

/// `key=value` (or `key: value`) lines; `#` and `!` start comments.
fn properties(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
            return None;
        }
        let i = l.find(['=', ':'])?;
        Some((l[..i].trim(), l[i + 1..].trim()))
    })
}

fn pom_properties(data: &[u8], location: &str) -> Option<Package> {
    let text = String::from_utf8_lossy(data);
    let (mut group, mut artifact, mut version) = (None, None, None);
    for (k, v) in properties(&text) {
        match k {
            "groupId" => group = group.or(Some(v.to_owned())),
            "artifactId" => artifact = artifact.or(Some(v.to_owned())),
            "version" => version = version.or(Some(v.to_owned())),
            _ => {}
        }
    }
    let (group, artifact, version) = (group?, artifact?, version?);
    if group.is_empty() || artifact.is_empty() || version.is_empty() {
        return None;
    }
    Some(package(
        Ecosystem::Maven,
        Some(&group),
        &artifact,
        &version,
        location,
    ))
}

/// Manifest main and per-entry attributes, first occurrence of each name winning; continuation lines
/// start with one space.
fn manifest_attributes(text: &str) -> Vec<(String, String)> {
    let mut attrs: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(last) = attrs.last_mut() {
                last.1.push_str(cont);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            attrs.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    attrs
}

/// A plausible Maven identifier: no spaces, no unexpanded `${...}` or `%key` placeholders.
fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn from_manifest(data: &[u8], location: &str) -> Option<Package> {
    let text = String::from_utf8_lossy(data);
    let attrs = manifest_attributes(&text);
    let get = |k: &str| {
        attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let mut version = [
        "Implementation-Version",
        "Bundle-Version",
        "Specification-Version",
    ]
    .iter()
    .find_map(|k| get(k))
    .and_then(|v| v.split_whitespace().next())
    .map(str::to_owned);
    let mut group = ["Implementation-Vendor-Id", "Extension-Name"]
        .iter()
        .filter_map(|k| get(k))
        .find(|v| valid_id(v))
        .map(str::to_owned);
    // Gradle-built Elasticsearch and others write `group#artifact;version` as the title.
    let mut artifact = None;
    if let Some((g, rest)) = get("Implementation-Title").and_then(|t| t.split_once('#')) {
        let (a, v) = rest.split_once(';').unwrap_or((rest, ""));
        if valid_id(g) && valid_id(a) {
            group = Some(g.to_owned());
            artifact = Some(a.to_owned());
            if version.is_none() && !v.is_empty() {
                version = Some(v.to_owned());
            }
        }
    }
    let mut from_symbolic_name = false;
    if artifact.is_none() {
        let bsn = get("Bundle-SymbolicName").map(|s| s.split(';').next().unwrap_or(s).trim());
        if let Some(b) = bsn.filter(|b| valid_id(b)) {
            artifact = Some(b.to_owned());
            from_symbolic_name = true;
        } else {
            artifact = ["Implementation-Title", "Bundle-Name", "Specification-Title"]
                .iter()
                .filter_map(|k| get(k))
                .find(|v| valid_id(v))
                .map(str::to_owned);
        }
    }
    let mut artifact = artifact?;
    let version = version?;
    match &group {
        // `org.apache.ivy` by vendor `org.apache` is artifact `ivy`.
        Some(g) if artifact.len() > g.len() + 1 && artifact.starts_with(&format!("{g}.")) => {
            artifact = artifact[g.len() + 1..].to_owned();
        }
        // An OSGi symbolic name `com.google.guava.failureaccess` is group and artifact in one.
        Some(g) if *g == artifact => {
            if let Some((gg, a)) = artifact.clone().rsplit_once('.') {
                group = Some(gg.to_owned());
                artifact = a.to_owned();
            }
        }
        None if from_symbolic_name => {
            if let Some((g, a)) = artifact.clone().rsplit_once('.') {
                group = Some(g.to_owned());
                artifact = a.to_owned();
            }
        }
        _ => {}
    }
    Some(package(
        Ecosystem::Maven,
        group.as_deref(),
        &artifact,
        &version,
        location,
    ))
}
