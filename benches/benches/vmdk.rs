//! VMDK: monolithicSparse and streamOptimized images of the realistic 256 MiB content.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_open, bench_probe, bench_random_4k, bench_sequential, realistic_as};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};

fn open(path: &Path) -> Arc<dyn Layer> {
    let r = Resolver::mapped(ExternalPolicy::SameDir);
    let reg = Registry::empty().with(&vmsnap_vmdk::PLUGIN).unwrap();
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    (vmsnap_vmdk::PLUGIN.open)(Arc::new(FileLayer::open_mapped(path).unwrap()), &ctx).unwrap()
}

fn vmdk(c: &mut Criterion) {
    for (name, extra) in [
        ("vmdk-sparse", &[][..]),
        ("vmdk-stream", &["-o", "subformat=streamOptimized"][..]),
    ] {
        let path = realistic_as(256, "vmdk", extra);
        bench_open(c, name, || open(&path));
        let layer = open(&path);
        let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
        bench_probe(c, name, &vmsnap_vmdk::PLUGIN, &file);
        bench_sequential(c, name, &layer, 256 << 20);
        bench_random_4k(c, name, &layer);
    }
}

criterion_group!(benches, vmdk);
criterion_main!(benches);
