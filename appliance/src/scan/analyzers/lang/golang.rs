//! Go binaries' build information (what `go version -m` prints): the toolchain version and the module
//! list the linker embeds after the `\xff Go buildinf:` magic, in the `.go.buildinfo` section.
//!
//! Two layouts exist. Go ≥ 1.18 stores both strings inline after the 32-byte header, each as a uvarint
//! length and its bytes (flag bit 1). Older toolchains store two pointers to Go string headers
//! (`{data, len}`) that must be followed through the program headers' address map.

use super::elf::{Elf, Reader};
use super::{error, package};
use crate::scan::analyzers::{AnalyzeError, RandomAccess};
use crate::scan::package::{Ecosystem, Package};
use std::borrow::Cow;

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER: usize = 32;
const ALIGN: usize = 16;
const FLAG_BIG_ENDIAN: u8 = 0x1;
const FLAG_INLINE: u8 = 0x2;
/// Longest version or module-info string accepted (Go's own reader refuses above 4 GiB; real module
/// lists are kilobytes).
const MAX_STRING: u64 = 16 << 20;
/// The version Go gives a requirement that only a local replacement satisfies.
const ZERO_PSEUDO_VERSION: &str = "v0.0.0-00010101000000-000000000000";

/// The build info of a Go binary, if it has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct BuildInfo {
    pub(super) go_version: String,
    pub(super) modinfo: String,
}

/// Packages from an ELF's Go build info: the stdlib at the toolchain version, the main module (unless
/// `(devel)`) and every dependency, replacements applied. A binary without build info yields nothing.
pub(super) fn binary(
    path: &str,
    src: &dyn RandomAccess,
    elf: &Elf<'_>,
) -> Result<Vec<Package>, AnalyzeError> {
    // Without section headers (stripped by hand), the build info is found by scanning for the magic.
    let (data, scanned) = match elf.section(".go.buildinfo") {
        Some(s) => (s, false),
        None if elf.sections.is_empty() => {
            let Some(at) = find_magic_in(src) else {
                return Ok(Vec::new());
            };
            // Build info is a few KiB: read as far as it may reach only when that is not enough.
            let small = src.get_clipped(at, 64 << 10);
            if let Ok(Some(info)) = read_build_info(&small, elf) {
                return Ok(packages(path, &info));
            }
            (src.get_clipped(at, MAX_REACH), true)
        }
        None => return Ok(Vec::new()),
    };
    let info = match read_build_info(&data, elf) {
        Ok(Some(info)) => info,
        Ok(None) => return Ok(Vec::new()),
        // A magic found by scanning may be a coincidence; only a real section's damage is reported.
        Err(_) if scanned => return Ok(Vec::new()),
        Err(reason) => return Err(error("go-binary", path, reason)),
    };
    Ok(packages(path, &info))
}

/// How far build info reaches from its magic: the header and two inline strings with their lengths.
const MAX_REACH: u64 = HEADER as u64 + 2 * (10 + MAX_STRING);

/// Offset of the first build-info magic at a 16-byte aligned offset of the file, read in 1 MiB steps.
fn find_magic_in(src: &dyn RandomAccess) -> Option<u64> {
    const STEP: u64 = 1 << 20;
    let mut off = 0u64;
    while off < src.len() {
        // A magic starting in this step may end in the next: read a little more.
        let chunk = src.get_clipped(off, STEP + ALIGN as u64);
        let in_step = chunk.len().min(STEP as usize);
        if let Some(i) = (0..in_step)
            .step_by(ALIGN)
            .find(|&i| chunk.get(i..i + MAGIC.len()) == Some(MAGIC))
        {
            return Some(off + i as u64);
        }
        off += STEP;
    }
    None
}

