//! Samples written from the format description by test builders: GD_AT_END
//! streamOptimized, COWD (vmfsSparse), seSparse, vmfs, ZERO and custom descriptors.
//! Where QEMU reads them, the bytes are compared with `qemu-img convert`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use vmsnap_core::ExtentKind;
use vmsnap_testkit::{assert_same_bytes, corpus, read_all, scratch_dir};

fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A streamOptimized image turned into VMware's GD_AT_END layout: header gdOffset all
/// ones, then footer marker, footer (the real header) and EOS at the end.
pub fn gd_at_end(footer_edit: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut f = std::fs::read(corpus("vmdk/stream.vmdk")).unwrap();
    let header = f[..512].to_vec();
    f[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut tail = vec![0u8; 1536];
    tail[0..8].copy_from_slice(&1u64.to_le_bytes());
    tail[12..16].copy_from_slice(&3u32.to_le_bytes());
    tail[512..1024].copy_from_slice(&header);
    footer_edit(&mut tail);
    f.extend_from_slice(&tail);
    f
}

#[test]
fn gd_at_end_footer_is_used() {
    let d = scratch_dir("vmdk-gdend");
    let p = put(&d, "end.vmdk", &gd_at_end(|_| {}));
    let l = common::open(&p);
    assert_eq!(l.describe()["footer_used"], true);
    assert!(
        !common::has(l.as_ref(), vmsnap_vmdk::rule::FOOTER, ""),
        "{:?}",
        common::rules(l.as_ref())
    );
    let want = common::oracle(&p);
    assert_same_bytes(&read_all(l.as_ref()), &want, "GD_AT_END");
    assert_same_bytes(
        &want,
        &common::oracle(&corpus("vmdk/stream.vmdk")),
        "same data",
    );
}

fn cowd_image() -> (Vec<u8>, Vec<u8>) {
    // 1 MiB disk, 4 KiB grains, GD at sector 4, one GT at sector 5 (4096 entries = 32
    // sectors), grains from sector 37.
    let mut f = vec![0u8; 37 * 512];
    f[0..4].copy_from_slice(b"COWD");
    for (i, v) in [1u32, 3, 2048, 8, 4, 1, 0].iter().enumerate() {
        f[4 + i * 4..8 + i * 4].copy_from_slice(&v.to_le_bytes());
    }
    f[4 * 512..4 * 512 + 4].copy_from_slice(&5u32.to_le_bytes());
    let mut want = vec![0u8; 1 << 20];
    for (n, (grain, byte)) in [(0u32, 0xC1u8), (10, 0xC2), (255, 0xC3)].iter().enumerate() {
        let sector = 37 + 8 * n as u32;
        let e = 5 * 512 + *grain as usize * 4;
        f[e..e + 4].copy_from_slice(&sector.to_le_bytes());
        f.extend(std::iter::repeat_n(*byte, 4096));
        want[*grain as usize * 4096..(*grain as usize + 1) * 4096].fill(*byte);
    }
    (f, want)
}

#[test]
fn cowd_vmfs_sparse() {
    let d = scratch_dir("vmdk-cowd");
    let (img, want) = cowd_image();
    put(&d, "x-delta.vmdk", &img);
    let p = put(
        &d,
        "x.vmdk",
        b"# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=ffffffff\ncreateType=\"vmfsSparse\"\nRW 2048 VMFSSPARSE \"x-delta.vmdk\"\n",
    );
    let l = common::open(&p);
    assert_eq!(l.len(), 1 << 20);
    assert_same_bytes(&read_all(l.as_ref()), &want, "COWD");
    assert_same_bytes(&want, &common::oracle(&p), "COWD vs qemu");
    assert_eq!(l.describe()["extents"][0]["sparse"]["kind"], "cowd");
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext[0].kind, ExtentKind::Data);
    assert_eq!(ext[0].lower_offset, Some(37 * 512));
    assert_eq!(ext[1].kind, ExtentKind::Unallocated);
    // The COWD file opened directly is a disk too.
    let l2 = common::open(&d.join("x-delta.vmdk"));
    assert_same_bytes(&read_all(l2.as_ref()), &want, "COWD direct");
}

fn se_entry(cluster: u64) -> u64 {
    (3 << 60) | ((cluster & 0xfff) << 48) | (cluster >> 12)
}

