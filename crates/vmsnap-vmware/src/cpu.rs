//! CPU state from the `cpu` group, per vCPU (first index): general registers, `rip`,
//! `eflags`/`EFLAGS`, control registers (`CR64[cpu][n]` or the older `CR[cpu][n]`, or
//! either as one block of nine), `IDTR`/`GDTR`, segment selectors `S[cpu][seg]` and bases
//! `S.base64[cpu][seg]`. Names and block sizes as crash-utility reads them.

use std::collections::BTreeMap;

use vmsnap_core::{CpuState, Finding};

use crate::checkpoint::Checkpoint;
use crate::raw::{GROUP_CPU, MAX_VCPUS};
use crate::tag::Tag;

/// General registers in the order crash-utility reads the 128-byte `gpregs` block into
/// its `vmssregs64` (rbp before rsp; no real file was available to confirm it).
pub const GPREGS: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rbp", "rsp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];
/// Segment registers by their index in `S[cpu][seg]`.
pub const SEGMENTS: [&str; 8] = ["es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr"];

const GPREGS_BLOCK: u64 = 128;
const CR64_BLOCK: u64 = 72;
const CR32_BLOCK: u64 = 36;
const DTR_BLOCK: u64 = 10;

fn u64_at(b: &[u8], at: usize, width: usize) -> Option<u64> {
    let src = b.get(at..at.checked_add(width)?)?;
    let mut a = [0u8; 8];
    a.get_mut(..width)?.copy_from_slice(src);
    Some(u64::from_le_bytes(a))
}

/// Per-vCPU register values by name, before they become [`CpuState`]s.
#[derive(Debug, Default)]
struct Regs(BTreeMap<String, u64>);

impl Regs {
    fn set(&mut self, name: &str, v: u64) {
        self.0.insert(name.to_string(), v);
    }
    fn set_if_absent(&mut self, name: &str, v: u64) {
        self.0.entry(name.to_string()).or_insert(v);
    }
}

