//! A DEFLATE (RFC 1951) decoder that can start at a block boundary without the 32 KiB of output before
//! it, so that one gzip member can be inflated on several cores ([`super::gzip`]).
//!
//! zlib decodes a stream only from its first bit. To split the work, a worker looks for the start of a
//! dynamic-Huffman block near an arbitrary offset ([`find_block`]) and decodes from there into 16-bit
//! symbols: bytes it could decode are `0..=255`, and bytes copied from the unknown window before its
//! start are *markers* `0x8000 + i` for byte `i` of that window (the output buffer starts with the 32 Ki
//! markers, so a match copies them like bytes). Once the window is known, [`resolve`] replaces them. As
//! soon as the last 32 KiB decoded hold no marker, nothing later can reach the unknown window, and the
//! worker goes on with plain bytes ([`Halt::Clean`]).
//!
//! Every decode reports the bit offset where it halted, so parts are only joined at a block boundary that
//! a decoder which started from a known-good boundary reached. A decode can be suspended when its output
//! or input runs short and resumed later (the current block's tables stay in the [`Decoder`]), so memory
//! stays bounded whatever the compression ratio.
//!
//! Validation follows zlib's rules: codes must be complete except a single one-bit code (and a distance
//! code with no codes at all), a block has an end-of-block code, stored lengths complement each other,
//! and no distance reaches before the stream.

/// Size of the history a distance can reach.
pub const WINDOW: usize = 32 << 10;
/// First marker value: `MARKER + i` stands for byte `i` of the unknown window.
pub const MARKER: u16 = 0x8000;

const LITLEN_BITS: u32 = 11;
const DIST_BITS: u32 = 8;
const CODELEN_BITS: u32 = 7;
/// Input kept beyond the current position before reading a block header (a stored block is up to
/// 64 KiB): with less, and more input to come, a decode halts with [`Halt::InputLow`].
const INPUT_RESERVE: usize = 66 << 10;

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// Order in which the code-length code's lengths are stored.
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Why a decode failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The input ended inside a block.
    Truncated,
    /// The bits are not valid DEFLATE (zlib's reason).
    Corrupt(&'static str),
}

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InflateError::Truncated => f.write_str("deflate stream is truncated"),
            InflateError::Corrupt(why) => write!(f, "invalid deflate stream: {why}"),
        }
    }
}

impl std::error::Error for InflateError {}

// A table entry: bits 0..5 how many bits to consume (the codeword, or the primary index for a subtable
// link), bits 8..12 extra bits (or a subtable's index bits), bits 12..16 the kind, bits 16..32 the
// value (literal, base length, base distance, subtable start).
const K_BAD: u32 = 0;
const K_LIT: u32 = 1;
const K_LEN: u32 = 2;
const K_EOB: u32 = 3;
const K_SUB: u32 = 4;
const K_DIST: u32 = 5;

#[inline(always)]
const fn entry(kind: u32, len: u32, extra: u32, value: u32) -> u32 {
    (value << 16) | (kind << 12) | (extra << 8) | len
}
#[inline(always)]
fn e_len(e: u32) -> u32 {
    e & 0x1f
}
#[inline(always)]
fn e_extra(e: u32) -> u32 {
    (e >> 8) & 0xf
}
#[inline(always)]
fn e_kind(e: u32) -> u32 {
    (e >> 12) & 0xf
}
#[inline(always)]
fn e_value(e: u32) -> u32 {
    e >> 16
}

/// What the symbols of a table stand for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Alphabet {
    LitLen,
    Dist,
    CodeLen,
}

/// A canonical Huffman decoding table: a primary table indexed by the next `bits` input bits, then
/// subtables for longer codewords.
#[derive(Clone, Debug)]
struct Table {
    entries: Vec<u32>,
    bits: u32,
}

impl Table {
    fn new(bits: u32) -> Self {
        Table {
            entries: vec![0; 1 << bits],
            bits,
        }
    }

