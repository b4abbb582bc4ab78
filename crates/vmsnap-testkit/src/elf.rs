//! Test-only ELF: a program-header reader independent of the vmsnap-elf crate (written from
//! the ELF specification's field offsets, for the oracle cores QEMU's `dump-guest-memory`
//! writes), and a builder of little-endian ELF32/ELF64 cores for crafted cases.

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
    /// Bytes in memory (past `filesz`: zeros).
    pub memsz: u64,
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;

/// Whether the file is ELF64, and where its program headers are: (offset, entry size,
/// count), from the ELF header (52 bytes for ELF32, 64 for ELF64).
fn table(h: &[u8]) -> (bool, u64, u64, u64) {
    assert_eq!(&h[..4], b"\x7fELF");
    let is64 = h[4] == 2;
    let u = |o: usize, n: usize| {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&h[o..o + n]);
        u64::from_le_bytes(b)
    };
    if is64 {
        (true, u(0x20, 8), u(0x36, 2), u(0x38, 2))
    } else {
        (false, u(0x1c, 4), u(0x2a, 2), u(0x2c, 2))
    }
}

/// (type, offset, vaddr, paddr, filesz, memsz) of each program header.
fn headers(ph: &[u8], entsize: u64, is64: bool) -> Vec<(u32, Load)> {
    ph.chunks(entsize as usize)
        .map(|p| {
            let u = |o: usize, n: usize| {
                let mut b = [0u8; 8];
                b[..n].copy_from_slice(&p[o..o + n]);
                u64::from_le_bytes(b)
            };
            let ty = u(0, 4) as u32;
            let load = if is64 {
                Load {
                    offset: u(8, 8),
                    vaddr: u(0x10, 8),
                    paddr: u(0x18, 8),
                    filesz: u(0x20, 8),
                    memsz: u(0x28, 8),
                }
            } else {
                Load {
                    offset: u(4, 4),
                    vaddr: u(8, 4),
                    paddr: u(0xc, 4),
                    filesz: u(0x10, 4),
                    memsz: u(0x14, 4),
                }
            };
            (ty, load)
        })
        .collect()
}

fn of_type(elf: &[u8], ty: u32) -> Vec<Load> {
    let (is64, phoff, entsize, count) = table(elf);
    let ph = &elf[phoff as usize..(phoff + entsize * count) as usize];
    headers(ph, entsize, is64)
        .into_iter()
        .filter(|(t, _)| *t == ty)
        .map(|(_, l)| l)
        .collect()
}

/// The PT_LOADs of the little-endian ELF file at `path`, in header order.
pub fn loads(path: &Path) -> Vec<Load> {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = [0u8; 64];
    f.read_exact(&mut h).unwrap();
    let (is64, phoff, entsize, count) = table(&h);
    let mut ph = vec![0u8; (entsize * count) as usize];
    f.seek(SeekFrom::Start(phoff)).unwrap();
    f.read_exact(&mut ph).unwrap();
    headers(&ph, entsize, is64)
        .into_iter()
        .filter(|(t, _)| *t == PT_LOAD)
        .map(|(_, l)| l)
        .collect()
}

/// The PT_LOADs of an ELF image held in memory, headers only (their bytes need not be in
/// it: hostile cases point past the end).
pub fn program_loads(elf: &[u8]) -> Vec<Load> {
    of_type(elf, PT_LOAD)
}

/// The PT_NOTEs of an ELF image held in memory, as (offset, filesz).
pub fn note_segments(elf: &[u8]) -> Vec<(u64, u64)> {
    of_type(elf, PT_NOTE)
        .into_iter()
        .map(|l| (l.offset, l.filesz))
        .collect()
}

/// The PT_LOADs of an ELF image held in memory, each with its bytes.
pub fn loads_in(elf: &[u8]) -> Vec<(Load, &[u8])> {
    program_loads(elf)
        .into_iter()
        .map(|l| (l, &elf[l.offset as usize..(l.offset + l.filesz) as usize]))
        .collect()
}

/// A program header for [`build`]; `offset` is relative to the start of the payload.
#[derive(Debug, Clone, Copy)]
pub struct Ph {
    /// `p_type` (1 PT_LOAD, 4 PT_NOTE).
    pub p_type: u32,
    /// Offset of its bytes in the payload.
    pub offset: u64,
    /// Virtual address.
    pub vaddr: u64,
    /// Physical address.
    pub paddr: u64,
    /// Bytes in the file.
    pub filesz: u64,
    /// Bytes in memory.
    pub memsz: u64,
}

impl Ph {
    /// A PT_LOAD of guest-physical `paddr` (also its virtual address).
    pub fn load(paddr: u64, offset: u64, filesz: u64, memsz: u64) -> Ph {
        Ph {
            p_type: PT_LOAD,
            offset,
            vaddr: paddr,
            paddr,
            filesz,
            memsz,
        }
    }

    /// A PT_NOTE.
    pub fn note(offset: u64, filesz: u64) -> Ph {
        Ph {
            p_type: PT_NOTE,
            offset,
            vaddr: 0,
            paddr: 0,
            filesz,
            memsz: 0,
        }
    }
}

/// A little-endian ELF file of `e_type` (4: a core) for `machine` (62: x86-64, 3: i386)
/// with the program headers `phs` and then `payload`.
pub fn build(is64: bool, e_type: u16, machine: u16, phs: &[Ph], payload: &[u8]) -> Vec<u8> {
    let (ehsize, phsize) = if is64 { (64usize, 56usize) } else { (52, 32) };
    let data_start = (ehsize + phs.len() * phsize) as u64;
    let mut f = vec![0u8; ehsize];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = if is64 { 2 } else { 1 };
    f[5] = 1;
    f[6] = 1;
    f[16..18].copy_from_slice(&e_type.to_le_bytes());
    f[18..20].copy_from_slice(&machine.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    if is64 {
        f[32..40].copy_from_slice(&(ehsize as u64).to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&(phsize as u16).to_le_bytes());
        f[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    } else {
        f[28..32].copy_from_slice(&(ehsize as u32).to_le_bytes());
        f[40..42].copy_from_slice(&52u16.to_le_bytes());
        f[42..44].copy_from_slice(&(phsize as u16).to_le_bytes());
        f[44..46].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    }
    for p in phs {
        let off = p.offset.wrapping_add(data_start);
        f.extend_from_slice(&p.p_type.to_le_bytes());
        if is64 {
            f.extend_from_slice(&0u32.to_le_bytes());
            for v in [off, p.vaddr, p.paddr, p.filesz, p.memsz, 0] {
                f.extend_from_slice(&v.to_le_bytes());
            }
        } else {
            for v in [off, p.vaddr, p.paddr, p.filesz, p.memsz] {
                f.extend_from_slice(&(v as u32).to_le_bytes());
            }
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// One note record (name, type, descriptor), each part padded to 4 bytes.
pub fn note(name: &str, ty: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let name = format!("{name}\0");
    v.extend_from_slice(&(name.len() as u32).to_le_bytes());
    v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(name.as_bytes());
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v.extend_from_slice(desc);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}
