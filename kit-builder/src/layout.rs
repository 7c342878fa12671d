//! The byte layout of a kit's zstd stream (docs/kit-format.md §1): which tar bytes go into which zstd
//! frame. Both write paths of [`crate::build`] produce it byte for byte, so a kit does not depend on
//! whether its inputs were read once or twice:
//!
//! ```text
//! head     frame( kit.json entry, kit.dsse.json entry ) + skippable frame padding to a multiple of 4 KiB
//! large    for each large carried entry: header slot (1 KiB), then frame( data + tar padding )
//! tail     frame( every small carried entry, the two end-of-archive blocks )
//! ```
//!
//! A large entry's data frame depends only on its bytes, and its header slot has a fixed size, so the
//! single-read path can compress a payload while it is hashed, before its tar path (its digest) is known,
//! and fill the slot in afterwards. The head is padded to a multiple of the file system block so it can be
//! inserted in front of the payloads already written (`FALLOC_FL_INSERT_RANGE`).

use std::io::{self, Write};

/// Payloads of at least this many bytes are "large": each gets its own frame and header slot. Smaller
/// ones share the tail frame, where they compress against each other (feed documents are small).
pub const LARGE_PAYLOAD: u64 = 1 << 20;
/// Size of a large entry's header slot: a zstd frame holding the 512-byte tar header, padded with a
/// skippable frame (`ZSTD_compressBound(512)` is 577, so the padding always fits).
pub const HEADER_SLOT: usize = 1024;
/// The head is padded to a multiple of this (the usual file system block size).
pub const HEAD_ALIGN: usize = 4096;
/// The tar block size.
pub const BLOCK: u64 = 512;
/// The magic of the skippable frames used for padding (`0x184D2A50`, little-endian).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// Zero bytes that pad a tar entry of `size` bytes to a whole block.
pub fn tar_padding(size: u64) -> &'static [u8] {
    const ZEROS: [u8; BLOCK as usize] = [0; BLOCK as usize];
    let rem = (size % BLOCK) as usize;
    if rem == 0 {
        &[]
    } else {
        &ZEROS[..BLOCK as usize - rem]
    }
}

/// The ustar header of a kit entry: a regular file, mode 0644, uid/gid 0, no user or group names.
pub fn entry_header(path: &str, size: u64, mtime: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

/// A skippable zstd frame of exactly `len` bytes (at least 8), holding zeros; decoders ignore it.
pub fn skippable(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len.max(8)];
    out[..4].copy_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    let body = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&body.to_le_bytes());
    out
}

/// Compresses one zstd frame at a time with fixed parameters: the level, a content checksum, and
/// multithreading with at least one worker (zstd's output then does not depend on the worker count, nor on
/// how the input is cut into calls). The frame header never records the content size, so the same bytes
/// give the same frame whether they were fed at once or in pieces.
pub struct FrameEncoder {
    enc: zstd::stream::raw::Encoder<'static>,
    out: Vec<u8>,
    /// Whether input has been fed to the current frame.
    open: bool,
}

impl std::fmt::Debug for FrameEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameEncoder").finish_non_exhaustive()
    }
}

impl FrameEncoder {
    /// An encoder at `level` with `workers` compression threads (at least one is used).
    pub fn new(level: i32, workers: u32) -> io::Result<FrameEncoder> {
        use zstd::stream::raw::CParameter;
        let mut enc = zstd::stream::raw::Encoder::new(level)?;
        enc.set_parameter(CParameter::NbWorkers(workers.max(1)))?;
        enc.set_parameter(CParameter::ChecksumFlag(true))?;
        Ok(FrameEncoder {
            enc,
            out: Vec::with_capacity(1 << 20),
            open: false,
        })
    }

    /// Feeds `data` to the current frame (starting one if needed), writing compressed bytes to `w`.
    pub fn write(&mut self, mut data: &[u8], w: &mut dyn Write) -> io::Result<()> {
        use zstd::stream::raw::{InBuffer, Operation as _, OutBuffer};
        // An empty first call would start the frame in a different mode; frames always hold bytes.
        if data.is_empty() {
            return Ok(());
        }
        self.open = true;
        while !data.is_empty() {
            self.out.clear();
            let mut input = InBuffer::around(data);
            {
                let mut output = OutBuffer::around(&mut self.out);
                self.enc.run(&mut input, &mut output)?;
            }
            data = &data[input.pos()..];
            w.write_all(&self.out)?;
        }
        Ok(())
    }

