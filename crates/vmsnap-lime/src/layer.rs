//! A LiME file as a guest-physical layer.

use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    Error, Finding, Findings, Layer, LayerExt, OpenCtx, Overlap, Result, ResultExt, Segment,
    SegmentMap, SegmentMapBuilder,
};

use crate::header::Range;
use crate::raw::*;

/// The plugin name.
pub const NAME: &str = "lime";

/// An open LiME file: each range's data mapped at its addresses; the gaps between ranges
/// (what LiME's `padded` mode would write as zeros) read as zeros and are unallocated.
#[derive(Debug)]
pub struct Lime {
    lower: Arc<dyn Layer>,
    ranges: Vec<Range>,
    map: SegmentMap,
    findings: Findings,
}

impl Lime {
    /// Opens the LiME file on `lower` (the typed API for embedders).
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_layer(lower)
    }

    /// Opens without a context (nothing outside the file is read).
    pub fn open_layer(lower: Arc<dyn Layer>) -> Result<Self> {
        Self::open_inner(lower).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        let file_size = lower.len();
        let mut ranges: Vec<Range> = Vec::new();
        let mut findings = Findings::new();
        let mut pos = 0u64;
        let mut size = 0u64;
        let mut prev_end = 0u64;
        while pos < file_size {
            if ranges.len() as u64 >= MAX_RANGES {
                return Err(Error::limit(
                    "number of LiME ranges",
                    ranges.len() as u64 + 1,
                    MAX_RANGES,
                )
                .at(pos));
            }
            if file_size - pos < HEADER_SIZE {
                return Err(Error::truncated(
                    pos,
                    format!(
                        "{} trailing bytes are too short for a LiME range header",
                        file_size - pos
                    ),
                ));
            }
            let raw: [u8; 32] = lower.read_array(pos).during("reading a range header")?;
            let r = Range::parse(&raw, pos)?;
            let len = r.len().ok_or_else(|| {
                Error::limit("LiME range length", u64::MAX, MAX_PHYS_END).at(pos + 8)
            })?;
            let end = r
                .start
                .checked_add(len)
                .filter(|&e| e <= MAX_PHYS_END)
                .ok_or_else(|| {
                    Error::limit(
                        &format!("end of LiME range {:#x}..={:#x}", r.start, r.end_inclusive),
                        r.end_inclusive.saturating_add(1),
                        MAX_PHYS_END,
                    )
                    .at(pos + 16)
                })?;
            let data = r.data_offset();
            let fits = data.checked_add(len).is_some_and(|e| e <= file_size);
            if !fits {
                return Err(Error::truncated(
                    pos,
                    format!(
                        "LiME range {:#x}..={:#x} needs {len:#x} bytes of data at {data:#x}, past \
                         the end of the file ({file_size:#x} bytes)",
                        r.start, r.end_inclusive
                    ),
                ));
            }
            if r.start < prev_end && !ranges.is_empty() {
                findings.push(
                    Finding::warning(
                        crate::rule::RANGE_ORDER,
                        format!(
                            "range {:#x}..={:#x} starts below the end of the previous range",
                            r.start, r.end_inclusive
                        ),
                    )
                    .at(pos),
                );
            }
            prev_end = end;
            size = size.max(end);
            ranges.push(r);
            pos = data + len;
        }
        let mut b = SegmentMapBuilder::new(size, Overlap::Reject);
        for r in &ranges {
            // Lengths were checked above.
            let len = r.end_inclusive - r.start + 1;
            b.push(Segment::plain(r.start, len, r.data_offset()))?;
        }
        let map = b.build().during("mapping LiME ranges")?;
        Ok(Lime {
            lower,
            ranges,
            map,
            findings,
        })
    }

    /// The ranges in file order.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// The guest-physical segment map.
    pub fn segment_map(&self) -> &SegmentMap {
        &self.map
    }
}

impl Layer for Lime {
    vmsnap_core::segment_map_layer!(NAME);
    fn describe(&self) -> Value {
        let gaps = self.map.unmapped_bytes();
        json!({
            "format": NAME,
            "virtual_size": self.map.size(),
            "version": LIME_VERSION,
            "range_count": self.ranges.len(),
            "ranges": self.ranges.iter().take(MAX_LISTED_RANGES).map(|r| json!({
                "start": r.start,
                "end_inclusive": r.end_inclusive,
                "header_offset": r.header_offset,
                "data_offset": r.data_offset(),
                "reserved": r.reserved,
            })).collect::<Vec<_>>(),
            "ranges_listed": self.ranges.len().min(MAX_LISTED_RANGES),
            "mapped_bytes": self.map.size() - gaps,
            "gap_bytes": gaps,
        })
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.to_vec()
    }
}
