//! The guest-physical layer of a VMware checkpoint and its metadata views.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value as Json};
use vmsnap_core::{
    check_read, AddressSpace, CpuState, Extent, ExternalRef, Finding, Layer, OpenCtx, Result,
    SegmentMap,
};

use crate::checkpoint::Checkpoint;
use crate::memory::MemoryInfo;
use crate::meta;

/// Which file the layer was opened from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// A `.vmss` / `.vmsn` checkpoint.
    Checkpoint,
    /// A `.vmem`.
    Vmem,
}

/// Where the guest memory bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemorySource {
    /// The checkpoint's own `Memory` block.
    Embedded {
        /// File offset of the block's data.
        offset: u64,
        /// Bytes of data in the file.
        len: u64,
        /// `Some(algorithm guess)` when the block is compressed.
        compression: Option<&'static str>,
    },
    /// A `.vmem` file.
    Vmem {
        /// Its name.
        name: String,
        /// Where it was opened from, when known.
        path: Option<String>,
    },
    /// Memory is not available (companion not opened).
    Missing {
        /// The companion's name, when there is one.
        name: Option<String>,
        /// Why it is missing.
        reason: String,
    },
}

/// Everything an open produced, handed to [`Vmware::from_parts`].
#[derive(Debug)]
pub(crate) struct Parts {
    pub lower: Arc<dyn Layer>,
    pub entry: Entry,
    pub checkpoint: Option<Checkpoint>,
    pub info: MemoryInfo,
    pub map: SegmentMap,
    pub mem: Arc<dyn Layer>,
    pub source: MemorySource,
    pub cpus: Vec<CpuState>,
    pub cfg: Option<String>,
    pub findings: Vec<Finding>,
    pub refs: Vec<ExternalRef>,
}

/// A VMware checkpoint's guest-physical memory, opened from the `.vmss`/`.vmsn` or from
/// the `.vmem`, with its CPU state and every group and tag.
#[derive(Debug)]
pub struct Vmware {
    p: Parts,
    /// Whether extents may report lower offsets (memory bytes are in `lower` itself).
    one_to_one: bool,
}

impl Vmware {
    pub(crate) fn from_parts(p: Parts) -> Vmware {
        let one_to_one = Arc::ptr_eq(&p.lower, &p.mem);
        Vmware { p, one_to_one }
    }

    /// Opens `lower` (a `.vmss`, `.vmsn` or `.vmem`), finding the companion file through
    /// `ctx.resolver`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vmware> {
        crate::open::open(lower, ctx)
    }

    /// The parsed checkpoint (absent when a `.vmem` was opened without metadata).
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.p.checkpoint.as_ref()
    }

    /// Which file the layer was opened from.
    pub fn entry(&self) -> Entry {
        self.p.entry
    }

    /// The memory group's layout.
    pub fn memory_info(&self) -> &MemoryInfo {
        &self.p.info
    }

    /// Where the memory bytes come from.
    pub fn memory_source(&self) -> &MemorySource {
        &self.p.source
    }

    /// The guest-physical map.
    pub fn map(&self) -> &SegmentMap {
        &self.p.map
    }

    /// The machine configuration text (`Snapshot/cfgFile`), when present.
    pub fn config_text(&self) -> Option<&str> {
        self.p.cfg.as_deref()
    }

    /// The bytes of the tag named by `spec` — `imageData`, `MKSVMX/imageData`,
    /// `memory/regionPPN[1]` — at most `limit` bytes (see [`Checkpoint::find_spec`]).
    pub fn extract_tag(&self, spec: &str, limit: u64) -> Result<Vec<u8>> {
        match &self.p.checkpoint {
            Some(ck) => ck.extract(spec, limit),
            None => Err(vmsnap_core::Error::new(
                vmsnap_core::ErrorKind::NotFound,
                "no checkpoint metadata was opened, so there are no tags",
            )),
        }
    }
}

impl Layer for Vmware {
    fn extract(&self, name: &str) -> Result<Option<Vec<u8>>> {
        // `vmsnap meta --extract imageData`: a missing tag is "no such item", not an error.
        match self.extract_tag(name, vmsnap_core::limits::MAX_UNIT_BYTES) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == vmsnap_core::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn name(&self) -> &str {
        "vmware"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestPhysical
    }
    fn len(&self) -> u64 {
        self.p.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        self.p
            .map
            .read(self.p.mem.as_ref(), offset, buf)
            .map_err(|e| e.in_layer("vmware"))
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let mut e = self.p.map.extents(range);
        // Mapped memory that lives in a `.vmem` that was not opened.
        if matches!(self.p.source, MemorySource::Missing { .. }) {
            for x in &mut e {
                if x.kind == vmsnap_core::ExtentKind::Data {
                    x.kind = vmsnap_core::ExtentKind::Unavailable;
                    x.lower_offset = None;
                }
            }
        } else {
            // The holes of a sparse memory file (a `.vmem` of a guest that touched little
            // of its RAM) are zero pages: `convert` skips them.
            e = vmsnap_core::extent::refine_by_lower(e, self.p.mem.as_ref())?;
        }
        if !self.one_to_one {
            for x in &mut e {
                x.lower_offset = None;
            }
        }
        Ok(e)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.p.lower.clone()];
        if !Arc::ptr_eq(&self.p.lower, &self.p.mem) {
            v.push(self.p.mem.clone());
        }
        if let Some(ck) = &self.p.checkpoint {
            if !v.iter().any(|l| Arc::ptr_eq(l, &ck.file)) {
                v.push(ck.file.clone());
            }
        }
        v
    }
    fn describe(&self) -> Json {
        meta::describe(self, &self.p.cpus)
    }
    fn meta(&self) -> Json {
        let mut m = match &self.p.checkpoint {
            Some(ck) => meta::tree(ck),
            None => json!({}),
        };
        if let Some(o) = m.as_object_mut() {
            o.insert("format".into(), json!("vmware"));
            o.insert("virtual_size".into(), json!(self.len()));
            o.insert("summary".into(), self.describe());
        }
        m
    }
    fn findings(&self) -> Vec<Finding> {
        let mut f = self.p.findings.clone();
        f.truncate(vmsnap_core::limits::MAX_FINDINGS);
        f
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        self.p.refs.clone()
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        self.p.cpus.clone()
    }
    fn path(&self) -> Option<&Path> {
        self.p.lower.path()
    }
}
