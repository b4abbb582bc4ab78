//! The bundle: every snapshot's state opened from the descriptor, the current one read.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    AddressSpace, ChildRole, Error, Extent, ExternalRef, Finding, Layer, LayerExt, NamedLayer,
    OpenCtx, RefDecision, RefKind, Result, ResultExt, Severity,
};
use vmsnap_parallels::Parallels;

use crate::concat::{describe_state, Concat, Piece};
use crate::descriptor::{Descriptor, Image, Shot};
use crate::guid::Guid;
use crate::raw::{MAX_XML_LEN, SECTOR_SIZE, TYPE_COMPRESSED, TYPE_PLAIN};
use crate::rule;

/// The plugin name.
pub const NAME: &str = "hdd";
/// The child name of the current state.
pub const CURRENT: &str = "disk";
/// The prefix of a snapshot's child name: `snapshot:<guid>`, the GUID without braces.
pub const SNAPSHOT_PREFIX: &str = "snapshot:";

/// One snapshot's state of the disk.
#[derive(Debug)]
struct State {
    shot: Shot,
    disk: Arc<Concat>,
}

/// One image file as followed: the reference, and whether it was opened.
#[derive(Debug)]
struct Followed {
    storage: usize,
    guid: Guid,
    reference: ExternalRef,
    opened: bool,
}

/// An open Parallels `.hdd` bundle.
#[derive(Debug)]
pub struct Hdd {
    lower: Arc<dyn Layer>,
    desc: Descriptor,
    states: Vec<State>,
    current: Arc<Concat>,
    files: Vec<Followed>,
    findings: Vec<Finding>,
}

impl Hdd {
    /// Opens the bundle whose `DiskDescriptor.xml` is `lower`: every image file through
    /// `ctx`'s resolver.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Hdd> {
        Self::open_inner(lower, ctx).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Hdd> {
        let bytes = lower
            .read_vec(0, lower.len(), MAX_XML_LEN, "DiskDescriptor.xml")
            .during("reading DiskDescriptor.xml")?;
        let desc = Descriptor::parse(&bytes).during("parsing DiskDescriptor.xml")?;
        let from = lower.path().map(Path::to_path_buf);
        let mut findings = Vec::new();
        if let Some(sz) = desc.params.disk_size {
            let end = desc.storages.last().map_or(0, |s| s.end);
            if sz != end {
                findings.push(Finding::warning(
                    rule::DISK_SIZE,
                    format!("Disk_size is {sz} sectors but the storages end at sector {end}"),
                ));
            }
        }
        for (si, s) in desc.storages.iter().enumerate() {
            for i in s
                .images
                .iter()
                .filter(|i| i.kind != TYPE_PLAIN && i.kind != TYPE_COMPRESSED)
            {
                findings.push(Finding::warning(
                    rule::IMAGE_TYPE,
                    format!(
                        "storage {si}'s image {:?} is of type {:?}, which is not read",
                        i.file, i.kind
                    ),
                ));
            }
        }
        if let Some(engine) = &desc.params.encryption_engine {
            findings.push(Finding::warning(
                rule::ENCRYPTED,
                format!("the disk is encrypted (engine {engine}); its data is not read"),
            ));
        }
        let mut files = Vec::new();
        // Per storage, the layer of each snapshot opened so far (parents come first).
        let mut opened: Vec<BTreeMap<Guid, Arc<dyn Layer>>> =
            vec![BTreeMap::new(); desc.storages.len()];
        let mut states = Vec::with_capacity(desc.shots.len());
        for shot in &desc.shots {
            let mut pieces = Vec::with_capacity(desc.storages.len());
            for (si, (storage, done)) in desc.storages.iter().zip(opened.iter_mut()).enumerate() {
                let img = storage.image(&shot.guid).ok_or_else(|| {
                    Error::malformed(0, format!("storage {si} has no image of {}", shot.guid))
                })?;
                let parent = shot.parent.as_ref().and_then(|p| done.get(p).cloned());
                let (layer, f) =
                    open_image(ctx, from.as_deref(), &desc, img, storage.len(), parent);
                if let Some(w) = size_finding(si, img, &*layer, storage.len(), f.opened) {
                    findings.push(w);
                }
                files.push(Followed {
                    storage: si,
                    guid: shot.guid.clone(),
                    ..f
                });
                done.insert(shot.guid.clone(), layer.clone());
                pieces.push(Piece {
                    start: storage.start * SECTOR_SIZE,
                    len: storage.len(),
                    layer,
                });
            }
            let d = describe_state(
                shot.guid.as_str(),
                shot.parent.as_ref().map(Guid::as_str),
                desc.len(),
            );
            let disk = Arc::new(Concat::new(pieces, from.as_deref(), d)?);
            states.push(State {
                shot: shot.clone(),
                disk,
            });
        }
        let current = states
            .iter()
            .find(|s| s.shot.guid == desc.top)
            .map(|s| s.disk.clone())
            .ok_or_else(|| Error::malformed(0, "the current state is not a snapshot"))?;
        Ok(Hdd {
            lower,
            desc,
            states,
            current,
            files,
            findings,
        })
    }

