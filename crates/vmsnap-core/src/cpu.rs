//! CPU state a memory snapshot recorded, as offered to translation layers.

use std::collections::BTreeMap;

use serde::Serialize;

/// One virtual CPU's registers. The paging registers are what the x86 translation layer
/// needs; the rest is shown to analysts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
