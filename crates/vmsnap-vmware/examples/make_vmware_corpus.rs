//! Writes the VMware corpus samples (`corpus/vmware/`) with the test builder:
//! `cargo run -p vmsnap-vmware --example make_vmware_corpus -- corpus/vmware`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;

use vmsnap_vmware::builder::{samples, Sample};

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "corpus/vmware".into()),
    );
    std::fs::create_dir_all(&dir).unwrap();
    for Sample { files, .. } in samples() {
        for (name, image) in files {
            image.write_to(&dir.join(name)).unwrap();
            println!("wrote {}", dir.join(name).display());
        }
    }
}
