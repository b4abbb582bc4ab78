//! The guest-physical layer of a QEMU stream and its per-RAM-block children.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    check_read, AddressSpace, ChildRole, CpuState, Error, Extent, Finding, Layer, NamedLayer,
    OpenCtx, Overlap, Result, SegmentMap, SegmentMapBuilder,
};

use crate::cpu::cpu_states;
use crate::layout::{layout, Layout};
use crate::pages::{emit, runs_from_records, BitmapRuns, Run};
use crate::raw::limits::{BITMAP_CHUNK_BYTES, MAX_BITMAP_RUNS};
use crate::stream::{bitmap_bytes, parse, sections_json, Parsed};

/// Option naming how much of the main RAM block lies below 4 GiB.
pub const OPT_RAM_BELOW_4G: &str = "qemu.ram-below-4g";

/// One RAM block with its own address space.
#[derive(Debug, Clone)]
pub struct RamBlock {
    /// idstr.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The block as a layer.
    pub layer: Arc<RamBlockLayer>,
}

/// A QEMU stream opened as guest-physical memory.
#[derive(Debug)]
pub struct QemuMemory {
    name: &'static str,
    lower: Arc<dyn Layer>,
    map: SegmentMap,
    blocks: Vec<RamBlock>,
    cpus: Vec<CpuState>,
    describe: Value,
    meta_extra: Value,
    findings: Vec<Finding>,
}

impl QemuMemory {
    /// Opens the stream in `lower` (plain or mapped-ram) as the `qemu` layer.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_named("qemu", lower, ctx)
    }

    /// Opens with the given layer (plugin) name.
    pub fn open_named(
        name: &'static str,
        lower: Arc<dyn Layer>,
        ctx: &OpenCtx<'_>,
    ) -> Result<Self> {
        Self::build(name, lower, ctx).map_err(|e| e.in_layer(name))
    }

    fn build(name: &'static str, lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        let mut p = parse(&lower)?;
        let ps = p.page_size;
        let records = std::mem::take(&mut p.records);
        let (stream_runs, resent) = runs_from_records(records, p.blocks.len(), ps);
        p.stats.resent = resent;
        let mapped_runs = mapped_runs(&lower, &p)?;
        let pam = read_pam(&lower, &p)?;
        let below = crate::plugin::RAM_BELOW_4G.number(ctx.options)?;
        let lay = layout(p.machine.as_deref(), &p.blocks, pam, below)?;
        let runs_of = |i: usize| -> [&[Run]; 2] {
            [
                mapped_runs.get(i).map_or(&[][..], Vec::as_slice),
                stream_runs.get(i).map_or(&[][..], Vec::as_slice),
            ]
        };
        let map = build_map(&lay, ps, &runs_of)?;
        let mut blocks = Vec::new();
        for (i, b) in p.blocks.iter().enumerate() {
            let mut bb = SegmentMapBuilder::new(b.size, Overlap::LastWins);
            for runs in runs_of(i) {
                emit(runs, 0, b.size / ps, 0, ps, &mut bb)?;
            }
            let layer = Arc::new(RamBlockLayer {
                block: b.name.clone(),
                lower: lower.clone(),
                map: bb.build()?,
            });
            blocks.push(RamBlock {
                name: b.name.clone(),
                size: b.size,
                layer,
            });
        }
        let cpus = cpu_states(lower.as_ref(), &p.cpu_fields)?;
        let mut findings = std::mem::take(&mut p.findings);
        if resent > 0 {
            findings.push(Finding::info(
                crate::rule::RESENT_PAGES,
                format!("{resent} pages were sent more than once; the last copy is used"),
            ));
        }
        if p.vmdesc.is_none() {
            findings.push(Finding::info(
                crate::rule::VMDESC,
                "no vmdesc trailer: device sections were skipped by validated footer scan, CPU state is unavailable",
            ));
        }
        let describe = describe(name, &p, &lay, &map, &cpus, &blocks);
        let meta_extra = json!({
            "sections": sections_json(&p),
            "vmdesc": p.vmdesc.as_ref().map(|d| d.json.clone()),
        });
        Ok(QemuMemory {
            name,
            lower,
            map,
            blocks,
            cpus,
            describe,
            meta_extra,
            findings,
        })
    }

    /// The RAM blocks in stream order.
    pub fn blocks(&self) -> &[RamBlock] {
        &self.blocks
    }

    /// The guest-physical segment map.
    pub fn segment_map(&self) -> &SegmentMap {
        &self.map
    }
}

fn build_map<'a>(
    lay: &Layout,
    ps: u64,
    runs_of: &dyn Fn(usize) -> [&'a [Run]; 2],
) -> Result<SegmentMap> {
    let mut b = SegmentMapBuilder::new(lay.size, Overlap::LastWins);
    for w in &lay.windows {
        if w.offset % ps != 0 || w.len % ps != 0 || w.gpa % ps != 0 {
            return Err(Error::malformed(w.gpa, "RAM window is not page aligned"));
        }
        for runs in runs_of(w.block) {
            emit(runs, w.offset / ps, w.len / ps, w.gpa, ps, &mut b)?;
        }
    }
    b.build()
}

