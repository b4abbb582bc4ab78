//! The `windump` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::header::Width;
use crate::layer::{Windump, NAME};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Memory,
    priority: 30,
    stacks_on: &[AddressSpace::File],
    summary: "Windows crash dumps (MEMORY.DMP: PAGEDUMP/PAGEDU64, full and bitmap dumps) as guest-physical memory",
    options: &[],
    probe,
    open,
};

/// Accepts files that start with `PAGEDUMP` or `PAGEDU64` and hold a whole header; `open`
/// checks the rest.
fn probe(w: &SniffWindow<'_>) -> Probe {
    match Width::of_signature(w.head) {
        None => Probe::No("no PAGEDUMP or PAGEDU64 signature"),
        Some(width) if w.size < width.layout().header_bytes => {
            Probe::No("Windows crash dump header truncated")
        }
        Some(_) => Probe::Yes,
    }
}

/// Opens the layer.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Windump::open(lower, ctx)?))
}
