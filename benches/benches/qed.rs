//! QED: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
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
    let reg = Registry::empty().with(&vmsnap_qed::PLUGIN).unwrap();
    let r = Resolver::default();
    let o = Options::new();
    let ctx = OpenCtx {
        resolver: &r,
        registry: &reg,
        depth: 0,
        options: &o,
    };
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(path).unwrap());
    (vmsnap_qed::PLUGIN.open)(lower, &ctx).unwrap()
}

fn qed(c: &mut Criterion) {
    let path = realistic_as(256, "qed", &[]);
    bench_open(c, "qed", || open(&path));
    let layer = open(&path);
    bench_sequential(c, "qed", &layer, 256 << 20);
    bench_random_4k(c, "qed", &layer);
    bench_probe(c, "qed", &vmsnap_qed::PLUGIN, &layer);
}

criterion_group!(benches, qed);
criterion_main!(benches);
