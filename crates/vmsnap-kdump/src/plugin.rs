//! The `kdump` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Kdump, NAME};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Memory,
    priority: 30,
    stacks_on: &[AddressSpace::File],
    summary: "kdump-compressed dumps (makedumpfile, QEMU dump-guest-memory kdump-*, virsh dump --format kdump-*; raw and flattened, zlib pages) as guest-physical memory",
    options: &[],
    probe,
    open,
};

/// Accepts files that start with a `KDUMP   `/`DISKDUMP` signature, or with makedumpfile's
/// flattened header (the recognition vmsnap-elf uses to decline them); `open` checks the rest.
fn probe(w: &SniffWindow<'_>) -> Probe {
    if vmsnap_elf::kdump::detect(w.head).is_some() {
        Probe::Yes
    } else {
        Probe::No("no KDUMP, DISKDUMP or makedumpfile signature")
    }
}

/// Opens the layer.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Kdump::open(lower, ctx)?))
}
