//! Damaged descriptors fail with the error kind that names the damage, damaged or
//! missing image files become unavailable states with the reason in the reference, and
//! nothing panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{
    ErrorKind, ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, RefDecision,
    Registry, Resolver, SniffWindow,
};
use vmsnap_hdd::{Hdd, PLUGIN};
use vmsnap_testkit::{corpus, scratch_dir};

const TOP: &str = "{5fbaabe3-6958-40ff-92a7-860e329aab41}";

fn descriptor(name: &str) -> String {
    std::fs::read_to_string(corpus(&format!("hdd/{name}.hdd/DiskDescriptor.xml")))
        .expect("run corpus/hdd/make.sh")
}

/// Opens descriptor `bytes` with every external file denied.
fn open(bytes: Vec<u8>) -> vmsnap_core::Result<Hdd> {
    let (r, reg, o) = (
        Resolver::new(ExternalPolicy::Deny),
        Registry::empty(),
        Options::new(),
    );
    let ctx = OpenCtx::new(&r, &reg, &o);
    Hdd::open(
        Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))),
        &ctx,
    )
}

/// Opens `xml` written into a scratch bundle with `files`, every file of it allowed.
fn open_dir(tag: &str, xml: &str, files: &[(&str, &[u8])]) -> Hdd {
    let dir = scratch_dir(tag);
    std::fs::write(dir.join("DiskDescriptor.xml"), xml).unwrap();
    for (n, b) in files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    let r = Resolver::new(ExternalPolicy::VmDir).with_vm_dir(&dir);
    let (reg, o) = (Registry::empty(), Options::new());
    let ctx = OpenCtx::new(&r, &reg, &o);
    let xml = Arc::new(FileLayer::open(dir.join("DiskDescriptor.xml")).unwrap());
    Hdd::open(xml, &ctx).unwrap()
}

fn probe_says_yes(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

#[test]
fn every_sample_opens_and_every_read_path_holds() {
    for name in ["simple", "split", "snapshot"] {
        let dir = corpus(&format!("hdd/{name}.hdd"));
        let bytes = std::fs::read(dir.join("DiskDescriptor.xml")).unwrap();
        assert!(probe_says_yes(&bytes), "{name}");
        // Denied: every read fails, nothing panics.
        let layer: Arc<dyn Layer> = Arc::new(open(bytes).unwrap());
        vmsnap_testkit::exercise(&layer, 64 << 20);
        let r = Resolver::new(ExternalPolicy::VmDir).with_vm_dir(&dir);
        let (reg, o) = (Registry::empty(), Options::new());
        let ctx = OpenCtx::new(&r, &reg, &o);
        let xml = Arc::new(FileLayer::open(dir.join("DiskDescriptor.xml")).unwrap());
        let layer: Arc<dyn Layer> = Arc::new(Hdd::open(xml, &ctx).unwrap());
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
}

#[test]
fn damaged_descriptors_fail_with_their_kinds() {
    let good = descriptor("snapshot");
    let base = "{4f0e2ad4-a9b0-4bd1-9c1e-0c6a3e5b7d21}";
    let with = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replacen(from, to, 1).into_bytes()
    };
    let many_storages = {
        let mut s = String::from("<Parallels_disk_image><StorageData>");
        for i in 0..4097 {
            s.push_str(&format!(
                "<Storage><Start>{i}</Start><End>{}</End></Storage>",
                i + 1
            ));
        }
        s.push_str("</StorageData><Snapshots/></Parallels_disk_image>");
        s.into_bytes()
    };
    let laughs = br#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Parallels_disk_image>&b;</Parallels_disk_image>"#.to_vec();
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        (
            "not XML",
            b"WithouFreSpacExt".to_vec(),
            ErrorKind::Malformed,
        ),
        (
            "not UTF-8",
            vec![b'<', 0xff, 0xfe, b'>'],
            ErrorKind::Malformed,
        ),
        ("a DTD", laughs, ErrorKind::Malformed),
        (
            "cut in the middle",
            good.as_bytes()[..good.len() / 2].to_vec(),
            ErrorKind::Malformed,
        ),
        (
            "another root",
            good.replace("Parallels_disk_image", "Parallels_disk")
                .into_bytes(),
            ErrorKind::Malformed,
        ),
        (
            "no storage data",
            good.replace("StorageData>", "Storage_Data>").into_bytes(),
            ErrorKind::Malformed,
        ),
        (
            "a storage not at 0",
            with("<Start>0</Start>", "<Start>8</Start>"),
            ErrorKind::Malformed,
        ),
        (
            "an empty storage",
            with("<End>8192</End>", "<End>0</End>"),
            ErrorKind::Malformed,
        ),
        (
            "End not a number",
            with("<End>8192</End>", "<End>0x2000</End>"),
            ErrorKind::Malformed,
        ),
        (
            "a disk past the size limit",
            with("<End>8192</End>", "<End>18446744073709551615</End>"),
            ErrorKind::LimitExceeded,
        ),
        (
            "a bad GUID",
            with(&format!("<GUID>{base}</GUID>"), "<GUID>{4f0e2ad4}</GUID>"),
            ErrorKind::Malformed,
        ),
        (
            "an unknown parent",
            with(
                &format!("<ParentGUID>{base}</ParentGUID>"),
                "<ParentGUID>{11111111-2222-3333-4444-555555555555}</ParentGUID>",
            ),
            ErrorKind::Malformed,
        ),
        (
            "a parent loop",
            with(
                "<ParentGUID>{00000000-0000-0000-0000-000000000000}</ParentGUID>",
                &format!("<ParentGUID>{TOP}</ParentGUID>"),
            ),
            ErrorKind::Malformed,
        ),
        (
            "the current state not a shot",
            with(
                &format!("<TopGUID>{TOP}</TopGUID>"),
                "<TopGUID>{11111111-2222-3333-4444-555555555555}</TopGUID>",
            ),
            ErrorKind::Malformed,
        ),
        (
            "a shot without an image",
            with(
                &format!("<GUID>{base}</GUID>\n                <Type>"),
                "<GUID>{11111111-2222-3333-4444-555555555555}</GUID>\n                <Type>",
            ),
            ErrorKind::Malformed,
        ),
        (
            "a shot listed twice",
            with(
                &format!("<GUID>{TOP}</GUID>\n            <ParentGUID>"),
                &format!("<GUID>{base}</GUID>\n            <ParentGUID>"),
            ),
            ErrorKind::Malformed,
        ),
        ("4097 storages", many_storages, ErrorKind::LimitExceeded),
        (
            "past 16 MiB",
            vec![b' '; (16 << 20) + 1],
            ErrorKind::LimitExceeded,
        ),
    ];
    for (what, bytes, kind) in cases {
        match open(bytes) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        }
    }
}

