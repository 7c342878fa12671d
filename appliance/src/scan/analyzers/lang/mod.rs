//! Language ecosystems: npm, Python, Cargo (lockfiles and cargo-auditable binaries), Go binaries' build
//! info, Java jars.

use super::AnalyzeError;
use crate::scan::package::{OsRelease, Package};

/// Whether a language analyser wants the file at this absolute path, given its first bytes.
pub fn wants(path: &str, head: &[u8]) -> bool {
    let _ = (path, head);
    false
}

/// Runs the language analysers for the file, if one wants it.
pub fn analyze(
    path: &str,
    bytes: &[u8],
    os: Option<&OsRelease>,
) -> Option<Result<Vec<Package>, AnalyzeError>> {
    let _ = (path, bytes, os);
    None
}