/// Reads every vCPU's registers. The vCPU count is `cpu:numVCPUs` (or `numVCPUs`), capped
/// at one more than the highest vCPU index of a register tag (at most [`MAX_VCPUS`]).
pub fn cpu_states(ck: &Checkpoint, findings: &mut Vec<Finding>) -> Vec<CpuState> {
    let tags = ck.group_tags(GROUP_CPU);
    if tags.is_empty() {
        return Vec::new();
    }
    let declared = tags
        .iter()
        .find(|t| (t.name == "cpu:numVCPUs" || t.name == "numVCPUs") && t.indices.is_empty())
        .and_then(Tag::number);
    let seen = tags
        .iter()
        .filter(|t| is_register_tag(&t.name))
        .filter_map(|t| t.indices.first())
        .map(|&i| u64::from(i) + 1)
        .max()
        .unwrap_or(0);
    // vCPUs without a single register tag carry no state: keep only those seen.
    let mut n = match declared {
        Some(d) if d > seen => {
            findings.push(Finding::info(
                crate::rule::CPU_STATE,
                format!("{d} vCPUs declared, registers found for {seen}"),
            ));
            seen
        }
        Some(d) => d,
        None => seen,
    };
    if n > MAX_VCPUS {
        findings.push(Finding::warning(
            crate::rule::CPU_STATE,
            format!("{n} vCPUs declared; only the first {MAX_VCPUS} are read"),
        ));
        n = MAX_VCPUS;
    }
    let mut regs: Vec<Regs> = (0..n).map(|_| Regs::default()).collect();
    // Scalar CR64 wins over CR; remember which family set each register.
    let mut cr_from_64: Vec<[bool; 9]> = vec![[false; 9]; n as usize];
    for t in tags {
        let Some((&cpu, rest)) = t.indices.split_first() else {
            continue;
        };
        let Some(r) = regs.get_mut(cpu as usize) else {
            if is_register_tag(&t.name) {
                findings.push(
                    Finding::warning(
                        crate::rule::CPU_STATE,
                        format!("{} names vCPU {cpu}, beyond the {n} vCPUs", t.full_name()),
                    )
                    .at(t.offset),
                );
            }
            continue;
        };
        let from64 = cr_from_64.get_mut(cpu as usize);
        let name = t.name.as_str();
        // A block form's bytes when it has one of the sizes crash-utility expects.
        let block = |want: &[u64]| -> Option<Vec<u8>> {
            let b = t.block()?;
            if b.compressed || !want.contains(&b.nbytes) {
                return None;
            }
            ck.value_bytes(t, b.nbytes).ok()
        };
        match (name, rest) {
            (g, []) if GPREGS.contains(&g) => {
                if let Some(v) = t.number() {
                    r.set(g, v);
                }
            }
            ("rip", []) => {
                if let Some(v) = t.number() {
                    r.set("rip", v);
                }
            }
            ("eflags" | "EFLAGS" | "rflags" | "RFLAGS", []) => {
                if let Some(v) = t.number() {
                    r.set("rflags", v);
                }
            }
            ("gpregs", []) => match block(&[GPREGS_BLOCK]) {
                Some(b) => {
                    for (i, g) in GPREGS.iter().enumerate() {
                        if let Some(v) = u64_at(&b, i * 8, 8) {
                            r.set_if_absent(g, v);
                        }
                    }
                }
                None => findings.push(unreadable(t)),
            },
            ("CR64" | "CR", [k]) if *k < 9 => {
                if let Some(v) = t.number() {
                    let is64 = name == "CR64";
                    let slot = from64.and_then(|f| f.get_mut(*k as usize));
                    let key = format!("cr{k}");
                    match slot {
                        Some(s) if is64 || !*s => {
                            r.set(&key, v);
                            *s |= is64;
                        }
                        _ => {}
                    }
                }
            }
            ("CR64" | "CR", []) => match block(&[CR64_BLOCK, CR32_BLOCK]) {
                Some(b) => {
                    let width = if b.len() as u64 == CR64_BLOCK { 8 } else { 4 };
                    let is64 = name == "CR64";
                    for k in 0..9usize {
                        let Some(v) = u64_at(&b, k * width, width) else {
                            continue;
                        };
                        let key = format!("cr{k}");
                        if let Some(f) = cr_from_64.get_mut(cpu as usize).and_then(|f| f.get_mut(k))
                        {
                            if is64 || !*f {
                                r.set(&key, v);
                                *f |= is64;
                            }
                        }
                    }
                }
                None => findings.push(unreadable(t)),
            },
            (dtr @ ("IDTR" | "GDTR"), [k]) => {
                let base = format!("{}_base", dtr.to_ascii_lowercase());
                if let Some(v) = t.number() {
                    match k {
                        0 => r.set(&format!("{}_limit", dtr.to_ascii_lowercase()), v),
                        1 => {
                            let hi = r.0.get(&base).copied().unwrap_or(0) & !0xFFFF_FFFF;
                            r.set(&base, hi | (v & 0xFFFF_FFFF));
                        }
                        2 => {
                            let lo = r.0.get(&base).copied().unwrap_or(0) & 0xFFFF_FFFF;
                            r.set(&base, lo | (v << 32));
                        }
                        _ => {}
                    }
                }
            }
            (dtr @ ("IDTR" | "GDTR"), []) => match block(&[DTR_BLOCK]) {
                Some(b) => {
                    let lc = dtr.to_ascii_lowercase();
                    if let (Some(limit), Some(base)) = (u64_at(&b, 0, 2), u64_at(&b, 2, 8)) {
                        r.set(&format!("{lc}_limit"), limit);
                        r.set(&format!("{lc}_base"), base);
                    }
                }
                None => findings.push(unreadable(t)),
            },
            ("S", [seg]) => {
                if let (Some(s), Some(v)) = (SEGMENTS.get(*seg as usize), t.number()) {
                    r.set(s, v);
                }
            }
            ("S.base64", [seg]) => {
                if let (Some(s), Some(v)) = (SEGMENTS.get(*seg as usize), t.number()) {
                    r.set(&format!("{s}_base"), v);
                }
            }
            ("S.base", [seg]) => {
                if let (Some(s), Some(v)) = (SEGMENTS.get(*seg as usize), t.number()) {
                    r.set_if_absent(&format!("{s}_base"), v);
                }
            }
            _ => {}
        }
    }
    regs.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let get = |k: &str| r.0.get(k).copied().unwrap_or(0);
            CpuState {
                index: i as u32,
                arch: "x86_64",
                cr0: get("cr0"),
                cr3: get("cr3"),
                cr4: get("cr4"),
                efer: 0,
                regs: r.0.clone(),
            }
        })
        .collect()
}

fn unreadable(t: &Tag) -> Finding {
    Finding::warning(
        crate::rule::CPU_STATE,
        format!(
            "{} is a block of an unexpected size, compressed or unreadable; ignored",
            t.full_name()
        ),
    )
    .at(t.offset)
}

fn is_register_tag(name: &str) -> bool {
    GPREGS.contains(&name)
        || matches!(
            name,
            "rip"
                | "eflags"
                | "EFLAGS"
                | "rflags"
                | "RFLAGS"
                | "gpregs"
                | "CR64"
                | "CR"
                | "IDTR"
                | "GDTR"
                | "S"
                | "S.base64"
                | "S.base"
        )
}
