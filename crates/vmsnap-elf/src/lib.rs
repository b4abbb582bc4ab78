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
//! * Writing: [`export::export`] lays out any guest-physical layer as an ELF64 core with
//!   QEMU's notes (what `vmsnap convert -O elf` writes).
//! * kdump-compressed dumps (`KDUMP   `, flattened `makedumpfile`) are recognised and
//!   left to the `kdump` plugin (vmsnap-kdump), which reuses this crate's note parsing.
//! * VirtualBox cores (`VBoxManage debugvm … dumpvmcore`) are plain ELF cores with
//!   `VBCORE`/`VBCPU` notes: [`vbox`] decodes them here, with the other notes, rather than
//!   in a crate of their own, so that ELF cores are parsed in one place; their vCPUs are the
//!   CPU state (CR3, EFER) when there are no QEMU notes.
//! * Xen dump-core files (ELF64 with sections `.note.Xen`, `.xen_pages`, `.xen_p2m` or
//!   `.xen_pfn` and no program headers) are recognised ([`xen::detect`]) and left to the
//!   `xen` plugin (vmsnap-xen), which reads their sections with [`section`] and their
//!   notes with [`parse_notes`]: ELF structure is parsed in this crate only.

mod cpu;
pub mod export;
mod header;
pub mod kdump;
mod layer;
mod map;
mod note;
mod plugin;
pub mod rule;
pub mod section;
pub mod vbox;
pub mod xen;
// The on-disk layout as documented, whether or not the reader uses every field.
#[allow(dead_code)]
mod raw;

pub use layer::{ElfCore, ElfVirtual, VirtualMapping, NAME};
pub use plugin::PLUGIN;

// Types reachable through the ones above (fields, return values), named here so an
// embedder can name them too.
pub use cpu::{vmcoreinfo_lines, CoreNotes, Prstatus, QemuCpu};
pub use header::{Class, ElfHeader, Endian, ProgramHeader};
pub use note::{parse_notes, Note};
pub use raw::{EM_386, EM_X86_64, NT_PRSTATUS, PRSTATUS_I386_SIZE, PRSTATUS_X86_64_SIZE};

vmsnap_core::register_plugin!(PLUGIN);
