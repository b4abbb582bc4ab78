//! VDI: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image converted by qemu-img.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};

fn vdi(c: &mut Criterion) {
    vmsnap_benches::bench_disk(c, "vdi", &vmsnap_vdi::PLUGIN, "vdi", &[]);
}

criterion_group!(benches, vdi);
criterion_main!(benches);
