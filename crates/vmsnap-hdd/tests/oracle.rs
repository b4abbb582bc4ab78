//! Every state of every corpus bundle read byte for byte against qemu-img: each storage's
//! expanding image converted by `qemu-img convert -f parallels` (a snapshot's image with
//! its parent's as QEMU's backing, through a `json:` filename), plain images as their
//! bytes, and the storages end to end. The extents are checked too: data where qemu-img
//! maps data, and no data extent where the image stores nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap_core::{
    ExtentKind, ExternalPolicy, FileLayer, Layer, OpenCtx, Options, RefDecision, Registry, Resolver,
};
use vmsnap_hdd::Hdd;
use vmsnap_testkit::{assert_same_bytes, corpus, qemu_img_raw, read_all};

const TOP: &str = "{5fbaabe3-6958-40ff-92a7-860e329aab41}";
const BASE: &str = "{4f0e2ad4-a9b0-4bd1-9c1e-0c6a3e5b7d21}";

fn bundle(name: &str) -> PathBuf {
    let p = corpus(&format!("hdd/{name}.hdd"));
    assert!(
        p.join("DiskDescriptor.xml").is_file(),
        "{} is missing: run corpus/hdd/make.sh",
        p.display()
    );
    p
}

fn open(dir: &Path, policy: ExternalPolicy) -> (Hdd, Resolver) {
    let r = Resolver::new(policy).with_vm_dir(dir);
    let (reg, o) = (Registry::empty(), Options::new());
    let ctx = OpenCtx::new(&r, &reg, &o);
    let xml = Arc::new(FileLayer::open(dir.join("DiskDescriptor.xml")).unwrap());
    (Hdd::open(xml, &ctx).unwrap(), r)
}

/// The expanding image `file` of `dir` as qemu-img reads it, over `parent` when given.
fn qemu_hds(dir: &Path, file: &str, parent: Option<&str>) -> Vec<u8> {
    let node = |f: &str| {
        format!(
            r#"{{"driver":"parallels","file":{{"driver":"file","filename":"{}"}}}}"#,
            dir.join(f).display()
        )
    };
    match parent {
        None => qemu_img_raw(&dir.join(file), &["-f", "parallels"]),
        Some(p) => {
            let top = node(file);
            let spec = format!(
                "json:{},\"backing\":{}}}",
                top.strip_suffix('}').unwrap(),
                node(p)
            );
            qemu_img_raw(Path::new(&spec), &[])
        }
    }
}

#[test]
fn one_expanding_storage_reads_like_qemu_img() {
    let dir = bundle("simple");
    let (hdd, _) = open(&dir, ExternalPolicy::VmDir);
    let want = qemu_hds(&dir, &format!("simple.hdd.0.{TOP}.hds"), None);
    assert_eq!(hdd.len(), 4 << 20);
    assert_same_bytes(&read_all(&hdd), &want, "simple.hdd");
    // qemu-io wrote 64 KiB at 0, 4 KiB at 1 MiB + 512 (one 64 KiB cluster), 64 KiB at the
    // last cluster: three data clusters, the rest unallocated.
    let data: Vec<(u64, u64)> = hdd
        .extents(0..hdd.len())
        .unwrap()
        .iter()
        .filter(|e| e.kind == ExtentKind::Data)
        .map(|e| (e.offset, e.len))
        .collect();
    assert_eq!(
        data,
        vec![(0, 65536), (1 << 20, 65536), ((4 << 20) - 65536, 65536)]
    );
    assert_eq!(want[(1 << 20) + 512], 0xcd);
}

#[test]
fn split_storages_are_end_to_end() {
    let dir = bundle("split");
    let (hdd, _) = open(&dir, ExternalPolicy::VmDir);
    let mut want = qemu_hds(&dir, &format!("split.hdd.0.{TOP}.hds"), None);
    assert_eq!(want.len(), 2 << 20);
    want.extend(std::fs::read(dir.join(format!("split.hdd.1.{TOP}.hds"))).unwrap());
    assert_same_bytes(&read_all(&hdd), &want, "split.hdd");
    assert_eq!(hdd.descriptor().storages.len(), 2);
    // A read across the boundary of the two storages.
    let mut buf = [0u8; 1024];
    hdd.read_at((2 << 20) - 512, &mut buf).unwrap();
    assert_eq!(&buf[..], &want[(2 << 20) - 512..(2 << 20) + 512]);
}

#[test]
fn a_snapshot_and_the_current_state_over_it_read_like_qemu_img() {
    let dir = bundle("snapshot");
    let (hdd, r) = open(&dir, ExternalPolicy::VmDir);
    let base = format!("snapshot.hdd.0.{BASE}.hds");
    let top = format!("snapshot.hdd.0.{TOP}.hds");
    let want_top = qemu_hds(&dir, &top, Some(&base));
    let want_base = qemu_hds(&dir, &base, None);
    assert_same_bytes(&read_all(&hdd), &want_top, "current state");
    // The current state differs from its snapshot where it wrote, and reads through to
    // it elsewhere (0x11 from the snapshot, 0x33 of its own).
    assert_eq!(
        (want_top[0], want_top[512 << 10], want_base[512 << 10]),
        (0x11, 0x33, 0x11)
    );
    let children = hdd.children();
    let names: Vec<&str> = children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["disk", "snapshot:4f0e2ad4-a9b0-4bd1-9c1e-0c6a3e5b7d21"]
    );
    assert_same_bytes(&read_all(children[0].layer.as_ref()), &want_top, "disk");
    assert_same_bytes(
        &read_all(children[1].layer.as_ref()),
        &want_base,
        "snapshot",
    );
    // Both image files are references, opened through the resolver.
    let refs = hdd.external_refs();
    assert_eq!(refs.len(), 2);
    assert!(refs
        .iter()
        .all(|x| matches!(x.decision, RefDecision::Opened { .. })));
    assert_eq!(r.log().len(), 2);
}

#[test]
fn with_external_files_denied_every_state_is_unavailable_and_listed() {
    let dir = bundle("snapshot");
    let (hdd, r) = open(&dir, ExternalPolicy::Deny);
    assert_eq!(hdd.len(), 4 << 20);
    let e = hdd.read_at(0, &mut [0u8; 512]).unwrap_err();
    assert_eq!(e.kind(), vmsnap_core::ErrorKind::Unavailable, "{e}");
    let refs = hdd.external_refs();
    assert_eq!(refs.len(), 2);
    assert!(refs
        .iter()
        .all(|x| matches!(x.decision, RefDecision::Denied { .. })));
    assert_eq!(r.unavailable_refs().len(), 2);
    assert!(hdd
        .extents(0..hdd.len())
        .unwrap()
        .iter()
        .all(|e| e.kind == ExtentKind::Unavailable));
}
