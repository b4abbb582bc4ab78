//! The library side of the rule for unavailable references, through the full registry
//! and stacker as an embedder uses them: with a corpus image's backing file, parent,
//! extent or companion absent, opening works, `read_at` of the bytes it would supply
//! fails with `ErrorKind::Unavailable` naming the reference, extents say `Unavailable`,
//! and only `MissingPolicy::Zeros` reads zeros. Parallels, ELF and LiME have no
//! references: their images read the same whatever the policy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap::core::{
    ErrorKind, ExtentKind, ExternalPolicy, FileLayer, Layer, MissingPolicy, Options, Resolver,
};
use vmsnap::stack::Stacker;
use vmsnap_testkit::{corpus, scratch_dir};

/// The top layer of `path`'s stack (format layers only: no nested guest formats), and the
/// resolver's record of what reads as zeros.
fn open(path: &Path, policy: ExternalPolicy, missing: MissingPolicy) -> (Arc<dyn Layer>, usize) {
    let registry = vmsnap::registry().unwrap();
    let resolver = Resolver::new(policy).with_missing(missing);
    let options = Options::new();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(path).unwrap());
    let stack = Stacker::new(&registry, &resolver, &options)
        .max_layers(1)
        .stack(file);
    assert!(stack.error.is_none(), "{:?}", stack.error);
    let top = stack.entries.last().unwrap().layer.clone();
    (top, resolver.unavailable_refs().len())
}

fn alone(tag: &str, rel: &str) -> (PathBuf, PathBuf) {
    let d = scratch_dir(tag);
    let src = corpus(rel);
    let dst = d.join(src.file_name().unwrap());
    std::fs::copy(&src, &dst).unwrap();
    (d, dst)
}

/// The first unavailable extent of `l`: reading it fails naming `name` under the default,
/// and reads zeros under the opt-in (`z`, the same image opened with zeros).
fn assert_rule(l: &dyn Layer, z: &dyn Layer, kind_noun: &str, name: &str) {
    let ext = l.extents(0..l.len()).unwrap();
    let u = ext
        .iter()
        .find(|e| e.kind == ExtentKind::Unavailable)
        .unwrap_or_else(|| panic!("no unavailable extent in {ext:?}"));
    let n = u.len.min(4096) as usize;
    let mut buf = vec![0xAAu8; n];
    let e = l.read_at(u.offset, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(e.kind().as_str(), "unavailable");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("the {kind_noun} {name:?} is unavailable")),
        "{msg}"
    );
    assert!(msg.contains(&format!(": {}: ", l.name())), "{msg}");
    z.read_at(u.offset, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    assert_eq!(
        z.extents(0..z.len()).unwrap(),
        ext,
        "zeros change no extent"
    );
}

fn case(tag: &str, rel: &str, kind_noun: &str, name: &str) {
    let (d, p) = alone(tag, rel);
    let (l, _) = open(&p, ExternalPolicy::SameDir, MissingPolicy::Error);
    let (z, recorded) = open(&p, ExternalPolicy::SameDir, MissingPolicy::Zeros);
    assert_eq!(recorded, 1, "one unavailable reference recorded");
    assert_rule(l.as_ref(), z.as_ref(), kind_noun, name);
    // In place, with the reference present but refused by `none`: the same rule.
    let (l, _) = open(&corpus(rel), ExternalPolicy::Deny, MissingPolicy::Error);
    let (z, _) = open(&corpus(rel), ExternalPolicy::Deny, MissingPolicy::Zeros);
    assert_rule(l.as_ref(), z.as_ref(), kind_noun, name);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn qcow2_backing_file() {
    case(
        "lib-qcow2",
        "qcow2/chain-top.qcow2",
        "backing file",
        "chain-mid.qcow2",
    );
}

#[test]
fn qcow2_data_file() {
    case(
        "lib-datafile",
        "qcow2/datafile.qcow2",
        "external data file",
        "datafile.raw",
    );
}

#[test]
fn qed_backing_file() {
    case("lib-qed", "qed/overlay-raw.qed", "backing file", "base.raw");
}

#[test]
fn vmdk_parent_and_extent() {
    case(
        "lib-vmdk-parent",
        "vmdk/child.vmdk",
        "parent disk",
        "base.vmdk",
    );
    case(
        "lib-vmdk-extent",
        "vmdk/flat.vmdk",
        "extent file",
        "flat-flat.vmdk",
    );
}

#[test]
fn vmware_vmem() {
    case(
        "lib-vmem",
        "vmware/plain.vmss",
        "companion file",
        "plain.vmem",
    );
}

#[test]
fn formats_without_references_read_alike_under_every_policy() {
    for rel in [
        "parallels/plain.hds",
        "qcow2/v3.qcow2",
        "vdi/dynamic.vdi",
        "vhd/fixed.vhd",
    ] {
        let (a, n) = open(&corpus(rel), ExternalPolicy::Deny, MissingPolicy::Error);
        assert_eq!(n, 0, "{rel}");
        let (b, _) = open(&corpus(rel), ExternalPolicy::Any, MissingPolicy::Error);
        let ext = a.extents(0..a.len()).unwrap();
        assert!(
            ext.iter().all(|e| e.kind != ExtentKind::Unavailable),
            "{rel}"
        );
        let len = a.len().min(1 << 20) as usize;
        let (mut x, mut y) = (vec![0u8; len], vec![0u8; len]);
        a.read_at(0, &mut x).unwrap();
        b.read_at(0, &mut y).unwrap();
        assert_eq!(x, y, "{rel}");
    }
}
