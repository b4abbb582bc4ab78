//! The `ovf` (descriptor) and `ova` (archive) plugins: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Ovf, NAME, OVA_NAME};
use crate::raw::{BLOCK, MAX_XML_LEN, NS_OVF_PREFIX};
use crate::tar::is_header;

/// The descriptor plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Vm,
    priority: 15,
    stacks_on: &[AddressSpace::File],
    summary: "OVF descriptor (.ovf): each disk drive a layer disk:<bus><n>:<unit>, its file opened through the reference policy",
    options: &[],
    probe,
    open,
};

/// The archive plugin.
pub const OVA_PLUGIN: Plugin = Plugin {
    name: OVA_NAME,
    kind: PluginKind::Vm,
    priority: 15,
    stacks_on: &[AddressSpace::File],
    summary: "OVA package (tar: .ovf, disks, .mf): each disk drive a layer disk:<bus><n>:<unit>, read in place",
    options: &[],
    probe: probe_ova,
    open: open_ova,
};

/// Text of at most [`MAX_XML_LEN`] whose head has an `Envelope` element and the OVF
/// envelope namespace.
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.size > MAX_XML_LEN {
        return Probe::No("larger than an OVF descriptor can be");
    }
    if w.head.contains(&0) {
        return Probe::No("binary, not an OVF descriptor");
    }
    let has = |needle: &[u8]| w.head.windows(needle.len()).any(|x| x == needle);
    if !has(b"Envelope") || !has(NS_OVF_PREFIX.as_bytes()) {
        return Probe::No("no Envelope in the OVF envelope namespace");
    }
    Probe::Yes
}

/// A tar header (ustar magic, good checksum) first; `open` declines an archive without
/// an `.ovf` member.
pub fn probe_ova(w: &SniffWindow<'_>) -> Probe {
    match w.head.get(..BLOCK as usize) {
        Some(h) if is_header(h) => Probe::Yes,
        _ => Probe::No("no tar header first"),
    }
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Ovf::open(lower, ctx)?))
}

fn open_ova(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Ovf::open_ova(lower, ctx)?))
}
