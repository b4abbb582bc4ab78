//! Interpreting the notes QEMU and the kernel write: QEMU's per-vCPU `QEMUCPUState`,
//! `CORE`/`NT_PRSTATUS`, and `VMCOREINFO`.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vmsnap_core::hex::hex;
use vmsnap_core::{Bytes, CpuState, Finding, Result};

use crate::header::Endian;
use crate::note::Note;
use crate::raw::*;

/// The segment registers in `QEMUCPUState`, in order.
const SEGMENTS: [&str; 10] = [
    "cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt",
];
/// The general registers in `QEMUCPUState`, in order.
const GPRS: [&str; 18] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip", "rflags",
];
/// `x86_64_user_regs_struct` in the x86-64 prstatus, in order.
const PR64_REGS: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

/// CR0.PG.
const CR0_PG: u64 = 1 << 31;
/// CR4.PAE.
const CR4_PAE: u64 = 1 << 5;
/// EFER.LME | EFER.LMA.
const EFER_LME_LMA: u64 = (1 << 8) | (1 << 10);
/// EFER.NXE.
const EFER_NXE: u64 = 1 << 11;
/// Segment descriptor flags: L (64-bit code segment), as QEMU keeps them.
const DESC_L: u32 = 1 << 21;

/// One vCPU's `QEMUCPUState` (QEMU target/i386/arch_dump.c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCpu {
    /// Ordinal of the note (vCPU index).
    pub index: u32,
    /// `version` field (1).
    pub version: u32,
    /// `size` field (440 with `kernel_gs_base`).
    pub size: u32,
    /// General registers, rip, rflags.
    pub gprs: [u64; 18],
    /// `(selector, limit, flags, base)` of cs … idt.
    pub segments: [(u32, u32, u32, u64); 10],
    /// CR0..CR4.
    pub cr: [u64; 5],
    /// `kernel_gs_base`, when the note is large enough to hold it.
    pub kernel_gs_base: Option<u64>,
}

impl QemuCpu {
    /// Parses a `QEMU` note's descriptor.
    pub fn parse(desc: &[u8], base: u64, e: Endian, index: u32) -> Result<Self> {
        let b = Bytes::new(desc, base);
        let version = e.u32(&b, 0)?;
        let size = e.u32(&b, 4)?;
        // Fails (truncated) when the descriptor is shorter than the fixed part.
        b.slice(0, QEMU_CPUSTATE_MIN)?;
        let mut gprs = [0u64; 18];
        for (i, r) in gprs.iter_mut().enumerate() {
            *r = e.u64(&b, 8 + i * 8)?;
        }
        let mut segments = [(0u32, 0u32, 0u32, 0u64); 10];
        for (i, s) in segments.iter_mut().enumerate() {
            let at = 152 + i * 24;
            *s = (
                e.u32(&b, at)?,
                e.u32(&b, at + 4)?,
                e.u32(&b, at + 8)?,
                e.u64(&b, at + 16)?,
            );
        }
        let mut cr = [0u64; 5];
        for (i, c) in cr.iter_mut().enumerate() {
            *c = e.u64(&b, 392 + i * 8)?;
        }
        let kernel_gs_base = if size as usize >= QEMU_CPUSTATE_GS && desc.len() >= QEMU_CPUSTATE_GS
        {
            Some(e.u64(&b, 432)?)
        } else {
            None
        };
        Ok(QemuCpu {
            index,
            version,
            size,
            gprs,
            segments,
            cr,
            kernel_gs_base,
        })
    }

