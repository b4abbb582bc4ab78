//! x86 CPU state from the vmdesc-described `cpu` sections.

use std::collections::BTreeMap;

use vmsnap_core::{CpuState, Layer, Result};

use crate::vmdesc::FieldAt;

const GPRS: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];
const SEGS: [&str; 6] = ["es", "cs", "ss", "ds", "fs", "gs"];

fn value(lower: &dyn Layer, f: &FieldAt) -> Result<Option<u64>> {
    Ok(match f.size {
        8 => {
            let mut b = [0u8; 8];
            lower.read_at(f.offset, &mut b)?;
            Some(u64::from_be_bytes(b))
        }
        4 => {
            let mut b = [0u8; 4];
            lower.read_at(f.offset, &mut b)?;
            Some(u64::from(u32::from_be_bytes(b)))
        }
        _ => None,
    })
}

/// Builds one [`CpuState`] per `cpu` section from its located fields.
pub fn cpu_states(lower: &dyn Layer, cpus: &BTreeMap<u32, Vec<FieldAt>>) -> Result<Vec<CpuState>> {
    let mut out = Vec::new();
    for (&index, fields) in cpus {
        let mut regs = BTreeMap::new();
        let mut st = CpuState {
            index,
            arch: "x86_64",
            ..CpuState::default()
        };
        for f in fields {
            let name = f.name.as_str();
            let reg: Option<String> = if let Some(i) = name
                .strip_prefix("env.regs[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse::<usize>().ok())
            {
                GPRS.get(i).map(|s| s.to_string())
            } else if let Some(rest) = name.strip_prefix("env.segs[") {
                // env.segs[1].base
                let mut it = rest.splitn(2, "].");
                let i = it.next().and_then(|s| s.parse::<usize>().ok());
                let what = it.next();
                match (i.and_then(|i| SEGS.get(i)), what) {
                    (Some(s), Some("base")) => Some(format!("{s}_base")),
                    (Some(s), Some("selector")) => Some(s.to_string()),
                    (Some(s), Some("limit")) => Some(format!("{s}_limit")),
                    _ => None,
                }
            } else {
                match name {
                    "env.eip" => Some("rip".into()),
                    "env.eflags" => Some("rflags".into()),
                    "env.cr[0]" => Some("cr0".into()),
                    "env.cr[2]" => Some("cr2".into()),
                    "env.cr[3]" => Some("cr3".into()),
                    "env.cr[4]" => Some("cr4".into()),
                    "env.efer" => Some("efer".into()),
                    "env.gdt.base" => Some("gdtr_base".into()),
                    "env.gdt.limit" => Some("gdtr_limit".into()),
                    "env.idt.base" => Some("idtr_base".into()),
                    "env.idt.limit" => Some("idtr_limit".into()),
                    "env.ldt.base" => Some("ldtr_base".into()),
                    "env.tr.base" => Some("tr_base".into()),
                    "env.kernelgsbase" => Some("kernel_gs_base".into()),
                    "env.xcr0" => Some("xcr0".into()),
                    "env.pat" => Some("pat".into()),
                    "env.star" => Some("star".into()),
                    "env.lstar" => Some("lstar".into()),
                    "env.sysenter_eip" => Some("sysenter_eip".into()),
                    "env.sysenter_esp" => Some("sysenter_esp".into()),
                    _ => None,
                }
            };
            let Some(reg) = reg else { continue };
            let Some(v) = value(lower, f)? else { continue };
            match reg.as_str() {
                "cr0" => st.cr0 = v,
                "cr3" => st.cr3 = v,
                "cr4" => st.cr4 = v,
                "efer" => st.efer = v,
                _ => {}
            }
            regs.insert(reg, v);
        }
        st.regs = regs;
        out.push(st);
    }
    Ok(out)
}