    /// Ends the current frame, writing the rest of it to `w`. A frame that was given no byte is not
    /// written at all.
    pub fn end(&mut self, w: &mut dyn Write) -> io::Result<()> {
        use zstd::stream::raw::{Operation as _, OutBuffer};
        if !self.open {
            return Ok(());
        }
        loop {
            self.out.clear();
            let remaining = {
                let mut output = OutBuffer::around(&mut self.out);
                self.enc.finish(&mut output, true)?
            };
            w.write_all(&self.out)?;
            if remaining == 0 {
                break;
            }
        }
        self.open = false;
        Ok(())
    }

    /// One whole frame of `data`, in memory.
    pub fn frame(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write(data, &mut out)?;
        self.end(&mut out)?;
        Ok(out)
    }
}

/// The head: one frame holding the `kit.json` and `kit.dsse.json` entries, then a skippable frame that
/// pads it to a multiple of [`HEAD_ALIGN`].
pub fn head(
    enc: &mut FrameEncoder,
    manifest: &[u8],
    envelope: &[u8],
    mtime: u64,
) -> io::Result<Vec<u8>> {
    let mut tar = Vec::with_capacity(manifest.len() + envelope.len() + 4 * BLOCK as usize);
    for (path, bytes) in [
        (crate::manifest::MANIFEST_PATH, manifest),
        (crate::manifest::ENVELOPE_PATH, envelope),
    ] {
        tar.extend_from_slice(entry_header(path, bytes.len() as u64, mtime)?.as_bytes());
        tar.extend_from_slice(bytes);
        tar.extend_from_slice(tar_padding(bytes.len() as u64));
    }
    let mut out = enc.frame(&tar)?;
    let mut pad = HEAD_ALIGN - out.len() % HEAD_ALIGN;
    if pad < 8 {
        pad += HEAD_ALIGN;
    }
    out.extend_from_slice(&skippable(pad));
    Ok(out)
}

/// The header slot of a large entry: a frame of its tar header, padded to [`HEADER_SLOT`] bytes.
pub fn header_slot(
    enc: &mut FrameEncoder,
    path: &str,
    size: u64,
    mtime: u64,
) -> io::Result<Vec<u8>> {
    let mut out = enc.frame(entry_header(path, size, mtime)?.as_bytes())?;
    if out.len() + 8 > HEADER_SLOT {
        return Err(io::Error::other(format!(
            "internal: the header frame of {path} is {} bytes, above its slot",
            out.len()
        )));
    }
    let pad = HEADER_SLOT - out.len();
    out.extend_from_slice(&skippable(pad));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read as _;

    fn decode(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(bytes)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn skippable_frames_are_ignored_between_frames() {
        let mut enc = FrameEncoder::new(3, 2).unwrap();
        let mut stream = enc.frame(b"hello ").unwrap();
        stream.extend_from_slice(&skippable(100));
        stream.extend_from_slice(&enc.frame(b"world").unwrap());
        stream.extend_from_slice(&skippable(8));
        assert_eq!(decode(&stream), b"hello world");
    }

    #[test]
    fn frames_do_not_depend_on_input_cuts_or_worker_count() {
        let data: Vec<u8> = (0..(20u32 << 20) / 4)
            .flat_map(|i| (i.wrapping_mul(2_654_435_761) >> (i % 13)).to_le_bytes())
            .collect();
        let mut one = FrameEncoder::new(3, 1).unwrap();
        let whole = one.frame(&data).unwrap();
        let mut two = FrameEncoder::new(3, 2).unwrap();
        let mut cut = Vec::new();
        for chunk in data.chunks(777_777) {
            two.write(chunk, &mut cut).unwrap();
        }
        two.end(&mut cut).unwrap();
        assert_eq!(whole, cut);
        assert_eq!(decode(&whole), data);
    }

    #[test]
    fn head_and_slots_have_their_sizes() {
        let mut enc = FrameEncoder::new(3, 1).unwrap();
        let h = head(&mut enc, b"{}\n", b"{\"payload\":\"\"}", 7).unwrap();
        assert_eq!(h.len() % HEAD_ALIGN, 0);
        let slot =
            header_slot(&mut enc, &format!("blobs/sha256/{}", "a".repeat(64)), 5, 7).unwrap();
        assert_eq!(slot.len(), HEADER_SLOT);
        let tar = decode(&slot);
        assert_eq!(tar.len(), 512);
        let names: Vec<String> = tar::Archive::new(&decode(&h)[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["kit.json", "kit.dsse.json"]);
    }

    #[test]
    fn tar_padding_fills_the_block() {
        assert_eq!(tar_padding(0).len(), 0);
        assert_eq!(tar_padding(1).len(), 511);
        assert_eq!(tar_padding(512).len(), 0);
        assert_eq!(tar_padding(1000).len(), 24);
    }
}
