//! The `vmware` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::open::is_vmem_path;
use crate::raw::{magic_name, GROUP_DESC_SIZE, HEADER_SIZE, MAX_GROUPS, PAGE_SIZE};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: "vmware",
    kind: PluginKind::Memory,
    priority: 30,
    stacks_on: &[AddressSpace::File, AddressSpace::Stream],
    summary: "VMware suspend/snapshot state (.vmss, .vmsn) and .vmem guest memory",
    options: &[],
    probe,
    open,
};

/// Recognises a checkpoint by its magic and a group table that fits, or a `.vmem` by its
/// file name (it has no header) when it is a whole number of pages.
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    let word = |at: usize| -> Option<u32> {
        let b = w.head.get(at..at + 4)?;
        Some(u32::from_le_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    };
    if let Some(magic) = word(0) {
        if magic_name(magic).is_some() {
            let count = u64::from(word(8).unwrap_or(0));
            if count == 0 || count > MAX_GROUPS {
                return Probe::No("VMware magic but an implausible group count");
            }
            if HEADER_SIZE + count * GROUP_DESC_SIZE > w.size {
                return Probe::No("VMware magic but the group table ends past the end");
            }
            return Probe::Yes;
        }
    }
    if w.space == AddressSpace::File && is_vmem_path(w.path) {
        if w.size == 0 || !w.size.is_multiple_of(PAGE_SIZE) {
            return Probe::No(".vmem name but not a whole number of pages");
        }
        return Probe::Yes;
    }
    Probe::No("no VMware checkpoint magic and not a .vmem")
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(crate::Vmware::open(lower, ctx)?))
}
