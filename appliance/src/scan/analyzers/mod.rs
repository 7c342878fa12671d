//! Analysers: each reads one kind of package database or artifact from a file of a layer.
//!
//! The layer walker offers every regular file to [`wants`]; a file some analyser wants is read (up to
//! [`MAX_FILE`] bytes) and handed to [`analyze`]. Executables are the exception ([`is_executable`]):
//! analysers read only their headers and a few sections, through [`RandomAccess`], so the walker keeps
//! one in memory only up to [`EXECUTABLE_IN_MEMORY`] bytes and analyses a larger one from a temporary
//! copy on disk ([`analyze_executable`]). Analysers are pure functions of the file's path and bytes
//! (plus the image's OS release for purl qualifiers): no I/O besides those reads, no panics on input,
//! errors returned with the path.

pub mod lang;
pub mod os;

use super::package::{OsRelease, Package};
use std::borrow::Cow;

/// Largest file an analyser reads (binaries for Go/cargo-auditable build info included).
pub const MAX_FILE: u64 = 256 << 20;

/// Largest executable the walker holds in memory; a larger one is copied to an unlinked temporary file
/// and read only where the analysers look.
pub const EXECUTABLE_IN_MEMORY: u64 = 4 << 20;

/// Random access to a file's bytes, in memory or on disk.
pub trait RandomAccess {
    /// The file's length.
    fn len(&self) -> u64;

    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `len` bytes at `off`, or `None` unless all of them are in the file.
    fn get(&self, off: u64, len: u64) -> Option<Cow<'_, [u8]>>;

    /// The bytes at `off`, up to `len` of them: fewer at the end of the file, none past it.
    fn get_clipped(&self, off: u64, len: u64) -> Cow<'_, [u8]> {
        let len = len.min(self.len().saturating_sub(off));
        self.get(off, len).unwrap_or(Cow::Borrowed(&[]))
    }
}

impl RandomAccess for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn get(&self, off: u64, len: u64) -> Option<Cow<'_, [u8]>> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        <[u8]>::get(self, start..end).map(Cow::Borrowed)
    }
}

/// A file on disk, read with positioned reads.
#[derive(Debug)]
pub struct FileAccess {
    file: std::fs::File,
    len: u64,
}

impl FileAccess {
    /// Reads `file`, `len` bytes long.
    pub fn new(file: std::fs::File, len: u64) -> Self {
        FileAccess { file, len }
    }
}

impl RandomAccess for FileAccess {
    fn len(&self) -> u64 {
        self.len
    }

    fn get(&self, off: u64, len: u64) -> Option<Cow<'_, [u8]>> {
        use std::os::unix::fs::FileExt;
        if off.checked_add(len)? > self.len {
            return None;
        }
        let mut buf = vec![0u8; usize::try_from(len).ok()?];
        self.file.read_exact_at(&mut buf, off).ok()?;
        Some(Cow::Owned(buf))
    }
}

/// An analyser failed on a file; the scan goes on and reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{analyzer}: {path}: {reason}")]
pub struct AnalyzeError {
    /// Which analyser.
    pub analyzer: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// What a file of a layer gives: packages and, for `/etc/os-release`, the OS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileResult {
    /// Packages found (their `layer` is filled in by the walker).
    pub packages: Vec<Package>,
    /// The OS release, from an os-release file.
    pub os: Option<OsRelease>,
}

/// Whether any analyser wants a file, by its absolute path within the image (`/var/lib/dpkg/status`) and
/// its first bytes (for executables: ELF magic). `head` holds up to 512 bytes.
pub fn wants(path: &str, head: &[u8]) -> bool {
    os_release_path(path) || os_db_path(path) || language_path(path, head)
}

fn os_release_path(path: &str) -> bool {
    matches!(
        path,
        "/etc/os-release" | "/usr/lib/os-release" | "/etc/alpine-release"
    )
}

fn os_db_path(path: &str) -> bool {
    os::wants(path)
}

fn language_path(path: &str, head: &[u8]) -> bool {
    lang::wants(path, head)
}

/// Whether a wanted file is an executable, analysed with [`analyze_executable`].
pub fn is_executable(path: &str, head: &[u8]) -> bool {
    lang::is_executable(path, head)
}

/// Analyses an executable through random access (see the module documentation); the same packages
/// and errors as [`analyze`] on its bytes.
pub fn analyze_executable(path: &str, src: &dyn RandomAccess) -> Result<FileResult, AnalyzeError> {
    Ok(FileResult {
        packages: lang::analyze_executable(path, src)?,
        os: None,
    })
}

/// Runs the analysers that want the file. `os` is the image's OS release when known (for purl
/// qualifiers); OS databases and os-release are analysed in any order and the walker fills qualifiers in
/// afterwards with [`qualify`].
pub fn analyze(
    path: &str,
    bytes: &[u8],
    os: Option<&OsRelease>,
) -> Result<FileResult, AnalyzeError> {
    if path == "/etc/os-release" || path == "/usr/lib/os-release" {
        return Ok(FileResult {
            packages: Vec::new(),
            os: Some(parse_os_release(bytes)),
        });
    }
    let mut packages = Vec::new();
    if let Some(r) = os::analyze(path, bytes) {
        packages.extend(r?);
    }
    if let Some(r) = lang::analyze(path, bytes, os) {
        packages.extend(r?);
    }
    Ok(FileResult { packages, os: None })
}

/// Adds the `distro` qualifier to OS packages' purls once the image's OS release is known.
pub fn qualify(packages: &mut [Package], os: Option<&OsRelease>) {
    let Some(q) = os.and_then(OsRelease::distro_qualifier) else {
        return;
    };
    for p in packages.iter_mut() {
        if matches!(
            p.ecosystem,
            super::package::Ecosystem::Deb
                | super::package::Ecosystem::Apk
                | super::package::Ecosystem::Rpm
        ) && !p.purl.contains("distro=")
        {
            let sep = if p.purl.contains('?') { '&' } else { '?' };
            p.purl = format!("{}{sep}distro={q}", p.purl);
        }
    }
}

/// Parses os-release (`KEY=value` lines, values optionally quoted).
pub fn parse_os_release(bytes: &[u8]) -> OsRelease {
    let text = String::from_utf8_lossy(bytes);
    let mut os = OsRelease::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_owned();
        match k.trim() {
            "ID" => os.id = v,
            "VERSION_ID" => os.version_id = Some(v),
            "VERSION_CODENAME" => os.codename = Some(v),
            "PRETTY_NAME" => os.pretty_name = Some(v),
            _ => {}
        }
    }
    os
}
