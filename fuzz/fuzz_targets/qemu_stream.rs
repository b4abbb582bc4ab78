//! QEMU migration streams: arbitrary bytes probed and opened through the `qemu` plugin (and wrapped in a libvirt header through `libvirt-save`), then read whole.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver, SniffWindow,
};

fuzz_target!(|data: &[u8]| {
    let plugin = &vmsnap_qemu::PLUGIN;
    let head = &data[..data.len().min(65536)];
    let tail = &data[data.len().saturating_sub(65536)..];
    let _ = (plugin.probe)(&SniffWindow::of_bytes(head, tail, data.len() as u64));
    let _ =
        (vmsnap_qemu::LIBVIRT_PLUGIN.probe)(&SniffWindow::of_bytes(head, tail, data.len() as u64));
    let Ok(reg) = Registry::empty().with(plugin) else {
        return;
    };
    let r = Resolver::new(ExternalPolicy::Deny);
    let o = Options::new();
    let ctx = OpenCtx {
        resolver: &r,
        registry: &reg,
        depth: 0,
        options: &o,
    };
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(data.to_vec()))));
    if let Ok(layer) = (plugin.open)(lower.clone(), &ctx) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
        for child in layer.children() {
            vmsnap_testkit::exercise(&child.layer, 16 << 20);
        }
        let _ = layer.cpu_state();
        let _ = layer.meta();
    }
    if let Ok(lv) = (vmsnap_qemu::LIBVIRT_PLUGIN.open)(lower, &ctx) {
        vmsnap_testkit::exercise(&lv, 1 << 20);
    }
});
