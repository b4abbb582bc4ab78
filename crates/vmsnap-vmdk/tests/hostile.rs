//! Hostile inputs: one crafted sample per rule and per known VMDK bug, with the expected
//! error kind or finding; and proof that references outside the sample's directory are
//! never opened under the default policies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use vmsnap_core::{
    ErrorKind, ExternalPolicy, Layer, LayerExt, MissingPolicy, RefDecision, Resolver,
};
use vmsnap_testkit::{assert_same_bytes, corpus, read_all, scratch_dir};

fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(corpus(&format!("vmdk/{name}"))).unwrap()
}

/// sparse.vmdk with its embedded descriptor replaced.
fn with_descriptor(text: &str) -> Vec<u8> {
    let mut f = sample("sparse.vmdk");
    let area = &mut f[512..512 + 20 * 512];
    area.fill(0);
    area[..text.len()].copy_from_slice(text.as_bytes());
    f
}

fn set_u64(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn set_u32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn get_u32(f: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(f[at..at + 4].try_into().unwrap())
}

fn open_bytes(tag: &str, bytes: &[u8]) -> vmsnap_core::Result<std::sync::Arc<dyn Layer>> {
    let d = scratch_dir(tag);
    let p = put(&d, "t.vmdk", bytes);
    common::open_with(&p, &Resolver::new(ExternalPolicy::SameDir))
}

fn err_kind(tag: &str, bytes: &[u8]) -> ErrorKind {
    open_bytes(tag, bytes).unwrap_err().kind()
}

#[test]
fn descriptor_pointing_at_etc_passwd_is_never_opened() {
    let d = scratch_dir("vmdk-passwd");
    let p = put(
        &d,
        "evil.vmdk",
        b"# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"/etc/passwd\" 0\n",
    );
    for policy in [ExternalPolicy::Deny, ExternalPolicy::SameDir] {
        let (r, n, paths) = common::counting(policy);
        let l = common::open_with(&p, &r).unwrap();
        assert_eq!(
            n.load(Ordering::SeqCst),
            0,
            "{policy:?} opened {:?}",
            paths.lock().unwrap()
        );
        assert!(common::has(
            l.as_ref(),
            vmsnap_vmdk::rule::EXTENT_PATH,
            "/etc/passwd"
        ));
        assert!(common::has(l.as_ref(), vmsnap_core::rule::DESCRIPTOR, "V5"));
        assert!(common::has(l.as_ref(), vmsnap_core::rule::DESCRIPTOR, "V3"));
        assert!(common::has(
            l.as_ref(),
            vmsnap_core::rule::DESCRIPTOR,
            "\"/etc/passwd\""
        ));
        let refs = l.external_refs();
        assert_eq!(refs.len(), 1);
        assert!(matches!(refs[0].decision, RefDecision::Denied { .. }));
        // The refused extent is unavailable (it failed as policy_denied before the one
        // rule for unavailable references).
        assert_eq!(
            l.read_at(0, &mut [0u8; 16]).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
}

#[test]
fn absolute_parent_hint_is_never_opened() {
    let img = with_descriptor(
        "# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=22222222\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"/etc/passwd\"\nRW 16384 SPARSE \"t.vmdk\"\n",
    );
    let d = scratch_dir("vmdk-abs-parent");
    let p = put(&d, "t.vmdk", &img);
    for policy in [ExternalPolicy::Deny, ExternalPolicy::SameDir] {
        let (r, n, _) = common::counting(policy);
        let l = common::open_with(&p, &r).unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 0);
        assert!(common::has(
            l.as_ref(),
            vmsnap_core::rule::PARENT,
            "is absolute"
        ));
        assert!(common::has(
            l.as_ref(),
            vmsnap_core::rule::PARENT,
            "not opened"
        ));
        assert_eq!(l.describe()["parent_opened"], false);
        // Unallocated grains are the parent's: unavailable (they read as zeros before);
        // by opt-in they read as zeros, and allocated ones read as qemu-img reads them.
        let e = l.read_vec(0, l.len(), 1 << 30, "whole disk").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("/etc/passwd"), "{e}");
        let (r, _, _) = common::counting(policy);
        let z = common::open_with(&p, &r.with_missing(MissingPolicy::Zeros)).unwrap();
        let want = common::oracle(&corpus("vmdk/sparse.vmdk"));
        assert_same_bytes(&read_all(z.as_ref()), &want, "parent denied");
    }
}

#[test]
fn dotdot_and_subdir_extents_are_never_opened() {
    let d = scratch_dir("vmdk-dotdot");
    let sub = d.join("sub");
    std::fs::create_dir_all(sub.join("inner")).unwrap();
    put(&d, "outside.raw", &[7u8; 4096]);
    put(&sub.join("inner"), "deep.raw", &[8u8; 4096]);
    let p = put(
        &sub,
        "x.vmdk",
        b"version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"../outside.raw\" 0\nRW 8 FLAT \"inner/deep.raw\" 0\nRW 8 FLAT \"nbd:localhost:10809\" 0\n",
    );
    for policy in [ExternalPolicy::Deny, ExternalPolicy::SameDir] {
        let (r, n, _) = common::counting(policy);
        let l = common::open_with(&p, &r).unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 0);
        assert!(common::has(
            l.as_ref(),
            vmsnap_vmdk::rule::EXTENT_PATH,
            "../outside.raw"
        ));
        assert!(common::has(
            l.as_ref(),
            vmsnap_vmdk::rule::EXTENT_PATH,
            "nbd:"
        ));
        assert!(l
            .external_refs()
            .iter()
            .all(|r| matches!(r.decision, RefDecision::Denied { .. })));
    }
    // Protocol names are refused even under `any`.
    let (r, n, _) = common::counting(ExternalPolicy::Any);
    let l = common::open_with(&p, &r).unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2);
    assert!(matches!(
        l.external_refs()[2].decision,
        RefDecision::Denied { .. }
    ));
}

