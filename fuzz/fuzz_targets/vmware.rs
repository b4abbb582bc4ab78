//! VMware checkpoints: arbitrary bytes opened through the `vmware` plugin on a MemSource
//! (no path, so no companion is looked up), then every read, extent and metadata view.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver,
};

fuzz_target!(|data: &[u8]| {
    let r = Resolver::new(ExternalPolicy::Deny);
    let Ok(reg) = Registry::empty().with(&vmsnap_vmware::PLUGIN) else {
        return;
    };
    let o = Options::new();
    let ctx = OpenCtx {
        resolver: &r,
        registry: &reg,
        depth: 0,
        options: &o,
    };
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(data.to_vec()))));
    if let Ok(layer) = (vmsnap_vmware::PLUGIN.open)(lower.clone(), &ctx) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
    let _ = vmsnap_vmware::extract_tag(lower, "imageData", 1 << 20);
});
