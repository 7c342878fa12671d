//! Inflating gzip layers, on several cores when a layer is large enough.
//!
//! A layer is one gzip member whose DEFLATE stream zlib can only decode from the start: on this
//! project's 2-core machine that alone took most of a cold scan of a Debian image. [`open`] splits the
//! compressed stream into parts of a few MiB. Worker threads decode part `k` from the first
//! dynamic-Huffman block header at or after its nominal start, without the preceding output
//! ([`inflate`]: unknown bytes become markers), until the first such block boundary at or after the next
//! part's nominal start, which is exactly where the worker for part `k + 1` started if its guess was
//! right. The reader takes the parts in order: a part is used only when it starts at the very bit where
//! the output so far ends (a boundary reached by a decode that began at a known-good one), and its markers
//! are then replaced with the bytes just before it. A part that does not line up (a wrong guess, a block
//! larger than the part, a stream without dynamic blocks) is decoded by the reader itself, in order,
//! with the history known. The CRC-32 and size in the gzip trailer are checked at the end, as zlib does.
//!
//! Memory stays bounded: a part's output is capped (beyond the cap the reader decodes in bounded steps),
//! and workers run at most a few parts ahead of the reader; their buffers (compressed input, output) are
//! reused from part to part, since faulting fresh pages in cost more than the split saved on a busy
//! machine. Small layers, and streams whose first block is not dynamic (zlib-ng's fastest level writes
//! fixed-Huffman blocks only), take the serial path: zlib-rs on a worker thread, overlapping with the tar
//! parsing of the caller.

use super::image::{forward_only, TarStream};
use super::inflate::{self, Decoder, Halt, Limits, Output, WINDOW};
use flate2::Crc;
use kit_builder::source::Source;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Sizes that decide how a blob is split (tests use small ones).
#[derive(Clone, Copy, Debug)]
struct Tuning {
    /// Blobs with less compressed data are inflated on one core.
    parallel_min: u64,
    /// Nominal compressed size of a part (smaller for smaller blobs, so every worker gets parts).
    part_min: u64,
    part_max: u64,
    /// Most output of one speculative part; a part that would produce more is left to the reader.
    part_out_max: usize,
    /// Most output the reader decodes at a time when it decodes a part itself.
    step_out: usize,
    /// Output between two checks whether a speculative decode may drop the unknown history in the
    /// middle of a block.
    clean_check: usize,
    /// Compressed bytes read past a part's nominal end (blocks straddle it), grown when short, up to
    /// `margin_max` before the part is given up.
    margin: u64,
    margin_max: u64,
    /// Worker threads; 0 for one per core (at most [`MAX_WORKERS`]).
    workers: usize,
}

const TUNING: Tuning = Tuning {
    parallel_min: 4 << 20,
    part_min: 1 << 20,
    part_max: 4 << 20,
    part_out_max: 32 << 20,
    step_out: 4 << 20,
    clean_check: 128 << 10,
    margin: 512 << 10,
    margin_max: 16 << 20,
    workers: 0,
};

/// Candidate block starts a worker tries in one part before giving it up.
const MAX_CANDIDATES: usize = 64;
/// Most worker threads per blob.
const MAX_WORKERS: usize = 4;

/// The decompressed bytes of a gzip blob: inflated on several cores when it is large enough, else on
/// one (see the module documentation).
pub fn open(src: &Source) -> io::Result<Box<dyn TarStream>> {
    match Parallel::start(src, TUNING)? {
        Some(p) => Ok(Box::new(p)),
        None => serial(src),
    }
}

/// The parallel reader over `src` with sizes small enough for fuzz inputs, for the `gzip_parallel` fuzz
/// target (feeds/fuzz): at the production [`TUNING`] anything under 4 MiB takes the serial path, so
/// arbitrary bytes would never reach the speculative decodes, the joins and the in-order fallback.
/// Here there is no minimum size and two workers decode parts of 1 to 8 KiB; `knob` picks the part
/// size (bits 0-1), a speculative output cap just above the window (bit 2), an early check for a clean
/// window (bit 3) and a compressed-input margin too small to reach the end of the blob (bit 4), so the
/// ways a worker gives up are reached too. `None` when the reader would take the serial path (not a
/// gzip header it handles, or a first block that is not dynamic). Not part of the API.
#[doc(hidden)]
pub fn parallel_for_fuzzing(src: &Source, knob: u8) -> io::Result<Option<Box<dyn TarStream>>> {
    let part = 1u64 << (10 + (knob & 3));
    let tuning = Tuning {
        parallel_min: 0,
        part_min: part,
        part_max: part,
        part_out_max: if knob & 4 == 0 {
            256 << 10
        } else {
            WINDOW + (4 << 10)
        },
        step_out: 8 << 10,
        clean_check: if knob & 8 == 0 { 4 << 10 } else { 1 << 10 },
        margin: 1 << 10,
        margin_max: if knob & 16 == 0 { 1 << 20 } else { 16 << 10 },
        workers: 2,
    };
    Ok(Parallel::start(src, tuning)?.map(|p| Box::new(p) as Box<dyn TarStream>))
}

