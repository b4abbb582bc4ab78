//! The `avml` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Avml, NAME};
use crate::raw::{AVML_MAGIC, AVML_VERSION, HEADER_SIZE, LIME_MAGIC, LIME_VERSION};

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

/// The magic and version of the range header at `at` of the head, if it is all there.
fn header_at(head: &[u8], at: usize) -> Option<(u32, u32, u64, u64)> {
    let b = head.get(at..at.checked_add(HEADER_SIZE as usize)?)?;
    let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let u64_at = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
    Some((u32_at(0)?, u32_at(4)?, u64_at(8)?, u64_at(16)?))
}

/// Accepts files whose first range header is AVML version 2, and files whose head holds
/// LiME version-1 ranges followed by an AVML one (avml reads both kinds in one file); a
/// file of LiME ranges only, as far as the head shows, is LiME's. `open` checks the rest.
fn probe(w: &SniffWindow<'_>) -> Probe {
    let mut at = 0usize;
    loop {
        match header_at(w.head, at) {
            Some((AVML_MAGIC, AVML_VERSION, _, _)) => return Probe::Yes,
            Some((AVML_MAGIC, _, _, _)) if at == 0 => {
                return Probe::No("AVML magic with a version other than 2")
            }
            Some((LIME_MAGIC, LIME_VERSION, start, end)) if end >= start => {
                let next = (end - start)
                    .checked_add(1 + HEADER_SIZE)
                    .and_then(|n| usize::try_from(n).ok())
                    .and_then(|n| at.checked_add(n));
                match next {
                    Some(n) => at = n,
                    None => return Probe::No("LiME ranges without an AVML range"),
                }
            }
            _ if at == 0 => return Probe::No("no AVML (41 56 4D 4C) range header"),
            _ => return Probe::No("LiME ranges without an AVML range in the head"),
        }
    }
}
/// Opens the layer.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Avml::open(lower, ctx)?))
}
