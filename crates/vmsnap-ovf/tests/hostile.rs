//! Damaged and hostile packages: tar headers (checksum, sizes past the end, member count
//! limit, refused member kinds and names), descriptors (XML bombs, hrefs naming nothing,
//! compressed files, wrong capacities); each fails with the error kind naming the damage
//! or is reported, never read as zeros, never a panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{ova, ova_bytes, ovf, sample};
use vmsnap_core::{ErrorKind, Layer, Severity, SniffWindow};
use vmsnap_ovf::rule::{CAPACITY, MEMBER, UNSUPPORTED_FILE};
use vmsnap_ovf::{OVA_PLUGIN, PLUGIN};
use vmsnap_testkit::child;
use vmsnap_testkit::{assert_same_bytes, read_all, run, scratch_dir};

/// A ustar header for `name` (`size` bytes, `typeflag`), checksum filled in.
fn header(name: &str, size: u64, typeflag: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A tar of `(name, bytes, typeflag)` members, ended by two zero blocks.
fn tar(members: &[(&str, &[u8], u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, t) in members {
        out.extend_from_slice(&header(name, data.len() as u64, *t));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// The two-disk sample's descriptor and disks.
fn parts() -> (String, Vec<u8>, Vec<u8>) {
    let dir = scratch_dir("ovf-hostile-parts");
    run(Command::new("tar")
        .arg("-xf")
        .arg(sample("two-disk.ova"))
        .arg("-C")
        .arg(&dir));
    let r = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let p = (
        String::from_utf8(r("two-disk.ovf")).unwrap(),
        r("two-disk-disk1.vmdk"),
        r("two-disk-disk2.qcow2"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    p
}

fn kind_of(r: vmsnap_core::Result<vmsnap_ovf::Ovf>) -> ErrorKind {
    match r {
        Ok(_) => panic!("opened"),
        Err(e) => e.kind(),
    }
}

fn probe(p: &vmsnap_core::Plugin, bytes: &[u8]) -> bool {
    (p.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

#[test]
fn the_samples_open_and_every_read_path_holds() {
    for name in ["two-disk.ova", "bad-manifest.ova"] {
        let bytes = std::fs::read(sample(name)).unwrap();
        assert!(
            probe(&OVA_PLUGIN, &bytes) && !probe(&PLUGIN, &bytes),
            "{name}"
        );
        let l: Arc<dyn Layer> = Arc::new(ova(name));
        vmsnap_testkit::exercise(&l, 64 << 20);
    }
    for name in ["vmware.ovf", "vbox.ovf"] {
        let bytes = std::fs::read(sample(name)).unwrap();
        assert!(
            probe(&PLUGIN, &bytes) && !probe(&OVA_PLUGIN, &bytes),
            "{name}"
        );
        let l: Arc<dyn Layer> = Arc::new(ovf(name));
        vmsnap_testkit::exercise(&l, 64 << 20);
    }
}

#[test]
fn damaged_tar_headers_fail_with_their_kinds() {
    let good = std::fs::read(sample("two-disk.ova")).unwrap();
    let mut checksum = good.clone();
    checksum[0] ^= 1; // the name changes, the checksum does not
    let mut magic = good.clone();
    magic[6656 + 257] = b'x'; // the third member's header
    let mut size = good.clone();
    size[6656 + 124..6656 + 136].copy_from_slice(b"77777777777\0");
    let h = header("two-disk-disk1.vmdk", 0o77777777777, b'0');
    size[6656..6656 + 512].copy_from_slice(&h);
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("checksum", checksum, ErrorKind::Malformed),
        ("magic of a later header", magic, ErrorKind::Malformed),
        ("member past the end", size, ErrorKind::Truncated),
        (
            "cut inside a header",
            good[..6656 + 100].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside a member",
            good[..100_000].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "no .ovf member",
            tar(&[("a.vmdk", b"x", b'0')]),
            ErrorKind::Malformed,
        ),
        (
            "the .ovf is a directory",
            tar(&[("a.ovf", b"", b'5')]),
            ErrorKind::Malformed,
        ),
        (
            "an .ovf that is not OVF",
            tar(&[("a.ovf", b"<a/>", b'0')]),
            ErrorKind::Malformed,
        ),
    ];
    for (what, bytes, kind) in cases {
        assert_eq!(kind_of(ova_bytes(bytes)), kind, "{what}");
    }
}

#[test]
fn the_member_count_is_limited() {
    let (desc, _, _) = parts();
    let names: Vec<String> = (0..=vmsnap_ovf::raw::MAX_MEMBERS)
        .map(|i| format!("f{i}"))
        .collect();
    let mut members: Vec<(&str, &[u8], u8)> = vec![("two-disk.ovf", desc.as_bytes(), b'0')];
    members.extend(names.iter().map(|n| (n.as_str(), &b""[..], b'0')));
    assert_eq!(kind_of(ova_bytes(tar(&members))), ErrorKind::LimitExceeded);
}

#[test]
fn only_a_tar_whose_first_member_is_an_ovf_is_an_ova() {
    assert!(probe(&OVA_PLUGIN, &tar(&[("x.OVF", b"", b'0')])));
    assert!(!probe(&OVA_PLUGIN, &tar(&[("x.vmdk", b"", b'0')])));
    assert!(!probe(
        &OVA_PLUGIN,
        &tar(&[("x.vmdk", b"", b'0'), ("x.ovf", b"", b'0')])
    ));
    let long = format!("{}.ovf", "l".repeat(120));
    let mut gnu = tar(&[("././@LongLink", format!("{long}\0").as_bytes(), b'L')]);
    assert!(probe(&OVA_PLUGIN, &gnu));
    gnu[512] = b'#';
    gnu[512 + long.len() - 1] = b'x';
    assert!(!probe(&OVA_PLUGIN, &gnu));
    let mut bad = tar(&[("x.ovf", b"", b'0')]);
    bad[148] ^= 1;
    assert!(!probe(&OVA_PLUGIN, &bad));
}

#[test]
fn xml_bombs_are_refused() {
    let entities = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">&lol2;</Envelope>"#;
    let mut nodes = String::from(r#"<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">"#);
    for _ in 0..300_000 {
        nodes.push_str("<a/>");
    }
    nodes.push_str("</Envelope>");
    let mut deep = String::from(r#"<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">"#);
    for _ in 0..20 {
        deep.push_str("<VirtualSystemCollection>");
    }
    for _ in 0..20 {
        deep.push_str("</VirtualSystemCollection>");
    }
    deep.push_str("</Envelope>");
    for (what, text, kind) in [
        ("entities", entities.to_string(), ErrorKind::Malformed),
        ("300k nodes", nodes, ErrorKind::Malformed),
        ("deep collections", deep, ErrorKind::LimitExceeded),
    ] {
        let bytes = tar(&[("x.ovf", text.as_bytes(), b'0')]);
        assert_eq!(kind_of(ova_bytes(bytes)), kind, "{what}");
    }
}

#[test]
fn refused_members_and_missing_hrefs_are_references_whose_reads_fail() {
    let (desc, d1, d2) = parts();
    // The VMDK is stored under a path, the qcow2 is a directory entry named right.
    let bytes = tar(&[
        ("two-disk.ovf", desc.as_bytes(), b'0'),
        ("sub/two-disk-disk1.vmdk", &d1, b'0'),
        ("two-disk-disk2.qcow2", b"", b'5'),
        ("../evil", &d2, b'0'),
    ]);
    let o = ova_bytes(bytes).unwrap();
    let f = o.findings();
    let members: Vec<&str> = f
        .iter()
        .filter(|x| x.rule == MEMBER)
        .map(|x| x.message.as_str())
        .collect();
    assert_eq!(members.len(), 3, "{members:?}");
    let refs = o.external_refs();
    let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["two-disk-disk1.vmdk", "two-disk-disk2.qcow2"]);
    assert!(f
        .iter()
        .any(|x| x.rule == vmsnap_core::rule::REFERENCES && x.severity == Severity::Unsafe));
    // Stand-ins of the descriptor's capacity: reads fail, never zeros.
    let c = child(&o, "disk:scsi0:0");
    assert_eq!(c.len(), 4 << 20);
    let e = c.read_at(0, &mut [0u8; 512]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[test]
fn compressed_files_are_reported_not_read_and_capacities_are_checked() {
    let (desc, d1, d2) = parts();
    let desc = desc
        .replace(
            r#"ovf:href="two-disk-disk1.vmdk""#,
            r#"ovf:href="two-disk-disk1.vmdk" ovf:compression="gzip""#,
        )
        .replace(r#"ovf:capacity="2""#, r#"ovf:capacity="3""#);
    let bytes = tar(&[
        ("two-disk.ovf", desc.as_bytes(), b'0'),
        ("two-disk-disk1.vmdk", &d1, b'0'),
        ("two-disk-disk2.qcow2", &d2, b'0'),
    ]);
    let o = ova_bytes(bytes).unwrap();
    let f = o.findings();
    assert!(
        f.iter()
            .any(|x| x.rule == UNSUPPORTED_FILE && x.message.contains("gzip")),
        "{f:?}"
    );
    let cap: Vec<&str> = f
        .iter()
        .filter(|x| x.rule == CAPACITY)
        .map(|x| x.message.as_str())
        .collect();
    assert_eq!(cap.len(), 1, "{cap:?}");
    assert!(
        cap[0].contains("3145728") && cap[0].contains("2097152"),
        "{cap:?}"
    );
    let names: Vec<String> = o.children().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["disk:ide1:0"]);
}

#[test]
fn pax_and_gnu_long_names_from_gnu_tar_read_the_same_disks() {
    let dir = scratch_dir("ovf-hostile-formats");
    run(Command::new("tar")
        .arg("-xf")
        .arg(sample("two-disk.ova"))
        .arg("-C")
        .arg(&dir));
    let long = format!("{}.vmdk", "l".repeat(120));
    std::fs::rename(dir.join("two-disk-disk1.vmdk"), dir.join(&long)).unwrap();
    let desc = std::fs::read_to_string(dir.join("two-disk.ovf")).unwrap();
    std::fs::write(
        dir.join("two-disk.ovf"),
        desc.replace("two-disk-disk1.vmdk", &long),
    )
    .unwrap();
    let want = read_all(child(&ova("two-disk.ova"), "disk:scsi0:0").as_ref());
    for format in ["pax", "gnu"] {
        let out = dir.join(format!("{format}.ova"));
        run(Command::new("tar")
            .arg(format!("--format={format}"))
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&out)
            .args(["two-disk.ovf", &long, "two-disk-disk2.qcow2"]));
        let o = ova_bytes(std::fs::read(&out).unwrap()).unwrap();
        let names: Vec<&str> = o
            .archive()
            .unwrap()
            .members
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["two-disk.ovf", long.as_str(), "two-disk-disk2.qcow2"],
            "{format}"
        );
        assert_same_bytes(&read_all(child(&o, "disk:scsi0:0").as_ref()), &want, format);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
