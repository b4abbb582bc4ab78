//! The three plugins: `qemu` (stream), `qemu-mapped-ram`, `libvirt-save`.

use std::sync::Arc;

use vmsnap_core::{
    AddressSpace, Layer, OpenCtx, OptionType, Plugin, PluginKind, PluginOption, Probe, Result,
    SniffWindow,
};

use crate::layer::QemuMemory;
use crate::libvirt::LibvirtSave;
use crate::raw::{LIBVIRT_MAGIC, LIBVIRT_MAGIC_PARTIAL, VERSION, VERSION_COMPAT};
use crate::stream::sniff;

fn probe_stream(w: &SniffWindow<'_>, want_mapped: bool) -> Probe {
    match sniff(w.head) {
        None => Probe::No("no QEVM magic"),
        Some((VERSION_COMPAT, _)) => Probe::No("QEVM version 2 (obsolete compat stream)"),
        Some((v, _)) if v != VERSION => Probe::No("QEVM stream version is not 3"),
        Some((_, true)) if !want_mapped => Probe::No("mapped-ram stream (read by qemu-mapped-ram)"),
        Some((_, false)) if want_mapped => {
            Probe::No("QEVM stream without the mapped-ram capability")
        }
        Some(_) => Probe::Yes,
    }
}

fn probe_qemu(w: &SniffWindow<'_>) -> Probe {
    probe_stream(w, false)
}

fn probe_mapped(w: &SniffWindow<'_>) -> Probe {
    probe_stream(w, true)
}

fn open_qemu(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(QemuMemory::open_named("qemu", lower, ctx)?))
}

fn open_mapped(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(QemuMemory::open_named(
        "qemu-mapped-ram",
        lower,
        ctx,
    )?))
}

fn probe_libvirt(w: &SniffWindow<'_>) -> Probe {
    match w.head.get(..16) {
        Some(m) if m == LIBVIRT_MAGIC || m == LIBVIRT_MAGIC_PARTIAL => Probe::Yes,
        _ => Probe::No("no LibvirtQemudSave magic"),
    }
}

fn open_libvirt(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(LibvirtSave::open(lower, ctx)?))
}

/// The options every QEMU stream plugin reads.
/// The declared `qemu.ram-below-4g` option.
pub(crate) const RAM_BELOW_4G: PluginOption = PluginOption {
    name: crate::layer::OPT_RAM_BELOW_4G,
    ty: OptionType::Size,
    help: "RAM placed below 4 GiB (default: the machine type's rule, as QEMU's -m splits it)",
};

const OPTIONS: &[PluginOption] = &[RAM_BELOW_4G];

/// QEMU migration / savevm stream (QEVM v3) as guest-physical memory.
pub const PLUGIN: Plugin = Plugin {
    name: "qemu",
    kind: PluginKind::Memory,
    priority: 30,
    stacks_on: &[AddressSpace::File, AddressSpace::Stream],
    summary: "QEMU migration / savevm stream (QEVM v3) as guest-physical memory",
    options: OPTIONS,
    probe: probe_qemu,
    open: open_qemu,
};

/// QEMU mapped-ram migration file as guest-physical memory.
pub const MAPPED_RAM_PLUGIN: Plugin = Plugin {
    name: "qemu-mapped-ram",
    kind: PluginKind::Memory,
    priority: 30,
    stacks_on: &[AddressSpace::File, AddressSpace::Stream],
    summary: "QEMU mapped-ram migration file (fixed page offsets + dirty bitmap)",
    options: OPTIONS,
    probe: probe_mapped,
    open: open_mapped,
};

/// libvirt `virsh save` image: the domain XML, then the QEMU stream.
pub const LIBVIRT_PLUGIN: Plugin = Plugin {
    name: "libvirt-save",
    kind: PluginKind::Container,
    priority: 15,
    stacks_on: &[AddressSpace::File],
    summary: "libvirt save image (LibvirtQemudSave header + domain XML + QEMU stream)",
    options: OPTIONS,
    probe: probe_libvirt,
    open: open_libvirt,
};
