//! What the scanner finds: packages with a purl and the file evidence they came from.

use serde::{Deserialize, Serialize};

/// The kind of package database or artifact a package was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Ecosystem {
    /// Debian / Ubuntu dpkg.
    Deb,
    /// Alpine / Wolfi apk.
    Apk,
    /// RPM (SQLite, BerkeleyDB or NDB rpmdb).
    Rpm,
    /// npm.
    Npm,
    /// Python (dist-info, egg-info).
    Pypi,
    /// Rust crates (Cargo.lock, cargo-auditable).
    Cargo,
    /// Go modules (binaries' build info).
    Golang,
    /// Java (Maven coordinates from jars).
    Maven,
}

impl Ecosystem {
    /// The purl type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Cargo => "cargo",
            Ecosystem::Golang => "golang",
            Ecosystem::Maven => "maven",
        }
    }
}

/// One package found in an image.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// Name as the database states it.
    pub name: String,
    /// Version as the database states it (dpkg `epoch:upstream-revision`, rpm `[epoch:]version-release`).
    pub version: String,
    /// Package URL, with distro qualifiers for OS packages.
    pub purl: String,
    /// Source package (dpkg `Source:`, rpm source rpm, apk origin), when it differs from the name.
    pub source: Option<String>,
    /// Declared license, as stated.
    pub license: Option<String>,
    /// Architecture, as stated.
    pub arch: Option<String>,
    /// The file it was read from, absolute within the image (`/var/lib/dpkg/status`).
    pub path: String,
    /// The layer whose file it was read from (OCI digest); filled in by the layer walker.
    pub layer: String,
}

/// The distribution an image is based on, from `/etc/os-release` (or `/usr/lib/os-release`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID` (`debian`, `alpine`, `rhel`...).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.10.4`).
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`bookworm`).
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

impl OsRelease {
    /// The purl `distro` qualifier (`debian-12`, `alpine-3.10.4`).
    pub fn distro_qualifier(&self) -> Option<String> {
        self.version_id.as_ref().map(|v| format!("{}-{v}", self.id))
    }
}
