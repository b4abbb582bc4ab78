//! kdump samples QEMU wrote (`dump-guest-memory`, kdump-zlib flattened and kdump-raw-zlib)
//! read page for page against the ELF core QEMU wrote of the same paused guest.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
#[path = "../../vmsnap-elf/tests/common/mod.rs"]
mod elfcommon;

use std::sync::Arc;

use common::{open_bytes, same_pages_as_elf};
use elfcommon::{blob, gunzip, BLOBS};
use vmsnap_core::{FileLayer, Layer, LayerExt};
use vmsnap_kdump::Kdump;

#[test]
fn flattened_and_raw_dumps_of_the_corpus_guest_match_its_elf_core() {
    let elf = gunzip("elf/core.elf.gz");
    let mut described = Vec::new();
    for (sample, flattened) in [("kdump/flat.kdump.gz", true), ("kdump/raw.kdump.gz", false)] {
        let k = open_bytes(gunzip(sample)).unwrap();
        assert_eq!(k.flattened(), flattened, "{sample}");
        let pages = same_pages_as_elf(&k, &elf, sample);
        // 32 MiB of RAM, the 2 MiB pc-dimm at 4 GiB, the 256 KiB BIOS alias below 4 GiB.
        assert_eq!(pages, 8192 + 512 + 64, "{sample}");
        for (addr, name) in BLOBS {
            let want = blob(name);
            let got = k
                .read_vec(addr, want.len() as u64, 1 << 20, "test")
                .unwrap();
            assert_eq!(got, want, "{sample}: {name}");
        }
        // QEMU's CPU note: a -S guest has not run, so it is the reset state.
        let cpus = k.cpu_state();
        assert_eq!(cpus.len(), 1, "{sample}");
        assert_eq!(cpus[0].cr0, 0x60000010, "{sample}");
        assert_eq!(cpus[0].regs["rip"], 0xfff0, "{sample}");
        assert_eq!(cpus[0].regs["cs"], 0xf000, "{sample}");
        let mut d = k.describe();
        assert_eq!(d["compression"], "zlib");
        assert_eq!(d["form"], if flattened { "flattened" } else { "raw" });
        for key in [
            "form",
            "flattened_records",
            "flattened_version",
            "dump_size",
        ] {
            d.as_object_mut().unwrap().remove(key);
        }
        described.push(d);
    }
    // Both forms carry the same dump.
    assert_eq!(described[0], described[1]);
}

#[test]
fn small_sample_matches_its_elf_core_and_the_elf_reader_agrees_on_the_cpu() {
    let path = vmsnap_testkit::corpus("kdump/small.kdump");
    let k = Kdump::open_layer(Arc::new(FileLayer::open(&path).unwrap())).unwrap();
    let elf = gunzip("kdump/small.elf.gz");
    let pages = same_pages_as_elf(&k, &elf, "small.kdump");
    assert_eq!(pages, 1024 + 64);
    let a = blob("blob-a.bin");
    assert_eq!(
        k.read_vec(0x100000, a.len() as u64, 1 << 20, "t").unwrap(),
        a
    );
    let b = blob("blob-b.bin");
    assert_eq!(
        k.read_vec(0x200000, b.len() as u64, 1 << 20, "t").unwrap(),
        b
    );
    // The notes are the same QEMU notes the ELF core carries.
    let core = vmsnap_elf::ElfCore::open_layer(elfcommon::file_layer(elf)).unwrap();
    assert_eq!(k.cpu_state(), core.cpu_state());
    assert_eq!(k.core_notes().prstatus, core.prstatus().to_vec());
    let d = k.describe();
    assert_eq!(d["pages_dumped"], 1088);
    assert_eq!(d["pages_existing"], 1088);
    assert_eq!(d["pages_excluded"], 0);
    assert_eq!(d["header_version"], 6);
    assert_eq!(d["layout_bits"], "64");
    assert_eq!(d["nr_cpus"], 1);
    assert_eq!(d["notes"].as_array().unwrap().len(), 2);
}
