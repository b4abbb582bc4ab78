//! The plugins: `hyperv-vmcx` (the container) and `hyperv-vmrs-ram` (guest RAM).

use std::sync::Arc;

use vmsnap_core::{
    AddressSpace, Error, ErrorKind, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow,
};

use crate::layer::{HyperVContainer, HyperVRam, RamView};
use crate::raw::FILE_SIGNATURE;

/// Name of the container plugin and layer.
pub const CONTAINER_NAME: &str = "hyperv-vmcx";
/// Name of the guest-RAM plugin and layer.
pub const RAM_NAME: &str = "hyperv-vmrs-ram";

fn has_signature(head: &[u8]) -> bool {
    let sig = FILE_SIGNATURE.to_le_bytes();
    head.get(0..4) == Some(&sig[..]) || head.get(0x1000..0x1004) == Some(&sig[..])
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn probe_container(w: &SniffWindow<'_>) -> Probe {
    if w.layer == CONTAINER_NAME || w.layer == RAM_NAME {
        return Probe::No("already a Hyper-V layer");
    }
    if w.size < 0x3000 {
        return Probe::No("too small for a Hyper-V storage file (headers and object table)");
    }
    if !has_signature(w.head) {
        return Probe::No("no Hyper-V storage signature 0x01282014 at 0x0 or 0x1000");
    }
    Probe::Yes
}

fn probe_ram(w: &SniffWindow<'_>) -> Probe {
    if w.layer != CONTAINER_NAME {
        return Probe::No("stacks only on a hyperv-vmcx layer");
    }
    if !has_signature(w.head) {
        return Probe::No("no Hyper-V storage signature");
    }
    // Key names are stored as UTF-8; when head and tail cover the whole file, the
    // absence of the name is conclusive.
    let whole = w.size <= (w.head.len() + w.tail.len()) as u64;
    if whole && !contains(w.head, b"RamMemoryBlock") && !contains(w.tail, b"RamMemoryBlock") {
        return Probe::No("no RamMemoryBlock keys: a configuration or a saved state without RAM");
    }
    Probe::Yes
}

fn open_container(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(HyperVContainer::open(lower)?))
}

fn open_ram(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    if lower.name() == CONTAINER_NAME {
        return Ok(Arc::new(RamView::of_container(lower)?));
    }
    match HyperVRam::open(lower) {
        Ok(ram) => Ok(Arc::new(ram)),
        // No RAM keys: a configuration, not a saved state.
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::declined(e.to_string())),
        Err(e) => Err(e),
    }
}

/// The Hyper-V storage container plugin (`.vmcx`, `.vmrs`, `.vsv`).
pub const PLUGIN: Plugin = Plugin {
    name: CONTAINER_NAME,
    kind: PluginKind::Container,
    priority: 15,
    stacks_on: &[AddressSpace::File, AddressSpace::Stream],
    summary: "Hyper-V storage container (.vmcx/.vmrs/.vsv): verified lossless key tree, VM summary",
    options: &[],
    probe: probe_container,
    open: open_container,
};

/// The Hyper-V saved-state guest RAM plugin (stacks on `hyperv-vmcx`).
pub const RAM_PLUGIN: Plugin = Plugin {
    name: RAM_NAME,
    kind: PluginKind::Memory,
    priority: 30,
    stacks_on: &[AddressSpace::Metadata],
    summary: "Hyper-V saved-state guest RAM (RamMemoryBlock/RamBlock keys, raw and XPRESS pages)",
    options: &[],
    probe: probe_ram,
    open: open_ram,
};
