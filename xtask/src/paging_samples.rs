//! Snapshot samples of other hypervisors made from a real booted guest's memory: the ELF
//! core `paging-guests` took (`target/paging/pc-4level/core.elf`, QEMU's
//! `dump-guest-memory`) rewritten by the formats' test builders, so the Python tests can
//! check that Volatility 3 reads the same guest through vmsnap in every format.
//!
//! * `guest.vmsn` — a VMware snapshot with the memory embedded (what Volatility 3 itself
//!   cannot read): one region per PT_LOAD, the `cpu` group with the guest's registers from
//!   the monitor's `info registers`.
//!
//! * `guest.vmrs` — a Hyper-V saved state: one `RamMemoryBlock` per PT_LOAD, its data
//!   blocks in the page-record form, the VP's registers from `info registers`.
//!
//! Each is written once (kept when present) and costs about a second.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use vmsnap_hyperv::builder::encode::Vp;
use vmsnap_hyperv::builder::{saved_state_from, GuestOpts};
use vmsnap_testkit::elf::{self, Load};
use vmsnap_vmware::builder::{
    block_tag, cpu_group, extra_groups, region_tags, Ckpt, CpuForm, Reg, Sparse, Val, G,
};

const PAGE: u64 = 4096;

/// The guest whose core becomes the samples.
const GUEST: &str = "pc-4level";

/// Makes every missing sample of the guest; false on failure.
pub fn run() -> bool {
    let dir = crate::root().join("target").join("paging").join(GUEST);
    let core = dir.join("core.elf");
    if !core.is_file() {
        eprintln!(
            "xtask: {} is missing: run cargo xtask paging-guests",
            core.display()
        );
        return false;
    }
    let regs = match std::fs::read_to_string(dir.join("info-registers.txt")) {
        Ok(t) => registers(&t),
        Err(e) => {
            eprintln!("xtask: info-registers.txt: {e}");
            return false;
        }
    };
    let samples: [(&str, Writer); 2] = [("guest.vmsn", write_vmsn), ("guest.vmrs", write_vmrs)];
    samples.iter().all(|(name, write)| {
        let out = dir.join(name);
        if out.exists() {
            return true;
        }
        let tmp = dir.join(format!("{name}.tmp"));
        match write(&core, &regs, &tmp).and_then(|()| std::fs::rename(&tmp, &out)) {
            Ok(()) => {
                eprintln!("xtask: wrote {}", out.display());
                true
            }
            Err(e) => {
                eprintln!("xtask: {}: {e}", out.display());
                false
            }
        }
    })
}

/// Writes one sample from the core and the registers.
type Writer = fn(&Path, &[(String, u64)], &Path) -> std::io::Result<()>;

/// `NAME=hex` pairs of QEMU's `info registers` (first vCPU), names upper-case.
fn registers(text: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    // Short names are padded before the '=' ("R8 =…").
    for word in text.replace(" =", "=").split_whitespace() {
        let Some((name, value)) = word.split_once('=') else {
            continue;
        };
        let Ok(v) = u64::from_str_radix(value, 16) else {
            continue;
        };
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), v));
        }
    }
    out
}

/// The VMware regions of the core's PT_LOADs, laid end to end in the memory block.
fn regions(loads: &[Load]) -> std::io::Result<Vec<Reg>> {
    let mut page_num = 0;
    let mut out = Vec::new();
    for l in loads {
        if l.paddr % PAGE != 0 || l.filesz % PAGE != 0 {
            return Err(std::io::Error::other(format!(
                "PT_LOAD at {:#x} ({:#x} bytes) is not page-aligned",
                l.paddr, l.filesz
            )));
        }
        let pages = l.filesz / PAGE;
        out.push(Reg {
            ppn: l.paddr / PAGE,
            page_num,
            pages,
        });
        page_num += pages;
    }
    Ok(out)
}

