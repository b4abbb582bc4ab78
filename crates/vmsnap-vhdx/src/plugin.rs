//! The `vhdx` plugin: probe (`vhdxfile` at offset 0) and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::Vhdx;
use crate::raw::FILE_SIGNATURE;

/// Recognises a VHDX by its file identifier.
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.head.get(..8) == Some(FILE_SIGNATURE.as_slice()) {
        Probe::Yes
    } else {
        Probe::No("no `vhdxfile` file identifier at offset 0")
    }
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Vhdx::open(lower, ctx)?))
}

/// The VHDX plugin.
pub const PLUGIN: Plugin = Plugin {
    name: "vhdx",
    kind: PluginKind::Disk,
    priority: 20,
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "VHDX / Hyper-V disk image (fixed, dynamic, differencing; log replayed in memory)",
    options: &[],
    probe,
    open,
};
