//! Just enough ELF to find a named section and map virtual addresses to file offsets: the header,
//! section headers (with their names) and `PT_LOAD` program headers, for 32- and 64-bit files of either
//! byte order. Every offset and size read from the file is checked against its length.
//!
//! The file is read through [`RandomAccess`]: only the header, the two header tables, the section
//! names and whatever the analysers then ask for are read, so an executable too large to hold in memory
//! is analysed from a temporary copy on disk.

use crate::scan::analyzers::RandomAccess;
use std::borrow::Cow;

/// `ET_EXEC`.
const ET_EXEC: u16 = 2;
/// `ET_DYN` (shared objects and position-independent executables).
const ET_DYN: u16 = 3;
/// `PT_LOAD`.
const PT_LOAD: u32 = 1;
/// `SHT_NOBITS`: the section occupies no file bytes (`.bss`).
const SHT_NOBITS: u32 = 8;
/// More section or program headers than any real binary has; a bound on work for hostile headers.
const MAX_HEADERS: usize = 1 << 16;
/// Most bytes of a header table read (real tables are a few KiB); a bound on memory for hostile headers.
const MAX_TABLE: u64 = 16 << 20;

/// Whether a file looks like an executable worth reading whole: ELF magic and type `ET_EXEC`, or
/// `ET_DYN` (a PIE) whose name does not say shared library (`libfoo.so.1`).
pub(super) fn is_executable_looking(base: &str, head: &[u8]) -> bool {
    if head.len() < 18 || !head.starts_with(b"\x7fELF") {
        return false;
    }
    let e_type = match head[5] {
        1 => u16::from_le_bytes([head[16], head[17]]),
        2 => u16::from_be_bytes([head[16], head[17]]),
        _ => return false,
    };
    match e_type {
        ET_EXEC => true,
        ET_DYN => !base.contains(".so") && !base.ends_with(".debug"),
        _ => false,
    }
}

/// Reads integers of the file's byte order at checked offsets.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) big_endian: bool,
}

impl<'a> Reader<'a> {
    pub(super) fn slice(&self, off: u64, len: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.bytes.get(start..end)
    }

    pub(super) fn u16(&self, off: u64) -> Option<u16> {
        let b: [u8; 2] = self.slice(off, 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    pub(super) fn u32(&self, off: u64) -> Option<u32> {
        let b: [u8; 4] = self.slice(off, 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub(super) fn u64(&self, off: u64) -> Option<u64> {
        let b: [u8; 8] = self.slice(off, 8)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A pointer-sized word (4 or 8 bytes).
    pub(super) fn word(&self, off: u64, size: u8) -> Option<u64> {
        match size {
            4 => self.u32(off).map(u64::from),
            8 => self.u64(off),
            _ => None,
        }
    }
}

/// A section: name and where its bytes are in the file.
#[derive(Clone, Debug)]
pub(super) struct Section {
    pub(super) name: String,
    pub(super) offset: u64,
    pub(super) size: u64,
    pub(super) nobits: bool,
}

/// A loadable segment: which virtual addresses map to which file bytes.
#[derive(Clone, Copy, Debug)]
struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
}

/// The parts of an ELF file the analysers use.
#[derive(Clone)]
pub(super) struct Elf<'a> {
    src: &'a dyn RandomAccess,
    pub(super) sections: Vec<Section>,
    segments: Vec<Segment>,
}

impl std::fmt::Debug for Elf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elf")
            .field("sections", &self.sections)
            .field("segments", &self.segments)
            .finish()
    }
}

impl<'a> Elf<'a> {
    /// Parses the header, section headers and program headers. A file whose section or program header
    /// table is missing or out of bounds parses with that table empty; only a bad ELF header is an error.
    pub(super) fn parse(src: &'a dyn RandomAccess) -> Result<Self, String> {
        let head = src.get_clipped(0, 64);
        let bytes: &[u8] = &head;
        if bytes.len() < 52 || !bytes.starts_with(b"\x7fELF") {
            return Err("not an ELF file (truncated header)".into());
        }
        let ptr_size = match bytes[4] {
            1 => 4u8,
            2 => 8u8,
            c => return Err(format!("unknown ELF class {c}")),
        };
        let big_endian = match bytes[5] {
            1 => false,
            2 => true,
            d => return Err(format!("unknown ELF data encoding {d}")),
        };
        let r = Reader { bytes, big_endian };
        let bad = || "truncated ELF header".to_owned();
        // Offsets of e_phoff, e_shoff, e_phentsize... differ between the classes.
        let (phoff, shoff, sizes_at) = if ptr_size == 8 {
            (r.u64(32).ok_or_else(bad)?, r.u64(40).ok_or_else(bad)?, 54)
        } else {
            (
                u64::from(r.u32(28).ok_or_else(bad)?),
                u64::from(r.u32(32).ok_or_else(bad)?),
                42,
            )
        };
        let phentsize = r.u16(sizes_at).ok_or_else(bad)?;
        let phnum = r.u16(sizes_at + 2).ok_or_else(bad)?;
        let shentsize = r.u16(sizes_at + 4).ok_or_else(bad)?;
        let shnum = r.u16(sizes_at + 6).ok_or_else(bad)?;
        let shstrndx = r.u16(sizes_at + 8).ok_or_else(bad)?;
        let segments = segments(src, big_endian, ptr_size, phoff, phentsize, phnum);
        let sections = sections(src, big_endian, ptr_size, shoff, shentsize, shnum, shstrndx);
        Ok(Elf {
            src,
            sections,
            segments,
        })
    }

