//! The file as the reader sees it: the lower layer's bytes with the pending replay-log
//! entries applied in memory (the file itself is never written).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{check_read, AddressSpace, Extent, Layer, Result};

/// One replay-log entry applied in memory: `data` replaces the file bytes at `dest`.
#[derive(Debug, Clone)]
pub(crate) struct Patch {
    /// Destination file offset.
    pub(crate) dest: u64,
    /// Replacement bytes.
    pub(crate) data: Vec<u8>,
}

impl Patch {
    fn end(&self) -> u64 {
        self.dest.saturating_add(self.data.len() as u64)
    }
}

/// The lower layer with patches on top, applied in order (later patches win).
#[derive(Debug, Clone)]
pub struct Image {
    lower: Arc<dyn Layer>,
    patches: Arc<[Patch]>,
}

impl Image {
    /// The lower layer with `patches` applied in order.
    pub(crate) fn new(lower: Arc<dyn Layer>, patches: Vec<Patch>) -> Self {
        Image {
            lower,
            patches: patches.into(),
        }
    }

    /// The unpatched layer underneath.
    pub fn lower(&self) -> &Arc<dyn Layer> {
        &self.lower
    }

    /// Whether any patch is applied.
    pub fn is_patched(&self) -> bool {
        !self.patches.is_empty()
    }
}

impl Layer for Image {
    fn name(&self) -> &str {
        "hyperv-replayed"
    }
    fn space(&self) -> AddressSpace {
        self.lower.space()
    }
    fn len(&self) -> u64 {
        self.lower.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        self.lower.read_at(offset, buf)?;
        let end = offset.saturating_add(buf.len() as u64);
        for p in self.patches.iter() {
            let lo = p.dest.max(offset);
            let hi = p.end().min(end);
            if lo >= hi {
                continue;
            }
            let (Ok(src_at), Ok(dst_at), Ok(n)) = (
                usize::try_from(lo - p.dest),
                usize::try_from(lo - offset),
                usize::try_from(hi - lo),
            ) else {
                continue;
            };
            if let (Some(d), Some(s)) = (
                buf.get_mut(dst_at..dst_at.saturating_add(n)),
                p.data.get(src_at..src_at.saturating_add(n)),
            ) {
                d.copy_from_slice(s);
            }
        }
        Ok(())
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len());
        if range.start >= end {
            return Ok(Vec::new());
        }
        let touched = self
            .patches
            .iter()
            .any(|p| p.dest < end && p.end() > range.start);
        let lower_offset = (!touched).then_some(range.start);
        Ok(vec![Extent::data(
            range.start,
            end - range.start,
            lower_offset,
        )])
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "format": self.name(),
            "virtual_size": self.len(),
            "patches": self.patches.len(),
        })
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}
