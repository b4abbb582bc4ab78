//! CPU state a memory snapshot recorded, as offered to translation layers.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::hex::hex;

/// One virtual CPU's registers. The paging registers are what the x86 translation layer
/// needs; the rest is shown to analysts.
///
/// Serialized with every register as a `"0x…"` string (JSON numbers lose 64-bit values
/// above 2^53 in jq and JavaScript), the same for every format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuState {
    /// vCPU index as the snapshot numbers it.
    pub index: u32,
    /// Architecture, e.g. `x86_64`.
    pub arch: &'static str,
    /// CR0.
    pub cr0: u64,
    /// CR3 (page-table root).
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// Every other register by name (rip, rsp, rflags, fs_base …).
    pub regs: BTreeMap<String, u64>,
}

/// IA32_EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// CR4.PAE.
const CR4_PAE: u64 = 1 << 5;

impl CpuState {
    /// EFER as recorded or, when the format records none (VMware checkpoints have no tag
    /// for it, so it reads 0), with LMA taken as set when PAE is on and RIP lies above
    /// 4 GiB: only a vCPU in long mode can have such a RIP.
    pub fn effective_efer(&self) -> u64 {
        let rip_high = self
            .regs
            .get("rip")
            .is_some_and(|&rip| rip > u64::from(u32::MAX));
        if self.efer == 0 && self.cr4 & CR4_PAE != 0 && rip_high {
            EFER_LMA
        } else {
            self.efer
        }
    }

    /// Whether the vCPU is in long mode (IA-32e), by [`CpuState::effective_efer`].
    pub fn long_mode(&self) -> bool {
        self.effective_efer() & EFER_LMA != 0
    }
}

/// The register map, serialized as hex strings.
struct HexRegs<'a>(&'a BTreeMap<String, u64>);

impl Serialize for HexRegs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, &hex(*v))?;
        }
        m.end()
    }
}

impl Serialize for CpuState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("CpuState", 7)?;
        st.serialize_field("index", &self.index)?;
        st.serialize_field("arch", self.arch)?;
        st.serialize_field("cr0", &hex(self.cr0))?;
        st.serialize_field("cr3", &hex(self.cr3))?;
        st.serialize_field("cr4", &hex(self.cr4))?;
        st.serialize_field("efer", &hex(self.efer))?;
        st.serialize_field("regs", &HexRegs(&self.regs))?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_serialize_as_hex_strings() {
        let mut regs = BTreeMap::new();
        regs.insert("gdtr_base".to_string(), 0xffff_f802_1234_5000);
        let c = CpuState {
            index: 1,
            arch: "x86_64",
            cr3: 0x1ab000,
            regs,
            ..CpuState::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["index"], 1);
        assert_eq!(v["cr3"], "0x1ab000");
        assert_eq!(v["efer"], "0x0");
        assert_eq!(v["regs"]["gdtr_base"], "0xfffff80212345000");
    }
}
