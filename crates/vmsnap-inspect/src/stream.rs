//! Streaming inspection: bytes are fed as an upload passes through, never seeked, never
//! read twice. The inspector keeps the head of the image (where every supported format
//! keeps the metadata its safety rules need) and a bounded window of the tail (for
//! footers at EOF: fixed VHD, streamOptimized VMDK, GPT backup), so memory stays below
//! [`MAX_RETAINED`] whatever the input size. At the end it inspects a layer made of what
//! it kept; a format that needs bytes it did not keep makes the verdict an error, never
//! a guess.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vmsnap_core::{
    check_read, AddressSpace, Error, ErrorKind, Extent, ExtentKind, Layer, Registry, Result,
};

use crate::inspect::{inspect_with, CheckOptions, Report};

/// Bytes of the head kept.
pub const HEAD_BYTES: usize = 4 << 20;
/// Bytes of the tail kept.
pub const TAIL_BYTES: usize = 1 << 20;
/// Most bytes kept of regions formats ask for beyond the head (BAT, metadata tables).
pub const REGION_BYTES: usize = 8 << 20;
/// Most memory the inspector holds for retained bytes.
pub const MAX_RETAINED: usize = HEAD_BYTES + 2 * TAIL_BYTES + REGION_BYTES;

/// What a format must keep beyond the head, computed from the head alone: each format
/// that keeps metadata past its first MiBs states the byte ranges it needs.
pub type RegionHint = fn(&[u8]) -> Vec<Range<u64>>;

/// Inspects a stream fed in chunks of any size.
#[derive(Debug, Default)]
pub struct Inspector {
    hints: Vec<RegionHint>,
    /// Ranges to keep past the head (sorted, disjoint), decided once the head is complete.
    wanted: Option<Vec<Range<u64>>>,
    /// Kept bytes of `wanted`, by start offset.
    regions: Vec<(u64, Vec<u8>)>,
    head: Vec<u8>,
    /// A ring of the last bytes past the head: `tail` holds up to 2 × TAIL_BYTES and is
    /// compacted to TAIL_BYTES when full, so feeding stays amortised O(n).
    tail: Vec<u8>,
    tail_start: u64,
    total: u64,
}

impl Inspector {
    /// A new inspector that keeps only the head and tail.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new inspector that also keeps the regions `hints` ask for.
    pub fn with_hints(hints: Vec<RegionHint>) -> Self {
        Inspector {
            hints,
            ..Self::default()
        }
    }

    /// Decides which ranges past the head to keep: the union of every hint's ranges,
    /// sorted and merged, within [`REGION_BYTES`] in all (ranges beyond that are not kept,
    /// and inspection that needs them reports it could not inspect).
    fn decide(&mut self) {
        let mut all: Vec<Range<u64>> = self
            .hints
            .iter()
            .flat_map(|h| h(&self.head))
            .map(|r| r.start.max(HEAD_BYTES as u64)..r.end)
            .filter(|r| r.start < r.end)
            .collect();
        all.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::new();
        let mut budget = REGION_BYTES as u64;
        for r in all {
            if let Some(last) = merged.last_mut() {
                if r.start <= last.end {
                    let grow = r.end.saturating_sub(last.end).min(budget);
                    last.end += grow;
                    budget -= grow;
                    continue;
                }
            }
            let len = (r.end - r.start).min(budget);
            if len == 0 {
                break;
            }
            budget -= len;
            merged.push(r.start..r.start + len);
        }
        self.wanted = Some(merged);
    }

    /// Keeps the parts of `data` (at stream offset `at`) that fall in wanted ranges.
    fn keep_regions(&mut self, at: u64, data: &[u8]) {
        let Some(wanted) = &self.wanted else { return };
        let end = at + data.len() as u64;
        for w in wanted.iter().filter(|w| w.start < end && at < w.end) {
            let s = w.start.max(at);
            let e = w.end.min(end);
            let piece = data
                .get((s - at) as usize..(e - at) as usize)
                .unwrap_or_default();
            match self
                .regions
                .iter_mut()
                .find(|(start, buf)| *start + buf.len() as u64 == s)
            {
                Some((_, buf)) => buf.extend_from_slice(piece),
                None => self.regions.push((s, piece.to_vec())),
            }
        }
    }

