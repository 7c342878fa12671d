//! Crafting malicious kits from good ones: decompress, edit the tar (raw headers for `..` and absolute
//! names, link entry types, duplicates, extra entries), recompress. Shared by the `stella-kit verify`
//! attack suite and the `stella import` suite.

use std::fs;
use std::io::Read as _;
use std::path::Path;

/// One tar entry: its raw header and data.
#[derive(Clone, Debug)]
pub struct Ent {
    /// The raw header.
    pub header: tar::Header,
    /// The entry's bytes.
    pub data: Vec<u8>,
}

impl Ent {
    /// The entry name as written in the header.
    pub fn path(&self) -> String {
        String::from_utf8_lossy(&self.header.path_bytes()).into_owned()
    }

    /// A regular or link entry whose name (and link target) bytes are written into the header as is:
    /// `Header::set_path` refuses `..` and absolute names, which is the point here.
    pub fn raw(name: &[u8], kind: tar::EntryType, data: Vec<u8>, link: &[u8]) -> Ent {
        let mut header = tar::Header::new_ustar();
        {
            let old = header.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name);
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link);
        }
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(kind);
        header.set_cksum();
        Ent { header, data }
    }
}

/// Decompresses a kit and reads every entry.
pub fn unpack(kit: &Path) -> Vec<Ent> {
    let z = zstd::stream::read::Decoder::new(fs::File::open(kit).unwrap()).unwrap();
    let mut archive = tar::Archive::new(z);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Ent { header, data });
    }
    out
}

/// Writes entries as a zstd-compressed tar.
pub fn pack(kit: &Path, entries: &[Ent]) {
    let z = zstd::stream::write::Encoder::new(fs::File::create(kit).unwrap(), 3).unwrap();
    let mut b = tar::Builder::new(z);
    for e in entries {
        b.append(&e.header, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// Writes entries as a tar followed by `trailer` (data after the end-of-archive marker), zstd-compressed.
pub fn pack_with_trailer(kit: &Path, entries: &[Ent], trailer: &[u8]) {
    let mut raw = Vec::new();
    {
        let mut b = tar::Builder::new(&mut raw);
        for x in entries {
            b.append(&x.header, &x.data[..]).unwrap();
        }
        b.finish().unwrap();
    }
    raw.extend_from_slice(trailer);
    fs::write(kit, zstd::stream::encode_all(&raw[..], 3).unwrap()).unwrap();
}

/// The entries of a good kit, checking that the manifest and its envelope come first.
pub fn entries_of(kit: &Path) -> Vec<Ent> {
    let e = unpack(kit);
    assert_eq!(e[0].path(), "kit.json");
    assert_eq!(e[1].path(), "kit.dsse.json");
    e
}

/// The tar path of a payload, from the manifest (`entries[0]`).
pub fn path_of(entries: &[Ent], payload: &str) -> String {
    let m: serde_json::Value = serde_json::from_slice(&entries[0].data).unwrap();
    m["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == payload)
        .unwrap_or_else(|| panic!("no payload {payload}"))["path"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The index of the entry named `path`.
pub fn index_of(entries: &[Ent], path: &str) -> usize {
    entries
        .iter()
        .position(|e| e.path() == path)
        .unwrap_or_else(|| panic!("no entry {path}"))
}

/// Flips one bit in the middle of a payload entry.
pub fn flip_payload(entries: &mut [Ent], path: &str) {
    let i = index_of(entries, path);
    let mid = entries[i].data.len() / 2;
    entries[i].data[mid] ^= 0x01;
}

/// Changes `"channel": "stable"` into `"stabld"` in `kit.json`: still well-formed, no longer the one signed.
pub fn flip_manifest_channel(entries: &mut [Ent]) {
    let m = &mut entries[0].data;
    let at = m
        .windows(8)
        .position(|w| w == b"\"stable\"")
        .expect("channel in kit.json");
    m[at + 6] ^= 0x01;
    assert_eq!(&m[at..at + 8], b"\"stabld\"");
}

/// Flips a bit in the first signature of `kit.dsse.json`, keeping the base64 well-formed.
pub fn flip_envelope_signature(entries: &mut [Ent]) {
    let env = &mut entries[1].data;
    let key = env
        .windows(5)
        .position(|w| w == b"\"sig\"")
        .expect("sig in envelope");
    let open = key + 5 + env[key + 5..].iter().position(|&b| b == b'"').unwrap() + 1;
    let close = open + env[open..].iter().position(|&b| b == b'"').unwrap();
    // Letters A-Y, a-y and digits stay base64 under ^1.
    let pos = (open + (close - open) / 2..close)
        .find(|&i| matches!(env[i], b'A'..=b'Y' | b'a'..=b'y' | b'0'..=b'9'))
        .unwrap();
    env[pos] ^= 0x01;
}

/// A zero-filled sparse file of `len` bytes: nothing on disk, a few KiB once compressed.
pub fn sparse_zeros(path: &Path, len: u64) {
    let f = fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
}
