//! The [`Layer`] trait: an address space with a size, built on lower layers.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::cpu::CpuState;
use crate::error::{Error, Result};
use crate::extent::{push_coalesced, Extent, ExtentKind};
use crate::finding::Finding;
use crate::policy::ExternalRef;
use crate::source::Source;

/// What the offsets of a layer mean. Offsets of different spaces never mix: a layer says
/// which one it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AddressSpace {
    /// Offsets in a file on the host.
    File,
    /// Offsets in a guest's virtual disk.
    GuestDisk,
    /// A byte stream stored inside another layer (a VM state, an embedded file).
    Stream,
    /// Guest-physical addresses.
    GuestPhysical,
    /// Guest-virtual (linear) addresses.
    GuestVirtual,
    /// A metadata container with no meaningful data address space.
    Metadata,
}

impl AddressSpace {
    /// The snake_case name JSON uses: `guest_physical`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressSpace::File => "file",
            AddressSpace::GuestDisk => "guest_disk",
            AddressSpace::Stream => "stream",
            AddressSpace::GuestPhysical => "guest_physical",
            AddressSpace::GuestVirtual => "guest_virtual",
            AddressSpace::Metadata => "metadata",
        }
    }
}

/// What an alternative address space of a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChildRole {
    /// A disk snapshot.
    Snapshot,
    /// The VM state stored with a snapshot (e.g. a QEMU stream in qcow2).
    VmState,
    /// One RAM block or region of a memory image.
    RamBlock,
    /// One virtual address space per page-table root.
    AddressSpace,
    /// A disk of a VM configuration or bundle (`disk:scsi0:0`), or a device of a backup.
    Disk,
    /// A VM's memory: its saved state, or a snapshot's (`memory`,
    /// `snapshot:<name>/memory`).
    Memory,
    /// Anything else.
    Other,
}

/// A named alternative address space a layer offers besides its main one (a snapshot's
/// disk, a snapshot's VM state, one RAM block). `--layer NAME` selects these.
#[derive(Clone)]
pub struct NamedLayer {
    /// Name unique within its parent, e.g. `snapshot:1`, `vmstate:1`, `ram:pc.ram`.
    pub name: String,
    /// What it is.
    pub role: ChildRole,
    /// Whether the stacker should try to stack formats on it.
    pub stackable: bool,
    /// The layer.
    pub layer: Arc<dyn Layer>,
}

impl fmt::Debug for NamedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedLayer")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("stackable", &self.stackable)
            .field("layer", &self.layer.name())
            .finish()
    }
}

/// An address space. Implementations are `Send + Sync` and read through `&self`, so one
/// open image serves many threads.
pub trait Layer: Send + Sync + fmt::Debug {
    /// The format (plugin) name, e.g. `qcow2`; `file` for the base layer.
    fn name(&self) -> &str;

    /// What its offsets mean.
    fn space(&self) -> AddressSpace;

    /// Size of the address space in bytes.
    fn len(&self) -> u64;

    /// Whether the address space is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset`. Holes read as zeros; a read past the end
    /// is an error naming the layer and offset.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Which parts of `range` (clamped to the layer) are data, zero or unallocated, in
    /// order, without reading data.
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len());
        if range.start >= end {
            return Ok(Vec::new());
        }
        Ok(vec![Extent::data(range.start, end - range.start, None)])
    }

    /// The layers this one reads from.
    fn lower(&self) -> Vec<Arc<dyn Layer>>;

    /// Structured metadata (format, virtual size, features, snapshots …), as JSON.
    fn describe(&self) -> serde_json::Value;

    /// The whole metadata tree, lossless (defaults to [`Layer::describe`]).
    fn meta(&self) -> serde_json::Value {
        self.describe()
    }

    /// Safety and consistency findings made while opening.
    fn findings(&self) -> Vec<Finding> {
        Vec::new()
    }

    /// External references (backing files, extents, parents, companions), followed or not.
    fn external_refs(&self) -> Vec<ExternalRef> {
        Vec::new()
    }

    /// Named alternative address spaces (snapshots, VM states, RAM blocks).
    fn children(&self) -> Vec<NamedLayer> {
        Vec::new()
    }

    /// CPU state recorded with this memory, for translation layers.
    fn cpu_state(&self) -> Vec<CpuState> {
        Vec::new()
    }

    /// The bytes of a named metadata item (a VMware tag such as `imageData`, an embedded
    /// file), for `vmsnap meta --extract`. `Ok(None)` when there is no such item.
    fn extract(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let _ = name;
        Ok(None)
    }

    /// Attributes of the mapping behind an extent this layer reported (page size and
    /// permissions for a virtual layer), for `vmsnap map`. `None` when it has none.
    fn extent_attributes(&self, extent: &Extent) -> Option<serde_json::Value> {
        let _ = extent;
        None
    }

    /// How this layer translates `offset` to its lower layer, step by step (an x86 page
    /// walk), for `vmsnap translate`. `Ok(None)` when the layer does not translate.
    fn translate(&self, offset: u64) -> Result<Option<serde_json::Value>> {
        let _ = offset;
        Ok(None)
    }

    /// The host file this layer's bytes ultimately come from, when there is one.
    fn path(&self) -> Option<&Path> {
        None
    }
}