    /// Feeds the next bytes.
    pub fn feed(&mut self, mut data: &[u8]) {
        // Fixed buffers, allocated once: growth by doubling would overshoot the bound.
        if self.head.capacity() == 0 && !data.is_empty() {
            self.head = Vec::with_capacity(HEAD_BYTES);
        }
        if self.head.len() < HEAD_BYTES {
            let n = (HEAD_BYTES - self.head.len()).min(data.len());
            let (now, rest) = data.split_at(n);
            self.head.extend_from_slice(now);
            self.total += n as u64;
            self.tail_start = self.total;
            data = rest;
        }
        if data.is_empty() {
            return;
        }
        if self.wanted.is_none() {
            self.decide();
        }
        self.keep_regions(self.total, data);
        if self.tail.capacity() == 0 {
            self.tail = Vec::with_capacity(2 * TAIL_BYTES);
        }
        if data.len() >= TAIL_BYTES {
            // Only the last TAIL_BYTES of this chunk can matter.
            let skip = data.len() - TAIL_BYTES;
            self.tail.clear();
            self.tail
                .extend_from_slice(data.get(skip..).unwrap_or_default());
            self.total += data.len() as u64;
            self.tail_start = self.total - TAIL_BYTES as u64;
            return;
        }
        if self.tail.len() + data.len() > 2 * TAIL_BYTES {
            let drop = self.tail.len() + data.len() - TAIL_BYTES;
            let drop = drop.min(self.tail.len());
            self.tail.drain(..drop);
            self.tail_start += drop as u64;
        }
        self.tail.extend_from_slice(data);
        self.total += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes held in memory now.
    pub fn retained(&self) -> usize {
        self.head.capacity()
            + self.tail.capacity()
            + self.regions.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    /// Ends the stream and inspects what was kept.
    pub fn finish(self, registry: &Registry, opts: &CheckOptions) -> Report {
        let retained = Arc::new(Retained {
            head: self.head,
            regions: self.regions,
            tail: self.tail,
            tail_start: self.tail_start,
            size: self.total,
            missed: AtomicBool::new(false),
        });
        let layer: Arc<dyn Layer> = retained.clone();
        inspect_with(layer, registry, opts, &|| {
            retained.missed.load(Ordering::Relaxed)
        })
    }
}

/// Passes bytes through to a writer while inspecting them (OpenStack's `InfoWrapper`).
#[derive(Debug)]
pub struct InspectingWriter<W> {
    inner: W,
    inspector: Inspector,
}

impl<W: Write> InspectingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, hints: Vec<RegionHint>) -> Self {
        InspectingWriter {
            inner,
            inspector: Inspector::with_hints(hints),
        }
    }

    /// Ends the stream: the writer back, and the report.
    pub fn finish(self, registry: &Registry, opts: &CheckOptions) -> (W, Report) {
        (self.inner, self.inspector.finish(registry, opts))
    }
}

impl<W: Write> Write for InspectingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.inspector.feed(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What the inspector kept, as a file layer whose other bytes are unavailable.
#[derive(Debug)]
struct Retained {
    head: Vec<u8>,
    regions: Vec<(u64, Vec<u8>)>,
    tail: Vec<u8>,
    tail_start: u64,
    size: u64,
    /// Set when a read asked for bytes that were not kept: a refusal that follows is a
    /// failure to inspect, not a verdict on the image.
    missed: AtomicBool,
}

impl Retained {
    fn copy(src: &[u8], start: u64, offset: u64, buf: &mut [u8]) -> bool {
        let Some(rel) = offset.checked_sub(start) else {
            return false;
        };
        let Ok(rel) = usize::try_from(rel) else {
            return false;
        };
        match rel.checked_add(buf.len()).and_then(|end| src.get(rel..end)) {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
}

impl Layer for Retained {
    fn name(&self) -> &str {
        "file"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::File
    }
    fn len(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        if Self::copy(&self.head, 0, offset, buf)
            || Self::copy(&self.tail, self.tail_start, offset, buf)
            || self
                .regions
                .iter()
                .any(|(start, r)| Self::copy(r, *start, offset, buf))
        {
            return Ok(());
        }
        self.missed.store(true, Ordering::Relaxed);
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "streaming inspection kept only the first {} and last {} bytes; {} bytes at {offset:#x} were not kept",
                self.head.len(),
                self.tail.len(),
                buf.len()
            ),
        )
        .at(offset))
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.size);
        Ok(if range.start < end {
            vec![Extent::of(ExtentKind::Data, range.start, end - range.start)]
        } else {
            Vec::new()
        })
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        Vec::new()
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"format": "file", "size": self.size, "streamed": true})
    }
    fn path(&self) -> Option<&Path> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far_region(_head: &[u8]) -> Vec<Range<u64>> {
        vec![(10 << 20)..(10 << 20) + 100, 0..10]
    }

    #[test]
    fn keeps_head_hinted_regions_and_tail_only() {
        let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
        let mut ins = Inspector::with_hints(vec![far_region]);
        for chunk in data.chunks(777_777) {
            ins.feed(chunk);
        }
        assert!(ins.retained() <= MAX_RETAINED);
        let layer = Retained {
            head: ins.head,
            regions: ins.regions,
            tail: ins.tail,
            tail_start: ins.tail_start,
            size: ins.total,
            missed: AtomicBool::new(false),
        };
        let mut b = [0u8; 100];
        for at in [0u64, 10 << 20, (20 << 20) - 100] {
            layer.read_at(at, &mut b).unwrap();
            assert_eq!(b[..], data[at as usize..at as usize + 100]);
        }
        let e = layer.read_at(8 << 20, &mut b).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(
            layer.read_at((10 << 20) + 50, &mut b).is_err(),
            "past the kept region"
        );
    }
}
