//! Crafted hostile images: one per limit of §1.6 and per qcow2 bug of §5, each with the
//! expected error kind or finding rule. Built by patching real qemu-img output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{
    ErrorKind, ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver,
    Severity,
};
use vmsnap_qcow2::{Qcow2, PLUGIN};
use vmsnap_testkit::corpus;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(corpus(&format!("qcow2/{name}"))).unwrap()
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}
fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_be_bytes());
}
fn get64(b: &[u8], off: usize) -> u64 {
    u64::from_be_bytes(b[off..off + 8].try_into().unwrap())
}
fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(b[off..off + 4].try_into().unwrap())
}

fn try_open(b: Vec<u8>) -> vmsnap_core::Result<Qcow2> {
    let reg = Registry::empty().with(&PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    Qcow2::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(b)))), &ctx)
}

fn err_kind(b: Vec<u8>) -> (ErrorKind, String) {
    match try_open(b) {
        Ok(_) => panic!("opened, expected an error"),
        Err(e) => (e.kind(), e.to_string()),
    }
}

fn has_finding(img: &Qcow2, rule: &str, sev: Severity) -> bool {
    img.findings()
        .iter()
        .any(|f| f.rule == rule && f.severity == sev)
}

/// First L2 table offset of an image.
fn l2_of(b: &[u8]) -> usize {
    let l1 = get64(b, 40) as usize;
    (get64(b, l1) & 0x00FF_FFFF_FFFF_FE00) as usize
}

#[test]
fn huge_l1_is_refused() {
    let mut b = sample("v3.qcow2");
    put32(&mut b, 36, 0x1000_0000);
    let (k, m) = err_kind(b);
    assert_eq!(k, ErrorKind::LimitExceeded, "{m}");
}

#[test]
fn l1_too_small_for_the_disk_is_refused() {
    let mut b = sample("v3.qcow2");
    put64(&mut b, 24, 1 << 40);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
}

#[test]
fn l1_past_eof_unaligned_or_at_cluster_0_is_refused() {
    let mut b = sample("v3.qcow2");
    put64(&mut b, 40, 1 << 30);
    assert_eq!(err_kind(b).0, ErrorKind::Truncated);
    let mut b = sample("v3.qcow2");
    put64(&mut b, 40, 0x30008);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    let mut b = sample("v3.qcow2");
    put64(&mut b, 40, 0);
    let (k, m) = err_kind(b);
    assert_eq!(k, ErrorKind::Malformed);
    assert!(m.contains("cluster 0"), "{m}");
}

#[test]
fn refcount_table_limits() {
    let mut b = sample("v3.qcow2");
    put32(&mut b, 56, 0x10000);
    assert_eq!(err_kind(b).0, ErrorKind::LimitExceeded);
    let mut b = sample("v3.qcow2");
    put32(&mut b, 56, 0);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    let mut b = sample("v3.qcow2");
    put64(&mut b, 48, 0x10001);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    // Refcount table at cluster 0 (Launchpad #1728615) and past the end: findings.
    let mut b = sample("v3.qcow2");
    put64(&mut b, 48, 0);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::METADATA_OVERLAP,
        Severity::Unsafe
    ));
    let mut b = sample("v3.qcow2");
    put64(&mut b, 48, 1 << 30);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::TABLE_OUTSIDE_FILE,
        Severity::Unsafe
    ));
}

#[test]
fn snapshot_table_limits() {
    let mut b = sample("snapshots.qcow2");
    put32(&mut b, 60, 70_000);
    assert_eq!(err_kind(b).0, ErrorKind::LimitExceeded);
    let mut b = sample("snapshots.qcow2");
    put64(&mut b, 64, 1 << 30);
    assert_eq!(err_kind(b).0, ErrorKind::Truncated);
    let mut b = sample("snapshots.qcow2");
    put64(&mut b, 64, 0);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    let mut b = sample("snapshots.qcow2");
    let so = get64(&b, 64) as usize;
    put32(&mut b, so + 36, 1025);
    assert_eq!(err_kind(b).0, ErrorKind::LimitExceeded);
    // More entries than the file holds: a zeroed table in the last cluster.
    let mut b = sample("snapshots.qcow2");
    let last = b.len() - 4096;
    b[last..].fill(0);
    put64(&mut b, 64, last as u64);
    put32(&mut b, 60, 200);
    assert_eq!(err_kind(b).0, ErrorKind::Truncated);
}

