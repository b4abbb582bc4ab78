//! The VHDX layer: open (identifier, headers, log replay into an overlay, regions,
//! metadata, BAT, parent) and reads through the BAT and the sector bitmaps.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{
    check_read, push_coalesced, AddressSpace, Error, Extent, ExtentKind, ExternalRef, Finding,
    Findings, Layer, LayerExt, OpenCtx, Result, ResultExt,
};

use crate::bat::Bat;
use crate::header::{active_header, log_span, read_identifier, regions, Header};
use crate::log::{find_active, Overlay};
use crate::metadata::{self, Metadata};
use crate::parent::resolve;
use crate::raw::{guid_text, state, BAT_OFFSET_MASK};

/// Largest part of a sector bitmap read at once (one block's worth: 256 MiB / 512 / 8).
const MAX_BITMAP_READ: u64 = 64 * 1024 + 8;

/// Which kind of VHDX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
                        "log",
                        format!(
                            "the log needs replay: {} entries (sequence {}..={}), {} writes replayed in memory, the file is unchanged (QEMU refuses to open it read-only)",
                            log.entries, log.first_sequence, log.last_sequence, log.writes
                        ),
                    )
                    .at(span.0 + first.at),
                );
                if last.flushed_file_offset > lower.len() {
                    found.push(Finding::warning(
                        "log",
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
                    "log",
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
                            "parent",
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
        } else if v.meta.parent.is_some() {
            found.push(Finding::warning(
                "parent",
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

    fn read_parent(&self, pos: u64, buf: &mut [u8]) -> Result<()> {
        match &self.parent {
            Some(p) => {
                let avail = p.len().saturating_sub(pos).min(buf.len() as u64) as usize;
                let (head, rest) = buf.split_at_mut(avail);
                if !head.is_empty() {
                    p.read_at(pos, head)?;
                }
                rest.fill(0);
            }
            None => buf.fill(0),
        }
        Ok(())
    }

    /// The bitmap of block `b`'s chunk, or `None` when it is not present, and the bit
    /// index of the block's first sector in it.
    fn bitmap_of(&self, b: u64) -> (Option<u64>, u64) {
        let be = self.bat.bitmap(b);
        let first = (b % self.bat.chunk_ratio) * (self.block_size / self.sector);
        if be & 7 == state::BITMAP_PRESENT {
            (Some(be & BAT_OFFSET_MASK), first)
        } else {
            (None, first)
        }
    }

    /// Reads part of a partially present block: sector by sector per the bitmap (bit `i`
    /// of byte `n` is sector `8n + i`; a set bit means this file holds it).
    fn read_partial(
        &self,
        b: u64,
        data_at: u64,
        within: u64,
        pos: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        let (bm, first) = self.bitmap_of(b);
        let Some(bm) = bm else {
            return self.read_parent(pos, buf);
        };
        let mut cache = [0u8; 512];
        let mut cached: Option<u64> = None;
        let mut done = 0usize;
        while done < buf.len() {
            let w = within + done as u64;
            let bit = first + w / self.sector;
            let chunk = bit / 4096;
            if cached != Some(chunk) {
                self.data.read_at(bm + chunk * 512, &mut cache)?;
                cached = Some(chunk);
            }
            let get = |bit: u64| {
                let i = bit % 4096;
                cache
                    .get((i / 8) as usize)
                    .is_some_and(|&x| x & (1 << (i % 8)) != 0)
            };
            let present = get(bit);
            let mut end_bit = bit + 1;
            while end_bit < (chunk + 1) * 4096 && get(end_bit) == present {
                end_bit += 1;
            }
            let run_end = ((end_bit - first) * self.sector).min(within + buf.len() as u64);
            let n = (run_end - w) as usize;
            let dst = buf
                .get_mut(done..done + n)
                .ok_or_else(|| Error::malformed(pos, "internal: bad run"))?;
            if present {
                self.data.read_at(data_at + w, dst)?;
            } else {
                self.read_parent(pos + done as u64, dst)?;
            }
            done += n;
        }
        Ok(())
    }

    fn parent_extents(&self, out: &mut Vec<Extent>, range: Range<u64>) -> Result<()> {
        let Some(p) = &self.parent else {
            push_coalesced(
                out,
                Extent::of(
                    ExtentKind::Unallocated,
                    range.start,
                    range.end - range.start,
                ),
            );
            return Ok(());
        };
        let pend = range.end.min(p.len());
        if range.start < pend {
            for e in p.extents(range.start..pend)? {
                push_coalesced(out, Extent::of(e.kind, e.offset, e.len));
            }
        }
        let from = pend.max(range.start);
        if from < range.end {
            push_coalesced(
                out,
                Extent::of(ExtentKind::Unallocated, from, range.end - from),
            );
        }
        Ok(())
    }
}

impl Layer for Vhdx {
    fn name(&self) -> &str {
        "vhdx"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    fn len(&self) -> u64 {
        self.meta.virtual_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let b = pos / self.block_size;
            let within = pos % self.block_size;
            let n = (self.block_size - within).min((buf.len() - done) as u64) as usize;
            let dst = buf
                .get_mut(done..done + n)
                .ok_or_else(|| Error::malformed(pos, "internal: bad chunk"))?;
            let e = self.bat.payload(b);
            match e & 7 {
                state::FULLY_PRESENT => self
                    .data
                    .read_at((e & BAT_OFFSET_MASK) + within, dst)
                    .in_layer("vhdx")?,
                state::PARTIALLY_PRESENT => {
                    self.read_partial(b, e & BAT_OFFSET_MASK, within, pos, dst)?
                }
                state::NOT_PRESENT => self.read_parent(pos, dst)?,
                _ => dst.fill(0),
            }
            done += n;
        }
        Ok(())
    }

    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len());
        let mut out = Vec::new();
        let mut pos = range.start;
        while pos < end {
            let b = pos / self.block_size;
            let within = pos % self.block_size;
            let n = (self.block_size - within).min(end - pos);
            let e = self.bat.payload(b);
            let at = (e & BAT_OFFSET_MASK) + within;
            // Data read through the log overlay has no 1:1 place in the file.
            let lower_at = (!self.replayed).then_some(at);
            match e & 7 {
                state::FULLY_PRESENT => push_coalesced(&mut out, Extent::data(pos, n, lower_at)),
                state::PARTIALLY_PRESENT => {
                    let (bm, first) = self.bitmap_of(b);
                    // The bitmap bits of this part of the block, read once.
                    let s0 = within / self.sector;
                    let s1 = (within + n).div_ceil(self.sector);
                    let b0 = (first + s0) / 8;
                    let b1 = (first + s1).div_ceil(8);
                    let bits = match bm {
                        Some(bm) => self.data.read_vec(
                            bm + b0,
                            b1 - b0,
                            MAX_BITMAP_READ,
                            "sector bitmap",
                        )?,
                        None => Vec::new(),
                    };
                    let mut sp = pos;
                    while sp < pos + n {
                        let w = within + (sp - pos);
                        let sec_end =
                            ((w / self.sector + 1) * self.sector - within + pos).min(pos + n);
                        let bit = first + w / self.sector - b0 * 8;
                        let present = bits
                            .get((bit / 8) as usize)
                            .is_some_and(|&x| x & (1 << (bit % 8)) != 0);
                        if present {
                            push_coalesced(
                                &mut out,
                                Extent::data(sp, sec_end - sp, lower_at.map(|a| a + (sp - pos))),
                            );
                        } else {
                            self.parent_extents(&mut out, sp..sec_end)?;
                        }
                        sp = sec_end;
                    }
                }
                state::NOT_PRESENT if self.meta.has_parent => {
                    self.parent_extents(&mut out, pos..pos + n)?
                }
                state::NOT_PRESENT => {
                    push_coalesced(&mut out, Extent::of(ExtentKind::Unallocated, pos, n))
                }
                _ => push_coalesced(&mut out, Extent::of(ExtentKind::Zero, pos, n)),
            }
            pos += n;
        }
        Ok(out)
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
        let mut d = self.describe();
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
