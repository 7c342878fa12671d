//! rpm's NDB store (`Packages.db`, lib/backend/ndb/rpmpkg.c), little-endian throughout.
//!
//! The file starts with `slotnpages` pages of 4096 bytes of slots. The first 32 bytes are the database
//! header (`RpmP`, version 0, generation, `slotnpages`, next package index); after it come 16-byte slots
//! (`Slot`, package index, block offset, block count), a zero package index marking a free slot. A slot
//! points at a blob in 16-byte blocks: a 16-byte blob header (`BlbS`, package index, generation, blob
//! length), the header blob, and a 12-byte trailer.

use std::borrow::Cow;

use super::Blobs;

const PAGE: usize = 4096;
const BLOCK: usize = 16;
const DB_HEADER: usize = 32;
const BLOB_HEADER: usize = 16;
const BLOB_TRAILER: usize = 12;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn size(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

pub(super) fn blobs(b: &[u8]) -> Result<Blobs<'_>, String> {
    if b.len() < DB_HEADER {
        return Err(format!("{} bytes is too short for an ndb header", b.len()));
    }
    if b.get(0..4) != Some(b"RpmP") {
        return Err("not an ndb database (no 'RpmP' magic)".into());
    }
    match le32(b, 4) {
        Some(0) => {}
        v => return Err(format!("unsupported ndb version {}", v.unwrap_or_default())),
    }
    let slot_pages = size(le32(b, 12).unwrap_or_default());
    let slots_end = slot_pages
        .checked_mul(PAGE)
        .filter(|e| (1..=b.len()).contains(e))
        .ok_or_else(|| format!("{slot_pages} slot pages do not fit a {}-byte file", b.len()))?;

    let mut out = Vec::new();
    // Blobs never overlap in a sound database, so their lengths sum to less than the file: more means
    // slots pointing at the same bytes, refused to bound the work.
    let mut total = 0usize;
    for at in (DB_HEADER..slots_end).step_by(BLOCK) {
        if b.get(at..at + 4) != Some(b"Slot") {
            continue;
        }
        let (pkgidx, blkoff, blkcnt) = (
            le32(b, at + 4).unwrap_or_default(),
            size(le32(b, at + 8).unwrap_or_default()),
            size(le32(b, at + 12).unwrap_or_default()),
        );
        if pkgidx == 0 {
            continue;
        }
        let start = blkoff.checked_mul(BLOCK);
        let span = blkcnt.checked_mul(BLOCK);
        let Some((start, span)) = start.zip(span).filter(|(s, n)| {
            *s >= slots_end && s.checked_add(*n).is_some_and(|end| end <= b.len())
        }) else {
            return Err(format!(
                "package {pkgidx}: blob at block {blkoff} (+{blkcnt}) lies outside the file"
            ));
        };
        if b.get(start..start + 4) != Some(b"BlbS") || le32(b, start + 4) != Some(pkgidx) {
            return Err(format!(
                "package {pkgidx}: no blob header at block {blkoff}"
            ));
        }
        let len = size(le32(b, start + 12).unwrap_or_default());
        if len.saturating_add(BLOB_HEADER + BLOB_TRAILER) > span {
            return Err(format!(
                "package {pkgidx}: blob length {len} exceeds its {span}-byte extent"
            ));
        }
        total = total.saturating_add(len);
        if total > b.len() {
            return Err("blobs overlap".into());
        }
        let data = b
            .get(start + BLOB_HEADER..start + BLOB_HEADER + len)
            .ok_or_else(|| format!("package {pkgidx}: blob is truncated"))?;
        out.push(Cow::Borrowed(data));
    }
    Ok(out)
}
