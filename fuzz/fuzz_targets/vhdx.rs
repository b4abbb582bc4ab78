//! The vhdx plugin on arbitrary bytes: open through the plugin on a `MemSource`, then
//! read, map and describe everything (no panics, no unbounded allocation).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver,
};

fuzz_target!(|data: &[u8]| {
    let Ok(reg) = Registry::empty().with(&vmsnap_vhdx::PLUGIN) else {
        return;
    };
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let ctx = OpenCtx {
        resolver: &resolver,
        registry: &reg,
        depth: 0,
        options: &options,
    };
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(data.to_vec()))));
    if let Ok(layer) = (vmsnap_vhdx::PLUGIN.open)(lower, &ctx) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
});
