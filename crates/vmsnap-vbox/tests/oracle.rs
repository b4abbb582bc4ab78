//! vbox samples read byte for byte against a reference reader nobody here wrote.
//!
//! TODO(new-format): this test fails until `oracle` below is filled in and
//! corpus/vbox/make.sh writes its samples with the format's reference writer
//! (docs/adding-a-format.md, "Test against the oracle").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{FileLayer, Layer};
use vmsnap_testkit::{assert_same_bytes, corpus, read_all};
use vmsnap_vbox::Vbox;

/// The whole virtual disk of `path` as the reference reader reads it. For a format QEMU
/// reads: `vmsnap_testkit::qemu_img_raw(path, &["-f", "vbox"])`; otherwise the
/// vendor's tool or a reader from PyPI (installed by tools/setup.sh).
fn oracle(path: &Path) -> Vec<u8> {
    panic!(
        "fill in the oracle: make `oracle` in crates/vmsnap-vbox/tests/oracle.rs return \
         what a reference reader nobody here wrote reads from {} (for a format QEMU reads, \
         vmsnap_testkit::qemu_img_raw(path, &[\"-f\", \"vbox\"])), and make \
         corpus/vbox/make.sh write its samples with the format's reference writer; see \
         docs/adding-a-format.md",
        path.display()
    )
}

#[test]
fn samples_read_like_the_reference_reader() {
    let path = corpus("vbox/sample.vbox");
    assert!(
        path.is_file(),
        "{} is missing: run corpus/vbox/make.sh",
        path.display()
    );
    let layer: Arc<dyn Layer> =
        Arc::new(Vbox::open_layer(Arc::new(FileLayer::open(&path).unwrap())).unwrap());
    assert_same_bytes(
        &read_all(layer.as_ref()),
        &oracle(&path),
        &path.display().to_string(),
    );
}
