//! Writes the Hyper-V corpus samples (built from the documented format by the test
//! builder) into the directory given as the first argument.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus/hyperv".into());
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for (name, make) in common::samples::all() {
        let b = make();
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, &b.bytes).expect("write a sample");
        println!("{} {} bytes", path.display(), b.bytes.len());
    }
}
