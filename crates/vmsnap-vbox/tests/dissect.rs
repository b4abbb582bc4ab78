//! What vmsnap reads from the sample VM's settings against dissect.hypervisor's
//! VirtualBox descriptor parser (`descriptor/vbox.py`): the machine, the media registry
//! with each medium's parent, and the disks of the current state and of every snapshot.
//! Ignored by default: `cargo xtask dissect` runs it with `$DISSECT_PYTHON` set to a
//! Python that has dissect.hypervisor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use serde_json::{json, Map, Value};
use vmsnap_core::ExternalPolicy;

/// What `tests/scripts/dissect_vbox.py` prints for `path`.
fn dissect(path: &std::path::Path) -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_vbox.py");
    let python = std::env::var("DISSECT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "dissect failed ({python}; `cargo xtask dissect` installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The same facts from vmsnap's `meta()`, in the script's shape.
fn vmsnap(path: &std::path::Path) -> Value {
    let (vm, _) = common::open(path, ExternalPolicy::Deny);
    let m = vm.unwrap().meta();
    let media: Map<String, Value> = m["media_registry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["uuid"].as_str().unwrap().to_string(),
                json!({"location": d["location"], "format": d["format"], "type": d["type"],
                       "parent": d["parent"], "encrypted": d["encrypted"]}),
            )
        })
        .collect();
    let uuids = |disks: &Value| -> Vec<Value> {
        disks
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["image_uuid"].clone())
            .collect()
    };
    let snapshots: Map<String, Value> = m["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["uuid"].as_str().unwrap().to_string(),
                json!({"name": s["name"], "parent": s["parent"], "disks": uuids(&s["disks"])}),
            )
        })
        .collect();
    json!({
        "name": m["vm"]["name"],
        "uuid": m["vm"]["uuid"],
        "current_snapshot": m["vm"]["current_snapshot"],
        "media": media,
        "disks": uuids(&m["disks"]),
        "snapshots": snapshots,
    })
}

#[test]
#[ignore = "needs dissect.hypervisor: cargo xtask dissect"]
fn dissect_reads_the_same_machine() {
    let encrypted = common::copy_sample("vbox-dissect-encrypted", |t| {
        t.replace(
            "location=\"base.vdi\" format=\"VDI\" type=\"Normal\">",
            "location=\"base.vdi\" format=\"VDI\" type=\"Normal\">\n          <Property name=\"CRYPT/KeyStore\" value=\"x\"/>",
        )
    });
    for path in [common::sample(), encrypted.join("vm.vbox")] {
        let want = dissect(&path);
        assert_eq!(want["media"].as_object().unwrap().len(), 4);
        assert_eq!(want["snapshots"].as_object().unwrap().len(), 2);
        assert_eq!(vmsnap(&path), want, "{}", path.display());
    }
}
