//! qcow2: arbitrary bytes opened through the plugin (no external files: the default
//! deny policy), then every read, extent, metadata and child path exercised.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap_core::{FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver};

fuzz_target!(|data: &[u8]| {
    let Ok(reg) = Registry::empty().with(&vmsnap_qcow2::PLUGIN) else {
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
    let _ = (vmsnap_qcow2::PLUGIN.probe)(&window);
    if let Ok(layer) = (vmsnap_qcow2::PLUGIN.open)(lower, &ctx) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
});
