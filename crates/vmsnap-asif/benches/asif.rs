//! ASIF: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image written in the format (the measurements every disk format's bench makes).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_file, cached_image, realistic_raw};

fn asif(c: &mut Criterion) {
    // qemu-img does not write ASIF: corpus/asif/make.sh converts the raw image (1 MiB
    // chunks, Apple's geometry; chunks of zeros left unwritten).
    let raw = realistic_raw(256);
    let path = cached_image("realistic-256m.asif", |p| {
        vmsnap_testkit::run(
            Command::new("bash")
                .arg(vmsnap_testkit::workspace_root().join("corpus/asif/make.sh"))
                .arg(&raw)
                .arg(p),
        );
    });
    bench_file(c, "asif", &vmsnap_asif::PLUGIN, &path);
}

criterion_group!(benches, asif);
criterion_main!(benches);
