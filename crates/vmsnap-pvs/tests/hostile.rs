//! Damaged and hostile configurations: bounded, never a panic, never a file opened that
//! the policy or the encryption forbids, and every reference reported.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{open, open_with, sample};
use vmsnap_core::{ErrorKind, ExternalPolicy, Layer, RefDecision, Resolver, Severity, SniffWindow};
use vmsnap_pvs::{rule, PLUGIN};
use vmsnap_testkit::scratch_dir;

fn probe(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

/// A VM directory `tag` holding `config` as `config.pvs` and `snapshots` as
/// `Snapshots.xml` (when given); returns the `config.pvs` path.
fn vm_dir(tag: &str, config: &str, snapshots: Option<&str>) -> PathBuf {
    let d = scratch_dir(&format!("pvs-hostile-{tag}"));
    std::fs::write(d.join("config.pvs"), config).unwrap();
    if let Some(s) = snapshots {
        std::fs::write(d.join("Snapshots.xml"), s).unwrap();
    }
    d.join("config.pvs")
}

fn vm_dir_policy(config: &Path) -> Resolver {
    Resolver::new(ExternalPolicy::VmDir).with_vm_dir(config.parent().unwrap())
}

/// A configuration with `hdds` inside `<Hardware>`.
fn config(hdds: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<ParallelsVirtualMachine schemaVersion=\"1.0\">\
         <Identification><VmName>x</VmName></Identification><Hardware>{hdds}</Hardware>\
         </ParallelsVirtualMachine>"
    )
}

fn hdd(system_name: &str) -> String {
    format!(
        "<Hdd><Enabled>1</Enabled><EmulatedType>1</EmulatedType><SystemName>{system_name}\
         </SystemName><InterfaceType>2</InterfaceType><StackIndex>0</StackIndex>\
         <Size>4</Size></Hdd>"
    )
}

#[test]
fn the_samples_are_recognised_and_every_read_path_holds() {
    for name in ["plain", "snapshots", "encrypted", "absolute"] {
        let path = sample(&format!("{name}.pvm/config.pvs"));
        let bytes = std::fs::read(&path).unwrap();
        assert!(probe(&bytes), "{name}");
        let layer: Arc<dyn Layer> = Arc::new(open(name));
        vmsnap_testkit::exercise(&layer, 64 << 20);
        assert_eq!(
            vmsnap_testkit::read_all(layer.as_ref()),
            bytes,
            "{name}: its own bytes"
        );
    }
    // Neither a disk descriptor nor a snapshot tree is a VM configuration.
    for other in [
        "pvs/plain.pvm/system.hdd/DiskDescriptor.xml",
        "pvs/snapshots.pvm/Snapshots.xml",
        "vmx/vm.vmx",
    ] {
        let bytes = std::fs::read(vmsnap_testkit::corpus(other)).unwrap();
        assert!(!probe(&bytes), "{other}");
    }
}

#[test]
fn every_system_name_is_a_reference_and_the_config_is_unsafe() {
    // Nothing may be opened: every disk is still a reference, denied, and a disk whose
    // size the configuration records is a stand-in whose reads fail.
    let vm = open_with(
        &sample("plain.pvm/config.pvs"),
        &Resolver::new(ExternalPolicy::Deny),
    )
    .unwrap();
    let refs = vm.external_refs();
    let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "system.hdd/DiskDescriptor.xml",
            "data.hdd/DiskDescriptor.xml",
            "/dev/disk2",
            "Snapshots.xml"
        ]
    );
    assert!(matches!(refs[0].decision, RefDecision::Denied { .. }));
    assert!(matches!(refs[2].decision, RefDecision::Listed));
    // `Snapshots.xml` is not named by the configuration and this sample has none: refused,
    // it is reported as possibly absent; allowed, it is no reference at all.
    assert!(
        matches!(&refs[3].decision, RefDecision::Denied { reason } if reason.contains("may not exist")),
        "{:?}",
        refs[3]
    );
    let allowed = open_with(
        &sample("plain.pvm/config.pvs"),
        &vm_dir_policy(&sample("plain.pvm/config.pvs")),
    )
    .unwrap();
    assert!(allowed
        .external_refs()
        .iter()
        .all(|r| r.name != "Snapshots.xml"));
    let f = vm.findings();
    assert!(f
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::REFERENCES && f.severity == Severity::Unsafe));
    // Each disk's reference is an unsafe `references` finding of its own.
    let disk = refs[1].finding();
    assert_eq!(disk.rule, vmsnap_core::rule::REFERENCES);
    assert_eq!(disk.severity, Severity::Unsafe);
    assert!(
        disk.message
            .contains("VM file \"data.hdd/DiskDescriptor.xml\""),
        "{disk:?}"
    );
    let stand_in = vmsnap_testkit::child(&vm, "disk:sata0:0");
    assert_eq!(stand_in.len(), 4 << 20);
    assert!(stand_in.read_at(0, &mut [0u8; 512]).is_err());
}

