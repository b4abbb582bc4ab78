//! vmsnap-elf: ELF core dumps as guest-physical memory.
//!
//! * ELF32 and ELF64, either byte order, `ET_CORE` only; `PN_XNUM` program header counts.
//! * PT_LOAD segments are mapped by `p_paddr` through the core segment map (unsorted is
//!   fine, `p_filesz < p_memsz` reads the tail as zeros, conflicting overlaps are an
//!   error naming both segments). When `p_vaddr` is meaningful a `virtual` child maps
//!   guest-virtual addresses the same way (QEMU `dump-guest-memory -p`, kernel vmcores).
//! * Notes: QEMU's per-vCPU `QEMU` note (`QEMUCPUState`: registers, segments, CR0–CR4,
//!   kernel_gs_base) becomes [`vmsnap_core::CpuState`]; `CORE`/`NT_PRSTATUS` and
//!   `VMCOREINFO` (as `key=value` lines) are shown by `describe()`.
//! * kdump-compressed dumps (`KDUMP   `, flattened `makedumpfile`) are recognised and
//!   refused with an `Unsupported` error naming the compression.

pub mod cpu;
pub mod header;
pub mod kdump;
pub mod layer;
pub mod map;
pub mod note;
pub mod plugin;
pub mod raw;

pub use layer::{ElfCore, ElfVirtual, VirtualMapping, NAME};
pub use plugin::PLUGIN;

vmsnap_core::register_plugin!(PLUGIN);
