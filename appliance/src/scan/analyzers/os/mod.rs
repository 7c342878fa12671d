//! OS package databases: dpkg (`status`, `status.d/*`, opkg `status`), apk (`installed`), rpm (SQLite,
//! BerkeleyDB hash and NDB rpmdbs).
//!
//! Every parser here is a pure function of the file's path and bytes. They index with checked slices
//! only, bound every loop by the input's size, and refuse a malformed database with an [`AnalyzeError`]
//! that names the file and the problem.
//!
//! Purl namespaces are the family defaults (`debian`, `alpine`, `redhat`): a database alone does not say
//! which distribution wrote it. The layer walker knows the image's os-release and may rewrite the
//! namespace (`ubuntu`, `wolfi`, `rocky`...) and adds the `distro` qualifier (`analyzers::qualify`).

mod apk;
mod dpkg;
mod rpm;

use super::AnalyzeError;
use crate::scan::package::Package;

/// The database kinds this module reads, chosen by path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Db {
    /// `/var/lib/dpkg/status`.
    DpkgStatus,
    /// A file of `/var/lib/dpkg/status.d/` (distroless): paragraphs without `Status` are installed.
    DpkgStatusD,
    /// opkg's `status` (OpenWrt): dpkg's format.
    Opkg,
    /// `/lib/apk/db/installed`.
    Apk,
    /// `rpmdb.sqlite`.
    RpmSqlite,
    /// `Packages` (BerkeleyDB hash).
    RpmBdb,
    /// `Packages.db` (NDB).
    RpmNdb,
}

/// Where rpm keeps its database: the classic place and `/usr/lib/sysimage/rpm` (Fedora 36+, SUSE).
const RPM_DIRS: [&str; 2] = ["var/lib/rpm/", "usr/lib/sysimage/rpm/"];

fn classify(path: &str) -> Option<Db> {
    // Paths are absolute within the image; tolerate a missing leading slash or a leading `./`.
    let p = path.trim_start_matches("./").trim_start_matches('/');
    match p {
        "var/lib/dpkg/status" => return Some(Db::DpkgStatus),
        "var/lib/opkg/status" | "usr/lib/opkg/status" => return Some(Db::Opkg),
        "lib/apk/db/installed" | "usr/lib/apk/db/installed" => return Some(Db::Apk),
        _ => {}
    }
    if let Some(file) = p.strip_prefix("var/lib/dpkg/status.d/") {
        // Distroless writes one file per package and a `<name>.md5sums` beside it.
        if !file.is_empty() && !file.contains('/') && !file.ends_with(".md5sums") {
            return Some(Db::DpkgStatusD);
        }
        return None;
    }
    RPM_DIRS.iter().find_map(|dir| match p.strip_prefix(dir)? {
        "rpmdb.sqlite" => Some(Db::RpmSqlite),
        "Packages" => Some(Db::RpmBdb),
        "Packages.db" => Some(Db::RpmNdb),
        _ => None,
    })
}

/// Whether an OS analyser wants the file at this absolute path.
pub fn wants(path: &str) -> bool {
    classify(path).is_some()
}

/// Runs the OS analyser for the file, if one wants it. Purls get their `distro` qualifier later
/// (`analyzers::qualify`).
pub fn analyze(path: &str, bytes: &[u8]) -> Option<Result<Vec<Package>, AnalyzeError>> {
    Some(match classify(path)? {
        Db::DpkgStatus => dpkg::analyze(path, bytes, dpkg::Flavour::Status),
        Db::DpkgStatusD => dpkg::analyze(path, bytes, dpkg::Flavour::StatusD),
        Db::Opkg => dpkg::analyze(path, bytes, dpkg::Flavour::Opkg),
        Db::Apk => apk::analyze(path, bytes),
        Db::RpmSqlite => rpm::analyze(path, bytes, rpm::Store::Sqlite),
        Db::RpmBdb => rpm::analyze(path, bytes, rpm::Store::BerkeleyDb),
        Db::RpmNdb => rpm::analyze(path, bytes, rpm::Store::Ndb),
    })
}

fn error(analyzer: &'static str, path: &str, reason: impl Into<String>) -> AnalyzeError {
    AnalyzeError {
        analyzer,
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Percent-encodes a purl component: unreserved characters stay, `:` too (the purl spec allows it
/// unencoded in versions, where dpkg epochs put it); everything else, `+` included, is encoded.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `pkg:type/namespace/name@version?k=v&...`, qualifiers sorted by key as the purl spec asks,
/// empty values left out.
fn purl(
    ty: &str,
    namespace: &str,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut q: Vec<&(&str, &str)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    q.sort_by_key(|(k, _)| *k);
    let mut s = format!(
        "pkg:{ty}/{}/{}@{}",
        encode(namespace),
        encode(name),
        encode(version)
    );
    for (i, (k, v)) in q.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&encode(v));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(classify("/var/lib/dpkg/status"), Some(Db::DpkgStatus));
        assert_eq!(
            classify("/var/lib/dpkg/status.d/base"),
            Some(Db::DpkgStatusD)
        );
        assert_eq!(classify("/var/lib/dpkg/status.d/base.md5sums"), None);
        assert_eq!(classify("/var/lib/dpkg/status.d"), None);
        assert_eq!(classify("/var/lib/dpkg/status.d/a/b"), None);
        assert_eq!(classify("/lib/apk/db/installed"), Some(Db::Apk));
        assert_eq!(classify("/var/lib/rpm/Packages"), Some(Db::RpmBdb));
        assert_eq!(
            classify("/usr/lib/sysimage/rpm/Packages.db"),
            Some(Db::RpmNdb)
        );
        assert_eq!(classify("/var/lib/rpm/rpmdb.sqlite"), Some(Db::RpmSqlite));
        assert_eq!(classify("/var/lib/rpm/Name"), None);
        assert_eq!(classify("/etc/passwd"), None);
    }

    #[test]
    fn purl_encoding_and_qualifier_order() {
        assert_eq!(
            purl(
                "deb",
                "debian",
                "libc6",
                "2.31-13+deb11u5",
                &[("upstream", "glibc"), ("arch", "amd64"), ("epoch", "")]
            ),
            "pkg:deb/debian/libc6@2.31-13%2Bdeb11u5?arch=amd64&upstream=glibc"
        );
        assert_eq!(
            purl("deb", "debian", "attr", "1:2.5.1-4", &[]),
            "pkg:deb/debian/attr@1:2.5.1-4"
        );
    }
}