    /// The file bytes of the first section with this name.
    pub(super) fn section(&self, name: &str) -> Option<Cow<'a, [u8]>> {
        let s = self.sections.iter().find(|s| s.name == name && !s.nobits)?;
        self.src.get(s.offset, s.size)
    }

    /// `len` bytes at virtual address `vaddr`, when all of them are file bytes of one loadable segment.
    pub(super) fn read_at(&self, vaddr: u64, len: u64) -> Option<Cow<'a, [u8]>> {
        let seg = self
            .segments
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)?;
        let rel = vaddr - seg.vaddr;
        if rel.checked_add(len)? > seg.filesz {
            return None;
        }
        self.src.get(seg.offset.checked_add(rel)?, len)
    }
}

/// The bytes of a header table (`num` entries of `entsize` from `off`), as far as they are in the file.
fn table<'a>(src: &'a dyn RandomAccess, off: u64, entsize: u16, num: u16) -> Cow<'a, [u8]> {
    let len = (u64::from(entsize) * u64::from(num)).min(MAX_TABLE);
    if off > src.len() {
        return Cow::Borrowed(&[]);
    }
    src.get_clipped(off, len)
}

fn segments(
    src: &dyn RandomAccess,
    big_endian: bool,
    ptr_size: u8,
    phoff: u64,
    entsize: u16,
    num: u16,
) -> Vec<Segment> {
    let mut out = Vec::new();
    let min = if ptr_size == 8 { 56 } else { 32 };
    if phoff == 0 || usize::from(entsize) < min {
        return out;
    }
    let bytes = table(src, phoff, entsize, num);
    let r = Reader {
        bytes: &bytes,
        big_endian,
    };
    for i in 0..usize::from(num).min(MAX_HEADERS) {
        let Some(base) = (i as u64).checked_mul(u64::from(entsize)) else {
            break;
        };
        let seg = if ptr_size == 8 {
            (|| {
                let ty = r.u32(base)?;
                Some((ty, r.u64(base + 8)?, r.u64(base + 16)?, r.u64(base + 32)?))
            })()
        } else {
            (|| {
                let ty = r.u32(base)?;
                Some((
                    ty,
                    u64::from(r.u32(base + 4)?),
                    u64::from(r.u32(base + 8)?),
                    u64::from(r.u32(base + 16)?),
                ))
            })()
        };
        let Some((ty, offset, vaddr, filesz)) = seg else {
            break;
        };
        if ty == PT_LOAD {
            out.push(Segment {
                vaddr,
                offset,
                filesz,
            });
        }
    }
    out
}

fn sections(
    src: &dyn RandomAccess,
    big_endian: bool,
    ptr_size: u8,
    shoff: u64,
    entsize: u16,
    num: u16,
    strndx: u16,
) -> Vec<Section> {
    let min = if ptr_size == 8 { 64 } else { 40 };
    if shoff == 0 || usize::from(entsize) < min {
        return Vec::new();
    }
    let bytes = table(src, shoff, entsize, num);
    let r = Reader {
        bytes: &bytes,
        big_endian,
    };
    // (name offset, type, offset, size) per header.
    let mut raw = Vec::new();
    for i in 0..usize::from(num).min(MAX_HEADERS) {
        let Some(base) = (i as u64).checked_mul(u64::from(entsize)) else {
            break;
        };
        let h = if ptr_size == 8 {
            (|| {
                Some((
                    r.u32(base)?,
                    r.u32(base + 4)?,
                    r.u64(base + 24)?,
                    r.u64(base + 32)?,
                ))
            })()
        } else {
            (|| {
                Some((
                    r.u32(base)?,
                    r.u32(base + 4)?,
                    u64::from(r.u32(base + 16)?),
                    u64::from(r.u32(base + 20)?),
                ))
            })()
        };
        let Some(h) = h else { break };
        raw.push(h);
    }
    let names = raw
        .get(usize::from(strndx))
        .and_then(|&(_, _, off, size)| src.get(off, size))
        .unwrap_or(Cow::Borrowed(&[]));
    raw.into_iter()
        .map(|(name_off, ty, offset, size)| {
            let name = usize::try_from(name_off)
                .ok()
                .and_then(|o| names.get(o..))
                .map(|s| {
                    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                    String::from_utf8_lossy(&s[..end]).into_owned()
                })
                .unwrap_or_default();
            Section {
                name,
                offset,
                size,
                nobits: ty == SHT_NOBITS,
            }
        })
        .collect()
}
