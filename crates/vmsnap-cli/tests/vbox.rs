//! A VirtualBox VM from the command line: `check` calls its settings unsafe (rule
//! `references`), `--layer` selects every state's disks by their pinned names (the
//! settings file or the VM directory as input, the `vm-dir` policy by default), and a disk
//! the policy keeps out fails to read instead of reading zeros. Bytes against qemu-img.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{stderr, vmsnap};
use vmsnap_testkit::{corpus, qemu_img_raw};

#[test]
fn check_calls_the_settings_unsafe_for_their_references() {
    let o = vmsnap(&["check", "--json", "corpus/vbox/vm.vbox"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules = v["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["rule"] == "references" && r["verdict"] == "fail"),
        "{rules:?}"
    );
    // Every disk is listed as a file of the VM (unsafe), the saved state as a configured
    // path it names but is never read.
    let listed = |rule: &str, verdict: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|r| r["rule"] == rule && r["verdict"] == verdict)
            .map(|r| r["message"].as_str().unwrap().to_string())
            .filter(|m| m.starts_with("references "))
            .collect()
    };
    let disks = listed("references", "fail");
    assert_eq!(disks.len(), 4, "{rules:?}");
    assert!(
        disks[0].starts_with("references VM file \"base.vdi\""),
        "{disks:?}"
    );
    let saved = listed("configured_path", "warn");
    assert_eq!(saved.len(), 1, "{rules:?}");
    assert!(saved[0].contains(".sav"), "{saved:?}");
}

#[test]
fn layers_select_each_states_disks() {
    let base = qemu_img_raw(&corpus("vbox/base.vdi"), &["-f", "vdi"]);
    let vmdk = qemu_img_raw(&corpus("vbox/data.vmdk"), &["-f", "vmdk"]);
    for (input, layer, want) in [
        (
            "corpus/vbox/vm.vbox",
            "snapshot:Installed/disk:sata0:0",
            &base,
        ),
        ("corpus/vbox", "disk:sata1:0", &vmdk),
        ("corpus/vbox/", "snapshot:Before update/disk:sata1:0", &vmdk),
    ] {
        let o = vmsnap(&["cat", "--layer", layer, input]);
        assert_eq!(o.status.code(), Some(0), "{input} {layer}: {}", stderr(&o));
        assert!(
            o.stdout == *want,
            "{input} {layer}: bytes differ from qemu-img's"
        );
    }
    // The current state's disk is a differencing chain: it reads, and differs from the base.
    let o = vmsnap(&["cat", "--layer", "disk:sata0:0", "corpus/vbox/vm.vbox"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), base.len());
    assert_ne!(o.stdout, base);
}

#[test]
fn a_disk_the_policy_keeps_out_fails_to_read() {
    // `same-dir` does not reach Snapshots/, where the differencing images are.
    let o = vmsnap(&[
        "cat",
        "--external",
        "same-dir",
        "--layer",
        "disk:sata0:0",
        "corpus/vbox/vm.vbox",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is unavailable"), "{}", stderr(&o));
}
