//! The ASIF samples read byte for byte as dissect.hypervisor's reader reads them (an
//! ignored test: `cargo xtask dissect` runs it with dissect.hypervisor installed, through
//! `tests/scripts/dissect_asif.py`), the UUIDs and metadata as it parses them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use vmsnap_asif::Asif;
use vmsnap_core::{FileLayer, Layer};
use vmsnap_testkit::corpus;

/// Bytes dissect reads at a time (and the pieces compared).
const PIECE: u64 = 1024 * 1024;

/// What `tests/scripts/dissect_asif.py` prints for `path`, with the Python that has
/// dissect.hypervisor (`$DISSECT_PYTHON`, which `cargo xtask dissect` sets; else the venv
/// it makes under target/, else `python3`).
fn dissect(path: &Path) -> Value {
    let venv = vmsnap_testkit::workspace_root().join("target/dissect-venv/bin/python");
    let python = std::env::var("DISSECT_PYTHON").unwrap_or_else(|_| {
        if venv.is_file() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_asif.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(path)
        .arg(PIECE.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "dissect failed ({python}; `cargo xtask dissect` installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs dissect.hypervisor: cargo xtask dissect"]
fn samples_read_like_dissect() {
    for name in ["disk.asif", "apple.asif"] {
        let path = corpus(&format!("asif/{name}"));
        let want = dissect(&path);
        let disk = Asif::open_layer(Arc::new(FileLayer::open(&path).unwrap())).unwrap();
        assert_eq!(want["size"], disk.len(), "{name}: size");
        assert_eq!(want["guid"], disk.header().uuid(), "{name}: uuid");
        let stable = want["metadata"]["internal metadata"]["stable uuid"].as_str();
        assert_eq!(
            stable,
            disk.metadata().and_then(|m| m.stable_uuid.as_deref()),
            "{name}: stable uuid"
        );
        let pieces = want["pieces"].as_object().unwrap();
        assert!(!pieces.is_empty(), "{name}: dissect read only zeros");
        let mut buf = vec![0u8; PIECE as usize];
        let mut nonzero = 0;
        for at in (0..disk.len()).step_by(PIECE as usize) {
            let n = PIECE.min(disk.len() - at) as usize;
            disk.read_at(at, &mut buf[..n]).unwrap();
            let got = &buf[..n];
            match pieces.get(&at.to_string()) {
                Some(hex) => {
                    nonzero += 1;
                    let hex = hex.as_str().unwrap();
                    let want: Vec<u8> = (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                        .collect();
                    assert!(want == got, "{name}: bytes differ in the piece at {at:#x}");
                }
                None => assert!(
                    got.iter().all(|&b| b == 0),
                    "{name}: dissect reads zeros at {at:#x}, vmsnap does not"
                ),
            }
        }
        assert_eq!(nonzero, pieces.len(), "{name}: pieces compared");
    }
}