    /// Builds the table for code lengths `lens` (0: symbol unused), with zlib's acceptance rules.
    fn build(&mut self, lens: &[u8], alphabet: Alphabet) -> Result<(), InflateError> {
        let mut count = [0u16; 16];
        for &l in lens {
            count[usize::from(l & 15)] += 1;
        }
        count[0] = 0;
        let max = (1..16).rev().find(|&l| count[l] != 0).unwrap_or(0) as u32;
        let mut left: i32 = 1;
        for &c in &count[1..] {
            left = (left << 1) - i32::from(c);
            if left < 0 {
                return Err(InflateError::Corrupt("over-subscribed code"));
            }
        }
        if max == 0 && alphabet != Alphabet::Dist {
            return Err(InflateError::Corrupt("code without symbols"));
        }
        if left > 0 && (alphabet == Alphabet::CodeLen || max > 1) {
            return Err(InflateError::Corrupt("incomplete code"));
        }
        // First canonical codeword of each length.
        let mut next = [0u32; 16];
        let mut code = 0u32;
        for l in 1..16 {
            code = (code + u32::from(count[l - 1])) << 1;
            next[l] = code;
        }
        let primary = self.bits;
        let sub_bits = max.saturating_sub(primary);
        self.entries.clear();
        self.entries.resize(1 << primary, entry(K_BAD, 0, 0, 0));
        for (sym, &l) in lens.iter().enumerate() {
            let l = u32::from(l);
            if l == 0 {
                continue;
            }
            let c = next[l as usize];
            next[l as usize] += 1;
            // Codewords are read least-significant bit first: index by the reversed codeword.
            let rev = c.reverse_bits() >> (32 - l);
            let value = symbol(alphabet, sym);
            if l <= primary {
                let e = value | l;
                let mut i = rev as usize;
                while i < (1 << primary) {
                    self.entries[i] = e;
                    i += 1 << l;
                }
            } else {
                let low = (rev & ((1 << primary) - 1)) as usize;
                if e_kind(self.entries[low]) != K_SUB {
                    let start = self.entries.len();
                    self.entries[low] = entry(K_SUB, primary, sub_bits, start as u32);
                    self.entries
                        .resize(start + (1 << sub_bits), entry(K_BAD, 0, 0, 0));
                }
                let start = e_value(self.entries[low]) as usize;
                let rest = l - primary;
                let e = value | rest;
                let mut i = (rev >> primary) as usize;
                while i < (1 << sub_bits) {
                    self.entries[start + i] = e;
                    i += 1 << rest;
                }
            }
        }
        Ok(())
    }
}

/// A symbol's table entry, without its codeword length.
fn symbol(alphabet: Alphabet, sym: usize) -> u32 {
    match alphabet {
        Alphabet::LitLen => match sym {
            0..=255 => entry(K_LIT, 0, 0, sym as u32),
            256 => entry(K_EOB, 0, 0, 0),
            257..=285 => entry(
                K_LEN,
                0,
                u32::from(LEN_EXTRA[sym - 257]),
                u32::from(LEN_BASE[sym - 257]),
            ),
            // 286 and 287 exist in the fixed code but are invalid.
            _ => entry(K_BAD, 0, 0, 0),
        },
        Alphabet::Dist => match sym {
            0..=29 => entry(
                K_DIST,
                0,
                u32::from(DIST_EXTRA[sym]),
                u32::from(DIST_BASE[sym]),
            ),
            _ => entry(K_BAD, 0, 0, 0),
        },
        Alphabet::CodeLen => entry(K_LIT, 0, 0, sym as u32),
    }
}

/// Reads bits least-significant first, keeping up to 64 of them in a register. Past the end of the
/// input it reads zero bits; [`Bits::in_bounds`] tells whether any were consumed.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load (counting the zero bytes loaded past the end).
    pos: usize,
    buf: u64,
    count: u32,
}

impl<'a> Bits<'a> {
    fn at(data: &'a [u8], bit: u64) -> Self {
        let mut b = Bits {
            data,
            pos: usize::try_from(bit / 8).unwrap_or(usize::MAX / 2),
            buf: 0,
            count: 0,
        };
        b.refill();
        b.consume((bit % 8) as u32);
        b
    }

    /// Tops the register up to at least 56 bits.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(w) = self.data.get(self.pos..self.pos.saturating_add(8)) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.buf |= u64::from_le_bytes(a) << self.count;
            self.pos += ((63 - self.count) >> 3) as usize;
            self.count |= 56;
        } else {
            self.refill_slow();
        }
    }

    #[cold]
    fn refill_slow(&mut self) {
        while self.count <= 56 {
            let b = self.data.get(self.pos).copied().unwrap_or(0);
            self.buf |= u64::from(b) << self.count;
            self.pos = self.pos.saturating_add(1);
            self.count += 8;
        }
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf >>= n;
        self.count -= n;
    }

    /// The next `n` bits (n <= 16).
    fn take(&mut self, n: u32) -> u32 {
        if self.count < n {
            self.refill();
        }
        let v = (self.buf & ((1u64 << n) - 1)) as u32;
        self.consume(n);
        v
    }

    /// Bit offset of the next unread bit.
    fn position(&self) -> u64 {
        self.pos as u64 * 8 - u64::from(self.count)
    }

    /// Whether every consumed bit was input.
    fn in_bounds(&self) -> bool {
        self.position() <= self.data.len() as u64 * 8
    }

    /// Whole input bytes left after the next unread bit.
    fn bytes_left(&self) -> usize {
        let at = usize::try_from(self.position().div_ceil(8)).unwrap_or(usize::MAX);
        self.data.len().saturating_sub(at)
    }
}

/// An output symbol: `u8` when the history is known, `u16` (bytes and markers) when it is not.
pub trait Symbol: Copy + Default + Send + 'static {
    /// The symbol for a decoded byte.
    fn byte(b: u8) -> Self;
    /// Whether it stands for a byte of the unknown window.
    fn is_marker(self) -> bool;
}

