//! LiME: open of a sparse 4 GiB file, sequential and random reads of a 256 MiB file whose
//! ranges hold the realistic image (four ranges with gaps, as LiME writes System RAM).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{
    bench_open, bench_probe, bench_random_4k, bench_sequential, cached_image, realistic_raw,
};
use vmsnap_core::{FileLayer, Layer};
use vmsnap_lime::Lime;

fn hdr(start: u64, len: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(32);
    h.extend_from_slice(&0x4C69_4D45u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&start.to_le_bytes());
    h.extend_from_slice(&(start + len - 1).to_le_bytes());
    h.extend_from_slice(&[0u8; 8]);
    h
}

fn lime_256m(p: &Path) {
    let raw = std::fs::read(realistic_raw(256)).unwrap();
    let mut f = std::fs::File::create(p).unwrap();
    let quarter = raw.len() / 4;
    for (i, chunk) in raw.chunks(quarter).enumerate() {
        // 1 MiB gaps between the ranges.
        let start = i as u64 * (quarter as u64 + (1 << 20));
        f.write_all(&hdr(start, chunk.len() as u64)).unwrap();
        f.write_all(chunk).unwrap();
    }
}

fn lime_4g_sparse(p: &Path) {
    let f = std::fs::File::create(p).unwrap();
    let low = 3u64 << 30;
    let high = 1u64 << 30;
    (&f).write_all(&hdr(0x1000, low - 0x1000)).unwrap();
    let second = 32 + low - 0x1000;
    f.set_len(second).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&hdr(4 << 30, high), second).unwrap();
    f.set_len(second + 32 + high).unwrap();
}

fn lime(c: &mut Criterion) {
    let big = cached_image("lime-4g-sparse.lime", lime_4g_sparse);
    bench_open(c, "lime/4g-sparse", || {
        let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(&big).unwrap());
        Arc::new(Lime::open_layer(lower).unwrap()) as Arc<dyn Layer>
    });
    let path = cached_image("lime-256m.lime", lime_256m);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    let layer: Arc<dyn Layer> = Arc::new(Lime::open_layer(lower.clone()).unwrap());
    bench_sequential(c, "lime", &layer, 256 << 20);
    bench_random_4k(c, "lime", &layer);
    bench_probe(c, "lime", &vmsnap_lime::PLUGIN, &lower);
}

criterion_group!(benches, lime);
criterion_main!(benches);
