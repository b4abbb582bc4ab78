//! Test helpers: the real samples, an ELF core builder for crafted cases, and an
//! independent PT_LOAD extractor (written against the ELF spec, not the crate).
#![allow(dead_code)]
// Builders and readers outside `#[test]` functions, which clippy.toml's test allowances do
// not cover.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver,
};

/// The decompressed sample, decompressed once per test binary (debug-mode inflate of
/// 36 MiB is slow).
pub fn gunzip(rel: &str) -> Arc<[u8]> {
    static CACHE: Mutex<BTreeMap<String, Arc<[u8]>>> = Mutex::new(BTreeMap::new());
    let mut c = CACHE.lock().unwrap();
    c.entry(rel.to_string())
        .or_insert_with(|| {
            let f = std::fs::File::open(vmsnap_testkit::corpus(rel)).unwrap();
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(f)
                .read_to_end(&mut out)
                .unwrap();
            out.into()
        })
        .clone()
}

pub fn blob(name: &str) -> Vec<u8> {
    std::fs::read(vmsnap_testkit::corpus(&format!("elf/{name}"))).unwrap()
}

/// (address, blob file) of the seeded guest RAM.
pub const BLOBS: [(u64, &str); 4] = [
    (0x100000, "blob-a.bin"),
    (0x1234000, "blob-b.bin"),
    (0x1ff0000, "blob-c.bin"),
    (0x1_0000_0000, "blob-d.bin"),
];

pub fn file_layer(bytes: impl Into<Arc<[u8]>>) -> Arc<dyn Layer> {
    Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))))
}

/// Opens through the plugin, as the stacker would.
pub fn open(bytes: impl Into<Arc<[u8]>>) -> vmsnap_core::Result<Arc<dyn Layer>> {
    let reg = Registry::empty().with(&vmsnap_elf::PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    (vmsnap_elf::PLUGIN.open)(file_layer(bytes), &ctx)
}

pub fn probe(bytes: &[u8]) -> vmsnap_core::Probe {
    let head = &bytes[..bytes.len().min(65536)];
    let tail = &bytes[bytes.len().saturating_sub(65536)..];
    (vmsnap_elf::PLUGIN.probe)(&vmsnap_core::SniffWindow::of_bytes(
        head,
        tail,
        bytes.len() as u64,
    ))
}

/// A PT_LOAD read by the independent extractor.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

fn le(b: &[u8], at: usize, n: usize) -> u64 {
    let mut v = 0u64;
    for i in (0..n).rev() {
        v = (v << 8) | u64::from(b[at + i]);
    }
    v
}

/// Little-endian ELF32/64 PT_LOADs, straight from the spec's field offsets.
pub fn extract_loads(f: &[u8]) -> Vec<Load> {
    assert_eq!(&f[..4], b"\x7fELF");
    let is64 = f[4] == 2;
    let (phoff, phentsize, phnum) = if is64 {
        (le(f, 32, 8), le(f, 54, 2), le(f, 56, 2))
    } else {
        (le(f, 28, 4), le(f, 42, 2), le(f, 44, 2))
    };
    (0..phnum)
        .map(|i| (phoff + i * phentsize) as usize)
        .filter(|&p| le(f, p, 4) == 1)
        .map(|p| {
            if is64 {
                Load {
                    offset: le(f, p + 8, 8),
                    vaddr: le(f, p + 16, 8),
                    paddr: le(f, p + 24, 8),
                    filesz: le(f, p + 32, 8),
                    memsz: le(f, p + 40, 8),
                }
            } else {
                Load {
                    offset: le(f, p + 4, 4),
                    vaddr: le(f, p + 8, 4),
                    paddr: le(f, p + 12, 4),
                    filesz: le(f, p + 16, 4),
                    memsz: le(f, p + 20, 4),
                }
            }
        })
        .collect()
}

/// Every PT_NOTE's (offset, filesz) from the extractor.
pub fn extract_note_segments(f: &[u8]) -> Vec<(u64, u64)> {
    let is64 = f[4] == 2;
    let (phoff, phentsize, phnum) = if is64 {
        (le(f, 32, 8), le(f, 54, 2), le(f, 56, 2))
    } else {
        (le(f, 28, 4), le(f, 42, 2), le(f, 44, 2))
    };
    (0..phnum)
        .map(|i| (phoff + i * phentsize) as usize)
        .filter(|&p| le(f, p, 4) == 4)
        .map(|p| {
            if is64 {
                (le(f, p + 8, 8), le(f, p + 32, 8))
            } else {
                (le(f, p + 4, 4), le(f, p + 16, 4))
            }
        })
        .collect()
}

/// A program header for the builder; `offset` is relative to the start of the payload.
#[derive(Debug, Clone, Copy)]
pub struct Ph {
    pub p_type: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

impl Ph {
    pub fn load(paddr: u64, offset: u64, filesz: u64, memsz: u64) -> Ph {
        Ph {
            p_type: 1,
            offset,
            vaddr: paddr,
            paddr,
            filesz,
            memsz,
        }
    }
    pub fn note(offset: u64, filesz: u64) -> Ph {
        Ph {
            p_type: 4,
            offset,
            vaddr: 0,
            paddr: 0,
            filesz,
            memsz: 0,
        }
    }
}

/// A little-endian ELF core of `e_type` with `phs` and `payload` after the headers.
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
        if is64 {
            f.extend_from_slice(&p.p_type.to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            for v in [off, p.vaddr, p.paddr, p.filesz, p.memsz, 0] {
                f.extend_from_slice(&v.to_le_bytes());
            }
        } else {
            f.extend_from_slice(&p.p_type.to_le_bytes());
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

/// One note record, padded.
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
