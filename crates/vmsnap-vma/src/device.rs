//! One device of the archive as a layer: its stored blocks are the file's bytes, its zero
//! blocks read as zeros, and the clusters no extent holds (a cut-short backup) fail to read.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    AddressSpace, Error, ErrorKind, Extent, ExtentKind, Layer, Overlap, Result, ResultExt, Segment,
    SegmentMap, SegmentMapBuilder,
};

use crate::header::Device;
use crate::raw::{BLOCKS_PER_CLUSTER, BLOCK_SIZE, CLUSTER_SIZE, VMSTATE_NAME};
use crate::scan::Cluster;

/// A device of a VMA archive (`vma-device`): a guest disk, or for `vmstate` the VM's
/// saved state as a stream.
#[derive(Debug)]
pub struct VmaDevice {
    lower: Arc<dyn Layer>,
    device: Device,
    map: SegmentMap,
    stored_bytes: u64,
    clusters: u64,
    missing: u64,
}

/// The layer name of a device.
pub const DEVICE_LAYER: &str = "vma-device";

impl VmaDevice {
    /// Maps `device` from its sorted `clusters` in `lower` (the archive file).
    pub fn new(lower: Arc<dyn Layer>, device: Device, clusters: &[Cluster]) -> Result<Self> {
        let size = device.size;
        let mut b = SegmentMapBuilder::new(size, Overlap::Reject);
        let mut stored_bytes = 0;
        for c in clusters {
            let start = u64::from(c.num) * CLUSTER_SIZE;
            let mut data = c.data;
            if c.mask == 0xffff {
                let len = CLUSTER_SIZE.min(size.saturating_sub(start));
                b.push(Segment::plain(start, len, data))?;
                stored_bytes += len;
                continue;
            }
            for i in 0..BLOCKS_PER_CLUSTER {
                let at = start + i * BLOCK_SIZE;
                let len = BLOCK_SIZE.min(size.saturating_sub(at));
                if c.mask & (1 << i) != 0 {
                    b.push(Segment::plain(at, len, data))?;
                    stored_bytes += len;
                    data += BLOCK_SIZE;
                } else {
                    b.push(Segment::fill(at, len, 0))?;
                }
            }
        }
        let map = b
            .build()
            .during("mapping the VMA device")
            .map_err(|e| e.in_layer(DEVICE_LAYER))?;
        let expected = size.div_ceil(CLUSTER_SIZE);
        let clusters_n = clusters.len() as u64;
        Ok(VmaDevice {
            lower,
            device,
            map,
            stored_bytes,
            clusters: clusters_n,
            missing: expected.saturating_sub(clusters_n),
        })
    }

    /// The device's id, name and size.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Bytes stored in the archive (the non-zero 4 KiB blocks, within the device).
    pub fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    /// Clusters no extent holds.
    pub fn missing_clusters(&self) -> u64 {
        self.missing
    }

    /// Whether this is the VM state (`vmstate`), not a disk.
    pub fn is_vmstate(&self) -> bool {
        self.device.name == VMSTATE_NAME
    }

    /// A summary for `describe`.
    pub fn summary(&self) -> Value {
        json!({
            "id": self.device.id,
            "name": self.device.name,
            "size": self.device.size,
            "stored_bytes": self.stored_bytes,
            "clusters": self.clusters,
            "missing_clusters": self.missing,
        })
    }

    fn missing_error(&self, at: u64) -> Error {
        Error::new(
            ErrorKind::Truncated,
            format!(
                "cluster {} of device {:?} is not in the archive (the backup was cut short): \
                 its bytes are unknown",
                at / CLUSTER_SIZE,
                self.device.name
            ),
        )
        .at(at)
        .in_layer(DEVICE_LAYER)
    }
}

impl Layer for VmaDevice {
    fn name(&self) -> &str {
        DEVICE_LAYER
    }
    fn space(&self) -> AddressSpace {
        if self.is_vmstate() {
            AddressSpace::Stream
        } else {
            AddressSpace::GuestDisk
        }
    }
    fn len(&self) -> u64 {
        self.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if self.missing > 0 {
            let end = offset.saturating_add(buf.len() as u64);
            if let Some(e) = self
                .map
                .extents(offset..end)
                .iter()
                .find(|e| e.kind == ExtentKind::Unallocated)
            {
                return Err(self.missing_error(e.offset));
            }
        }
        self.map
            .read(self.lower.as_ref(), offset, buf)
            .map_err(|e| e.in_layer(DEVICE_LAYER))
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let mut v = self.map.extents(range);
        for e in &mut v {
            if e.kind == ExtentKind::Unallocated {
                e.kind = ExtentKind::Unavailable;
            }
        }
        Ok(v)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Value {
        let mut v = self.summary();
        if let Some(m) = v.as_object_mut() {
            m.insert("format".into(), json!(DEVICE_LAYER));
            m.insert("virtual_size".into(), json!(self.len()));
        }
        v
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}
