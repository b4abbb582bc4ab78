//! Shared criterion helpers: every format's bench file opens its sample and calls these,
//! so all formats are measured the same way (open, sequential 1 MiB reads, 20k seeded
//! random 4 KiB reads, probe). A plain format's bench is one call: [`bench_disk`] when
//! qemu-img writes the format, [`bench_file`] on an image made otherwise. The benches of
//! formats added since `cargo xtask new-format` live in their own crate
//! (`crates/vmsnap-<format>/benches/`); the older ones are in `benches/benches/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use vmsnap_core::{FileLayer, Layer, OpenCtx, Options, Plugin, Registry, Resolver, Sniff};
use vmsnap_testkit::image::Rng;

/// Where benches keep generated images (`target/bench-data`).
pub fn data_dir() -> PathBuf {
    let d = vmsnap_testkit::workspace_root()
        .join("target")
        .join("bench-data");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Path of a generated bench image `name`, made by `make` on first use.
pub fn cached_image(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let p = data_dir().join(name);
    if !p.exists() {
        let tmp = data_dir().join(format!("{name}.tmp"));
        make(&tmp);
        std::fs::rename(&tmp, &p).unwrap();
    }
    p
}

/// A realistic raw image of `mib` MiB (see [`vmsnap_testkit::image`]).
pub fn realistic_raw(mib: u64) -> PathBuf {
    cached_image(&format!("realistic-{mib}m.raw"), |p| {
        vmsnap_testkit::image::write_realistic_raw(p, mib, 42).unwrap()
    })
}

/// Converts the realistic raw image to `format` with qemu-img (`opts` as for `-o`).
pub fn realistic_as(mib: u64, format: &str, extra: &[&str]) -> PathBuf {
    let raw = realistic_raw(mib);
    let tag = extra.join("_").replace(['=', ',', ' '], "-");
    cached_image(&format!("realistic-{mib}m-{tag}.{format}"), |p| {
        vmsnap_testkit::run(
            std::process::Command::new("qemu-img")
                .args(["convert", "-O", format])
                .args(extra)
                .arg(&raw)
                .arg(p),
        );
    })
}

/// The realistic raw image of `mib` MiB made into `realistic-<mib>m.<ext>` by the format's
/// own sample recipe, `corpus/<format>/make.sh RAW OUT` (for formats qemu-img does not
/// write: the recipe runs the format's real tool, or writes it by its documented layout).
pub fn realistic_by_recipe(mib: u64, format: &str, ext: &str) -> PathBuf {
    let raw = realistic_raw(mib);
    let root = vmsnap_testkit::workspace_root();
    cached_image(&format!("realistic-{mib}m.{ext}"), |p| {
        vmsnap_testkit::run(
            std::process::Command::new("bash")
                .arg(root.join("corpus").join(format).join("make.sh"))
                .arg(&raw)
                .arg(p)
                .current_dir(&root),
        );
    })
}

/// Reads every `(start, len)` span of `layer` in pieces of `buf`'s size: what the
/// whole-guest benches time.
pub fn read_spans(layer: &dyn Layer, spans: &[(u64, u64)], buf: &mut [u8]) {
    for &(start, len) in spans {
        let mut at = start;
        while at < start + len {
            let n = (start + len - at).min(buf.len() as u64) as usize;
            layer.read_at(at, &mut buf[..n]).unwrap();
            at += n as u64;
        }
    }
}

/// Benches `open` of an image (the closure does the whole open).
pub fn bench_open(c: &mut Criterion, name: &str, open: impl Fn() -> Arc<dyn Layer>) {
    c.bench_function(&format!("{name}/open"), |b| b.iter(&open));
}

/// Benches sequential 1 MiB reads over the first `max` bytes of `layer`.
pub fn bench_sequential(c: &mut Criterion, name: &str, layer: &Arc<dyn Layer>, max: u64) {
    let len = layer.len().min(max);
    let mut g = c.benchmark_group(format!("{name}/sequential"));
    g.throughput(Throughput::Bytes(len));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function(BenchmarkId::from_parameter("1MiB"), |b| {
        let mut buf = vec![0u8; 1 << 20];
        b.iter(|| {
            let mut off = 0;
            while off < len {
                let n = (len - off).min(buf.len() as u64) as usize;
                layer.read_at(off, &mut buf[..n]).unwrap();
                off += n as u64;
            }
        })
    });
    g.finish();
}

/// Benches 20k seeded random 4 KiB reads (4 KiB-aligned) over `layer`.
pub fn bench_random_4k(c: &mut Criterion, name: &str, layer: &Arc<dyn Layer>) {
    const N: u64 = 20_000;
    let pages = (layer.len() / 4096).max(1);
    let mut rng = Rng::new(1234);
    let offsets: Vec<u64> = (0..N).map(|_| rng.below(pages) * 4096).collect();
    let mut g = c.benchmark_group(format!("{name}/random-4k"));
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function(BenchmarkId::from_parameter("20k"), |b| {
        let mut buf = [0u8; 4096];
        b.iter(|| {
            for &o in &offsets {
                let n = (layer.len() - o).min(4096) as usize;
                layer.read_at(o, &mut buf[..n]).unwrap();
            }
        })
    });
    g.finish();
}

/// Benches a plugin's probe on the head and tail of `layer`.
pub fn bench_probe(c: &mut Criterion, name: &str, plugin: &Plugin, layer: &Arc<dyn Layer>) {
    let sniff = Sniff::read(layer.as_ref()).unwrap();
    c.bench_function(&format!("{name}/probe"), |b| {
        b.iter(|| (plugin.probe)(&sniff.window(layer.as_ref())))
    });
}

/// Opens `path` with `plugin` alone (a one-plugin registry, the library's deny policy), over
/// a memory mapping: what the CLI and embedders reading images use for random access.
pub fn open_with(plugin: &'static Plugin, path: &Path) -> Arc<dyn Layer> {
    let reg = Registry::empty().with(plugin).unwrap();
    let r = Resolver::default();
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open_mapped(path).unwrap());
    (plugin.open)(lower, &ctx).unwrap()
}

/// The standard bench of a file format: open `path` with `plugin` alone (over a memory
/// mapping, external files denied), then sequential 1 MiB reads of up to 256 MiB, 20k
/// random 4 KiB reads and the probe, all named `name/…`.
pub fn bench_file(c: &mut Criterion, name: &str, plugin: &'static Plugin, path: &Path) {
    bench_open(c, name, || open_with(plugin, path));
    let layer = open_with(plugin, path);
    bench_sequential(c, name, &layer, 256 << 20);
    bench_random_4k(c, name, &layer);
    bench_probe(c, name, plugin, &layer);
}

/// The standard disk-format bench ([`bench_file`]) on the 256 MiB realistic image
/// converted by qemu-img to `format` (with `extra` options).
pub fn bench_disk(
    c: &mut Criterion,
    name: &str,
    plugin: &'static Plugin,
    format: &str,
    extra: &[&str],
) {
    bench_file(c, name, plugin, &realistic_as(256, format, extra));
}
