//! The VHDX layer: open (identifier, headers, log replay into an overlay, regions,
//! metadata, BAT, parent) and reads through the BAT and the sector bitmaps.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{
    none_opened, BitOrder, BitmapCache, ExternalRef, Finding, Findings, Layer, OpenCtx, RefKind,
    Result, ResultExt, Run, RunKind, RunMap, RunSources, SectorBitmap,
};

use crate::bat::Bat;
use crate::header::{active_header, log_span, read_identifier, regions, Header};
use crate::log::{find_active, Overlay};
use crate::metadata::{self, Metadata};
use crate::parent::resolve;
use crate::raw::{guid_text, state, BAT_OFFSET_MASK};

/// Which kind of VHDX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subformat {
    /// All blocks allocated (LeaveBlocksAllocated).
    Fixed,
    /// Sparse.
    Dynamic,
    /// Sparse over a parent (HasParent).
    Differencing,
}

impl Subformat {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Subformat::Fixed => "fixed",
            Subformat::Dynamic => "dynamic",
            Subformat::Differencing => "differencing",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct LogInfo {
    offset: u64,
    length: u64,
    entries: usize,
    first_sequence: u64,
    last_sequence: u64,
    writes: usize,
}

/// An open VHDX disk.
#[derive(Debug)]
pub struct Vhdx {
    lower: Arc<dyn Layer>,
    /// The file, or the file with the log replayed over it.
    data: Arc<dyn Layer>,
    data_len: u64,
    replayed: bool,
    creator: String,
    header: Header,
    region_copy: usize,
    meta: Metadata,
    bat: Bat,
    block_size: u64,
    sector: u64,
    log: LogInfo,
    parent: Option<Arc<dyn Layer>>,
    /// The stand-in for a parent that was not opened.
    unavailable: Option<Arc<dyn Layer>>,
    refs: Vec<ExternalRef>,
    findings: Findings,
}

impl Vhdx {
    /// Opens a VHDX on `lower`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vhdx> {
        Self::open_inner(lower, ctx).in_layer("vhdx")
    }