#[test]
fn snapshot_table_over_64_mib_is_refused() {
    // 600 entries of 128 KiB each (maximal id and name): past 64 MiB.
    let mut b = sample("snapshots.qcow2");
    let so = get64(&b, 64) as usize;
    b.resize(so + (70 << 20), 0);
    let mut p = so;
    for _ in 0..600 {
        b[p + 12..p + 14].copy_from_slice(&0xFFFFu16.to_be_bytes());
        b[p + 14..p + 16].copy_from_slice(&0xFFFFu16.to_be_bytes());
        b[p + 36..p + 40].copy_from_slice(&0u32.to_be_bytes());
        p += (40usize + 2 * 0xFFFF).div_ceil(8) * 8;
        if p + 40 > b.len() {
            break;
        }
    }
    put32(&mut b, 60, 600);
    let (k, m) = err_kind(b);
    assert_eq!(k, ErrorKind::LimitExceeded, "{m}");
}

#[test]
fn bad_snapshot_l1_is_a_finding_and_fails_that_snapshot_only() {
    let mut b = sample("snapshots.qcow2");
    let so = get64(&b, 64) as usize;
    put64(&mut b, so, 1 << 30);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::TABLE_OUTSIDE_FILE,
        Severity::Unsafe
    ));
    let s = img.snapshot_disk("1").unwrap();
    let mut buf = [0u8; 512];
    assert_eq!(
        s.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    img.read_at(0, &mut buf).unwrap();
    // Huge snapshot L1.
    let mut b = sample("snapshots.qcow2");
    put32(&mut b, so + 8, 0x0800_0000);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::TABLE_SIZE,
        Severity::Unsafe
    ));
    let s = img.snapshot_disk("1").unwrap();
    assert_eq!(
        s.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::LimitExceeded
    );
    // Snapshot L1 on top of the active L1: overlap.
    let mut b = sample("snapshots.qcow2");
    let l1 = get64(&b, 40);
    put64(&mut b, so, l1);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::METADATA_OVERLAP,
        Severity::Unsafe
    ));
}

#[test]
fn cluster_bits_limits() {
    for cb in [8u32, 22, 63] {
        let mut b = sample("v3.qcow2");
        put32(&mut b, 20, cb);
        // QEMU's limit, reported as one (check calls it unsafe, naming the limit).
        assert_eq!(err_kind(b).0, ErrorKind::LimitExceeded, "cluster_bits {cb}");
    }
    // Extended L2 needs at least 16 KiB clusters.
    let mut b = sample("snapshots.qcow2");
    let v = get64(&b, 72) | 0x10;
    put64(&mut b, 72, v);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
}

#[test]
fn unknown_incompatible_bits_and_versions_are_refused() {
    let mut b = sample("v3.qcow2");
    put64(&mut b, 72, 1 << 20);
    let (k, m) = err_kind(b);
    assert_eq!(k, ErrorKind::Unsupported);
    assert!(m.contains("bit 20"), "{m}");
    let mut b = sample("v3.qcow2");
    put32(&mut b, 4, 4);
    assert_eq!(err_kind(b).0, ErrorKind::Unsupported);
    let mut b = sample("v3.qcow2");
    put32(&mut b, 4, 0);
    let w = vmsnap_core::SniffWindow::of_bytes(&b[..4096], &[], b.len() as u64);
    assert!(!(PLUGIN.probe)(&w).is_yes());
}

#[test]
fn compression_type_must_agree_with_bit_3() {
    let mut b = sample("zlib.qcow2");
    b[104] = 1;
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    let mut b = sample("zlib.qcow2");
    let v = get64(&b, 72) | 8;
    put64(&mut b, 72, v);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    let mut b = sample("zstd.qcow2");
    b[104] = 2;
    assert_eq!(err_kind(b).0, ErrorKind::Unsupported);
}

#[test]
fn header_length_and_backing_name_limits() {
    for hl in [100u32, 108, 1 << 20] {
        let mut b = sample("v3.qcow2");
        put32(&mut b, 100, hl);
        assert_eq!(err_kind(b).0, ErrorKind::Malformed, "header_length {hl}");
    }
    let mut b = sample("v3.qcow2");
    put64(&mut b, 8, 0x200);
    put32(&mut b, 16, 1024);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    let mut b = sample("v3.qcow2");
    put64(&mut b, 8, 0xFFFF);
    put32(&mut b, 16, 100);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    let mut b = sample("v3.qcow2");
    put64(&mut b, 8, 1 << 40);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
}

