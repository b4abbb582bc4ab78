//! The shared segment map: guest ranges mapped onto a lower layer, sorted, coalesced and
//! binary-searched. Memory formats (QEMU streams, VMware, ELF cores, LiME, Hyper-V RAM)
//! build one and delegate `read_at` and `extents` to it, so reads that span segments and
//! gaps are handled here once.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::extent::{push_coalesced, Extent, ExtentKind};
use crate::layer::Layer;
use crate::limits::MAX_SEGMENTS;

/// Decodes one compressed unit (a compressed page run, a compressed block).
pub trait Decoder: Send + Sync + fmt::Debug {
    /// Size of the unit once decoded.
    fn decoded_len(&self) -> u64;
    /// Fills `buf` with decoded bytes from `offset` within the unit, reading the
    /// compressed bytes from `lower`.
    fn read(&self, lower: &dyn Layer, offset: u64, buf: &mut [u8]) -> Result<()>;
}

/// Where a segment's bytes come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SegmentKind {
    /// Bytes of the lower layer, 1:1 from `lower_offset`.
    Plain {
        /// Lower-layer offset of the segment's first byte.
        lower_offset: u64,
    },
    /// A repeating pattern (a zero page, a fill byte, a pattern page). The pattern is
    /// aligned to `phase` bytes before the segment start.
    Fill {
        /// The pattern (non-empty; `[0]` for zeros).
        pattern: Arc<[u8]>,
        /// Offset within the pattern of the segment's first byte.
        phase: u64,
    },
    /// Decoded bytes of a compressed unit, from `unit_offset` within it.
    Compressed {
        /// The decoder.
        unit: Arc<dyn Decoder>,
        /// Offset within the decoded unit of the segment's first byte.
        unit_offset: u64,
    },
}

/// One mapped range.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Segment {
    /// Start address.
    pub start: u64,
    /// Length (positive).
    pub len: u64,
    /// Source of the bytes.
    pub kind: SegmentKind,
}

impl Segment {
    /// Plain bytes of the lower layer.
    pub fn plain(start: u64, len: u64, lower_offset: u64) -> Self {
        Segment {
            start,
            len,
            kind: SegmentKind::Plain { lower_offset },
        }
    }

    /// A range filled with `byte`.
    pub fn fill(start: u64, len: u64, byte: u8) -> Self {
        Segment {
            start,
            len,
            kind: SegmentKind::Fill {
                pattern: Arc::from([byte].as_slice()),
                phase: 0,
            },
        }
    }

    /// A range repeating `pattern` (empty patterns read as zeros).
    pub fn pattern(start: u64, len: u64, pattern: &[u8]) -> Self {
        let pattern: Arc<[u8]> = if pattern.is_empty() {
            Arc::from([0u8].as_slice())
        } else {
            Arc::from(pattern)
        };
        Segment {
            start,
            len,
            kind: SegmentKind::Fill { pattern, phase: 0 },
        }
    }

    /// A range decoded from `unit`, starting at `unit_offset`.
    pub fn compressed(start: u64, len: u64, unit: Arc<dyn Decoder>, unit_offset: u64) -> Self {
        Segment {
            start,
            len,
            kind: SegmentKind::Compressed { unit, unit_offset },
        }
    }

    /// End address (exclusive). Valid segments never wrap (checked on insertion).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }

    /// The part of this segment from `skip` bytes in, `len` bytes long.
    fn slice(&self, skip: u64, len: u64) -> Segment {
        let kind = match &self.kind {
            SegmentKind::Plain { lower_offset } => SegmentKind::Plain {
                lower_offset: lower_offset.saturating_add(skip),
            },
            SegmentKind::Fill { pattern, phase } => SegmentKind::Fill {
                pattern: pattern.clone(),
                phase: (phase.saturating_add(skip)) % pattern.len().max(1) as u64,
            },
            SegmentKind::Compressed { unit, unit_offset } => SegmentKind::Compressed {
                unit: unit.clone(),
                unit_offset: unit_offset.saturating_add(skip),
            },
        };
        Segment {
            start: self.start.saturating_add(skip),
            len,
            kind,
        }
    }

