//! Real booted Linux guests (`cargo xtask paging-guests`: target/paging/pc-4level, 4-level
//! paging, and pc-pae, 32-bit PAE) turned into crash dumps by the builder from QEMU's ELF
//! core, with the CR3 the QEMU monitor printed (`info registers`): 64-bit dumps of the
//! 4-level guest, 32-bit PaeEnabled dumps of the PAE one, full (type 1) and bitmap (type 5).
//! Every page of each dump equals the core's (read by an ELF reader independent of vmsnap),
//! the stack puts the x86 layer on the dump in the guest's paging mode, and `vmsnap
//! translate` (vmsnap_report::translate) of every address of the monitor's `gva2gpa`
//! samples gives the monitor's answer.
//! Run: cargo test -p vmsnap-windump --test real_guest -- --ignored
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap_core::{ExternalPolicy, FileLayer, Layer, Options, Registry, Resolver};
use vmsnap_stack::Stacker;
use vmsnap_windump::builder::{from_elf_core, Kind, Spec};
use vmsnap_windump::{Width, Windump};

fn guest(name: &str) -> PathBuf {
    let d = vmsnap_testkit::workspace_root()
        .join("target/paging")
        .join(name);
    assert!(
        d.join("gva2gpa.txt").is_file(),
        "{}: run cargo xtask paging-guests",
        d.display()
    );
    d
}

/// Every PT_LOAD of `core` equals the dump's bytes at its physical address.
fn same_pages(dump: &dyn Layer, core: &Path, what: &str) -> u64 {
    let mut f = std::fs::File::open(core).unwrap();
    let (mut want, mut got) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut compared = 0;
    for l in vmsnap_testkit::elf::loads(core) {
        f.seek(SeekFrom::Start(l.offset)).unwrap();
        let mut done = 0;
        while done < l.filesz {
            let n = (l.filesz - done).min(1 << 20) as usize;
            f.read_exact(&mut want[..n]).unwrap();
            dump.read_at(l.paddr + done, &mut got[..n]).unwrap();
            assert!(
                want[..n] == got[..n],
                "{what}: the MiB at physical {:#x} differs",
                l.paddr + done
            );
            done += n as u64;
        }
        compared += l.filesz;
    }
    compared
}

/// The monitor's `gva2gpa` samples through the stacked x86 layer, as `vmsnap translate`
/// reports them.
fn translations_match(top: &dyn Layer, dir: &Path, what: &str) -> usize {
    let text = std::fs::read_to_string(dir.join("gva2gpa.txt")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let va = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let rest: Vec<&str> = parts.collect();
        let doc = vmsnap_report::translate::document(top, "x86", what, va).unwrap();
        let physical = doc["walk"]["physical"].as_str();
        match rest.as_slice() {
            ["gpa:", gpa] => {
                let want = u64::from_str_radix(gpa.trim_start_matches("0x"), 16).unwrap();
                assert_eq!(
                    physical,
                    Some(format!("{want:#x}").as_str()),
                    "{what}: {line}: {doc}"
                );
            }
            ["Unmapped"] => assert_eq!(physical, None, "{what}: {line}: {doc}"),
            r => panic!("{what}: {line}: unexpected monitor answer {r:?}"),
        }
        n += 1;
    }
    n
}

#[test]
#[ignore = "needs cargo xtask paging-guests (real booted guests); CI's real-guest step runs it"]
fn dumps_of_real_guests_read_like_their_cores_and_translate_like_the_monitor() {
    let out = vmsnap_testkit::workspace_root().join("target/windump-guest");
    std::fs::create_dir_all(&out).unwrap();
    let reg_ = Registry::empty()
        .with(&vmsnap_windump::PLUGIN)
        .unwrap()
        .with(&vmsnap_x86::PLUGIN)
        .unwrap();
    for (name, width, pae, mode) in [
        ("pc-4level", Width::Bits64, false, "level_4"),
        ("pc-pae", Width::Bits32, true, "pae"),
    ] {
        let dir = guest(name);
        let regs = vmsnap_testkit::guest::registers(&dir);
        let cr3 = regs.get("CR3");
        assert_ne!(cr3, 0);
        for kind in [Kind::Full, Kind::BitmapFull] {
            let what = format!("{name} {kind:?}");
            let path = out.join(format!("{name}-{kind:?}.dmp"));
            from_elf_core(
                &dir.join("core.elf"),
                &Spec::new(width, kind, cr3, pae),
                &path,
            )
            .unwrap();
            let w = Windump::open_layer(Arc::new(FileLayer::open(&path).unwrap())).unwrap();
            assert!(w.findings().is_empty(), "{what}: {:?}", w.findings());
            let compared = same_pages(&w, &dir.join("core.elf"), &what);
            assert!(compared > 64 << 20, "{what}: compared {compared} bytes");
            assert_eq!(w.cpu_state()[0].cr3, cr3, "{what}");
            // The stack: file -> windump -> x86, in the guest's mode.
            let resolver = Resolver::new(ExternalPolicy::SameDir);
            let options = Options::new();
            let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
            let s = Stacker::new(&reg_, &resolver, &options).stack(file);
            assert!(s.error.is_none(), "{what}: {:?}", s.error);
            let top = &s.entries[s.main_top()];
            assert_eq!(top.name, "x86", "{what}");
            assert_eq!(top.layer.describe()["mode"], mode, "{what}");
            let n = translations_match(top.layer.as_ref(), &dir, &what);
            assert!(n >= 10, "{what}: only {n} samples");
            std::fs::remove_file(&path).unwrap();
        }
    }
}
