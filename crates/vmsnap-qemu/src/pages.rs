//! From page records (or a mapped-ram bitmap) to runs of pages, and from runs to core
//! segments. A run of pages sent back to back in the stream (each behind its 8-byte
//! record header) is one segment read by [`PageRun`], so the map stays tiny.

use std::sync::Arc;

use vmsnap_core::{Decoder, Layer, Result, Segment, SegmentMapBuilder};

use crate::stream::{PageRecord, FILL_BIT, PAGE_BITS};

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

/// Sorts records by (block, page) keeping stream order among equals, keeps the last copy
/// of each page and groups them into runs per block. Returns runs per block and the
/// number of pages sent more than once.
pub fn runs_from_records(
    mut records: Vec<PageRecord>,
    blocks: usize,
    ps: u64,
) -> (Vec<Vec<Run>>, u64) {
    records.sort_by_key(|r| r.0); // stable: later copies stay later
    let mut out: Vec<Vec<Run>> = vec![Vec::new(); blocks];
    let mut resent = 0u64;
    let mut i = 0usize;
    while let Some(&(key, _)) = records.get(i) {
        // Last of the equal keys.
        let mut j = i;
        while records.get(j + 1).is_some_and(|r| r.0 == key) {
            j += 1;
        }
        resent += (j - i) as u64;
        let val = records.get(j).map_or(0, |r| r.1);
        let block = (key >> PAGE_BITS) as usize;
        let page = key & ((1u64 << PAGE_BITS) - 1);
        if let Some(runs) = out.get_mut(block) {
            push_page(runs, page, val, ps);
        }
        i = j + 1;
    }
    for r in &mut out {
        r.shrink_to_fit();
    }
    (out, resent)
}

fn push_page(runs: &mut Vec<Run>, page: u64, val: u64, ps: u64) {
    let fill = val & FILL_BIT != 0;
    if let Some(last) = runs.last_mut() {
        let next = last.page() + last.n();
        if next == page {
            match last {
                Run::Fill { n, byte, .. } if fill && u64::from(*byte) == val & 0xff => {
                    *n += 1;
                    return;
                }
                Run::Data { n, off, stride, .. } if !fill => {
                    if *n == 1 && val > *off && val - *off >= ps {
                        *stride = val - *off;
                        *n = 2;
                        return;
                    }
                    if off.checked_add(*stride * *n) == Some(val) {
                        *n += 1;
                        return;
                    }
                }
                _ => {}
            }
        }
    }
    runs.push(if fill {
        Run::Fill {
            page,
            n: 1,
            byte: (val & 0xff) as u8,
        }
    } else {
        Run::Data {
            page,
            n: 1,
            off: val,
            stride: ps,
        }
    });
}

/// Runs from a mapped-ram bitmap (bit i = page i present at `pages_offset + i × ps`);
/// clear bits are zero pages.
pub fn runs_from_bitmap(bitmap: &[u8], pages: u64, pages_offset: u64, ps: u64) -> Vec<Run> {
    let mut runs = Vec::new();
    let bit = |i: u64| {
        bitmap
            .get((i / 8) as usize)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    };
    let mut i = 0u64;
    while i < pages {
        let set = bit(i);
        let mut j = i + 1;
        // Whole zero / full bytes at once.
        while j < pages {
            if j % 8 == 0 && j + 8 <= pages {
                let b = bitmap.get((j / 8) as usize).copied().unwrap_or(0);
                if (set && b == 0xff) || (!set && b == 0) {
                    j += 8;
                    continue;
                }
            }
            if bit(j) != set {
                break;
            }
            j += 1;
        }
        runs.push(if set {
            Run::Data {
                page: i,
                n: j - i,
                off: pages_offset + i * ps,
                stride: ps,
            }
        } else {
            Run::Fill {
                page: i,
                n: j - i,
                byte: 0,
            }
        });
        i = j;
    }
    runs
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
