//! Language ecosystems: npm, Python, Cargo (lockfiles and cargo-auditable binaries), Go binaries' build
//! info, Java jars.
//!
//! Each analyser is a pure function of the file's path and bytes. Which one runs is decided by the path
//! (file names such as `package-lock.json`, `*.dist-info/METADATA`, `*.jar`) and, for executables, by the
//! ELF magic in the file's first bytes. Binaries are parsed only as far as their section headers and the
//! one section that carries build information; archives are bounded in nesting depth and inflated bytes.

mod cargo;
mod elf;
mod golang;
mod java;
mod npm;
mod python;
mod zip;

use super::{AnalyzeError, RandomAccess};
use crate::scan::package::{Ecosystem, OsRelease, Package};

/// The kind of file a language analyser reads, decided from the path and head alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `package-lock.json` / `npm-shrinkwrap.json` outside `node_modules`.
    NpmLock,
    /// `node_modules/<name>/package.json` or `node_modules/@scope/name/package.json`.
    NpmInstalled,
    /// `*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, `EGG-INFO/PKG-INFO` or an `*.egg-info` file.
    PythonMetadata,
    /// `Cargo.lock`.
    CargoLock,
    /// An executable-looking ELF file (Go build info, cargo-auditable).
    Elf,
    /// `*.jar`, `*.war`, `*.ear`.
    JavaArchive,
}

fn kind(path: &str, head: &[u8]) -> Option<Kind> {
    let base = path.rsplit('/').next().unwrap_or(path);
    if base == "package-lock.json" || base == "npm-shrinkwrap.json" {
        // Lockfiles shipped inside installed dependencies describe someone else's build, and the hidden
        // `node_modules/.package-lock.json` duplicates the installed `package.json` files.
        return (!path.contains("/node_modules/")).then_some(Kind::NpmLock);
    }
    if base == "package.json" {
        return npm::is_installed_manifest(path).then_some(Kind::NpmInstalled);
    }
    if python::is_metadata_path(path) {
        return Some(Kind::PythonMetadata);
    }
    if base == "Cargo.lock" {
        return Some(Kind::CargoLock);
    }
    let lower = base.to_ascii_lowercase();
    if lower.ends_with(".jar") || lower.ends_with(".war") || lower.ends_with(".ear") {
        return Some(Kind::JavaArchive);
    }
    if elf::is_executable_looking(base, head) {
        return Some(Kind::Elf);
    }
    None
}

/// Whether a language analyser wants the file at this absolute path, given its first bytes.
pub fn wants(path: &str, head: &[u8]) -> bool {
    kind(path, head).is_some()
}

/// Whether the file is an executable, read through [`analyze_executable`] where only its headers and
/// a few sections are looked at.
pub fn is_executable(path: &str, head: &[u8]) -> bool {
    kind(path, head) == Some(Kind::Elf)
}

/// Go build info and cargo-auditable dependencies of an executable, reading only its headers, section
/// names and the sections that carry them.
pub fn analyze_executable(
    path: &str,
    src: &dyn RandomAccess,
) -> Result<Vec<Package>, AnalyzeError> {
    binary(path, src)
}

/// Runs the language analysers for the file, if one wants it.
///
/// Language packages carry no distro qualifiers, so `os` is not used; it is part of the signature so
/// that all analysers are called alike.
pub fn analyze(
    path: &str,
    bytes: &[u8],
    os: Option<&OsRelease>,
) -> Option<Result<Vec<Package>, AnalyzeError>> {
    let _ = os;
    let head = &bytes[..bytes.len().min(512)];
    let result = match kind(path, head)? {
        Kind::NpmLock => npm::lockfile(path, bytes),
        Kind::NpmInstalled => npm::installed(path, bytes),
        Kind::PythonMetadata => python::metadata(path, bytes),
        Kind::CargoLock => cargo::lockfile(path, bytes),
        Kind::Elf => binary(path, &bytes),
        Kind::JavaArchive => java::archive(path, bytes),
    };
    Some(result)
}

/// An ELF file: Go build info and cargo-auditable dependency lists, whichever it carries.
fn binary(path: &str, src: &dyn RandomAccess) -> Result<Vec<Package>, AnalyzeError> {
    let elf = elf::Elf::parse(src).map_err(|reason| error("elf", path, reason))?;
    let mut packages = golang::binary(path, src, &elf)?;
    packages.extend(cargo::auditable(path, &elf)?);
    Ok(packages)
}

fn error(analyzer: &'static str, path: &str, reason: impl Into<String>) -> AnalyzeError {
    AnalyzeError {
        analyzer,
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// A language package with no arch; `namespace` segments are joined with `/` in the purl.
fn package(
    ecosystem: Ecosystem,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    path: &str,
) -> Package {
    Package {
        ecosystem,
        name: match namespace {
            Some(ns) if ecosystem == Ecosystem::Maven => format!("{ns}:{name}"),
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_owned(),
        },
        version: version.to_owned(),
        purl: purl(ecosystem, namespace, name, version),
        source: None,
        license: None,
        arch: None,
        path: path.to_owned(),
        layer: String::new(),
    }
}

/// `pkg:<type>/<namespace>/<name>@<version>`, each segment percent-encoded per the purl spec (so an npm
/// scope `@babel` becomes `%40babel`, a Go `+incompatible` becomes `%2Bincompatible`).
fn purl(ecosystem: Ecosystem, namespace: Option<&str>, name: &str, version: &str) -> String {
    let mut out = format!("pkg:{}/", ecosystem.purl_type());
    if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
        for seg in ns.split('/').filter(|s| !s.is_empty()) {
            encode_into(&mut out, seg);
            out.push('/');
        }
    }
    encode_into(&mut out, name);
    if !version.is_empty() {
        out.push('@');
        encode_into(&mut out, version);
    }
    out
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_encode_per_spec() {
        assert_eq!(
            purl(Ecosystem::Npm, Some("@babel"), "core", "7.0.0"),
            "pkg:npm/%40babel/core@7.0.0"
        );
        assert_eq!(
            purl(
                Ecosystem::Golang,
                Some("github.com/a"),
                "b",
                "v1.0.0+incompatible"
            ),
            "pkg:golang/github.com/a/b@v1.0.0%2Bincompatible"
        );
        assert_eq!(
            purl(Ecosystem::Cargo, None, "serde", "1.0.0"),
            "pkg:cargo/serde@1.0.0"
        );
    }

    #[test]
    fn wants_by_path_and_head() {
        let exec = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0";
        let dyn_ = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0";
        assert!(wants("/app/package-lock.json", b"{"));
        assert!(!wants("/app/node_modules/x/package-lock.json", b"{"));
        assert!(wants("/app/node_modules/@types/node/package.json", b"{"));
        assert!(wants(
            "/app/node_modules/a/node_modules/b/package.json",
            b"{"
        ));
        assert!(!wants("/app/node_modules/a/lib/package.json", b"{"));
        assert!(!wants("/app/package.json", b"{"));
        assert!(wants(
            "/usr/lib/python3/dist-packages/pip-22.2.2.dist-info/METADATA",
            b""
        ));
        assert!(wants(
            "/usr/lib/python3/site-packages/x-1.0.egg-info/PKG-INFO",
            b""
        ));
        assert!(wants("/src/Cargo.lock", b""));
        assert!(wants("/app/app.JAR", b"PK"));
        assert!(wants("/usr/local/bin/tool", exec));
        assert!(wants("/usr/local/bin/pie", dyn_));
        assert!(!wants("/usr/lib/libc.so.6", dyn_));
        assert!(!wants("/usr/local/bin/script", b"#!/bin/sh"));
    }
}
