//! A booted Linux guest (`cargo xtask paging-guests`: target/paging/pc-4level/core.elf,
//! 256 MiB, QEMU's ELF core) written as LiME by vmsnap's LiME export (`vmsnap convert -O
//! lime`), then as AVML by Microsoft's converter (`avml convert --source-format lime
//! --format lime_compressed`): every byte of the AVML image equals the ELF core's.
//! AVML records no CPU state (its ranges are memory only, as LiME's), so the x86 layer does
//! not stack on it even with `x86.cr3` given: the stack ends at guest-physical memory, as
//! it does on the LiME file. Run: cargo test -p vmsnap-avml --test real_guest -- --ignored
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use common::{avml_convert, open_avml, same_memory};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, Options, Registry, Resolver};
use vmsnap_stack::{Outcome, Stacker};

/// The guest's core, its LiME and its AVML image (made once under target/avml-guest).
fn guest() -> (PathBuf, PathBuf, PathBuf) {
    let root = vmsnap_testkit::workspace_root();
    let core = root.join("target/paging/pc-4level/core.elf");
    assert!(
        core.is_file(),
        "{} is missing: cargo xtask paging-guests",
        core.display()
    );
    let dir = root.join("target/avml-guest");
    std::fs::create_dir_all(&dir).unwrap();
    let (lime, avml) = (dir.join("guest.lime"), dir.join("guest.avml"));
    if !avml.is_file() {
        let elf =
            vmsnap_elf::ElfCore::open_layer(Arc::new(FileLayer::open(&core).unwrap())).unwrap();
        let out = vmsnap_lime::export::export(Arc::new(elf)).unwrap();
        let mut f = std::io::BufWriter::new(std::fs::File::create(&lime).unwrap());
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < out.len() {
            let n = (out.len() - at).min(buf.len() as u64) as usize;
            out.read_at(at, &mut buf[..n]).unwrap();
            f.write_all(&buf[..n]).unwrap();
            at += n as u64;
        }
        f.flush().unwrap();
        let tmp = dir.join("guest.avml.tmp");
        avml_convert(
            &["--source-format", "lime", "--format", "lime_compressed"],
            &lime,
            &tmp,
        );
        std::fs::rename(&tmp, &avml).unwrap();
    }
    (core, lime, avml)
}

#[test]
#[ignore = "needs the real guest of cargo xtask paging-guests; CI's real-guest step runs it"]
fn avml_of_a_booted_guest_equals_its_elf_core() {
    let (core, lime, avml_path) = guest();
    let elf = vmsnap_elf::ElfCore::open_layer(Arc::new(FileLayer::open(&core).unwrap())).unwrap();
    let avml = open_avml(&avml_path);
    let n = same_memory(&avml, &elf, "avml vs core.elf");
    assert!(n >= 200 << 20, "{n} bytes compared");
    let d = avml.describe();
    // avml splits the 256 MiB range into 16 MiB blocks and leaves the all-zero ones out.
    let ranges = avml.ranges();
    assert!(ranges.len() >= 2, "{d}");
    assert!(ranges.iter().all(|r| r.header.len() <= 16 << 20), "{d}");
    assert!(d["gap_bytes"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["lime_ranges"], 0);
    assert!(d["compression_ratio"].as_f64().unwrap() > 1.5, "{d}");
    assert!(avml.cpu_state().is_empty());

    // The stacker: AVML and LiME alike end at guest-physical memory, x86 refusing for want
    // of CPU state, with or without a CR3 given.
    let cr3 = vmsnap_testkit::guest::registers(core.parent().unwrap()).get("CR3");
    let reg = Registry::empty()
        .with(&vmsnap_lime::PLUGIN)
        .unwrap()
        .with(&vmsnap_avml::PLUGIN)
        .unwrap()
        .with(&vmsnap_x86::PLUGIN)
        .unwrap();
    let resolver = Resolver::new(ExternalPolicy::SameDir);
    let mut options = Options::new();
    options.set("x86.cr3", format!("{cr3:#x}"));
    for (path, format) in [(&avml_path, "avml"), (&lime, "lime")] {
        let file: Arc<dyn Layer> = Arc::new(FileLayer::open(path).unwrap());
        let s = Stacker::new(&reg, &resolver, &options)
            .explain(true)
            .stack(file);
        let top = &s.entries[s.main_top()];
        assert_eq!(top.name, format);
        assert_eq!(top.layer.space().as_str(), "guest_physical");
        let x86 = s
            .attempts
            .iter()
            .find(|a| a.plugin == "x86" && a.on == s.main_top())
            .unwrap();
        assert!(
            matches!(&x86.outcome, Outcome::Refused(why) if why.contains("no CPU state")),
            "{format}: {:?}",
            x86.outcome
        );
    }
}
