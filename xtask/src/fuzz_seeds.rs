//! `cargo xtask fuzz-seeds`: small real seeds for the memory-dump targets.
//!
//! The LiME and ELF samples are 35 MiB guests, committed gzipped, which a fuzzer cannot
//! start from. This rewrites them into files of the same format that keep every header
//! (LiME range headers, the ELF header, program headers and notes) with each range shrunk
//! to a few KiB of its real data, so they stay under the 64 KiB seed cap and still open.
//! Outputs: `corpus/lime/fuzz-seeds/lime/` and `corpus/elf/fuzz-seeds/elf_core/`.

use std::path::Path;
use std::process::Command;

use crate::root;

/// The largest committed seed.
const SEED_CAP: usize = 64 << 10;

fn gunzip(path: &Path) -> Vec<u8> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gzip -dc {}", path.display());
    out.stdout
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

/// Which part of each range a seed keeps.
#[derive(Clone, Copy)]
enum Window {
    Head,
    Tail,
}

/// Which `keep` bytes of a range of `len` bytes the window selects: (skip, take).
fn window(len: u64, keep: u64, w: Window) -> (u64, u64) {
    let take = len.min(keep);
    match w {
        Window::Head => (0, take),
        Window::Tail => (len - take, take),
    }
}

/// A LiME file with every range header kept (start moved to the kept window) and each
/// range cut to `keep` bytes of its real data.
fn shrink_lime(src: &[u8], keep: u64, w: Window) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 32 <= src.len() {
        assert_eq!(u32le(src, at), 0x4C69_4D45, "LiME magic at {at:#x}");
        let (start, end) = (u64le(src, at + 8), u64le(src, at + 16));
        let len = end - start + 1;
        let (skip, take) = window(len, keep, w);
        let data = at + 32 + skip as usize;
        out.extend_from_slice(&src[at..at + 8]);
        out.extend_from_slice(&(start + skip).to_le_bytes());
        out.extend_from_slice(&(start + skip + take - 1).to_le_bytes());
        out.extend_from_slice(&src[at + 24..at + 32]);
        out.extend_from_slice(&src[data..data + take as usize]);
        at += 32 + len as usize;
    }
    out
}

/// An ELF64 core with its header, program headers and notes kept and each `PT_LOAD`
/// cut to `keep` bytes of its real data (file and memory size alike, the physical and
/// virtual addresses moved with the window); section headers dropped.
fn shrink_elf(src: &[u8], keep: u64, w: Window) -> Vec<u8> {
    assert_eq!(&src[..4], b"\x7fELF");
    assert_eq!(src[4], 2, "ELF64");
    let phoff = u64le(src, 0x20) as usize;
    let phentsize = usize::from(u16le(src, 0x36));
    let phnum = usize::from(u16le(src, 0x38));
    let mut out = src[..64].to_vec();
    out[0x28..0x30].fill(0); // e_shoff
    out[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    out[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    let mut phdrs = src[phoff..phoff + phnum * phentsize].to_vec();
    let mut body = Vec::new();
    let data_start = (64 + phdrs.len()) as u64;
    for i in 0..phnum {
        let p = &mut phdrs[i * phentsize..(i + 1) * phentsize];
        let (ty, off, filesz) = (u32le(p, 0), u64le(p, 8) as usize, u64le(p, 32));
        let (skip, take) = if ty == 1 {
            window(filesz, keep, w)
        } else {
            (0, filesz)
        };
        let new_off = data_start + body.len() as u64;
        body.extend_from_slice(&src[off + skip as usize..off + (skip + take) as usize]);
        p[8..16].copy_from_slice(&new_off.to_le_bytes());
        if ty == 1 {
            let (vaddr, paddr) = (u64le(p, 16), u64le(p, 24));
            p[16..24].copy_from_slice(&(vaddr + skip).to_le_bytes());
            p[24..32].copy_from_slice(&(paddr + skip).to_le_bytes());
            p[40..48].copy_from_slice(&take.to_le_bytes());
        }
        p[32..40].copy_from_slice(&take.to_le_bytes());
    }
    out.extend_from_slice(&phdrs);
    out.extend_from_slice(&body);
    out
}

/// How many bytes of each of `n` ranges fit `budget`, in whole 4 KiB pages.
fn per_range(budget: usize, n: usize) -> u64 {
    ((budget / n.max(1)) as u64 / 4096).max(1) * 4096
}

fn write_seed(dir: &Path, name: &str, bytes: &[u8]) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    if bytes.len() > SEED_CAP {
        eprintln!("xtask: seed {name} is {} bytes, over the cap", bytes.len());
        return false;
    }
    std::fs::write(dir.join(name), bytes).unwrap();
    eprintln!(
        "xtask: {} ({} bytes)",
        dir.join(name).display(),
        bytes.len()
    );
    true
}

/// Writes the LiME and ELF seeds.
pub fn run() -> bool {
    let corpus = root().join("corpus");
    let lime = gunzip(&corpus.join("lime/guest.lime.gz"));
    let ranges = {
        let (mut n, mut at) = (0, 0usize);
        while at + 32 <= lime.len() {
            n += 1;
            at += 32 + (u64le(&lime, at + 16) - u64le(&lime, at + 8) + 1) as usize;
        }
        n
    };
    let elf = gunzip(&corpus.join("elf/core.elf.gz"));
    let phnum = usize::from(u16le(&elf, 0x38));
    let phoff = u64le(&elf, 0x20) as usize;
    // Headers, program headers and every non-load segment are kept whole.
    let fixed = 64
        + phnum * 56
        + (0..phnum)
            .map(|i| phoff + i * 56)
            .filter(|&p| u32le(&elf, p) != 1)
            .map(|p| u64le(&elf, p + 32) as usize)
            .sum::<usize>();
    let loads = (0..phnum)
        .filter(|&i| u32le(&elf, phoff + i * 56) == 1)
        .count();
    let lime_dir = corpus.join("lime/fuzz-seeds/lime");
    let elf_dir = corpus.join("elf/fuzz-seeds/elf_core");
    let _ = std::fs::remove_dir_all(&lime_dir);
    let _ = std::fs::remove_dir_all(&elf_dir);
    let mut ok = true;
    for (w, tag) in [(Window::Head, "head"), (Window::Tail, "tail")] {
        let keep = per_range(SEED_CAP - ranges * 32 - 4096, ranges);
        ok &= write_seed(
            &lime_dir,
            &format!("guest-{tag}.lime"),
            &shrink_lime(&lime, keep, w),
        );
        let keep = per_range(SEED_CAP - fixed, loads);
        ok &= write_seed(
            &elf_dir,
            &format!("core-{tag}.elf"),
            &shrink_elf(&elf, keep, w),
        );
    }
    // The kdump sample's headers (detection reads only the first pages).
    let kdump = gunzip(&corpus.join("elf/z.kdump.gz"));
    ok &= write_seed(
        &elf_dir,
        "z-head.kdump",
        &kdump[..kdump.len().min(SEED_CAP)],
    );
    ok
}
