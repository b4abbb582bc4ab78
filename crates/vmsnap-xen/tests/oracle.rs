//! Every sample reads back equal to the ELF core QEMU wrote (its source, read by the
//! testkit's own ELF reader, independent of vmsnap-elf and of the builder): each PT_LOAD's
//! bytes at its physical address, the same pages present and nothing else; the header
//! fields and vCPU state say what the source says. Volatility 3's Xen layer reading the
//! same samples is crates/vmsnap-python/tests/test_volatility_xen.py.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeSet;

use common::{bytes, open, SAMPLES};
use vmsnap_core::{ExtentKind, Layer};
use vmsnap_testkit::elf::loads_in;

#[test]
fn samples_read_like_their_source_cores() {
    for &(sample, source, hvm, unused) in SAMPLES {
        let src = bytes(source);
        let x = open(bytes(sample)).unwrap_or_else(|e| panic!("{sample}: {e}"));
        let mut want_pages = BTreeSet::new();
        for (l, data) in loads_in(&src) {
            let mut got = vec![0u8; data.len()];
            x.read_at(l.paddr, &mut got).unwrap();
            assert!(got == data, "{sample}: PT_LOAD at {:#x} differs", l.paddr);
            for p in l.paddr / 4096..(l.paddr + l.filesz).div_ceil(4096) {
                want_pages.insert(p);
            }
        }
        // Exactly the source's pages are present; the rest is unallocated.
        let mut got_pages = BTreeSet::new();
        for e in x.extents(0..x.len()).unwrap() {
            match e.kind {
                ExtentKind::Data => {
                    assert_eq!(e.offset % 4096, 0, "{sample}");
                    got_pages.extend(e.offset / 4096..(e.offset + e.len) / 4096);
                }
                ExtentKind::Unallocated => {}
                k => panic!("{sample}: unexpected {k:?} extent"),
            }
        }
        assert_eq!(got_pages, want_pages, "{sample}");
        assert_eq!(x.len(), (want_pages.last().unwrap() + 1) * 4096, "{sample}");
        let d = x.describe();
        assert_eq!(d["domain"], if hvm { "hvm" } else { "pv" }, "{sample}");
        assert_eq!(
            d["xch_magic"],
            if hvm { "0xf00febee" } else { "0xf00febed" }
        );
        assert_eq!(d["xch_page_size"], 4096);
        assert_eq!(d["mapped_pages"], want_pages.len() as u64, "{sample}");
        assert_eq!(
            d["xch_nr_pages"],
            want_pages.len() as u64 + unused,
            "{sample}"
        );
        assert_eq!(
            d["table_entries"],
            want_pages.len() as u64 + unused,
            "{sample}"
        );
        assert_eq!(d["page_table"], if hvm { ".xen_pfn" } else { ".xen_p2m" });
        assert_eq!(d["format_version"]["minor"], 1);
        assert_eq!(d["xen_version"]["major"], 4);
        assert!(x.findings().is_empty(), "{sample}: {:?}", x.findings());
    }
}

#[test]
fn hvm_vcpus_give_the_source_cr3_and_pv_ones_only_describe_it() {
    // guest-slice.elf's QEMU note (corpus/golden/elf/guest-slice.elf.json): CR3 0x2a10000.
    let x = open(bytes("xen/slice-hvm.xen")).unwrap();
    let cpus = x.cpu_state();
    assert_eq!(cpus.len(), 1);
    assert_eq!(cpus[0].cr3, 0x2a10000);
    assert_eq!(cpus[0].cr0, 0x80050033);
    assert_eq!(cpus[0].cr4, 0x6b0);
    assert_eq!(cpus[0].arch, "x86_64");
    assert_eq!(cpus[0].regs["rip"], 0xffffffff819c3643);
    assert_eq!(cpus[0].regs["cr2"], 0xffff888003801000);
    assert_eq!(cpus[0].regs["gs_base_kernel"], 0xffff88800f800000);
    // A kernel RIP: long mode inferred (LME|LMA|NXE).
    assert_eq!(cpus[0].efer, 0xd00);

    let pv = open(bytes("xen/core-pv.xen.gz")).unwrap();
    assert!(pv.cpu_state().is_empty());
    let d = pv.describe();
    let src = vmsnap_elf::ElfCore::open_layer(common::file(bytes("elf/core.elf.gz"))).unwrap();
    let cr3 = src.cpu_state()[0].cr3;
    // ctrlreg[3] holds the machine frame (pfn + 0x100000); the p2m table gives the pfn back.
    assert_eq!(
        d["pv_cr3"]["mfn"],
        format!("{:#x}", (cr3 >> 12) + 0x10_0000)
    );
    assert_eq!(d["pv_cr3"]["pfn"], format!("{:#x}", cr3 >> 12));
}

#[test]
fn the_x86_layer_stacks_on_hvm_dumps_and_translates_like_the_guest() {
    use std::sync::Arc;
    use vmsnap_core::{ExternalPolicy, Options, Registry, Resolver};
    use vmsnap_stack::Stacker;
    let reg = Registry::empty()
        .with(&vmsnap_xen::PLUGIN)
        .unwrap()
        .with(&vmsnap_elf::PLUGIN)
        .unwrap()
        .with(&vmsnap_x86::PLUGIN)
        .unwrap();
    let resolver = Resolver::new(ExternalPolicy::SameDir);
    let options = Options::new();
    let s = Stacker::new(&reg, &resolver, &options).stack(common::file(bytes("xen/slice-hvm.xen")));
    assert!(s.error.is_none(), "{:?}", s.error);
    let names: Vec<&str> = s.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["file", "xen", "x86"]);
    let top: Arc<dyn Layer> = s.entries[s.main_top()].layer.clone();
    let phys = s.entries[1].layer.clone();
    // corpus/elf/guest-slice.txt: QEMU's paging core's virtual → physical pairs.
    for line in std::fs::read_to_string(vmsnap_testkit::corpus("elf/guest-slice.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let va = u64::from_str_radix(f[1].trim_start_matches("0x"), 16).unwrap();
        let off = vmsnap_x86::mode::offset_of_address(vmsnap_x86::Mode::Level4, va).unwrap();
        let t = top.translate(off).unwrap().unwrap();
        let w = &t["walk"];
        if f[2] == "unmapped" {
            assert_eq!(w["result"], "not_mapped", "{line}");
            continue;
        }
        let pa = u64::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap();
        assert_eq!(w["result"], "mapped", "{line}");
        assert_eq!(w["physical"], format!("{pa:#x}"), "{line}");
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        top.read_at(off, &mut a).unwrap();
        phys.read_at(pa, &mut b).unwrap();
        assert_eq!(a, b, "{line}");
    }
}
