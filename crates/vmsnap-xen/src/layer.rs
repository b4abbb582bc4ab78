//! A Xen dump-core as guest-physical memory.

use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::hex::hex;
use vmsnap_core::{CpuState, Finding, Findings, Layer, OpenCtx, Result, ResultExt, SegmentMap};
use vmsnap_elf::EM_X86_64;

use crate::cpu::{read_contexts, VcpuContext};
use crate::dump::{Dump, Table};
use crate::map::build;
use crate::raw::MAX_LISTED_VCPUS;

/// The plugin name.
pub const NAME: &str = "xen";

/// The machine frame a PV vCPU's `ctrlreg[3]` names (`xen_cr3_to_pfn`, and its compat
/// form for 32-bit guests, which keeps the frame's high bits in the low 12).
fn pv_cr3_mfn(cr3: u64, machine: u16) -> u64 {
    if machine == EM_X86_64 {
        cr3 >> 12
    } else {
        ((cr3 >> 12) | ((cr3 & 0xfff) << 20)) & 0xffff_ffff
    }
}

/// An open Xen dump-core: guest-physical memory by pfn.
#[derive(Debug)]
pub struct Xen {
    lower: Arc<dyn Layer>,
    dump: Dump,
    contexts: Vec<VcpuContext>,
    map: SegmentMap,
    entries: u64,
    mapped_pages: u64,
    pages: u64,
    pv_cr3: Option<(u64, Option<u64>)>,
    findings: Findings,
}

impl Xen {
    /// Opens the dump on `lower` (the typed API for embedders).
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_layer(lower)
    }

    /// Opens without a context (nothing outside the file is read).
    pub fn open_layer(lower: Arc<dyn Layer>) -> Result<Self> {
        Self::open_inner(lower).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        let dump = Dump::parse(lower.as_ref())?;
        let contexts = read_contexts(lower.as_ref(), &dump).during("reading .xen_prstatus")?;
        let m = dump.elf.machine;
        let pv_mfn = match (dump.table, contexts.first()) {
            (Table::P2m, Some(c)) => Some(pv_cr3_mfn(c.ctrlreg[3], m)),
            _ => None,
        };
        let built = build(lower.as_ref(), &dump, pv_mfn).during("mapping .xen_pages")?;
        let mut findings = Findings::new();
        if built.entries != dump.header.nr_pages || built.pages != built.entries {
            findings.push(Finding::warning(
                crate::rule::PAGE_COUNT,
                format!(
                    "xch_nr_pages is {}, {} has {} entries and .xen_pages {} pages; the table's \
                     entries are used",
                    dump.header.nr_pages, dump.table_section.name, built.entries, built.pages
                ),
            ));
        }
        Ok(Xen {
            pv_cr3: pv_mfn.map(|mfn| (mfn, built.found_pfn)),
            lower,
            dump,
            contexts,
            map: built.map,
            entries: built.entries,
            mapped_pages: built.mapped_pages,
            pages: built.pages,
            findings,
        })
    }

    /// The parsed structure (ELF header, sections, notes, header note).
    pub fn dump(&self) -> &Dump {
        &self.dump
    }

    /// The vCPU contexts of `.xen_prstatus`.
    pub fn contexts(&self) -> &[VcpuContext] {
        &self.contexts
    }

    /// The guest-physical segment map.
    pub fn segment_map(&self) -> &SegmentMap {
        &self.map
    }
}

impl Layer for Xen {
    vmsnap_core::segment_map_layer!(NAME);
    fn describe(&self) -> Value {
        let d = &self.dump;
        let h = &d.header;
        json!({
            "format": NAME,
            "virtual_size": self.map.size(),
            "domain": if d.is_hvm() { "hvm" } else { "pv" },
            "machine": d.elf.machine_name(),
            "e_machine": d.elf.machine,
            "xch_magic": hex(h.magic),
            "xch_nr_vcpus": h.nr_vcpus,
            "xch_nr_pages": h.nr_pages,
            "xch_page_size": h.page_size,
            "format_version": d.format_version.map(|v| json!({"major": v >> 32, "minor": v & 0xffff_ffff})),
            "xen_version": d.version.as_ref().map(|v| json!({
                "major": v.major, "minor": v.minor, "extra": v.extra,
                "compiler": v.compiler, "compile_date": v.compile_date,
                "capabilities": v.capabilities, "changeset": v.changeset,
            })),
            "page_table": d.table.section(),
            "table_entries": self.entries,
            "pages": self.pages,
            "mapped_pages": self.mapped_pages,
            "mapped_segments": self.map.segments().len(),
            "pages_offset": d.pages.offset,
            "shared_info_offset": d.shared_info.as_ref().map(|s| s.offset),
            "sections": d.sections.iter().map(|s| json!({
                "name": s.name, "type": s.sh_type, "offset": s.offset,
                "size": s.size, "entsize": s.entsize,
            })).collect::<Vec<_>>(),
            "notes": d.notes.iter().map(|n| json!({
                "name": n.name, "type": hex(u64::from(n.n_type)), "desc_size": n.desc.len(),
            })).collect::<Vec<_>>(),
            "vcpus": self.contexts.iter().take(MAX_LISTED_VCPUS).map(VcpuContext::to_json)
                .collect::<Vec<_>>(),
            "pv_cr3": self.pv_cr3.map(|(mfn, pfn)| json!({
                "mfn": hex(mfn),
                "pfn": pfn.map(hex),
                "note": "PV page tables hold machine frames: no x86 layer on the pfn space",
            })),
        })
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.to_vec()
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        if self.dump.table != Table::Pfn {
            return Vec::new();
        }
        self.contexts
            .iter()
            .map(|c| c.to_cpu_state(self.dump.elf.machine))
            .collect()
    }
}
