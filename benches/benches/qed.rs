//! QED: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image converted by qemu-img.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};

fn qed(c: &mut Criterion) {
    vmsnap_benches::bench_disk(c, "qed", &vmsnap_qed::PLUGIN, "qed", &[]);
}

criterion_group!(benches, qed);
criterion_main!(benches);
