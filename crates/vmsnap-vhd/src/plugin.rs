//! The `vhd` plugin: probe (footer copy at 0, or a footer at EOF for fixed disks) and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::Vhd;
use crate::raw::FOOTER_COOKIE;

/// Recognises a VHD: `conectix` at offset 0 (dynamic, differencing) or in the last 512
/// bytes (fixed: QEMU's own probe misses these, the tail shows them).
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.size < 512 {
        return Probe::No("smaller than a VHD footer");
    }
    if w.head.get(..8) == Some(FOOTER_COOKIE.as_slice()) {
        return Probe::Yes;
    }
    let tail_footer = w
        .tail
        .len()
        .checked_sub(512)
        .and_then(|at| w.tail.get(at..at + 8));
    if tail_footer == Some(FOOTER_COOKIE.as_slice()) {
        return Probe::Yes;
    }
    Probe::No("no `conectix` footer at offset 0 or in the last 512 bytes")
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Vhd::open(lower, ctx)?))
}

/// The VHD plugin.
pub const PLUGIN: Plugin = Plugin {
    name: "vhd",
    kind: PluginKind::Disk,
    priority: 20,
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "VHD / Virtual PC disk image (fixed, dynamic, differencing)",
    options: &[crate::layer::FORCE_SIZE],
    probe,
    open,
};