    /// The note QEMU would write for a recorded vCPU. Registers the recording does not
    /// hold are 0, as QEMU's layout has no way to say "unknown"; segment and table
    /// registers are looked up under the names every reader uses (`gdt_base` or
    /// `gdtr_base` …). `kernel_gs_base` is kept when recorded (the note is then 440 bytes,
    /// else 432).
    pub fn from_cpu_state(c: &CpuState) -> Self {
        let mut gprs = [0u64; 18];
        for (r, name) in gprs.iter_mut().zip(GPRS) {
            *r = reg(c, name);
        }
        let mut segments = [(0u32, 0u32, 0u32, 0u64); 10];
        for (s, name) in segments.iter_mut().zip(SEGMENTS) {
            let field = |suffix: &str| -> u64 {
                aliases(name)
                    .iter()
                    .find_map(|a| c.regs.get(&format!("{a}{suffix}")).copied())
                    .unwrap_or(0)
            };
            // Selectors, limits and flags are 32-bit fields in the note.
            *s = (
                field("") as u32,
                field("_limit") as u32,
                field("_flags") as u32,
                field("_base"),
            );
        }
        let kernel_gs_base = c.regs.get("kernel_gs_base").copied();
        QemuCpu {
            index: c.index,
            version: QEMU_CPUSTATE_VERSION,
            size: if kernel_gs_base.is_some() {
                QEMU_CPUSTATE_GS as u32
            } else {
                QEMU_CPUSTATE_MIN as u32
            },
            gprs,
            segments,
            cr: [c.cr0, reg(c, "cr1"), reg(c, "cr2"), c.cr3, c.cr4],
            kernel_gs_base,
        }
    }

    /// The note's descriptor, little-endian, `size` bytes (QEMU target/i386/arch_dump.c).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(QEMU_CPUSTATE_GS);
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(&self.size.to_le_bytes());
        for r in self.gprs {
            v.extend_from_slice(&r.to_le_bytes());
        }
        for (sel, limit, flags, base) in self.segments {
            for x in [sel, limit, flags, 0] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(&base.to_le_bytes());
        }
        for c in self.cr {
            v.extend_from_slice(&c.to_le_bytes());
        }
        if let Some(k) = self.kernel_gs_base {
            v.extend_from_slice(&k.to_le_bytes());
        }
        v
    }

    /// EFER is not in QEMU's note. Long mode is inferred when paging with PAE is on and
    /// either the core is an x86-64 one (QEMU writes `EM_X86_64` exactly when the first
    /// CPU has EFER.LMA) or CS is a 64-bit code segment. NXE is inferred on with PAE
    /// paging: a guest sets an entry's XD bit only when NXE is on (otherwise the entry
    /// would fault), so honouring the bit reports no-execute pages as the guest sees
    /// them and changes nothing for a guest that never sets it.
    pub fn inferred_efer(&self, machine: u16) -> u64 {
        let paging = self.cr[0] & CR0_PG != 0 && self.cr[4] & CR4_PAE != 0;
        let cs_long = self.segments[0].2 & DESC_L != 0;
        match (paging, machine == EM_X86_64 || cs_long) {
            (true, true) => EFER_LME_LMA | EFER_NXE,
            (true, false) => EFER_NXE,
            (false, _) => 0,
        }
    }

    /// As the core's CPU-state type.
    pub fn to_cpu_state(&self, machine: u16) -> CpuState {
        let mut regs = BTreeMap::new();
        for (name, v) in GPRS.iter().zip(self.gprs) {
            regs.insert((*name).to_string(), v);
        }
        for (name, (sel, limit, flags, base)) in SEGMENTS.iter().zip(self.segments) {
            regs.insert((*name).to_string(), u64::from(sel));
            regs.insert(format!("{name}_base"), base);
            regs.insert(format!("{name}_limit"), u64::from(limit));
            regs.insert(format!("{name}_flags"), u64::from(flags));
        }
        regs.insert("cr2".to_string(), self.cr[2]);
        if let Some(k) = self.kernel_gs_base {
            regs.insert("kernel_gs_base".to_string(), k);
        }
        // Marks that `efer` was inferred, not recorded.
        regs.insert("efer_inferred".to_string(), 1);
        CpuState {
            index: self.index,
            arch: if machine == EM_X86_64 {
                "x86_64"
            } else {
                "x86"
            },
            cr0: self.cr[0],
            cr3: self.cr[3],
            cr4: self.cr[4],
            efer: self.inferred_efer(machine),
            regs,
        }
    }

    /// For `describe()`.
    pub fn to_json(&self, machine: u16) -> Value {
        let mut segs = serde_json::Map::new();
        for (name, (sel, limit, flags, base)) in SEGMENTS.iter().zip(self.segments) {
            segs.insert(
                (*name).to_string(),
                json!({"selector": hex(u64::from(sel)), "limit": hex(u64::from(limit)),
                       "flags": hex(u64::from(flags)), "base": hex(base)}),
            );
        }
        let mut gprs = serde_json::Map::new();
        for (name, v) in GPRS.iter().zip(self.gprs) {
            gprs.insert((*name).to_string(), json!(hex(v)));
        }
        json!({
            "index": self.index,
            "version": self.version,
            "size": self.size,
            "registers": gprs,
            "segments": segs,
            "cr0": hex(self.cr[0]), "cr1": hex(self.cr[1]), "cr2": hex(self.cr[2]),
            "cr3": hex(self.cr[3]), "cr4": hex(self.cr[4]),
            "kernel_gs_base": self.kernel_gs_base.map(hex),
            "efer": Value::Null,
            "efer_note": "EFER is not recorded in QEMU's note",
            "efer_inferred": hex(self.inferred_efer(machine)),
        })
    }
}

