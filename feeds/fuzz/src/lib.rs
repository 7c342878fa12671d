//! Helpers shared by the fuzz targets: a fixed trust policy and scratch files for the readers that take
//! paths rather than bytes.

use crypto_profiles::dsse::TrustPolicy;
use crypto_profiles::{PrivateKey, Profile, ProfileId};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::OnceLock;

/// A FIPS policy trusting one key generated at start-up: fuzz inputs cannot carry a valid signature, so
/// this only exercises everything up to and including signature checking.
pub fn trust_policy() -> &'static TrustPolicy {
    static POLICY: OnceLock<TrustPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let profile = Profile::new(ProfileId::Fips).expect("the FIPS profile is always available");
        let key = PrivateKey::generate(&profile, None).expect("key generation works");
        TrustPolicy::new(profile, vec![key.public_key().clone()], 1).expect("one key, threshold 1")
    })
}

/// Writes `data` to a fresh temporary file, removed when `f` returns.
pub fn with_file<T>(data: &[u8], f: impl FnOnce(&Path) -> T) -> T {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(data).expect("write temporary file");
    file.flush().expect("flush temporary file");
    f(file.path())
}

/// Extracts the regular files of a tar archive into a fresh temporary directory, removed when `f`
/// returns. Entries that are not regular files, or whose path is absolute or climbs out with `..`, are
/// skipped: the point is to fuzz the reader of the directory, not to unpack archives safely.
/// Returns `None` when `data` is not a readable tar archive.
pub fn with_tar_dir<T>(data: &[u8], f: impl FnOnce(&Path) -> T) -> Option<T> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut archive = tar::Archive::new(data);
    let mut written = 0usize;
    for entry in archive.entries().ok()? {
        let Ok(mut entry) = entry else { break };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let Ok(path) = entry.path().map(|p| p.into_owned()) else {
            continue;
        };
        // Keep `./a/b` as `a/b`; skip anything absolute or with `..`.
        let mut clean = std::path::PathBuf::new();
        let mut plain = true;
        for c in path.components() {
            match c {
                std::path::Component::Normal(part) => clean.push(part),
                std::path::Component::CurDir => {}
                _ => plain = false,
            }
        }
        if !plain || clean.as_os_str().is_empty() || written >= 64 {
            continue;
        }
        let mut bytes = Vec::new();
        if entry.read_to_end(&mut bytes).is_err() {
            break;
        }
        let target = dir.path().join(&clean);
        if let Some(parent) = target.parent() {
            if std::fs::create_dir_all(parent).is_err() {
                continue;
            }
        }
        // A path may name an existing directory (`a` after `a/b`): skip it.
        if std::fs::write(&target, &bytes).is_ok() {
            written += 1;
        }
    }
    Some(f(dir.path()))
}
