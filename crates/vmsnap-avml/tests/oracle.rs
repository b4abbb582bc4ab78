//! AVML samples written by Microsoft's own converter (`avml convert`, corpus/avml/make.sh)
//! from the LiME samples of corpus/lime: every byte of memory reads as in the source LiME
//! file (read by vmsnap's LiME reader), and as in the LiME file `avml convert` decodes the
//! sample back into (avml's own snappy decoder). Volatility 3's AVML layer is the third
//! reader: crates/vmsnap-python/tests/test_volatility_avml.py.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{avml_convert, open_avml, open_lime, same_memory};
use flate2::read::GzDecoder;
use serde_json::json;
use vmsnap_avml::Version;
use vmsnap_core::{ExtentKind, Layer};
use vmsnap_testkit::corpus;

fn guest_lime() -> Vec<u8> {
    let mut v = Vec::new();
    std::io::Read::read_to_end(
        &mut GzDecoder::new(std::fs::File::open(corpus("lime/guest.lime.gz")).unwrap()),
        &mut v,
    )
    .unwrap();
    v
}

/// The LiME range of `lime` that starts at `start`, header included (as make.sh cuts it).
fn lime_range(lime: &[u8], start: u64) -> Vec<u8> {
    let mut at = 0usize;
    while at < lime.len() {
        let s = u64::from_le_bytes(lime[at + 8..at + 16].try_into().unwrap());
        let e = u64::from_le_bytes(lime[at + 16..at + 24].try_into().unwrap());
        let size = 32 + (e - s + 1) as usize;
        if s == start {
            return lime[at..at + size].to_vec();
        }
        at += size;
    }
    panic!("no LiME range at {start:#x}");
}

/// Each sample with the LiME file it was made from.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let small = std::fs::read(corpus("lime/small.lime")).unwrap();
    let guest = guest_lime();
    let mixed = [small.clone(), lime_range(&guest, 0xfffc_0000)].concat();
    let lime_first = [small.clone(), lime_range(&guest, 0xfffc_0000)].concat();
    vec![
        ("small.avml", small),
        ("guest.avml", guest),
        ("mixed.avml", mixed),
        ("lime-first.avml", lime_first),
    ]
}

#[test]
fn every_sample_holds_the_memory_of_its_source_lime() {
    for (name, source) in samples() {
        let avml = open_avml(&corpus(&format!("avml/{name}")));
        let lime = open_lime(source);
        let n = same_memory(&avml, &lime, name);
        assert!(n >= 8192, "{name}: {n} bytes compared");
    }
}

#[test]
fn every_sample_reads_as_avml_convert_decodes_it() {
    let dir = vmsnap_testkit::scratch_dir("avml-round-trip");
    for (name, _) in samples() {
        let path = corpus(&format!("avml/{name}"));
        let out = dir.join(format!("{name}.lime"));
        avml_convert(
            &["--source-format", "lime_compressed", "--format", "lime"],
            &path,
            &out,
        );
        let theirs = open_lime(std::fs::read(&out).unwrap());
        let avml = open_avml(&path);
        // avml writes one LiME range per AVML range: the same ranges, decoded.
        let ours: Vec<(u64, u64)> = avml
            .ranges()
            .iter()
            .map(|r| (r.header.start, r.header.end_inclusive))
            .collect();
        let back: Vec<(u64, u64)> = theirs
            .ranges()
            .iter()
            .map(|r| (r.start, r.end_inclusive))
            .collect();
        assert_eq!(ours, back, "{name}");
        same_memory(&avml, &theirs, name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn describe_reports_the_ranges_avml_wrote() {
    let avml = open_avml(&corpus("avml/guest.avml"));
    // avml skips the all-zero ranges below 0xe0000 and splits 1 MiB..32 MiB in 16 MiB
    // blocks; every range is compressed.
    let spans: Vec<(u64, u64, Version)> = avml
        .ranges()
        .iter()
        .map(|r| (r.header.start, r.header.end_inclusive, r.header.version))
        .collect();
    assert_eq!(
        spans,
        vec![
            (0xe_0000, 0xf_ffff, Version::Compressed),
            (0x10_0000, 0x10f_ffff, Version::Compressed),
            (0x110_0000, 0x1ff_ffff, Version::Compressed),
            (0xfffc_0000, 0xffff_ffff, Version::Compressed),
            (0x1_0000_0000, 0x1_001f_ffff, Version::Compressed),
        ]
    );
    let d = avml.describe();
    assert_eq!(d["range_count"], json!(5));
    assert_eq!(d["compressed_ranges"], json!(5));
    assert_eq!(d["virtual_size"], json!(0x1_0020_0000u64));
    let data: u64 = 0x2_0000 + 0x1f0_0000 + 0x4_0000 + 0x20_0000;
    assert_eq!(d["mapped_bytes"], json!(data));
    assert_eq!(d["compressed_data_bytes"], json!(data));
    // The file is the headers, the streams and their 8-byte trailers.
    let file = std::fs::metadata(corpus("avml/guest.avml")).unwrap().len();
    let stored = d["compressed_stream_bytes"].as_u64().unwrap();
    assert_eq!(stored + 5 * (32 + 8), file);
    let ratio = d["compression_ratio"].as_f64().unwrap();
    assert!(
        (ratio - data as f64 / stored as f64).abs() < 0.01,
        "{ratio}"
    );
    // Gaps are unallocated, ranges data.
    let e = avml.extents(0..avml.len()).unwrap();
    assert_eq!(e[0].kind, ExtentKind::Unallocated);
    assert_eq!((e[1].offset, e[1].kind), (0xe_0000, ExtentKind::Data));

    let mixed = open_avml(&corpus("avml/mixed.avml"));
    let v: Vec<Version> = mixed.ranges().iter().map(|r| r.header.version).collect();
    assert_eq!(v, vec![Version::Compressed, Version::Lime]);
    assert_eq!(mixed.describe()["lime_ranges"], json!(1));
}

#[test]
fn a_file_starting_with_a_lime_range_stacks_as_avml() {
    // The LiME reader refuses the AVML range; the stacker then opens it as AVML.
    let path = corpus("avml/lime-first.avml");
    let reg = vmsnap_core::Registry::empty()
        .with(&vmsnap_lime::PLUGIN)
        .unwrap()
        .with(&vmsnap_avml::PLUGIN)
        .unwrap();
    let resolver = vmsnap_core::Resolver::new(vmsnap_core::ExternalPolicy::SameDir);
    let options = vmsnap_core::Options::new();
    let file: Arc<dyn Layer> = Arc::new(vmsnap_core::FileLayer::open(&path).unwrap());
    let s = vmsnap_stack::Stacker::new(&reg, &resolver, &options).stack(file);
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(s.entries[s.main_top()].name, "avml");
}