fn mapped_runs(lower: &Arc<dyn Layer>, p: &Parsed) -> Result<Vec<Vec<Run>>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut budget = MAX_BITMAP_RUNS;
    for b in &p.blocks {
        let Some(m) = b.mapped else {
            out.push(Vec::new());
            continue;
        };
        let len = bitmap_bytes(b.size, m.page_size);
        let end = m
            .bitmap_offset
            .checked_add(len)
            .filter(|&e| e <= lower.len())
            .ok_or_else(|| {
                Error::truncated(
                    m.bitmap_offset,
                    format!(
                        "mapped-ram dirty bitmap of {len} bytes of block {} ends past the end of the stream",
                        b.name
                    ),
                )
            })?;
        let mut walk = BitmapRuns::new(b.size / m.page_size, m.pages_offset, m.page_size, budget);
        let mut at = m.bitmap_offset;
        while at < end {
            let n = (end - at).min(BITMAP_CHUNK_BYTES);
            buf.resize(n as usize, 0);
            lower
                .read_at(at, &mut buf)
                .map_err(|e| e.during("reading a mapped-ram bitmap"))?;
            walk.feed(&buf)?;
            at += n;
        }
        let runs = walk.finish()?;
        budget = budget.saturating_sub(runs.len() as u64);
        out.push(runs);
    }
    Ok(out)
}

/// The 7 PAM registers from the host bridge's PCI config space, when vmdesc located it.
fn read_pam(lower: &Arc<dyn Layer>, p: &Parsed) -> Result<Option<[u8; 7]>> {
    // With vmdesc: the located `config` field. Without: the host bridge's vmstate starts
    // with the PCI device state (be32 version_id, then the 256-byte config space).
    let cfg = match &p.host_bridge {
        Some((name, fields)) => fields
            .iter()
            .find(|f| f.name.contains("config") && f.size >= 256)
            .map(|f| (name.clone(), f.offset)),
        None => p
            .sections
            .iter()
            .find(|s| s.name.ends_with("/I440FX") || s.name.ends_with("/mch"))
            .filter(|s| s.size >= 4 + 256)
            .map(|s| (s.name.clone(), s.payload + 4)),
    };
    let Some((name, off)) = cfg else {
        return Ok(None);
    };
    let base = if name.ends_with("/mch") { 0x90 } else { 0x59 };
    let mut pam = [0u8; 7];
    lower.read_at(off + base, &mut pam)?;
    Ok(Some(pam))
}

fn insert(v: &mut Value, k: &str, x: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(k.to_string(), x);
    }
}

fn describe(
    name: &str,
    p: &Parsed,
    lay: &Layout,
    map: &SegmentMap,
    cpus: &[CpuState],
    blocks: &[RamBlock],
) -> Value {
    let blocks: Vec<Value> = p
        .blocks
        .iter()
        .zip(blocks)
        .map(|(b, rb)| {
            let mut v = json!({"name": b.name, "size": b.size, "layer": format!("ram:{}", b.name),
                               "segments": rb.layer.map.segments().len()});
            if let Some(m) = b.mapped {
                insert(
                    &mut v,
                    "mapped_ram",
                    json!({"version": m.version, "page_size": m.page_size,
                    "bitmap_offset": m.bitmap_offset, "pages_offset": m.pages_offset}),
                );
            }
            if let Some(a) = b.mr_addr {
                insert(&mut v, "mr_addr", json!(a));
            }
            v
        })
        .collect();
    let mut cmds = std::collections::BTreeMap::<u16, u64>::new();
    for (c, _) in &p.commands {
        *cmds.entry(*c).or_default() += 1;
    }
    json!({
        "format": name,
        "virtual_size": map.size(),
        "stream": "QEVM v3",
        "machine": p.machine,
        "page_size": p.page_size,
        "capabilities": p.capabilities,
        "mapped_ram": p.is_mapped_ram(),
        "mapped_ram_offset_delta": p.mapped_delta,
        "ram_blocks": blocks,
        "layout": lay.rule,
        "ram_records": {"page": p.stats.pages, "zero": p.stats.zero, "eos": p.stats.eos,
                        "multifd_flush": p.stats.multifd_flush, "resent": p.stats.resent},
        "commands": cmds.iter().map(|(c, n)| json!({"command": c, "count": n})).collect::<Vec<_>>(),
        "section_footers": p.footers,
        "sections": p.sections.len(),
        "vmdesc": p.vmdesc.as_ref().map(|d| json!({"offset": d.offset, "devices": d.device_count()})),
        "cpus": cpus,
        "segments": map.segments().len(),
        "segment_map_bytes": map.heap_bytes(),
    })
}

impl Layer for QemuMemory {
    fn name(&self) -> &str {
        self.name
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestPhysical
    }
    fn len(&self) -> u64 {
        self.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        self.map
            .read(self.lower.as_ref(), offset, buf)
            .map_err(|e| e.in_layer(self.name))
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        Ok(self.map.extents(range))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Value {
        self.describe.clone()
    }
    fn meta(&self) -> Value {
        let mut v = self.describe.clone();
        if let (Some(o), Some(e)) = (v.as_object_mut(), self.meta_extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        v
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn children(&self) -> Vec<NamedLayer> {
        self.blocks
            .iter()
            .map(|b| NamedLayer {
                name: format!("ram:{}", b.name),
                role: ChildRole::RamBlock,
                stackable: false,
                layer: b.layer.clone(),
            })
            .collect()
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        self.cpus.clone()
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

/// One RAM block read on its own (offsets within the block).
#[derive(Debug)]
pub struct RamBlockLayer {
    block: String,
    lower: Arc<dyn Layer>,
    map: SegmentMap,
}

impl Layer for RamBlockLayer {
    fn name(&self) -> &str {
        "qemu-ram-block"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestPhysical
    }
    fn len(&self) -> u64 {
        self.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        self.map.read(self.lower.as_ref(), offset, buf)
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        Ok(self.map.extents(range))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Value {
        json!({"format": "qemu-ram-block", "virtual_size": self.map.size(), "block": self.block,
               "segments": self.map.segments().len()})
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}
