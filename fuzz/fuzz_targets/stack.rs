//! The whole stacker on arbitrary bytes: every registered plugin probes, the accepted ones
//! open, and every layer of the stack is read fully in chunks and described.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap::core::{ExternalPolicy, FileLayer, Layer, MemSource, Options, Resolver};
use vmsnap::stack::Stacker;

fuzz_target!(|data: &[u8]| {
    let Ok(registry) = vmsnap::registry() else {
        return;
    };
    // No external file may be opened from fuzz input.
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
});