/// The decompressed bytes of a gzip blob, inflated by zlib-rs on a worker thread (every member of a
/// multi-member file, as `gzip -d` does).
pub fn serial(src: &Source) -> io::Result<Box<dyn TarStream>> {
    let raw = io::BufReader::with_capacity(1 << 20, src.open()?);
    Ok(super::image::pipelined(Box::new(
        flate2::read::MultiGzDecoder::new(raw),
    )))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Random access to the compressed bytes.
#[derive(Debug)]
enum Blob {
    File { file: File, base: u64, len: u64 },
    Memory(Arc<[u8]>),
}

impl Blob {
    fn open(src: &Source) -> io::Result<Blob> {
        Ok(match src {
            Source::Path(p) => {
                let file = File::open(p)?;
                let len = file.metadata()?.len();
                Blob::File { file, base: 0, len }
            }
            Source::Slice { file, offset, len } => Blob::File {
                file: File::open(file)?,
                base: *offset,
                len: *len,
            },
            Source::Memory(b) => Blob::Memory(b.clone()),
        })
    }

    fn len(&self) -> u64 {
        match self {
            Blob::File { len, .. } => *len,
            Blob::Memory(b) => b.len() as u64,
        }
    }

    /// Appends the bytes at `off..off + n` (fewer at the end of the blob) to `buf`.
    fn read_into(&self, off: u64, n: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        let n = n.min(self.len().saturating_sub(off));
        let n = usize::try_from(n).map_err(|_| invalid("part too large"))?;
        let at = buf.len();
        match self {
            Blob::File { file, base, .. } => {
                buf.resize(at + n, 0);
                file.read_exact_at(&mut buf[at..], base + off)?;
            }
            Blob::Memory(b) => {
                let off = usize::try_from(off).map_err(|_| invalid("offset too large"))?;
                buf.extend_from_slice(&b[off..off + n]);
            }
        }
        Ok(())
    }

    /// The rest of the blob from `off`, as a source for the serial decoder.
    fn rest(&self, src: &Source, off: u64) -> Source {
        match (self, src) {
            (Blob::File { base, len, .. }, Source::Path(p) | Source::Slice { file: p, .. }) => {
                Source::Slice {
                    file: p.clone(),
                    offset: base + off,
                    len: len - off,
                }
            }
            (_, _) => {
                let mut v = Vec::new();
                // In-memory blobs are small manifests in practice; read errors cannot happen for them.
                let _ = self.read_into(off, self.len().saturating_sub(off), &mut v);
                Source::Memory(v.into())
            }
        }
    }
}

/// Length of the gzip member header at the start of `head` (RFC 1952), or `None` when it is not one
/// this reader handles (the serial decoder then reports what is wrong).
fn header_len(head: &[u8]) -> Option<usize> {
    const RESERVED: u8 = 0xe0;
    if head.len() < 10 || head[0] != 0x1f || head[1] != 0x8b || head[2] != 8 {
        return None;
    }
    let flags = head[3];
    if flags & RESERVED != 0 {
        return None;
    }
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        let xlen = usize::from(u16::from_le_bytes([*head.get(at)?, *head.get(at + 1)?]));
        at += 2 + xlen;
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            at += head.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & 0x02 != 0 {
        let mut crc = Crc::new();
        crc.update(head.get(..at)?);
        let want = u16::from_le_bytes([*head.get(at)?, *head.get(at + 1)?]);
        if crc.sum() as u16 != want {
            return None;
        }
        at += 2;
    }
    (at <= head.len()).then_some(at)
}

/// One part decoded by a worker.
struct Part {
    /// Bit (from the start of the DEFLATE stream) where decoding started: a block boundary if the
    /// guess was right.
    start: u64,
    /// Bit where it halted: the block boundary the next part should start at, or the stream's end.
    end: u64,
    /// Whether the final block was decoded.
    last: bool,
    /// The [`WINDOW`] markers it began with, then the symbols decoded before the output was free of
    /// markers (none for part 0).
    markers: Output<u16>,
    /// Bytes decoded after that, from `plain_from` (the bytes before are history).
    plain: Output<u8>,
    plain_from: usize,
    /// CRC-32 of the bytes from `plain_from`.
    plain_crc: Crc,
}

/// Spare buffers kept per kind (a part's buffers come back before the next part is taken, mostly); more
/// are freed, and so are buffers larger than [`SPARE_MAX`] bytes (grown by an unusually large part), so
/// the pool does not hold on to a burst's worth of memory.
const SPARES: usize = 3;
const SPARE_MAX: usize = 16 << 20;

struct State {
    /// Next part a worker should take.
    next: usize,
    /// The part the reader needs next.
    wanted: usize,
    /// Finished parts (`None`: the worker gave up on it).
    done: BTreeMap<usize, Option<Part>>,
    /// The reader is gone.
    stop: bool,
    spare8: Vec<Output<u8>>,
    spare16: Vec<Output<u16>>,
}

struct Shared {
    tuning: Tuning,
    blob: Blob,
    /// Offset of the DEFLATE stream in the blob, and its length up to the blob's end.
    deflate_at: u64,
    deflate_len: u64,
    part: u64,
    parts: usize,
    /// Parts a worker may run ahead of the reader.
    ahead: usize,
    state: Mutex<State>,
    changed: Condvar,
}

impl State {
    /// Keeps a part's buffers for later parts (up to [`SPARES`] of each kind).
    fn recycle(&mut self, plain: Output<u8>, markers: Output<u16>) {
        self.recycle8(plain);
        self.recycle16(markers);
    }

    fn recycle8(&mut self, buf: Output<u8>) {
        if self.spare8.len() < SPARES && buf.buf.len() <= SPARE_MAX {
            self.spare8.push(buf);
        }
    }

    fn recycle16(&mut self, buf: Output<u16>) {
        if self.spare16.len() < SPARES && 2 * buf.buf.len() <= SPARE_MAX {
            self.spare16.push(buf);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked while holding the lock left consistent data (it only inserts whole
        // parts), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads compressed bytes `from..to` of the DEFLATE stream (clipped to its end) into `buf`.
    fn read_deflate(&self, from: u64, to: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        let to = to.min(self.deflate_len);
        self.blob
            .read_into(self.deflate_at + from, to.saturating_sub(from), buf)
    }

    /// Whether a final block ending at `end_bit` is followed by a gzip trailer ending the blob or
    /// starting another member, as the real end of the stream is.
    fn plausible_end(&self, end_bit: u64) -> bool {
        let trailer_end = end_bit.div_ceil(8) + 8;
        if trailer_end == self.deflate_len {
            return true;
        }
        let mut magic = Vec::new();
        trailer_end < self.deflate_len
            && self
                .read_deflate(trailer_end, trailer_end + 2, &mut magic)
                .is_ok()
            && magic == [0x1f, 0x8b]
    }
}

/// A worker: takes parts in order, at most `ahead` beyond the one the reader needs.
fn work(shared: &Shared) {
    let mut dec = Decoder::default();
    // Compressed input, kept across parts so its pages are not faulted in again for each.
    let mut input = Vec::new();
    loop {
        let (k, buf8, buf16) = {
            let mut st = shared.lock();
            loop {
                if st.stop || st.next >= shared.parts {
                    return;
                }
                st.next = st.next.max(st.wanted);
                if st.next < st.wanted + shared.ahead {
                    break;
                }
                st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            let k = st.next;
            st.next += 1;
            (
                k,
                take_largest(&mut st.spare8),
                take_largest(&mut st.spare16),
            )
        };
        let part = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            speculate(shared, k, &mut dec, &mut input, buf8, buf16)
        }))
        .unwrap_or(None);
        dec.reset();
        let mut st = shared.lock();
        st.done.insert(k, part);
        shared.changed.notify_all();
    }
}

/// The spare buffer with the most room (a part's output is large), or a new one.
fn take_largest<T: Default>(spares: &mut Vec<Output<T>>) -> Output<T> {
    let best = (0..spares.len()).max_by_key(|&i| spares[i].buf.len());
    best.map(|i| spares.swap_remove(i)).unwrap_or_default()
}

/// Decodes part `k` from a guessed block start (the stream's start for part 0), or gives up.
fn speculate(
    shared: &Shared,
    k: usize,
    dec: &mut Decoder,
    input: &mut Vec<u8>,
    mut plain: Output<u8>,
    mut markers: Output<u16>,
) -> Option<Part> {
    let t = shared.tuning;
    let part = shared.part;
    let base = k as u64 * part;
    let nominal_end = base + part;
    input.clear();
    let mut margin = t.margin;
    shared
        .read_deflate(base, nominal_end + margin, input)
        .ok()?;
    // Bits below are relative to `base`.
    let stop_bit = part * 8;
    let cap = t.part_out_max + WINDOW;
    let limits = |input: &Vec<u8>, max_out: usize, until_clean: bool| Limits {
        stop_bit,
        max_out,
        input_final: base + input.len() as u64 >= shared.deflate_len,
        until_clean,
    };
    let mut from = 0u64;
    for _ in 0..MAX_CANDIDATES {
        let start = if k == 0 {
            0
        } else {
            inflate::find_block(dec, input, from, stop_bit)?
        };
        from = start + 1;
        dec.reset();
        // Part 0 starts at the stream's start: no unknown history, plain bytes from the first.
        let mut at = start;
        let mut clean = k == 0;
        plain.clear();
        markers.clear();
        if !clean {
            inflate::marker_window(&mut markers);
        }
        let outcome = loop {
            let r = if clean {
                dec.decode(input, at, &mut plain, limits(input, cap, false))
            } else {
                // In steps, so the history can be dropped inside a long block too.
                let step = (markers.len + t.clean_check).min(cap);
                dec.decode(input, at, &mut markers, limits(input, step, true))
            };
            match r {
                Ok((bit, Halt::InputLow)) => {
                    if margin >= t.margin_max {
                        return None;
                    }
                    let have = input.len() as u64;
                    margin *= 4;
                    shared
                        .read_deflate(base + have, nominal_end + margin, input)
                        .ok()?;
                    at = bit;
                }
                Ok((bit, Halt::OutputFull)) if !clean && markers.len < cap => {
                    let m = markers.data();
                    if !m[m.len() - WINDOW..].iter().any(|&s| s >= inflate::MARKER) {
                        plain.extend(m[m.len() - WINDOW..].iter().map(|&s| s as u8));
                        clean = true;
                    }
                    at = bit;
                }
                Ok((bit, Halt::Clean)) => {
                    // The history is no longer needed: go on with bytes, the last window as history.
                    let m = markers.data();
                    plain.extend(m[m.len() - WINDOW..].iter().map(|&s| s as u8));
                    clean = true;
                    at = bit;
                }
                Ok((_, Halt::OutputFull)) => return None,
                Ok((bit, Halt::Stop)) => break Some((bit, false)),
                Ok((bit, Halt::Last)) => {
                    // A final block far from the blob's end is a stream stored inside this one (a .gz
                    // file in the layer's tar, in a stored block): not this stream's end.
                    if shared.plausible_end(base * 8 + bit) {
                        break Some((bit, true));
                    }
                    break None;
                }
                Err(_) => break None,
            }
        };
        let Some((end, last)) = outcome else {
            if k == 0 {
                return None;
            }
            continue;
        };
        let plain_from = match (k, clean) {
            (0, _) => 0,
            (_, true) => WINDOW,
            (_, false) => plain.len,
        };
        let mut plain_crc = Crc::new();
        plain_crc.update(&plain.data()[plain_from..]);
        return Some(Part {
            start: base * 8 + start,
            end: base * 8 + end,
            last,
            markers,
            plain,
            plain_from,
            plain_crc,
        });
    }
    None
}

/// The reader decoding a part itself, in order, with the history known.
struct InOrder {
    dec: Decoder,
    /// Compressed bytes from `input_at` (a byte offset in the DEFLATE stream).
    input: Vec<u8>,
    input_at: u64,
    /// History (up to [`WINDOW`] bytes) followed by new output.
    out: Output<u8>,
    /// Where decoding goes on, in bits from the start of the DEFLATE stream.
    at: u64,
}

/// A gzip member inflated on several cores; see the module documentation.
struct Parallel {
    shared: Arc<Shared>,
    /// Where to go on from `rest` after the member (another member, or trailing data).
    src: Source,
    /// Bit where the output so far ends: a block boundary.
    at: u64,
    /// The last (up to) [`WINDOW`] bytes of output.
    window: Vec<u8>,
    crc: Crc,
    total: u64,
    /// Output ready to be read: buffers and the offset of their first unread byte.
    ready: VecDeque<(Output<u8>, usize)>,
    in_order: Option<InOrder>,
    /// The member is done; what follows it, if anything, is read from here.
    rest: Option<Box<dyn TarStream>>,
    finished: bool,
    /// Bytes read or skipped so far.
    pos: u64,
}

impl Parallel {
    /// Starts workers for a large gzip blob whose stream begins with a dynamic block; `None` when
    /// the serial path suits it better.
    fn start(src: &Source, tuning: Tuning) -> io::Result<Option<Parallel>> {
        let workers = match tuning.workers {
            0 => std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
                .min(MAX_WORKERS),
            n => n,
        };
        let blob = Blob::open(src)?;
        if workers < 2 || blob.len() < tuning.parallel_min {
            return Ok(None);
        }
        let mut head = Vec::new();
        blob.read_into(0, 64 << 10, &mut head)?;
        let Some(deflate_at) = header_len(&head) else {
            return Ok(None);
        };
        // zlib-ng's fastest level writes only fixed-Huffman blocks, which cannot be found by their
        // header: such a stream is inflated serially.
        if head.get(deflate_at).is_none_or(|&b| b & 7 != 0b100) {
            return Ok(None);
        }
        let deflate_len = blob.len() - deflate_at as u64;
        let part = (deflate_len / (4 * workers as u64)).clamp(tuning.part_min, tuning.part_max);
        let parts =
            usize::try_from(deflate_len.div_ceil(part)).map_err(|_| invalid("too large"))?;
        let shared = Arc::new(Shared {
            tuning,
            blob,
            deflate_at: deflate_at as u64,
            deflate_len,
            part,
            parts,
            ahead: workers + 1,
            state: Mutex::new(State {
                next: 0,
                wanted: 0,
                done: BTreeMap::new(),
                stop: false,
                spare8: Vec::new(),
                spare16: Vec::new(),
            }),
            changed: Condvar::new(),
        });
        let mut started = 0;
        for _ in 0..workers {
            let s = shared.clone();
            if std::thread::Builder::new()
                .name("stella-inflate".into())
                .spawn(move || work(&s))
                .is_ok()
            {
                started += 1;
            }
        }
        if started == 0 {
            return Ok(None);
        }
        Ok(Some(Parallel {
            shared,
            src: src.clone(),
            at: 0,
            window: Vec::with_capacity(WINDOW),
            crc: Crc::new(),
            total: 0,
            ready: VecDeque::new(),
            in_order: None,
            rest: None,
            finished: false,
            pos: 0,
        }))
    }

    /// The part whose speculative decode could start at `at`.
    fn part_at(&self, at: u64) -> usize {
        usize::try_from(at / (self.shared.part * 8)).unwrap_or(usize::MAX)
    }

    /// Queues output bytes (`buf` from `from`): CRC (unless given, for bytes a worker summed), size,
    /// window.
    fn emit(&mut self, buf: Output<u8>, from: usize, crc: Option<&Crc>) {
        let bytes = &buf.data()[from..];
        match crc {
            Some(c) => self.crc.combine(c),
            None => self.crc.update(bytes),
        }
        self.total += bytes.len() as u64;
        if bytes.len() >= WINDOW {
            self.window.clear();
            self.window
                .extend_from_slice(&bytes[bytes.len() - WINDOW..]);
        } else {
            let keep = WINDOW - bytes.len();
            if self.window.len() > keep {
                self.window.drain(..self.window.len() - keep);
            }
            self.window.extend_from_slice(bytes);
        }
        if bytes.is_empty() {
            self.recycle8(buf);
        } else {
            self.ready.push_back((buf, from));
        }
    }

    fn recycle8(&self, buf: Output<u8>) {
        self.shared.lock().recycle8(buf);
    }

    /// An output buffer from the pool (initialised room from earlier use).
    fn spare8(&self) -> Output<u8> {
        // The smallest: the reader's own output (resolved markers, history) is short; workers take the
        // large ones.
        let mut st = self.shared.lock();
        let pick = (0..st.spare8.len()).min_by_key(|&i| st.spare8[i].buf.len());
        let mut b = pick.map(|i| st.spare8.swap_remove(i)).unwrap_or_default();
        b.clear();
        b
    }

    /// Produces more output (or finishes the member).
    fn fill(&mut self) -> io::Result<()> {
        if self.in_order.is_some() {
            return self.step_in_order();
        }
        let k = self.part_at(self.at);
        let part = if k < self.shared.parts {
            let mut st = self.shared.lock();
            st.wanted = k;
            // Parts before `k` will not be used: recycle their buffers.
            while let Some((&i, _)) = st.done.first_key_value() {
                if i >= k {
                    break;
                }
                if let Some(Some(p)) = st.done.remove(&i) {
                    st.recycle(p.plain, p.markers);
                }
            }
            self.shared.changed.notify_all();
            loop {
                if let Some(p) = st.done.remove(&k) {
                    break p;
                }
                st = self
                    .shared
                    .changed
                    .wait(st)
                    .unwrap_or_else(|e| e.into_inner());
            }
        } else {
            None
        };
        match part {
            Some(p) if p.start == self.at => {
                tracing::trace!(
                    part = k,
                    markers = p.markers.len.saturating_sub(WINDOW),
                    bytes = p.plain.len - p.plain_from,
                    "gzip part decoded by a worker"
                );
                let mut resolved = self.spare8();
                if let Some(symbols) = p.markers.data().get(WINDOW..) {
                    inflate::resolve(symbols, &self.window, &mut resolved)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                self.emit(resolved, 0, None);
                self.emit(p.plain, p.plain_from, Some(&p.plain_crc));
                self.shared.lock().recycle16(p.markers);
                self.at = p.end;
                if p.last {
                    self.finish_member()?;
                }
            }
            other => {
                // A wrong guess, a part given up, or a stream whose parts cannot be found.
                tracing::debug!(
                    part = k,
                    at_bit = self.at,
                    guessed_bit = other.as_ref().map(|p| p.start),
                    "gzip part decoded in order"
                );
                let mut st = self.shared.lock();
                if let Some(p) = other {
                    st.recycle(p.plain, p.markers);
                }
                // Workers may go on with the parts after this one.
                st.wanted = k + 1;
                self.shared.changed.notify_all();
                drop(st);
                let mut out = self.spare8();
                out.extend(self.window.iter().copied());
                self.in_order = Some(InOrder {
                    dec: Decoder::default(),
                    input: Vec::new(),
                    input_at: self.at / 8,
                    out,
                    at: self.at,
                });
            }
        }
        Ok(())
    }

    /// Decodes in order from the current position, up to [`Tuning::step_out`] bytes, until the boundary where
    /// the next part should start.
    fn step_in_order(&mut self) -> io::Result<()> {
        let Some(mut io) = self.in_order.take() else {
            return Ok(());
        };
        let k = self.part_at(self.at);
        let stop = if k + 1 < self.shared.parts {
            (k as u64 + 1) * self.shared.part * 8
        } else {
            u64::MAX
        };
        loop {
            // Keep at least a part's worth of compressed input ahead.
            let have_to = io.input_at + io.input.len() as u64;
            let consumed = io.at / 8 - io.input_at;
            let ahead = 2 * self.shared.part.max(1 << 20);
            if have_to < self.shared.deflate_len && (io.input.len() as u64 - consumed) < ahead / 2 {
                let keep = usize::try_from(consumed).map_err(|_| invalid("too large"))?;
                io.input.drain(..keep);
                io.input_at += consumed;
                self.shared.read_deflate(
                    io.input_at + io.input.len() as u64,
                    io.input_at + ahead,
                    &mut io.input,
                )?;
            }
            let history = io.out.len;
            let limits = Limits {
                stop_bit: stop.saturating_sub(io.input_at * 8),
                max_out: history + self.shared.tuning.step_out,
                input_final: io.input_at + io.input.len() as u64 >= self.shared.deflate_len,
                until_clean: false,
            };
            let (bit, halt) = io
                .dec
                .decode(&io.input, io.at - io.input_at * 8, &mut io.out, limits)
                .map_err(|e| invalid(e.to_string()))?;
            io.at = io.input_at * 8 + bit;
            if halt == Halt::InputLow {
                continue;
            }
            let out = std::mem::take(&mut io.out);
            self.emit(out, history, None);
            self.at = io.at;
            match halt {
                Halt::Last => return self.finish_member(),
                Halt::Stop | Halt::Clean => return Ok(()),
                Halt::OutputFull | Halt::InputLow => {
                    io.out = self.spare8();
                    io.out.extend(self.window.iter().copied());
                    self.in_order = Some(io);
                    return Ok(());
                }
            }
        }
    }

    /// Checks the trailer after the final block and sets up reading whatever follows the member.
    fn finish_member(&mut self) -> io::Result<()> {
        self.finished = true;
        {
            let mut st = self.shared.lock();
            st.stop = true;
            self.shared.changed.notify_all();
        }
        let trailer_at = self.at.div_ceil(8);
        let mut trailer = Vec::new();
        self.shared
            .read_deflate(trailer_at, trailer_at + 8, &mut trailer)?;
        if trailer.len() < 8 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "gzip trailer is truncated",
            ));
        }
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc != self.crc.sum() {
            return Err(invalid("gzip CRC-32 does not match the data"));
        }
        if size != self.total as u32 {
            return Err(invalid("gzip size does not match the data"));
        }
        let next = self.shared.deflate_at + trailer_at + 8;
        if next < self.shared.blob.len() {
            self.rest = Some(serial(&self.shared.blob.rest(&self.src, next))?);
        }
        Ok(())
    }
}

