//! Every disk of the sample VMs, selected by its layer name, reads what qemu-img reads
//! from the `.hds` image the configuration and the bundle name; a snapshot's disk is the
//! bundle's image of that snapshot (differencing images over their parent read the
//! patterns qemu-io wrote into each).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{open, sample};
use vmsnap_core::Layer;
use vmsnap_testkit::child;
use vmsnap_testkit::{assert_same_bytes, have_qemu_img, qemu_img_raw, read_all};

const TOP: &str = "{5fbaabe3-6958-40ff-92a7-860e329aab41}";
const S1: &str = "{8c6b7a51-3f0e-4d2a-9b1c-2e4f6a8b0c11}";

fn hds(vm: &str, bundle: &str, guid: &str) -> Vec<u8> {
    let f = sample(&format!("{vm}.pvm/{bundle}/{bundle}.0.{guid}.hds"));
    qemu_img_raw(&f, &["-f", "parallels"])
}

#[test]
fn each_disk_reads_like_qemu_img_reads_its_image() {
    if !have_qemu_img() {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    let vm = open("plain");
    for (layer, bundle) in [("disk:sata0:0", "system.hdd"), ("disk:scsi0:1", "data.hdd")] {
        let got = read_all(child(&vm, layer).as_ref());
        assert_same_bytes(&got, &hds("plain", bundle, TOP), layer);
    }
    // The host device is a reference, never a layer.
    let names: Vec<String> = vm.children().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["disk:sata0:0", "disk:scsi0:1"]);
}

#[test]
fn an_absolute_system_name_is_found_inside_the_vm_directory() {
    if !have_qemu_img() {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    let vm = open("absolute");
    let got = read_all(child(&vm, "disk:ide0:0").as_ref());
    assert_same_bytes(&got, &hds("absolute", "harddisk.hdd", TOP), "disk:ide0:0");
    let link = vm.disks()[0].link.as_ref().unwrap();
    assert_eq!(
        link.reference.name,
        "/Users/alice/Parallels/Absolute VM.pvm/harddisk.hdd/DiskDescriptor.xml"
    );
    let status = link.reference.decision.describe();
    assert!(
        status.contains("absolute name from another host"),
        "{status}"
    );
}

#[test]
fn snapshot_disks_are_the_bundles_states_of_the_same_guid() {
    if !have_qemu_img() {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    let vm = open("snapshots");
    // The first snapshot's image has no parent: qemu-img reads it whole.
    let first = read_all(child(&vm, "snapshot:Before update/disk:sata0:0").as_ref());
    assert_same_bytes(
        &first,
        &hds("snapshots", "harddisk.hdd", S1),
        "Before update",
    );
    // Each later state is its image over its parent's: what qemu-io wrote into each
    // (image i: 64 KiB of 0x3i at i MiB + i * 64 KiB) shows through where written.
    let second = read_all(child(&vm, "snapshot:After update/disk:sata0:0").as_ref());
    let current = read_all(child(&vm, "disk:sata0:0").as_ref());
    let at = |b: &[u8], i: usize| b[i * (1 << 20) + i * (64 << 10)];
    assert_eq!([at(&first, 0), at(&first, 1), at(&first, 2)], [0x30, 0, 0]);
    assert_eq!(
        [at(&second, 0), at(&second, 1), at(&second, 2)],
        [0x30, 0x31, 0]
    );
    assert_eq!(
        [at(&current, 0), at(&current, 1), at(&current, 2)],
        [0x30, 0x31, 0x32]
    );
    assert_eq!(current.len() as u64, child(&vm, "disk:sata0:0").len());
    let tree: Vec<(String, Option<String>, bool)> = vm
        .snapshots()
        .iter()
        .map(|s| {
            (
                s.state.layer_name.clone(),
                s.state.parent.as_ref().map(|p| p.to_string()),
                s.state.current,
            )
        })
        .collect();
    assert_eq!(
        tree,
        [
            ("Before update".to_string(), None, false),
            ("After update".to_string(), Some(S1.to_string()), true)
        ]
    );
    // The files of each snapshot that exist are references, and not read.
    let files: Vec<Vec<&str>> = vm
        .snapshots()
        .iter()
        .map(|s| {
            s.files
                .iter()
                .map(|f| f.reference.name.rsplit('.').next().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(files, [vec!["mem", "sav", "pvc"], vec!["mem", "sav"]]);
}
