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

/// A tar header (ustar magic, good checksum) first, naming an `.ovf` (DSP0243: the
/// descriptor is an OVA's first member): its own name, a pax header's (`PaxHeaders/x.ovf`)
/// or a GNU long name's (the block after its `L` header). Any other tar is not an OVA
/// (`check` calls it a tar archive).
pub fn probe_ova(w: &SniffWindow<'_>) -> Probe {
    let Some(h) = w.head.get(..BLOCK as usize).filter(|h| is_header(h)) else {
        return Probe::No("no tar header first");
    };
    let name = match h.get(crate::raw::tar::TYPEFLAG) {
        Some(b'L') => w
            .head
            .get(BLOCK as usize..2 * BLOCK as usize)
            .unwrap_or_default(),
        _ => h.get(..100).unwrap_or_default(),
    };
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    if name.len() > 4
        && name
            .get(name.len() - 4..)
            .is_some_and(|e| e.eq_ignore_ascii_case(b".ovf"))
    {
        Probe::Yes
    } else {
        Probe::No("a tar whose first member is not an .ovf descriptor")
    }
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Ovf::open(lower, ctx)?))
}

fn open_ova(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Ovf::open_ova(lower, ctx)?))
}
