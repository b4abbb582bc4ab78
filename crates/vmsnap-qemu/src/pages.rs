//! From page records (or a mapped-ram bitmap) to runs of pages, and from runs to core
//! segments. A run of pages sent back to back in the stream (each behind its 8-byte
//! record header) is one segment read by [`PageRun`], so the map stays tiny.

use std::collections::BTreeMap;
use std::sync::Arc;

use vmsnap_core::{Decoder, Error, Layer, Result, Segment, SegmentMapBuilder};

use crate::stream::{RecordRun, FILL_BIT, PAGE_BITS};

/// A run of consecutive guest pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Pages filled with one byte.
    Fill {
        /// First page index.
        page: u64,
        /// Pages.
        n: u64,
        /// Fill byte.
        byte: u8,
    },
    /// Pages whose data lies in the stream at `off + k × stride`.
    Data {
        /// First page index.
        page: u64,
        /// Pages.
        n: u64,
        /// Stream offset of the first page.
        off: u64,
        /// Distance between pages in the stream (≥ page size).
        stride: u64,
    },
}

impl Run {
    fn page(&self) -> u64 {
        match *self {
            Run::Fill { page, .. } | Run::Data { page, .. } => page,
        }
    }
    fn n(&self) -> u64 {
        match *self {
            Run::Fill { n, .. } | Run::Data { n, .. } => n,
        }
    }
}

/// Resolves record runs (in stream order) so that the last copy of each page wins, and
/// groups what remains into runs per block. Returns runs per block and the number of
/// pages sent more than once. Works on whole runs (an interval map), never per page.
pub fn runs_from_records(records: Vec<RecordRun>, blocks: usize, ps: u64) -> (Vec<Vec<Run>>, u64) {
    let mut live: BTreeMap<u64, RecordRun> = BTreeMap::new();
    let mut resent = 0u64;
    for r in records {
        let (s, e) = (r.key, r.end());
        // Runs overlapping [s, e): one starting before s, and every one starting in it.
        let mut hit: Vec<u64> = Vec::new();
        if let Some((&k, before)) = live.range(..s).next_back() {
            if before.end() > s {
                hit.push(k);
            }
        }
        hit.extend(live.range(s..e).map(|(&k, _)| k));
        for k in hit {
            let Some(old) = live.remove(&k) else { continue };
            resent += old.end().min(e) - old.key.max(s);
            if old.key < s {
                live.insert(
                    old.key,
                    RecordRun {
                        n: s - old.key,
                        ..old
                    },
                );
            }
            if old.end() > e {
                let t = old.tail(e);
                live.insert(t.key, t);
            }
        }
        live.insert(s, r);
    }
    let mut out: Vec<Vec<Run>> = vec![Vec::new(); blocks];
    for r in live.into_values() {
        let block = (r.key >> PAGE_BITS) as usize;
        let page = r.key & ((1u64 << PAGE_BITS) - 1);
        let run = if r.val & FILL_BIT != 0 {
            Run::Fill {
                page,
                n: r.n,
                byte: (r.val & 0xff) as u8,
            }
        } else {
            Run::Data {
                page,
                n: r.n,
                off: r.val,
                stride: if r.n == 1 { ps } else { r.stride },
            }
        };
        if let Some(runs) = out.get_mut(block) {
            push_run(runs, run, ps);
        }
    }
    for r in &mut out {
        r.shrink_to_fit();
    }
    (out, resent)
}

/// Appends `run` (which starts at or after the end of the last one), merging it into the
/// last run when it continues it.
fn push_run(runs: &mut Vec<Run>, run: Run, ps: u64) {
    if let Some(last) = runs.last_mut() {
        if last.page() + last.n() == run.page() {
            match (last, run) {
                (Run::Fill { n, byte, .. }, Run::Fill { n: m, byte: b, .. }) if *byte == b => {
                    *n += m;
                    return;
                }
                (
                    Run::Data { n, off, stride, .. },
                    Run::Data {
                        n: m,
                        off: o,
                        stride: t,
                        ..
                    },
                ) => {
                    // One page continues any run whose spacing it keeps (a single page
                    // sets the spacing of a run of one).
                    let step = if *n == 1 {
                        o.checked_sub(*off)
                    } else {
                        Some(*stride)
                    };
                    let fits = step.is_some_and(|d| {
                        d >= ps
                            && (m == 1 || t == d)
                            && d.checked_mul(*n).and_then(|x| off.checked_add(x)) == Some(o)
                    });
                    if let (true, Some(d)) = (fits, step) {
                        *stride = d;
                        *n += m;
                        return;
                    }
                }
                _ => {}
            }
        }
    }
    runs.push(run);
}

/// Runs from a mapped-ram bitmap (bit i = page i present at `pages_offset + i × ps`;
/// clear bits are zero pages), fed in pieces of any size so the bitmap is never held
/// whole: memory follows the runs, not the declared RAM. Bits past `pages` (the padding
/// of the last 64-bit word) are ignored.
#[derive(Debug)]
pub struct BitmapRuns {
    runs: Vec<Run>,
    pages: u64,
    pages_offset: u64,
    ps: u64,
    max_runs: u64,
    /// Next bit.
    i: u64,
    /// State and first page of the open run.
    open: Option<(bool, u64)>,
}