fn sesparse_image(gd0: u64) -> (Vec<u8>, Vec<u8>) {
    // capacity 2048 sectors; volatile header at 1, GD at 2 (1 sector), GTs at 3 (64
    // sectors each), grains at 67.
    let mut f = vec![0u8; 67 * 512];
    let h = [
        0xCAFE_BABEu64,
        0x2_0000_0001,
        2048,
        8,
        64,
        0,
        0,
        0,
        0,
        0,
        1,
        1, // volatile
        0,
        0,
        0,
        0, // journal header, journal
        2,
        1, // grain dir
        3,
        64, // grain tables
        0,
        0,
        0,
        0, // free bitmap, backmap
        67,
        16, // grains
    ];
    for (i, v) in h.iter().enumerate() {
        f[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    f[512..520].copy_from_slice(&0xCAFE_CAFEu64.to_le_bytes());
    f[1024..1032].copy_from_slice(&gd0.to_le_bytes());
    let gt = 3 * 512;
    let mut want = vec![0u8; 1 << 20];
    let mut set = |grain: usize, e: u64| {
        f[gt + grain * 8..gt + grain * 8 + 8].copy_from_slice(&e.to_le_bytes())
    };
    set(0, se_entry(0));
    set(1, 2 << 60);
    set(2, 1 << 60);
    set(5, se_entry(1));
    set(255, se_entry(0x1003 & 0x3)); // cluster 3: exercises the split encoding below
    let mut grains = vec![0u8; 4 * 4096];
    grains[..4096].fill(0x51);
    grains[4096..8192].fill(0x52);
    grains[3 * 4096..].fill(0x53);
    f.extend_from_slice(&grains);
    want[..4096].fill(0x51);
    want[5 * 4096..6 * 4096].fill(0x52);
    want[255 * 4096..].fill(0x53);
    (f, want)
}

#[test]
fn sesparse_extent() {
    assert_eq!(se_entry(0x1234_5678) >> 60, 3);
    let d = scratch_dir("vmdk-sesparse");
    let (img, want) = sesparse_image(0x1000_0000_0000_0000);
    put(&d, "s-sesparse.vmdk", &img);
    let p = put(
        &d,
        "s.vmdk",
        b"# Disk DescriptorFile\nversion=1\nCID=22222222\nparentCID=ffffffff\ncreateType=\"seSparse\"\nRW 2048 SESPARSE \"s-sesparse.vmdk\"\n",
    );
    let l = common::open(&p);
    assert_same_bytes(&read_all(l.as_ref()), &want, "seSparse");
    assert_same_bytes(&want, &common::oracle(&p), "seSparse vs qemu");
    let ext = l.extents(0..6 * 4096).unwrap();
    let kinds: Vec<_> = ext.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ExtentKind::Data,
            ExtentKind::Zero,
            ExtentKind::Unallocated,
            ExtentKind::Data
        ]
    );
    // A GD entry without the 0x10000000 tag is an error on read.
    let (img, _) = sesparse_image(0x2000_0000_0000_0000);
    put(&d, "s-sesparse.vmdk", &img);
    let l = common::open(&p);
    let e = l.read_at(0, &mut [0u8; 512]).unwrap_err();
    assert_eq!(e.kind(), vmsnap_core::ErrorKind::Malformed);
}

#[test]
fn vmfs_flat_without_offset() {
    let d = scratch_dir("vmdk-vmfs");
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    put(&d, "v-flat.vmdk", &data);
    let p = put(
        &d,
        "v.vmdk",
        b"version=1\nCID=33333333\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 512 VMFS \"v-flat.vmdk\"\n",
    );
    let l = common::open(&p);
    assert_same_bytes(&read_all(l.as_ref()), &data, "vmfs");
    assert_same_bytes(&data, &common::oracle(&p), "vmfs vs qemu");
    // VMFS with an offset and FLAT without one are refused, as in QEMU.
    let p = put(
        &d,
        "bad.vmdk",
        b"version=1\ncreateType=\"vmfs\"\nRW 512 VMFS \"v-flat.vmdk\" 0\n",
    );
    assert!(common::open_with(
        &p,
        &vmsnap_core::Resolver::new(vmsnap_core::ExternalPolicy::SameDir)
    )
    .is_err());
    let p = put(
        &d,
        "bad2.vmdk",
        b"version=1\ncreateType=\"monolithicFlat\"\nRW 512 FLAT \"v-flat.vmdk\"\n",
    );
    assert!(common::open_with(
        &p,
        &vmsnap_core::Resolver::new(vmsnap_core::ExternalPolicy::SameDir)
    )
    .is_err());
}