/// Reads from any layer with the checks every parser needs.
pub trait LayerExt {
    /// Reads `len` bytes at `offset` into a new vector, after checking that they lie
    /// inside the layer and that `len` is at most `limit`.
    fn read_vec(&self, offset: u64, len: u64, limit: u64, what: &str) -> Result<Vec<u8>>;
    /// Reads a fixed-size array at `offset`.
    fn read_array<const N: usize>(&self, offset: u64) -> Result<[u8; N]>;
    /// Fills `buf` from `offset`, with zeros for what lies past the end of the layer (as
    /// QEMU's block layer reads past the end of a file).
    fn read_padded(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
}

impl<L: Layer + ?Sized> LayerExt for L {
    fn read_vec(&self, offset: u64, len: u64, limit: u64, what: &str) -> Result<Vec<u8>> {
        if len > limit {
            return Err(Error::limit(what, len, limit).at(offset));
        }
        let end = offset.checked_add(len).filter(|&e| e <= self.len());
        if end.is_none() {
            return Err(Error::truncated(
                offset,
                format!(
                    "{what} of {len} bytes ends past the end of the {} layer ({} bytes)",
                    self.name(),
                    self.len()
                ),
            ));
        }
        let n = usize::try_from(len).map_err(|_| Error::limit(what, len, limit))?;
        let mut v = vec![0u8; n];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }

    fn read_array<const N: usize>(&self, offset: u64) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.read_at(offset, &mut b)?;
        Ok(b)
    }

    fn read_padded(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_within(self, self.len(), offset, buf)
    }
}

/// [`LayerExt::read_padded`] for a layer of `len` bytes, for callers that keep its length.
#[inline]
pub(crate) fn read_within<L: Layer + ?Sized>(
    layer: &L,
    len: u64,
    offset: u64,
    buf: &mut [u8],
) -> Result<()> {
    let have = len.saturating_sub(offset).min(buf.len() as u64);
    let (head, tail) = buf.split_at_mut(have as usize);
    if !head.is_empty() {
        layer.read_at(offset, head)?;
    }
    if !tail.is_empty() {
        tail.fill(0);
    }
    Ok(())
}

/// The base of every stack: a file (or bytes) as a layer.
#[derive(Debug, Clone)]
pub struct FileLayer {
    source: Arc<dyn Source>,
}

impl FileLayer {
    /// Wraps a source.
    pub fn new(source: Arc<dyn Source>) -> Self {
        FileLayer { source }
    }

    /// Opens a file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(FileLayer::new(Arc::new(crate::source::FileSource::open(
            path,
        )?)))
    }

    /// Opens a file memory-mapped (faster random reads; see [`crate::MmapSource`] for the
    /// caveat), falling back to `pread` when it cannot be mapped.
    pub fn open_mapped(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        match crate::source::MmapSource::open(path) {
            Ok(m) => Ok(FileLayer::new(Arc::new(m))),
            Err(_) => FileLayer::open(path),
        }
    }

    /// The source.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }
}

