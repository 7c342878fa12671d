//! The BerkeleyDB hash database rpm used before 4.16 (`Packages`).
//!
//! Page 0 is the hash metadata page: magic `0x061561` at offset 12 (its byte order gives the file's),
//! page size at 20, encryption algorithm at 24, last page number at 32. Every other page has a 26-byte
//! header (next page at 16, entry count at 20, high free offset at 22, page type at 25). Hash pages
//! (types 2 and 13) hold an array of 16-bit item offsets after the header, alternating key and data
//! items; an item starts with its kind: 1 inline data, 3 off-page (4-byte page number at +4, 4-byte
//! total length at +8). Off-page values live in chains of overflow pages (type 7), each holding its
//! byte count in the high free offset field.
//!
//! rpm's values are header blobs keyed by a 4-byte instance number; key 0 holds a counter, not a header.
//! Pages are scanned in file order, as `rpm -qa` over a BerkeleyDB does; each overflow page may be used
//! once, which bounds the work by the file's size.

use std::borrow::Cow;

use super::Blobs;

const HASH_MAGIC: u32 = 0x0006_1561;
const BTREE_MAGIC: u32 = 0x0005_3162;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

struct Db<'a> {
    b: &'a [u8],
    big_endian: bool,
    page_size: usize,
    pages: usize,
}

impl<'a> Db<'a> {
    fn u16(&self, p: &[u8], at: usize) -> Option<usize> {
        let s = p.get(at..at.checked_add(2)?)?;
        let a = [s[0], s[1]];
        Some(usize::from(if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }))
    }

    fn u32(&self, p: &[u8], at: usize) -> Option<u32> {
        let s = p.get(at..at.checked_add(4)?)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    fn page(&self, n: usize) -> Option<&'a [u8]> {
        let start = n.checked_mul(self.page_size)?;
        self.b.get(start..start.checked_add(self.page_size)?)
    }

    /// Reassembles an off-page value of `len` bytes starting at overflow page `first`.
    fn overflow(&self, used: &mut [bool], first: u32, len: usize) -> Result<Vec<u8>, String> {
        if len > self.b.len() {
            return Err(format!("off-page value of {len} bytes exceeds the file"));
        }
        let mut out = Vec::with_capacity(len);
        let mut next = usize::try_from(first).unwrap_or(usize::MAX);
        while out.len() < len {
            if next == 0 || next >= self.pages {
                return Err(format!("overflow chain reaches invalid page {next}"));
            }
            match used.get_mut(next) {
                Some(u) if !*u => *u = true,
                _ => return Err(format!("overflow page {next} is used twice")),
            }
            let p = self
                .page(next)
                .ok_or_else(|| format!("page {next} is outside the file"))?;
            if p.get(25) != Some(&P_OVERFLOW) {
                return Err(format!("page {next} is not an overflow page"));
            }
            let here = self.u16(p, 22).unwrap_or_default();
            let chunk = p
                .get(PAGE_HEADER..PAGE_HEADER + here)
                .ok_or_else(|| format!("overflow page {next} claims {here} bytes"))?;
            if chunk.is_empty() {
                return Err(format!("overflow page {next} is empty"));
            }
            out.extend_from_slice(chunk);
            next = usize::try_from(self.u32(p, 16).unwrap_or_default()).unwrap_or(usize::MAX);
        }
        if out.len() != len {
            return Err(format!(
                "off-page value is {} bytes, its item says {len}",
                out.len()
            ));
        }
        Ok(out)
    }
}

pub(super) fn blobs(b: &[u8]) -> Result<Blobs<'_>, String> {
    if b.len() < 512 {
        return Err(format!("{} bytes is too short for a berkeley db", b.len()));
    }
    let magic = [b[12], b[13], b[14], b[15]];
    let big_endian = if u32::from_le_bytes(magic) == HASH_MAGIC {
        false
    } else if u32::from_be_bytes(magic) == HASH_MAGIC {
        true
    } else if [u32::from_le_bytes(magic), u32::from_be_bytes(magic)].contains(&BTREE_MAGIC) {
        return Err("berkeley db btree, not the hash database rpm writes".into());
    } else {
        return Err("not a berkeley db hash database (bad magic)".into());
    };
    let mut db = Db {
        b,
        big_endian,
        page_size: 0,
        pages: 0,
    };
    let page_size = db
        .u32(b, 20)
        .and_then(|s| usize::try_from(s).ok())
        .unwrap_or_default();
    if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
        return Err(format!("invalid page size {page_size}"));
    }
    if b[24] != 0 {
        return Err("encrypted database".into());
    }
    let last = usize::try_from(db.u32(b, 32).unwrap_or_default()).unwrap_or(usize::MAX);
    let pages = b.len() / page_size;
    if last >= pages {
        return Err(format!(
            "last page {last} lies beyond the file's {pages} pages (truncated)"
        ));
    }
    db.page_size = page_size;
    db.pages = pages;
    let mut used = vec![false; pages];

    let mut out = Vec::new();
    for n in 1..=last {
        let Some(p) = db.page(n) else { break };
        if !matches!(p[25], P_HASH | P_HASH_UNSORTED) {
            continue;
        }
        let entries = db.u16(p, 20).unwrap_or_default();
        let offset = |i: usize| {
            db.u16(p, PAGE_HEADER + 2 * i)
                .filter(|o| (PAGE_HEADER..page_size).contains(o))
                .ok_or_else(|| format!("page {n}: item {i} has a bad offset"))
        };
        // Items are packed from the end of the page downwards: item i ends where item i-1 starts.
        let item = |i: usize| -> Result<&[u8], String> {
            let start = offset(i)?;
            let end = if i == 0 { page_size } else { offset(i - 1)? };
            p.get(start..end)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("page {n}: item {i} overlaps its neighbour"))
        };
        for k in (0..entries.saturating_sub(1)).step_by(2) {
            let key = item(k)?;
            let data = item(k + 1)?;
            if key.first() == Some(&H_KEYDATA) && key.get(1..) == Some(&[0, 0, 0, 0][..]) {
                continue;
            }
            match data[0] {
                H_KEYDATA => out.push(Cow::Borrowed(&data[1..])),
                H_OFFPAGE => {
                    let (Some(first), Some(len)) = (db.u32(data, 4), db.u32(data, 8)) else {
                        return Err(format!("page {n}: off-page item {} is truncated", k + 1));
                    };
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    let blob = db
                        .overflow(&mut used, first, len)
                        .map_err(|e| format!("page {n}: {e}"))?;
                    out.push(Cow::Owned(blob));
                }
                // Duplicate sets are not something rpm writes.
                _ => {}
            }
        }
    }
    Ok(out)
}