/// 4 KiB of clear and of set bits, compared with `==` (a memcmp, fast in any build).
const CLEAR: [u8; 4096] = [0; 4096];
const SET: [u8; 4096] = [0xff; 4096];

impl BitmapRuns {
    /// A walker over a bitmap of `pages` bits; more than `max_runs` runs is a
    /// `LimitExceeded` error.
    pub fn new(pages: u64, pages_offset: u64, ps: u64, max_runs: u64) -> BitmapRuns {
        BitmapRuns {
            runs: Vec::new(),
            pages,
            pages_offset,
            ps,
            max_runs,
            i: 0,
            open: None,
        }
    }

    /// Takes the next `piece` of the bitmap.
    pub fn feed(&mut self, piece: &[u8]) -> Result<()> {
        for block in piece.chunks(CLEAR.len()) {
            if block == CLEAR {
                self.uniform(false, block.len() as u64 * 8)?;
                continue;
            }
            if block == SET {
                self.uniform(true, block.len() as u64 * 8)?;
                continue;
            }
            for &byte in block {
                match byte {
                    0 => self.uniform(false, 8)?,
                    0xff => self.uniform(true, 8)?,
                    _ => {
                        for k in 0..8 {
                            self.uniform(byte & (1 << k) != 0, 1)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The runs, once every piece is fed.
    pub fn finish(mut self) -> Result<Vec<Run>> {
        if let Some((set, start)) = self.open.take() {
            let end = self.i.min(self.pages);
            if end > start {
                self.push(set, start, end)?;
            }
        }
        Ok(self.runs)
    }

    /// `bits` bits of state `set` (clamped to the bitmap's `pages`).
    fn uniform(&mut self, set: bool, bits: u64) -> Result<()> {
        let n = bits.min(self.pages.saturating_sub(self.i));
        if n == 0 {
            return Ok(());
        }
        match self.open {
            Some((s, _)) if s == set => {}
            Some((s, start)) => {
                self.push(s, start, self.i)?;
                self.open = Some((set, self.i));
            }
            None => self.open = Some((set, self.i)),
        }
        self.i += n;
        Ok(())
    }

    fn push(&mut self, set: bool, page: u64, end: u64) -> Result<()> {
        if self.runs.len() as u64 >= self.max_runs {
            return Err(Error::limit(
                "runs in mapped-ram bitmaps",
                self.max_runs + 1,
                self.max_runs,
            ));
        }
        let n = end - page;
        self.runs.push(if set {
            Run::Data {
                page,
                n,
                off: self.pages_offset + page * self.ps,
                stride: self.ps,
            }
        } else {
            Run::Fill { page, n, byte: 0 }
        });
        Ok(())
    }
}

/// Pushes the part of `runs` covering pages `first .. first + count` at address `dest`.
pub fn emit(
    runs: &[Run],
    first: u64,
    count: u64,
    dest: u64,
    ps: u64,
    b: &mut SegmentMapBuilder,
) -> Result<()> {
    let end = first.saturating_add(count);
    let mut i = runs.partition_point(|r| r.page() + r.n() <= first);
    while let Some(r) = runs.get(i) {
        if r.page() >= end {
            break;
        }
        let lo = r.page().max(first);
        let hi = (r.page() + r.n()).min(end);
        let at = dest + (lo - first) * ps;
        let len = (hi - lo) * ps;
        let skip = lo - r.page();
        match *r {
            Run::Fill { byte, .. } => b.push(Segment::fill(at, len, byte))?,
            Run::Data { off, stride, .. } if stride == ps || hi - lo == 1 => {
                b.push(Segment::plain(at, len, off + skip * stride))?
            }
            Run::Data { off, stride, .. } => {
                let unit = Arc::new(PageRun {
                    off: off + skip * stride,
                    stride,
                    ps,
                    n: hi - lo,
                });
                b.push(Segment::compressed(at, len, unit, 0))?
            }
        }
        i += 1;
    }
    Ok(())
}

/// Pages spaced `stride` apart in the stream (their record headers between them).
#[derive(Debug)]
pub struct PageRun {
    off: u64,
    stride: u64,
    ps: u64,
    n: u64,
}

impl Decoder for PageRun {
    fn decoded_len(&self) -> u64 {
        self.n * self.ps
    }

    fn read(&self, lower: &dyn Layer, offset: u64, buf: &mut [u8]) -> Result<()> {
        // Read the stream span straight into `buf`, then squeeze the record headers out
        // in place; what does not fit is read in the next round (a few bytes).
        let gap = (self.stride - self.ps) as usize;
        let ps = self.ps as usize;
        let span_end = self.off + (self.n - 1) * self.stride + self.ps;
        let mut pos = offset;
        let mut out = 0usize;
        while out < buf.len() {
            let page = pos / self.ps;
            let within = (pos % self.ps) as usize;
            let src = self.off + page * self.stride + within as u64;
            let want = (buf.len() - out).min((span_end - src) as usize);
            let dst = buf.get_mut(out..out + want).unwrap_or_default();
            lower.read_at(src, dst)?;
            // dst = [ps - within data][gap][ps data][gap]...
            let mut got = (ps - within).min(want);
            let mut rd = got + gap;
            while rd < want {
                let n = ps.min(want - rd);
                dst.copy_within(rd..rd + n, got);
                got += n;
                rd += n + gap;
            }
            out += got;
            pos += got as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::push_record;

    const PS: u64 = 4096;

    /// Records as (page, value) in stream order, through `push_record`.
    fn runs(recs: &[(u64, u64)]) -> (Vec<Run>, u64, usize) {
        let mut rr = Vec::new();
        for &(page, val) in recs {
            push_record(&mut rr, page, val, PS);
        }
        let held = rr.len();
        let (mut out, resent) = runs_from_records(rr, 1, PS);
        (out.remove(0), resent, held)
    }

    #[test]
    fn a_million_zero_pages_are_one_run() {
        let recs: Vec<(u64, u64)> = (0..1 << 20).map(|p| (p, FILL_BIT)).collect();
        let (r, resent, held) = runs(&recs);
        assert_eq!(held, 1);
        assert_eq!(resent, 0);
        assert_eq!(
            r,
            vec![Run::Fill {
                page: 0,
                n: 1 << 20,
                byte: 0
            }]
        );
    }

    #[test]
    fn later_copies_split_earlier_runs() {
        // Pages 0..10 zero, then data for 3..5 (records 4104 bytes apart), then page 9
        // filled with 7, then page 4 zero again.
        let mut recs: Vec<(u64, u64)> = (0..10).map(|p| (p, FILL_BIT)).collect();
        recs.extend([
            (3, 1000),
            (4, 1000 + 4104),
            (9, FILL_BIT | 7),
            (4, FILL_BIT),
        ]);
        let (r, resent, _) = runs(&recs);
        assert_eq!(resent, 4);
        assert_eq!(
            r,
            vec![
                Run::Fill {
                    page: 0,
                    n: 3,
                    byte: 0
                },
                Run::Data {
                    page: 3,
                    n: 1,
                    off: 1000,
                    stride: PS
                },
                Run::Fill {
                    page: 4,
                    n: 5,
                    byte: 0
                },
                Run::Fill {
                    page: 9,
                    n: 1,
                    byte: 7
                },
            ]
        );
    }

    #[test]
    fn out_of_order_data_pages_are_put_in_place() {
        let (r, resent, _) = runs(&[(2, 2 * 4104), (0, 0), (1, 4104)]);
        assert_eq!(resent, 0);
        assert_eq!(
            r,
            vec![Run::Data {
                page: 0,
                n: 3,
                off: 0,
                stride: 4104
            }]
        );
    }

    /// Runs of `bitmap` fed in pieces of `piece` bytes.
    fn bitmap_runs(bitmap: &[u8], pages: u64, piece: usize, max: u64) -> Result<Vec<Run>> {
        let mut w = BitmapRuns::new(pages, 1 << 20, PS, max);
        for p in bitmap.chunks(piece) {
            w.feed(p)?;
        }
        w.finish()
    }

    #[test]
    fn bitmap_runs_do_not_depend_on_the_pieces() {
        // 100 000 pages: bits 3..=12 set, 20 000..=28 191 set (whole 4 KiB of bitmap
        // from byte 2500), page 99 999 set, and stray padding bits past the end.
        let pages = 100_000u64;
        let mut bm = vec![0u8; (pages.div_ceil(64) * 8) as usize];
        let mut set = |i: u64| bm[(i / 8) as usize] |= 1 << (i % 8);
        (3..=12).for_each(&mut set);
        (20_000..20_000 + 8 * 4096 + 5).for_each(&mut set);
        set(pages - 1);
        set(pages + 3);
        let data = |page: u64, n: u64| Run::Data {
            page,
            n,
            off: (1 << 20) + page * PS,
            stride: PS,
        };
        let fill = |page: u64, n: u64| Run::Fill { page, n, byte: 0 };
        let want = vec![
            fill(0, 3),
            data(3, 10),
            fill(13, 20_000 - 13),
            data(20_000, 8 * 4096 + 5),
            fill(20_000 + 8 * 4096 + 5, pages - 1 - (20_000 + 8 * 4096 + 5)),
            data(pages - 1, 1),
        ];
        for piece in [1, 7, 4096, 5000, 1 << 20] {
            assert_eq!(
                bitmap_runs(&bm, pages, piece, 100).unwrap(),
                want,
                "{piece}"
            );
        }
        // One run too many is the named limit, not memory.
        let e = bitmap_runs(&bm, pages, 4096, 5).unwrap_err();
        assert_eq!(e.kind(), vmsnap_core::ErrorKind::LimitExceeded);
        // An empty bitmap, and one of all clear bits.
        assert_eq!(bitmap_runs(&[], 0, 8, 1).unwrap(), vec![]);
        assert_eq!(
            bitmap_runs(&[0; 16], 128, 3, 1).unwrap(),
            vec![fill(0, 128)]
        );
    }
}
