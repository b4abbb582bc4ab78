//! The qcow2 layers: the active disk ([`Qcow2`]), and per internal snapshot its disk and
//! its VM state ([`SnapshotLayer`]).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use vmsnap_core::{
    AddressSpace, ChildRole, EncodedRead, Error, ErrorKind, ExternalRef, Finding, Layer,
    NamedLayer, OpenCtx, Result, Run, RunMap, RunSources,
};

use crate::image::{DataFile, Image};
use crate::open::{self, Opened};
use crate::raw;
use crate::snapshot::Snapshot;

/// An open qcow2 image: its active disk as a layer, with snapshots as children.
#[derive(Debug)]
pub struct Qcow2 {
    image: Arc<Image>,
    l1: Arc<[u64]>,
    snapshots: Vec<Arc<SnapshotL1>>,
    findings: Vec<Finding>,
    refs: Vec<ExternalRef>,
    bitmaps: Vec<Value>,
    luks: Option<Value>,
    backing_state: Value,
}

/// A loaded L1 table, or why loading failed.
type LoadedL1 = std::result::Result<Arc<[u64]>, (ErrorKind, String)>;

/// A snapshot and its lazily loaded L1 table (loaded on first read, so opening an image
/// with many snapshots stays cheap).
#[derive(Debug)]
pub struct SnapshotL1 {
    /// The snapshot.
    pub snapshot: Snapshot,
    l1: OnceLock<LoadedL1>,
}

impl SnapshotL1 {
    fn get(&self, image: &Image) -> Result<Arc<[u64]>> {
        let r = self.l1.get_or_init(|| {
            image
                .load_l1(
                    self.snapshot.l1_table_offset,
                    self.snapshot.l1_size,
                    "snapshot L1 table",
                )
                .map_err(|e| (e.kind(), e.to_string()))
        });
        r.clone().map_err(|(k, m)| {
            Error::new(k, format!("snapshot {:?}: {m}", self.snapshot.id)).in_layer("qcow2")
        })
    }
}

impl Qcow2 {
    /// Opens `lower` as qcow2. External references go through `ctx.resolver`; a backing
    /// file is opened with `ctx.registry`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Qcow2> {
        let path = lower.path().map(Path::to_path_buf);
        let o: Opened = open::open(lower, ctx).map_err(|e| {
            let e = e.in_layer("qcow2");
            match &path {
                Some(p) => e.in_file(p),
                None => e,
            }
        })?;
        Ok(Qcow2 {
            image: o.image,
            l1: o.l1,
            snapshots: o
                .snapshots
                .into_iter()
                .map(|snapshot| {
                    Arc::new(SnapshotL1 {
                        snapshot,
                        l1: OnceLock::new(),
                    })
                })
                .collect(),
            findings: o.findings,
            refs: o.refs,
            bitmaps: o.bitmaps,
            luks: o.luks,
            backing_state: o.backing_state,
        })
    }

    /// The header.
    pub fn header(&self) -> &crate::header::Header {
        &self.image.header
    }

    /// Internal snapshots in table order.
    pub fn snapshots(&self) -> impl Iterator<Item = &Snapshot> {
        self.snapshots.iter().map(|s| &s.snapshot)
    }

    /// The disk of snapshot `id` as a layer.
    pub fn snapshot_disk(&self, id: &str) -> Option<SnapshotLayer> {
        let s = self.snapshots.iter().find(|s| s.snapshot.id == id)?;
        Some(SnapshotLayer::disk(self.image.clone(), s.clone()))
    }

    /// The VM state of snapshot `id` as a layer (a QEMU migration stream).
    pub fn snapshot_vmstate(&self, id: &str) -> Option<SnapshotLayer> {
        let s = self.snapshots.iter().find(|s| s.snapshot.id == id)?;
        SnapshotLayer::vmstate(self.image.clone(), s.clone())
    }

    fn features(&self) -> Value {
        let h = &self.image.header;
        let names = |kind: u8, bits: u64, known: &[(u8, &'static str)]| {
            (0..64u8)
                .filter(|b| bits & (1u64 << b) != 0)
                .map(|b| {
                    known
                        .iter()
                        .find(|(k, _)| *k == b)
                        .map(|(_, n)| (*n).to_string())
                        .or_else(|| h.feature_name(kind, b).map(str::to_string))
                        .unwrap_or_else(|| format!("bit {b}"))
                })
                .collect::<Vec<_>>()
        };
        json!({
            "incompatible": names(0, h.incompatible, &[(0, "dirty"), (1, "corrupt"), (2, "external data file"), (3, "compression type"), (4, "extended L2 entries")]),
            "compatible": names(1, h.compatible, &[(0, "lazy refcounts")]),
            "autoclear": names(2, h.autoclear, &[(0, "bitmaps"), (1, "raw external data")]),
        })
    }
}