impl Symbol for u8 {
    #[inline(always)]
    fn byte(b: u8) -> Self {
        b
    }
    #[inline(always)]
    fn is_marker(self) -> bool {
        false
    }
}

impl Symbol for u16 {
    #[inline(always)]
    fn byte(b: u8) -> Self {
        u16::from(b)
    }
    #[inline(always)]
    fn is_marker(self) -> bool {
        self >= MARKER
    }
}

/// When a decode halts (besides errors).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Halt at the first block boundary at or after this bit that starts a non-final dynamic-Huffman
    /// block (the kind of boundary [`find_block`] finds): [`Halt::Stop`].
    pub stop_bit: u64,
    /// Halt between two symbols once the output buffer holds this many: [`Halt::OutputFull`].
    pub max_out: usize,
    /// The input is the rest of the stream: running out of it is an error, not [`Halt::InputLow`].
    pub input_final: bool,
    /// Halt at a block boundary once the last [`WINDOW`] symbols hold no marker: [`Halt::Clean`].
    pub until_clean: bool,
}

/// Why a decode halted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    /// At the block boundary [`Limits::stop_bit`] asked for.
    Stop,
    /// After the final block: the stream ends at the halt bit.
    Last,
    /// At a block boundary, the last [`WINDOW`] symbols holding no marker.
    Clean,
    /// Mid-block: the output buffer is full; call again to go on.
    OutputFull,
    /// The input runs short: call again with more of it (the same bit offsets).
    InputLow,
}

/// A decode's output: `buf[..len]` is history and output, the rest of `buf` room. The room stays
/// initialised, so a buffer used again is not zeroed again.
#[derive(Debug, Clone, Default)]
pub struct Output<T> {
    /// The buffer.
    pub buf: Vec<T>,
    /// How much of it is history and output.
    pub len: usize,
}

impl<T: Symbol> Output<T> {
    /// History and output.
    pub fn data(&self) -> &[T] {
        &self.buf[..self.len]
    }

    /// Empties it, keeping the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends symbols.
    pub fn extend(&mut self, symbols: impl ExactSizeIterator<Item = T>) {
        let end = self.len + symbols.len();
        grow(&mut self.buf, end);
        for (o, s) in self.buf[self.len..end].iter_mut().zip(symbols) {
            *o = s;
        }
        self.len = end;
    }
}

/// Block counts by type (stored, fixed, dynamic), for deciding whether a stream can be split.
pub type BlockCounts = [u64; 3];

/// The decoder: the current block's tables, and whether a decode halted inside a block.
pub struct Decoder {
    litlen: Table,
    dist: Table,
    codelen: Table,
    lens: [u8; 320],
    /// A decode halted inside a Huffman block (its tables are the current ones).
    in_block: bool,
    /// The current block is the final one.
    final_block: bool,
    /// Blocks decoded, by type.
    pub blocks: BlockCounts,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("in_block", &self.in_block)
            .field("blocks", &self.blocks)
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            litlen: Table::new(LITLEN_BITS),
            dist: Table::new(DIST_BITS),
            codelen: Table::new(CODELEN_BITS),
            lens: [0; 320],
            in_block: false,
            final_block: false,
            blocks: [0; 3],
        }
    }
}

/// Room kept after the write position so matches may be copied in 16-symbol steps.
const SLACK: usize = 258 + 32;

/// Where [`Decoder::huffman`] stopped.
enum BlockEnd {
    Done,
    OutputFull,
    InputLow,
}

impl Decoder {
    /// Forgets a block halted in the middle (to start over elsewhere).
    pub fn reset(&mut self) {
        self.in_block = false;
        self.final_block = false;
    }

    /// Decodes from bit `start` of `input`, appending to `out`, until one of `limits` or the end of the
    /// stream. `out` already holds the history: distances may reach back to its beginning and no further.
    /// Returns the bit where it halted and why; after [`Halt::OutputFull`] or [`Halt::InputLow`], call
    /// again from that bit (with more room or more input) to go on.
    pub fn decode<T: Symbol>(
        &mut self,
        input: &[u8],
        start: u64,
        out: &mut Output<T>,
        limits: Limits,
    ) -> Result<(u64, Halt), InflateError> {
        let mut bits = Bits::at(input, start);
        let mut pos = out.len;
        let r = self.blocks_from(&mut bits, &mut out.buf, &mut pos, limits);
        out.len = pos;
        if r.is_err() {
            self.reset();
        }
        r.map(|halt| (bits.position(), halt))
    }

