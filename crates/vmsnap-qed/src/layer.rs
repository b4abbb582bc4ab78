//! The QED layer: the guest disk through the L1/L2 tables, with the backing file (when
//! the policy lets it be opened) under the unallocated clusters.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{
    block_run, DiskFormat, Error, ExternalRef, Finding, Layer, LayerExt, OpenCtx, RefKind, Result,
    ResultExt, Run, RunKind, RunMap, RunSources,
};

use crate::header::Header;
use crate::raw::{HEADER_LEN, L2_CHUNK_ENTRIES, MAX_BACKING_NAME, ZERO_CLUSTER};
use crate::table::L2Cache;

/// An open QED image.
#[derive(Debug)]
pub struct Qed {
    lower: Arc<dyn Layer>,
    header: Header,
    l1: Vec<u64>,
    l2: L2Cache,
    backing: Option<Arc<dyn Layer>>,
    /// The stand-in for a backing file that was not opened.
    unavailable: Option<Arc<dyn Layer>>,
    backing_name: Option<String>,
    file_len: u64,
    cluster: u64,
    findings: Vec<Finding>,
    refs: Vec<ExternalRef>,
}

impl Qed {
    /// Opens a QED image on `lower`. A backing file is opened only through
    /// `ctx.resolver`; when it is refused or cannot be opened, unallocated clusters are
    /// unavailable (reads fail unless the resolver opted into zeros) and an Unsafe
    /// `backing_file` finding says so.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Qed> {
        Self::open_inner(lower, ctx).in_layer("qed")
    }

    fn open_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Qed> {
        let file_len = lower.len();
        if file_len < HEADER_LEN as u64 {
            return Err(Error::truncated(
                0,
                format!("file of {file_len} bytes is too small for a QED header"),
            ));
        }
        let head = lower.read_array::<HEADER_LEN>(0)?;
        let header = Header::parse(&head, file_len)?;
        let l1_raw = lower
            .read_vec(
                header.l1_table_offset,
                header.l1_bytes_used(),
                vmsnap_core::limits::MAX_TABLE_BYTES,
                "QED L1 table",
            )
            .map_err(|e| e.during("reading the L1 table"))?;
        let l1: Vec<u64> = l1_raw
            .chunks_exact(8)
            .map(|b| <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes))
            .collect();
        let mut findings = vec![Finding::unsafe_(
            crate::rule::QED,
            "QED is deprecated and OpenStack's format inspector bans it outright; reading is \
             supported",
        )];
        if header.need_check() {
            findings.push(
                Finding::warning(
                    crate::rule::NEED_CHECK,
                    "QED need-check flag is set: the image was not closed cleanly and its \
                     tables may be inconsistent",
                )
                .at(16),
            );
        }
        let mut refs = Vec::new();
        let mut backing = None;
        let mut unavailable = None;
        let mut backing_name = None;
        if header.has_backing() {
            let raw = lower.read_vec(
                u64::from(header.backing_filename_offset),
                u64::from(header.backing_filename_size),
                u64::from(MAX_BACKING_NAME),
                "QED backing file name",
            )?;
            let name = String::from_utf8_lossy(&raw).into_owned();
            let f = ctx
                .follow_disk(
                    RefKind::Backing,
                    lower.path(),
                    &name,
                    DiskFormat::Named(header.backing_format()),
                    |_| Ok(()),
                )
                .deny_too_deep()?;
            match &f.layer {
                Some(b) => backing = Some(b.clone()),
                None => {
                    let mut finding = f
                        .reference
                        .finding()
                        .at(u64::from(header.backing_filename_offset));
                    finding
                        .message
                        .push_str("; unallocated clusters are unavailable");
                    findings.push(finding);
                    let stand_in: Arc<dyn Layer> =
                        f.stand_in(ctx, "qed", lower.path(), header.image_size);
                    unavailable = Some(stand_in);
                }
            }
            refs.push(f.reference);
            backing_name = Some(name);
        }
        Ok(Qed {
            cluster: u64::from(header.cluster_size),
            lower,
            header,
            l1,
            l2: L2Cache::default(),
            backing,
            unavailable,
            backing_name,
            file_len,
            findings,
            refs,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The backing layer, when one was opened.
    pub fn backing(&self) -> Option<&Arc<dyn Layer>> {
        self.backing.as_ref()
    }

    /// How the cluster of L2 entry `e` is stored.
    #[inline]
    fn classify(&self, e: u64) -> Result<RunKind> {
        match e {
            0 => Ok(RunKind::Unallocated),
            ZERO_CLUSTER => Ok(RunKind::Zero),
            _ if !e.is_multiple_of(self.cluster)
                || e < self.header.header_bytes()
                || e >= self.file_len =>
            {
                Err(self.bad_entry(e))
            }
            _ => Ok(RunKind::Data(e)),
        }
    }

    /// Why L2 entry `e` is refused (kept out of the read path).
    #[cold]
    #[inline(never)]
    fn bad_entry(&self, e: u64) -> Error {
        let why = if !e.is_multiple_of(self.cluster) {
            "is not cluster aligned".to_string()
        } else if e < self.header.header_bytes() {
            "points into the header".to_string()
        } else {
            format!("points past the end of the file ({:#x})", self.file_len)
        };
        Error::malformed(0, format!("QED L2 entry {e:#x} {why}"))
    }
}

impl vmsnap_core::RunLayer for Qed {
    fn name(&self) -> &str {
        "qed"
    }
    fn len(&self) -> u64 {
        self.header.image_size
    }

    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.lower.clone()];
        v.extend(self.backing.clone());
        v.extend(self.unavailable.clone());
        v
    }

    fn describe(&self) -> serde_json::Value {
        let h = &self.header;
        let backing = self.backing_name.as_ref().map(|name| {
            json!({
                "name": name,
                "format": h.backing_format(),
                "followed": self.backing.is_some(),
                "format_opened": self.backing.as_ref().map(|b| b.name().to_string()),
                "unallocated_reads": if self.backing.is_some() { "backing file" } else { "unavailable" },
            })
        });
        json!({
            "format": "qed",
            "virtual_size": h.image_size,
            "cluster_size": h.cluster_size,
            "table_size": h.table_size,
            "features": h.feature_names(),
            "need_check": h.need_check(),
            "backing": backing,
        })
    }

    fn meta(&self) -> serde_json::Value {
        let h = &self.header;
        let mut v = Layer::describe(self);
        let header = json!({
            "cluster_size": h.cluster_size,
            "table_size": h.table_size,
            "header_size": h.header_size,
            "features": h.features,
            "compat_features": h.compat_features,
            "autoclear_features": h.autoclear_features,
            "l1_table_offset": h.l1_table_offset,
            "image_size": h.image_size,
            "backing_filename_offset": h.backing_filename_offset,
            "backing_filename_size": h.backing_filename_size,
            "l1_entries_used": self.l1.len(),
            "l2_tables": self.l1.iter().filter(|&&e| e != 0).count(),
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

impl RunMap for Qed {
    type Cursor = ();

    /// Clusters of one kind, contiguous in the file for data, within one L2 chunk. The
    /// last cluster may be cut short by the end of the file; QEMU reads the missing bytes
    /// as zeros. A backing file shorter than the image reads as zeros past its end.
    fn run(&self, pos: u64, max: u64, _: &mut ()) -> Result<Run> {
        let h = &self.header;
        let cov = h.l2_coverage();
        let l1_index = pos / cov;
        let in_table = pos % cov;
        let l2_base = self
            .l1
            .get(usize::try_from(l1_index).unwrap_or(usize::MAX))
            .copied()
            .unwrap_or(0);
        if l2_base == 0 {
            return Ok(Run {
                kind: RunKind::Unallocated,
                len: (cov - in_table).min(max),
            });
        }
        let l1_at = h.l1_table_offset + l1_index * 8;
        h.check_table_offset(l2_base, self.file_len)
            .map_err(|e| e.at(l1_at).during("checking an L1 entry"))?;
        let cs = self.cluster;
        let l2_index = in_table / cs;
        let within = in_table % cs;
        let chunk_no = l2_index / L2_CHUNK_ENTRIES as u64;
        let chunk_at = l2_base + chunk_no * (L2_CHUNK_ENTRIES as u64 * 8);
        let chunk = self.l2.get(self.lower.as_ref(), chunk_at)?;
        let first = l2_index % L2_CHUNK_ENTRIES as u64;
        let to_chunk_end = (L2_CHUNK_ENTRIES as u64 - first) * cs - within;
        block_run(cs, first, within, max.min(to_chunk_end), |i| {
            let e = chunk.get(i as usize).copied().unwrap_or(0);
            self.classify(e).map_err(|err| err.at(chunk_at + 8 * i))
        })
    }

    fn sources(&self) -> RunSources<'_> {
        RunSources {
            file: self.lower.as_ref(),
            file_len: self.file_len,
            backing: self.backing.as_deref().or(self.unavailable.as_deref()),
            backing_base: 0,
            data: vmsnap_core::DataExtents::Mapped,
        }
    }
}
