//! VirtualBox `dumpvmcore` notes (`VBoxManage debugvm NAME dumpvmcore --filename F`,
//! DBGFCoreWrite.cpp): a VirtualBox core is a plain ELF64 core — one PT_NOTE, one PT_LOAD
//! per RAM range (MMIO ranges with `p_filesz` 0) — whose notes are a `VBCORE` note
//! (`NT_VBOXCORE`, a `DBGFCOREDESCRIPTOR`) and one `VBCPU` note (`NT_VBOXCPU`, a
//! `DBGFCORECPU`) per vCPU, laid out as `include/VBox/vmm/dbgfcorefmt.h` documents. So
//! this crate reads them with its other notes (one ELF parser for every ELF core): the
//! descriptor and each vCPU's registers go to `describe()`, and the vCPUs become the
//! core's CPU state (CR3 and the recorded EFER, so the x86 layer stacks) when the core has
//! no QEMU CPU notes.
//!
//! `DBGFCORECPU` exists from format version 1.4 on (earlier versions wrote raw `CPUMCTX`,
//! whose layout changed between releases): versions 1.4 to 1.6 are decoded up to
//! `msrApicBase` (the prefix they share; 1.6 adds `msrTscAux`), others are described
//! without registers, with a finding.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vmsnap_core::hex::hex;
use vmsnap_core::{Bytes, CpuState, Finding, Result};

use crate::header::Endian;
use crate::note::Note;
use crate::raw::EM_X86_64;

/// Owner name of the descriptor note.
pub const VBCORE_NAME: &str = "VBCORE";
/// Owner name of the per-vCPU notes.
pub const VBCPU_NAME: &str = "VBCPU";
/// `n_type` of the descriptor note.
pub const NT_VBOXCORE: u32 = 0xb00;
/// `n_type` of a vCPU note.
pub const NT_VBOXCPU: u32 = 0xb01;
/// `DBGFCOREDESCRIPTOR.u32Magic`.
pub const DBGFCORE_MAGIC: u32 = 0xc01a_c0de;
/// Size of `DBGFCOREDESCRIPTOR`.
pub const DESCRIPTOR_SIZE: usize = 24;
/// The first format version whose vCPU notes are `DBGFCORECPU`.
pub const FMT_CPU_FIRST: u32 = 0x0001_0004;
/// The newest format version known (VirtualBox 6.0 to 7.x).
pub const FMT_CPU_LAST: u32 = 0x0001_0006;
/// The first version with `msrTscAux`.
pub const FMT_TSC_AUX: u32 = 0x0001_0006;

/// General registers of `DBGFCORECPU`, at 8-byte steps from 0.
const GPRS: [&str; 18] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "rip", "rsp", "rbp", "rflags",
];
/// `DBGFCORESEL` registers (24 bytes each: base u64, limit u32, attr u32, sel u16) from 144.
const SEGMENTS: [(&str, usize); 8] = [
    ("cs", 144),
    ("ds", 168),
    ("es", 192),
    ("fs", 216),
    ("gs", 240),
    ("ss", 264),
    ("ldtr", 416),
    ("tr", 440),
];
/// Offsets of `cr0`, `cr2`, `cr3`, `cr4`.
const CR_AT: [(&str, usize); 4] = [("cr0", 288), ("cr2", 296), ("cr3", 304), ("cr4", 312)];
/// Offset of `dr[0]`.
const DR_AT: usize = 320;
/// `DBGFCOREXDTR` (addr u64, limit u32) of gdtr and idtr.
const XDTR: [(&str, usize); 2] = [("gdtr", 384), ("idtr", 400)];
/// The 64-bit fields from `sysenter` to `msrApicBase`.
const MSRS: [(&str, usize); 12] = [
    ("sysenter_cs", 464),
    ("sysenter_eip", 472),
    ("sysenter_esp", 480),
    ("efer", 488),
    ("star", 496),
    ("pat", 504),
    ("lstar", 512),
    ("cstar", 520),
    ("sfmask", 528),
    ("kernel_gs_base", 536),
    ("apic_base", 544),
    ("tsc_aux", 552),
];
/// Bytes of `DBGFCORECPU` decoded: through `msrApicBase`, or `msrTscAux` from 1.6.
const CPU_PREFIX: usize = 552;

/// `DBGFCOREDESCRIPTOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VboxDescriptor {
    /// `u32Magic` (`DBGFCORE_MAGIC`).
    pub magic: u32,
    /// `u32FmtVersion` (major in the high 16 bits).
    pub fmt_version: u32,
    /// `cbSelf`.
    pub cb_self: u32,
    /// `u32VBoxVersion` (`VBOX_FULL_VERSION`: major << 24 | minor << 16 | build).
    pub vbox_version: u32,
    /// `u32VBoxRevision`.
    pub vbox_revision: u32,
    /// `cCpus`.
    pub cpus: u32,
}

impl VboxDescriptor {
    /// For `describe()`.
    pub fn to_json(&self) -> Value {
        let v = self.vbox_version;
        json!({
            "magic": hex(u64::from(self.magic)),
            "format_version": format!("{}.{}", self.fmt_version >> 16, self.fmt_version & 0xffff),
            "cb_self": self.cb_self,
            "vbox_version": format!("{}.{}.{}", v >> 24, (v >> 16) & 0xff, v & 0xffff),
            "vbox_revision": self.vbox_revision,
            "cpus": self.cpus,
        })
    }
}

/// One vCPU's `DBGFCORECPU`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VboxCpu {
    /// Ordinal of the note (vCPU index).
    pub index: u32,
    /// Every decoded field by name (`rax`, `cs`, `cs_base`, `cr3`, `dr7`, `gdtr_limit`,
    /// `efer`, `kernel_gs_base` …).
    pub regs: BTreeMap<String, u64>,
}