    fn blocks_from<T: Symbol>(
        &mut self,
        bits: &mut Bits<'_>,
        out: &mut Vec<T>,
        pos: &mut usize,
        limits: Limits,
    ) -> Result<Halt, InflateError> {
        loop {
            if !self.in_block {
                if !limits.input_final && bits.bytes_left() < INPUT_RESERVE {
                    return Ok(Halt::InputLow);
                }
                let header = bits.take(3);
                self.final_block = header & 1 == 1;
                match header >> 1 {
                    0 => {
                        self.blocks[0] += 1;
                        self.stored(bits, out, pos)?;
                    }
                    1 => {
                        self.blocks[1] += 1;
                        self.fixed_tables();
                        self.in_block = true;
                    }
                    2 => {
                        self.blocks[2] += 1;
                        self.dynamic_tables(bits)?;
                        self.in_block = true;
                    }
                    _ => return Err(InflateError::Corrupt("invalid block type")),
                }
                if !bits.in_bounds() {
                    return Err(InflateError::Truncated);
                }
            }
            if self.in_block {
                match self.huffman(bits, out, pos, limits)? {
                    BlockEnd::Done => self.in_block = false,
                    BlockEnd::OutputFull => return Ok(Halt::OutputFull),
                    BlockEnd::InputLow => return Ok(Halt::InputLow),
                }
                if !bits.in_bounds() {
                    return Err(InflateError::Truncated);
                }
            }
            if self.final_block {
                return Ok(Halt::Last);
            }
            if bits.position() >= limits.stop_bit {
                bits.refill();
                if bits.buf & 7 == 0b100 {
                    return Ok(Halt::Stop);
                }
            }
            if limits.until_clean
                && *pos >= WINDOW
                && !out[*pos - WINDOW..*pos].iter().any(|s| s.is_marker())
            {
                return Ok(Halt::Clean);
            }
        }
    }

    fn stored<T: Symbol>(
        &mut self,
        bits: &mut Bits<'_>,
        out: &mut Vec<T>,
        pos: &mut usize,
    ) -> Result<(), InflateError> {
        let skip = (bits.position() % 8) as u32;
        if skip != 0 {
            bits.take(8 - skip);
        }
        let len = bits.take(16);
        let nlen = bits.take(16);
        if !bits.in_bounds() {
            return Err(InflateError::Truncated);
        }
        if len != !nlen & 0xffff {
            return Err(InflateError::Corrupt("invalid stored block lengths"));
        }
        let mut left = len as usize;
        grow(out, *pos + left);
        // Bytes still in the register come first, then the rest straight from the input.
        while left > 0 && bits.count >= 8 {
            out[*pos] = T::byte(bits.take(8) as u8);
            *pos += 1;
            left -= 1;
        }
        if left > 0 {
            // The register is empty and byte-aligned here: `pos` is the next input byte.
            let from = bits.pos;
            let Some(chunk) = bits.data.get(from..from + left) else {
                return Err(InflateError::Truncated);
            };
            for (o, &b) in out[*pos..*pos + left].iter_mut().zip(chunk) {
                *o = T::byte(b);
            }
            *pos += left;
            *bits = Bits::at(bits.data, (from + left) as u64 * 8);
        }
        Ok(())
    }

    fn fixed_tables(&mut self) {
        let mut lens = [0u8; 320];
        lens[..144].fill(8);
        lens[144..256].fill(9);
        lens[256..280].fill(7);
        lens[280..288].fill(8);
        lens[288..320].fill(5);
        // The fixed codes are complete by construction, so building cannot fail.
        let _ = self.litlen.build(&lens[..288], Alphabet::LitLen);
        let _ = self.dist.build(&lens[288..320], Alphabet::Dist);
    }

    fn dynamic_tables(&mut self, bits: &mut Bits<'_>) -> Result<(), InflateError> {
        bits.refill();
        let hlit = bits.take(5) as usize + 257;
        let hdist = bits.take(5) as usize + 1;
        let hclen = bits.take(4) as usize + 4;
        if hlit > 286 || hdist > 30 {
            return Err(InflateError::Corrupt("too many length or distance symbols"));
        }
        let mut cl = [0u8; 19];
        for &i in CL_ORDER.iter().take(hclen) {
            cl[i] = bits.take(3) as u8;
        }
        self.codelen.build(&cl, Alphabet::CodeLen)?;
        let total = hlit + hdist;
        let mut i = 0;
        while i < total {
            bits.refill();
            let e = self.codelen.entries[(bits.buf & ((1 << CODELEN_BITS) - 1)) as usize];
            if e_kind(e) == K_BAD {
                return Err(InflateError::Corrupt("invalid code lengths code"));
            }
            bits.consume(e_len(e));
            let sym = e_value(e) as u8;
            let (value, repeat) = match sym {
                0..=15 => (sym, 1),
                16 => {
                    if i == 0 {
                        return Err(InflateError::Corrupt("repeat of no previous length"));
                    }
                    (self.lens[i - 1], 3 + bits.take(2) as usize)
                }
                17 => (0, 3 + bits.take(3) as usize),
                _ => (0, 11 + bits.take(7) as usize),
            };
            if i + repeat > total {
                return Err(InflateError::Corrupt("too many code lengths"));
            }
            self.lens[i..i + repeat].fill(value);
            i += repeat;
        }
        if self.lens[256] == 0 {
            return Err(InflateError::Corrupt("missing end-of-block code"));
        }
        let (ll, dl) = self.lens[..total].split_at(hlit);
        self.litlen.build(ll, Alphabet::LitLen)?;
        self.dist.build(dl, Alphabet::Dist)
    }

