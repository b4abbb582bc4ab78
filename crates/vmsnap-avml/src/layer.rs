//! An AVML image as a guest-physical layer.

use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    Error, Layer, LayerExt, OpenCtx, Overlap, Result, ResultExt, Segment, SegmentMap,
    SegmentMapBuilder,
};

use crate::cache::ChunkCache;
use crate::frame::index;
use crate::header::{RangeHeader, Version};
use crate::raw::{HEADER_SIZE, MAX_CHUNKS, MAX_LISTED_RANGES, MAX_RANGES};
use crate::unit::RangeUnit;

/// The plugin name.
pub const NAME: &str = "avml";

/// One range as read: its header and, for version 2, its stream's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeInfo {
    /// The header.
    pub header: RangeHeader,
    /// Bytes the range occupies in the file after its header: its data (version 1), or
    /// its snappy stream (version 2; the 8-byte trailer not counted).
    pub stored: u64,
    /// Data chunks of the snappy stream (0 for version 1).
    pub chunks: u64,
}

/// An open AVML image: version-1 ranges mapped to their bytes in the file, version-2
/// ranges to their indexed snappy streams; the gaps between ranges (the all-zero blocks
/// avml skips, the holes of the physical address space) read as zeros and are
/// unallocated.
#[derive(Debug)]
pub struct Avml {
    lower: Arc<dyn Layer>,
    ranges: Vec<RangeInfo>,
    map: SegmentMap,
}

impl Avml {
    /// Opens the AVML image on `lower` (the typed API for embedders).
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_layer(lower)
    }

    /// Opens without a context (nothing outside the file is read).
    pub fn open_layer(lower: Arc<dyn Layer>) -> Result<Self> {
        Self::open_inner(lower).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        let file_size = lower.len();
        let cache = Arc::new(ChunkCache::new());
        let mut ranges: Vec<RangeInfo> = Vec::new();
        let mut segments: Vec<Segment> = Vec::new();
        let mut budget = MAX_CHUNKS;
        let mut size = 0u64;
        let mut pos = 0u64;
        while pos < file_size {
            if ranges.len() as u64 >= MAX_RANGES {
                return Err(Error::limit(
                    "number of AVML ranges",
                    ranges.len() as u64 + 1,
                    MAX_RANGES,
                )
                .at(pos));
            }
            if file_size - pos < HEADER_SIZE {
                return Err(Error::truncated(
                    pos,
                    format!(
                        "{} trailing bytes are too short for a range header",
                        file_size - pos
                    ),
                ));
            }
            let raw: [u8; HEADER_SIZE as usize] =
                lower.read_array(pos).during("reading a range header")?;
            let h = RangeHeader::parse(&raw, pos)?;
            let data = h.data_offset();
            let info = match h.version {
                Version::Lime => {
                    let fits = data.checked_add(h.len()).is_some_and(|e| e <= file_size);
                    if !fits {
                        return Err(Error::truncated(
                            pos,
                            format!(
                                "LiME range {} needs {:#x} bytes of data at {data:#x}, past the \
                                 end of the file ({file_size:#x} bytes)",
                                h.span(),
                                h.len()
                            ),
                        ));
                    }
                    segments.push(Segment::plain(h.start, h.len(), data));
                    pos = data + h.len();
                    RangeInfo {
                        header: h,
                        stored: h.len(),
                        chunks: 0,
                    }
                }
                Version::Compressed => {
                    let s = index(lower.as_ref(), &h, &mut budget)?;
                    let first = MAX_CHUNKS - budget - s.chunks.len() as u64;
                    let info = RangeInfo {
                        header: h,
                        stored: s.stream_len,
                        chunks: s.chunks.len() as u64,
                    };
                    let unit = RangeUnit::new(h.span(), h.len(), s.chunks, first, cache.clone());
                    segments.push(Segment::compressed(h.start, h.len(), Arc::new(unit), 0));
                    pos = s.next;
                    info
                }
            };
            size = size.max(h.end);
            ranges.push(info);
        }
        let mut b = SegmentMapBuilder::new(size, Overlap::Reject);
        for s in segments {
            b.push(s)?;
        }
        let map = b.build().during("mapping AVML ranges")?;
        Ok(Avml { lower, ranges, map })
    }

    /// The ranges in file order.
    pub fn ranges(&self) -> &[RangeInfo] {
        &self.ranges
    }

    /// The guest-physical segment map.
    pub fn segment_map(&self) -> &SegmentMap {
        &self.map
    }
}

impl Layer for Avml {
    vmsnap_core::segment_map_layer!(NAME);
    fn describe(&self) -> Value {
        let gaps = self.map.unmapped_bytes();
        let compressed: Vec<&RangeInfo> = self
            .ranges
            .iter()
            .filter(|r| r.header.version == Version::Compressed)
            .collect();
        let decoded: u64 = compressed.iter().map(|r| r.header.len()).sum();
        let stored: u64 = compressed.iter().map(|r| r.stored).sum();
        let ratio = if stored > 0 {
            // Two decimals: a ratio, not a byte count.
            ((decoded as f64 / stored as f64) * 100.0).round() / 100.0
        } else {
            0.0
        };
        json!({
            "format": NAME,
            "virtual_size": self.map.size(),
            "range_count": self.ranges.len(),
            "compressed_ranges": compressed.len(),
            "lime_ranges": self.ranges.len() - compressed.len(),
            "ranges": self.ranges.iter().take(MAX_LISTED_RANGES).map(|r| json!({
                "start": r.header.start,
                "end_inclusive": r.header.end_inclusive,
                "version": r.header.version.number(),
                "header_offset": r.header.header_offset,
                "data_offset": r.header.data_offset(),
                "stored_bytes": r.stored,
                "chunks": r.chunks,
            })).collect::<Vec<_>>(),
            "ranges_listed": self.ranges.len().min(MAX_LISTED_RANGES),
            "mapped_bytes": self.map.size() - gaps,
            "gap_bytes": gaps,
            "compressed_data_bytes": decoded,
            "compressed_stream_bytes": stored,
            "compression_ratio": ratio,
            "chunks": compressed.iter().map(|r| r.chunks).sum::<u64>(),
        })
    }
}