impl VboxCpu {
    fn parse(index: u32, n: &Note, e: Endian, tsc_aux: bool) -> Result<Self> {
        let b = Bytes::new(&n.desc, n.desc_offset);
        let mut regs = BTreeMap::new();
        for (i, name) in GPRS.iter().enumerate() {
            regs.insert((*name).to_string(), e.u64(&b, i * 8)?);
        }
        for (name, at) in SEGMENTS {
            regs.insert(format!("{name}_base"), e.u64(&b, at)?);
            regs.insert(format!("{name}_limit"), u64::from(e.u32(&b, at + 8)?));
            regs.insert(format!("{name}_attr"), u64::from(e.u32(&b, at + 12)?));
            regs.insert(name.to_string(), u64::from(e.u16(&b, at + 16)?));
        }
        for (name, at) in CR_AT {
            regs.insert(name.to_string(), e.u64(&b, at)?);
        }
        for i in 0..8 {
            regs.insert(format!("dr{i}"), e.u64(&b, DR_AT + i * 8)?);
        }
        for (name, at) in XDTR {
            regs.insert(format!("{name}_base"), e.u64(&b, at)?);
            regs.insert(format!("{name}_limit"), u64::from(e.u32(&b, at + 8)?));
        }
        for (name, at) in MSRS {
            if at < CPU_PREFIX || tsc_aux {
                regs.insert(name.to_string(), e.u64(&b, at)?);
            }
        }
        Ok(VboxCpu { index, regs })
    }

    fn reg(&self, name: &str) -> u64 {
        self.regs.get(name).copied().unwrap_or(0)
    }

    /// As CPU state: the recorded CR0, CR3, CR4 and EFER.
    pub fn to_cpu_state(&self, machine: u16) -> CpuState {
        let mut regs = self.regs.clone();
        for k in ["cr0", "cr3", "cr4", "efer"] {
            regs.remove(k);
        }
        CpuState {
            index: self.index,
            arch: if machine == EM_X86_64 {
                "x86_64"
            } else {
                "x86"
            },
            cr0: self.reg("cr0"),
            cr3: self.reg("cr3"),
            cr4: self.reg("cr4"),
            efer: self.reg("efer"),
            regs,
        }
    }

    /// For `describe()`.
    pub fn to_json(&self) -> Value {
        let regs: serde_json::Map<String, Value> = self
            .regs
            .iter()
            .map(|(k, v)| (k.clone(), json!(hex(*v))))
            .collect();
        json!({"index": self.index, "registers": regs})
    }
}

/// What a core's VirtualBox notes say.
#[derive(Debug, Clone, Default)]
pub struct VboxNotes {
    /// The descriptor, when the core has one.
    pub descriptor: Option<VboxDescriptor>,
    /// The decoded vCPUs, in note order.
    pub cpus: Vec<VboxCpu>,
    /// Notes that do not decode.
    pub findings: Vec<Finding>,
}

impl VboxNotes {
    /// Reads the `VBCORE` and `VBCPU` notes among `notes`.
    pub fn interpret(notes: &[Note], e: Endian) -> Self {
        let mut out = VboxNotes::default();
        let bad =
            |n: &Note, why: String| Finding::warning(crate::rule::VBOX_NOTE, why).at(n.desc_offset);
        for n in notes
            .iter()
            .filter(|n| n.name == VBCORE_NAME && n.n_type == NT_VBOXCORE)
        {
            let b = Bytes::new(&n.desc, n.desc_offset);
            let field = |i: usize| e.u32(&b, i * 4);
            let d = (|| {
                Ok::<_, vmsnap_core::Error>(VboxDescriptor {
                    magic: field(0)?,
                    fmt_version: field(1)?,
                    cb_self: field(2)?,
                    vbox_version: field(3)?,
                    vbox_revision: field(4)?,
                    cpus: field(5)?,
                })
            })();
            match d {
                Ok(d) if d.magic == DBGFCORE_MAGIC => {
                    if out.descriptor.is_none() {
                        out.descriptor = Some(d);
                    }
                }
                Ok(d) => out.findings.push(bad(
                    n,
                    format!("VBCORE note: magic {:#x}, not {DBGFCORE_MAGIC:#x}", d.magic),
                )),
                Err(err) => out.findings.push(bad(n, format!("VBCORE note: {err}"))),
            }
        }
        let Some(d) = out.descriptor else {
            return out;
        };
        let known = (FMT_CPU_FIRST..=FMT_CPU_LAST).contains(&d.fmt_version);
        let mut index = 0u32;
        for n in notes
            .iter()
            .filter(|n| n.name == VBCPU_NAME && n.n_type == NT_VBOXCPU)
        {
            if !known {
                out.findings.push(bad(
                    n,
                    format!(
                        "VBCPU note of format version {:#x}: only DBGFCORECPU (versions {FMT_CPU_FIRST:#x} \
                         to {FMT_CPU_LAST:#x}) is decoded; no CPU state from it",
                        d.fmt_version
                    ),
                ));
                continue;
            }
            match VboxCpu::parse(index, n, e, d.fmt_version >= FMT_TSC_AUX) {
                Ok(c) => out.cpus.push(c),
                Err(err) => out
                    .findings
                    .push(bad(n, format!("VBCPU note {index}: {err}"))),
            }
            index = index.saturating_add(1);
        }
        if known && out.cpus.len() != d.cpus as usize {
            out.findings.push(Finding::warning(
                crate::rule::VBOX_NOTE,
                format!(
                    "the VBCORE descriptor counts {} vCPUs, {} VBCPU notes decode",
                    d.cpus,
                    out.cpus.len()
                ),
            ));
        }
        out
    }
}