#[test]
fn extension_limits() {
    // Backing format name of 16 bytes (QEMU accepts at most 15).
    let mut b = sample("v3.qcow2");
    let hl = get32(&b, 100) as usize;
    put32(&mut b, hl, 0xE279_2ACA);
    put32(&mut b, hl + 4, 16);
    b[hl + 8..hl + 24].copy_from_slice(b"0123456789abcdef");
    put64(&mut b, hl + 24, 0);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    // An extension longer than the extension area.
    let mut b = sample("v3.qcow2");
    put32(&mut b, hl, 0x1234_5678);
    put32(&mut b, hl + 4, 0x10_0000);
    assert_eq!(err_kind(b).0, ErrorKind::Malformed);
    // Bitmaps extension with too many bitmaps.
    let mut b = sample("bitmaps.qcow2");
    put32(&mut b, hl + 8, 70_000);
    assert_eq!(err_kind(b).0, ErrorKind::LimitExceeded);
    let mut b = sample("bitmaps.qcow2");
    put64(&mut b, hl + 16, 1 << 30);
    assert_eq!(err_kind(b).0, ErrorKind::LimitExceeded);
    // Unknown extensions are listed, not fatal.
    let mut b = sample("v3.qcow2");
    put32(&mut b, hl, 0x1234_5678);
    put32(&mut b, hl + 4, 3);
    put64(&mut b, hl + 16, 0);
    let img = try_open(b).unwrap();
    assert_eq!(img.describe()["header_extensions"][0]["name"], "unknown");
}

#[test]
fn feature_bits_give_findings() {
    let mut b = sample("v3.qcow2");
    put64(&mut b, 72, 0x3);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::CORRUPT,
        Severity::Unsafe
    ));
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::DIRTY,
        Severity::Warning
    ));
    // Q4: extended L2 is read; OpenStack's rejection of bit 4 is noted, not followed.
    let img = try_open(sample("extl2.qcow2")).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::UNKNOWN_FEATURES,
        Severity::Info
    ));
    assert!(!has_finding(
        &img,
        vmsnap_qcow2::rule::UNKNOWN_FEATURES,
        Severity::Unsafe
    ));
    // Q2 on version 2: bit 2 of bytes 72..80.
    let mut b = sample("v2.qcow2");
    b[79] = 4;
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_core::rule::DATA_FILE,
        Severity::Unsafe
    ));
    // Q1: a backing file offset with an empty name.
    let mut b = sample("v3.qcow2");
    put64(&mut b, 8, 0x200);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_core::rule::BACKING_FILE,
        Severity::Unsafe
    ));
    // Data-file bit without a name: finding, data reads refused.
    let mut b = sample("v3.qcow2");
    put64(&mut b, 72, 0x4);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_core::rule::DATA_FILE,
        Severity::Unsafe
    ));
    let mut buf = [0u8; 16];
    // Host offsets of this image are not guest offsets: refused before any data-file read.
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    img.read_at(3 << 20, &mut buf).unwrap();
    // A raw-external-data bit without a data file: QEMU refuses the image.
    let mut b = sample("v3.qcow2");
    put64(&mut b, 88, 0x2);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::DATA_FILE_RAW,
        Severity::Unsafe
    ));
    // AES encryption.
    let mut b = sample("v3.qcow2");
    put32(&mut b, 32, 1);
    let img = try_open(b).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_qcow2::rule::ENCRYPTION,
        Severity::Unsafe
    ));
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn bad_l2_and_data_offsets() {
    // L2 table past the end of the file.
    let mut b = sample("v3.qcow2");
    let l1 = get64(&b, 40) as usize;
    put64(&mut b, l1, (1 << 63) | (1 << 36));
    let img = try_open(b).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    // Unaligned L2 table.
    let mut b = sample("v3.qcow2");
    put64(&mut b, l1, (1 << 63) | 0x40200);
    let img = try_open(b).unwrap();
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // Unaligned data cluster.
    let mut b = sample("v3.qcow2");
    let l2 = l2_of(&b);
    put64(&mut b, l2, (1 << 63) | 0x50200);
    let img = try_open(b).unwrap();
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // Data cluster past the end of the file reads as zeros, as in QEMU.
    let mut b = sample("v3.qcow2");
    put64(&mut b, l2, (1 << 63) | (1 << 40));
    let img = try_open(b).unwrap();
    buf.fill(1);
    img.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, [0u8; 16]);
    // Extended L2: a subcluster both allocated and zero.
    let mut b = sample("extl2.qcow2");
    let l2 = l2_of(&b);
    put64(&mut b, l2 + 8, 0x0000_0001_0000_0001);
    let img = try_open(b).unwrap();
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // Extended L2: alloc bits on an unallocated cluster.
    let mut b = sample("extl2.qcow2");
    let l2 = l2_of(&b);
    put64(&mut b, l2 + 16 * 100, 0);
    put64(&mut b, l2 + 16 * 100 + 8, 0x1);
    let img = try_open(b).unwrap();
    assert_eq!(
        img.read_at(100 * 16384, &mut buf).unwrap_err().kind(),
        ErrorKind::Malformed
    );
}