    /// The parsed descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    /// The current state (`TopGUID`).
    pub fn current(&self) -> Arc<dyn Layer> {
        self.top_disk().clone()
    }

    /// The state of snapshot `guid` (braces and case do not matter).
    pub fn snapshot(&self, guid: &str) -> Option<Arc<dyn Layer>> {
        let g = Guid::parse(guid, 0).ok()?;
        self.states
            .iter()
            .find(|s| s.shot.guid == g)
            .map(|s| s.disk.clone() as Arc<dyn Layer>)
    }

    fn top_disk(&self) -> &Arc<Concat> {
        &self.current
    }
}

/// Opens image `img` of a storage of `len` bytes over `parent` (the parent snapshot's
/// layer of the same storage): a `Compressed` (expanding Parallels) image reads its
/// unallocated clusters from it; a `Plain` one holds every byte itself.
fn open_image(
    ctx: &OpenCtx<'_>,
    from: Option<&Path>,
    desc: &Descriptor,
    img: &Image,
    len: u64,
    parent: Option<Arc<dyn Layer>>,
) -> (Arc<dyn Layer>, Followed) {
    let refuse = |why: String| ExternalRef {
        kind: RefKind::Extent,
        name: img.file.clone(),
        decision: RefDecision::Failed { reason: why },
    };
    let (reference, layer) = if let Some(engine) = &desc.params.encryption_engine {
        (
            refuse(format!("the disk is encrypted (engine {engine})")),
            None,
        )
    } else if img.kind != TYPE_PLAIN && img.kind != TYPE_COMPRESSED {
        (
            refuse(format!("image type {:?} is not supported", img.kind)),
            None,
        )
    } else {
        let mut f = ctx.follow_file(RefKind::Extent, from, &img.file);
        let layer = match f.layer.take() {
            Some(file) if img.kind == TYPE_COMPRESSED => match Parallels::open(file, ctx) {
                Ok(p) => Some(Arc::new(match parent {
                    Some(par) => p.with_parent(par),
                    None => p,
                }) as Arc<dyn Layer>),
                Err(e) => {
                    f.reference.decision = RefDecision::Failed {
                        reason: e.to_string(),
                    };
                    None
                }
            },
            other => other,
        };
        (f.reference, layer)
    };
    let followed = Followed {
        storage: 0,
        guid: img.guid.clone(),
        opened: layer.is_some(),
        reference,
    };
    let layer = match layer {
        Some(l) => l,
        None => ctx
            .resolver
            .unavailable(&followed.reference, NAME, from, len),
    };
    (layer, followed)
}