    /// Decodes a Huffman-coded block's symbols up to its end-of-block code, or until the output is full
    /// or the input runs short (halting between two symbols).
    #[inline(never)]
    fn huffman<T: Symbol>(
        &mut self,
        bits: &mut Bits<'_>,
        out: &mut Vec<T>,
        at: &mut usize,
        limits: Limits,
    ) -> Result<BlockEnd, InflateError> {
        // Local copies keep the bit register and the positions in machine registers.
        let litlen = &self.litlen.entries[..];
        let dist = &self.dist.entries[..];
        let data = bits.data;
        let mut bitbuf = bits.buf;
        let mut count = bits.count;
        let mut inpos = bits.pos;
        let mut pos = *at;
        let lmask = (1u64 << LITLEN_BITS) - 1;
        let dmask = (1u64 << DIST_BITS) - 1;
        let result = 'outer: loop {
            if pos >= limits.max_out {
                break Ok(BlockEnd::OutputFull);
            }
            // Room for at least one more symbol before the slack.
            grow(out, pos + SLACK + 1);
            let buf = &mut out[..];
            let limit = (buf.len() - SLACK).min(limits.max_out);
            // Inside this loop a longest match always fits.
            while pos < limit {
                if let Some(w) = data.get(inpos..inpos + 8) {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(w);
                    bitbuf |= u64::from_le_bytes(a) << count;
                    inpos += ((63 - count) >> 3) as usize;
                    count |= 56;
                } else if !limits.input_final {
                    // Every bit in the register is input: a clean place to halt.
                    break 'outer Ok(BlockEnd::InputLow);
                } else {
                    let mut b = Bits {
                        data,
                        pos: inpos,
                        buf: bitbuf,
                        count,
                    };
                    b.refill_slow();
                    (bitbuf, count, inpos) = (b.buf, b.count, b.pos);
                    if inpos > data.len() + 8 {
                        // Decoding the zero bits past the end: the block is cut off.
                        break 'outer Err(InflateError::Truncated);
                    }
                }
                let mut e = litlen[(bitbuf & lmask) as usize];
                if e_kind(e) == K_LIT {
                    bitbuf >>= e_len(e);
                    count -= e_len(e);
                    buf[pos] = T::byte(e_value(e) as u8);
                    pos += 1;
                    // Two more literals need no refill: at least 56 - 2 * 15 bits remain.
                    e = litlen[(bitbuf & lmask) as usize];
                    if e_kind(e) == K_LIT {
                        bitbuf >>= e_len(e);
                        count -= e_len(e);
                        buf[pos] = T::byte(e_value(e) as u8);
                        pos += 1;
                        e = litlen[(bitbuf & lmask) as usize];
                        if e_kind(e) == K_LIT {
                            bitbuf >>= e_len(e);
                            count -= e_len(e);
                            buf[pos] = T::byte(e_value(e) as u8);
                            pos += 1;
                        }
                    }
                    continue;
                }
                if count < 48 {
                    // A length/distance pair needs up to 15 + 5 + 15 + 13 bits.
                    if let Some(w) = data.get(inpos..inpos + 8) {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(w);
                        bitbuf |= u64::from_le_bytes(a) << count;
                        inpos += ((63 - count) >> 3) as usize;
                        count |= 56;
                    } else {
                        // Back to the top of the loop, where short input is handled.
                        continue;
                    }
                }
                if e_kind(e) == K_SUB {
                    bitbuf >>= LITLEN_BITS;
                    count -= LITLEN_BITS;
                    e = litlen
                        [e_value(e) as usize + (bitbuf & ((1u64 << e_extra(e)) - 1)) as usize];
                }
                match e_kind(e) {
                    K_LEN => {}
                    K_LIT => {
                        bitbuf >>= e_len(e);
                        count -= e_len(e);
                        buf[pos] = T::byte(e_value(e) as u8);
                        pos += 1;
                        continue;
                    }
                    K_EOB => {
                        bitbuf >>= e_len(e);
                        count -= e_len(e);
                        break 'outer Ok(BlockEnd::Done);
                    }
                    _ => break 'outer Err(InflateError::Corrupt("invalid literal/length code")),
                }
                bitbuf >>= e_len(e);
                count -= e_len(e);
                let extra = e_extra(e);
                let len = e_value(e) as usize + (bitbuf & ((1u64 << extra) - 1)) as usize;
                bitbuf >>= extra;
                count -= extra;
                let mut d = dist[(bitbuf & dmask) as usize];
                if e_kind(d) == K_SUB {
                    bitbuf >>= DIST_BITS;
                    count -= DIST_BITS;
                    d = dist[e_value(d) as usize + (bitbuf & ((1u64 << e_extra(d)) - 1)) as usize];
                }
                if e_kind(d) != K_DIST {
                    break 'outer Err(InflateError::Corrupt("invalid distance code"));
                }
                bitbuf >>= e_len(d);
                count -= e_len(d);
                let dextra = e_extra(d);
                let distance = e_value(d) as usize + (bitbuf & ((1u64 << dextra) - 1)) as usize;
                bitbuf >>= dextra;
                count -= dextra;
                if distance > pos {
                    break 'outer Err(InflateError::Corrupt("invalid distance too far back"));
                }
                copy_match(buf, pos, distance, len);
                pos += len;
            }
        };
        bits.buf = bitbuf;
        bits.count = count;
        bits.pos = inpos;
        *at = pos;
        result
    }
}