/// The `cpu` group of one vCPU with the guest's own registers where `info registers`
/// names them (general registers, `rip`, `eflags`, CR0–CR4); the builder's placeholders
/// for segments and descriptor tables are dropped.
fn guest_cpu(regs: &[(String, u64)]) -> G {
    let find = |name: &str| regs.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let mut g = cpu_group(1, CpuForm::Scalar, 0);
    g.tags
        .retain(|t| !matches!(t.name.as_str(), "S" | "S.base64" | "IDTR"));
    for t in &mut g.tags {
        let qemu = match (t.name.as_str(), t.idx.as_slice()) {
            ("CR64", [0, k]) => format!("CR{k}"),
            ("eflags", _) => "RFL".to_string(),
            (n, _) => n.to_uppercase(),
        };
        if let (Some(v), Val::Inline(b)) = (find(&qemu), &mut t.val) {
            if b.len() == 8 {
                *b = v.to_le_bytes().to_vec();
            } else if b.len() == 4 {
                *b = (v as u32).to_le_bytes().to_vec();
            }
        }
    }
    g
}

/// Writes `out`: a `.vmsn` whose `memory` group holds the core's PT_LOADs as one embedded
/// `Memory` block. The block is laid out by the builder with zeros, then filled by copying
/// each PT_LOAD from the core (the 256 MiB never sit in memory).
fn write_vmsn(core: &Path, regs: &[(String, u64)], out: &Path) -> std::io::Result<()> {
    let loads = elf::loads(core);
    let regions = regions(&loads)?;
    let total: u64 = loads.iter().map(|l| l.filesz).sum();
    let count = u32::try_from(regions.len()).map_err(std::io::Error::other)?;
    let mut memory = region_tags(&regions, Some(count));
    memory.push(block_tag("Memory", &[0, 0], Sparse::zeros(total), 0));
    let mut groups = extra_groups(0);
    groups.insert(
        1,
        G {
            name: "memory".into(),
            tags: memory,
        },
    );
    groups.push(guest_cpu(regs));
    let built = Ckpt {
        magic: 0xbed2_bed2,
        groups,
    }
    .build();
    let (_, data) = built.tag("memory/Memory[0][0]");
    let data = data.ok_or_else(|| std::io::Error::other("no Memory block"))?;
    built.image.write_to(out)?;
    let mut f = File::options().write(true).open(out)?;
    let mut src = File::open(core)?;
    let mut at = data;
    for l in &loads {
        src.seek(SeekFrom::Start(l.offset))?;
        f.seek(SeekFrom::Start(at))?;
        let copied = std::io::copy(&mut (&mut src).take(l.filesz), &mut f)?;
        if copied != l.filesz {
            return Err(std::io::Error::other("the core ends inside a PT_LOAD"));
        }
        at += l.filesz;
    }
    f.flush()
}

/// Writes `out`: a `.vmrs` holding the core's PT_LOADs (read block by block from the
/// core) and the first VP's registers.
fn write_vmrs(core: &Path, regs: &[(String, u64)], out: &Path) -> std::io::Result<()> {
    let loads = elf::loads(core);
    regions(&loads)?;
    let extents: Vec<(u64, u64)> = loads.iter().map(|l| (l.paddr, l.filesz)).collect();
    let mut src = File::open(core)?;
    let read = |gpa: u64, buf: &mut [u8]| -> std::io::Result<()> {
        let l = loads
            .iter()
            .find(|l| l.paddr <= gpa && gpa < l.paddr + l.filesz)
            .ok_or_else(|| std::io::Error::other(format!("{gpa:#x} is in no PT_LOAD")))?;
        src.seek(SeekFrom::Start(l.offset + (gpa - l.paddr)))?;
        src.read_exact(buf)
    };
    let find = |name: &str| regs.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
    let mut gp = [0u64; 18];
    let names = [
        "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12",
        "R13", "R14", "R15", "RIP", "RFL",
    ];
    for (v, n) in gp.iter_mut().zip(names) {
        *v = find(n);
    }
    let vp = Vp {
        index: 0,
        gp,
        cr: ["CR0", "CR2", "CR3", "CR4", "CR8", "EFER"].map(find),
        idtr: (0, 0),
        gdtr: (0, 0),
    };
    let built = saved_state_from(&extents, read, &[vp], &GuestOpts::default())?;
    std::fs::write(out, built.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_of_info_registers() {
        let r = registers("RAX=0000000400295b38 RBX=0000000000000a28\nR8 =0000000000000007 CR0=80050033 CR3=0000000002a10000 CR4=000006b0\nES =0000 0000000000000000");
        assert_eq!(r[0], ("RAX".to_string(), 0x4_0029_5b38));
        assert!(r.contains(&("CR3".to_string(), 0x2a1_0000)));
        assert!(r.contains(&("R8".to_string(), 7)));
    }
}