#[test]
fn capacity_zero_kdmv_is_a_descriptor_file() {
    let d = scratch_dir("vmdk-cap0");
    std::fs::copy(corpus("vmdk/sparse.vmdk"), d.join("other.vmdk")).unwrap();
    let mut img = with_descriptor(
        "version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\nRW 16384 SPARSE \"other.vmdk\"\n",
    );
    set_u64(&mut img, 12, 0);
    let p = put(&d, "t.vmdk", &img);
    let (r, n, _) = common::counting(ExternalPolicy::Deny);
    let l = common::open_with(&p, &r).unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 0);
    assert!(common::has(
        l.as_ref(),
        vmsnap_core::rule::DESCRIPTOR,
        "capacity 0"
    ));
    let l = common::open(&p);
    assert_eq!(l.describe()["container"], "descriptor");
    assert_same_bytes(&read_all(l.as_ref()), &common::oracle(&p), "cap0 vs qemu");
}

fn stream_grain0() -> (Vec<u8>, usize) {
    let f = sample("stream.vmdk");
    let gd = u64::from_le_bytes(f[56..64].try_into().unwrap()) as usize * 512;
    let gt = get_u32(&f, gd) as usize * 512;
    let g = get_u32(&f, gt) as usize * 512;
    (f, g)
}

