//! The base file layer: the ceiling every format is compared against.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_open, bench_random_4k, bench_sequential, realistic_raw};
use vmsnap_core::{FileLayer, Layer};

fn file(c: &mut Criterion) {
    let path = realistic_raw(256);
    bench_open(c, "file", || {
        Arc::new(FileLayer::open(&path).unwrap()) as Arc<dyn Layer>
    });
    let layer: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    bench_sequential(c, "file", &layer, 256 << 20);
    bench_random_4k(c, "file", &layer);
    let mapped: Arc<dyn Layer> = Arc::new(FileLayer::open_mapped(&path).unwrap());
    bench_sequential(c, "file-mmap", &mapped, 256 << 20);
    bench_random_4k(c, "file-mmap", &mapped);
}

criterion_group!(benches, file);
criterion_main!(benches);
