//! 4 GiB real guests (pc and q35, blobs above 4 GiB), generated into target/ by
//! corpus/qemu/make.sh. Slow: run with `cargo test -p vmsnap-qemu --release -- --ignored`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
use vmsnap_qemu::{QemuMemory, PLUGIN};

fn compare(stream: &Path, elf: &Path) -> QemuMemory {
    let reg = Registry::empty().with(&PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(stream).unwrap());
    let mem = QemuMemory::open(lower, &ctx).unwrap();
    let loads = vmsnap_testkit::elf::loads(elf);
    let mut f = std::fs::File::open(elf).unwrap();
    let mut want = vec![0u8; 1 << 20];
    let mut got = vec![0u8; 1 << 20];
    let mut covered = Vec::new();
    for l in loads {
        let (paddr, size) = (l.paddr, l.filesz);
        f.seek(SeekFrom::Start(l.offset)).unwrap();
        let mut done = 0;
        while done < size {
            let n = (size - done).min(1 << 20) as usize;
            f.read_exact(&mut want[..n]).unwrap();
            mem.read_at(paddr + done, &mut got[..n]).unwrap();
            assert!(
                got[..n] == want[..n],
                "{}: differs in {:#x}+{n:#x}",
                stream.display(),
                paddr + done
            );
            done += n as u64;
        }
        covered.push((paddr, paddr + size));
    }
    // No data outside the PT_LOADs. Zero extents may span segment boundaries (runs of
    // zero pages coalesce across the ELF's holes), and read as zeros wherever they are.
    for e in mem.extents(0..mem.len()).unwrap() {
        if e.kind == vmsnap_core::ExtentKind::Data {
            assert!(
                covered
                    .iter()
                    .any(|&(s, t)| e.offset >= s && e.offset + e.len <= t)
                    || covered
                        .iter()
                        .all(|&(s, t)| e.offset + e.len <= s || e.offset >= t)
                        && {
                            let mut b = vec![0u8; e.len.min(1 << 20) as usize];
                            mem.read_at(e.offset, &mut b).unwrap();
                            b.iter().all(|&x| x == 0)
                        },
                "unexpected data extent {e:?}"
            );
        }
    }
    mem
}

#[test]
#[ignore = "starts QEMU with 4 GiB guests and compares 8 GiB of ELF cores; slow"]
fn four_gib_guests_match_their_elf_cores() {
    let out = vmsnap_testkit::workspace_root()
        .join("target")
        .join("qemu-4g");
    let root = vmsnap_testkit::workspace_root();
    if !out.join("q35-4g-mapped.qevm").exists() {
        let st = std::process::Command::new("bash")
            .arg("corpus/qemu/make.sh")
            .current_dir(&root)
            .env("OUT", &out)
            .env("MEM", "4G")
            .env("HIGH", "1")
            .env("GZIP", "0")
            .status()
            .unwrap();
        assert!(st.success());
    }
    for (m, below, above) in [("pc", 3u64 << 30, 1u64 << 30), ("q35", 2 << 30, 2 << 30)] {
        let elf = out.join(format!("{m}-4g.elf"));
        for v in ["", "-noswitch", "-novmdesc", "-mapped"] {
            let mem = compare(&out.join(format!("{m}-4g{v}.qevm")), &elf);
            let d = mem.describe();
            assert_eq!(d["layout"]["ram_below_4g"], below, "{m}{v}");
            assert_eq!(d["layout"]["ram_above_4g"], above, "{m}{v}");
            assert_eq!(mem.len(), (4u64 << 30) + above);
            let mut b = [0u8; 16];
            mem.read_at(0x1_0020_0000, &mut b).unwrap();
            assert!(
                b.iter().any(|&x| x != 0),
                "blob above 4 GiB missing in {m}{v}"
            );
        }
    }
}
