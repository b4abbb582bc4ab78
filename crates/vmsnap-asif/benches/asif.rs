//! ASIF: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image written in the format (the measurements every disk format's bench makes).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_file, realistic_by_recipe};

fn asif(c: &mut Criterion) {
    // qemu-img does not write ASIF: corpus/asif/make.sh converts the raw image (1 MiB
    // chunks, Apple's geometry; chunks of zeros left unwritten).
    let path = realistic_by_recipe(256, "asif", "asif");
    bench_file(c, "asif", &vmsnap_asif::PLUGIN, &path);
}

criterion_group!(benches, asif);
criterion_main!(benches);
