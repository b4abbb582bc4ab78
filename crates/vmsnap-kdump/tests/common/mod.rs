//! The oracle comparison shared by the sample and real-guest tests: a kdump dump against
//! the ELF core QEMU wrote of the same paused guest, read by the test-only ELF reader
//! (vmsnap_testkit::elf, independent of vmsnap-elf).
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use vmsnap_core::{ExtentKind, FileLayer, Layer, LayerExt, MemSource};
use vmsnap_kdump::Kdump;
use vmsnap_testkit::assert_same_bytes;

pub const PAGE: u64 = 4096;

pub fn open_bytes(bytes: impl Into<Arc<[u8]>>) -> vmsnap_core::Result<Kdump> {
    Kdump::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))))
}

/// Checks that `k` holds exactly the pages of the ELF core `elf` (page-granular: the
/// pages its PT_LOADs cover), each with the core's bytes, and that its extents say so.
/// Returns how many pages were compared.
pub fn same_pages_as_elf(k: &Kdump, elf: &[u8], what: &str) -> u64 {
    let loads = vmsnap_testkit::elf::loads_in(elf);
    assert!(!loads.is_empty(), "{what}: the oracle core has no PT_LOAD");
    let mut elf_pages = BTreeSet::new();
    for (l, bytes) in &loads {
        assert_eq!(l.paddr % PAGE, 0, "{what}: PT_LOAD not page-aligned");
        for i in 0..bytes.len() as u64 / PAGE {
            elf_pages.insert(l.paddr / PAGE + i);
        }
    }
    let h = k.header();
    assert_eq!(h.block_size, PAGE, "{what}");
    let dumped: BTreeSet<u64> = (0..h.max_mapnr).filter(|&p| k.is_dumped(p)).collect();
    assert_eq!(dumped.len() as u64, k.dumped_pages(), "{what}");
    assert_eq!(
        dumped, elf_pages,
        "{what}: the dumped pages are not the core's"
    );
    // Every PT_LOAD, read through the kdump layer, is the core's bytes.
    for (l, bytes) in &loads {
        let got = k
            .read_vec(l.paddr, bytes.len() as u64, 1 << 31, "test")
            .unwrap();
        assert_same_bytes(&got, bytes, &format!("{what}: PT_LOAD at {:#x}", l.paddr));
    }
    // Extents: dumped pages are data or zero (zero ones read as zeros), the rest holes.
    let ext = k.extents(0..k.len()).unwrap();
    assert_eq!(ext.first().unwrap().offset, 0);
    assert_eq!(ext.last().unwrap().end(), k.len());
    let mut zero_pages = 0u64;
    for e in &ext {
        let (first, last) = (e.offset / PAGE, (e.end() - 1) / PAGE);
        assert_eq!(e.offset % PAGE, 0, "{what}: {e:?}");
        match e.kind {
            ExtentKind::Unallocated => {
                assert!(dumped.range(first..=last).next().is_none(), "{what}: {e:?}")
            }
            ExtentKind::Data | ExtentKind::Zero => {
                assert_eq!(
                    dumped.range(first..=last).count() as u64,
                    last - first + 1,
                    "{what}: {e:?}"
                );
                if e.kind == ExtentKind::Zero {
                    zero_pages += last - first + 1;
                    let z = k.read_vec(e.offset, e.len, 1 << 31, "test").unwrap();
                    assert!(z.iter().all(|&b| b == 0), "{what}: zero extent {e:?}");
                }
            }
            other => panic!("{what}: unexpected extent kind {other:?}"),
        }
    }
    // QEMU points every all-zero page at its one shared zero page.
    let zero_in_elf = loads
        .iter()
        .flat_map(|(_, b)| b.chunks(PAGE as usize))
        .filter(|p| p.iter().all(|&b| b == 0))
        .count() as u64;
    assert_eq!(zero_pages, zero_in_elf, "{what}: zero pages");
    dumped.len() as u64
}
