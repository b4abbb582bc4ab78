//! The x86 layers against a real Linux guest booted under QEMU: every PT_LOAD of QEMU's
//! paging core (`dump-guest-memory -p`, the oracle) reads byte-exact through vmsnap's
//! virtual layer built on the physical core and the CR3/CR0/CR4/EFER `info registers`
//! printed; the mapped ranges equal `info mem`; sampled translations equal `gva2gpa`.
//!
//! The guest is made by `tools/make-paging-guest.py` into `target/paging/` (it boots the
//! distribution's cloud kernel; a few hundred MiB, so it is not in `corpus/`). CI runs it
//! and then these tests with `--ignored`. A small guest with 32-bit paging is committed
//! (`corpus/x86/`) and checked on every run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap_core::{FileLayer, Layer, Overlap, Segment, SegmentMap, SegmentMapBuilder, SliceLayer};
use vmsnap_x86::mode::{address_of_offset, offset_of_address};
use vmsnap_x86::walk::Walk;
use vmsnap_x86::{Mode, VirtualLayer};

fn guest(name: &str) -> Option<PathBuf> {
    let d = vmsnap_testkit::workspace_root()
        .join("target/paging")
        .join(name);
    d.join("gva2gpa.txt").exists().then_some(d)
}

/// The guests to check, with the paging mode each must be in: the 4-level guest always
/// (CI makes it), the 5-level one (`--name pc-5level --cpu max,+la57`) and the 32-bit PAE
/// one (`--name pc-pae --kernel 686-pae`) when they were made (CI makes them too).
fn guests() -> Vec<(PathBuf, Mode)> {
    let mut v = vec![(
        guest("pc-4level").expect("run tools/make-paging-guest.py first"),
        Mode::Level4,
    )];
    v.extend(guest("pc-5level").map(|d| (d, Mode::Level5)));
    v.extend(guest("pc-pae").map(|d| (d, Mode::Pae)));
    v
}

/// The physical layer: core.elf's PT_LOADs by p_paddr.
fn physical(dir: &Path) -> Arc<dyn Layer> {
    let path = dir.join("core.elf");
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    let loads = vmsnap_testkit::elf::loads(&path);
    let size = loads.iter().map(|l| l.paddr + l.filesz).max().unwrap();
    let mut b = SegmentMapBuilder::new(size, Overlap::Reject);
    for l in &loads {
        b.push(Segment::plain(l.paddr, l.filesz, l.offset)).unwrap();
    }
    Arc::new(Phys(file, b.build().unwrap()))
}