impl RunMap for Qcow2 {
    type Cursor = ();

    #[inline]
    fn run(&self, pos: u64, max: u64, _: &mut ()) -> Result<Run> {
        self.image.run(&self.l1, pos, max)
    }

    fn sources(&self) -> RunSources<'_> {
        self.image.sources(0)
    }

    fn read_encoded(&self, reads: &mut [EncodedRead<'_>]) -> Result<()> {
        self.image.read_encoded(0, reads)
    }
}

impl vmsnap_core::RunLayer for Qcow2 {
    fn name(&self) -> &str {
        "qcow2"
    }
    fn len(&self) -> u64 {
        // QEMU counts whole 512-byte sectors (`total_sectors = size / 512`).
        self.image.header.size & !511
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.image.file.clone()];
        if let DataFile::External(d) = &self.image.data {
            v.push(d.clone());
        }
        if let Some(b) = &self.image.backing {
            v.push(b.clone());
        }
        v
    }
    fn describe(&self) -> Value {
        let h = &self.image.header;
        json!({
            "format": "qcow2",
            "virtual_size": h.size & !511,
            "size_field": h.size,
            "version": h.version,
            "compat": if h.version == 2 { "0.10" } else { "1.1" },
            "cluster_size": h.cluster_size(),
            "file_size": self.image.file.len(),
            "backing_file": h.backing_name(),
            "backing_format": h.backing_format,
            "backing": self.backing_state,
            "data_file": h.data_file_name(),
            "data_file_used": h.has_data_file(),
            "data_file_raw": h.autoclear & raw::AUTOCLEAR_DATA_FILE_RAW != 0,
            "data_file_opened": matches!(self.image.data, DataFile::External(_)),
            "encryption": match h.crypt_method {
                raw::CRYPT_NONE => Value::Null,
                raw::CRYPT_AES => json!({"method": "aes", "readable": false}),
                raw::CRYPT_LUKS => json!({"method": "luks", "readable": false, "luks": self.luks, "header": h.crypto.map(|c| json!({"offset": c.offset, "length": c.length}))}),
                m => json!({"method": m, "readable": false}),
            },
            "compression_type": if h.compression_type == raw::COMPRESSION_ZSTD { "zstd" } else { "zlib" },
            "extended_l2": h.extended_l2(),
            "subcluster_size": if h.extended_l2() { Some(h.cluster_size() / raw::SUBCLUSTERS) } else { None },
            "refcount_bits": 1u32 << h.refcount_order,
            "lazy_refcounts": h.compatible & raw::COMPAT_LAZY_REFCOUNTS != 0,
            "dirty": h.incompatible & raw::INCOMPAT_DIRTY != 0,
            "corrupt": h.incompatible & raw::INCOMPAT_CORRUPT != 0,
            "features": self.features(),
            "l1_size": h.l1_size,
            "snapshots": self.snapshots.iter().map(|s| s.snapshot.to_json()).collect::<Vec<_>>(),
            "bitmaps": self.bitmaps,
            "header_extensions": h.extensions.iter().map(|e| json!({
                "type": format!("{:#010x}", e.kind),
                "name": crate::header::ext_name(e.kind),
                "length": e.len,
            })).collect::<Vec<_>>(),
        })
    }
    fn meta(&self) -> Value {
        json!({
            "format": "qcow2",
            "virtual_size": self.image.header.size & !511,
            "header": self.image.header.to_json(),
            "snapshots": self.snapshots.iter().map(|s| s.snapshot.to_meta()).collect::<Vec<_>>(),
            "bitmaps": self.bitmaps,
            "luks": self.luks,
            "backing": self.backing_state,
            "describe": Layer::describe(self),
        })
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        self.refs.clone()
    }
    fn children(&self) -> Vec<NamedLayer> {
        let mut v = Vec::new();
        for s in &self.snapshots {
            v.push(NamedLayer {
                name: format!("snapshot:{}", s.snapshot.id),
                role: ChildRole::Snapshot,
                stackable: false,
                layer: Arc::new(SnapshotLayer::disk(self.image.clone(), s.clone())),
            });
            if let Some(l) = SnapshotLayer::vmstate(self.image.clone(), s.clone()) {
                v.push(NamedLayer {
                    name: format!("vmstate:{}", s.snapshot.id),
                    role: ChildRole::VmState,
                    stackable: true,
                    layer: Arc::new(l),
                });
            }
        }
        v
    }
    fn path(&self) -> Option<&Path> {
        self.image.file.path()
    }
}

