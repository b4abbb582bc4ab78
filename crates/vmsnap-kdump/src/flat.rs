//! makedumpfile's flattened format: a 4096-byte header (`makedumpfile` signature, type,
//! version), then records of (big-endian `offset`, `buf_size`, `buf_size` bytes) that
//! say where each piece lies in the dump file they stand for, ended by a record of -1s.
//! [`FlatFile`] maps the records once, at open, and reads the dump file they describe;
//! what no record covers reads as zeros. A record written later wins over the parts of
//! earlier ones it overlaps, as when makedumpfile's `-R` replays the stream into a file.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    AddressSpace, Bytes, Error, Extent, Layer, LayerExt, Overlap, Result, ResultExt, Segment,
    SegmentMap, SegmentMapBuilder,
};

use crate::raw::{
    FLAT_END, FLAT_HEADER_SIZE, FLAT_RECORD_HEADER, FLAT_SIGNATURE, FLAT_TYPE, MAX_FLAT_RECORDS,
    MAX_PHYS_END,
};

/// The name of the unflattened view in errors.
const LAYER: &str = "kdump:flattened";

/// Whether `head` starts with the flattened format's signature.
pub fn is_flattened(head: &[u8]) -> bool {
    head.starts_with(FLAT_SIGNATURE)
}

/// The dump file a flattened file stands for.
#[derive(Debug)]
pub struct FlatFile {
    lower: Arc<dyn Layer>,
    map: SegmentMap,
    records: u64,
    version: i64,
}

impl FlatFile {
    /// Maps the records of the flattened file `lower`.
    pub fn open(lower: Arc<dyn Layer>) -> Result<Self> {
        Self::open_inner(lower).in_layer(LAYER)
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        let file_len = lower.len();
        let head: [u8; 32] = lower.read_array(0).during("reading the flattened header")?;
        let b = Bytes::new(&head, 0);
        if !head.starts_with(FLAT_SIGNATURE) {
            return Err(Error::malformed(0, "no makedumpfile signature"));
        }
        let ty = b.u64_be(16)? as i64;
        let version = b.u64_be(24)? as i64;
        if ty != FLAT_TYPE {
            return Err(Error::unsupported(format!(
                "flattened header of type {ty} (only type {FLAT_TYPE} is known)"
            ))
            .at(16));
        }
        // Records: collected first (the dump's size is the end of the last piece).
        let mut pieces: Vec<(u64, u64, u64)> = Vec::new();
        let mut pos = FLAT_HEADER_SIZE as u64;
        let mut end = 0u64;
        let mut ended = false;
        let mut seen = 0u64;
        while pos < file_len {
            if seen >= MAX_FLAT_RECORDS {
                return Err(Error::limit("flattened records", seen + 1, MAX_FLAT_RECORDS).at(pos));
            }
            let rec: [u8; FLAT_RECORD_HEADER as usize] = lower
                .read_array(pos)
                .during("reading a flattened record header")?;
            let r = Bytes::new(&rec, pos);
            let offset = r.u64_be(0)? as i64;
            let size = r.u64_be(8)? as i64;
            if offset == FLAT_END && size == FLAT_END {
                ended = true;
                break;
            }
            seen += 1;
            let data = pos.saturating_add(FLAT_RECORD_HEADER);
            let (Ok(offset), Ok(size)) = (u64::try_from(offset), u64::try_from(size)) else {
                return Err(Error::malformed(
                    pos,
                    format!("flattened record with negative offset {offset} or size {size}"),
                ));
            };
            let stop = offset
                .checked_add(size)
                .filter(|&e| e <= MAX_PHYS_END)
                .ok_or_else(|| {
                    Error::limit(
                        "end of a flattened record",
                        offset.saturating_add(size),
                        MAX_PHYS_END,
                    )
                    .at(pos)
                })?;
            if size > file_len - data.min(file_len) {
                return Err(Error::truncated(
                    pos,
                    format!(
                        "flattened record of {size} bytes at {data:#x} runs past the end of \
                         the file ({file_len:#x} bytes)"
                    ),
                ));
            }
            if size > 0 {
                end = end.max(stop);
                pieces.push((offset, size, data));
            }
            pos = data + size;
        }
        if !ended {
            return Err(Error::truncated(
                pos,
                "the flattened file has no end marker (cut short, or still being written)",
            ));
        }
        let records = seen;
        let mut builder = SegmentMapBuilder::new(end, Overlap::LastWins);
        for (offset, size, data) in pieces {
            builder.push(Segment::plain(offset, size, data))?;
        }
        let map = builder.build().during("mapping the flattened records")?;
        Ok(FlatFile {
            lower,
            map,
            records,
            version,
        })
    }

    /// How many records the file holds.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The flattened header's version field.
    pub fn version(&self) -> i64 {
        self.version
    }
}

impl Layer for FlatFile {
    fn name(&self) -> &str {
        LAYER
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::File
    }
    fn len(&self) -> u64 {
        self.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.map
            .read(self.lower.as_ref(), offset, buf)
            .map_err(|e| e.in_layer(LAYER))
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        Ok(self.map.extents(range))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Value {
        json!({
            "format": LAYER,
            "records": self.records,
            "version": self.version,
            "size": self.map.size(),
        })
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}