#[derive(Debug)]
struct Phys(Arc<dyn Layer>, SegmentMap);
impl Layer for Phys {
    fn name(&self) -> &str {
        "phys"
    }
    fn space(&self) -> vmsnap_core::AddressSpace {
        vmsnap_core::AddressSpace::GuestPhysical
    }
    fn len(&self) -> u64 {
        self.1.size()
    }
    fn read_at(&self, o: u64, b: &mut [u8]) -> vmsnap_core::Result<()> {
        self.1.read(self.0.as_ref(), o, b)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.0.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

fn virtual_layer(dir: &Path) -> VirtualLayer {
    let regs = vmsnap_testkit::guest::registers(dir);
    let (cr0, cr3, cr4, efer) = (
        regs.get("CR0"),
        regs.get("CR3"),
        regs.get("CR4"),
        regs.get("EFER"),
    );
    let mode = Mode::from_registers(cr0, cr4, efer).unwrap();
    VirtualLayer::new(physical(dir), mode, cr3, efer & (1 << 11) != 0)
}

#[test]
#[ignore = "needs tools/make-paging-guest.py (boots a real kernel); CI runs it"]
fn paging_core_reads_byte_exact_through_the_virtual_layer() {
    for (dir, mode) in guests() {
        paging_core_matches(&dir, mode);
    }
}

fn paging_core_matches(dir: &Path, mode: Mode) {
    let v = virtual_layer(dir);
    assert_eq!(v.mode(), mode, "{}", dir.display());
    let oracle_path = dir.join("core-paging.elf");
    let oracle = FileLayer::open(&oracle_path).unwrap();
    let loads = vmsnap_testkit::elf::loads(&oracle_path);
    assert!(
        loads.len() > 10,
        "the paging core has {} PT_LOADs",
        loads.len()
    );
    let mut compared = 0u64;
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    for vmsnap_testkit::elf::Load {
        offset: off,
        vaddr,
        filesz,
        ..
    } in loads
    {
        let start = offset_of_address(v.mode(), vaddr).unwrap();
        let mut done = 0;
        while done < filesz {
            let n = (filesz - done).min(1 << 20) as usize;
            oracle.read_at(off + done, &mut a[..n]).unwrap();
            v.read_at(start + done, &mut b[..n]).unwrap();
            assert!(
                a[..n] == b[..n],
                "differs in the MiB at virtual {:#x}",
                vaddr + done
            );
            done += n as u64;
        }
        compared += filesz;
    }
    assert!(compared > 64 << 20, "compared only {compared} bytes");
}

/// The small committed guest (corpus/x86/make.sh: a multiboot kernel that turns on 32-bit
/// paging): its mappings equal `info mem`, and the marker page reads through both of the
/// virtual ranges that map it.
#[test]
fn committed_guest_mappings_equal_info_mem() {
    let dir = vmsnap_testkit::corpus_dir().join("x86");
    let v = virtual_layer(&dir);
    assert!(matches!(v.mode(), Mode::Bits32 { .. }), "{:?}", v.mode());
    mappings_match(&dir);
    let want = b"vmsnap x86 sample: the marker page at physical 0x110000\n";
    for va in [0x110000u64, 0xc011_0000] {
        let mut got = vec![0u8; want.len()];
        v.read_at(offset_of_address(v.mode(), va).unwrap(), &mut got)
            .unwrap();
        assert_eq!(&got[..], &want[..], "at {va:#x}");
    }
}

#[test]
#[ignore = "needs tools/make-paging-guest.py (boots a real kernel); CI runs it"]
fn mapped_ranges_equal_info_mem() {
    // Not the 5-level guest: QEMU 10's `info mem` prints nothing for 5-level paging.
    for (dir, mode) in guests() {
        if mode != Mode::Level5 {
            mappings_match(&dir);
        }
    }
}

fn mappings_match(dir: &Path) {
    let v = virtual_layer(dir);
    // `info mem` joins virtually adjacent pages of equal user/write permission.
    let mut runs: Vec<(u64, u64, String)> = Vec::new();
    for (e, f, _) in v.mappings(0..v.len()).unwrap() {
        let prot = format!(
            "{}r{}",
            if f.user { 'u' } else { '-' },
            if f.writable { 'w' } else { '-' }
        );
        let start = address_of_offset(v.mode(), e.offset);
        match runs.last_mut() {
            Some((s, len, p)) if *p == prot && s.wrapping_add(*len) == start => *len += e.len,
            _ => runs.push((start, e.len, prot)),
        }
    }
    let got: Vec<String> = runs
        .iter()
        .map(|(s, l, p)| format!("{s:016x}-{:016x} {l:016x} {p}", s.wrapping_add(*l)))
        .collect();
    let want: Vec<String> = std::fs::read_to_string(dir.join("info-mem.txt"))
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        want.len() > 5,
        "{}: info mem has {} lines",
        dir.display(),
        want.len()
    );
    assert_eq!(got, want, "{}", dir.display());
}

#[test]
#[ignore = "needs tools/make-paging-guest.py (boots a real kernel); CI runs it"]
fn translations_equal_gva2gpa() {
    for (dir, mode) in guests() {
        translations_match(&dir, mode);
    }
}

fn translations_match(dir: &Path, mode: Mode) {
    let v = virtual_layer(dir);
    assert_eq!(v.mode(), mode);
    let text = std::fs::read_to_string(dir.join("gva2gpa.txt")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let va = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let rest: Vec<&str> = parts.collect();
        let off = offset_of_address(v.mode(), va).unwrap();
        match (rest.as_slice(), v.walk(off)) {
            (["gpa:", gpa], Walk::Mapped { physical, .. }) => {
                assert_eq!(
                    physical,
                    u64::from_str_radix(gpa.trim_start_matches("0x"), 16).unwrap(),
                    "{line}"
                );
                n += 1;
            }
            (["Unmapped"], Walk::NotMapped { .. }) => n += 1,
            (r, w) => panic!("{line}: monitor said {r:?}, vmsnap {w:?}"),
        }
    }
    assert!(n >= 10, "only {n} samples");
    let _ = SliceLayer::new(
        "x",
        vmsnap_core::AddressSpace::GuestVirtual,
        Arc::new(v),
        0,
        1,
    )
    .unwrap();
}
