//! The VDI layer: the guest disk as an address space over the file.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{
    block_run, Error, ExternalRef, Finding, Layer, OpenCtx, RefDecision, RefKind, Result,
    ResultExt, Run, RunKind, RunMap, RunSources,
};

use crate::blockmap::{Block, BlockMap};
use crate::header::Header;
use crate::raw::{HEADER_LEN, TYPE_DIFF};

/// An open VDI image.
#[derive(Debug)]
pub struct Vdi {
    lower: Arc<dyn Layer>,
    header: Header,
    map: BlockMap,
    size: u64,
    block_size: u64,
    file_len: u64,
    findings: Vec<Finding>,
    refs: Vec<ExternalRef>,
    /// The parent of a differencing image: opened, or the stand-in for one not found.
    parent: Option<Arc<dyn Layer>>,
    parent_opened: bool,
}

impl Vdi {
    /// Opens a VDI image on `lower`. The parent of a differencing image is identified only
    /// by UUID, so it is looked for among the `.vdi` files the policy allows (see
    /// [`crate::parent`]); when none matches, unallocated blocks are unavailable.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vdi> {
        Self::open_inner(lower, ctx, None).in_layer("vdi")
    }

    /// Opens a VDI image on `lower` whose parent, if it is a differencing image, the caller
    /// has already found (a VirtualBox media registry names each differencing image's
    /// parent): `parent` is used as found, nothing is searched. The caller checked that
    /// the parent's UUID is this image's `uuid_link`. `parent` is ignored when the image
    /// is not a differencing image.
    pub fn open_with_parent(
        lower: Arc<dyn Layer>,
        ctx: &OpenCtx<'_>,
        parent: crate::parent::ParentSearch,
    ) -> Result<Vdi> {
        Self::open_inner(lower, ctx, Some(parent)).in_layer("vdi")
    }

    fn open_inner(
        lower: Arc<dyn Layer>,
        ctx: &OpenCtx<'_>,
        given: Option<crate::parent::ParentSearch>,
    ) -> Result<Vdi> {
        let file_len = lower.len();
        if file_len < HEADER_LEN as u64 {
            return Err(Error::truncated(
                0,
                format!("file of {file_len} bytes is too small for a VDI header"),
            ));
        }
        let mut head = [0u8; HEADER_LEN];
        lower.read_at(0, &mut head)?;
        let header = Header::parse(&head)?;
        let mut findings = Vec::new();
        header.validate(file_len, &mut findings)?;
        let map = BlockMap::load(lower.as_ref(), &header, &mut findings)?;
        let mut refs = Vec::new();
        let mut parent = None;
        let mut parent_opened = false;
        if header.image_type == TYPE_DIFF {
            let found = match given {
                Some(p) => p,
                None => crate::parent::find(&lower, &header, header.virtual_size(), ctx)?,
            };
            findings.extend(found.findings);
            let mut f = match found.refs.last() {
                Some(r) => r.finding(),
                None => Finding::unsafe_(vmsnap_core::rule::PARENT, "differencing image"),
            };
            f.message = if found.opened {
                format!("differencing image: parent {} opened", header.uuid_link)
            } else {
                format!(
                    "differencing image: parent {} not found ({} candidates tried); unallocated \
                     blocks are unavailable",
                    header.uuid_link,
                    found.refs.len().saturating_sub(1)
                )
            };
            findings.push(f);
            refs = found.refs;
            parent = Some(found.layer);
            parent_opened = found.opened;
        } else {
            for (field, u) in [
                ("uuid_link", header.uuid_link),
                ("uuid_parent", header.uuid_parent),
            ] {
                if !u.is_null() {
                    let r = ExternalRef {
                        kind: RefKind::Parent,
                        name: u.to_string(),
                        decision: RefDecision::Listed,
                    };
                    let mut f = r.finding();
                    f.message = format!(
                        "{field} names parent image {u}; a {} image reads no parent, so it is \
                         not opened",
                        header.type_name()
                    );
                    findings.push(f);
                    refs.push(r);
                }
            }
        }
        Ok(Vdi {
            size: header.virtual_size(),
            block_size: u64::from(header.block_size),
            lower,
            header,
            map,
            file_len,
            findings,
            refs,
            parent,
            parent_opened,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The checked block map.
    pub fn block_map(&self) -> &BlockMap {
        &self.map
    }
}

impl vmsnap_core::RunLayer for Vdi {
    fn name(&self) -> &str {
        "vdi"
    }
    fn len(&self) -> u64 {
        self.size
    }

    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.lower.clone()];
        v.extend(self.parent.clone());
        v
    }

    fn describe(&self) -> serde_json::Value {
        let h = &self.header;
        let parent = (!self.refs.is_empty()).then(|| {
            json!({
                "uuid_link": h.uuid_link.to_string(),
                "uuid_parent": h.uuid_parent.to_string(),
                "followed": self.parent_opened,
                "unallocated_reads": match (&self.parent, self.parent_opened) {
                    (Some(_), true) => "parent",
                    (Some(_), false) => "unavailable",
                    (None, _) => "zeros",
                },
            })
        });
        json!({
            "format": "vdi",
            "virtual_size": self.size,
            "image_type": h.type_name(),
            "block_size": h.block_size,
            "block_extra": h.block_extra,
            "blocks_in_image": h.blocks_in_image,
            "blocks_allocated": self.map.allocated,
            "blocks_discarded": self.map.discarded,
            "cluster_size": h.block_size,
            "uuid": h.uuid_image.to_string(),
            "parent": parent,
        })
    }

    fn meta(&self) -> serde_json::Value {
        let h = &self.header;
        let mut v = Layer::describe(self);
        let header = json!({
            "text": h.text,
            "version": format!("{}.{}", h.version >> 16, h.version & 0xffff),
            "header_size": h.header_size,
            "image_type": h.image_type,
            "image_flags": h.image_flags,
            "description": h.description,
            "offset_bmap": h.offset_bmap,
            "offset_data": h.offset_data,
            "cylinders": h.geometry[0],
            "heads": h.geometry[1],
            "sectors": h.geometry[2],
            "sector_size": h.sector_size,
            "disk_size": h.disk_size,
            "block_size": h.block_size,
            "block_extra": h.block_extra,
            "blocks_in_image": h.blocks_in_image,
            "blocks_allocated": h.blocks_allocated,
            "uuid_image": h.uuid_image.to_string(),
            "uuid_last_snap": h.uuid_last_snap.to_string(),
            "uuid_link": h.uuid_link.to_string(),
            "uuid_parent": h.uuid_parent.to_string(),
        });
        if let Some(o) = v.as_object_mut() {
            o.insert("header".into(), header);
        }
        v
    }

    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }

    fn external_refs(&self) -> Vec<ExternalRef> {
        self.refs.clone()
    }

    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

impl RunMap for Vdi {
    type Cursor = ();

    /// Consecutive blocks of the same kind, contiguous in the file for data. Only the
    /// last block of the file may be short; QEMU reads its missing tail as zeros.
    #[inline(always)]
    fn run(&self, pos: u64, max: u64, _: &mut ()) -> Result<Run> {
        let bs = self.block_size;
        block_run(bs, pos / bs, pos % bs, max, |i| {
            Ok(match self.map.get(i) {
                Block::Unallocated => RunKind::Unallocated,
                Block::Discarded => RunKind::Zero,
                Block::Data(at) => RunKind::Data(at),
            })
        })
    }

    fn sources(&self) -> RunSources<'_> {
        RunSources {
            file: self.lower.as_ref(),
            file_len: self.file_len,
            backing: self.parent.as_deref(),
            backing_base: 0,
            data: vmsnap_core::DataExtents::Mapped,
        }
    }
}
