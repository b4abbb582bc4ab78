//! The per-page record stream of a compressed `RamBlock` (1 MiB = 256 pages decoded).
//!
//! Layout used (Pascal Beyer's parser, the one run against real files; the reference
//! prefers it where VMkatz differs), little-endian u32 tags:
//! * `0xFFFFFFFF` — end of the block.
//! * `0xFFFFFFFE` + u64 pattern — one 4 KiB page of the pattern (12 bytes).
//! * `0xFFFFFFFD` + u64 pattern @+4 + u32 count @+12 — `count` pattern pages (16 bytes).
//! * `0xFFFFFFFC` + u32 output_size @+4 + u32 compressed_size @+8, data @+12 — a
//!   variable-size record: raw when both sizes are equal, else XPRESS.
//! * any other `n` (1..=4096) — `n` bytes follow: a raw page when `n == 4096`, else
//!   XPRESS plain LZ77 decoding to exactly 4096 bytes.

use vmsnap_core::{Bytes, Error, Result};

use crate::xpress;

/// Bytes of a guest page.
pub const PAGE: usize = 4096;
/// Decoded bytes of a RAM block.
pub const BLOCK: usize = 1 << 20;

/// Tag: end of block.
pub const TAG_END: u32 = 0xFFFF_FFFF;
/// Tag: one pattern page.
pub const TAG_PATTERN: u32 = 0xFFFF_FFFE;
/// Tag: a run of pattern pages.
pub const TAG_PATTERN_RUN: u32 = 0xFFFF_FFFD;
/// Tag: variable-size record.
pub const TAG_VARIABLE: u32 = 0xFFFF_FFFC;

/// Name of the record layout, for `describe()`.
pub const LAYOUT: &str = "beyer: 0xFFFFFFFD = u64 pattern @4, u32 count @12; 0xFFFFFFFC = u32 output_size @4, u32 compressed_size @8, data @12; other n = n bytes (raw if 4096, else XPRESS plain LZ77)";

fn fill_pattern(out: &mut [u8], pattern: u64) {
    let p = pattern.to_le_bytes();
    for c in out.chunks_exact_mut(8) {
        c.copy_from_slice(&p);
    }
}

/// What a record produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum RecordKind {
    /// A repeated u64 pattern, aligned to the record's first output byte.
    Pattern(u64),
    /// `len` payload bytes at input offset `data`: raw when `len` equals the record's
    /// output size, else XPRESS.
    Unit {
        /// Input offset of the payload.
        data: usize,
        /// Payload bytes.
        len: usize,
    },
}

/// One record of the stream, with where it sits in the input and in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// Input offset of the tag.
    pub(crate) at: usize,
    /// Input offset just past the record.
    pub(crate) end: usize,
    /// Output offset of its first byte.
    pub(crate) out: usize,
    /// Output bytes it produces.
    pub(crate) len: usize,
    /// What it produces.
    pub(crate) kind: RecordKind,
}

impl Record {
    /// Output offset just past its bytes.
    pub fn out_end(&self) -> usize {
        self.out.saturating_add(self.len)
    }
}

/// Walks the record headers of a stream without decoding payloads. Every structural
/// check of [`decode_block`] lives here, so a full decode, an index walk and a page
/// decode refuse the same malformed headers with the same errors.
#[derive(Debug, Clone)]
pub(crate) struct Records<'a> {
    b: Bytes<'a>,
    ip: usize,
    op: usize,
    done: bool,
}

impl<'a> Records<'a> {
    /// The records of `input` (read from file offset `base`), from the block's start.
    pub fn new(input: &'a [u8], base: u64) -> Self {
        Self::resume(input, base, 0)
    }

    /// The records of `input`, a tail of a stream whose first record produces output
    /// from `out` (as recorded by a [`PageIndex`]).
    pub fn resume(input: &'a [u8], base: u64, out: usize) -> Self {
        Records {
            b: Bytes::new(input, base),
            ip: 0,
            op: out.min(BLOCK),
            done: false,
        }
    }

    /// Output bytes produced by the records walked so far.
    pub fn produced(&self) -> usize {
        self.op
    }

    fn err(&self, at: usize, msg: String) -> Error {
        Error::malformed(self.b.file_offset(at), msg)
    }

