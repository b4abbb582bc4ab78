//! The `lime` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Lime, NAME};
use crate::raw::*;

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Memory,
    priority: 30,
    stacks_on: &[AddressSpace::File],
    summary: "LiME (Linux Memory Extractor) dumps as guest-physical memory",
    options: &[],
    probe,
    open,
};

/// Accepts files starting with a LiME range header magic (any version: `open` names an
/// unsupported one), unless the head shows an AVML range after the LiME ones: that file is
/// an AVML image, which the `avml` plugin reads.
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    match w.head.get(..4) {
        Some(m) if m == LIME_MAGIC.to_le_bytes() => {}
        _ => return Probe::No("no LiME magic (45 4D 69 4C)"),
    }
    if w.head.len() < HEADER_SIZE as usize {
        return Probe::No("LiME range header truncated");
    }
    if crate::head::first_other_header(w.head).is_some_and(|h| h.magic == crate::head::AVML_MAGIC) {
        return Probe::No("an AVML range follows the LiME ones: an AVML image");
    }
    Probe::Yes
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Lime::open(lower, ctx)?))
}