    /// Whether `next` continues this segment so that the two can be one.
    fn continues_with(&self, next: &Segment) -> bool {
        if self.end() != next.start {
            return false;
        }
        match (&self.kind, &next.kind) {
            (SegmentKind::Plain { lower_offset: a }, SegmentKind::Plain { lower_offset: b }) => {
                a.checked_add(self.len) == Some(*b)
            }
            (SegmentKind::Fill { pattern: a, .. }, SegmentKind::Fill { pattern: b, .. }) => {
                a.len() == 1 && b.len() == 1 && a == b
            }
            (
                SegmentKind::Compressed {
                    unit: a,
                    unit_offset: oa,
                },
                SegmentKind::Compressed {
                    unit: b,
                    unit_offset: ob,
                },
            ) => Arc::ptr_eq(a, b) && oa.checked_add(self.len) == Some(*ob),
            _ => false,
        }
    }

    /// Fills `buf` from `skip` bytes into this segment.
    fn read(&self, lower: &dyn Layer, skip: u64, buf: &mut [u8]) -> Result<()> {
        match &self.kind {
            SegmentKind::Plain { lower_offset } => {
                let at = lower_offset
                    .checked_add(skip)
                    .ok_or_else(|| Error::malformed(*lower_offset, "segment offset overflows"))?;
                lower.read_at(at, buf)
            }
            SegmentKind::Fill { pattern, phase } => {
                fill_pattern(buf, pattern, phase.saturating_add(skip));
                Ok(())
            }
            SegmentKind::Compressed { unit, unit_offset } => {
                unit.read(lower, unit_offset.saturating_add(skip), buf)
            }
        }
    }
}

fn fill_pattern(buf: &mut [u8], pattern: &[u8], phase: u64) {
    match pattern {
        [] => buf.fill(0),
        [b] => buf.fill(*b),
        _ => {
            let n = pattern.len();
            let mut p = (phase % n as u64) as usize;
            for out in buf.iter_mut() {
                *out = pattern.get(p).copied().unwrap_or(0);
                p += 1;
                if p == n {
                    p = 0;
                }
            }
        }
    }
}

/// What to do when segments pushed into a builder overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overlap {
    /// Overlapping segments are an error (ELF cores, LiME, VMware regions).
    Reject,
    /// A segment pushed later replaces what it overlaps (QEMU pages sent twice).
    LastWins,
}

/// Collects segments, then sorts, resolves overlaps and coalesces them.
#[derive(Debug)]
pub struct SegmentMapBuilder {
    size: u64,
    overlap: Overlap,
    segments: Vec<Segment>,
}

impl SegmentMapBuilder {
    /// A builder for an address space of `size` bytes.
    pub fn new(size: u64, overlap: Overlap) -> Self {
        SegmentMapBuilder {
            size,
            overlap,
            segments: Vec::new(),
        }
    }

    /// Adds a segment. Zero-length segments are ignored; a segment that wraps past
    /// `u64::MAX` or ends past the address space is an error, and so is pushing more than
    /// [`MAX_SEGMENTS`].
    pub fn push(&mut self, seg: Segment) -> Result<()> {
        if seg.len == 0 {
            return Ok(());
        }
        let end = seg.start.checked_add(seg.len).ok_or_else(|| {
            Error::malformed(
                seg.start,
                format!(
                    "segment of {:#x} bytes wraps past the end of the address space",
                    seg.len
                ),
            )
        })?;
        if end > self.size {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                format!(
                    "segment {:#x}..{end:#x} ends past the address space of {:#x} bytes",
                    seg.start, self.size
                ),
            )
            .at(seg.start));
        }
        if self.segments.len() >= MAX_SEGMENTS {
            return Err(Error::limit(
                "number of segments",
                self.segments.len() as u64 + 1,
                MAX_SEGMENTS as u64,
            ));
        }
        // Merge with the previous push when it simply continues it: keeps memory small
        // for formats that emit page after page.
        if let Some(last) = self.segments.last_mut() {
            if last.continues_with(&seg) {
                last.len += seg.len;
                return Ok(());
            }
        }
        self.segments.push(seg);
        Ok(())
    }

    /// Number of segments pushed so far (after merging adjacent pushes).
    pub fn pending(&self) -> usize {
        self.segments.len()
    }

    /// Sorts, resolves overlaps per the builder's rule and coalesces.
    pub fn build(self) -> Result<SegmentMap> {
        let mut segs = self.segments;
        let resolved = match self.overlap {
            Overlap::Reject => {
                segs.sort_by_key(|s| s.start);
                for pair in segs.windows(2) {
                    if let [a, b] = pair {
                        if b.start < a.end() {
                            return Err(Error::malformed(
                                b.start,
                                format!(
                                    "segments overlap: {:#x}..{:#x} and {:#x}..{:#x}",
                                    a.start,
                                    a.end(),
                                    b.start,
                                    b.end()
                                ),
                            ));
                        }
                    }
                }
                segs
            }
            Overlap::LastWins => last_wins(segs),
        };
        let mut out: Vec<Segment> = Vec::with_capacity(resolved.len());
        for s in resolved {
            match out.last_mut() {
                Some(last) if last.continues_with(&s) => last.len += s.len,
                _ => out.push(s),
            }
        }
        out.shrink_to_fit();
        Ok(SegmentMap {
            size: self.size,
            segments: out,
        })
    }
}

