//! A read-only zip reader over a byte slice, for jars: the end-of-central-directory record (ZIP64
//! included), the central directory, and stored or deflated entries inflated with `flate2` under a
//! caller-supplied byte budget. Archives with data prepended (Spring Boot "fully executable" jars start
//! with a shell script) are read by measuring the offset between where the central directory claims to
//! be and where it is.

use std::borrow::Cow;
use std::io::Read;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
/// Fixed part of the EOCD record plus the longest comment.
const EOCD_SEARCH: usize = 22 + 0xffff;
/// More entries than any real jar has; bounds work on a hostile central directory.
const MAX_ENTRIES: u64 = 1 << 20;

/// One central-directory entry.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    method: u16,
    encrypted: bool,
    compressed_size: u64,
    uncompressed_size: u64,
    local_offset: u64,
}

/// An opened archive: its bytes, the entries and the offset of the archive within the bytes.
#[derive(Debug)]
pub(super) struct Archive<'a> {
    bytes: &'a [u8],
    shift: u64,
    pub(super) entries: Vec<Entry>,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn to_usize(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| "zip offset out of range".to_owned())
}

impl<'a> Archive<'a> {
    /// Reads the central directory.
    pub(super) fn open(bytes: &'a [u8]) -> Result<Self, String> {
        let floor = bytes.len().saturating_sub(EOCD_SEARCH);
        let eocd = (floor..bytes.len().saturating_sub(21))
            .rev()
            .find(|&i| u32_at(bytes, i) == Some(EOCD_SIG))
            .ok_or("not a zip archive (no end of central directory)")?;
        let trunc = || "truncated end of central directory".to_owned();
        let mut count = u64::from(u16_at(bytes, eocd + 10).ok_or_else(trunc)?);
        let mut cd_size = u64::from(u32_at(bytes, eocd + 12).ok_or_else(trunc)?);
        let mut cd_offset = u64::from(u32_at(bytes, eocd + 16).ok_or_else(trunc)?);
        // Where the directory really ends: just before the EOCD, or the ZIP64 records.
        let mut cd_end = eocd as u64;
        if eocd >= 20 && u32_at(bytes, eocd - 20) == Some(EOCD64_LOCATOR_SIG) {
            let claimed = u64_at(bytes, eocd - 12).ok_or_else(trunc)?;
            // The ZIP64 record sits right before its locator (it is 56 bytes without extensible data);
            // search a little back from the locator rather than trusting a shifted offset.
            let loc = eocd - 20;
            let rec = (loc.saturating_sub(56 + 4096)..=loc.saturating_sub(56))
                .rev()
                .find(|&i| u32_at(bytes, i) == Some(EOCD64_SIG))
                .or_else(|| usize::try_from(claimed).ok())
                .ok_or("bad zip64 end of central directory")?;
            if u32_at(bytes, rec) != Some(EOCD64_SIG) {
                return Err("bad zip64 end of central directory".into());
            }
            count = u64_at(bytes, rec + 32).ok_or_else(trunc)?;
            cd_size = u64_at(bytes, rec + 40).ok_or_else(trunc)?;
            cd_offset = u64_at(bytes, rec + 48).ok_or_else(trunc)?;
            cd_end = rec as u64;
        }
        if count > MAX_ENTRIES {
            return Err(format!("zip claims {count} entries"));
        }
        let cd_start = cd_end
            .checked_sub(cd_size)
            .ok_or("central directory larger than the file")?;
        let shift = cd_start
            .checked_sub(cd_offset)
            .ok_or("central directory offset past its end")?;
        let cd = bytes
            .get(to_usize(cd_start)?..to_usize(cd_end)?)
            .ok_or("central directory out of bounds")?;
        let mut entries = Vec::new();
        let mut p = 0usize;
        for _ in 0..count {
            if u32_at(cd, p) != Some(CENTRAL_SIG) {
                return Err("bad central directory entry".into());
            }
            let h = |off: usize| u16_at(cd, p + off).ok_or("truncated central directory");
            let w = |off: usize| u32_at(cd, p + off).ok_or("truncated central directory");
            let flags = h(8)?;
            let method = h(10)?;
            let mut csize = u64::from(w(20)?);
            let mut usize_ = u64::from(w(24)?);
            let nlen = usize::from(h(28)?);
            let xlen = usize::from(h(30)?);
            let clen = usize::from(h(32)?);
            let mut local = u64::from(w(42)?);
            let name_start = p + 46;
            let name = cd
                .get(name_start..name_start + nlen)
                .ok_or("truncated entry name")?;
            let extra = cd
                .get(name_start + nlen..name_start + nlen + xlen)
                .ok_or("truncated entry extra field")?;
            zip64_extra(extra, &mut usize_, &mut csize, &mut local);
            entries.push(Entry {
                name: String::from_utf8_lossy(name).into_owned(),
                method,
                encrypted: flags & 1 != 0,
                compressed_size: csize,
                uncompressed_size: usize_,
                local_offset: local,
            });
            p = name_start + nlen + xlen + clen;
        }
        Ok(Archive {
            bytes,
            shift,
            entries,
        })
    }

