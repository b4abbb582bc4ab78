//! dissect.archive (PyPI; `cargo xtask dissect` installs it into a venv under `target/`)
//! reads the corpus sample: the same uuid, time, configuration files and devices, and
//! every device byte for byte. Ignored by plain `cargo test`: `cargo xtask dissect` runs it
//! with `DISSECT_PYTHON` set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use vmsnap_core::{FileLayer, Layer};
use vmsnap_testkit::{assert_same_bytes, corpus, read_all, scratch_dir};
use vmsnap_vma::{uuid_text, Vma};

#[test]
#[ignore = "needs dissect.archive: `cargo xtask dissect` (or set DISSECT_PYTHON)"]
fn dissect_reads_what_vmsnap_reads() {
    let python = std::env::var("DISSECT_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_vma.py");
    let path = corpus("vma/sample.vma");
    let dir = scratch_dir("vma-dissect");
    let out = Command::new(&python)
        .arg(script)
        .arg(&path)
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "dissect failed ({python}; `cargo xtask dissect` installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vma = Vma::open_layer(Arc::new(FileLayer::open(&path).unwrap())).unwrap();
    let h = vma.header();
    assert_eq!(d["uuid"], uuid_text(&h.uuid));
    assert_eq!(d["ctime"], vma.meta()["ctime"]);
    let configs = d["configs"].as_object().unwrap();
    assert_eq!(configs.len(), h.configs.len());
    for c in &h.configs {
        let hex: String = c.data.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(configs[&c.name], hex, "{}", c.name);
    }
    let devices = d["devices"].as_array().unwrap();
    assert_eq!(devices.len(), vma.devices().len());
    for (want, dev) in devices.iter().zip(vma.devices()) {
        let info = dev.device();
        assert_eq!(want["id"], info.id);
        assert_eq!(want["name"], info.name);
        assert_eq!(want["size"], info.size);
        let theirs = std::fs::read(dir.join(format!("{}.raw", info.id))).unwrap();
        assert_same_bytes(&read_all(dev.as_ref()), &theirs, &info.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
