//! The VMA sample read against what real tools wrote into it: `corpus/vma/make.sh` made
//! each device's raw image with `qemu-img create` and the `qemu-io` writes of
//! `corpus/vma/devices.tsv`; this test makes them again with the same tools and compares
//! every device byte for byte, its extents (stored blocks are the image's non-zero 4 KiB
//! blocks), and the header's uuid, time and configuration files with what make.sh gave
//! the writer. (dissect.archive reads the same sample in `tests/dissect.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;
use std::sync::Arc;

use vmsnap_core::{ExtentKind, FileLayer, Layer};
use vmsnap_testkit::{assert_same_bytes, corpus, read_all, run, scratch_dir};
use vmsnap_vma::{child_name, Vma};

/// (name, size, qemu-io commands) of every line of devices.tsv.
fn devices() -> Vec<(String, u64, Vec<String>)> {
    std::fs::read_to_string(corpus("vma/devices.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                c[1].parse().unwrap(),
                c[2].split(';').map(str::to_string).collect(),
            )
        })
        .collect()
}

/// The raw image qemu-img and qemu-io make from one devices.tsv line.
fn qemu_raw(name: &str, size: u64, writes: &[String]) -> Vec<u8> {
    let dir = scratch_dir(&format!("vma-oracle-{name}"));
    let raw = dir.join("dev.raw");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "raw"])
        .arg(&raw)
        .arg(size.to_string()));
    for w in writes {
        run(Command::new("qemu-io")
            .args(["-f", "raw", "-c", w])
            .arg(&raw));
    }
    let v = std::fs::read(&raw).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    v
}

fn open() -> Vma {
    Vma::open_layer(Arc::new(FileLayer::open(corpus("vma/sample.vma")).unwrap())).unwrap()
}

#[test]
fn devices_read_as_the_images_qemu_io_wrote() {
    let vma = open();
    let want = devices();
    let names: Vec<String> = vma.devices().iter().map(|d| child_name(d)).collect();
    assert_eq!(
        names,
        want.iter()
            .map(|(n, _, _)| format!("disk:{n}"))
            .collect::<Vec<_>>()
    );
    for (dev, (name, size, writes)) in vma.devices().iter().zip(&want) {
        let raw = qemu_raw(name, *size, writes);
        assert_eq!(dev.len(), *size, "{name}");
        assert_same_bytes(&read_all(dev.as_ref()), &raw, name);
        // Stored (data) extents are exactly the non-zero 4 KiB blocks; the rest is zero.
        let nonzero: u64 = raw
            .chunks(4096)
            .filter(|b| b.iter().any(|&x| x != 0))
            .map(|b| b.len() as u64)
            .sum();
        assert_eq!(dev.stored_bytes(), nonzero, "{name}");
        let ext = dev.extents(0..dev.len()).unwrap();
        let mut data = 0;
        for e in &ext {
            let bytes = &raw[e.offset as usize..(e.offset + e.len) as usize];
            match e.kind {
                ExtentKind::Data => data += e.len,
                ExtentKind::Zero => assert!(bytes.iter().all(|&b| b == 0), "{name} {e:?}"),
                k => panic!("{name}: extent kind {k:?}"),
            }
        }
        assert_eq!(data, nonzero, "{name}");
        assert_eq!(dev.missing_clusters(), 0);
    }
    assert!(vma.findings().is_empty(), "{:?}", vma.findings());
}

#[test]
fn header_holds_what_make_sh_wrote() {
    let vma = open();
    let h = vma.header();
    assert_eq!(
        vmsnap_vma::uuid_text(&h.uuid),
        "6a1e7b2c-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
    );
    assert_eq!(h.ctime, 1_700_000_000);
    assert!(h.md5_ok);
    let names: Vec<&str> = h.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["qemu-server.conf", "qemu-server.fw"]);
    assert_eq!(
        h.configs[0].data,
        std::fs::read(corpus("vma/qemu-server.conf")).unwrap()
    );
    assert!(h.configs[1].data.is_empty());
    let m = vma.meta();
    assert_eq!(m["ctime"], "2023-11-14T22:13:20Z");
    assert_eq!(
        m["configs"][0]["text"],
        std::fs::read_to_string(corpus("vma/qemu-server.conf")).unwrap()
    );
    assert_eq!(
        vma.extract("qemu-server.conf").unwrap().unwrap(),
        h.configs[0].data
    );
    assert_eq!(vma.extract("nope").unwrap(), None);
}
