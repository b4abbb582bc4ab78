//! A booted Linux guest (the distribution's cloud kernel, 96 MiB, stopped at its panic for
//! want of a root file system) dumped by QEMU as ELF, kdump-zlib (flattened) and
//! kdump-raw-zlib at the same paused moment: every page of both kdump files equals the ELF
//! core's, the CR3 of QEMU's CPU note is the monitor's `info registers` CR3, and the x86
//! layer stacks on the dump. Too large to commit: `corpus/kdump/dump-guest.py` writes it to
//! target/kdump-guest (about 30 s under TCG; the test makes it when missing).
//! Run: cargo test -p vmsnap-kdump --test real_guest -- --ignored
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::same_pages_as_elf;
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, Options, Registry, Resolver};
use vmsnap_kdump::Kdump;
use vmsnap_stack::Stacker;

/// The guest's dumps, made once.
fn guest() -> PathBuf {
    let root = vmsnap_testkit::workspace_root();
    let dir = root.join("target/kdump-guest");
    if !dir.join("raw.kdump").is_file() {
        let boot = root.join("target/paging/kernel/boot");
        let kernel = std::fs::read_dir(&boot)
            .unwrap_or_else(|e| panic!("{}: {e} (run cargo xtask paging-guests)", boot.display()))
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("vmlinuz")
            })
            .expect("a vmlinuz in target/paging/kernel/boot");
        vmsnap_testkit::run(
            Command::new("python3")
                .arg(root.join("corpus/kdump/dump-guest.py"))
                .arg(&kernel)
                .arg(&dir)
                .args(["-m", "96"]),
        );
    }
    dir
}

#[test]
#[ignore = "boots a guest under QEMU (about 30 s); CI's real-guest step runs it"]
fn kdump_of_a_booted_guest_matches_its_elf_core_and_cr3() {
    let dir = guest();
    let elf = std::fs::read(dir.join("core.elf")).unwrap();
    let cr3 = vmsnap_testkit::guest::Registers::read(&dir.join("registers.txt")).get("CR3");
    assert_ne!(cr3, 0, "the booted guest has paging on");
    for name in ["flat.kdump", "raw.kdump"] {
        let path = dir.join(name);
        let k = Kdump::open_layer(Arc::new(FileLayer::open(&path).unwrap())).unwrap();
        let pages = same_pages_as_elf(&k, &elf, name);
        assert!(pages >= 96 * 256 - 96, "{name}: {pages} pages");
        let cpus = k.cpu_state();
        assert_eq!(cpus.len(), 1, "{name}");
        assert_eq!(cpus[0].cr3, cr3, "{name}");
        assert_eq!(cpus[0].arch, "x86_64", "{name}");
        assert!(k.findings().is_empty(), "{name}: {:?}", k.findings());
        // The stacker puts the x86 layer on the dump: guest-virtual memory from CR3.
        let reg = Registry::empty()
            .with(&vmsnap_kdump::PLUGIN)
            .unwrap()
            .with(&vmsnap_x86::PLUGIN)
            .unwrap();
        let resolver = Resolver::new(ExternalPolicy::SameDir);
        let options = Options::new();
        let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
        let s = Stacker::new(&reg, &resolver, &options).stack(file);
        let top = &s.entries[s.main_top()];
        assert_eq!(
            top.layer.space().as_str(),
            "guest_virtual",
            "{name}: {}",
            top.name
        );
    }
}
