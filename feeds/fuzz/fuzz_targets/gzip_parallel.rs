//! The scanner's parallel gzip reader (`appliance::scan::gzip`) with parts of a few KiB, against
//! flate2/zlib-rs decoding the same bytes serially. For any input the parallel reader must give exactly
//! the serial bytes when the serial decoder succeeds, and an error when it fails: never a panic, never a
//! hang (libFuzzer's `-timeout`), never other bytes (where both produced bytes before an error, they agree).
//!
//! Random bytes are rarely gzip, so most inputs are a recipe instead (first byte below 0x80):
//!
//! - byte 0: compression level (1 + b % 9), whether the blob is read from a file (bit 6);
//! - byte 1: the reader's tuning (`parallel_for_fuzzing`'s knob) and, in bit 7, reading with forward
//!   skips instead of reading everything (when zlib-rs decodes the blob, so the skips stay inside it);
//! - byte 2: how the compressed blob is damaged or extended: byte flips (bits 0-1), a cut (bit 2), a
//!   second member (bit 3), trailing bytes (bit 4), sync flushes every 2^(8 + n) bytes (bits 5-7, 0: none);
//! - the rest: a program writing the plain bytes (literals, runs, noise, long-distance copies, words, a
//!   gzip stream stored inside the stream), whose tail also gives the positions of the flips.
//!
//! With the first byte at 0x80 or above, the bytes after the first two are the blob itself.
#![no_main]

use appliance::scan::gzip::parallel_for_fuzzing;
use appliance::scan::image::TarStream;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use kit_builder::source::Source;
use libfuzzer_sys::fuzz_target;
use std::io::{self, Read, SeekFrom, Write};

/// Plain bytes a recipe writes at most (compressed: tens of parts of a few KiB).
const PLAIN_MAX: usize = 128 << 10;

fuzz_target!(|data: &[u8]| {
    let [mode, knob, rest @ ..] = data else {
        return;
    };
    let (blob, from_file) = if *mode >= 0x80 {
        (rest.to_vec(), mode & 0x40 != 0)
    } else {
        let [shape, program @ ..] = rest else { return };
        (recipe(*mode, *shape, program), mode & 0x40 != 0)
    };
    check(&blob, *knob, from_file);
});

/// Reads a program's bytes; zeros once it is used up.
struct Program<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Program<'_> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
}

const WORDS: [&str; 12] = [
    "Package: ",
    "Version: ",
    "Depends: ",
    "libc6",
    "amd64",
    "/usr/share/doc/",
    "copyright",
    "\n",
    "install ok installed",
    "Status: ",
    "1.2.3-4",
    "Architecture: ",
];

