//! The `avml` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Avml, NAME};
use crate::raw::{AVML_MAGIC, AVML_VERSION};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Memory,
    // After LiME (30): a file whose head shows LiME ranges and then an AVML one is offered
    // to both (`lime` fails on the AVML range, this opens it).
    priority: 31,
    stacks_on: &[AddressSpace::File],
    summary: "AVML images (Microsoft's avml: LiME ranges and snappy-compressed AVML version-2 ranges) as guest-physical memory",
    options: &[],
    probe,
    open,
};

/// Accepts files whose first range header is AVML version 2, and files whose head holds
/// LiME version-1 ranges followed by an AVML one (avml reads both kinds in one file); a
/// file of LiME ranges only, as far as the head shows, is LiME's. `open` checks the rest.
fn probe(w: &SniffWindow<'_>) -> Probe {
    match vmsnap_lime::head::first_other_header(w.head) {
        Some(h) if h.magic == AVML_MAGIC && h.version == AVML_VERSION => Probe::Yes,
        Some(h) if h.magic == AVML_MAGIC && h.at == 0 => {
            Probe::No("AVML magic with a version other than 2")
        }
        Some(h) if h.at == 0 => Probe::No("no AVML (41 56 4D 4C) range header"),
        _ => Probe::No("LiME ranges without an AVML range in the head"),
    }
}

/// Opens the layer.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Avml::open(lower, ctx)?))
}
