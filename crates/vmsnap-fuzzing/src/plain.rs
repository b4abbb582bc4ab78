//! Targets whose input is the file itself: probe, open through the plugin (no external
//! file may be opened), then read, map and describe every layer.

use std::sync::Arc;

use vmsnap::core::{ExternalPolicy, FileLayer, Layer, MemSource, Options, Resolver, Sniff};
use vmsnap::stack::Stacker;

use crate::{file, open, open_and_exercise, open_in, window};

/// ELF cores (and kdump-compressed detection) through the `elf-core` plugin.
pub fn elf_core(data: &[u8]) {
    open_and_exercise(&vmsnap_elf::PLUGIN, data);
}

/// LiME files through the `lime` plugin.
pub fn lime(data: &[u8]) {
    open_and_exercise(&vmsnap_lime::PLUGIN, data);
}

/// Parallels images; or, in the structured mode, a built one with its format extension
/// (`structured::parallels`).
pub fn parallels(data: &[u8]) {
    if crate::structured::parallels::run(data) {
        return;
    }
    open_and_exercise(&vmsnap_parallels::PLUGIN, data);
}

/// QED images.
pub fn qed(data: &[u8]) {
    open_and_exercise(&vmsnap_qed::PLUGIN, data);
}

/// VDI images.
pub fn vdi(data: &[u8]) {
    open_and_exercise(&vmsnap_vdi::PLUGIN, data);
}

/// qcow2 and qcow v1 through both plugins; or, in the structured mode, a built image with
/// its backing and data files (`structured::qcow2`).
pub fn qcow2(data: &[u8]) {
    if crate::structured::qcow2::run(data) {
        return;
    }
    for plugin in [&vmsnap_qcow2::PLUGIN, &vmsnap_qcow2::QCOW1_PLUGIN] {
        open_and_exercise(plugin, data);
    }
}

/// VMDK: a sparse extent (KDMV / COWD / seSparse, streamOptimized) or a text descriptor,
/// opened with no file path so every extent and parent reference is refused; or, in the
/// structured mode, a built file with its extents and parents (`structured::vmdk`).
pub fn vmdk(data: &[u8]) {
    if crate::structured::vmdk::run(data) {
        return;
    }
    vmdk_on(file(data), &Resolver::new(ExternalPolicy::SameDir));
}

/// Probes and opens `lower` as a VMDK under `resolver`, then exercises it.
pub(crate) fn vmdk_on(lower: Arc<dyn Layer>, resolver: &Resolver) {
    if let Ok(s) = Sniff::read(lower.as_ref()) {
        let _ = (vmsnap_vmdk::PLUGIN.probe)(&s.window(lower.as_ref()));
    }
    if let Some(layer) = open_in(&vmsnap_vmdk::PLUGIN, &[], lower, resolver) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
}

/// VMware checkpoints (no path, so no companion), and the tag extractor; or, in the
/// structured mode, a built checkpoint with its `.vmem` (`structured::vmware`).
pub fn vmware(data: &[u8]) {
    if crate::structured::vmware::run(data) {
        return;
    }
    vmware_on(file(data), &Resolver::new(ExternalPolicy::Deny));
}

/// Opens `lower` as a VMware checkpoint or `.vmem` under `resolver`, exercises it, and
/// extracts the screenshot tag.
pub(crate) fn vmware_on(lower: Arc<dyn Layer>, resolver: &Resolver) {
    if let Some(layer) = open_in(&vmsnap_vmware::PLUGIN, &[], lower.clone(), resolver) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
    let _ = vmsnap_vmware::extract_tag(lower, "imageData", 1 << 20);
}

/// A QEMU memory file through `plugin`, its RAM-block children and CPU state, and the
/// same bytes behind a libvirt save header.
pub(crate) fn qemu(plugin: &'static vmsnap_core::Plugin, data: &[u8]) {
    let _ = (plugin.probe)(&window(data));
    let _ = (vmsnap_qemu::LIBVIRT_PLUGIN.probe)(&window(data));
    let lower = file(data);
    if let Some(layer) = open(plugin, &[], lower.clone(), ExternalPolicy::Deny) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
        for child in layer.children() {
            vmsnap_testkit::exercise(&child.layer, 16 << 20);
        }
        let _ = layer.cpu_state();
        let _ = layer.meta();
    }
    if let Some(lv) = open(
        &vmsnap_qemu::LIBVIRT_PLUGIN,
        &[],
        lower,
        ExternalPolicy::Deny,
    ) {
        vmsnap_testkit::exercise(&lv, 1 << 20);
    }
}

/// QEMU migration streams (and the libvirt save wrapper); or, in the structured mode, a
/// built stream (`structured::qemu`).
pub fn qemu_stream(data: &[u8]) {
    if crate::structured::qemu::run(data) {
        return;
    }
    qemu(&vmsnap_qemu::PLUGIN, data);
}

/// QEMU mapped-ram files (and the libvirt save wrapper); or, in the structured mode, a
/// built stream (`structured::qemu`).
pub fn qemu_mapped_ram(data: &[u8]) {
    if crate::structured::qemu::run(data) {
        return;
    }
    qemu(&vmsnap_qemu::MAPPED_RAM_PLUGIN, data);
}

/// The whole stacker: every registered plugin probes, the accepted ones open, and every
/// layer of the stack is read in chunks and described; or, in the structured mode, the
/// same image under a fuzzed command line (`command`).
pub fn stack(data: &[u8]) {
    if crate::command::run(data) {
        return;
    }
    let Ok(registry) = vmsnap::registry() else {
        return;
    };
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::with_path(
        data.to_vec(),
        "/nonexistent/fuzz-input",
    ))));
    let stack = Stacker::new(&registry, &resolver, &options)
        .explain(true)
        .stack(file);
    for e in &stack.entries {
        vmsnap_testkit::exercise(&e.layer, 16 << 20);
    }
    let _ = stack.all_findings();
    let _ = stack.layer_names();
}
