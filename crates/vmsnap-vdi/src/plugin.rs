//! The `vdi` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::Vdi;
use crate::raw::{OFF_SIGNATURE, SIGNATURE};

/// The VDI plugin.
pub const PLUGIN: Plugin = Plugin {
    name: "vdi",
    kind: PluginKind::Disk,
    priority: 20,
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "VirtualBox VDI disk image (static, dynamic; differencing parents listed)",
    options: &[],
    probe,
    open,
};

/// Recognises the signature at 0x40 (what QEMU's probe looks at).
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.size < 512 {
        return Probe::No("too small for a VDI header");
    }
    match w.head.get(OFF_SIGNATURE..OFF_SIGNATURE + 4) {
        Some(s) if s == SIGNATURE.to_le_bytes() => Probe::Yes,
        _ => Probe::No("no VDI signature 0xbeda107f at offset 0x40"),
    }
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Vdi::open(lower, ctx)?))
}
