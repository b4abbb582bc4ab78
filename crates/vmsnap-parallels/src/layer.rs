//! The Parallels layer: the guest disk through the BAT.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{
    block_run, Error, Finding, Layer, LayerExt, OpenCtx, Result, ResultExt, Run, RunKind, RunMap,
    RunSources,
};

use crate::bat::Bat;
use crate::ext::Extension;
use crate::header::Header;
use crate::raw::{FLAG_EMPTY, HEADER_LEN};

/// An open Parallels image.
#[derive(Debug)]
pub struct Parallels {
    lower: Arc<dyn Layer>,
    header: Header,
    bat: Bat,
    ext: Option<Extension>,
    size: u64,
    cluster: u64,
    file_len: u64,
    findings: Vec<Finding>,
    parent: Option<Arc<dyn Layer>>,
}

impl Parallels {
    /// Opens a Parallels image on `lower`. The format names no other file.
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Parallels> {
        Self::open_inner(lower).in_layer("parallels")
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Parallels> {
        let file_len = lower.len();
        if file_len < HEADER_LEN as u64 {
            return Err(Error::truncated(
                0,
                format!("file of {file_len} bytes is too small for a Parallels header"),
            ));
        }
        let head = lower.read_array::<HEADER_LEN>(0)?;
        let mut findings = Vec::new();
        let header = Header::parse(&head, file_len, &mut findings)?;
        let bat = Bat::load(lower.as_ref(), &header, &mut findings)?;
        let ext = if header.ext_off != 0 {
            Some(
                Extension::load(lower.as_ref(), &header, &mut findings)
                    .map_err(|e| e.during("reading the Parallels format extension"))?,
            )
        } else {
            None
        };
        Ok(Parallels {
            size: header.virtual_size(),
            cluster: header.cluster_size(),
            lower,
            header,
            bat,
            ext,
            file_len,
            findings,
            parent: None,
        })
    }

    /// This image as a differencing layer over `parent`: its unallocated clusters read
    /// from `parent` (a Parallels snapshot, whose bundle's `DiskDescriptor.xml` names the
    /// parent; the image file itself does not). Past the parent's end they read as zeros.
    pub fn with_parent(mut self, parent: Arc<dyn Layer>) -> Parallels {
        self.parent = Some(parent);
        self
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The format extension, when the image has one.
    pub fn extension(&self) -> Option<&Extension> {
        self.ext.as_ref()
    }

    /// The checked BAT.
    pub fn bat(&self) -> &Bat {
        &self.bat
    }
}

impl vmsnap_core::RunLayer for Parallels {
    fn name(&self) -> &str {
        "parallels"
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
        let ext = self.ext.as_ref().map(|e| {
            json!({
                "offset": e.offset,
                "dirty_bitmaps": e.bitmaps.iter().map(|b| b.to_json()).collect::<Vec<_>>(),
                "unknown_features": e.unknown.iter().map(|u| format!("{:#x}", u.magic)).collect::<Vec<_>>(),
            })
        });
        json!({
            "format": "parallels",
            "virtual_size": self.size,
            "variant": h.variant.magic(),
            "cluster_size": self.cluster,
            "bat_entries": h.bat_entries,
            "allocated_clusters": self.bat.allocated,
            "in_use": h.in_use_name(),
            "empty": h.flags & FLAG_EMPTY != 0,
            "format_extension": ext,
        })
    }

    fn meta(&self) -> serde_json::Value {
        let h = &self.header;
        let mut v = Layer::describe(self);
        let header = json!({
            "magic": h.variant.magic(),
            "version": h.version,
            "heads": h.heads,
            "cylinders": h.cylinders,
            "tracks": h.tracks,
            "bat_entries": h.bat_entries,
            "nb_sectors": h.nb_sectors_raw,
            "in_use": h.in_use,
            "data_off": h.data_off,
            "flags": h.flags,
            "ext_off": h.ext_off,
        });
        if let Some(o) = v.as_object_mut() {
            o.insert("header".into(), header);
        }
        v
    }

    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }

    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

impl RunMap for Parallels {
    type Cursor = ();

    /// Clusters that are all unallocated or stored contiguously in the file. Only the last
    /// cluster in the file may be short; QEMU reads its missing tail as zeros.
    #[inline(always)]
    fn run(&self, pos: u64, max: u64, _: &mut ()) -> Result<Run> {
        let bs = self.cluster;
        block_run(bs, pos / bs, pos % bs, max, |i| {
            Ok(self.bat.get(i).map_or(RunKind::Unallocated, RunKind::Data))
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
