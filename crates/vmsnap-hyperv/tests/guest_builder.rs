//! The `builder` feature's saved-state writer: a `.vmrs` made from arbitrary
//! guest-physical ranges and registers reads back through the reader page for page,
//! with holes between ranges and past a range's last byte reading as zeros, the map
//! listing exactly the stored data blocks, and the registers (CR3) recorded; and a
//! sparse one declaring many blocks with a few pieces present.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::builder::{
    saved_state, saved_state_from, sparse_saved_state, GuestOpts, DATA_BLOCK, PAGE,
};
use common::encode::{guest_bytes, PageMode, Vp};
use common::open_with;
use vmsnap_core::{ExtentKind, Layer};
use vmsnap_hyperv::{PLUGIN, RAM_PLUGIN};

const MIB: u64 = 1 << 20;

/// Ranges like an ELF core's: low memory, a range not a whole number of blocks or
/// pages, and one above 4 GiB with a zero block in the middle.
fn ranges() -> Vec<(u64, Vec<u8>)> {
    let mut high = guest_bytes(3 * MIB as usize, 3);
    high[MIB as usize..2 * MIB as usize].fill(0);
    vec![
        (0, guest_bytes(640 << 10, 1)),
        (MIB, guest_bytes((2 * MIB + 5 * PAGE + 100) as usize, 2)),
        (5 << 30, high),
    ]
}

fn vp() -> Vp {
    Vp {
        index: 0,
        gp: core::array::from_fn(|i| 0x100 * i as u64),
        cr: [0x8005_0033, 0, 0x0123_4000, 0x0035_06f8, 0, 0xd01],
        idtr: (0xfff, 0xffff_fe00_0000_0000),
        gdtr: (0x7f, 0xffff_fe00_0001_0000),
    }
}

fn check(layer: &dyn Layer, ranges: &[(u64, Vec<u8>)]) {
    let last = ranges.last().unwrap();
    assert_eq!(layer.len(), last.0 + last.1.len() as u64);
    for (gpa, bytes) in ranges {
        let mut buf = vec![0u8; bytes.len()];
        layer.read_at(*gpa, &mut buf).unwrap();
        assert!(buf == *bytes, "range at {gpa:#x}");
    }
    // Holes between ranges and the padding of a partial last page read as zeros.
    for at in [640 << 10, 3 * MIB + 5 * PAGE + 100, 4 << 30] {
        let mut page = vec![0xAAu8; 100];
        layer.read_at(at, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0), "at {at:#x}");
    }
    let cpus = layer.cpu_state();
    assert_eq!(cpus.len(), 1);
    assert_eq!(cpus[0].cr3, 0x0123_4000);
    assert_eq!(cpus[0].regs["rip"], 0x100 * 16);
}

fn present(layer: &dyn Layer) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = Vec::new();
    for e in layer.extents(0..layer.len()).unwrap() {
        if e.kind == ExtentKind::Unallocated {
            continue;
        }
        match v.last_mut() {
            Some(l) if l.0 + l.1 == e.offset => l.1 += e.len,
            _ => v.push((e.offset, e.len)),
        }
    }
    v
}

#[test]
fn ranges_and_registers_read_back() {
    let r = ranges();
    let borrowed: Vec<(u64, &[u8])> = r.iter().map(|(g, b)| (*g, &b[..])).collect();
    for compress in [None, Some(PageMode::Auto), Some(PageMode::Variable)] {
        let o = GuestOpts {
            compress,
            ..GuestOpts::default()
        };
        let built = saved_state(&borrowed, &[vp()], &o);
        let layer = open_with(built.bytes, &[&PLUGIN, &RAM_PLUGIN]).unwrap();
        assert_eq!(layer.name(), "hyperv-vmrs-ram");
        check(&*layer, &r);
        // Every declared page is present (ranges are stored whole, in whole pages).
        let expected: Vec<(u64, u64)> = r
            .iter()
            .map(|(g, b)| (*g, (b.len() as u64).div_ceil(PAGE) * PAGE))
            .collect();
        assert_eq!(present(&*layer), expected, "{compress:?}");
    }
}

#[test]
fn a_reader_and_extents_skipping_zero_blocks() {
    let r = ranges();
    let extents: Vec<(u64, u64)> = r.iter().map(|(g, b)| (*g, b.len() as u64)).collect();
    let mut calls = 0;
    let read = |gpa: u64, buf: &mut [u8]| {
        calls += 1;
        assert!(buf.len() as u64 <= DATA_BLOCK);
        let (start, bytes) = r.iter().rfind(|(g, _)| *g <= gpa).unwrap();
        let at = (gpa - start) as usize;
        buf.copy_from_slice(&bytes[at..at + buf.len()]);
        Ok(())
    };
    let o = GuestOpts {
        skip_zero_blocks: true,
        ..GuestOpts::default()
    };
    let built = saved_state_from(&extents, read, &[vp()], &o).unwrap();
    // One call per data block: 1 + 3 + 3.
    assert_eq!(calls, 7);
    let layer = open_with(built.bytes, &[&PLUGIN, &RAM_PLUGIN]).unwrap();
    check(&*layer, &r);
    // The zero block of the high range is left out: its MiB is unallocated.
    let high = 5u64 << 30;
    let p = present(&*layer);
    assert_eq!(p[p.len() - 2], (high, MIB));
    assert_eq!(p[p.len() - 1], (high + 2 * MIB, MIB));
    assert!(layer
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_hyperv::rule::RAM_BLOCK_MISSING));
}

#[test]
fn declared_extents_with_a_few_present_pieces() {
    // 64 extents of 16 MiB with 16 MiB holes between them; a piece crossing a data-block
    // boundary in extent 0, a page in extent 40, the last bytes of extent 63.
    let extents: Vec<(u64, u64)> = (0..64).map(|i| (i * 32 * MIB, 16 * MIB)).collect();
    let a = guest_bytes(2 * PAGE as usize, 5);
    let b = guest_bytes(PAGE as usize, 6);
    let c = vec![0x5Au8; 300];
    let end = 63 * 32 * MIB + 16 * MIB;
    let pieces: [(u64, &[u8]); 3] = [
        (MIB - PAGE, &a),
        (40 * 32 * MIB + 7 * MIB, &b),
        (end - 300, &c),
    ];
    let built = sparse_saved_state(&extents, &pieces, &[], &GuestOpts::default());
    let layer = open_with(built.bytes, &[&PLUGIN, &RAM_PLUGIN]).unwrap();
    assert_eq!(layer.len(), end);
    for (gpa, bytes) in pieces {
        let mut buf = vec![0u8; bytes.len()];
        layer.read_at(gpa, &mut buf).unwrap();
        assert_eq!(buf, bytes, "at {gpa:#x}");
    }
    // Present: the data blocks the pieces touch (1 MiB each), nothing else.
    assert_eq!(
        present(&*layer),
        [
            (0, 2 * MIB),
            (40 * 32 * MIB + 7 * MIB, MIB),
            (end - MIB, MIB)
        ]
    );
    assert!(layer.cpu_state().is_empty());
}