/// Makes `out` at least `len` long, doubling, so growth costs amortised constant time per symbol.
fn grow<T: Symbol>(out: &mut Vec<T>, len: usize) {
    if out.len() < len {
        let want = len.max(out.len() * 2).max(1 << 16);
        out.resize(want, T::default());
    }
}

/// Copies `len` symbols from `distance` back, overlapping as LZ77 requires. There are at least
/// [`SLACK`] symbols of room after `pos`, so a copy may write past `len` (later output overwrites it).
#[inline(always)]
fn copy_match<T: Symbol>(buf: &mut [T], pos: usize, distance: usize, len: usize) {
    let src = pos - distance;
    if distance >= 16 {
        copy_steps::<T, 16>(buf, src, pos, len);
    } else if distance >= 8 {
        copy_steps::<T, 8>(buf, src, pos, len);
    } else if distance == 1 {
        let v = buf[src];
        buf[pos..pos + len].fill(v);
    } else {
        for i in 0..len {
            buf[pos + i] = buf[src + i];
        }
    }
}

/// Copies `len` symbols from `s` to `d` in `N`-symbol steps; `d - s >= N`, so each step reads symbols
/// already written.
#[inline(always)]
fn copy_steps<T: Symbol, const N: usize>(buf: &mut [T], mut s: usize, mut d: usize, len: usize) {
    let end = d + len;
    while d < end {
        let (a, b) = buf.split_at_mut(d);
        let (Some(from), Some(to)) = (a.get(s..s + N), b.get_mut(..N)) else {
            return;
        };
        to.copy_from_slice(from);
        s += N;
        d += N;
    }
}

/// The first bit offset in `from..to` of `input` where a non-final dynamic-Huffman block header with
/// valid code tables starts. It is a candidate only: what follows may still prove it wrong. `dec`'s
/// tables are overwritten.
pub fn find_block(dec: &mut Decoder, input: &[u8], from: u64, to: u64) -> Option<u64> {
    let mut byte = usize::try_from(from / 8).ok()?;
    let end = usize::try_from(to.div_ceil(8)).ok()?.min(input.len());
    while byte < end {
        let mut w = [0u8; 16];
        let n = (input.len() - byte).min(16);
        w[..n].copy_from_slice(&input[byte..byte + n]);
        let word = u128::from_le_bytes(w);
        for shift in 0..8u32 {
            let bit = byte as u64 * 8 + u64::from(shift);
            if bit < from || bit >= to {
                continue;
            }
            let x = word >> shift;
            // BFINAL 0, BTYPE 2; at most 286 literal/length and 30 distance codes.
            if x & 7 != 0b100 || (x >> 3) & 31 > 29 || (x >> 8) & 31 > 29 {
                continue;
            }
            // The code-length code must be complete (Kraft sum exactly 1).
            let hclen = ((x >> 13) & 15) as usize + 4;
            let mut kraft = 0u32;
            for i in 0..hclen {
                let l = ((x >> (17 + 3 * i)) & 7) as u32;
                if l != 0 {
                    kraft += 1 << (7 - l);
                }
            }
            if kraft != 128 {
                continue;
            }
            let mut bits = Bits::at(input, bit + 3);
            if dec.dynamic_tables(&mut bits).is_ok() && bits.in_bounds() {
                dec.reset();
                return Some(bit);
            }
        }
        byte += 1;
    }
    None
}

