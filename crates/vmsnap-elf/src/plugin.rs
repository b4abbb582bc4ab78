//! The `elf-core` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{ElfCore, NAME};
use crate::raw::*;
use crate::{kdump, xen};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Memory,
    priority: 30,
    stacks_on: &[AddressSpace::File],
    summary:
        "ELF core dumps (QEMU dump-guest-memory, virsh dump, kdump vmcore) as guest-physical memory",
    options: &[],
    probe,
    open,
};

/// Accepts ELF files of type `ET_CORE`; kdump-compressed dumps are the kdump plugin's, Xen
/// dump-cores the xen plugin's.
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    let h = w.head;
    if kdump::detect(h).is_some() {
        return Probe::No("a kdump-compressed dump (the kdump plugin reads it)");
    }
    if h.get(..4) != Some(ELF_MAGIC.as_slice()) {
        return Probe::No("no ELF magic");
    }
    let (Some(&class), Some(&data)) = (h.get(4), h.get(5)) else {
        return Probe::No("ELF header truncated");
    };
    if class != ELFCLASS32 && class != ELFCLASS64 {
        return Probe::No("unknown ELF class");
    }
    let e_type = match (data, h.get(16..18)) {
        (ELFDATA2LSB, Some(&[a, b])) => u16::from_le_bytes([a, b]),
        (ELFDATA2MSB, Some(&[a, b])) => u16::from_be_bytes([a, b]),
        (ELFDATA2LSB | ELFDATA2MSB, _) => return Probe::No("ELF header truncated"),
        _ => return Probe::No("unknown ELF data encoding"),
    };
    if e_type != ET_CORE {
        return Probe::No("ELF file is not a core (e_type is not ET_CORE)");
    }
    if xen::detect(h) {
        return Probe::No("a Xen dump-core (the xen plugin reads it)");
    }
    Probe::Yes
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(ElfCore::open(lower, ctx)?))
}
