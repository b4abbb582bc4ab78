//! VHDX: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image converted by qemu-img to a dynamic VHDX.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};

fn vhdx(c: &mut Criterion) {
    vmsnap_benches::bench_disk(c, "vhdx", &vmsnap_vhdx::PLUGIN, "vhdx", &[]);
}

criterion_group!(benches, vhdx);
criterion_main!(benches);