/// Replaces the markers of `symbols` with bytes of `window` (the output before them; shorter than
/// [`WINDOW`] only at the start of a stream), appending the bytes to `out`. A marker before the start of
/// the stream means a distance too far back.
pub fn resolve(symbols: &[u16], window: &[u8], out: &mut Output<u8>) -> Result<(), InflateError> {
    const RUN: usize = 32;
    let missing = WINDOW.saturating_sub(window.len());
    let end = out.len + symbols.len();
    grow(&mut out.buf, end);
    let dst = &mut out.buf[out.len..end];
    for (d, s) in dst.chunks_mut(RUN).zip(symbols.chunks(RUN)) {
        // Most symbols are bytes: a run of them converts in one vectorisable pass.
        if s.iter().all(|&v| v < 256) {
            for (o, &v) in d.iter_mut().zip(s) {
                *o = v as u8;
            }
            continue;
        }
        for (o, &v) in d.iter_mut().zip(s) {
            *o = if v < 256 {
                v as u8
            } else {
                *v.checked_sub(MARKER)
                    .and_then(|i| usize::from(i).checked_sub(missing))
                    .and_then(|i| window.get(i))
                    .ok_or(InflateError::Corrupt("invalid distance too far back"))?
            };
        }
    }
    out.len = end;
    Ok(())
}