/// A snapshot's disk, or its VM state, read through the snapshot's own L1 table.
#[derive(Debug)]
pub struct SnapshotLayer {
    image: Arc<Image>,
    snap: Arc<SnapshotL1>,
    vmstate: bool,
    base: u64,
    len: u64,
}

impl SnapshotLayer {
    fn disk(image: Arc<Image>, snap: Arc<SnapshotL1>) -> Self {
        let len = snap.snapshot.disk_size;
        SnapshotLayer {
            image,
            snap,
            vmstate: false,
            base: 0,
            len,
        }
    }

    fn vmstate(image: Arc<Image>, snap: Arc<SnapshotL1>) -> Option<Self> {
        let len = snap.snapshot.vm_state_size;
        if len == 0 {
            return None;
        }
        let base = image.vm_state_offset(snap.snapshot.disk_size)?;
        base.checked_add(len)?;
        Some(SnapshotLayer {
            image,
            snap,
            vmstate: true,
            base,
            len,
        })
    }

    /// Guest offset (in the snapshot's L1 space) of this layer's first byte: 0 for a
    /// disk, the VM state offset for a VM state.
    pub fn base(&self) -> u64 {
        self.base
    }

    fn layer_name(&self) -> &'static str {
        if self.vmstate {
            "qcow2-vmstate"
        } else {
            "qcow2-snapshot"
        }
    }
}

impl RunMap for SnapshotLayer {
    /// The snapshot's L1 table, loaded on the first run of a read.
    type Cursor = Option<Arc<[u64]>>;

    #[inline]
    fn run(&self, pos: u64, max: u64, l1: &mut Option<Arc<[u64]>>) -> Result<Run> {
        if l1.is_none() {
            *l1 = Some(self.snap.get(&self.image)?);
        }
        let table = l1.as_deref().unwrap_or_default();
        self.image.run(table, self.base + pos, max)
    }

    fn sources(&self) -> RunSources<'_> {
        self.image.sources(self.base)
    }

    fn read_encoded(&self, reads: &mut [EncodedRead<'_>]) -> Result<()> {
        self.image.read_encoded(self.base, reads)
    }
}

impl vmsnap_core::RunLayer for SnapshotLayer {
    fn name(&self) -> &str {
        self.layer_name()
    }
    fn space(&self) -> AddressSpace {
        if self.vmstate {
            AddressSpace::Stream
        } else {
            AddressSpace::GuestDisk
        }
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.image.file.clone()];
        if let Some(b) = &self.image.backing {
            v.push(b.clone());
        }
        v
    }
    fn describe(&self) -> Value {
        json!({
            "format": if self.vmstate { "qcow2-vmstate" } else { "qcow2-snapshot" },
            "virtual_size": self.len,
            "snapshot": self.snap.snapshot.to_json(),
            "guest_offset": self.base,
            "cluster_size": self.image.cluster_size(),
        })
    }
    fn path(&self) -> Option<&Path> {
        self.image.file.path()
    }
}