/// Finds and decodes the build info in `data` (the `.go.buildinfo` section, or the file from the magic
/// on).
pub(super) fn read_build_info(data: &[u8], elf: &Elf<'_>) -> Result<Option<BuildInfo>, String> {
    let Some(start) = find_magic(data) else {
        return Ok(None);
    };
    let hdr = data.get(start..).unwrap_or_default();
    if hdr.len() < HEADER {
        return Err("truncated Go build info header".into());
    }
    let ptr_size = hdr[14];
    let flags = hdr[15];
    let (version, modinfo): (Cow<'_, [u8]>, Cow<'_, [u8]>) = if flags & FLAG_INLINE != 0 {
        let (version, rest) = uvarint_string(&hdr[HEADER..]).ok_or("bad Go version string")?;
        let (modinfo, _) = uvarint_string(rest).ok_or("bad Go module info string")?;
        (version.into(), modinfo.into())
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(format!("bad Go build info pointer size {ptr_size}"));
        }
        let r = Reader {
            bytes: hdr,
            big_endian: flags & FLAG_BIG_ENDIAN != 0,
        };
        let ps = u64::from(ptr_size);
        let version_addr = r.word(16, ptr_size).ok_or("truncated Go build info")?;
        let mod_addr = r.word(16 + ps, ptr_size).ok_or("truncated Go build info")?;
        let version = go_string(elf, r.big_endian, ptr_size, version_addr)
            .ok_or("Go version string points outside the file")?;
        // A binary built outside module mode has no module info; its pointer may be null.
        let modinfo = go_string(elf, r.big_endian, ptr_size, mod_addr).unwrap_or_default();
        (version, modinfo)
    };
    Ok(Some(BuildInfo {
        go_version: String::from_utf8_lossy(&version).into_owned(),
        modinfo: String::from_utf8_lossy(strip_sentinels(&modinfo)).into_owned(),
    }))
}

fn find_magic(data: &[u8]) -> Option<usize> {
    (0..data.len())
        .step_by(ALIGN)
        .find(|&i| data.get(i..i + MAGIC.len()) == Some(MAGIC))
}

/// A uvarint length followed by that many bytes; returns the bytes and the rest.
fn uvarint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    let mut used = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            used = i + 1;
            break;
        }
    }
    if used == 0 || len > MAX_STRING {
        return None;
    }
    let rest = b.get(used..)?;
    let len = usize::try_from(len).ok()?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// Follows a pointer to a Go string header `{data *byte, len int}` and returns the string's bytes.
fn go_string<'a>(
    elf: &Elf<'a>,
    big_endian: bool,
    ptr_size: u8,
    addr: u64,
) -> Option<Cow<'a, [u8]>> {
    let ps = u64::from(ptr_size);
    let hdr = elf.read_at(addr, 2 * ps)?;
    let r = Reader {
        bytes: &hdr,
        big_endian,
    };
    let data = r.word(0, ptr_size)?;
    let len = r.word(ps, ptr_size)?;
    if len > MAX_STRING {
        return None;
    }
    elf.read_at(data, len)
}

/// The module info is wrapped in two 16-byte sentinels; Go's reader strips them the same way.
fn strip_sentinels(m: &[u8]) -> &[u8] {
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        &m[16..m.len() - 16]
    } else {
        m
    }
}

/// Packages from decoded build info.
pub(super) fn packages(path: &str, info: &BuildInfo) -> Vec<Package> {
    let mut out = Vec::new();
    // `go1.21.5`, `go1.22.0 X:boringcrypto`; a `devel ...` toolchain has no release to match.
    if let Some(v) = info
        .go_version
        .split_whitespace()
        .next()
        .and_then(|v| v.strip_prefix("go"))
    {
        if !v.is_empty() {
            out.push(module(path, "stdlib", v));
        }
    }
    // Each `mod`/`dep` line may be followed by a `=>` line naming its replacement.
    let mut pending: Option<(String, String)> = None;
    let flush = |out: &mut Vec<Package>, m: Option<(String, String)>| {
        if let Some((p, v)) = m {
            // `(devel)` is the main module built from a checkout; the zero pseudo-version is how a
            // workspace requires its own in-tree modules. Neither names a release.
            if !p.is_empty() && !v.is_empty() && v != "(devel)" && v != ZERO_PSEUDO_VERSION {
                out.push(module(path, &p, &v));
            }
        }
    };
    for line in info.modinfo.lines() {
        let mut f = line.split('\t');
        match f.next() {
            Some("mod") | Some("dep") => {
                flush(&mut out, pending.take());
                let p = f.next().unwrap_or_default().to_owned();
                let v = f.next().unwrap_or_default().to_owned();
                pending = Some((p, v));
            }
            Some("=>") => {
                let p = f.next().unwrap_or_default();
                let v = f.next().unwrap_or_default();
                // A replacement by a local directory (`=> ../fork (devel)`, or no version from older
                // toolchains) has no release of its own: the original requirement stays the best name
                // for what was built.
                if let Some(m) = pending.as_mut() {
                    if !v.is_empty() && v != "(devel)" {
                        *m = (p.to_owned(), v.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    flush(&mut out, pending.take());
    out
}

fn module(path: &str, module: &str, version: &str) -> Package {
    let (ns, name) = match module.rsplit_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, module),
    };
    package(Ecosystem::Golang, ns, name, version, path)
}
