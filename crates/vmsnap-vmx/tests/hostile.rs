//! Damaged and hostile configurations: bounded, never a panic, never a file opened that
//! the policy or the encryption forbids, and every reference reported.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{open, open_text, open_with, sample};
use vmsnap_core::{ErrorKind, ExternalPolicy, Layer, RefDecision, Resolver, Severity, SniffWindow};
use vmsnap_vmx::{raw::MAX_CONFIG_BYTES, rule, PLUGIN};

fn probe(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

#[test]
fn the_samples_are_recognised_and_every_read_path_holds() {
    for name in ["vm.vmx", "encrypted.vmx"] {
        let bytes = std::fs::read(sample(name)).unwrap();
        assert!(probe(&bytes), "{name}");
        let layer: Arc<dyn Layer> = Arc::new(open(name));
        vmsnap_testkit::exercise(&layer, 64 << 20);
        assert_eq!(
            vmsnap_testkit::read_all(layer.as_ref()),
            bytes,
            "{name}: its own bytes"
        );
    }
    // Neither a snapshot database, a VMDK descriptor nor a checkpoint is a VMX.
    for other in [
        "vmx/vm.vmsd",
        "vmx/data.vmdk",
        "vmx/vm.vmss",
        "vmdk/split.vmdk",
    ] {
        let bytes = std::fs::read(vmsnap_testkit::corpus(other)).unwrap();
        assert!(!probe(&bytes), "{other}");
    }
}

#[test]
fn the_configuration_is_always_an_unsafe_reference_finding() {
    // The library default: nothing opened, every reference denied, still reported.
    let vm = open_with(&sample("vm.vmx"), &Resolver::new(ExternalPolicy::Deny)).unwrap();
    assert!(vm.children().is_empty());
    let refs = vm.external_refs();
    let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["disk-000002.vmdk", "data.vmdk", "vm.vmss", "vm.vmsd"]
    );
    assert!(refs
        .iter()
        .all(|r| matches!(r.decision, RefDecision::Denied { .. })));
    // No key names `vm.vmsd`: it is looked for by convention, so, refused, it may not exist.
    assert!(
        matches!(&refs[3].decision, RefDecision::Denied { reason } if reason.contains("may not exist")),
        "{:?}",
        refs[3]
    );
    let f = vm.findings();
    assert!(f
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::REFERENCES && f.severity == Severity::Unsafe));
    // Each file not opened is named by its reference's finding: the disks and memory as
    // the VM's own files, the snapshot database as a companion.
    let per_file: Vec<(&str, Severity)> = refs
        .iter()
        .map(|r| (r.finding().rule, r.finding().severity))
        .collect();
    assert_eq!(
        per_file,
        [
            (vmsnap_core::rule::REFERENCES, Severity::Unsafe),
            (vmsnap_core::rule::REFERENCES, Severity::Unsafe),
            (vmsnap_core::rule::REFERENCES, Severity::Unsafe),
            (vmsnap_core::rule::COMPANION_FILE, Severity::Warning),
        ]
    );
    assert_eq!(vm.describe()["disks"][0]["layer"], serde_json::Value::Null);
}

#[test]
fn an_encrypted_vm_opens_nothing() {
    let (r, seen) = vmsnap_testkit::recording_resolver();
    let text = b".encoding = \"UTF-8\"\nvmx.encryptedVM = \"TRUE\"\n\
                 scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"disk.vmdk\"\n\
                 checkpoint.vmState = \"x.vmss\"\n";
    let vm = open_text(text, &sample("enc.vmx"), &r).unwrap();
    assert!(seen.lock().unwrap().is_empty(), "{seen:?}");
    assert!(vm.children().is_empty());
    assert!(vm.encryption().is_some());
    let refs = vm.external_refs();
    assert_eq!(refs.len(), 2);
    assert!(refs.iter().all(|r| r.decision == RefDecision::Listed));
    let rules: Vec<&str> = vm.findings().iter().map(|f| f.rule).collect();
    assert!(rules.contains(&rule::ENCRYPTED) && rules.contains(&vmsnap_core::rule::REFERENCES));
    // The sample: the key safe is summarised, its references are inside the data.
    let vm = open("encrypted.vmx");
    let e = &vm.describe()["encrypted"];
    assert_eq!(e["key_locators"], serde_json::json!(["phrase"]));
    assert_eq!(e["encrypted_data_chars"], 128);
    assert!(vm
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::REFERENCES && f.severity == Severity::Unsafe));
}