#[test]
fn compressed_cluster_overflow_and_garbage() {
    let b0 = sample("zlib.qcow2");
    let l2 = l2_of(&b0);
    let e = get64(&b0, l2);
    assert!(e & (1 << 62) != 0, "first cluster is compressed");
    let shift = 62 - (16 - 8);
    // Maximal sector count: runs past the end of the file, still exactly one cluster.
    let mut b = b0.clone();
    put64(&mut b, l2, e | (0xFF << shift));
    let img = try_open(b).unwrap();
    let mut buf = vec![0u8; 65536];
    let _ = img.read_at(0, &mut buf); // bounded: either decodes one cluster or errors
                                      // Offset past the end of the file.
    let mut b = b0.clone();
    put64(&mut b, l2, (1 << 62) | (1 << 40));
    let img = try_open(b).unwrap();
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    // Offset at the header: not deflate data that yields a cluster.
    let mut b = b0.clone();
    put64(&mut b, l2, (1 << 62) | 8);
    let img = try_open(b).unwrap();
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // The same for zstd.
    let z = sample("zstd.qcow2");
    let l2 = l2_of(&z);
    let mut b = z.clone();
    put64(&mut b, l2, (1 << 62) | 8);
    let img = try_open(b).unwrap();
    let mut buf = vec![0u8; 32768];
    assert_eq!(
        img.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Malformed
    );
}

#[test]
fn backing_loop_hits_the_chain_depth_cap() {
    let dir = vmsnap_testkit::scratch_dir("qcow2-loop");
    let p = dir.join("loop.qcow2");
    let mut b = sample("v3.qcow2");
    let name = b"loop.qcow2";
    put64(&mut b, 8, 0x8000);
    put32(&mut b, 16, name.len() as u32);
    b[0x8000..0x8000 + name.len()].copy_from_slice(name);
    std::fs::write(&p, &b).unwrap();
    let reg = Registry::empty().with(&PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let e = Qcow2::open(Arc::new(FileLayer::open(&p).unwrap()), &ctx).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    // With the default (deny) policy nothing is opened and it reads as zeros.
    let r = Resolver::default();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let img = Qcow2::open(Arc::new(FileLayer::open(&p).unwrap()), &ctx).unwrap();
    assert!(has_finding(
        &img,
        vmsnap_core::rule::BACKING_FILE,
        Severity::Unsafe
    ));
    assert_eq!(r.log().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mutated_samples_never_panic() {
    let mut rng = vmsnap_testkit::image::Rng::new(99);
    for s in ["snapshots.qcow2", "extl2.qcow2", "zstd.qcow2", "c512.qcow2"] {
        let base = sample(s);
        for _ in 0..60 {
            let mut b = base.clone();
            for _ in 0..1 + rng.below(8) {
                let i = if rng.below(2) == 0 {
                    rng.below(512)
                } else {
                    rng.below(b.len() as u64)
                } as usize;
                b[i] = rng.next_u64() as u8;
            }
            if let Ok(img) = try_open(b) {
                let l: Arc<dyn Layer> = Arc::new(img);
                vmsnap_testkit::exercise(&l, 4 << 20);
            }
        }
    }
}

#[test]
fn size_not_a_sector_multiple_is_rounded_down_like_qemu() {
    let dir = vmsnap_testkit::scratch_dir("qcow2-odd");
    let p = dir.join("odd.qcow2");
    let mut b = sample("v3.qcow2");
    put64(&mut b, 24, (4 << 20) - 100);
    std::fs::write(&p, &b).unwrap();
    let img = try_open(b).unwrap();
    let want = vmsnap_testkit::qemu_img_raw(&p, &[]);
    assert_eq!(img.len(), want.len() as u64);
    vmsnap_testkit::assert_same_bytes(&vmsnap_testkit::read_all(&img), &want, "odd size");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn external_data_cluster_must_match_its_guest_offset() {
    let mut b = sample("datafile.qcow2");
    let l2 = l2_of(&b);
    // Cluster 1 (guest 0x1000) claims host 0x2000.
    put64(&mut b, l2 + 8, (1 << 63) | 0x2000);
    let img = try_open(b).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        img.read_at(0x1000, &mut buf).unwrap_err().kind(),
        ErrorKind::Malformed
    );
}