#[test]
fn a_damaged_image_an_unknown_type_and_encryption_are_reported_not_read() {
    let good = descriptor("simple");
    let file = format!("simple.hdd.0.{TOP}.hds");
    // The image is not a Parallels image: the reference says why, reads fail.
    let hdd = open_dir("hdd-bad-image", &good, &[(&file, &[0u8; 4096])]);
    let refs = hdd.external_refs();
    assert!(
        matches!(&refs[0].decision, RefDecision::Failed { reason } if reason.contains("Parallels")),
        "{refs:?}"
    );
    assert_eq!(
        hdd.read_at(0, &mut [0u8; 512]).unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    // An image type nobody documents.
    let odd = good.replace("<Type>Compressed</Type>", "<Type>Sparse</Type>");
    let hdd = open_dir("hdd-odd-type", &odd, &[]);
    assert!(hdd
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_hdd::rule::IMAGE_TYPE));
    assert!(hdd.read_at(0, &mut [0u8; 512]).is_err());
    // Encrypted: recognised, the files not opened.
    let enc = good.replace(
        "<Engine>{00000000-0000-0000-0000-000000000000}</Engine>",
        "<Engine>{d3b7c1a2-0000-4000-8000-000000000001}</Engine>",
    );
    let hdd = open_dir("hdd-encrypted", &enc, &[]);
    assert!(hdd
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_hdd::rule::ENCRYPTED));
    assert!(matches!(
        &hdd.external_refs()[0].decision,
        RefDecision::Failed { reason } if reason.contains("encrypted")
    ));
    assert!(hdd.describe()["disk_parameters"]["encryption_engine"].is_string());
}

#[test]
fn a_bundle_is_a_references_finding() {
    let hdd = open(descriptor("split").into_bytes()).unwrap();
    let f = hdd.findings();
    assert_eq!(f[0].rule, vmsnap_core::rule::REFERENCES);
    assert_eq!(f[0].severity, vmsnap_core::Severity::Unsafe);
    assert_eq!(hdd.external_refs().len(), 2);
}