impl Parallel {
    /// Hands over up to `n` unread bytes: copies them into `out` when given, else skips them. Zero at
    /// the end of the stream.
    fn take(&mut self, n: usize, mut out: Option<&mut [u8]>) -> io::Result<usize> {
        loop {
            if let Some((buf, from)) = self.ready.front_mut() {
                let data = buf.data();
                let n = n.min(data.len() - *from);
                if let Some(out) = out.as_deref_mut() {
                    out[..n].copy_from_slice(&data[*from..*from + n]);
                }
                *from += n;
                if *from == data.len() {
                    if let Some((buf, _)) = self.ready.pop_front() {
                        self.recycle8(buf);
                    }
                }
                self.pos += n as u64;
                return Ok(n);
            }
            if self.finished {
                let Some(rest) = &mut self.rest else {
                    return Ok(0);
                };
                let got = match out {
                    Some(out) => rest.read(&mut out[..n])?,
                    None => {
                        let want = i64::try_from(n).unwrap_or(i64::MAX);
                        let before = rest.stream_position()?;
                        (rest.seek(SeekFrom::Current(want))? - before) as usize
                    }
                };
                self.pos += got as u64;
                return Ok(got);
            }
            self.fill()?;
        }
    }
}

impl Read for Parallel {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len();
        self.take(n, Some(out))
    }
}

