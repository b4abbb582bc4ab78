//! The whole chain on real Linux guests: a QEMU migration stream and QEMU's physical ELF
//! core each stack file → memory format → x86 by themselves, in the paging mode and with
//! the root the guest's `info registers` printed, and every PT_LOAD of QEMU's paging core
//! (`dump-guest-memory -p`, the oracle) reads byte-exact through the stacked virtual layer.
//!
//! The guests are made by `tools/make-paging-guest.py` into `target/paging/` (a 4-level,
//! a 5-level and a 32-bit PAE one); CI makes them and runs this with `--ignored`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap::core::{ExternalPolicy, FileLayer, Layer, Options, Resolver};
use vmsnap::stack::{Stack, Stacker};
use vmsnap::x86::mode::offset_of_address;
use vmsnap::x86::Mode;

/// Guests made, with the mode each must be in. The 4-level one is required.
fn guests() -> Vec<(PathBuf, Mode)> {
    let root = vmsnap_testkit::workspace_root().join("target/paging");
    let made = |name: &str| {
        let d = root.join(name);
        d.join("gva2gpa.txt").exists().then_some(d)
    };
    let mut v = vec![(
        made("pc-4level").expect("run tools/make-paging-guest.py first"),
        Mode::Level4,
    )];
    v.extend(made("pc-5level").map(|d| (d, Mode::Level5)));
    v.extend(made("pc-pae").map(|d| (d, Mode::Pae)));
    v
}

fn stack(path: &Path) -> Stack {
    let reg = vmsnap::registry().unwrap();
    let resolver = Resolver::new(ExternalPolicy::SameDir);
    let options = Options::new();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(path).unwrap());
    Stacker::new(&reg, &resolver, &options).stack(file)
}

/// The main chain's plugin names, file first.
fn chain(s: &Stack) -> Vec<String> {
    let mut v = Vec::new();
    let mut at = Some(s.main_top());
    while let Some(i) = at {
        v.push(s.entries[i].name.clone());
        at = s.entries[i].parent;
    }
    v.reverse();
    v
}

#[test]
#[ignore = "needs tools/make-paging-guest.py (boots a real kernel); CI runs it"]
fn snapshots_stack_down_to_virtual_memory_byte_exact() {
    for (dir, mode) in guests() {
        let regs = vmsnap_testkit::guest::registers(&dir);
        let root = format!("{:#x}", mode.root_of(regs.get("CR3")));
        let nxe = regs.get("EFER") & (1 << 11) != 0;
        let oracle_path = dir.join("core-paging.elf");
        let loads = vmsnap_testkit::elf::loads(&oracle_path);
        assert!(loads.len() > 10, "{}", oracle_path.display());
        for (input, format) in [("stream.bin", "qemu"), ("core.elf", "elf-core")] {
            let what = format!("{}/{input}", dir.display());
            let s = stack(&dir.join(input));
            assert!(s.error.is_none(), "{what}: {:?}", s.error);
            assert_eq!(chain(&s), ["file", format, "x86"], "{what}");
            let top = s.entries[s.main_top()].layer.clone();
            let d = top.describe();
            assert_eq!(d["mode"], mode.id(), "{what}");
            assert_eq!(d["root"], root.as_str(), "{what}");
            // The stream records EFER; the ELF core does not, and NXE is inferred with PAE.
            assert_eq!(d["nx_enabled"], nxe, "{what}");
            let mut oracle = std::fs::File::open(&oracle_path).unwrap();
            let (mut want, mut got) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
            let mut compared = 0u64;
            for l in &loads {
                let start = offset_of_address(mode, l.vaddr).unwrap();
                oracle.seek(SeekFrom::Start(l.offset)).unwrap();
                let mut done = 0;
                while done < l.filesz {
                    let n = (l.filesz - done).min(1 << 20) as usize;
                    oracle.read_exact(&mut want[..n]).unwrap();
                    top.read_at(start + done, &mut got[..n]).unwrap();
                    assert!(
                        want[..n] == got[..n],
                        "{what}: differs in the MiB at virtual {:#x}",
                        l.vaddr + done
                    );
                    done += n as u64;
                }
                compared += l.filesz;
            }
            assert!(
                compared > 64 << 20,
                "{what}: compared only {compared} bytes"
            );
        }
    }
}