/// A `CORE`/`NT_PRSTATUS` note: the pid (QEMU: vCPU id) and registers, when the layout
/// is a known x86 one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prstatus {
    /// `pr_pid`.
    pub pid: u32,
    /// `i386`, `x86_64`, or `unknown` (registers not decoded).
    pub layout: &'static str,
    /// Registers by name.
    pub regs: BTreeMap<String, u64>,
}

impl Prstatus {
    /// Parses a prstatus descriptor; the layout is chosen by its size (QEMU writes the
    /// i386 one in an ELF64 file when the guest is not in long mode).
    pub fn parse(desc: &[u8], base: u64, e: Endian, machine: u16) -> Result<Self> {
        let b = Bytes::new(desc, base);
        let x86 = machine == EM_386 || machine == EM_X86_64;
        let mut regs = BTreeMap::new();
        if x86 && desc.len() == PRSTATUS_X86_64_SIZE {
            for (i, name) in PR64_REGS.iter().enumerate() {
                regs.insert((*name).to_string(), e.u64(&b, 112 + i * 8)?);
            }
            return Ok(Prstatus {
                pid: e.u32(&b, 32)?,
                layout: "x86_64",
                regs,
            });
        }
        if x86 && desc.len() == PRSTATUS_I386_SIZE {
            let r = 72;
            for (i, name) in ["ebx", "ecx", "edx", "esi", "edi", "ebp", "eax"]
                .iter()
                .enumerate()
            {
                regs.insert((*name).to_string(), u64::from(e.u32(&b, r + i * 4)?));
            }
            for (name, at) in [
                ("ds", 28),
                ("es", 32),
                ("fs", 36),
                ("gs", 40),
                ("cs", 52),
                ("ss", 64),
            ] {
                regs.insert(name.to_string(), u64::from(e.u16(&b, r + at)?));
            }
            for (name, at) in [("orig_eax", 44), ("eip", 48), ("eflags", 56), ("esp", 60)] {
                regs.insert(name.to_string(), u64::from(e.u32(&b, r + at)?));
            }
            return Ok(Prstatus {
                pid: e.u32(&b, 24)?,
                layout: "i386",
                regs,
            });
        }
        // Unknown layout: the pid sits at 24 (32-bit) or 32 (64-bit) in Linux's
        // elf_prstatus; we do not guess.
        Ok(Prstatus {
            pid: 0,
            layout: "unknown",
            regs,
        })
    }
}

impl Prstatus {
    /// The `NT_PRSTATUS` descriptor QEMU writes for a vCPU: the x86-64 layout (336 bytes)
    /// when `long`, else the i386 one (144 bytes, registers truncated to 32 bits), with
    /// `pid` (QEMU: the vCPU index + 1). `orig_rax` is 0, as QEMU writes it; registers the
    /// recording does not hold are 0.
    pub fn to_bytes(c: &CpuState, pid: u32, long: bool) -> Vec<u8> {
        if long {
            let mut v = vec![0u8; PRSTATUS_X86_64_SIZE];
            put(&mut v, 32, &pid.to_le_bytes());
            for (i, name) in PR64_REGS.iter().enumerate() {
                let value = if *name == "orig_rax" { 0 } else { reg(c, name) };
                put(&mut v, 112 + i * 8, &value.to_le_bytes());
            }
            return v;
        }
        let mut v = vec![0u8; PRSTATUS_I386_SIZE];
        put(&mut v, 24, &pid.to_le_bytes());
        let r = 72;
        for (i, name) in ["rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rax"]
            .iter()
            .enumerate()
        {
            put(&mut v, r + i * 4, &(reg(c, name) as u32).to_le_bytes());
        }
        for (name, at) in [
            ("ds", 28),
            ("es", 32),
            ("fs", 36),
            ("gs", 40),
            ("cs", 52),
            ("ss", 64),
        ] {
            put(&mut v, r + at, &(reg(c, name) as u16).to_le_bytes());
        }
        for (name, at) in [("rip", 48), ("rflags", 56), ("rsp", 60)] {
            put(&mut v, r + at, &(reg(c, name) as u32).to_le_bytes());
        }
        v
    }
}

