//! The `parallels` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::Parallels;
use crate::raw::{MAGIC_EXT, MAGIC_OLD, VERSION};

/// The Parallels plugin.
pub const PLUGIN: Plugin = Plugin {
    name: "parallels",
    kind: PluginKind::Disk,
    priority: 20,
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "Parallels disk image (WithoutFreeSpace / WithouFreSpacExt), dirty bitmaps listed",
    options: &[],
    probe,
    open,
};

/// Recognises either signature with version 2 (what QEMU's probe looks at).
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    let (Some(magic), Some(version)) = (w.head.get(..16), w.head.get(16..20)) else {
        return Probe::No("too small for a Parallels header");
    };
    if magic != MAGIC_EXT && magic != MAGIC_OLD {
        return Probe::No("no Parallels signature");
    }
    if version != VERSION.to_le_bytes() {
        return Probe::No("Parallels signature but not version 2");
    }
    Probe::Yes
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Parallels::open(lower, ctx)?))
}
