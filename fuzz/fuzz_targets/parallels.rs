//! The Parallels reader on arbitrary bytes: open through the plugin (external references denied),
//! then read, map and describe everything. Must never panic, hang or over-allocate.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap_core::{FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver, SniffWindow};

fuzz_target!(|data: &[u8]| {
    let plugin = &vmsnap_parallels::PLUGIN;
    let _ = (plugin.probe)(&SniffWindow::of_bytes(data, data, data.len() as u64));
    let Ok(reg) = Registry::empty().with(plugin) else {
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
    if let Ok(layer) = (plugin.open)(lower, &ctx) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
});
