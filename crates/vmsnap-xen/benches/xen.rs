//! xen: open, sequential 1 MiB reads, random 4 KiB reads and probe on an HVM dump-core
//! whose 65536 pages are the 256 MiB realistic image (pfn = page, one run), written by the
//! crate's builder; the same image as the ELF reader's bench (benches/benches/elf.rs).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::BufWriter;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_file, cached_image, realistic_raw};
use vmsnap_core::{FileLayer, Layer};
use vmsnap_xen::builder::{write, Kind, Options};

fn xen(c: &mut Criterion) {
    let raw = realistic_raw(256);
    let path = cached_image("realistic-256m.xen", |p| {
        let mem: Arc<dyn Layer> = Arc::new(FileLayer::open(&raw).unwrap());
        let mut out = BufWriter::new(std::fs::File::create(p).unwrap());
        write(mem.as_ref(), &[], &Options::new(Kind::Hvm), &mut out).unwrap();
    });
    bench_file(c, "xen", &vmsnap_xen::PLUGIN, &path);
}

criterion_group!(benches, xen);
criterion_main!(benches);
