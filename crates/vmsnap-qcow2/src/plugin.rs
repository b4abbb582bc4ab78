//! The `qcow2` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::Qcow2;
use crate::raw;

/// The qcow2 plugin (disk, priority 20).
pub const PLUGIN: Plugin = Plugin {
    name: "qcow2",
    kind: PluginKind::Disk,
    priority: 20,
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "QEMU qcow2 v2/v3: snapshots, VM state, backing chains",
    options: &[crate::open::L2_CACHE_SIZE],
    probe,
    open,
};

/// `QFI\xfb` and a version other than 0 and 1 (version 1 is the `qcow` plugin's; unknown
/// versions are accepted so that `open` reports them instead of letting them pass as raw).
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    let (Some(magic), Some(version)) = (w.head.get(0..4), w.head.get(4..8)) else {
        return Probe::No("shorter than a qcow2 header");
    };
    if magic != raw::MAGIC {
        return Probe::No("no QFI\\xfb magic");
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(version);
    match u32::from_be_bytes(v) {
        0 => return Probe::No("qcow2 magic with version 0"),
        1 => return Probe::No("version 1: qcow, not qcow2"),
        _ => {}
    }
    Probe::Yes
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Qcow2::open(lower, ctx)?))
}