#[test]
fn hostile_names_sizes_and_counts_are_bounded() {
    let dir = sample("vm.vmx");
    // Too large: refused by the named limit before anything is read.
    let big = vec![b'#'; MAX_CONFIG_BYTES as usize + 1];
    let e = open_text(&big, &dir, &Resolver::new(ExternalPolicy::Deny)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert!(!probe(&big));
    // No dictionary line at all: not this format after all.
    let e = open_text(
        b"\x00\x01garbage",
        &dir,
        &Resolver::new(ExternalPolicy::Deny),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Declined);
    // Absolute, parent-directory and protocol names are refused by the same-dir policy;
    // a disk that is not a VMDK (the configuration itself), a memory file that is not a
    // checkpoint fail with the reason, and are not layers.
    let text = b"config.version = \"8\"\n\
        scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"/etc/passwd\"\n\
        scsi0:1.present = \"TRUE\"\nscsi0:1.fileName = \"../vmdk/sparse.vmdk\"\n\
        scsi0:2.present = \"TRUE\"\nscsi0:2.fileName = \"nbd://host/x\"\n\
        scsi0:3.present = \"TRUE\"\nscsi0:3.fileName = \"vm.vmx\"\n\
        scsi0:4.present = \"TRUE\"\nscsi0:4.fileName = \"missing.vmdk\"\n\
        checkpoint.vmState = \"data.vmdk\"\n";
    let vm = open_text(text, &dir, &Resolver::new(ExternalPolicy::SameDir)).unwrap();
    assert!(
        vm.children()
            .iter()
            .all(|c| c.name.starts_with("snapshot:")),
        "{:?}",
        vm.children()
    );
    let d: Vec<String> = vm
        .external_refs()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.name,
                serde_json::to_value(&r.decision).unwrap()["decision"]
            )
        })
        .collect();
    assert_eq!(
        d[..6],
        [
            "/etc/passwd \"denied\"",
            "../vmdk/sparse.vmdk \"denied\"",
            "nbd://host/x \"denied\"",
            "vm.vmx \"failed\"",
            "missing.vmdk \"failed\"",
            "data.vmdk \"failed\"",
        ]
    );
    // Then its `<stem>.vmsd`, the sample's database (no key names it), and what it names.
    assert_eq!(d[6], "vm.vmsd \"opened\"");
    let why = &vm.describe()["disks"][3]["status"];
    assert!(why.as_str().unwrap().contains("not a vmdk file"), "{why}");
    // Thousands of devices and snapshots: capped, with a finding.
    let mut t = String::from("config.version = \"8\"\n");
    for i in 0..2000 {
        t.push_str(&format!(
            "scsi{i}:0.present = \"TRUE\"\nscsi{i}:0.fileName = \"d{i}.vmdk\"\n"
        ));
    }
    let (r, seen) = vmsnap_testkit::recording_resolver();
    let vm = open_text(t.as_bytes(), &sample("many.vmx"), &r).unwrap();
    assert_eq!(vm.disks().len(), 256);
    assert!(seen.lock().unwrap().len() <= 257);
    assert!(vm
        .findings()
        .iter()
        .any(|f| f.rule == rule::DICTIONARY && f.message.contains("256 devices")));
}

#[test]
fn a_missing_snapshot_database_is_no_reference_but_a_named_one_is() {
    let dir = sample("novmsd.vmx");
    let vm = open_text(
        b"config.version = \"8\"\n",
        &dir,
        &Resolver::new(ExternalPolicy::SameDir),
    )
    .unwrap();
    assert!(vm.external_refs().is_empty());
    assert!(vm.describe()["snapshot_database"].is_null());
    let vm = open_text(
        b"config.version = \"8\"\nsnapshot.fileName = \"gone.vmsd\"\n",
        &dir,
        &Resolver::new(ExternalPolicy::SameDir),
    )
    .unwrap();
    assert_eq!(vm.external_refs().len(), 1);
    assert!(matches!(
        vm.external_refs()[0].decision,
        RefDecision::Failed { .. }
    ));
}