#[test]
fn an_encrypted_disk_is_reported_and_never_opened() {
    let (r, seen) = vmsnap_testkit::recording_resolver();
    let vm = open_with(&sample("encrypted.pvm/config.pvs"), &r).unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|p| !p.contains("harddisk")), "{seen:?}");
    assert!(vm.children().is_empty());
    let f = vm.findings();
    assert!(f.iter().any(|f| f.rule == rule::ENCRYPTED), "{f:?}");
    let refs = vm.external_refs();
    assert_eq!(refs[0].name, "harddisk.hdd");
    assert!(matches!(refs[0].decision, RefDecision::Listed));
    // A VM-level encryption keeps every disk closed.
    let p = vm_dir(
        "vm-encrypted",
        &config(&format!(
            "{}<Encryption><Enabled>1</Enabled></Encryption>",
            hdd("../../plain.pvm/system.hdd")
        )),
        None,
    );
    let (r, seen) = vmsnap_testkit::recording_resolver();
    let vm = open_with(&p, &r).unwrap();
    assert!(
        seen.lock().unwrap().iter().all(|p| !p.contains("hdd")),
        "{seen:?}"
    );
    assert_eq!(vm.describe()["encrypted"], "Hardware/Encryption: Enabled 1");
}

#[test]
fn names_leaving_the_vm_directory_are_refused() {
    for name in ["../plain.pvm/system.hdd", "/etc", ".."] {
        let p = vm_dir("escape", &config(&hdd(name)), None);
        let vm = open_with(&p, &vm_dir_policy(&p)).unwrap();
        let refs = vm.external_refs();
        assert_eq!(refs.len(), 1, "{name}: {refs:?}");
        assert!(
            !matches!(refs[0].decision, RefDecision::Opened { .. }),
            "{name}: {refs:?}"
        );
        let d = &vm.disks()[0];
        assert!(d.link.as_ref().is_some_and(|l| !l.opened()), "{name}");
    }
}

#[test]
fn damaged_configurations_fail_with_their_kinds() {
    let many: String = (0..300).map(|_| hdd("a.hdd")).collect();
    let cases: Vec<(&str, String, ErrorKind)> = vec![
        (
            "another root",
            "<ParallelsSavedStates/>".into(),
            ErrorKind::Declined,
        ),
        (
            "not XML",
            "<ParallelsVirtualMachine".into(),
            ErrorKind::Malformed,
        ),
        (
            "a DTD",
            "<!DOCTYPE x [<!ENTITY a 'b'>]><ParallelsVirtualMachine/>".into(),
            ErrorKind::Malformed,
        ),
        ("too many disks", config(&many), ErrorKind::LimitExceeded),
    ];
    for (what, text, kind) in cases {
        let p = vm_dir("damaged", &text, None);
        match open_with(&p, &vm_dir_policy(&p)) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        }
    }
    // Odd numbers and duplicate nodes are findings, not failures.
    let p = vm_dir(
        "odd",
        &config(&format!(
            "{}{}<Hdd><SystemName>b.hdd</SystemName><StackIndex>x</StackIndex></Hdd>",
            hdd("a.hdd"),
            hdd("a.hdd")
        )),
        None,
    );
    let vm = open_with(&p, &vm_dir_policy(&p)).unwrap();
    let nodes: Vec<&str> = vm.disks().iter().map(|d| d.device.node.as_str()).collect();
    assert_eq!(nodes, ["sata0:0", "hdd1", "hdd2"]);
    let config_findings = vm
        .findings()
        .iter()
        .filter(|f| f.rule == rule::CONFIG)
        .count();
    assert_eq!(config_findings, 3);
}

#[test]
fn a_damaged_snapshot_tree_is_a_finding() {
    let many: String = (0..1100)
        .map(|i| format!("<SavedStateItem guid=\"{{00000000-0000-0000-0000-{i:012}}}\"/>"))
        .collect();
    for (what, tree) in [
        ("too many", format!("<ParallelsSavedStates>{many}</ParallelsSavedStates>")),
        (
            "a bad GUID",
            "<ParallelsSavedStates><SavedStateItem guid=\"{x}\"/></ParallelsSavedStates>".into(),
        ),
        (
            "twice",
            "<ParallelsSavedStates><SavedStateItem guid=\"{00000000-0000-0000-0000-000000000001}\"/>\
             <SavedStateItem guid=\"{00000000-0000-0000-0000-000000000001}\"/></ParallelsSavedStates>"
                .into(),
        ),
        ("not XML", "<ParallelsSavedStates>".into()),
    ] {
        let p = vm_dir("tree", &config(""), Some(&tree));
        let vm = open_with(&p, &vm_dir_policy(&p)).unwrap();
        assert!(vm.snapshots().is_empty(), "{what}");
        assert!(
            vm.findings().iter().any(|f| f.rule == rule::SNAPSHOTS),
            "{what}"
        );
    }
    // A deep tree is walked without recursion.
    let deep: String = (0..900)
        .map(|i| format!("<SavedStateItem guid=\"{{00000000-0000-0000-0000-{i:012}}}\">"))
        .collect::<String>()
        + &"</SavedStateItem>".repeat(900);
    let p = vm_dir(
        "deep",
        &config(""),
        Some(&format!(
            "<ParallelsSavedStates>{deep}</ParallelsSavedStates>"
        )),
    );
    let vm = open_with(&p, &vm_dir_policy(&p)).unwrap();
    let s = vm.snapshots();
    assert!(
        s.len() == 900 || vm.findings().iter().any(|f| f.rule == rule::SNAPSHOTS),
        "{}",
        s.len()
    );
    if let Some(last) = s.last() {
        assert_eq!(last.state.parent.as_ref(), Some(&s[s.len() - 2].state.guid));
    }
}
