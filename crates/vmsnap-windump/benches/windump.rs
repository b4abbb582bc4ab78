//! windump: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image written as crash dumps by the crate's builder: a 64-bit full dump (one
//! run) and a 64-bit bitmap dump holding only the image's data extents (the holes of the
//! sparse image are absent pages, so the bitmap has many runs).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_file, cached_image, realistic_raw};
use vmsnap_core::{ExtentKind, FileLayer, Layer};
use vmsnap_windump::builder::{page_runs, write, Kind, Spec};
use vmsnap_windump::Width;

fn dump(name: &str, kind: Kind, sparse: bool) -> std::path::PathBuf {
    let raw = realistic_raw(256);
    cached_image(name, |p| {
        let mem = FileLayer::open(&raw).unwrap();
        let ranges: Vec<(u64, u64)> = if sparse {
            mem.extents(0..mem.len())
                .unwrap()
                .into_iter()
                .filter(|e| e.kind == ExtentKind::Data)
                .map(|e| (e.offset, e.len))
                .collect()
        } else {
            vec![(0, mem.len())]
        };
        let mut f = std::io::BufWriter::new(std::fs::File::create(p).unwrap());
        let spec = Spec::new(Width::Bits64, kind, 0x1ab000, false);
        write(&mem, &page_runs(&ranges), &spec, &mut f).unwrap();
        f.flush().unwrap();
    })
}

fn windump(c: &mut Criterion) {
    let full = dump("realistic-256m-full.windump", Kind::Full, false);
    bench_file(c, "windump", &vmsnap_windump::PLUGIN, &full);
    let bitmap = dump("realistic-256m-bitmap.windump", Kind::BitmapFull, true);
    bench_file(c, "windump-bitmap", &vmsnap_windump::PLUGIN, &bitmap);
}

criterion_group!(benches, windump);
criterion_main!(benches);
