//! ovf: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
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

fn ovf(c: &mut Criterion) {
    // TODO(new-format): when qemu-img writes the format, this whole function is
    // `vmsnap_benches::bench_disk(c, "ovf", &vmsnap_ovf::PLUGIN, "<format>", &[])`.
    let raw = realistic_raw(256);
    let path = cached_image("realistic-256m.ovf", |p| {
        vmsnap_testkit::run(
            Command::new("bash")
                .arg(vmsnap_testkit::workspace_root().join("corpus/ovf/make.sh"))
                .arg(&raw)
                .arg(p),
        );
    });
    bench_file(c, "ovf", &vmsnap_ovf::PLUGIN, &path);
}

criterion_group!(benches, ovf);
criterion_main!(benches);
