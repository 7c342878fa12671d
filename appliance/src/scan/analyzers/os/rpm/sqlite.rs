//! Just enough of the SQLite file format (sqlite.org/fileformat2.html) to read rpm's `rpmdb.sqlite`:
//! find the `Packages` table in the schema on page 1 and walk its table b-tree, reassembling each row's
//! payload from overflow pages, then take the `blob` column. Read-only, no journal or WAL replay: a
//! database whose last transaction still sits in `rpmdb.sqlite-wal` is read as of its last checkpoint.
//!
//! Every page is visited at most once over the whole read (b-tree or overflow), which bounds the work
//! by the file's size and turns page cycles into errors.

use std::borrow::Cow;

use super::Blobs;

const MAGIC: &[u8] = b"SQLite format 3\0";
const FILE_HEADER: usize = 100;
const LEAF_TABLE: u8 = 0x0d;
const INTERIOR_TABLE: u8 = 0x05;

fn be16(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_be_bytes([s[0], s[1]])))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// A SQLite varint at `at`: its value and length.
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let c = *b.get(at + i)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(c), 9));
        }
        v = (v << 7) | u64::from(c & 0x7f);
        if c & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

struct Db<'a> {
    b: &'a [u8],
    page_size: usize,
    usable: usize,
    seen: Vec<bool>,
}

impl<'a> Db<'a> {
    fn open(b: &'a [u8]) -> Result<Self, String> {
        if b.len() < FILE_HEADER || !b.starts_with(MAGIC) {
            return Err("not an sqlite database (no 'SQLite format 3' header)".into());
        }
        let page_size = match be16(b, 16) {
            Some(1) => 65536,
            Some(n) if n.is_power_of_two() && (512..=32768).contains(&n) => n,
            n => return Err(format!("invalid page size {}", n.unwrap_or_default())),
        };
        let reserved = usize::from(b.get(20).copied().unwrap_or_default());
        let usable = page_size - reserved;
        if usable < 480 {
            return Err(format!("usable page size {usable} is below 480"));
        }
        let pages = b.len() / page_size;
        Ok(Db {
            b,
            page_size,
            usable,
            seen: vec![false; pages + 1],
        })
    }

    /// Page `n` (1-based), marked as visited; a second visit is an error.
    fn take(&mut self, n: u32) -> Result<&'a [u8], String> {
        let i = usize::try_from(n).unwrap_or(usize::MAX);
        match self.seen.get_mut(i) {
            Some(seen) if i > 0 && !*seen => *seen = true,
            Some(_) if i > 0 => return Err(format!("page {n} is referenced twice")),
            _ => return Err(format!("page {n} is outside the file")),
        }
        let start = (i - 1) * self.page_size;
        self.b
            .get(start..start + self.page_size)
            .ok_or_else(|| format!("page {n} is outside the file"))
    }

    /// The payloads of every row of the table b-tree rooted at `root`, in rowid order.
    fn rows(&mut self, root: u32) -> Result<Vec<Cow<'a, [u8]>>, String> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            let page = self.take(n)?;
            let h = if n == 1 { FILE_HEADER } else { 0 };
            let bad = || format!("page {n}: truncated b-tree page");
            let kind = *page.get(h).ok_or_else(bad)?;
            let cells = be16(page, h + 3).ok_or_else(bad)?;
            match kind {
                LEAF_TABLE => {
                    for i in 0..cells {
                        let ptr = be16(page, h + 8 + 2 * i).ok_or_else(bad)?;
                        out.push(
                            self.leaf_payload(page, ptr)
                                .map_err(|e| format!("page {n}: {e}"))?,
                        );
                    }
                }
                INTERIOR_TABLE => {
                    // Children are visited left to right: push the right-most first.
                    stack.push(be32(page, h + 8).ok_or_else(bad)?);
                    for i in (0..cells).rev() {
                        let ptr = be16(page, h + 12 + 2 * i).ok_or_else(bad)?;
                        stack.push(be32(page, ptr).ok_or_else(bad)?);
                    }
                }
                k => {
                    return Err(format!(
                        "page {n}: type {k:#04x} is not a table b-tree page"
                    ))
                }
            }
        }
        Ok(out)
    }

    /// The full payload of the leaf cell at `ptr`, following its overflow chain.
    fn leaf_payload(&mut self, page: &'a [u8], ptr: usize) -> Result<Cow<'a, [u8]>, String> {
        let bad = || format!("cell at {ptr} is truncated");
        let (len, a) = varint(page, ptr).ok_or_else(bad)?;
        let (_rowid, r) = varint(page, ptr + a).ok_or_else(bad)?;
        let start = ptr + a + r;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= self.b.len())
            .ok_or_else(|| format!("payload length {len} exceeds the file"))?;
        let u = self.usable;
        let max_local = u - 35;
        let local = if len <= max_local {
            len
        } else {
            let min_local = ((u - 12) * 32 / 255) - 23;
            let k = min_local + (len - min_local) % (u - 4);
            if k <= max_local {
                k
            } else {
                min_local
            }
        };
        let here = page.get(start..start + local).ok_or_else(bad)?;
        if local == len {
            return Ok(Cow::Borrowed(here));
        }
        let mut next = be32(page, start + local).ok_or_else(bad)?;
        let mut payload = Vec::with_capacity(len);
        payload.extend_from_slice(here);
        while payload.len() < len {
            if next == 0 {
                return Err("overflow chain ends early".into());
            }
            let ov = self.take(next)?;
            let take = (len - payload.len()).min(u - 4);
            payload.extend_from_slice(ov.get(4..4 + take).ok_or_else(bad)?);
            next = be32(ov, 0).ok_or_else(bad)?;
        }
        Ok(Cow::Owned(payload))
    }
}

