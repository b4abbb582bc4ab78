//! Parallels: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image converted by qemu-img.
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
use vmsnap_core::{FileLayer, Layer, OpenCtx, Options, Registry, Resolver};

fn open(path: &std::path::Path) -> Arc<dyn Layer> {
    let reg = Registry::empty().with(&vmsnap_parallels::PLUGIN).unwrap();
    let r = Resolver::default();
    let o = Options::new();
    let ctx = OpenCtx {
        resolver: &r,
        registry: &reg,
        depth: 0,
        options: &o,
    };
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(path).unwrap());
    (vmsnap_parallels::PLUGIN.open)(lower, &ctx).unwrap()
}

fn parallels(c: &mut Criterion) {
    let path = realistic_as(256, "parallels", &[]);
    bench_open(c, "parallels", || open(&path));
    let layer = open(&path);
    bench_sequential(c, "parallels", &layer, 256 << 20);
    bench_random_4k(c, "parallels", &layer);
    bench_probe(c, "parallels", &vmsnap_parallels::PLUGIN, &layer);
}

criterion_group!(benches, parallels);
criterion_main!(benches);
