//! A real booted guest (`cargo xtask paging-guests`, target/paging/pc-4level): its ELF core
//! written as an HVM dump-core by the builder (into target/xen-guest/) reads back equal to
//! the core page for page (the core read by the testkit's own ELF reader), its vCPU gives
//! the CR3 of the guest's `info registers`, the x86 layer stacks on it, and every address
//! of the guest's `gva2gpa` list translates to the physical address QEMU gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::sync::Arc;

use vmsnap_core::{ExternalPolicy, FileLayer, Layer, Options, Registry, Resolver};
use vmsnap_elf::ElfCore;
use vmsnap_stack::Stacker;
use vmsnap_x86::mode::offset_of_address;
use vmsnap_xen::builder::{write, Kind};
use vmsnap_xen::Xen;

#[test]
#[ignore = "needs the real guest of cargo xtask paging-guests (target/paging); about 20 s"]
fn a_booted_guest_as_a_dump_core_reads_and_translates_like_its_elf_core() {
    let root = vmsnap_testkit::workspace_root();
    let dir = root.join("target/paging/pc-4level");
    let core_path = dir.join("core.elf");
    assert!(core_path.is_file(), "run cargo xtask paging-guests");
    let out_dir = root.join("target/xen-guest");
    std::fs::create_dir_all(&out_dir).unwrap();
    let xen_path = out_dir.join("core-hvm.xen");
    let core = ElfCore::open_layer(Arc::new(FileLayer::open(&core_path).unwrap())).unwrap();
    let mut w = BufWriter::new(std::fs::File::create(&xen_path).unwrap());
    write(
        &core,
        &core.cpu_state(),
        &vmsnap_xen::builder::Options::new(Kind::Hvm),
        &mut w,
    )
    .unwrap();
    drop(w);

    let x = Xen::open_layer(Arc::new(FileLayer::open(&xen_path).unwrap())).unwrap();
    // Every PT_LOAD of the core, by the testkit's reader, equals the dump's pages.
    let mut f = std::fs::File::open(&core_path).unwrap();
    let (mut want, mut got) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut compared = 0u64;
    for l in vmsnap_testkit::elf::loads(&core_path) {
        f.seek(SeekFrom::Start(l.offset)).unwrap();
        let mut done = 0;
        while done < l.filesz {
            let n = (l.filesz - done).min(1 << 20) as usize;
            f.read_exact(&mut want[..n]).unwrap();
            x.read_at(l.paddr + done, &mut got[..n]).unwrap();
            assert!(
                want[..n] == got[..n],
                "differs in the MiB at {:#x}",
                l.paddr + done
            );
            done += n as u64;
        }
        compared += l.filesz;
    }
    assert!(compared > 64 << 20, "compared {compared} bytes");

    let regs = vmsnap_testkit::guest::registers(&dir);
    let cpus = x.cpu_state();
    assert_eq!(cpus[0].cr3, regs.get("CR3"));
    assert!(cpus[0].long_mode());

    let reg = Registry::empty()
        .with(&vmsnap_xen::PLUGIN)
        .unwrap()
        .with(&vmsnap_elf::PLUGIN)
        .unwrap()
        .with(&vmsnap_x86::PLUGIN)
        .unwrap();
    let resolver = Resolver::new(ExternalPolicy::SameDir);
    let options = Options::new();
    let s = Stacker::new(&reg, &resolver, &options)
        .stack(Arc::new(FileLayer::open(&xen_path).unwrap()));
    let names: Vec<&str> = s.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["file", "xen", "x86"]);
    let top = s.entries[s.main_top()].layer.clone();
    let mut n = 0;
    for line in std::fs::read_to_string(dir.join("gva2gpa.txt"))
        .unwrap()
        .lines()
    {
        let mut parts = line.split_whitespace();
        let va = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let rest: Vec<&str> = parts.collect();
        let off = offset_of_address(vmsnap_x86::Mode::Level4, va).unwrap();
        let t = top.translate(off).unwrap().unwrap();
        match rest.as_slice() {
            ["gpa:", gpa] => {
                let pa = u64::from_str_radix(gpa.trim_start_matches("0x"), 16).unwrap();
                assert_eq!(t["walk"]["physical"], format!("{pa:#x}"), "{line}");
            }
            ["Unmapped"] => assert_eq!(t["walk"]["result"], "not_mapped", "{line}"),
            r => panic!("{line}: {r:?}"),
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} samples");
}
