//! The rule ids of the findings only ELF core dumps report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// A QEMU CPU note (`QEMU` name) that does not decode; its vCPU has no QEMU register state.
pub const QEMU_NOTE: &str = "qemu_note";
/// An `NT_PRSTATUS` note that does not decode; its vCPU has no registers.
pub const PRSTATUS_NOTE: &str = "prstatus_note";
/// The `p_vaddr` fields do not form an address space, so there is no virtual layer.
pub const VIRTUAL_MAPPING: &str = "virtual_mapping";
/// A `PT_LOAD` segment whose `p_filesz` exceeds its `p_memsz`; the excess is ignored.
pub const SEGMENT_SIZES: &str = "segment_sizes";
/// Zero tails (`p_filesz < p_memsz`) covered by other segments' file data.
pub const OVERLAPPING_SEGMENTS: &str = "overlapping_segments";
/// A VirtualBox `VBCORE`/`VBCPU` note that does not decode, or vCPU notes the descriptor
/// does not count; those vCPUs have no CPU state.
pub const VBOX_NOTE: &str = "vbox_note";
