//! The `avml` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Avml, NAME};
use crate::raw::{AVML_MAGIC, AVML_VERSION, HEADER_SIZE, LIME_MAGIC, LIME_VERSION};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Memory,
    // After LiME (30): a file that starts with a LiME range is LiME's unless a later
    // range is compressed, which only opening finds (then `lime` fails and this opens it).
    priority: 31,
    stacks_on: &[AddressSpace::File],
    summary: "AVML images (Microsoft's avml: LiME ranges and snappy-compressed AVML version-2 ranges) as guest-physical memory",
    options: &[],
    probe,
    open,
};

/// Accepts files whose first range header is AVML version 2, or LiME version 1 (avml
/// mixes both); `open` checks the rest.
fn probe(w: &SniffWindow<'_>) -> Probe {
    let field = |at: usize| {
        w.head
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    match (field(0), field(4)) {
        (Some(AVML_MAGIC), Some(AVML_VERSION)) | (Some(LIME_MAGIC), Some(LIME_VERSION)) => {}
        (Some(AVML_MAGIC), _) => return Probe::No("AVML magic with a version other than 2"),
        _ => return Probe::No("no AVML (41 56 4D 4C) or LiME range header"),
    }
    if w.size < HEADER_SIZE {
        return Probe::No("range header truncated");
    }
    Probe::Yes
}

/// Opens the layer.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Avml::open(lower, ctx)?))
}
