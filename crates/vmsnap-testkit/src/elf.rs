//! A test-only ELF64 program-header reader, independent of the vmsnap-elf crate, for the
//! oracle cores QEMU's `dump-guest-memory` writes.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// One PT_LOAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// File offset of its bytes.
    pub offset: u64,
    /// Virtual address (guest-virtual in a `-p` paging core).
    pub vaddr: u64,
    /// Physical address.
    pub paddr: u64,
    /// Bytes in the file.
    pub filesz: u64,
}

/// Where the program headers are: (offset, entry size, count), from the 64-byte header.
fn table(h: &[u8]) -> (u64, u64, u64) {
    assert_eq!(&h[..4], b"\x7fELF");
    assert_eq!(h[4], 2, "not ELF64");
    let u16_at = |o: usize| u64::from(u16::from_le_bytes(h[o..o + 2].try_into().unwrap()));
    let phoff = u64::from_le_bytes(h[0x20..0x28].try_into().unwrap());
    (phoff, u16_at(0x36), u16_at(0x38))
}

/// The PT_LOADs among program headers of `entsize` bytes each.
fn parse(ph: &[u8], entsize: u64) -> Vec<Load> {
    ph.chunks(entsize as usize)
        .filter(|p| u32::from_le_bytes(p[..4].try_into().unwrap()) == 1)
        .map(|p| {
            let g = |o: usize| u64::from_le_bytes(p[o..o + 8].try_into().unwrap());
            Load {
                offset: g(8),
                vaddr: g(0x10),
                paddr: g(0x18),
                filesz: g(0x20),
            }
        })
        .collect()
}

/// The PT_LOADs of the little-endian ELF64 file at `path`, in header order.
pub fn loads(path: &Path) -> Vec<Load> {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = [0u8; 64];
    f.read_exact(&mut h).unwrap();
    let (phoff, entsize, count) = table(&h);
    let mut ph = vec![0u8; (entsize * count) as usize];
    f.seek(SeekFrom::Start(phoff)).unwrap();
    f.read_exact(&mut ph).unwrap();
    parse(&ph, entsize)
}

/// The PT_LOADs of an ELF64 image held in memory, each with its bytes.
pub fn loads_in(elf: &[u8]) -> Vec<(Load, &[u8])> {
    let (phoff, entsize, count) = table(elf);
    let ph = &elf[phoff as usize..(phoff + entsize * count) as usize];
    parse(ph, entsize)
        .into_iter()
        .map(|l| (l, &elf[l.offset as usize..(l.offset + l.filesz) as usize]))
        .collect()
}