/// A record's columns as (serial type, bytes).
fn columns(rec: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    let bad = || "malformed record".to_owned();
    let (hlen, mut at) = varint(rec, 0).ok_or_else(bad)?;
    let hlen = usize::try_from(hlen)
        .ok()
        .filter(|h| *h <= rec.len())
        .ok_or_else(bad)?;
    let mut body = hlen;
    let mut out = Vec::new();
    while at < hlen {
        let (ty, n) = varint(rec, at).ok_or_else(bad)?;
        at += n;
        let size = match ty {
            0 | 8 | 9 => 0,
            1..=4 => usize::try_from(ty).unwrap_or_default(),
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err(format!("reserved serial type {ty}")),
            _ => usize::try_from((ty - 12) / 2).map_err(|_| bad())?,
        };
        let end = body
            .checked_add(size)
            .filter(|e| *e <= rec.len())
            .ok_or_else(bad)?;
        out.push((ty, rec.get(body..end).ok_or_else(bad)?));
        body = end;
    }
    Ok(out)
}

/// An integer column's value.
fn int(ty: u64, v: &[u8]) -> Option<i64> {
    match ty {
        8 => Some(0),
        9 => Some(1),
        1..=6 => {
            let neg = v.first().is_some_and(|b| b & 0x80 != 0);
            let mut x: i64 = if neg { -1 } else { 0 };
            for &b in v {
                x = (x << 8) | i64::from(b);
            }
            Some(x)
        }
        _ => None,
    }
}

fn text(ty: u64, v: &[u8]) -> Option<&[u8]> {
    (ty >= 13 && ty % 2 == 1).then_some(v)
}

pub(super) fn blobs(b: &[u8]) -> Result<Blobs<'_>, String> {
    let mut db = Db::open(b)?;
    let mut root = None;
    for row in db.rows(1).map_err(|e| format!("schema: {e}"))? {
        let cols = columns(&row).map_err(|e| format!("schema: {e}"))?;
        let field = |i: usize| cols.get(i).and_then(|(t, v)| text(*t, v));
        if field(0) == Some(b"table")
            && field(1).is_some_and(|n| n.eq_ignore_ascii_case(b"Packages"))
        {
            root = cols.get(3).and_then(|(t, v)| int(*t, v));
        }
    }
    let root = root.ok_or("no 'Packages' table")?;
    let root =
        u32::try_from(root).map_err(|_| format!("'Packages' root page {root} is invalid"))?;
    let rows = db
        .rows(root)
        .map_err(|e| format!("table 'Packages': {e}"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        // Re-slice out of the row so that a borrowed row stays borrowed.
        let blob = match row {
            Cow::Borrowed(r) => Cow::Borrowed(blob_column(r)?),
            Cow::Owned(r) => Cow::Owned(blob_column(&r)?.to_vec()),
        };
        out.push(blob);
    }
    Ok(out)
}

/// The header of a `Packages` row. The table is `CREATE TABLE Packages (hnum INTEGER PRIMARY KEY
/// AUTOINCREMENT, blob BLOB NOT NULL)`: hnum is the rowid, stored as NULL; the header is column two.
fn blob_column(row: &[u8]) -> Result<&[u8], String> {
    let cols = columns(row).map_err(|e| format!("table 'Packages': {e}"))?;
    match cols.get(1) {
        Some(&(ty, v)) if ty >= 12 && ty % 2 == 0 => Ok(v),
        Some(&(ty, _)) => Err(format!(
            "table 'Packages': blob column has serial type {ty}"
        )),
        None => Err("table 'Packages': row without a blob column".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
    }

    #[test]
    fn ints() {
        assert_eq!(int(1, &[0xff]), Some(-1));
        assert_eq!(int(2, &[0x01, 0x00]), Some(256));
        assert_eq!(int(9, &[]), Some(1));
    }

    /// A two-page database whose `Packages` root (page 2) is an interior page naming itself as its
    /// right-most child: a cycle, refused instead of looped on.
    fn cyclic() -> Vec<u8> {
        let mut db = vec![0u8; 1024];
        db[..16].copy_from_slice(MAGIC);
        db[16..18].copy_from_slice(&512u16.to_be_bytes());
        // Page 1: a leaf table page with one schema row at offset 400.
        db[100] = LEAF_TABLE;
        db[103..105].copy_from_slice(&1u16.to_be_bytes());
        db[108..110].copy_from_slice(&400u16.to_be_bytes());
        let mut rec = vec![6u8, 23, 29, 29, 1, 0];
        rec.extend(b"tablePackagesPackages");
        rec.push(2);
        let cell = [&[rec.len() as u8, 1][..], &rec[..]].concat();
        db[400..400 + cell.len()].copy_from_slice(&cell);
        // Page 2: an interior table page, no cells, right-most child page 2.
        db[512] = INTERIOR_TABLE;
        db[520..524].copy_from_slice(&2u32.to_be_bytes());
        db
    }

    #[test]
    fn page_cycles_are_errors() {
        let e = blobs(&cyclic()).err().unwrap_or_default();
        assert!(e.contains("page 2 is referenced twice"), "{e}");
    }
}