#[test]
fn custom_zero_and_offset_extents() {
    let d = scratch_dir("vmdk-custom");
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 253) as u8).collect();
    put(&d, "c-flat.vmdk", &data);
    let p = put(
        &d,
        "c.vmdk",
        b"version=1\r\nCID=44444444\r\nparentCID=ffffffff\r\ncreateType=\"custom\"\r\nRW 8 FLAT \"c-flat.vmdk\" 1\r\nRW 16 ZERO\r\nRDONLY 4 FLAT \"c-flat.vmdk\" 0\r\nNOACCESS 2 FLAT \"c-flat.vmdk\" 0\r\n",
    );
    let l = common::open(&p);
    assert_eq!(l.len(), 30 * 512);
    let got = read_all(l.as_ref());
    assert_eq!(&got[..4096], &data[512..4608]);
    assert_eq!(&got[4096..4096 + 8192], &[0u8; 8192][..]);
    assert_eq!(&got[12288..14336], &data[..2048]);
    assert_eq!(&got[14336..], &[0u8; 1024][..]);
    assert!(common::has(
        l.as_ref(),
        vmsnap_vmdk::rule::EXTENT_TYPE,
        "ZERO"
    ));
    assert!(common::has(
        l.as_ref(),
        vmsnap_vmdk::rule::EXTENT_TYPE,
        "RDONLY"
    ));
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext[0], vmsnap_core::Extent::data(0, 4096, Some(512)));
    assert_eq!(ext[1].kind, ExtentKind::Zero);
    assert_eq!(ext[2], vmsnap_core::Extent::data(12288, 2048, Some(0)));
}

#[test]
fn blank_line_before_extent_is_flagged() {
    let d = scratch_dir("vmdk-blank");
    let (img, want) = cowd_image();
    put(&d, "x-delta.vmdk", &img);
    let p = put(
        &d,
        "x.vmdk",
        b"version=1\nCID=11111111\nparentCID=ffffffff\ncreateType=\"vmfsSparse\"\n\nRW 2048 VMFSSPARSE \"x-delta.vmdk\"\n",
    );
    let l = common::open(&p);
    // VMware's reading: one extent. QEMU reads it twice (2 MiB); say so.
    assert_eq!(l.len(), 1 << 20);
    assert_same_bytes(&read_all(l.as_ref()), &want, "COWD");
    assert!(common::has(
        l.as_ref(),
        vmsnap_core::rule::DESCRIPTOR,
        "QEMU reads this extent twice"
    ));
    assert_eq!(common::oracle(&p).len(), 2 << 20);
}

#[test]
fn multi_extent_concatenation_matches_qemu() {
    let d = scratch_dir("vmdk-multi");
    std::fs::copy(corpus("vmdk/split-s001.vmdk"), d.join("a-s001.vmdk")).unwrap();
    std::fs::copy(corpus("vmdk/stream.vmdk"), d.join("a-s002.vmdk")).unwrap();
    std::fs::copy(corpus("vmdk/flat-flat.vmdk"), d.join("a-f003.vmdk")).unwrap();
    let p = put(
        &d,
        "a.vmdk",
        b"# Disk DescriptorFile\nversion=1\nCID=55555555\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n# Extent description\nRW 16384 SPARSE \"a-s001.vmdk\"\nRW 16384 SPARSE \"a-s002.vmdk\"\nRW 100 FLAT \"a-f003.vmdk\" 3\nRW 16384 SPARSE \"a-s001.vmdk\"\n",
    );
    let l = common::open(&p);
    assert_eq!(l.len(), (3 * 16384 + 100) * 512);
    let want = common::oracle(&p);
    assert_same_bytes(&read_all(l.as_ref()), &want, "multi-extent");
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), l.len());
    // The flat extent maps 1:1 into its own file from sector 3.
    let flat = ext.iter().find(|e| e.offset == 2 * 16384 * 512).unwrap();
    assert_eq!(flat.lower_offset, Some(3 * 512));
    assert_eq!(l.external_refs().len(), 4);
    assert_eq!(l.lower().len(), 5); // the descriptor and four opened files
}
