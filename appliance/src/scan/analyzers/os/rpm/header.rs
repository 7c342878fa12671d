//! An rpm header as the rpmdb stores it (no lead, no header magic): a big-endian `il` (index entry
//! count) and `dl` (data store length), `il` index entries of 16 bytes (tag, type, offset into the data
//! store, count), then the data store. Region tags (`HEADER_IMMUTABLE`) are ordinary entries here and
//! are simply not asked for.

/// rpm's own sanity limits (`hdrchkTags`, `hdrchkData`): more is a corrupt or hostile header.
const MAX_INDEX: u32 = 0xffff;
const MAX_DATA: u32 = 0x0fff_ffff;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The tags read here (rpmtag.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tag {
    Name = 1000,
    Version = 1001,
    Release = 1002,
    Epoch = 1003,
    License = 1014,
    Arch = 1022,
    SourceRpm = 1044,
}

/// A parsed header: the index and data store, bounds already checked against the blob.
pub(super) struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Header<'a> {
    pub(super) fn parse(blob: &'a [u8]) -> Result<Self, String> {
        let (Some(il), Some(dl)) = (be32(blob, 0), be32(blob, 4)) else {
            return Err(format!("{} bytes is too short for a header", blob.len()));
        };
        if il == 0 || il > MAX_INDEX {
            return Err(format!("index count {il} is out of range"));
        }
        if dl > MAX_DATA {
            return Err(format!("data length {dl} is out of range"));
        }
        // Both fit in usize on every target rpm runs on; the products cannot overflow (il < 2^16).
        let index_len = il as usize * 16;
        let need = 8 + index_len + dl as usize;
        if need > blob.len() {
            return Err(format!(
                "header needs {need} bytes but the blob has {}",
                blob.len()
            ));
        }
        Ok(Header {
            index: blob.get(8..8 + index_len).unwrap_or_default(),
            data: blob.get(8 + index_len..need).unwrap_or_default(),
        })
    }

    /// The (type, offset, count) of the last index entry for the tag (later entries override earlier
    /// ones, as rpm's dribble entries do).
    fn entry(&self, tag: Tag) -> Option<(u32, usize, u32)> {
        self.index
            .chunks_exact(16)
            .rev()
            .find(|e| be32(e, 0) == Some(tag as u32))
            .and_then(|e| {
                let offset = usize::try_from(be32(e, 8)?).ok()?;
                Some((be32(e, 4)?, offset, be32(e, 12)?))
            })
    }

    /// A string tag's value (the first element for arrays), NUL-terminated in the data store.
    pub(super) fn string(&self, tag: Tag) -> Option<String> {
        let (ty, offset, count) = self.entry(tag)?;
        if !matches!(ty, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) || count == 0 {
            return None;
        }
        let rest = self.data.get(offset..)?;
        let end = rest.iter().position(|&c| c == 0)?;
        Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
    }

    /// An INT32 tag's first value.
    pub(super) fn int32(&self, tag: Tag) -> Option<u32> {
        let (ty, offset, count) = self.entry(tag)?;
        if ty != TYPE_INT32 || count == 0 {
            return None;
        }
        be32(self.data, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with NAME "a" and EPOCH 7.
    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(2u32.to_be_bytes());
        b.extend(8u32.to_be_bytes());
        for (tag, ty, off) in [(1000u32, TYPE_STRING, 0u32), (1003, TYPE_INT32, 4)] {
            b.extend(tag.to_be_bytes());
            b.extend(ty.to_be_bytes());
            b.extend(off.to_be_bytes());
            b.extend(1u32.to_be_bytes());
        }
        b.extend(b"a\0\0\0");
        b.extend(7u32.to_be_bytes());
        b
    }

    #[test]
    fn reads_string_and_int() {
        let blob = sample();
        let h = Header::parse(&blob).ok();
        assert_eq!(
            h.as_ref().and_then(|h| h.string(Tag::Name)).as_deref(),
            Some("a")
        );
        assert_eq!(h.as_ref().and_then(|h| h.int32(Tag::Epoch)), Some(7));
        assert_eq!(h.as_ref().and_then(|h| h.string(Tag::Arch)), None);
        assert!(Header::parse(&blob[..blob.len() - 1]).is_err());
    }
}