fn gz(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// The plain bytes a program writes.
fn plain(p: &mut Program<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    while !p.done() && out.len() < PLAIN_MAX {
        match p.u8() % 8 {
            0..=2 => {
                let n = 1 + usize::from(p.u8() % 64);
                for _ in 0..n {
                    out.push(p.u8());
                }
            }
            3 => {
                let b = p.u8();
                let n = usize::from(p.u16() % 4096);
                out.extend(std::iter::repeat_n(b, n));
            }
            4 => {
                // Incompressible bytes: blocks of a few KiB compressed, boundaries far apart.
                let n = usize::from(p.u16() % 8192);
                let mut x = u64::from(p.u16()) | 1 << 32;
                for _ in 0..n {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    out.push(x as u8);
                }
            }
            5 if !out.is_empty() => {
                // A copy from up to 64 KiB back: matches that reach into earlier parts.
                let back = 1 + usize::from(p.u16()) % out.len();
                let n = usize::from(p.u16() % 8192);
                let from = out.len() - back;
                for i in 0..n {
                    out.push(out[from + i]);
                }
            }
            6 => {
                for _ in 0..1 + p.u8() % 32 {
                    out.extend_from_slice(WORDS[usize::from(p.u8()) % WORDS.len()].as_bytes());
                }
            }
            7 => {
                // A gzip stream inside the data: where it ends up stored, its blocks are real ones.
                let n = usize::from(p.u16() % 4096).min(out.len());
                let inner = gz(&out[out.len() - n..], 9);
                out.extend_from_slice(&inner);
            }
            _ => {}
        }
    }
    out.truncate(PLAIN_MAX);
    out
}

/// A gzip blob made from a recipe (see the module documentation).
fn recipe(mode: u8, shape: u8, program: &[u8]) -> Vec<u8> {
    let level = 1 + u32::from(mode) % 9;
    let mut p = Program {
        bytes: program,
        at: 0,
    };
    let data = plain(&mut p);
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    let flush_every = match shape >> 5 {
        0 => usize::MAX,
        n => 1 << (8 + n),
    };
    for chunk in data.chunks(flush_every.min(data.len().max(1))) {
        let _ = e.write_all(chunk);
        if flush_every != usize::MAX {
            // A sync flush: the block ends, an empty stored block follows (as pigz writes).
            let _ = e.flush();
        }
    }
    let mut blob = e.finish().unwrap_or_default();
    if shape & 8 != 0 {
        let n = data.len().min(usize::from(p.u16()) * 4);
        blob.extend(gz(&data[..n], level));
    }
    if shape & 16 != 0 {
        blob.extend_from_slice(&[0, 0x1f, 0x8b, p.u8()][..1 + usize::from(p.u8() % 4)]);
    }
    // Flips anywhere in the blob, positions from the program's tail.
    for _ in 0..shape & 3 {
        if blob.is_empty() {
            break;
        }
        let at = (usize::from(p.u16()) * blob.len()) >> 16;
        blob[at] ^= p.u8() | 1;
    }
    if shape & 4 != 0 && !blob.is_empty() {
        let at = (usize::from(p.u16()) * blob.len()) >> 16;
        blob.truncate(at);
    }
    blob
}

/// What the parallel reader gave: the bytes it handed over (at their offsets), then how it ended.
struct Outcome {
    chunks: Vec<(usize, Vec<u8>)>,
    /// `Ok(total length)`, or the error.
    end: io::Result<usize>,
}

/// Reads everything, or reads and skips forward in turn (the walker skips file bodies it does not
/// want). Skips stay within `len` when the length is known (zlib-rs decoded the blob), so that an error
/// from a skip is an error of the reader, not a skip past the end.
fn drain(r: &mut dyn TarStream, skipping: bool, knob: u8, len: Option<usize>) -> Outcome {
    let mut chunks = Vec::new();
    let mut pos = 0usize;
    let mut step = usize::from(knob) + 1;
    loop {
        let want = if skipping {
            1 + (step * 7919) % 5000
        } else {
            64 << 10
        };
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => {
                    return Outcome {
                        chunks,
                        end: Err(e),
                    }
                }
            }
        }
        buf.truncate(got);
        if got > 0 {
            chunks.push((pos, buf));
        }
        pos += got;
        if got < want {
            return Outcome {
                chunks,
                end: Ok(pos),
            };
        }
        if skipping {
            let mut skip = (step * 104_729) % 20_000;
            if let Some(len) = len {
                skip = skip.min(len.saturating_sub(pos));
            }
            step += 1;
            match r.seek(SeekFrom::Current(skip as i64)) {
                Ok(p) => {
                    assert_eq!(p, (pos + skip) as u64, "a skip lands where it should");
                    pos += skip;
                }
                Err(e) => {
                    return Outcome {
                        chunks,
                        end: Err(e),
                    }
                }
            }
        }
    }
}

/// Threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Waits until the threads the reader started have ended (its workers stop once it is dropped), so that
/// none is left running, and LeakSanitizer does not take a thread's exit in progress for a leak.
fn wait_for_threads(before: usize) {
    let start = std::time::Instant::now();
    while threads() > before {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the reader's threads still run 10 s after it was dropped"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn check(blob: &[u8], knob: u8, from_file: bool) {
    let before = threads();
    let mut serial = Vec::new();
    let serial_end = MultiGzDecoder::new(blob).read_to_end(&mut serial);
    let len = serial_end.as_ref().ok().map(|_| serial.len());
    let run = |src: &Source| -> Option<Outcome> {
        let mut r = match parallel_for_fuzzing(src, knob) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                return Some(Outcome {
                    chunks: Vec::new(),
                    end: Err(e),
                })
            }
        };
        // Skips only where the length is known; a failing blob is read to its error.
        Some(drain(&mut *r, knob & 0x80 != 0 && len.is_some(), knob, len))
    };
    let outcome = if from_file {
        stella_fuzz::with_file(blob, |path| run(&Source::Path(path.to_owned())))
    } else {
        run(&Source::Memory(blob.to_vec().into()))
    };
    wait_for_threads(before);
    // The serial path: nothing of the parallel reader to check.
    let Some(outcome) = outcome else { return };
    // Whatever both produced agrees, error or not.
    for (at, bytes) in &outcome.chunks {
        let common = serial.len().saturating_sub(*at).min(bytes.len());
        assert!(
            bytes[..common] == serial[*at..*at + common],
            "the parallel reader gave other bytes than zlib-rs at offset {at}"
        );
    }
    match (&serial_end, &outcome.end) {
        (Ok(_), Ok(total)) => assert_eq!(*total, serial.len(), "output length"),
        (Ok(_), Err(e)) => panic!(
            "zlib-rs decodes {} bytes, the parallel reader fails: {e}",
            serial.len()
        ),
        (Err(e), Ok(total)) => {
            panic!("zlib-rs fails ({e}), the parallel reader returns {total} bytes")
        }
        (Err(_), Err(_)) => {}
    }
}
