//! vma: open (header and the whole extent scan), sequential 1 MiB reads and 20k random
//! 4 KiB reads of the device (`disk:drive-scsi0`), and probe, on the 256 MiB realistic
//! image written as a one-device VMA archive by `corpus/vma/make.sh RAW OUT`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{
    bench_open, bench_probe, bench_random_4k, bench_sequential, open_with, realistic_by_recipe,
};
use vmsnap_core::Layer;

fn vma(c: &mut Criterion) {
    let path = realistic_by_recipe(256, "vma", "vma");
    let plugin = &vmsnap_vma::PLUGIN;
    bench_open(c, "vma", || open_with(plugin, &path));
    let archive = open_with(plugin, &path);
    let disk: Arc<dyn Layer> = vmsnap_testkit::child(&*archive, "disk:drive-scsi0");
    bench_sequential(c, "vma", &disk, 256 << 20);
    bench_random_4k(c, "vma", &disk);
    bench_probe(c, "vma", plugin, &archive);
}

criterion_group!(benches, vma);
criterion_main!(benches);
