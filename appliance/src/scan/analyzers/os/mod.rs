//! OS package databases: dpkg (`status`, `status.d/*`), apk (`installed`), rpm (SQLite, BerkeleyDB, NDB).

use super::AnalyzeError;
use crate::scan::package::Package;

/// Whether an OS analyser wants the file at this absolute path.
pub fn wants(path: &str) -> bool {
    let _ = path;
    false
}

/// Runs the OS analyser for the file, if one wants it. Purls get their `distro` qualifier later
/// (`analyzers::qualify`).
pub fn analyze(path: &str, bytes: &[u8]) -> Option<Result<Vec<Package>, AnalyzeError>> {
    let _ = (path, bytes);
    None
}
