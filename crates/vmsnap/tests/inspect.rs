//! Inspection: streaming equals random access on every corpus sample and on large images
//! in every format qemu-img writes, memory stays bounded, and polyglots are caught.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap::core::{FileLayer, Layer, MemSource};
use vmsnap::inspect::{inspect, CheckOptions, Inspector, Overall, Report, MAX_RETAINED};
use vmsnap_testkit::image::Rng;
use vmsnap_testkit::{corpus_dir, run, scratch_dir};

fn random_access(path: &Path, opts: &CheckOptions) -> Report {
    let reg = vmsnap::registry().unwrap();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(path).unwrap());
    inspect(file, &reg, opts)
}

/// Random access to the same bytes without a file name (a stream has none, so formats
/// recognised by their name — a `.vmem` — are not expected to be found).
fn random_access_nameless(path: &Path, opts: &CheckOptions) -> Report {
    let reg = vmsnap::registry().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    inspect(file, &reg, opts)
}

/// Feeds `path` in chunks of random sizes from 1 byte to 1 MiB.
fn streamed(path: &Path, seed: u64, opts: &CheckOptions) -> (Report, usize) {
    let reg = vmsnap::registry().unwrap();
    let data = std::fs::read(path).unwrap();
    let mut rng = Rng::new(seed);
    let mut ins = Inspector::with_hints(vmsnap::stream_hints());
    let mut pos = 0;
    let mut peak = 0;
    while pos < data.len() {
        let n = match rng.below(4) {
            0 => 1 + rng.below(16),
            1 => 1 + rng.below(4096),
            _ => 1 + rng.below(1 << 20),
        } as usize;
        let end = (pos + n).min(data.len());
        ins.feed(&data[pos..end]);
        peak = peak.max(ins.retained());
        pos = end;
    }
    (ins.finish(&reg, opts), peak)
}

fn samples() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in std::fs::read_dir(corpus_dir()).unwrap() {
        let d = d.unwrap().path();
        if !d.is_dir() || d.ends_with("golden") {
            continue;
        }
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
            if f.is_file() && !matches!(ext, "sh" | "txt" | "md" | "json" | "py" | "tsv") {
                v.push(f);
            }
        }
    }
    v.sort();
    v
}

#[test]
fn streaming_equals_random_access_on_every_corpus_sample() {
    let opts = CheckOptions::default();
    let all = samples();
    assert!(!all.is_empty());
    for (i, s) in all.iter().enumerate() {
        let want = random_access_nameless(s, &opts);
        let (got, peak) = streamed(s, i as u64 + 1, &opts);
        assert!(peak <= MAX_RETAINED, "{}: held {peak} bytes", s.display());
        if want.verdict == Overall::Error {
            continue; // samples that are not images on their own (extents, parents)
        }
        assert_eq!(got.format, want.format, "{}", s.display());
        assert_eq!(got.virtual_size, want.virtual_size, "{}", s.display());
        assert_eq!(got.detected, want.detected, "{}", s.display());
        let ids = |r: &Report| {
            r.rules
                .iter()
                .map(|x| (x.id.clone(), x.verdict))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&got), ids(&want), "{}", s.display());
    }
}

/// A 1 GiB raw image with data at the start, middle and end, converted by qemu-img.
fn large(dir: &Path, format: &str, extra: &[&str]) -> PathBuf {
    let raw = dir.join("big.raw");
    if !raw.exists() {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&raw).unwrap();
        f.set_len(1 << 30).unwrap();
        let mut rng = Rng::new(5);
        let mut buf = vec![0u8; 8 << 20];
        for off in [0u64, 500 << 20, (1 << 30) - (8 << 20)] {
            rng.fill(&mut buf);
            f.write_all_at(&buf, off).unwrap();
        }
    }
    if format == "raw" {
        return raw;
    }
    let out = dir.join(format!(
        "big-{}.{format}",
        extra.join("-").replace([',', '='], "_")
    ));
    run(std::process::Command::new("qemu-img")
        .args(["convert", "-O", format])
        .args(extra)
        .arg(&raw)
        .arg(&out));
    out
}