/// Sets `out` to [`WINDOW`] markers, the unknown history a speculative decode starts from.
pub fn marker_window(out: &mut Output<u16>) {
    out.clear();
    out.extend((0..WINDOW as u16).map(|i| MARKER + i));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn text(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0u64;
        while out.len() < len {
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match i >> 60 {
                0 => out.extend(std::iter::repeat_n(0u8, (i >> 50) as usize % 600)),
                1 => out.extend((0..(i >> 52) % 200).map(|k| (k as u8).wrapping_mul(i as u8))),
                _ => out
                    .extend_from_slice(format!("Package: lib{} {}\n", i >> 56, i % 977).as_bytes()),
            }
        }
        out.truncate(len);
        out
    }

    const ALL: Limits = Limits {
        stop_bit: u64::MAX,
        max_out: usize::MAX,
        input_final: true,
        until_clean: false,
    };

    fn inflate_all(stream: &[u8]) -> Result<Vec<u8>, InflateError> {
        let mut out = Output::default();
        let (bit, halt) = Decoder::default().decode(stream, 0, &mut out, ALL)?;
        assert_eq!(halt, Halt::Last);
        assert_eq!(bit.div_ceil(8), stream.len() as u64);
        Ok(out.data().to_vec())
    }

    /// Bits written least-significant first; Huffman codes most-significant first, as DEFLATE does.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        n: usize,
    }

    impl BitWriter {
        fn bits(&mut self, v: u32, n: u32) -> &mut Self {
            for i in 0..n {
                self.bit((v >> i) & 1);
            }
            self
        }
        fn code(&mut self, v: u32, n: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.bit((v >> i) & 1);
            }
            self
        }
        fn bit(&mut self, b: u32) {
            if self.n.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if b == 1 {
                *self.bytes.last_mut().unwrap() |= 1 << (self.n % 8);
            }
            self.n += 1;
        }
    }

    #[test]
    fn decodes_what_zlib_encodes_at_every_level() {
        let data = text(300 << 10);
        for level in 0..=9 {
            assert!(
                inflate_all(&deflate(&data, level)).unwrap() == data,
                "level {level}"
            );
        }
        assert!(inflate_all(&deflate(b"", 6)).unwrap().is_empty());
    }

    #[test]
    fn suspended_decodes_resume_where_they_halted() {
        let data = text(200 << 10);
        let stream = deflate(&data, 6);
        let mut dec = Decoder::default();
        let mut out = Output::<u8>::default();
        let mut at = 0;
        let mut have = 0;
        let mut halts = 0;
        loop {
            // Feed the input in growing prefixes and let the output run full often.
            have = (have + 3000).min(stream.len());
            let limits = Limits {
                stop_bit: u64::MAX,
                max_out: out.len + 5000,
                input_final: have == stream.len(),
                until_clean: false,
            };
            let (bit, halt) = dec.decode(&stream[..have], at, &mut out, limits).unwrap();
            at = bit;
            if halt == Halt::Last {
                break;
            }
            halts += 1;
        }
        assert!(halts > 40);
        assert!(out.data() == data);
    }

    /// Bit offsets of the boundaries before non-final dynamic blocks, from a full decode.
    fn boundaries(stream: &[u8]) -> Vec<u64> {
        let mut dec = Decoder::default();
        let mut out = Output::<u8>::default();
        let (mut at, mut found) = (0, Vec::new());
        loop {
            let limits = Limits {
                stop_bit: at + 1,
                ..ALL
            };
            let (bit, halt) = dec.decode(stream, at, &mut out, limits).unwrap();
            if halt == Halt::Last {
                return found;
            }
            found.push(bit);
            at = bit;
        }
    }

    #[test]
    fn decoding_from_a_boundary_without_history_and_resolving_gives_the_same_bytes() {
        let data = text(400 << 10);
        let stream = deflate(&data, 6);
        let cuts = boundaries(&stream);
        assert!(cuts.len() > 2, "{cuts:?}");
        // Output offsets of each boundary, from decoding up to it.
        for &cut in &cuts {
            let mut before = Output::<u8>::default();
            let limits = Limits {
                stop_bit: cut,
                ..ALL
            };
            let (bit, _) = Decoder::default()
                .decode(&stream, 0, &mut before, limits)
                .unwrap();
            assert_eq!(bit, cut);
            // The finder, started a little before, lands on this boundary or an earlier one.
            let found = find_block(&mut Decoder::default(), &stream, cut - 200, cut + 1).unwrap();
            assert!(found <= cut);
            let mut syms = Output::default();
            marker_window(&mut syms);
            let (end, halt) = Decoder::default()
                .decode(&stream, cut, &mut syms, ALL)
                .unwrap();
            assert_eq!(halt, Halt::Last);
            assert_eq!(end.div_ceil(8), stream.len() as u64);
            let before = before.data();
            let window = &before[before.len().saturating_sub(WINDOW)..];
            let mut after = Output::default();
            resolve(&syms.data()[WINDOW..], window, &mut after).unwrap();
            assert!([before, after.data()].concat() == data, "from bit {cut}");
        }
    }

    #[test]
    fn a_clean_halt_comes_once_the_window_has_no_marker() {
        // Text, then bytes that never repeat it: soon nothing refers to the unknown history.
        let mut data = text(200 << 10);
        let mut x = 88172645463325252u64;
        data.extend((0..(200 << 10)).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
        let stream = deflate(&data, 6);
        let cut = boundaries(&stream)[0];
        let mut syms = Output::default();
        marker_window(&mut syms);
        let limits = Limits {
            until_clean: true,
            ..ALL
        };
        let (_, halt) = Decoder::default()
            .decode(&stream, cut, &mut syms, limits)
            .unwrap();
        assert_eq!(halt, Halt::Clean);
        assert!(!syms.data()[syms.len - WINDOW..]
            .iter()
            .any(|s| s.is_marker()));
    }

    #[test]
    fn invalid_streams_are_rejected_with_zlibs_reasons() {
        let corrupt = |w: &BitWriter| inflate_all(&w.bytes).unwrap_err();
        // BTYPE 3.
        let mut w = BitWriter::default();
        w.bits(1, 1).bits(3, 2);
        assert_eq!(corrupt(&w), InflateError::Corrupt("invalid block type"));
        // A stored block whose lengths do not complement each other.
        let mut w = BitWriter::default();
        w.bits(1, 1).bits(0, 2).bits(0, 5).bits(5, 16).bits(5, 16);
        assert_eq!(
            corrupt(&w),
            InflateError::Corrupt("invalid stored block lengths")
        );
        // A fixed block starting with a match: nothing to copy from.
        let mut w = BitWriter::default();
        w.bits(1, 1).bits(1, 2).code(1, 7).code(0, 5).code(0, 7);
        assert_eq!(
            corrupt(&w),
            InflateError::Corrupt("invalid distance too far back")
        );
        // Fixed distance codes 30 and 31 are invalid.
        let mut w = BitWriter::default();
        w.bits(1, 1).bits(1, 2).code(0x30 + u32::from(b'a'), 8);
        w.code(1, 7).code(30, 5).code(0, 7);
        assert_eq!(corrupt(&w), InflateError::Corrupt("invalid distance code"));
        // A dynamic block repeating a length before any.
        let mut w = BitWriter::default();
        w.bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4);
        // Code-length code: symbols 16, 17, 18, 0 with lengths 2 each (complete).
        w.bits(2, 3).bits(2, 3).bits(2, 3).bits(2, 3);
        w.code(1, 2).bits(0, 2);
        assert_eq!(
            corrupt(&w),
            InflateError::Corrupt("repeat of no previous length")
        );
        // A cut stream.
        let stream = deflate(&text(50 << 10), 6);
        assert_eq!(
            inflate_all(&stream[..stream.len() / 2]).unwrap_err(),
            InflateError::Truncated
        );
    }

    #[test]
    fn a_fixed_block_decodes_literals_and_overlapping_matches() {
        // "ab" then a match of length 10 at distance 2: "abababababab".
        let mut w = BitWriter::default();
        w.bits(1, 1).bits(1, 2);
        w.code(0x30 + u32::from(b'a'), 8)
            .code(0x30 + u32::from(b'b'), 8);
        // Length 10 is symbol 264 (7-bit code 264 - 256), distance 2 is code 1.
        w.code(264 - 256, 7).code(1, 5).code(0, 7);
        assert_eq!(inflate_all(&w.bytes).unwrap(), b"abababababab");
    }

    #[test]
    fn markers_before_the_start_of_a_stream_are_an_error() {
        let mut out = Output::default();
        resolve(&[b'x'.into(), MARKER + (WINDOW as u16 - 1)], b"y", &mut out).unwrap();
        assert_eq!(out.data(), b"xy");
        assert_eq!(
            resolve(&[MARKER], b"y", &mut Output::default()).unwrap_err(),
            InflateError::Corrupt("invalid distance too far back")
        );
    }
}
