//! Damaged vbox files fail with the error kind that names the damage, and never panic.
//!
//! TODO(new-format): one case per field the reader trusts (sizes, offsets, counts, table
//! entries), each cut from the committed sample.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{ErrorKind, FileLayer, Layer, MemSource, SniffWindow};
use vmsnap_testkit::corpus;
use vmsnap_vbox::{Vbox, PLUGIN};

fn sample() -> Vec<u8> {
    std::fs::read(corpus("vbox/sample.vbox")).expect("run corpus/vbox/make.sh")
}

fn open(bytes: Vec<u8>) -> vmsnap_core::Result<Vbox> {
    Vbox::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))))
}

fn probe_says_yes(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(65536)];
    (PLUGIN.probe)(&SniffWindow::of_bytes(head, head, bytes.len() as u64)).is_yes()
}

#[test]
fn the_sample_opens_and_every_read_path_holds() {
    let bytes = sample();
    assert!(probe_says_yes(&bytes));
    let layer: Arc<dyn Layer> = Arc::new(open(bytes).unwrap());
    vmsnap_testkit::exercise(&layer, 64 << 20);
}

#[test]
fn damaged_headers_fail_with_their_kinds() {
    let good = sample();
    let patched = |at: usize, v: u64| {
        let mut b = good.clone();
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        b
    };
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("no magic", vec![0u8; 4096], ErrorKind::Malformed),
        (
            "cut inside the header",
            good[..100].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut inside the data",
            good[..600].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "huge virtual size",
            patched(32, u64::MAX),
            ErrorKind::LimitExceeded,
        ),
        (
            "data offset inside the header",
            patched(40, 8),
            ErrorKind::Malformed,
        ),
        (
            "data offset past the end",
            patched(40, u64::MAX),
            ErrorKind::Truncated,
        ),
    ];
    for (what, bytes, kind) in cases {
        match open(bytes) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        }
    }
    assert!(!probe_says_yes(&[0u8; 4096]));
}
