//! VHD: a 256 MiB realistic image converted by qemu-img to a dynamic VHD.
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

fn vhd(c: &mut Criterion) {
    let path = realistic_as(256, "vpc", &["-o", "subformat=dynamic"]);
    let reg = Registry::empty().with(&vmsnap_vhd::PLUGIN).unwrap();
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let ctx = OpenCtx::new(&resolver, &reg, &options);
    let open = || {
        let file: Arc<dyn Layer> = Arc::new(FileLayer::open_mapped(&path).unwrap());
        (vmsnap_vhd::PLUGIN.open)(file, &ctx).unwrap()
    };
    bench_open(c, "vhd", open);
    let layer = open();
    bench_sequential(c, "vhd", &layer, 256 << 20);
    bench_random_4k(c, "vhd", &layer);
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    bench_probe(c, "vhd", &vmsnap_vhd::PLUGIN, &file);
}

criterion_group!(benches, vhd);
criterion_main!(benches);
