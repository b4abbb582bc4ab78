//! VHD: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image converted by qemu-img to a dynamic VHD.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};

fn vhd(c: &mut Criterion) {
    vmsnap_benches::bench_disk(
        c,
        "vhd",
        &vmsnap_vhd::PLUGIN,
        "vpc",
        &["-o", "subformat=dynamic"],
    );
}

criterion_group!(benches, vhd);
criterion_main!(benches);
