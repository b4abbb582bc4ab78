//! Writes the Hyper-V corpus samples (built from the documented format by the test
//! builder) into the directory given as the first argument, and the fuzz seeds of the
//! `hyperv_ram` and `xpress` targets into its `fuzz-seeds/<target>/`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus/hyperv".into());
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create the corpus directory");
    for (name, make) in common::samples::all() {
        let b = make();
        let path = dir.join(name);
        std::fs::write(&path, &b.bytes).expect("write a sample");
        println!("{} {} bytes", path.display(), b.bytes.len());
    }
    let seeds = dir.join("fuzz-seeds");
    // Seeds no longer made must not linger.
    let _ = std::fs::remove_dir_all(&seeds);
    for s in common::samples::fuzz_seeds() {
        let target = seeds.join(s.target);
        std::fs::create_dir_all(&target).expect("create a fuzz-seed directory");
        let path = target.join(s.name);
        std::fs::write(&path, &s.bytes).expect("write a fuzz seed");
        println!("{} {} bytes", path.display(), s.bytes.len());
    }
}