    /// The next record; `None` at the end tag or once a full block used all the input.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        let (ip, op) = (self.ip, self.op);
        if self.done || (ip == self.b.len() && op == BLOCK) {
            // A full block without an end tag ends here too.
            self.done = true;
            return Ok(None);
        }
        let room = BLOCK.saturating_sub(op);
        let at = |n: usize| ip.saturating_add(n);
        let tag = self.b.u32_le(ip)?;
        let (len, rec, kind) = match tag {
            TAG_END => {
                self.done = true;
                return Ok(None);
            }
            TAG_PATTERN | TAG_PATTERN_RUN => {
                let pattern = self.b.u64_le(at(4))?;
                let (count, rec) = if tag == TAG_PATTERN {
                    (1usize, 12)
                } else {
                    (self.b.u32_le(at(12))? as usize, 16)
                };
                let n = count
                    .checked_mul(PAGE)
                    .filter(|&n| n <= room)
                    .ok_or_else(|| {
                        self.err(
                            ip,
                            format!("{count} pattern pages overflow the 1 MiB block"),
                        )
                    })?;
                (n, rec, RecordKind::Pattern(pattern))
            }
            TAG_VARIABLE => {
                let out_size = self.b.u32_le(at(4))? as usize;
                let in_size = self.b.u32_le(at(8))? as usize;
                self.b.slice(at(12), in_size)?;
                if out_size > room {
                    return Err(self.err(
                        ip,
                        format!("variable record of {out_size} bytes overflows the block"),
                    ));
                }
                let kind = RecordKind::Unit {
                    data: at(12),
                    len: in_size,
                };
                (out_size, 12usize.saturating_add(in_size), kind)
            }
            n => {
                let n = n as usize;
                if n == 0 || n > PAGE {
                    return Err(
                        self.err(ip, format!("page record of {n} bytes (must be 1..=4096)"))
                    );
                }
                self.b.slice(at(4), n)?;
                if PAGE > room {
                    return Err(self.err(ip, "more than 256 pages in a RAM block".into()));
                }
                (
                    PAGE,
                    4 + n,
                    RecordKind::Unit {
                        data: at(4),
                        len: n,
                    },
                )
            }
        };
        // The payload slice was checked, so `ip + rec` is within the input.
        let end = at(rec);
        self.ip = end;
        self.op = op.saturating_add(len);
        Ok(Some(Record {
            at: ip,
            end,
            out: op,
            len,
            kind,
        }))
    }
}

/// Produces `dst` = bytes `skip..skip + dst.len()` of record `r`'s output. `input` is
/// the slice the record's offsets refer to (read from file offset `base`); `scratch`
/// holds a whole XPRESS unit when only part of it is wanted.
fn produce(
    r: &Record,
    input: &[u8],
    base: u64,
    skip: usize,
    dst: &mut [u8],
    scratch: &mut Vec<u8>,
) -> Result<()> {
    match r.kind {
        RecordKind::Pattern(p) => {
            // The pattern is aligned to the record's first byte.
            let q = p.rotate_right(8 * (skip % 8) as u32).to_le_bytes();
            for c in dst.chunks_mut(8) {
                if let Some(src) = q.get(..c.len()) {
                    c.copy_from_slice(src);
                }
            }
            Ok(())
        }
        RecordKind::Unit { data, len } => {
            let b = Bytes::new(input, base);
            let src = b.slice(data, len)?;
            let at = b.file_offset(data);
            if skip == 0 && dst.len() == r.len {
                return decode_unit(src, dst, at);
            }
            if len == r.len {
                // Raw: copy the wanted part straight from the input.
                let part = b.slice(data.saturating_add(skip), dst.len())?;
                dst.copy_from_slice(part);
                return Ok(());
            }
            // Part of an XPRESS unit: decode the whole unit, keep the wanted part.
            if scratch.len() < r.len {
                scratch.resize(r.len, 0);
            }
            let whole = scratch
                .get_mut(..r.len)
                .ok_or_else(|| Error::malformed(at, "record overflow"))?;
            decode_unit(src, whole, at)?;
            let part = skip
                .checked_add(dst.len())
                .and_then(|e| whole.get(skip..e))
                .ok_or_else(|| Error::malformed(at, "record overflow"))?;
            dst.copy_from_slice(part);
            Ok(())
        }
    }
}

/// Decodes the record stream `input` into `out` (which must be [`BLOCK`] bytes).
/// Returns the number of bytes the records produced; the rest of `out` is zeroed.
pub fn decode_block(input: &[u8], out: &mut [u8], base: u64) -> Result<usize> {
    let mut recs = Records::new(input, base);
    while let Some(r) = recs.next_record()? {
        let dst = out
            .get_mut(r.out..r.out_end())
            .ok_or_else(|| Error::malformed(base.saturating_add(r.at as u64), "record overflow"))?;
        match r.kind {
            RecordKind::Pattern(p) => fill_pattern(dst, p),
            RecordKind::Unit { data, len } => {
                let b = Bytes::new(input, base);
                decode_unit(b.slice(data, len)?, dst, b.file_offset(data))?;
            }
        }
    }
    let op = recs.produced();
    if let Some(rest) = out.get_mut(op..) {
        rest.fill(0);
    }
    Ok(op)
}