impl Layer for FileLayer {
    fn name(&self) -> &str {
        "file"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::File
    }
    fn len(&self) -> u64 {
        self.source.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.source.read_exact_at(offset, buf).map_err(|e| {
            let e = e.in_layer("file");
            match self.source.path() {
                Some(p) => e.in_file(p),
                None => e,
            }
        })
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len());
        if range.start >= end {
            return Ok(Vec::new());
        }
        let Some(data) = self.source.data_ranges(range.start..end) else {
            return Ok(vec![Extent::data(
                range.start,
                end - range.start,
                Some(range.start),
            )]);
        };
        // Holes of a sparse file are unallocated: they read as zeros and `convert` skips them.
        let mut out = Vec::new();
        let mut pos = range.start;
        for r in data {
            let (s, e) = (r.start.max(pos), r.end.min(end));
            if s > pos {
                push_coalesced(&mut out, Extent::of(ExtentKind::Unallocated, pos, s - pos));
            }
            if e > s {
                push_coalesced(&mut out, Extent::data(s, e - s, Some(s)));
                pos = e;
            }
        }
        if pos < end {
            push_coalesced(
                &mut out,
                Extent::of(ExtentKind::Unallocated, pos, end - pos),
            );
        }
        Ok(out)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        Vec::new()
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "format": "file",
            "path": self.source.path().map(|p| p.display().to_string()),
            "size": self.source.size(),
        })
    }
    fn path(&self) -> Option<&Path> {
        self.source.path()
    }
}

/// A window of a lower layer: `len` bytes from `offset` (an embedded stream, a region).
#[derive(Debug, Clone)]
pub struct SliceLayer {
    name: String,
    space: AddressSpace,
    lower: Arc<dyn Layer>,
    offset: u64,
    len: u64,
}

impl SliceLayer {
    /// `len` bytes of `lower` from `offset`; fails when the window leaves `lower`.
    pub fn new(
        name: impl Into<String>,
        space: AddressSpace,
        lower: Arc<dyn Layer>,
        offset: u64,
        len: u64,
    ) -> Result<Self> {
        let fits = offset.checked_add(len).is_some_and(|e| e <= lower.len());
        if !fits {
            return Err(Error::out_of_bounds(offset, len, lower.len()).in_layer(lower.name()));
        }
        Ok(SliceLayer {
            name: name.into(),
            space,
            lower,
            offset,
            len,
        })
    }
}

impl Layer for SliceLayer {
    fn name(&self) -> &str {
        &self.name
    }
    fn space(&self) -> AddressSpace {
        self.space
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        self.lower.read_at(self.offset + offset, buf)
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len);
        if range.start >= end {
            return Ok(Vec::new());
        }
        let inner = self
            .lower
            .extents(self.offset + range.start..self.offset + end)?;
        Ok(inner
            .into_iter()
            .map(|mut e| {
                e.offset -= self.offset;
                e
            })
            .collect())
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "format": self.name, "offset": self.offset, "size": self.len })
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

/// Fails unless `len` bytes at `offset` lie inside `layer`: the check every `read_at`
/// starts with.
pub fn check_read(layer: &(impl Layer + ?Sized), offset: u64, len: usize) -> Result<()> {
    if crate::source::fits(offset, len, layer.len()) {
        Ok(())
    } else {
        Err(Error::out_of_bounds(offset, len as u64, layer.len()).in_layer(layer.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemSource;

    #[test]
    fn file_layer_and_slice() {
        let f: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(
            (0u8..100).collect::<Vec<_>>(),
        ))));
        let s = SliceLayer::new("w", AddressSpace::Stream, f.clone(), 10, 20).unwrap();
        let mut b = [0u8; 3];
        s.read_at(17, &mut b).unwrap();
        assert_eq!(b, [27, 28, 29]);
        assert!(s.read_at(18, &mut b).is_err());
        assert_eq!(
            s.extents(0..100).unwrap(),
            vec![Extent::data(0, 20, Some(10))]
        );
        assert!(SliceLayer::new("w", AddressSpace::Stream, f.clone(), 90, 11).is_err());
        assert!(SliceLayer::new("w", AddressSpace::Stream, f.clone(), u64::MAX, 2).is_err());
        let v = f.read_vec(98, 2, 10, "tail").unwrap();
        assert_eq!(v, vec![98, 99]);
        assert!(f.read_vec(98, 3, 10, "tail").is_err());
        assert!(f.read_vec(0, 11, 10, "tail").is_err());
        let mut b = [0xAAu8; 4];
        f.read_padded(98, &mut b).unwrap();
        assert_eq!(b, [98, 99, 0, 0]);
        f.read_padded(u64::MAX, &mut b).unwrap();
        assert_eq!(b, [0; 4]);
    }

    #[test]
    fn space_names_are_the_json_names() {
        use AddressSpace::*;
        for s in [
            File,
            GuestDisk,
            Stream,
            GuestPhysical,
            GuestVirtual,
            Metadata,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