#[cfg(unix)]
#[test]
fn streaming_equals_random_access_on_large_images_with_bounded_memory() {
    let dir = scratch_dir("inspect-large");
    let registered = vmsnap::expected_plugin_names();
    let mut cases: Vec<(&str, Vec<&str>, &str)> = vec![("raw", vec![], "raw")];
    for (fmt, extra, plugin) in [
        ("qcow2", vec![], "qcow2"),
        ("vmdk", vec!["-o", "subformat=streamOptimized"], "vmdk"),
        ("vpc", vec!["-o", "subformat=fixed"], "vhd"),
        ("vhdx", vec![], "vhdx"),
        ("vdi", vec![], "vdi"),
        ("qed", vec![], "qed"),
        ("parallels", vec![], "parallels"),
    ] {
        if registered.contains(&plugin) {
            cases.push((fmt, extra, plugin));
        }
    }
    for (fmt, extra, plugin) in cases {
        let p = large(&dir, fmt, &extra);
        let opts = CheckOptions::default();
        let want = random_access(&p, &opts);
        assert_eq!(want.format, plugin, "{fmt}: {want:?}");
        let (got, peak) = streamed(&p, 9, &opts);
        assert!(peak <= MAX_RETAINED, "{fmt}: held {peak} bytes");
        assert_eq!(got, want, "{fmt}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn iso_gpt(iso: bool, gpt: bool) -> Vec<u8> {
    let mut v = vec![0u8; 1 << 20];
    if gpt {
        v[446 + 4] = 0xEE;
        v[446 + 1..446 + 4].copy_from_slice(&[0, 2, 0]);
        v[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        v[510] = 0x55;
        v[511] = 0xAA;
        v[512..520].copy_from_slice(b"EFI PART");
    }
    if iso {
        v[32768] = 1;
        v[32769..32774].copy_from_slice(b"CD001");
        v[32774] = 1;
    }
    v
}

#[test]
fn hybrid_iso_gpt_is_ambiguous_unless_allowed() {
    let dir = scratch_dir("inspect-poly");
    let p = write(&dir, "hybrid.iso", &iso_gpt(true, true));
    let r = random_access(&p, &CheckOptions::default());
    assert_eq!(r.detected, ["iso", "gpt"]);
    assert_eq!(r.verdict, Overall::Unsafe);
    assert!(r
        .rules
        .iter()
        .any(|x| x.id == "multiple_formats" && x.reason == "Multiple formats detected: iso, gpt"));
    let allowed = CheckOptions {
        allow: vec!["iso+gpt".into()],
        ..Default::default()
    };
    assert_eq!(random_access(&p, &allowed).verdict, Overall::Safe);
    let p = write(&dir, "plain.iso", &iso_gpt(true, false));
    let r = random_access(&p, &CheckOptions::default());
    assert_eq!((r.format.as_str(), r.verdict), ("iso", Overall::Safe));
    let r = random_access(
        &p,
        &CheckOptions {
            expected_format: Some("raw".into()),
            ..Default::default()
        },
    );
    assert_eq!(r.verdict, Overall::Unsafe);
    assert!(r.rules.iter().any(|x| x.id == "format_mismatch"));
    // A GPT whose protective MBR is malformed fails G2.
    let mut bad = iso_gpt(false, true);
    bad[446 + 8] = 7;
    let r = random_access(&write(&dir, "bad.gpt", &bad), &CheckOptions::default());
    assert_eq!(r.verdict, Overall::Unsafe);
    assert!(r
        .rules
        .iter()
        .any(|x| x.id == "mbr" && x.reason.contains("protective")));
    std::fs::remove_dir_all(&dir).ok();
}