    /// The entry's contents, at most `limit` bytes; a stored entry is borrowed, not copied. `Ok(None)`
    /// when the entry cannot be read here (encrypted, or compressed with something other than deflate),
    /// `Err` when it is damaged or larger than `limit`.
    pub(super) fn read(&self, e: &Entry, limit: u64) -> Result<Option<Cow<'a, [u8]>>, String> {
        if e.encrypted || !matches!(e.method, 0 | 8) {
            return Ok(None);
        }
        let off = to_usize(
            e.local_offset
                .checked_add(self.shift)
                .ok_or("bad local header offset")?,
        )?;
        if u32_at(self.bytes, off) != Some(LOCAL_SIG) {
            return Err(format!("bad local header for {}", e.name));
        }
        let nlen = usize::from(u16_at(self.bytes, off + 26).ok_or("truncated local header")?);
        let xlen = usize::from(u16_at(self.bytes, off + 28).ok_or("truncated local header")?);
        let start = off + 30 + nlen + xlen;
        let end = start
            .checked_add(to_usize(e.compressed_size)?)
            .ok_or("entry size out of range")?;
        let data = self
            .bytes
            .get(start..end)
            .ok_or_else(|| format!("entry {} runs past the end of the archive", e.name))?;
        if e.method == 0 {
            if data.len() as u64 > limit {
                return Err(format!("entry {} exceeds the size limit", e.name));
            }
            return Ok(Some(Cow::Borrowed(data)));
        }
        // The declared size is only a hint for the allocation: the inflater is bounded by `limit`.
        let mut out = Vec::with_capacity(to_usize(e.uncompressed_size.min(limit).min(1 << 20))?);
        flate2::read::DeflateDecoder::new(data)
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|err| format!("entry {}: bad deflate data: {err}", e.name))?;
        if out.len() as u64 > limit {
            return Err(format!("entry {} exceeds the size limit", e.name));
        }
        Ok(Some(Cow::Owned(out)))
    }
}

/// Applies a ZIP64 extended-information extra field (id 1): the 64-bit values follow in order for each
/// 32-bit field that is saturated.
fn zip64_extra(extra: &[u8], usize_: &mut u64, csize: &mut u64, local: &mut u64) {
    let mut p = 0;
    while let (Some(id), Some(len)) = (u16_at(extra, p), u16_at(extra, p + 2)) {
        let body = extra
            .get(p + 4..p + 4 + usize::from(len))
            .unwrap_or_default();
        if id == 1 {
            let mut q = 0;
            for field in [usize_, csize, local] {
                if *field == u64::from(u32::MAX) {
                    if let Some(v) = u64_at(body, q) {
                        *field = v;
                        q += 8;
                    }
                }
            }
            return;
        }
        p += 4 + usize::from(len);
    }
}
