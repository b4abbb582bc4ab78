//! Parallels: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image converted by qemu-img.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};

fn parallels(c: &mut Criterion) {
    vmsnap_benches::bench_disk(c, "parallels", &vmsnap_parallels::PLUGIN, "parallels", &[]);
}

criterion_group!(benches, parallels);
criterion_main!(benches);
