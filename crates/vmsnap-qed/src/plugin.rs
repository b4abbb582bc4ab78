//! The `qed` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::Qed;
use crate::raw::MAGIC;

/// The QED plugin.
pub const PLUGIN: Plugin = Plugin {
    name: "qed",
    kind: PluginKind::Disk,
    priority: 20,
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "QEMU Enhanced Disk (QED) image, backing file through the policy",
    options: &[],
    probe,
    open,
};

/// Recognises the `QED\0` magic (what QEMU's probe looks at).
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    match w.head.get(..4) {
        Some(m) if m == MAGIC && w.size >= 64 => Probe::Yes,
        _ => Probe::No("no QED magic"),
    }
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Qed::open(lower, ctx)?))
}
