//! A pvs file as a guest disk.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    AddressSpace, Error, Extent, Layer, LayerExt, OpenCtx, Overlap, Result, ResultExt, Segment,
    SegmentMap, SegmentMapBuilder,
};

use crate::header::Header;
use crate::raw::HEADER_SIZE;

/// The plugin name.
pub const NAME: &str = "pvs";

/// An open pvs file: the header, and where each range of the disk lies in the file.
#[derive(Debug)]
pub struct Pvs {
    lower: Arc<dyn Layer>,
    header: Header,
    map: SegmentMap,
}

impl Pvs {
    /// Opens the pvs file on `lower` (the typed API for embedders).
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_layer(lower)
    }

    /// Opens without a context (nothing outside the file is read).
    pub fn open_layer(lower: Arc<dyn Layer>) -> Result<Self> {
        Self::open_inner(lower).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        if lower.len() < HEADER_SIZE {
            return Err(Error::truncated(
                0,
                format!(
                    "{} bytes are too short for the {HEADER_SIZE}-byte pvs header",
                    lower.len()
                ),
            ));
        }
        let raw: [u8; HEADER_SIZE as usize] =
            lower.read_array(0).during("reading the pvs header")?;
        let header = Header::parse(&raw, lower.len())?;
        // TODO(new-format): one segment per run of the disk the format stores (a table of
        // blocks, extents …); zeros and holes are the gaps between them.
        let mut b = SegmentMapBuilder::new(header.virtual_size, Overlap::Reject);
        if header.virtual_size > 0 {
            b.push(Segment::plain(0, header.virtual_size, header.data_offset))?;
        }
        let map = b.build().during("mapping the pvs data")?;
        Ok(Pvs { lower, header, map })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

impl Layer for Pvs {
    fn name(&self) -> &str {
        NAME
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    fn len(&self) -> u64 {
        self.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.map
            .read(self.lower.as_ref(), offset, buf)
            .map_err(|e| e.in_layer(NAME))
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        Ok(self.map.extents(range))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Value {
        json!({
            "format": NAME,
            "virtual_size": self.header.virtual_size,
            "data_offset": self.header.data_offset,
        })
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}
