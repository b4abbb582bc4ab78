//! The `xen` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Xen, NAME};

/// The plugin. Priority 29: probed before the generic ELF reader (30), which declines
/// these files anyway (vmsnap-elf recognises them with the same function).
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Memory,
    priority: 29,
    stacks_on: &[AddressSpace::File],
    summary: "Xen dump-core files (xl dump-core: ELF sections .xen_pages with .xen_pfn for HVM or .xen_p2m for PV guests) as guest-physical memory",
    options: &[],
    probe,
    open,
};

/// Accepts ELF64 cores with no program headers whose first note section starts with a
/// `Xen` dump-core note; `open` checks the rest.
fn probe(w: &SniffWindow<'_>) -> Probe {
    if vmsnap_elf::xen::detect(w.head) {
        Probe::Yes
    } else {
        Probe::No("not an ELF64 core with a .note.Xen dump-core note")
    }
}

/// Opens the layer.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Xen::open(lower, ctx)?))
}
