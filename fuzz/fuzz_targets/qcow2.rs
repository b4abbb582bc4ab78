//! qcow2 and qcow v1: arbitrary bytes opened through both plugins (no external files: the default
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
    for plugin in [&vmsnap_qcow2::PLUGIN, &vmsnap_qcow2::QCOW1_PLUGIN] {
        let _ = (plugin.probe)(&window);
        if let Ok(layer) = (plugin.open)(lower.clone(), &ctx) {
            vmsnap_testkit::exercise(&layer, 64 << 20);
        }
    }
});