#[test]
fn compressed_grain_size_bounds_cve_2026_2243() {
    let (mut f, g) = stream_grain0();
    set_u32(&mut f, g + 8, 2 * 65536 + 1);
    let l = open_bytes("vmdk-cve-a", &f).unwrap();
    let e = l.read_at(0, &mut [0u8; 512]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.to_string().contains("CVE-2026-2243"), "{e}");
    set_u32(&mut f, g + 8, 0);
    let l = open_bytes("vmdk-cve-b", &f).unwrap();
    assert_eq!(
        l.read_at(0, &mut [0u8; 512]).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // A legal size whose bytes run past the end of the file.
    let (mut f, g) = stream_grain0();
    f.truncate(g + 100);
    set_u32(&mut f, g + 8, 60000);
    let l = open_bytes("vmdk-cve-c", &f);
    if let Ok(l) = l {
        assert!(l.read_at(0, &mut [0u8; 512]).is_err());
    }
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn compressed_grain_output_is_bounded() {
    for (len, needle) in [
        (2 * 65536usize, "within one grain"),
        (100, "inflates to 100"),
    ] {
        let (mut f, g) = stream_grain0();
        let z = zlib(&vec![0xABu8; len]);
        set_u32(&mut f, g + 8, z.len() as u32);
        f[g + 12..g + 12 + z.len()].copy_from_slice(&z);
        let l = open_bytes("vmdk-bomb", &f).unwrap();
        let e = l.read_at(0, &mut [0u8; 65536]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Malformed);
        assert!(e.to_string().contains(needle), "{e}");
        // Partial reads (the cached path) fail the same way.
        assert!(l.read_at(10, &mut [0u8; 10]).is_err());
    }
    // Garbage instead of a zlib stream.
    let (mut f, g) = stream_grain0();
    f[g + 12..g + 40].fill(0xFF);
    let l = open_bytes("vmdk-garbage", &f).unwrap();
    assert_eq!(
        l.read_at(0, &mut [0u8; 512]).unwrap_err().kind(),
        ErrorKind::Malformed
    );
}

#[test]
fn header_limits() {
    let base = sample("sparse.vmdk");
    let mut f = base.clone();
    set_u32(&mut f, 44, 1024);
    assert_eq!(err_kind("vmdk-h1", &f), ErrorKind::LimitExceeded);
    let mut f = base.clone();
    set_u64(&mut f, 20, 0);
    assert_eq!(err_kind("vmdk-h2", &f), ErrorKind::Malformed);
    let mut f = base.clone();
    set_u64(&mut f, 20, 0x40_0000);
    assert_eq!(err_kind("vmdk-h3", &f), ErrorKind::LimitExceeded);
    let mut f = base.clone();
    set_u32(&mut f, 4, 4);
    assert_eq!(err_kind("vmdk-h4", &f), ErrorKind::Unsupported);
    let mut f = base.clone();
    set_u64(&mut f, 64, 1 << 40);
    assert_eq!(err_kind("vmdk-h5", &f), ErrorKind::Malformed);
    let mut f = base.clone();
    set_u64(&mut f, 12, 1 << 46);
    assert_eq!(err_kind("vmdk-h6", &f), ErrorKind::LimitExceeded);
    let mut f = base.clone();
    set_u32(&mut f, 44, 0);
    assert_eq!(err_kind("vmdk-h7", &f), ErrorKind::Malformed);
    // Grain directory past the end of the file.
    let mut f = base.clone();
    set_u64(&mut f, 56, 1 << 30);
    assert_eq!(err_kind("vmdk-h8", &f), ErrorKind::Truncated);
    // A grain table past the end is an error when read, not at open.
    let mut f = base.clone();
    let gd = u64::from_le_bytes(f[56..64].try_into().unwrap()) as usize * 512;
    set_u32(&mut f, gd, 0x7FFF_FFFF);
    let l = open_bytes("vmdk-h9", &f).unwrap();
    assert_eq!(
        l.read_at(0, &mut [0u8; 16]).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    // Truncated files fail cleanly.
    for n in [0usize, 3, 100, 511, 600, 20000] {
        let _ = open_bytes("vmdk-h10", &base[..n]);
    }
}

#[test]
fn oslo_v1_v2_v3() {
    let base = sample("sparse.vmdk");
    let mut f = base.clone();
    set_u64(&mut f, 28, 2);
    let l = open_bytes("vmdk-v1", &f).unwrap();
    assert!(common::has(l.as_ref(), vmsnap_core::rule::DESCRIPTOR, "V1"));
    let mut f = base.clone();
    set_u64(&mut f, 28, 0);
    let l = open_bytes("vmdk-v2", &f).unwrap();
    assert!(common::has(l.as_ref(), vmsnap_core::rule::DESCRIPTOR, "V2"));
    assert_eq!(l.describe()["create_type"], "monolithicSparse");
    let f = with_descriptor(
        "version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 16384 SPARSE \"t.vmdk\"\n",
    );
    let l = open_bytes("vmdk-v3", &f).unwrap();
    assert!(common::has(
        l.as_ref(),
        vmsnap_core::rule::DESCRIPTOR,
        "V3: unsupported subformat \"vmfs\""
    ));
    let f = with_descriptor("version=1\nCID=1\nparentCID=ffffffff\nRW 16384 SPARSE \"t.vmdk\"\n");
    let l = open_bytes("vmdk-v3b", &f).unwrap();
    assert!(common::has(
        l.as_ref(),
        vmsnap_core::rule::DESCRIPTOR,
        "V3: no createType"
    ));
    // The qemu-made monolithicSparse has none of these.
    let l = common::open(&corpus("vmdk/sparse.vmdk"));
    assert!(
        !common::has(l.as_ref(), vmsnap_core::rule::DESCRIPTOR, "V"),
        "{:?}",
        common::rules(l.as_ref())
    );
}

#[test]
fn oslo_v4_v6_descriptor_file() {
    let l = open_bytes(
        "vmdk-v4",
        b"version=1\ncreateType=\"monolithicFlat\"\nthis is not valid\n",
    )
    .unwrap();
    assert!(common::has(l.as_ref(), vmsnap_core::rule::DESCRIPTOR, "V4"));
    assert!(common::has(l.as_ref(), vmsnap_core::rule::DESCRIPTOR, "V6"));
    assert_eq!(l.len(), 0);
    // Too large a descriptor file is refused by the probe and by open.
    let mut big = b"version=1\n".to_vec();
    big.resize((1 << 20) + 1, b'#');
    assert_eq!(err_kind("vmdk-big", &big), ErrorKind::LimitExceeded);
    let sniff = vmsnap_core::SniffWindow::of_bytes(
        &big[..65536],
        &big[big.len() - 65536..],
        big.len() as u64,
    );
    assert!(!(vmsnap_vmdk::PLUGIN.probe)(&sniff).is_yes());
}

fn gd_at_end(edit: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut f = sample("stream.vmdk");
    let header = f[..512].to_vec();
    set_u64(&mut f, 56, u64::MAX);
    let mut tail = vec![0u8; 1536];
    set_u64(&mut tail, 0, 1);
    set_u32(&mut tail, 12, 3);
    tail[512..1024].copy_from_slice(&header);
    edit(&mut tail);
    f.extend_from_slice(&tail);
    f
}

#[test]
fn oslo_v7_footer() {
    let l = open_bytes("vmdk-v7a", &gd_at_end(|t| set_u32(t, 512 + 4, 1))).unwrap();
    assert!(common::has(
        l.as_ref(),
        vmsnap_vmdk::rule::FOOTER,
        "V7: version"
    ));
    let l = open_bytes("vmdk-v7b", &gd_at_end(|t| t[1024 + 100] = 1)).unwrap();
    assert!(common::has(
        l.as_ref(),
        vmsnap_vmdk::rule::FOOTER,
        "V7: end-of-stream marker padding"
    ));
    let l = open_bytes("vmdk-v7c", &gd_at_end(|t| set_u64(t, 512 + 36, 3))).unwrap();
    assert!(common::has(
        l.as_ref(),
        vmsnap_vmdk::rule::FOOTER,
        "V7: descriptor"
    ));
    // What QEMU itself refuses is an error.
    assert_eq!(
        err_kind("vmdk-v7d", &gd_at_end(|t| set_u32(t, 12, 2))),
        ErrorKind::Malformed
    );
    assert_eq!(
        err_kind("vmdk-v7e", &gd_at_end(|t| set_u32(t, 1024 + 12, 1))),
        ErrorKind::Malformed
    );
    assert_eq!(
        err_kind("vmdk-v7f", &gd_at_end(|t| t[512] = b'X')),
        ErrorKind::Malformed
    );
    assert_eq!(
        err_kind("vmdk-v7g", &gd_at_end(|t| set_u64(t, 512 + 56, u64::MAX))),
        ErrorKind::Malformed
    );
}

#[test]
fn parent_cid_checks_and_loops() {
    let d = scratch_dir("vmdk-pcid");
    std::fs::copy(corpus("vmdk/base.vmdk"), d.join("base.vmdk")).unwrap();
    let mut child = sample("child.vmdk");
    let text = String::from_utf8_lossy(&child[512..1024]).to_string();
    let at = 512 + text.find("parentCID=").unwrap() + "parentCID=".len();
    child[at..at + 8].copy_from_slice(b"00000001");
    let p = put(&d, "child.vmdk", &child);
    let l = common::open(&p);
    assert!(common::has(
        l.as_ref(),
        vmsnap_vmdk::rule::PARENT_CID,
        "does not match"
    ));
    assert_eq!(l.describe()["parent_opened"], true);
    // A parent hint naming the file itself stops at the chain-depth cap.
    let img = with_descriptor(
        "version=1\nCID=1\nparentCID=00000001\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"loop.vmdk\"\nRW 16384 SPARSE \"loop.vmdk\"\n",
    );
    let p = put(&d, "loop.vmdk", &img);
    let e = common::open_with(&p, &Resolver::new(ExternalPolicy::SameDir)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    // parentCID without a hint.
    let img = with_descriptor("version=1\nCID=1\nparentCID=00000002\ncreateType=\"monolithicSparse\"\nRW 16384 SPARSE \"x.vmdk\"\n");
    let l = open_bytes("vmdk-pcid2", &img).unwrap();
    assert!(common::has(
        l.as_ref(),
        vmsnap_core::rule::PARENT,
        "no parentFileNameHint"
    ));
}

#[test]
fn raw_device_extents_are_not_read() {
    let l = open_bytes(
        "vmdk-rdm",
        b"version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfsRDM\"\nRW 8 VMFSRDM \"/dev/sda\"\n",
    )
    .unwrap();
    assert!(common::has(
        l.as_ref(),
        vmsnap_vmdk::rule::EXTENT_TYPE,
        "VMFSRDM"
    ));
    assert!(l.external_refs().is_empty());
    assert!(l.read_at(0, &mut [0u8; 8]).is_err());
}
