//! `vmsnap meta FILE --json` on the Hyper-V configuration sample: the whole key tree,
//! lossless, with types, insertion order, repeated siblings and file-object values, as
//! `corpus/hyperv/make.sh` wrote it (`crates/vmsnap-hyperv/tests/common/samples.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;

use serde_json::{json, Value};
use vmsnap_testkit::workspace_root;

fn meta_json(file: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["meta", file, "--json"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The child of `node` named `name` (the first, when repeated).
fn child<'a>(node: &'a Value, name: &str) -> &'a Value {
    node["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no child {name} in {}", node["name"]))
}

fn names(node: &Value) -> Vec<&str> {
    node["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect()
}

fn guid(i: u32) -> String {
    format!("{{{i:08x}-5d1c-4c52-9f1e-7a3b2c1d0e0f}}")
}

#[test]
fn meta_json_prints_the_whole_hyperv_key_tree() {
    let v = meta_json("corpus/hyperv/config.vmcx");
    let layers: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(layers, ["file", "hyperv-vmcx"]);
    let m = &v["layers"][1]["meta"];
    assert_eq!(m["format"], "hyperv-vmcx");
    let s = &m["structure"];
    assert_eq!(s["keys"], 53);
    assert_eq!(s["orphan_keys"], 0);
    assert_eq!(s["checksum_mismatches"], 0);
    assert_eq!(
        s["objects"],
        json!({"key_tables": 6, "file_objects": 1, "free": 0, "object_tables": 0, "total": 7})
    );
    assert_eq!(s["header"]["sequence"], 25);
    assert_eq!(s["header"]["version"], 0x400);

    let tree = &m["tree"];
    assert_eq!(tree["orphans"], json!([]));
    assert_eq!(tree["keys"].as_array().unwrap().len(), 1);
    let conf = &tree["keys"][0];
    assert_eq!(conf["name"], "configuration");
    assert_eq!(conf["type"], "node");
    assert_eq!(
        conf["node"],
        json!({"change_sequence": 0, "next_insertion": 31})
    );
    // Children by insertion sequence, not by table or physical order.
    assert_eq!(
        names(conf),
        [
            "global_settings",
            "_83f8638b-8dca-4152-9eda-2ca8b33039b4_",
            "_c3b5a3c4-4d1e-4d22-8a0b-7c8f0b1a2d3e_",
            "properties",
            "settings",
            "metrics",
            "manifest"
        ]
    );
    let seqs: Vec<u64> = conf["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["insertion_sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 21, 22, 24, 25, 29, 30]);
    let manifest = child(conf, "manifest");
    assert_eq!(
        (&manifest["type"], &manifest["value"], &manifest["table"]),
        (&json!("int"), &json!(1), &json!(2))
    );

    // Every value type, with its value.
    let props = child(conf, "properties");
    let typed: Vec<(&str, &str, &Value)> = props["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap(),
                k["type"].as_str().unwrap(),
                &k["value"],
            )
        })
        .collect();
    assert_eq!(
        typed,
        [
            ("name", "string", &json!("corpus-vm")),
            ("global_id", "string", &json!(guid(42))),
            ("version", "int", &json!(2304)),
            ("subtype", "int", &json!(1)),
            ("creation_time", "array", &json!("a76e45669e97d701")),
            ("type_id", "string", &json!("Virtual Machines")),
            ("is_saved", "bool", &json!(false)),
            ("weight", "double", &json!(1.5)),
        ]
    );
    assert_eq!(child(props, "creation_time")["size"], 8);

    // Repeated siblings are all kept, in order, across tables.
    let metrics = child(conf, "metrics");
    assert_eq!(names(metrics), ["devicetype"; 3]);
    for (i, dt) in metrics["children"].as_array().unwrap().iter().enumerate() {
        assert_eq!(dt["table"], if i == 1 { 2 } else { 1 }, "devicetype {i}");
        assert_eq!(child(dt, "guid")["value"], guid(i as u32));
        let inst = child(dt, "deviceinstance");
        assert_eq!(names(inst), ["metric"; 3]);
        let values: Vec<Value> = inst["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| json!([k["type"], k["value"]]))
            .collect();
        let want: Vec<Value> = (0..3).map(|j| json!(["uint", i * 100 + j])).collect();
        assert_eq!(values, want, "devicetype {i}");
    }

    // A string stored in a file object: flagged, located, and read whole.
    let notes = child(child(conf, "global_settings"), "notes");
    assert_eq!(notes["type"], "string");
    assert_eq!(notes["flags"], 1);
    assert_eq!(notes["file_object"], json!({"offset": 36864, "size": 4600}));
    assert_eq!(
        notes["value"],
        "a note that is long enough for a file object. ".repeat(50)
    );
    let drive = child(
        child(
            child(conf, "_83f8638b-8dca-4152-9eda-2ca8b33039b4_"),
            "controller0",
        ),
        "drive1",
    );
    assert_eq!(child(drive, "pathname")["value"], "D:\\iso\\install.iso");
}

#[test]
fn check_calls_a_configuration_that_names_files_unsafe_by_the_references_rule() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["check", "--json", "corpus/hyperv/config.vmcx"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "unsafe");
    let rule = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "references")
        .expect("a references rule");
    assert_eq!(rule["verdict"], "fail", "{rule}");
}
