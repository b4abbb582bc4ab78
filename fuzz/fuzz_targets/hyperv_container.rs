//! Hyper-V storage container: arbitrary bytes opened through `hyperv-vmcx` (and
//! `hyperv-vmrs-ram` stacked on it when it accepts), then every read, extent, the whole
//! key tree, findings, references and children exercised.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap_core::{FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver, Sniff};
use vmsnap_hyperv::{PLUGIN, RAM_PLUGIN};

fuzz_target!(|data: &[u8]| {
    let Ok(reg) = Registry::empty()
        .with(&PLUGIN)
        .and_then(|r| r.with(&RAM_PLUGIN))
    else {
        return;
    };
    let resolver = Resolver::default();
    let options = Options::new();
    let ctx = OpenCtx {
        resolver: &resolver,
        registry: &reg,
        depth: 0,
        options: &options,
    };
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(data.to_vec()))));
    let window = vmsnap_core::SniffWindow::of_bytes(data, data, data.len() as u64);
    let _ = (PLUGIN.probe)(&window);
    let Ok(layer) = (PLUGIN.open)(lower, &ctx) else {
        return;
    };
    vmsnap_testkit::exercise(&layer, 64 << 20);
    if let Ok(s) = Sniff::read(layer.as_ref()) {
        if (RAM_PLUGIN.probe)(&s.window(layer.as_ref())).is_yes() {
            if let Ok(ram) = (RAM_PLUGIN.open)(layer, &ctx) {
                vmsnap_testkit::exercise(&ram, 64 << 20);
            }
        }
    }
});
