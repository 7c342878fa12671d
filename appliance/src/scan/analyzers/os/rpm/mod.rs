//! rpm databases: the SQLite `rpmdb.sqlite` (rpm ≥ 4.16 default), the BerkeleyDB hash `Packages`
//! (older rpm) and the NDB `Packages.db` (SUSE). All three store one rpm header blob per installed
//! package; the stores differ only in how the blobs are laid out in the file, so each store module
//! yields blobs and [`header`] reads them.
//!
//! The `gpg-pubkey` pseudo-packages that `rpm --import` writes (a header per trusted signing key, with
//! no architecture and no files) are left out: they are keys, not software, and match no advisory.

mod bdb;
mod header;
mod ndb;
mod sqlite;

use std::borrow::Cow;

use super::{error, purl, AnalyzeError};
use crate::scan::package::{Ecosystem, Package};
use header::{Header, Tag};

const ANALYZER: &str = "rpm";

/// How the rpmdb file stores its header blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Store {
    /// `rpmdb.sqlite`: the `blob` column of the `Packages` table.
    Sqlite,
    /// `Packages`: the values of a BerkeleyDB hash database.
    BerkeleyDb,
    /// `Packages.db`: rpm's own NDB slot/blob file.
    Ndb,
}

/// The blobs of a store, in file order; owned where they had to be reassembled from overflow pages.
type Blobs<'a> = Vec<Cow<'a, [u8]>>;

pub(super) fn analyze(
    path: &str,
    bytes: &[u8],
    store: Store,
) -> Result<Vec<Package>, AnalyzeError> {
    let blobs = match store {
        Store::Sqlite => sqlite::blobs(bytes),
        Store::BerkeleyDb => bdb::blobs(bytes),
        Store::Ndb => ndb::blobs(bytes),
    }
    .map_err(|reason| error(ANALYZER, path, reason))?;
    let mut out = Vec::with_capacity(blobs.len());
    for (i, blob) in blobs.iter().enumerate() {
        let h = Header::parse(blob).map_err(|reason| {
            error(
                ANALYZER,
                path,
                format!("package header {}: {reason}", i + 1),
            )
        })?;
        if let Some(p) = package(&h, path).map_err(|reason| {
            error(
                ANALYZER,
                path,
                format!("package header {}: {reason}", i + 1),
            )
        })? {
            out.push(p);
        }
    }
    Ok(out)
}

/// The package a header describes, `None` for a `gpg-pubkey`.
fn package(h: &Header<'_>, path: &str) -> Result<Option<Package>, String> {
    let name = h.string(Tag::Name).ok_or("no NAME")?;
    if name == "gpg-pubkey" {
        return Ok(None);
    }
    let version = h.string(Tag::Version).ok_or("no VERSION")?;
    let release = h.string(Tag::Release).unwrap_or_default();
    // A missing epoch and epoch 0 compare equal in rpm; only a real epoch is shown.
    let epoch = h.int32(Tag::Epoch).filter(|e| *e != 0);
    let arch = h.string(Tag::Arch).filter(|a| !a.is_empty());
    let license = h.string(Tag::License).filter(|l| !l.is_empty());
    let source = h
        .string(Tag::SourceRpm)
        .and_then(|s| source_name(&s).map(str::to_owned))
        .filter(|s| *s != name);

    let vr = if release.is_empty() {
        version
    } else {
        format!("{version}-{release}")
    };
    let epoch_text = epoch.map(|e| e.to_string());
    let full = match &epoch_text {
        Some(e) => format!("{e}:{vr}"),
        None => vr.clone(),
    };
    // purl spec for rpm: the version is `version-release`, the epoch a qualifier.
    let purl = purl(
        Ecosystem::Rpm.purl_type(),
        "redhat",
        &name,
        &vr,
        &[
            ("arch", arch.as_deref().unwrap_or("")),
            ("epoch", epoch_text.as_deref().unwrap_or("")),
        ],
    );
    Ok(Some(Package {
        ecosystem: Ecosystem::Rpm,
        name,
        version: full,
        purl,
        source,
        license,
        arch,
        path: path.to_owned(),
        layer: String::new(),
    }))
}

/// `glibc-2.31-9.3.2.src.rpm` → `glibc`: the source package's name, without version, release and suffix.
fn source_name(srpm: &str) -> Option<&str> {
    let stem = srpm
        .strip_suffix(".src.rpm")
        .or_else(|| srpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = stem.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names() {
        assert_eq!(source_name("glibc-2.31-9.3.2.src.rpm"), Some("glibc"));
        assert_eq!(
            source_name("libgpg-error-1.29-1.8.src.rpm"),
            Some("libgpg-error")
        );
        assert_eq!(source_name("weird.rpm"), None);
        assert_eq!(source_name("-1-2.src.rpm"), None);
    }
}