/// A warning when an opened image's size is not its storage's.
fn size_finding(
    si: usize,
    img: &Image,
    layer: &dyn Layer,
    len: u64,
    opened: bool,
) -> Option<Finding> {
    (opened && layer.len() != len).then(|| {
        Finding::warning(
            rule::IMAGE_SIZE,
            format!(
                "storage {si} is {len} bytes but its image {:?} is {} bytes (read {})",
                img.file,
                layer.len(),
                if layer.len() < len {
                    "as zeros past its end"
                } else {
                    "up to the storage's end"
                }
            ),
        )
    })
}

impl Layer for Hdd {
    fn name(&self) -> &str {
        NAME
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    fn len(&self) -> u64 {
        self.top_disk().len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.top_disk().read_at(offset, buf)
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        self.top_disk().extents(range)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.lower.clone()];
        v.extend(self.top_disk().lower());
        v
    }
    fn describe(&self) -> Value {
        let d = &self.desc;
        let storages: Vec<Value> = d
            .storages
            .iter()
            .enumerate()
            .map(|(si, s)| {
                let images: Vec<Value> = s
                    .images
                    .iter()
                    .map(|i| {
                        let f = self
                            .files
                            .iter()
                            .find(|f| f.storage == si && f.guid == i.guid);
                        json!({
                            "snapshot": i.guid.as_str(),
                            "type": i.kind,
                            "file": i.file,
                            "opened": f.is_some_and(|f| f.opened),
                            "status": f.map(|f| f.reference.decision.describe()),
                        })
                    })
                    .collect();
                json!({
                    "start_sector": s.start,
                    "end_sector": s.end,
                    "blocksize_sectors": s.blocksize,
                    "images": images,
                })
            })
            .collect();
        let parent_of = |s: &State| s.shot.parent.as_ref().map(Guid::as_str).map(str::to_owned);
        // The snapshots as the other formats list theirs (`id`, `name`: the layer name);
        // the current state apart.
        let snapshots: Vec<Value> = self
            .states
            .iter()
            .filter(|s| s.shot.guid != d.top)
            .map(|s| {
                json!({
                    "id": s.shot.guid.as_str(),
                    "name": format!("{SNAPSHOT_PREFIX}{}", s.shot.guid.as_str()),
                    "parent": parent_of(s),
                })
            })
            .collect();
        let current = self.states.iter().find(|s| s.shot.guid == d.top).map(
            |s| json!({ "id": s.shot.guid.as_str(), "name": CURRENT, "parent": parent_of(s) }),
        );
        json!({
            "format": NAME,
            "virtual_size": self.len(),
            "disk_parameters": d.params_json(),
            "current": current,
            "top_guid_written": d.top_written,
            "storages": storages,
            "snapshots": snapshots,
        })
    }
    fn findings(&self) -> Vec<Finding> {
        // A bundle is never a self-contained image; each file is also listed by `check`
        // from `external_refs()`.
        let mut v = vec![Finding::new(
            vmsnap_core::rule::REFERENCES,
            Severity::Unsafe,
            format!(
                "a Parallels bundle: DiskDescriptor.xml names {} image file(s) of {} storage(s) in {} state(s)",
                self.files.len(),
                self.desc.storages.len(),
                self.states.len()
            ),
        )];
        v.extend(self.findings.iter().cloned());
        v
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        self.files.iter().map(|f| f.reference.clone()).collect()
    }
    fn children(&self) -> Vec<NamedLayer> {
        let mut v = vec![NamedLayer {
            name: CURRENT.to_string(),
            role: ChildRole::Disk,
            // The same disk as this layer, which the stacker already stacks on.
            stackable: false,
            layer: self.current(),
        }];
        for s in self.states.iter().filter(|s| s.shot.guid != self.desc.top) {
            v.push(NamedLayer {
                name: format!("{SNAPSHOT_PREFIX}{}", s.shot.guid.as_str()),
                role: ChildRole::Snapshot,
                stackable: true,
                layer: s.disk.clone(),
            });
        }
        v
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}
