//! The `avml` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Avml, NAME};
use crate::raw::{HEADER_SIZE, MAGIC};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Disk,
    priority: 20,
    // A disk format stacks on files and on guest disks (a disk inside a disk); the stacker
    // never probes it on guest memory.
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "avml images (TODO(new-format): one line for `vmsnap formats`)",
    options: &[],
    probe,
    open,
};

/// Accepts files that start with the magic and hold a whole header; `open` checks the rest.
fn probe(w: &SniffWindow<'_>) -> Probe {
    if !w.head.starts_with(MAGIC) {
        return Probe::No("no avml magic");
    }
    if w.size < HEADER_SIZE {
        return Probe::No("avml header truncated");
    }
    Probe::Yes
}

/// Opens the layer. `Err(Error::declined(why))` means "not this format after all" (the
/// stacker tries the next plugin); any other error is a failure of this format.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Avml::open(lower, ctx)?))
}
