//! Inspection: in-process detection plus safety check of small images (random access), and
//! streaming inspection of a 1 GiB image fed in 1 MiB chunks from memory, with every format
//! registered (what `vmsnap check` does).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vmsnap::inspect::{inspect, CheckOptions, Inspector};
use vmsnap_benches::realistic_as;
use vmsnap_core::{FileLayer, Layer, MemSource};

fn inspect_benches(c: &mut Criterion) {
    let reg = vmsnap::registry().unwrap();
    let opts = CheckOptions::default();
    let mut g = c.benchmark_group("inspect/random-access");
    for sample in [
        "qcow2/v3.qcow2",
        "vmdk/stream.vmdk",
        "vhd/fixed.vhd",
        "vdi/dynamic.vdi",
    ] {
        let path = vmsnap_testkit::corpus(sample);
        if !path.exists() {
            eprintln!("inspect bench: {sample} missing, skipped");
            continue;
        }
        // From the page cache through pread, as `vmsnap check FILE` reads.
        g.bench_function(BenchmarkId::from_parameter(sample), |b| {
            b.iter(|| {
                let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
                inspect(file, &reg, &opts)
            })
        });
    }
    g.finish();

    let image = realistic_as(1024, "qcow2", &[]);
    let bytes = std::fs::read(&image).unwrap();
    let mut g = c.benchmark_group("inspect/streaming");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::from_parameter("qcow2-1GiB-1MiB-chunks"), |b| {
        b.iter(|| {
            let mut ins = Inspector::with_hints(vmsnap::stream_hints());
            for chunk in bytes.chunks(1 << 20) {
                ins.feed(chunk);
            }
            let report = ins.finish(&reg, &opts);
            assert_eq!(report.format, "qcow2");
            report
        })
    });
    g.finish();
    // Random access on the same image held in memory, for comparison.
    let mem: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    c.bench_function("inspect/random-access/qcow2-1GiB-in-memory", |b| {
        b.iter(|| inspect(mem.clone(), &reg, &opts))
    });
}

criterion_group!(benches, inspect_benches);
criterion_main!(benches);
