//! The sample VM (corpus/vbox/make.sh) read through its settings: every disk of every
//! state byte for byte against qemu-img (base images, the VMDK) and the VDI layout applied
//! to qemu-img's reads of each chain member; the registry's chain is the one read.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;

use common::{open, sample, sample_dir, vdi_chain_oracle};
use vmsnap_core::{AddressSpace, ErrorKind, ExternalPolicy, RefDecision, RefKind};
use vmsnap_testkit::child;
use vmsnap_testkit::{assert_same_bytes, read_all};

const BASE: &str = "00000000-0000-4000-8000-00000000000a";
const DIFF1: &str = "00000000-0000-4000-8000-00000000000b";
const DIFF2: &str = "00000000-0000-4000-8000-00000000000c";

fn snap(uuid: &str) -> PathBuf {
    sample_dir().join(format!("Snapshots/{{{uuid}}}.vdi"))
}

#[test]
fn every_disk_of_every_state_reads_like_the_oracle() {
    let (vm, r) = open(&sample(), ExternalPolicy::VmDir);
    let vm = vm.unwrap();
    assert_eq!(vm.space(), AddressSpace::Metadata);
    // The layer is the settings file's own bytes.
    assert_eq!(read_all(vm.as_ref()), std::fs::read(sample()).unwrap());
    let names: Vec<String> = vm.children().iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        [
            "disk:sata0:0",
            "disk:sata1:0",
            "snapshot:Installed/disk:sata0:0",
            "snapshot:Installed/disk:sata1:0",
            "snapshot:Before update/disk:sata0:0",
            "snapshot:Before update/disk:sata1:0",
        ]
    );
    let base = sample_dir().join("base.vdi");
    let cases = [
        ("disk:sata0:0", vec![base.clone(), snap(DIFF1), snap(DIFF2)]),
        (
            "snapshot:Before update/disk:sata0:0",
            vec![base.clone(), snap(DIFF1)],
        ),
        ("snapshot:Installed/disk:sata0:0", vec![base.clone()]),
    ];
    for (name, chain) in cases {
        let want = vdi_chain_oracle(&chain);
        assert_same_bytes(&read_all(child(&*vm, name).as_ref()), &want, name);
    }
    // The chain overlays really differ (else the test could not tell them apart).
    assert_ne!(
        vdi_chain_oracle(&[base.clone(), snap(DIFF1)]),
        vdi_chain_oracle(std::slice::from_ref(&base))
    );
    let vmdk = common::raw(&sample_dir().join("data.vmdk"), "vmdk");
    for name in [
        "disk:sata1:0",
        "snapshot:Installed/disk:sata1:0",
        "snapshot:Before update/disk:sata1:0",
    ] {
        assert_same_bytes(&read_all(child(&*vm, name).as_ref()), &vmdk, name);
    }
    // Each image was opened once, and nothing was unavailable.
    let opened: Vec<String> = r
        .log()
        .iter()
        .filter(|e| matches!(e.decision, RefDecision::Opened { .. }))
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(opened.len(), 4, "{opened:?}");
    assert!(r.unavailable_refs().is_empty());
}

#[test]
fn describe_shows_the_vm() {
    let (vm, _) = open(&sample(), ExternalPolicy::VmDir);
    let d = vm.unwrap().describe();
    assert_eq!(d["vm"]["name"], "vmsnap-sample");
    assert_eq!(
        d["vm"]["current_snapshot"],
        "00000000-0000-4000-8000-000000000012"
    );
    let disk = &d["disks"][0];
    assert_eq!(disk["child"], "disk:sata0:0");
    assert_eq!(disk["controller"], "SATA");
    assert_eq!(disk["opened"], true);
    assert_eq!(disk["size"], 3 << 20);
    let chain: Vec<&str> = disk["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(chain, [DIFF2, DIFF1, BASE]);
    let snaps = d["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1]["name"], "Before update");
    assert_eq!(snaps[1]["parent"], "00000000-0000-4000-8000-000000000011");
    assert_eq!(snaps[1]["current"], true);
    assert_eq!(
        d["memory_files"][0]["file"],
        "Snapshots/2026-12-07T17-30-00-000000000Z.sav"
    );
}

#[test]
fn saved_states_are_listed_and_check_is_unsafe() {
    let (vm, _) = open(&sample(), ExternalPolicy::VmDir);
    let vm = vm.unwrap();
    let refs = vm.external_refs();
    let sav = refs
        .iter()
        .find(|r| r.name.ends_with(".sav"))
        .expect("the snapshot's saved state is a reference");
    assert_eq!(sav.kind, RefKind::Configured);
    assert_eq!(sav.decision, RefDecision::Listed);
    assert_eq!(refs.len(), 5, "{refs:?}");
    let f = vm.findings();
    assert!(
        f.iter().any(|f| f.rule == vmsnap_core::rule::REFERENCES
            && f.severity == vmsnap_core::Severity::Unsafe),
        "{f:?}"
    );
}

#[test]
fn nothing_is_opened_under_none_and_reads_fail() {
    let (vm, r) = open(&sample(), ExternalPolicy::Deny);
    let vm = vm.unwrap();
    assert_eq!(vm.children().len(), 6);
    for c in vm.children() {
        let e = c.layer.read_at(0, &mut [0u8; 512]).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::OutOfBounds),
            "{}: {e}",
            c.name
        );
    }
    assert!(vm
        .external_refs()
        .iter()
        .filter(|r| !r.name.ends_with(".sav"))
        .all(|r| matches!(r.decision, RefDecision::Denied { .. })));
    assert!(r
        .log()
        .iter()
        .all(|e| !matches!(e.decision, RefDecision::Opened { .. })));
}

#[test]
fn the_registry_chain_is_read_not_the_files_beside_the_image() {
    // A stray base.vdi copy with the parent's UUID in Snapshots/ (where the VDI plugin
    // alone would look for the parent of a differencing image) is never used: the
    // registry says the parent is ../base.vdi.
    let dir = common::copy_sample("vbox-stray-parent", |t| t);
    let mut stray = std::fs::read(dir.join("base.vdi")).unwrap();
    // Same UUID, other data: block 0 of the stray copy is all 0x99.
    let off = u32::from_le_bytes(stray[0x158..0x15C].try_into().unwrap()) as usize;
    stray[off..off + (1 << 20)].fill(0x99);
    std::fs::write(dir.join("Snapshots/stray.vdi"), stray).unwrap();
    let (vm, _) = open(&dir.join("vm.vbox"), ExternalPolicy::VmDir);
    let got = read_all(child(&*vm.unwrap(), "disk:sata0:0").as_ref());
    let want = vdi_chain_oracle(&[sample_dir().join("base.vdi"), snap(DIFF1), snap(DIFF2)]);
    assert_same_bytes(&got, &want, "disk:sata0:0 with a stray parent");
}