/// Resolves overlaps so that later segments win: stable sort by start, then sweep with a
/// list of pending pieces. O(n log n).
fn last_wins(segs: Vec<Segment>) -> Vec<Segment> {
    // Tag each segment with its push order and sort by start. Without overlaps that is
    // all; otherwise sweep the elementary intervals between all boundaries, and give each
    // to the latest-pushed segment covering it (a max-heap on push order).
    let mut tagged: Vec<(usize, Segment)> = segs.into_iter().enumerate().collect();
    tagged.sort_by_key(|(seq, s)| (s.start, *seq));
    let mut max_end = 0u64;
    let mut any_overlap = false;
    for (_, s) in &tagged {
        if s.start < max_end {
            any_overlap = true;
            break;
        }
        max_end = max_end.max(s.end());
    }
    if !any_overlap {
        return tagged.into_iter().map(|(_, s)| s).collect();
    }
    let mut bounds: Vec<u64> = tagged
        .iter()
        .flat_map(|(_, s)| [s.start, s.end()])
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    // Sweep elementary intervals; keep active segments in a heap keyed by push order.
    let mut out: Vec<Segment> = Vec::new();
    let mut active: std::collections::BinaryHeap<(usize, usize)> = Default::default();
    let mut next = 0usize;
    for w in bounds.windows(2) {
        let &[lo, hi] = w else { continue };
        while let Some((seq, s)) = tagged.get(next) {
            if s.start > lo {
                break;
            }
            active.push((*seq, next));
            next += 1;
        }
        // Drop segments that ended.
        while let Some(&(_, idx)) = active.peek() {
            match tagged.get(idx) {
                Some((_, s)) if s.end() <= lo => {
                    active.pop();
                }
                _ => break,
            }
        }
        if let Some(&(_, idx)) = active.peek() {
            if let Some((_, s)) = tagged.get(idx) {
                let piece = s.slice(lo - s.start, hi - lo);
                match out.last_mut() {
                    Some(last) if last.continues_with(&piece) => last.len += piece.len,
                    _ => out.push(piece),
                }
            }
        }
    }
    out
}

/// A sorted, non-overlapping, coalesced list of segments over an address space of a
/// given size. Addresses not covered by a segment read as zeros and are reported
/// unallocated.
#[derive(Debug, Clone)]
pub struct SegmentMap {
    size: u64,
    segments: Vec<Segment>,
}

impl SegmentMap {
    /// Size of the address space.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of the address space no segment maps (a dump's gaps).
    pub fn unmapped_bytes(&self) -> u64 {
        let mapped: u64 = self.segments.iter().map(|s| s.len).sum();
        self.size.saturating_sub(mapped)
    }

    /// The segments, sorted by start.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Bytes of memory the map itself holds (for the "under 1% of guest RAM" budgets).
    pub fn heap_bytes(&self) -> usize {
        self.segments.capacity() * std::mem::size_of::<Segment>()
    }

    /// Index of the first segment that ends after `addr`.
    fn first_ending_after(&self, addr: u64) -> usize {
        self.segments.partition_point(|s| s.end() <= addr)
    }

    /// The segment containing `addr`, if any.
    pub fn find(&self, addr: u64) -> Option<&Segment> {
        self.segments
            .get(self.first_ending_after(addr))
            .filter(|s| s.start <= addr)
    }

