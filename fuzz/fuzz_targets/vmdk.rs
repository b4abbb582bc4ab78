//! VMDK: the input is either a sparse extent (KDMV / COWD, streamOptimized) or a text
//! descriptor; opened through the plugin on a memory source with no file path, so every
//! external reference is refused, then read whole, mapped and described.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver,
};

fuzz_target!(|data: &[u8]| {
    let Ok(reg) = Registry::empty().with(&vmsnap_vmdk::PLUGIN) else {
        return;
    };
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx {
        resolver: &r,
        registry: &reg,
        depth: 0,
        options: &o,
    };
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(data.to_vec()))));
    let sniff = vmsnap_core::Sniff::read(lower.as_ref());
    if let Ok(s) = sniff {
        let _ = (vmsnap_vmdk::PLUGIN.probe)(&s.window(lower.as_ref()));
    }
    if let Ok(layer) = (vmsnap_vmdk::PLUGIN.open)(lower, &ctx) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
});
