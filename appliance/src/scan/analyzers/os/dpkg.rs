//! dpkg's status database (deb-control(5) paragraphs), as in `/var/lib/dpkg/status`, distroless
//! `/var/lib/dpkg/status.d/<name>` and opkg's `status`.
//!
//! A paragraph is a run of `Field: value` lines ended by a blank line; a line starting with a space or tab
//! continues the previous field. Only `Package`, `Version`, `Architecture`, `Source` and `Status` matter
//! here. A package counts when the third word of its `Status` (the state, see dpkg-query(1)) is
//! `installed`: `install ok installed`, but also `deinstall ok installed` (marked for removal, still on
//! disk). Distroless status.d files carry no `Status`, so there a missing field means installed; in the
//! main status file it means the paragraph is not a package dpkg installed.

use super::{error, purl, AnalyzeError};
use crate::scan::package::{Ecosystem, Package};

const ANALYZER: &str = "dpkg";

/// Which file of the dpkg family is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavour {
    /// `/var/lib/dpkg/status`.
    Status,
    /// A file of `/var/lib/dpkg/status.d/`.
    StatusD,
    /// opkg's `status` (OpenWrt).
    Opkg,
}

#[derive(Default)]
struct Paragraph<'a> {
    any: bool,
    package: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    source: Option<&'a str>,
    status: Option<&'a str>,
}

pub(super) fn analyze(
    path: &str,
    bytes: &[u8],
    flavour: Flavour,
) -> Result<Vec<Package>, AnalyzeError> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut para = Paragraph::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            finish(std::mem::take(&mut para), path, flavour, &mut out);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if !para.any {
                return Err(error(
                    ANALYZER,
                    path,
                    format!("line {}: continuation line outside a paragraph", n + 1),
                ));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let field = line
            .split_once(':')
            .filter(|(k, _)| !k.is_empty() && !k.contains(char::is_whitespace));
        let Some((key, value)) = field else {
            return Err(error(
                ANALYZER,
                path,
                format!(
                    "line {}: expected 'Field: value', found '{}'",
                    n + 1,
                    clip(line)
                ),
            ));
        };
        para.any = true;
        let value = value.trim();
        let slot = match key.to_ascii_lowercase().as_str() {
            "package" => &mut para.package,
            "version" => &mut para.version,
            "architecture" => &mut para.arch,
            "source" => &mut para.source,
            "status" => &mut para.status,
            _ => continue,
        };
        *slot = Some(value);
    }
    finish(para, path, flavour, &mut out);
    Ok(out)
}

/// At most 40 characters of a hostile line, for an error message.
fn clip(line: &str) -> String {
    let mut s: String = line.chars().take(40).collect();
    if s.len() < line.len() {
        s.push_str("...");
    }
    s
}

fn installed(status: Option<&str>, flavour: Flavour) -> bool {
    match status {
        // Status: <want> <flag> <state>.
        Some(s) => s.split_whitespace().nth(2) == Some("installed"),
        None => flavour == Flavour::StatusD,
    }
}

fn finish(p: Paragraph<'_>, path: &str, flavour: Flavour, out: &mut Vec<Package>) {
    // Paragraphs without a name or a version cannot be matched against anything; dpkg itself would
    // refuse them, so they are skipped rather than failing the whole database.
    let (Some(name), Some(version)) = (p.package, p.version) else {
        return;
    };
    if name.is_empty() || version.is_empty() || !installed(p.status, flavour) {
        return;
    }
    // `Source: name` or `Source: name (version)` when the binary's version differs.
    let source = p
        .source
        .and_then(|s| s.split_whitespace().next())
        .filter(|s| *s != name);
    let arch = p.arch.filter(|a| !a.is_empty());
    let namespace = if flavour == Flavour::Opkg {
        "openwrt"
    } else {
        "debian"
    };
    out.push(Package {
        ecosystem: Ecosystem::Deb,
        name: name.to_owned(),
        version: version.to_owned(),
        purl: purl(
            Ecosystem::Deb.purl_type(),
            namespace,
            name,
            version,
            &[
                ("arch", arch.unwrap_or("")),
                ("upstream", source.unwrap_or("")),
            ],
        ),
        source: source.map(str::to_owned),
        license: None,
        arch: arch.map(str::to_owned),
        path: path.to_owned(),
        layer: String::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_with_version_and_status() {
        let db = b"Package: util-linux-extra\nStatus: install ok installed\nArchitecture: amd64\n\
Source: util-linux (2.38.1-5)\nVersion: 2.38.1-5+b1\nDescription: x\n more\n .\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n";
        let p = analyze("/var/lib/dpkg/status", db, Flavour::Status).unwrap_or_default();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].source.as_deref(), Some("util-linux"));
        assert_eq!(
            p[0].purl,
            "pkg:deb/debian/util-linux-extra@2.38.1-5%2Bb1?arch=amd64&upstream=util-linux"
        );
    }

    #[test]
    fn crlf_and_missing_status() {
        let db = b"Package: a\r\nVersion: 1\r\n\r\nPackage: b\r\nVersion: 2\r\n";
        assert_eq!(analyze("/x", db, Flavour::StatusD).map(|p| p.len()), Ok(2));
        assert_eq!(analyze("/x", db, Flavour::Status).map(|p| p.len()), Ok(0));
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let e = analyze("/var/lib/dpkg/status", b"asdf\n\nyolo\n", Flavour::Status);
        assert!(
            matches!(e, Err(ref e) if e.reason.starts_with("line 1:") && e.path == "/var/lib/dpkg/status")
        );
    }
}
