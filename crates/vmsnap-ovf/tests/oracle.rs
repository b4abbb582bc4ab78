//! The samples against readers nobody here wrote: GNU tar's own listing for where each
//! OVA member lies, `qemu-img convert -O raw` of every disk file (extracted by GNU tar
//! for an OVA) byte for byte against each `disk:*` child, coreutils' `sha1sum` and
//! `sha256sum` for the digests the manifest check computes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;

use common::{ova, ovf, sample};
use vmsnap_core::{Layer, Severity};
use vmsnap_ovf::digest::{hex, Algorithm, Hasher};
use vmsnap_ovf::rule::{CAPACITY, MANIFEST};
use vmsnap_testkit::{assert_same_bytes, child, qemu_img_raw, read_all, run, scratch_dir};

/// (child layer, file) of each OVA sample's disks.
const OVA_DISKS: [(&str, &str); 2] = [
    ("disk:scsi0:0", "two-disk-disk1.vmdk"),
    ("disk:ide1:0", "two-disk-disk2.qcow2"),
];

#[test]
fn ova_members_lie_where_gnu_tar_lists_them() {
    for name in ["two-disk.ova", "bad-manifest.ova"] {
        let listing = run(Command::new("tar").arg("-tvR").arg("-f").arg(sample(name)));
        let listing = String::from_utf8(listing).unwrap();
        // "block 13: -rw-r--r-- 0/0   131584 1970-01-01 00:00 two-disk-disk1.vmdk"
        let theirs: Vec<(u64, u64, String)> = listing
            .lines()
            .filter(|l| !l.contains("Block of NULs"))
            .map(|l| {
                let (block, rest) = l.strip_prefix("block ").unwrap().split_once(": ").unwrap();
                let f: Vec<&str> = rest.split_whitespace().collect();
                (
                    block.parse::<u64>().unwrap() * 512,
                    f[2].parse().unwrap(),
                    f[5].to_string(),
                )
            })
            .collect();
        let o = ova(name);
        let ours: Vec<(u64, u64, String)> = o
            .archive()
            .unwrap()
            .members
            .iter()
            .map(|m| (m.header, m.size, m.name.clone()))
            .collect();
        assert_eq!(ours, theirs, "{name}");
        assert_eq!(theirs.len(), 4, "{name}");
    }
}

#[test]
fn ova_disks_read_like_qemu_img_of_the_extracted_members() {
    for name in ["two-disk.ova", "bad-manifest.ova"] {
        let dir = common::extracted(name, &format!("ovf-extract-{name}"));
        let o = ova(name);
        assert_eq!(o.children().len(), 2, "{name}");
        for (layer, file) in OVA_DISKS {
            let want = qemu_img_raw(&dir.join(file), &[]);
            let got = read_all(child(&o, layer).as_ref());
            assert_same_bytes(&got, &want, &format!("{name} {layer}"));
            assert!(want.iter().any(|&b| b != 0), "{file} has data");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn ovf_disks_read_like_qemu_img_of_their_files() {
    for (name, layer, file, size, refs) in [
        // The disk and the manifest beside the descriptor.
        (
            "vmware.ovf",
            "disk:scsi0:0",
            "vmware-disk1.vmdk",
            8 << 20,
            2,
        ),
        ("vbox.ovf", "disk:sata0:0", "vbox-disk1.vmdk", 6 << 20, 1),
    ] {
        let o = ovf(name);
        let c = child(&o, layer);
        assert_eq!(c.len(), size, "{name}");
        assert_eq!(c.name(), "vmdk");
        assert_same_bytes(
            &read_all(c.as_ref()),
            &qemu_img_raw(&sample(file), &[]),
            &format!("{name} {layer}"),
        );
        // The capacity the descriptor gives is the disk's size: no capacity finding.
        assert!(!o.findings().iter().any(|f| f.rule == CAPACITY), "{name}");
        assert_eq!(o.external_refs().len(), refs, "{name}");
    }
}

fn digest_of(alg: Algorithm, bytes: &[u8]) -> String {
    let mut h = Hasher::new(alg);
    // Odd pieces: the block boundary handling is exercised.
    for piece in bytes.chunks(1000) {
        h.update(piece);
    }
    hex(&h.finish())
}

#[test]
fn digests_are_the_coreutils_ones_and_the_manifest_verdicts_follow() {
    let dir = scratch_dir("ovf-digests");
    run(Command::new("tar")
        .arg("-xf")
        .arg(sample("two-disk.ova"))
        .arg("-C")
        .arg(&dir));
    for (tool, alg) in [
        ("sha1sum", Algorithm::Sha1),
        ("sha256sum", Algorithm::Sha256),
    ] {
        for file in [
            "two-disk.ovf",
            "two-disk-disk1.vmdk",
            "two-disk-disk2.qcow2",
        ] {
            let out = run(Command::new(tool).arg(dir.join(file)));
            let want = String::from_utf8(out).unwrap();
            let want = want.split_whitespace().next().unwrap();
            let bytes = std::fs::read(dir.join(file)).unwrap();
            assert_eq!(digest_of(alg, &bytes), want, "{tool} {file}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let manifest = |name: &str| -> Vec<(Severity, String)> {
        ova(name)
            .findings()
            .into_iter()
            .filter(|f| f.rule == MANIFEST)
            .map(|f| (f.severity, f.message))
            .collect()
    };
    assert_eq!(manifest("two-disk.ova"), vec![]);
    let bad = manifest("bad-manifest.ova");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0].0, Severity::Unsafe);
    assert!(bad[0].1.contains("two-disk-disk1.vmdk"), "{bad:?}");
}

#[test]
fn an_ovf_beside_its_manifest_is_verified_against_sha1sum_s_digests() {
    let manifest = |o: &vmsnap_ovf::Ovf| -> Vec<(Severity, String)> {
        o.findings()
            .into_iter()
            .filter(|f| f.rule == MANIFEST)
            .map(|f| (f.severity, f.message))
            .collect()
    };
    // vmware.mf was written by sha1sum; vbox.ovf has none.
    assert_eq!(manifest(&ovf("vmware.ovf")), vec![]);
    let none = manifest(&ovf("vbox.ovf"));
    assert_eq!(none.len(), 1, "{none:?}");
    assert_eq!(none[0].0, Severity::Warning);
    // A descriptor changed after the manifest was written.
    let dir = scratch_dir("ovf-manifest-tamper");
    for f in ["vmware.ovf", "vmware.mf", "vmware-disk1.vmdk"] {
        std::fs::copy(sample(f), dir.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(dir.join("vmware.ovf")).unwrap();
    std::fs::write(dir.join("vmware.ovf"), text.replace("256MB", "257MB")).unwrap();
    let o = common::open_ovf(
        &dir.join("vmware.ovf"),
        &vmsnap_core::Resolver::new(vmsnap_core::ExternalPolicy::VmDir).with_vm_dir(&dir),
    )
    .unwrap();
    let m = manifest(&o);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].0, Severity::Unsafe);
    assert!(m[0].1.contains("vmware.ovf"), "{m:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