    fn open_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Vhdx> {
        let mut found = Vec::new();
        let creator = read_identifier(lower.as_ref()).during("reading the file identifier")?;
        let header = active_header(lower.as_ref(), &mut found).during("reading the headers")?;
        let span = log_span(&header, lower.len())?;
        let mut data: Arc<dyn Layer> = lower.clone();
        let mut log = LogInfo {
            offset: span.0,
            length: span.1,
            ..LogInfo::default()
        };
        let mut replayed = false;
        if header.log_guid != [0; 16] && span.1 > 0 {
            let seq = find_active(lower.as_ref(), span.0, span.1, header.log_guid)
                .during("scanning the log")?;
            if let (Some(first), Some(last)) = (seq.entries.first(), seq.entries.last()) {
                let overlay = Overlay::new(lower.clone(), &seq);
                log.entries = seq.entries.len();
                log.first_sequence = first.sequence;
                log.last_sequence = last.sequence;
                log.writes = overlay.writes();
                found.push(
                    Finding::warning(
                        crate::rule::LOG,
                        format!(
                            "the log needs replay: {} entries (sequence {}..={}), {} writes replayed in memory, the file is unchanged (QEMU refuses to open it read-only)",
                            log.entries, log.first_sequence, log.last_sequence, log.writes
                        ),
                    )
                    .at(span.0 + first.at),
                );
                if last.flushed_file_offset > lower.len() {
                    found.push(Finding::warning(
                        crate::rule::LOG,
                        format!(
                            "the file ({} bytes) is shorter than the log's flushed file offset {}",
                            lower.len(),
                            last.flushed_file_offset
                        ),
                    ));
                }
                data = Arc::new(overlay);
                replayed = true;
            } else {
                found.push(Finding::info(
                    crate::rule::LOG,
                    "log GUID set but the log holds no valid entries; nothing to replay",
                ));
            }
        }
        let regs = regions(data.as_ref(), span, &mut found).during("reading the region table")?;
        let meta = metadata::read(data.as_ref(), &regs.metadata, &mut found)
            .during("reading the metadata region")?;
        let mut spans: Vec<(u64, u64)> = regs
            .all
            .iter()
            .map(|r| (r.offset, r.offset.saturating_add(u64::from(r.length))))
            .collect();
        if span.1 > 0 {
            spans.push((span.0, span.0.saturating_add(span.1)));
        }
        let bat = Bat::read(data.as_ref(), &regs.bat, &meta, &spans).during("reading the BAT")?;
        let mut v = Vhdx {
            lower: lower.clone(),
            data_len: data.len(),
            data,
            replayed,
            creator,
            header,
            region_copy: regs.copy,
            block_size: u64::from(meta.block_size),
            sector: u64::from(meta.logical_sector),
            meta,
            bat,
            log,
            parent: None,
            unavailable: None,
            refs: Vec::new(),
            findings: Findings::new(),
        };
        if v.meta.has_parent {
            if let Some(loc) = &v.meta.parent {
                let out = resolve(&lower, loc, ctx);
                found.extend(out.findings);
                if let Some(p) = &out.layer {
                    if p.len() != v.meta.virtual_size {
                        found.push(Finding::warning(
                            vmsnap_core::rule::PARENT,
                            format!(
                                "parent virtual size {} differs from this disk's {}",
                                p.len(),
                                v.meta.virtual_size
                            ),
                        ));
                    }
                }
                v.parent = out.layer;
                v.refs = out.refs;
            }
            if v.parent.is_none() {
                // No parent opened (or no locator to find it by): the blocks and sectors it
                // supplies are unavailable.
                let name = v.refs.first().map_or("", |r| r.name.as_str()).to_string();
                let r = none_opened(RefKind::Parent, &name, &v.refs);
                let stand_in: Arc<dyn Layer> =
                    ctx.resolver
                        .unavailable(&r, "vhdx", lower.path(), v.meta.virtual_size);
                v.unavailable = Some(stand_in);
            }
        } else if v.meta.parent.is_some() {
            found.push(Finding::warning(
                vmsnap_core::rule::PARENT,
                "a parent locator is present but HasParent is not set; it is ignored",
            ));
        }
        for f in found {
            v.findings.push(f);
        }
        Ok(v)
    }

    /// Which kind of VHDX this is.
    pub fn subformat(&self) -> Subformat {
        if self.meta.has_parent {
            Subformat::Differencing
        } else if self.meta.leave_blocks_allocated {
            Subformat::Fixed
        } else {
            Subformat::Dynamic
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Whether a dirty log was replayed into the in-memory overlay.
    pub fn log_replayed(&self) -> bool {
        self.replayed
    }

    /// The opened parent of a differencing disk.
    pub fn parent(&self) -> Option<&Arc<dyn Layer>> {
        self.parent.as_ref()
    }

    /// The sector bitmap of block `b`, or `None` when its chunk has none present.
    fn sector_bitmap(&self, b: u64) -> Option<SectorBitmap> {
        let be = self.bat.bitmap(b);
        (be & 7 == state::BITMAP_PRESENT).then(|| SectorBitmap {
            at: be & BAT_OFFSET_MASK,
            first_bit: (b % self.bat.chunk_ratio) * (self.block_size / self.sector),
            sector: self.sector,
            order: BitOrder::LsbFirst,
        })
    }
}

impl vmsnap_core::RunLayer for Vhdx {
    fn name(&self) -> &str {
        "vhdx"
    }
    fn len(&self) -> u64 {
        self.meta.virtual_size
    }

    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.lower.clone()];
        if let Some(p) = &self.parent {
            v.push(p.clone());
        }
        v
    }