/// Per page of a block, where the records producing it are in the input, so a read of
/// a few pages walks and decodes only those records (3 KiB per block).
#[derive(Debug, Clone)]
pub struct PageIndex {
    /// Per page: input offset of the record holding its first byte, that record's first
    /// output byte, and the input offset past the record holding its last byte.
    pages: Vec<(u32, u32, u32)>,
    /// Output bytes the records produce (the rest of the block is zeros).
    produced: usize,
}

impl PageIndex {
    /// Walks every record header of `input` (no payload is decoded). Fails as
    /// [`decode_block`] would on a malformed header anywhere in the block.
    pub fn build(input: &[u8], base: u64) -> Result<PageIndex> {
        let pages_n = BLOCK / PAGE;
        let mut pages = vec![(0u32, 0u32, 0u32); pages_n];
        let mut recs = Records::new(input, base);
        // Offsets are below 2^32: the input is at most 1 MiB and so is the output.
        let small = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        while let Some(r) = recs.next_record()? {
            if r.len == 0 {
                continue;
            }
            // Pages whose first byte this record produces.
            let first = r.out.div_ceil(PAGE);
            let last = (r.out_end() - 1) / PAGE;
            for p in pages
                .get_mut(first..=last.min(pages_n - 1))
                .into_iter()
                .flatten()
            {
                p.0 = small(r.at);
                p.1 = small(r.out);
            }
            // Every page the record touches: the last record touching a page (walked in
            // order) holds its last byte.
            for p in pages
                .get_mut(r.out / PAGE..=last.min(pages_n - 1))
                .into_iter()
                .flatten()
            {
                p.2 = small(r.end);
            }
        }
        Ok(PageIndex {
            pages,
            produced: recs.produced(),
        })
    }

    /// Output bytes the records produce; the rest of the block reads as zeros.
    pub fn produced(&self) -> usize {
        self.produced
    }

    /// The input range holding every record that produces bytes `a..b` of the block
    /// (`a < b <= produced`), and the output offset of its first record.
    pub fn input_range(&self, a: usize, b: usize) -> Option<(usize, usize, usize)> {
        let (start, out, _) = *self.pages.get(a / PAGE)?;
        let (_, _, end) = *self.pages.get(b.checked_sub(1)? / PAGE)?;
        Some((start as usize, end as usize, out as usize))
    }
}

/// Decodes bytes `offset..offset + dst.len()` of the block whose record stream is
/// `input[range]` (from [`PageIndex::input_range`]; the whole stream when reading from
/// its start), decoding only the records those bytes need. `input` starts at file
/// offset `base`, and the range's first record produces output from `out`.
///
/// Payload errors (a corrupt XPRESS unit) surface only for the records decoded: a page
/// read can succeed where the full decode of its block fails on another page. Header
/// errors were already refused by [`PageIndex::build`].
pub fn decode_range(
    input: &[u8],
    base: u64,
    out: usize,
    index: &PageIndex,
    offset: usize,
    dst: &mut [u8],
    scratch: &mut Vec<u8>,
) -> Result<()> {
    let end = offset
        .checked_add(dst.len())
        .filter(|&e| e <= BLOCK)
        .ok_or_else(|| Error::out_of_bounds(offset as u64, dst.len() as u64, BLOCK as u64))?;
    // Bytes past what the records produce are zeros.
    let data_end = end.min(index.produced());
    let (head, tail) = dst.split_at_mut(data_end.saturating_sub(offset).min(dst.len()));
    tail.fill(0);
    if head.is_empty() {
        return Ok(());
    }
    let mut recs = Records::resume(input, base, out);
    while let Some(r) = recs.next_record()? {
        let (lo, hi) = (r.out.max(offset), r.out_end().min(data_end));
        if lo < hi {
            let d = head
                .get_mut(lo - offset..hi - offset)
                .ok_or_else(|| Error::malformed(base, "record overflow"))?;
            produce(&r, input, base, lo - r.out, d, scratch)?;
        }
        if r.out_end() >= data_end {
            return Ok(());
        }
    }
    Err(Error::malformed(
        base,
        "the page index does not match the record stream",
    ))
}
/// Raw when the sizes are equal, else XPRESS that must fill `dst` exactly.
fn decode_unit(data: &[u8], dst: &mut [u8], at: u64) -> Result<()> {
    if data.len() == dst.len() {
        dst.copy_from_slice(data);
        return Ok(());
    }
    let n = xpress::decompress(data, dst).map_err(|e| e.at(at))?;
    if n != dst.len() {
        return Err(Error::malformed(
            at,
            format!("XPRESS record decoded to {n} bytes, {} expected", dst.len()),
        ));
    }
    Ok(())
}