/// Copies `bytes` into `v` at `at`; the layouts above place every field inside `v`.
fn put(v: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = v.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

/// The other names a register is recorded under by some format.
fn aliases(name: &str) -> &'static [&'static str] {
    match name {
        "rflags" | "eflags" => &["rflags", "eflags"],
        "ldt" => &["ldt", "ldtr"],
        "gdt" => &["gdt", "gdtr"],
        "idt" => &["idt", "idtr"],
        "cs" => &["cs"],
        "ds" => &["ds"],
        "es" => &["es"],
        "fs" => &["fs"],
        "gs" => &["gs"],
        "ss" => &["ss"],
        "tr" => &["tr"],
        _ => &[],
    }
}

/// A register of a recorded vCPU by name or alias; 0 when not recorded.
fn reg(c: &CpuState, name: &str) -> u64 {
    match name {
        "cr0" => return c.cr0,
        "cr3" => return c.cr3,
        "cr4" => return c.cr4,
        _ => {}
    }
    let names = aliases(name);
    if names.is_empty() {
        return c.regs.get(name).copied().unwrap_or(0);
    }
    names
        .iter()
        .find_map(|a| c.regs.get(*a).copied())
        .unwrap_or(0)
}

/// `VMCOREINFO` text as `key=value` lines (empty lines dropped).
pub fn vmcoreinfo_lines(desc: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(desc)
        .trim_end_matches('\0')
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// What the notes of a core say about the machine: QEMU's per-vCPU states, the
/// `CORE`/`NT_PRSTATUS` notes, `VMCOREINFO`, and a finding per CPU note not decoded. ELF
/// cores and kdump-compressed dumps (whose sub header points to the same notes) share it.
#[derive(Debug, Clone, Default)]
pub struct CoreNotes {
    /// QEMU's `QEMUCPUState` notes, in file order.
    pub qemu_cpus: Vec<QemuCpu>,
    /// The `CORE`/`NT_PRSTATUS` notes, in file order.
    pub prstatus: Vec<Prstatus>,
    /// `VMCOREINFO` as `key=value` lines.
    pub vmcoreinfo: Vec<String>,
    /// Notes that were not decoded.
    pub findings: Vec<Finding>,
}

impl CoreNotes {
    /// Interprets `notes` of a core for machine `machine` (`e_machine`) in byte order `e`.
    pub fn interpret(notes: &[Note], e: Endian, machine: u16) -> Self {
        let mut out = CoreNotes::default();
        let x86 = machine == EM_386 || machine == EM_X86_64;
        for n in notes {
            match (n.name.as_str(), n.n_type) {
                ("QEMU", 0) if x86 => {
                    let index = out.qemu_cpus.len() as u32;
                    match QemuCpu::parse(&n.desc, n.desc_offset, e, index) {
                        Ok(c) => out.qemu_cpus.push(c),
                        Err(err) => out.findings.push(
                            Finding::warning(
                                crate::rule::QEMU_NOTE,
                                format!("QEMU CPU note not decoded: {err}"),
                            )
                            .at(n.desc_offset),
                        ),
                    }
                }
                ("CORE", NT_PRSTATUS) => {
                    match Prstatus::parse(&n.desc, n.desc_offset, e, machine) {
                        Ok(p) => out.prstatus.push(p),
                        Err(err) => out.findings.push(
                            Finding::warning(
                                crate::rule::PRSTATUS_NOTE,
                                format!("prstatus note not decoded: {err}"),
                            )
                            .at(n.desc_offset),
                        ),
                    }
                }
                ("VMCOREINFO", 0) => out.vmcoreinfo.extend(vmcoreinfo_lines(&n.desc)),
                _ => {}
            }
        }
        out
    }
}
