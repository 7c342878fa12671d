//! npm: `package-lock.json` / `npm-shrinkwrap.json` (lockfile v1 `dependencies` tree; v2 and v3
//! `packages` map) and installed `node_modules/<name>/package.json` manifests.

use super::{error, package};
use crate::scan::analyzers::AnalyzeError;
use crate::scan::package::{Ecosystem, Package};
use serde_json::{Map, Value};

/// Whether `path` is the manifest of an installed package: directly in `node_modules/<name>/` or
/// `node_modules/@scope/<name>/`, not a `package.json` deeper inside a package's own files.
pub(super) fn is_installed_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let Some(i) = dir.rfind("/node_modules/") else {
        return false;
    };
    let rest = &dir[i + "/node_modules/".len()..];
    let segs: Vec<&str> = rest.split('/').collect();
    match segs.as_slice() {
        [name] => !name.is_empty() && !name.starts_with('.') && !name.starts_with('@'),
        [scope, name] => scope.len() > 1 && scope.starts_with('@') && !name.is_empty(),
        _ => false,
    }
}

fn parse(path: &str, analyzer: &'static str, bytes: &[u8]) -> Result<Value, AnalyzeError> {
    serde_json::from_slice(bytes).map_err(|e| error(analyzer, path, format!("bad JSON: {e}")))
}

/// An npm package; `name` may be scoped (`@babel/core`).
fn npm(name: &str, version: &str, path: &str, license: Option<String>) -> Package {
    let (ns, n) = match name.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => (Some(scope), n),
        _ => (None, name),
    };
    let mut p = package(Ecosystem::Npm, ns, n, version, path);
    p.license = license;
    p
}

/// `"license": "MIT"`, `"license": {"type": "MIT"}` or the old `"licenses": [{"type": ...}]`.
fn license(obj: &Map<String, Value>) -> Option<String> {
    let one = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    if let Some(l) = obj.get("license").and_then(one) {
        return Some(l);
    }
    let all: Vec<String> = obj
        .get("licenses")?
        .as_array()?
        .iter()
        .filter_map(one)
        .collect();
    (!all.is_empty()).then(|| all.join(" OR "))
}

/// The installed package a `package.json` describes; a manifest without both name and version (a
/// private workspace, a stub) yields nothing.
pub(super) fn installed(path: &str, bytes: &[u8]) -> Result<Vec<Package>, AnalyzeError> {
    let v = parse(path, "npm-package-json", bytes)?;
    let Some(obj) = v.as_object() else {
        return Ok(Vec::new());
    };
    let name = obj.get("name").and_then(Value::as_str).unwrap_or_default();
    let version = obj
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() || version.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![npm(name, version, path, license(obj))])
}

/// Every package a lockfile pins. Version 2 and 3 lockfiles are read from `packages` (the v1
/// `dependencies` tree that v2 repeats is ignored); links and local (`file:`) packages have no
/// registry version and are skipped.
pub(super) fn lockfile(path: &str, bytes: &[u8]) -> Result<Vec<Package>, AnalyzeError> {
    let v = parse(path, "npm-lockfile", bytes)?;
    let Some(obj) = v.as_object() else {
        return Err(error("npm-lockfile", path, "lockfile is not a JSON object"));
    };
    let mut out = Vec::new();
    if let Some(packages) = obj.get("packages").and_then(Value::as_object) {
        for (key, entry) in packages {
            let Some(e) = entry.as_object() else { continue };
            // Only installed packages: skips the root "" and workspace members ("packages/a").
            let Some(i) = key.rfind("node_modules/") else {
                continue;
            };
            if e.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let dir_name = &key[i + "node_modules/".len()..];
            // An alias (`"string-width-cjs": "npm:string-width@^4"`) names the real package here.
            let name = e.get("name").and_then(Value::as_str).unwrap_or(dir_name);
            let Some(version) = e.get("version").and_then(Value::as_str) else {
                continue;
            };
            if let Some(version) = registry_version(version) {
                out.push(npm(name, &version, path, license(e)));
            }
        }
    } else if let Some(deps) = obj.get("dependencies").and_then(Value::as_object) {
        v1_tree(deps, path, &mut out);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The v1 `dependencies` tree: each entry may nest its own `dependencies`. Depth is bounded by the JSON
/// parser's recursion limit.
fn v1_tree(deps: &Map<String, Value>, path: &str, out: &mut Vec<Package>) {
    for (key, entry) in deps {
        let Some(e) = entry.as_object() else { continue };
        if let Some(version) = e.get("version").and_then(Value::as_str) {
            // `"version": "npm:@babel/code-frame@7.0.0"` is an alias for another package.
            let aliased = version.strip_prefix("npm:").and_then(|a| {
                a.get(1..)
                    .and_then(|s| s.find('@'))
                    .map(|at| a.split_at(at + 1))
            });
            match aliased {
                Some((name, v)) => out.push(npm(name, &v[1..], path, None)),
                None => {
                    if let Some(version) = registry_version(version) {
                        out.push(npm(key, &version, path, None));
                    }
                }
            }
        }
        if let Some(nested) = e.get("dependencies").and_then(Value::as_object) {
            v1_tree(nested, path, out);
        }
    }
}

/// The version to report: semver as written, a git dependency's commit, nothing for local paths.
fn registry_version(v: &str) -> Option<String> {
    if v.is_empty() || v.starts_with("file:") || v.starts_with("link:") {
        return None;
    }
    let git = ["git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:"];
    if git.iter().any(|p| v.starts_with(p)) {
        return v
            .rsplit_once('#')
            .map(|(_, commit)| commit.to_owned())
            .filter(|c| !c.is_empty());
    }
    Some(v.to_owned())
}