impl Seek for Parallel {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(n) = to else {
            return Err(forward_only());
        };
        let mut left = u64::try_from(n).map_err(|_| forward_only())?;
        while left > 0 {
            let got = self.take(usize::try_from(left).unwrap_or(usize::MAX), None)?;
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            left -= got as u64;
        }
        Ok(self.pos)
    }
}

impl Drop for Parallel {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.stop = true;
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Deterministic test data: words, numbers, zero runs (like tar padding) and random bytes.
    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words = [
            "package",
            "version",
            "depends",
            "libc6",
            "amd64",
            "install",
            "ok",
            "debian",
            "usr",
            "share",
            "doc",
            "copyright",
            "license",
            "\n",
            "=",
            ": ",
        ];
        let mut out = Vec::with_capacity(len + 64);
        while out.len() < len {
            match next() % 16 {
                0 => out.extend(std::iter::repeat_n(0u8, (next() % 700) as usize)),
                1 => {
                    for _ in 0..(next() % 300) {
                        out.push(next() as u8);
                    }
                }
                _ => {
                    out.extend_from_slice(words[(next() % words.len() as u64) as usize].as_bytes());
                    out.push(b' ');
                    if next() % 3 == 0 {
                        out.extend_from_slice(format!("{}", next() % 100_000).as_bytes());
                    }
                }
            }
        }
        out.truncate(len);
        out
    }

    fn gz(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn small() -> Tuning {
        Tuning {
            parallel_min: 0,
            part_min: 8 << 10,
            part_max: 8 << 10,
            part_out_max: 256 << 10,
            step_out: 16 << 10,
            clean_check: 4 << 10,
            margin: 2 << 10,
            margin_max: 1 << 20,
            workers: 2,
        }
    }

    /// Inflates `blob` with the parallel reader (it must take it) and returns the bytes or the error.
    fn inflate_parallel(blob: &[u8], tuning: Tuning) -> io::Result<Vec<u8>> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(blob).unwrap();
        let src = Source::Path(f.path().to_owned());
        let mut r = Parallel::start(&src, tuning)?.expect("parallel path");
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn parallel_output_is_the_serial_output_at_every_level() {
        let data = sample(600 << 10, 7);
        // zlib-rs's level 1 may begin with a fixed-Huffman block, which the serial path takes.
        for level in [2, 6, 9] {
            let blob = gz(&data, level);
            assert!(blob.len() > 4 * (8 << 10), "level {level}: too few parts");
            assert_eq!(blob[10] & 7, 0b100, "level {level}: first block");
            assert!(
                inflate_parallel(&blob, small()).unwrap() == data,
                "level {level}"
            );
        }
    }

    #[test]
    fn streams_stored_inside_the_stream_are_not_taken_for_its_blocks() {
        // A layer's tar holds .gz files; where the outer stream stores them, their bytes are real
        // dynamic blocks and final blocks that a worker may find.
        let mut data = Vec::new();
        for i in 0..40 {
            data.extend(sample(2 << 10, 100 + i));
            data.extend(gz(&sample(12 << 10, 200 + i), 9));
        }
        let blob = gz(&data, 6);
        assert!(inflate_parallel(&blob, small()).unwrap() == data);
    }

    #[test]
    fn highly_compressible_parts_are_decoded_in_bounded_steps() {
        // 8 MiB of mostly zeros: each part would inflate far beyond `part_out_max`.
        let mut data = vec![0u8; 8 << 20];
        for (i, b) in data.iter_mut().enumerate().step_by(4099) {
            *b = i as u8;
        }
        let blob = gz(&data, 6);
        let mut t = small();
        t.part_min = 1 << 10;
        t.part_max = 1 << 10;
        assert!(inflate_parallel(&blob, t).unwrap() == data);
    }

    #[test]
    fn skipping_forward_passes_over_the_same_bytes_reading_would() {
        let (a, b) = (sample(300 << 10, 11), sample(40 << 10, 12));
        let mut blob = gz(&a, 6);
        blob.extend(gz(&b, 6));
        let want = [a, b].concat();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&blob).unwrap();
        let src = Source::Path(f.path().to_owned());
        let mut r = Parallel::start(&src, small())
            .unwrap()
            .expect("parallel path");
        let (mut at, mut step) = (0usize, 1usize);
        let mut buf = vec![0u8; 700];
        // Alternate reads and skips of growing size, across parts and into the second member.
        while at + buf.len() < want.len() {
            r.read_exact(&mut buf).unwrap();
            assert!(buf[..] == want[at..at + buf.len()], "at {at}");
            at += buf.len();
            let skip = (step * 7919) % (60 << 10);
            if at + skip >= want.len() {
                break;
            }
            assert_eq!(
                r.seek(SeekFrom::Current(skip as i64)).unwrap(),
                (at + skip) as u64
            );
            at += skip;
            step += 1;
        }
        assert!(r.seek(SeekFrom::Start(0)).is_err());
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest == want[at..]);
    }

    #[test]
    fn the_fuzzing_hook_takes_the_parallel_path_at_every_tuning() {
        let data = sample(150 << 10, 21);
        let blob = gz(&data, 6);
        for knob in 0..32u8 {
            let src = Source::Memory(blob.clone().into());
            let mut r = parallel_for_fuzzing(&src, knob)
                .unwrap()
                .expect("parallel path");
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert!(out == data, "knob {knob}");
        }
    }

    #[test]
    fn members_after_the_first_are_read_too() {
        let (a, b) = (sample(200 << 10, 1), sample(50 << 10, 2));
        let mut blob = gz(&a, 6);
        blob.extend(gz(&b, 6));
        let mut want = a;
        want.extend(b);
        assert!(inflate_parallel(&blob, small()).unwrap() == want);
    }

    #[test]
    fn a_wrong_crc_or_size_or_a_cut_stream_is_an_error() {
        let data = sample(200 << 10, 3);
        let blob = gz(&data, 6);
        let mut bad_crc = blob.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let e = inflate_parallel(&bad_crc, small()).unwrap_err();
        assert_eq!(e.to_string(), "gzip CRC-32 does not match the data");
        let mut bad_size = blob.clone();
        bad_size[n - 1] ^= 1;
        let e = inflate_parallel(&bad_size, small()).unwrap_err();
        assert_eq!(e.to_string(), "gzip size does not match the data");
        let e = inflate_parallel(&blob[..n - 1000], small()).unwrap_err();
        assert_eq!(e.to_string(), "deflate stream is truncated");
    }

    #[test]
    fn small_blobs_and_streams_not_starting_with_a_dynamic_block_go_serial() {
        let data = sample(100 << 10, 4);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&gz(&data, 0)).unwrap();
        let src = Source::Path(f.path().to_owned());
        assert!(Parallel::start(&src, small()).unwrap().is_none());
        let mut out = Vec::new();
        open(&src).unwrap().read_to_end(&mut out).unwrap();
        assert!(out == data);
    }

    #[test]
    fn gzip_headers_with_optional_fields() {
        let mut h = vec![0x1f, 0x8b, 8, 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 3];
        h.extend([2, 0, b'a', b'b']);
        h.extend(b"name\0comment\0");
        assert_eq!(header_len(&h), Some(h.len()));
        let mut with_crc = h.clone();
        with_crc[3] |= 0x02;
        let mut c = Crc::new();
        c.update(&with_crc);
        with_crc.extend((c.sum() as u16).to_le_bytes());
        assert_eq!(header_len(&with_crc), Some(with_crc.len()));
        let n = with_crc.len();
        with_crc[n - 1] ^= 1;
        assert_eq!(header_len(&with_crc), None);
        assert_eq!(header_len(b"\x1f\x8b\x08\xe0\0\0\0\0\0\x03"), None);
        assert_eq!(header_len(b"PK\x03\x04"), None);
    }
}
