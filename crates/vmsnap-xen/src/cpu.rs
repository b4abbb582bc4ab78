//! The per-vCPU `vcpu_guest_context_t` records of `.xen_prstatus`.
//!
//! HVM domains record the guest's own control registers (`ctrlreg[3]` is the guest's
//! CR3, a guest-physical address), so their vCPUs become [`CpuState`] and the x86 layer
//! stacks on the dump. PV domains record `ctrlreg[3]` as a *machine* address and their
//! page tables hold machine frames, which the guest-physical (pfn) space of the dump does
//! not walk: their registers are described but offer no CPU state (no wrong page walks).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vmsnap_core::hex::hex;
use vmsnap_core::{Bytes, CpuState, Error, Layer, LayerExt, Result, ResultExt};
use vmsnap_elf::{Endian, EM_386, EM_X86_64};

use crate::dump::Dump;
use crate::raw::*;

/// CR0.PG.
const CR0_PG: u64 = 1 << 31;
/// CR4.PAE.
const CR4_PAE: u64 = 1 << 5;
/// EFER.LME | EFER.LMA.
const EFER_LME_LMA: u64 = (1 << 8) | (1 << 10);
/// EFER.NXE.
const EFER_NXE: u64 = 1 << 11;

/// One vCPU's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuContext {
    /// Position in `.xen_prstatus`.
    pub index: u32,
    /// `flags` (`VGCF_*`).
    pub flags: u64,
    /// `ctrlreg[0..8]`.
    pub ctrlreg: [u64; 8],
    /// The general and segment registers of `user_regs`, and the segment bases.
    pub regs: BTreeMap<String, u64>,
}

/// The `vcpu_guest_context_t` layout of a dump's guests: by `e_machine` (the guest's
/// width for PV domains, the dumping host's for HVM ones).
pub fn layout(machine: u16) -> Option<&'static ContextLayout> {
    match machine {
        EM_X86_64 => Some(&CONTEXT_X86_64),
        EM_386 => Some(&CONTEXT_X86_32),
        _ => None,
    }
}

fn word(e: Endian, b: &Bytes<'_>, at: usize, size: usize) -> Result<u64> {
    Ok(match size {
        8 => e.u64(b, at)?,
        4 => u64::from(e.u32(b, at)?),
        _ => u64::from(e.u16(b, at)?),
    })
}

/// Reads the contexts of `.xen_prstatus` (none when the section is absent or the
/// architecture's layout is unknown).
pub fn read_contexts(lower: &dyn Layer, dump: &Dump) -> Result<Vec<VcpuContext>> {
    let (Some(sec), Some(l)) = (&dump.prstatus, layout(dump.elf.machine)) else {
        return Ok(Vec::new());
    };
    let entsize = if sec.entsize == 0 {
        l.size
    } else {
        sec.entsize
    };
    if entsize < l.size {
        return Err(Error::malformed(
            sec.at,
            format!(
                ".xen_prstatus entries of {entsize} bytes are smaller than the {}-byte \
                 vcpu_guest_context_t",
                l.size
            ),
        ));
    }
    let n = dump.header.nr_vcpus;
    // Saturates on absurd entry sizes, which the section size then refuses.
    let need = n.saturating_mul(entsize);
    if need > sec.size {
        return Err(Error::truncated(
            sec.at,
            format!(
                ".xen_prstatus holds {:#x} bytes, {n} vCPUs of {entsize} bytes need {need:#x}",
                sec.size
            ),
        ));
    }
    let range = sec.data_range(lower.len())?;
    let data = lower
        .read_vec(
            range.start,
            need,
            MAX_PRSTATUS_BYTES,
            "the .xen_prstatus section",
        )
        .during("reading .xen_prstatus")?;
    let all = Bytes::new(&data, range.start);
    let e = dump.elf.endian;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        // i * entsize < need <= MAX_PRSTATUS_BYTES.
        let b = all.sub((i * entsize) as usize, l.size as usize)?;
        let mut regs = BTreeMap::new();
        for &(name, at, size) in l.regs {
            regs.insert(name.to_string(), word(e, &b, l.user_regs + at, size)?);
        }
        for &(name, at) in l.bases {
            regs.insert(name.to_string(), e.u64(&b, at)?);
        }
        let mut ctrlreg = [0u64; 8];
        for (k, c) in ctrlreg.iter_mut().enumerate() {
            *c = word(e, &b, l.ctrlreg + k * l.word, l.word)?;
        }
        out.push(VcpuContext {
            index: i as u32,
            flags: word(e, &b, l.flags, l.word)?,
            ctrlreg,
            regs,
        });
    }
    Ok(out)
}

impl VcpuContext {
    /// Whether a register or segment base lies above 4 GiB: only a vCPU in long mode has
    /// such values (a kernel RIP, Linux's and Windows' kernel GS base).
    fn has_64_bit_values(&self) -> bool {
        ["rip", "rsp", "fs_base", "gs_base_kernel", "gs_base_user"]
            .iter()
            .any(|r| self.regs.get(*r).is_some_and(|&v| v > u64::from(u32::MAX)))
    }

    /// EFER, which the context does not record: LMA when PAE paging is on and a register
    /// or segment base lies above 4 GiB; NXE with PAE paging (a guest sets XD bits only
    /// with NXE on, so honouring them changes nothing for guests that never do).
    pub fn inferred_efer(&self) -> u64 {
        let pae_paging = self.ctrlreg[0] & CR0_PG != 0 && self.ctrlreg[4] & CR4_PAE != 0;
        match (pae_paging, self.has_64_bit_values()) {
            (true, true) => EFER_LME_LMA | EFER_NXE,
            (true, false) => EFER_NXE,
            (false, _) => 0,
        }
    }

    /// As CPU state (HVM domains only, see the module docs).
    pub fn to_cpu_state(&self, machine: u16) -> CpuState {
        let mut regs = self.regs.clone();
        regs.insert("cr2".to_string(), self.ctrlreg[2]);
        regs.insert("efer_inferred".to_string(), 1);
        CpuState {
            index: self.index,
            arch: if machine == EM_X86_64 {
                "x86_64"
            } else {
                "x86"
            },
            cr0: self.ctrlreg[0],
            cr3: self.ctrlreg[3],
            cr4: self.ctrlreg[4],
            efer: self.inferred_efer(),
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
        json!({
            "index": self.index,
            "flags": hex(self.flags),
            "online": self.flags & VGCF_ONLINE != 0,
            "ctrlreg": self.ctrlreg.iter().map(|c| hex(*c)).collect::<Vec<_>>(),
            "registers": regs,
        })
    }
}