    /// Fills `buf` with the bytes at `offset`, reading plain and compressed segments from
    /// `lower`; gaps read as zeros; past the end is an error.
    pub fn read(&self, lower: &dyn Layer, offset: u64, buf: &mut [u8]) -> Result<()> {
        if !crate::source::fits(offset, buf.len(), self.size) {
            return Err(Error::out_of_bounds(offset, buf.len() as u64, self.size));
        }
        let mut idx = self.first_ending_after(offset);
        let mut pos = offset;
        let mut rest = buf;
        while !rest.is_empty() {
            let want = rest.len() as u64;
            match self.segments.get(idx) {
                Some(seg) if seg.start <= pos => {
                    let skip = pos - seg.start;
                    let n = (seg.len - skip).min(want) as usize;
                    let (now, later) = rest.split_at_mut(n);
                    seg.read(lower, skip, now)?;
                    rest = later;
                    pos += n as u64;
                    idx += 1;
                }
                Some(seg) => {
                    let n = (seg.start - pos).min(want) as usize;
                    let (now, later) = rest.split_at_mut(n);
                    now.fill(0);
                    rest = later;
                    pos += n as u64;
                }
                None => {
                    rest.fill(0);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Extents of `range` (clamped to the map): plain segments are data with their lower
    /// offset, compressed ones data without, single-byte zero fills zero, other fills data,
    /// and gaps unallocated.
    pub fn extents(&self, range: Range<u64>) -> Vec<Extent> {
        let end = range.end.min(self.size);
        let mut out = Vec::new();
        let mut pos = range.start;
        let mut idx = self.first_ending_after(pos);
        while pos < end {
            match self.segments.get(idx) {
                Some(seg) if seg.start <= pos => {
                    let skip = pos - seg.start;
                    let n = (seg.len - skip).min(end - pos);
                    let e = match &seg.kind {
                        SegmentKind::Plain { lower_offset } => {
                            Extent::data(pos, n, lower_offset.checked_add(skip))
                        }
                        SegmentKind::Fill { pattern, .. } if pattern.iter().all(|&b| b == 0) => {
                            Extent::of(ExtentKind::Zero, pos, n)
                        }
                        _ => Extent::data(pos, n, None),
                    };
                    push_coalesced(&mut out, e);
                    pos += n;
                    idx += 1;
                }
                Some(seg) => {
                    let n = (seg.start - pos).min(end - pos);
                    push_coalesced(&mut out, Extent::of(ExtentKind::Unallocated, pos, n));
                    pos += n;
                }
                None => {
                    push_coalesced(
                        &mut out,
                        Extent::of(ExtentKind::Unallocated, pos, end - pos),
                    );
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::FileLayer;
    use crate::source::MemSource;

    fn lower() -> FileLayer {
        FileLayer::new(Arc::new(MemSource::new(
            (0..=255u8).cycle().take(4096).collect::<Vec<_>>(),
        )))
    }

    fn read(map: &SegmentMap, off: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0xAAu8; len];
        map.read(&lower(), off, &mut b).unwrap();
        b
    }

    #[test]
    fn reads_across_segments_and_gaps() {
        let mut b = SegmentMapBuilder::new(100, Overlap::Reject);
        b.push(Segment::plain(10, 10, 0)).unwrap();
        b.push(Segment::fill(30, 5, 7)).unwrap();
        b.push(Segment::pattern(40, 6, &[1, 2, 3])).unwrap();
        let m = b.build().unwrap();
        let v = read(&m, 0, 50);
        let mut want = vec![0u8; 50];
        for (i, w) in want[10..20].iter_mut().enumerate() {
            *w = i as u8;
        }
        want[30..35].fill(7);
        want[40..46].copy_from_slice(&[1, 2, 3, 1, 2, 3]);
        assert_eq!(v, want);
        // Reading inside a pattern keeps its phase.
        assert_eq!(read(&m, 41, 3), vec![2, 3, 1]);
        // Past the end is an error, reaching the end exactly is fine.
        let mut x = [0u8; 2];
        assert!(m.read(&lower(), 99, &mut x).is_err());
        assert!(m.read(&lower(), u64::MAX, &mut x).is_err());
        assert_eq!(read(&m, 98, 2), vec![0, 0]);
    }

    #[test]
    fn coalesces_contiguous_pushes_and_sorted_runs() {
        let mut b = SegmentMapBuilder::new(1 << 20, Overlap::Reject);
        b.push(Segment::plain(8192, 4096, 8192)).unwrap();
        b.push(Segment::plain(0, 4096, 0)).unwrap();
        b.push(Segment::plain(4096, 4096, 4096)).unwrap();
        b.push(Segment::fill(12288, 4096, 0)).unwrap();
        b.push(Segment::fill(16384, 4096, 0)).unwrap();
        let m = b.build().unwrap();
        assert_eq!(m.segments().len(), 2);
        assert_eq!(m.segments()[0].len, 12288);
        assert_eq!(
            m.extents(0..1 << 20),
            vec![
                Extent::data(0, 12288, Some(0)),
                Extent::of(ExtentKind::Zero, 12288, 8192),
                Extent::of(ExtentKind::Unallocated, 20480, (1 << 20) - 20480),
            ]
        );
    }

    #[test]
    fn rejects_overlap_wrap_zero_and_out_of_range() {
        let mut b = SegmentMapBuilder::new(100, Overlap::Reject);
        b.push(Segment::plain(0, 10, 0)).unwrap();
        b.push(Segment::plain(5, 10, 50)).unwrap();
        assert_eq!(b.build().unwrap_err().kind(), ErrorKind::Malformed);

        let mut b = SegmentMapBuilder::new(u64::MAX, Overlap::Reject);
        assert!(b.push(Segment::plain(u64::MAX - 1, 10, 0)).is_err());
        b.push(Segment::plain(5, 0, 0)).unwrap();
        assert_eq!(b.pending(), 0);

        let mut b = SegmentMapBuilder::new(100, Overlap::Reject);
        assert_eq!(
            b.push(Segment::plain(95, 10, 0)).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
    }

    #[test]
    fn last_wins_takes_the_latest_copy() {
        let mut b = SegmentMapBuilder::new(64, Overlap::LastWins);
        b.push(Segment::plain(0, 32, 0)).unwrap(); // bytes 0..32
        b.push(Segment::fill(8, 8, 0xEE)).unwrap(); // overrides 8..16
        b.push(Segment::plain(12, 8, 100)).unwrap(); // overrides 12..20 with 100..108
        b.push(Segment::fill(60, 4, 1)).unwrap();
        let m = b.build().unwrap();
        let v = read(&m, 0, 64);
        let mut want: Vec<u8> = (0..64).map(|i| if i < 32 { i as u8 } else { 0 }).collect();
        want[8..12].fill(0xEE);
        for (i, w) in want[12..20].iter_mut().enumerate() {
            *w = 100 + i as u8;
        }
        want[60..64].fill(1);
        assert_eq!(v, want);
        // Pieces of the first segment around the override keep their lower offsets.
        assert_eq!(m.find(25).map(|s| s.start), Some(20));
    }

    #[test]
    fn last_wins_handles_containment_and_duplicates() {
        let mut b = SegmentMapBuilder::new(4096, Overlap::LastWins);
        b.push(Segment::fill(0, 4096, 1)).unwrap();
        b.push(Segment::fill(0, 4096, 2)).unwrap();
        b.push(Segment::fill(1024, 1024, 3)).unwrap();
        b.push(Segment::fill(0, 16, 4)).unwrap();
        let m = b.build().unwrap();
        let v = read(&m, 0, 4096);
        assert!(v[..16].iter().all(|&x| x == 4));
        assert!(v[16..1024].iter().all(|&x| x == 2));
        assert!(v[1024..2048].iter().all(|&x| x == 3));
        assert!(v[2048..].iter().all(|&x| x == 2));
    }

    #[derive(Debug)]
    struct Rev(u64);
    impl Decoder for Rev {
        fn decoded_len(&self) -> u64 {
            self.0
        }
        fn read(&self, _lower: &dyn Layer, offset: u64, buf: &mut [u8]) -> Result<()> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (self.0 - 1 - (offset + i as u64)) as u8;
            }
            Ok(())
        }
    }

    #[test]
    fn compressed_segments_decode_with_offsets() {
        let unit: Arc<dyn Decoder> = Arc::new(Rev(16));
        let mut b = SegmentMapBuilder::new(32, Overlap::Reject);
        b.push(Segment::compressed(0, 8, unit.clone(), 0)).unwrap();
        b.push(Segment::compressed(8, 8, unit.clone(), 8)).unwrap();
        let m = b.build().unwrap();
        assert_eq!(m.segments().len(), 1);
        assert_eq!(read(&m, 6, 4), vec![9, 8, 7, 6]);
        assert_eq!(m.extents(0..32)[0], Extent::data(0, 16, None));
    }
}
