//! VHDX: a 256 MiB realistic image converted by qemu-img to a dynamic VHDX.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_open, bench_probe, bench_random_4k, bench_sequential, realistic_as};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};

fn vhdx(c: &mut Criterion) {
    let path = realistic_as(256, "vhdx", &[]);
    let reg = Registry::empty().with(&vmsnap_vhdx::PLUGIN).unwrap();
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let ctx = OpenCtx::new(&resolver, &reg, &options);
    let open = || {
        let file: Arc<dyn Layer> = Arc::new(FileLayer::open_mapped(&path).unwrap());
        (vmsnap_vhdx::PLUGIN.open)(file, &ctx).unwrap()
    };
    bench_open(c, "vhdx", open);
    let layer = open();
    bench_sequential(c, "vhdx", &layer, 256 << 20);
    bench_random_4k(c, "vhdx", &layer);
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    bench_probe(c, "vhdx", &vmsnap_vhdx::PLUGIN, &file);
}

criterion_group!(benches, vhdx);
criterion_main!(benches);
