//! avml: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image written as AVML by Microsoft's converter (`corpus/avml/make.sh RAW
//! OUT`: `avml convert --source-format raw --format lime_compressed`); and, when the
//! real-guest test's image exists (target/avml-guest: the booted 256 MiB guest as AVML),
//! every present byte of it against the same addresses of its ELF core, per core.
//! `tools/avml-volatility-rate.py` times Volatility 3's AVML layer on that same file.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vmsnap_benches::{bench_file, open_with, read_spans, realistic_by_recipe};
use vmsnap_core::{ExtentKind, Layer};

fn avml(c: &mut Criterion) {
    let path = realistic_by_recipe(256, "avml", "avml");
    bench_file(c, "avml", &vmsnap_avml::PLUGIN, &path);
}

fn guest(c: &mut Criterion) {
    let root = vmsnap_testkit::workspace_root();
    let avml = root.join("target/avml-guest/guest.avml");
    let core = root.join("target/paging/pc-4level/core.elf");
    if !avml.is_file() || !core.is_file() {
        eprintln!("avml-guest: skipped (run the real_guest test first)");
        return;
    }
    let a: Arc<dyn Layer> = open_with(&vmsnap_avml::PLUGIN, &avml);
    let e: Arc<dyn Layer> = open_with(&vmsnap_elf::PLUGIN, &core);
    let spans: Vec<(u64, u64)> = a
        .extents(0..a.len())
        .unwrap()
        .into_iter()
        .filter(|x| x.kind == ExtentKind::Data)
        .map(|x| (x.offset, x.len))
        .collect();
    let total: u64 = spans.iter().map(|s| s.1).sum();
    let mut g = c.benchmark_group("avml-guest/present-bytes");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    let mut buf = vec![0u8; 1 << 20];
    g.bench_function("avml", |b| {
        b.iter(|| read_spans(a.as_ref(), &spans, &mut buf))
    });
    g.bench_function("elf", |b| {
        b.iter(|| read_spans(e.as_ref(), &spans, &mut buf))
    });
    g.finish();
}

criterion_group!(benches, avml, guest);
criterion_main!(benches);