    fn describe(&self) -> serde_json::Value {
        let m = &self.meta;
        let st = self.bat.states();
        let mut d = json!({
            "format": "vhdx",
            "virtual_size": m.virtual_size,
            "subformat": self.subformat().as_str(),
            "block_size": m.block_size,
            "logical_sector_size": m.logical_sector,
            "physical_sector_size": m.physical_sector,
            "page83": guid_text(&m.page83),
            "creator": self.creator,
            "header": {
                "copy": self.header.copy + 1,
                "sequence": self.header.sequence,
                "file_write_guid": guid_text(&self.header.file_write_guid),
                "data_write_guid": guid_text(&self.header.data_write_guid),
                "log_guid": guid_text(&self.header.log_guid),
            },
            "region_table_copy": self.region_copy + 1,
            "log": {
                "offset": self.log.offset,
                "length": self.log.length,
                "replayed": self.replayed,
                "entries": self.log.entries,
                "first_sequence": self.log.first_sequence,
                "last_sequence": self.log.last_sequence,
                "writes": self.log.writes,
            },
            "bat_entries": self.bat.len(),
            "chunk_ratio": self.bat.chunk_ratio,
            "block_states": {
                "not_present": st[0], "undefined": st[1], "zero": st[2], "unmapped": st[3] + st[5],
                "fully_present": st[6], "partially_present": st[7],
            },
        });
        if let (Some(p), Some(obj)) = (&m.parent, d.as_object_mut()) {
            obj.insert(
                "parent".into(),
                json!({
                    "locator_type": guid_text(&p.locator_type),
                    "entries": p.entries.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                    "opened": self.parent.is_some(),
                }),
            );
        }
        d
    }

    fn meta(&self) -> serde_json::Value {
        let mut d = Layer::describe(self);
        if let Some(obj) = d.as_object_mut() {
            obj.insert(
                "metadata_items".into(),
                json!(self
                    .meta
                    .items
                    .iter()
                    .map(|(g, o, l, f)| json!({
                        "guid": guid_text(g), "offset": o, "length": l, "flags": f,
                    }))
                    .collect::<Vec<_>>()),
            );
        }
        d
    }

    fn findings(&self) -> Vec<Finding> {
        self.findings.to_vec()
    }

    fn external_refs(&self) -> Vec<ExternalRef> {
        self.refs.clone()
    }

    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

impl RunMap for Vhdx {
    type Cursor = BitmapCache;

    /// Block by block: a fully present block is data; a partially present one is data or
    /// the parent's sector by sector, per the sector bitmap of its chunk (bit `i` of byte
    /// `n` is sector `8n + i`; a set bit means this file holds it); a block not present is
    /// the parent's (zeros without one); zero, unmapped and undefined blocks read as zeros.
    #[inline(always)]
    fn run(&self, pos: u64, max: u64, bitmap: &mut BitmapCache) -> Result<Run> {
        let b = pos / self.block_size;
        let within = pos % self.block_size;
        let len = (self.block_size - within).min(max);
        let e = self.bat.payload(b);
        let data = RunKind::Data((e & BAT_OFFSET_MASK) + within);
        let kind = match e & 7 {
            state::FULLY_PRESENT => data,
            state::PARTIALLY_PRESENT => match self.sector_bitmap(b) {
                Some(map) => {
                    let (present, len) = map.run(self.data.as_ref(), bitmap, within, len)?;
                    let kind = if present { data } else { RunKind::Unallocated };
                    return Ok(Run { kind, len });
                }
                None => RunKind::Unallocated,
            },
            state::NOT_PRESENT => RunKind::Unallocated,
            _ => RunKind::Zero,
        };
        Ok(Run { kind, len })
    }

    fn sources(&self) -> RunSources<'_> {
        RunSources {
            file: self.data.as_ref(),
            file_len: self.data_len,
            backing: self.parent.as_deref().or(self.unavailable.as_deref()),
            // Data read through the log overlay has no 1:1 place in the file.
            backing_base: 0,
            data: if self.replayed {
                vmsnap_core::DataExtents::Unmapped
            } else {
                vmsnap_core::DataExtents::Mapped
            },
        }
    }
}
