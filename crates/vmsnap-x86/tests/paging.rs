//! Page walks over page tables built in memory for every mode, including hostile tables.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{
    AddressSpace, CpuState, ErrorKind, Extent, ExtentKind, FileLayer, Layer, MemSource, OpenCtx,
    Options, Registry, Resolver, Result,
};
use vmsnap_x86::mode::{offset_of_address, CR0_PG, CR4_LA57, CR4_PAE, CR4_PSE, EFER_LMA, EFER_NXE};
use vmsnap_x86::walk::Walk;
use vmsnap_x86::{Mode, VirtualLayer, X86};

const P: u64 = 1;
const RW: u64 = 2;
const US: u64 = 4;
const PS: u64 = 0x80;
const NX: u64 = 1 << 63;

struct Phys(Vec<u8>);
impl Phys {
    fn new(mib: usize) -> Self {
        // Every 4 KiB page starts with its own number so reads can be checked.
        let mut v = vec![0u8; mib << 20];
        for (i, page) in v.chunks_mut(4096).enumerate() {
            page[..8].copy_from_slice(&(i as u64).to_le_bytes());
            page[8] = 0xAB;
        }
        Phys(v)
    }
    fn set64(&mut self, addr: u64, v: u64) {
        self.0[addr as usize..addr as usize + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn set32(&mut self, addr: u64, v: u32) {
        self.0[addr as usize..addr as usize + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn clear_table(&mut self, addr: u64) {
        self.0[addr as usize..addr as usize + 4096].fill(0);
    }
    fn layer(self) -> Arc<dyn Layer> {
        Arc::new(FileLayer::new(Arc::new(MemSource::new(self.0))))
    }
}

/// 4-level tables: PML4 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000, kernel PDPT 0x5000,
/// kernel PD 0x6000.
fn level4() -> Phys {
    let mut m = Phys::new(16);
    for t in [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000] {
        m.clear_table(t);
    }
    m.set64(0x1000, 0x2000 | P | RW | US);
    m.set64(0x2000, 0x3000 | P | RW | US);
    m.set64(0x3000 + 2 * 8, 0x4000 | P | RW | US); // 0x400000..0x600000 by 4 KiB pages
    for i in 0..4u64 {
        let flags = if i == 3 { P | US } else { P | RW | US };
        m.set64(0x4000 + i * 8, (0x10_0000 + i * 0x1000) | flags);
    }
    m.set64(0x3000 + 3 * 8, 0x20_0000 | P | RW | PS); // 0x600000: a 2 MiB page, kernel-only
                                                      // Kernel half: 0xffffffff80000000 → PML4[511] → PDPT[510] → PD[0] 2 MiB page, NX.
    m.set64(0x1000 + 511 * 8, 0x5000 | P | RW);
    m.set64(0x5000 + 510 * 8, 0x6000 | P | RW);
    m.set64(0x6000, 0x40_0000 | P | RW | PS | NX);
    // Hostile entries: a self reference, a table beyond memory, PS at the top level,
    // reserved bits in a 2 MiB entry, a 1 GiB page beyond memory.
    m.set64(0x1000 + 8, 0x1000 | P | RW);
    m.set64(0x1000 + 2 * 8, 0x7_0000_0000 | P);
    m.set64(0x1000 + 3 * 8, 0x1000 | P | PS);
    m.set64(0x3000 + 4 * 8, 0x20_0000 | P | PS | (1 << 15));
    m.set64(0x2000 + 8, 0x4000_0000 | P | PS);
    m
}

fn virt4(m: Phys) -> VirtualLayer {
    VirtualLayer::new(m.layer(), Mode::Level4, 0x1000, true)
}

fn page_no(v: &VirtualLayer, off: u64) -> u64 {
    let mut b = [0u8; 8];
    v.read_at(off, &mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn four_level_walk_reports_every_step_and_permission() {
    let v = virt4(level4());
    match v.walk(0x40_1123) {
        Walk::Mapped {
            physical,
            page_size,
            flags,
            steps,
            ..
        } => {
            assert_eq!(physical, 0x10_1123);
            assert_eq!(page_size, 4096);
            assert!(flags.writable && flags.user && !flags.nx);
            let addrs: Vec<u64> = steps.iter().map(|s| s.entry_address).collect();
            assert_eq!(addrs, [0x1000, 0x2000, 0x3010, 0x4008]);
            assert_eq!(steps[3].value, 0x10_1000 | P | RW | US);
            assert_eq!(
                steps.iter().map(|s| s.level).collect::<Vec<_>>(),
                ["PML4E", "PDPTE", "PDE", "PTE"]
            );
        }
        w => panic!("{w:?}"),
    }
    match v.walk(0x40_3000) {
        Walk::Mapped { flags, .. } => assert!(!flags.writable && flags.user),
        w => panic!("{w:?}"),
    }
    match v.walk(0x6f_0000) {
        Walk::Mapped {
            physical,
            page_size,
            flags,
            ..
        } => {
            assert_eq!((physical, page_size), (0x2f_0000, 2 << 20));
            assert!(!flags.user);
        }
        w => panic!("{w:?}"),
    }
    let k = offset_of_address(Mode::Level4, 0xffff_ffff_8012_3456).unwrap();
    match v.walk(k) {
        Walk::Mapped {
            physical, flags, ..
        } => {
            assert_eq!(physical, 0x52_3456);
            assert!(flags.nx && !flags.user);
        }
        w => panic!("{w:?}"),
    }
}

#[test]
fn reads_cross_pages_and_holes_read_as_zeros() {
    let v = virt4(level4());
    let mut b = vec![0u8; 0x2000];
    v.read_at(0x40_0800, &mut b).unwrap();
    // 0x400800.. is page 0x100 (+0x800), then page 0x101, then 0x102 from 0x402000.
    assert_eq!(
        u64::from_le_bytes(b[0x800..0x808].try_into().unwrap()),
        0x101
    );
    assert_eq!(
        u64::from_le_bytes(b[0x1800..0x1808].try_into().unwrap()),
        0x102
    );
    assert_eq!(page_no(&v, 0x40_0000), 0x100);
    assert_eq!(page_no(&v, 0x60_1000), 0x201);
    // Unmapped: zeros, not an error.
    let mut z = [0xFFu8; 16];
    v.read_at(0x40_4000, &mut z).unwrap();
    assert_eq!(z, [0u8; 16]);
    // Past the 48-bit space: an error.
    assert_eq!(
        v.read_at((1 << 48) - 4, &mut z).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    // The same page read twice comes from the cache and is still right.
    assert_eq!(page_no(&v, 0x40_0000), 0x100);
}

#[test]
fn hostile_entries_are_unmapped_never_loops_or_errors() {
    let v = virt4(level4());
    for (va, why) in [
        (2u64 << 39, "table beyond the physical layer"),
        (3 << 39, "page-size bit at the top level"),
        (0x80_0000, "reserved bits in a 2 MiB entry"),
        (1 << 30, "a 1 GiB page beyond memory"),
    ] {
        assert!(matches!(v.walk(va), Walk::NotMapped { .. }), "{why}");
        let mut b = [1u8; 8];
        v.read_at(va, &mut b).unwrap();
        assert_eq!(b, [0; 8], "{why}");
    }
    // The self-referencing entry maps the tables themselves; the walk still ends after
    // four levels: PML4[1] → PML4 as PDPT → [0] PDPT as PD → [0] PD as PT → [2] = PT page.
    match v.walk(1 << 39) {
        Walk::NotMapped { steps, .. } => assert_eq!(steps.len(), 4),
        w => panic!("{w:?}"),
    }
    match v.walk((1 << 39) + 0x2000) {
        Walk::Mapped {
            physical, steps, ..
        } => {
            assert_eq!(steps.len(), 4);
            assert_eq!(physical, 0x4000);
        }
        w => panic!("{w:?}"),
    }
}

#[test]
fn extents_enumerate_mapped_runs_with_attributes() {
    let v = virt4(level4());
    let runs = v.mappings(0..1 << 39).unwrap();
    let got: Vec<(u64, u64, Option<u64>, bool, u64)> = runs
        .iter()
        .map(|(e, f, ps)| (e.offset, e.len, e.lower_offset, f.writable, *ps))
        .collect();
    assert_eq!(
        got,
        [
            (0x40_0000, 0x3000, Some(0x10_0000), true, 4096),
            (0x40_3000, 0x1000, Some(0x10_3000), false, 4096),
            (0x60_0000, 0x20_0000, Some(0x20_0000), true, 2 << 20),
        ]
    );
    // The self-referencing PML4[1] maps tables as data, enumerated like the walk sees them.
    let selfref = v.mappings(1 << 39..2 << 39).unwrap();
    assert!(selfref
        .iter()
        .any(|(e, _, _)| e.offset == (1 << 39) + 0x2000 && e.lower_offset == Some(0x4000)));
    let ext = v.extents(0x3f_f000..0x40_5000).unwrap();
    assert_eq!(
        ext,
        vec![
            Extent::of(ExtentKind::Unallocated, 0x3f_f000, 0x1000),
            Extent::data(0x40_0000, 0x3000, Some(0x10_0000)),
            Extent::data(0x40_3000, 0x1000, Some(0x10_3000)),
            Extent::of(ExtentKind::Unallocated, 0x40_4000, 0x1000),
        ]
    );
    let attrs = v.extent_attributes(&ext[2]).unwrap();
    assert_eq!(attrs["writable"], false);
    assert_eq!(attrs["page_size"], 4096);
    // Kernel mappings appear at the top of the offset space.
    let top = v
        .mappings(0xffff_8000_0000_0000 & ((1 << 48) - 1)..1 << 48)
        .unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].0.offset, 0xffff_8000_0000);
    assert!(top[0].1.nx);
}

#[test]
fn tables_that_map_everything_hit_the_walk_budget() {
    let mut m = Phys::new(4);
    for t in [0x1000u64, 0x2000, 0x3000] {
        m.clear_table(t);
    }
    for i in 0..512 {
        m.set64(0x1000 + i * 8, 0x2000 | P);
        m.set64(0x2000 + i * 8, 0x3000 | P);
        m.set64(0x3000 + i * 8, 0x20_0000 | P | PS);
    }
    let v = VirtualLayer::new(m.layer(), Mode::Level4, 0x1000, false);
    let e = v.mappings_bounded(0..1 << 48, 100_000).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    // Reads stay fine.
    assert_eq!(page_no(&v, 0x12_3000 + (7 << 39)), 0x323);
}

#[test]
fn thirty_two_bit_pse_and_pae_and_five_level() {
    // 32-bit: PD at 0x1000, PT at 0x2000; 4 MiB page at 0x800000 → phys 0x400000.
    let mut m = Phys::new(16);
    m.clear_table(0x1000);
    m.clear_table(0x2000);
    m.set32(0x1000, 0x2000 | 3);
    m.set32(0x2000 + 5 * 4, 0x7000 | 3);
    m.set32(0x1000 + 2 * 4, 0x40_0000 | 3 | 0x80);
    let l = m.layer();
    let v = VirtualLayer::new(l.clone(), Mode::Bits32 { pse: true }, 0x1000, false);
    assert_eq!(v.len(), 1 << 32);
    assert_eq!(page_no(&v, 0x5000), 7);
    assert_eq!(page_no(&v, 0x80_1000), 0x401);
    // Without PSE the PS bit is not a large page: the entry is reserved → unmapped.
    let v = VirtualLayer::new(l, Mode::Bits32 { pse: false }, 0x1000, false);
    assert!(matches!(v.walk(0x80_1000), Walk::NotMapped { .. }));

    // PAE: PDPT (32-byte aligned) at 0x1020, PD at 0x2000, 2 MiB page; PT at 0x3000.
    let mut m = Phys::new(16);
    for t in [0x1000u64, 0x2000, 0x3000] {
        m.clear_table(t);
    }
    m.set64(0x1020 + 8, 0x2000 | P); // PDPT[1]: 1 GiB..2 GiB
    m.set64(0x2000, 0x60_0000 | P | RW | PS | NX);
    m.set64(0x2000 + 8, 0x3000 | P | RW);
    m.set64(0x3000 + 8, 0x9000 | P);
    let v = VirtualLayer::new(m.layer(), Mode::Pae, 0x1020, true);
    assert_eq!(page_no(&v, 0x4000_2000), 0x602);
    assert_eq!(page_no(&v, 0x4020_1000), 9);
    assert!(matches!(v.walk(0x4000_0000), Walk::Mapped { flags, .. } if flags.nx));

    // 5-level: PML5 0x1000 → PML4 0x2000 → PDPT 0x3000 → PD 0x4000 → PT 0x5000.
    let mut m = Phys::new(16);
    for t in [0x1000u64, 0x2000, 0x3000, 0x4000, 0x5000] {
        m.clear_table(t);
    }
    m.set64(0x1000 + 300 * 8, 0x2000 | P | RW);
    m.set64(0x2000, 0x3000 | P | RW);
    m.set64(0x3000, 0x4000 | P | RW);
    m.set64(0x4000, 0x5000 | P | RW);
    m.set64(0x5000 + 8, 0xa000 | P | RW);
    let v = VirtualLayer::new(m.layer(), Mode::Level5, 0x1000, false);
    assert_eq!(v.len(), 1 << 57);
    let va = (300u64 << 48) | 0x1000;
    assert_eq!(page_no(&v, va), 0xa);
    let runs = v.mappings(0..1 << 57).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].0.offset, runs[0].0.len), (va, 4096));
}

/// A guest-physical layer that records CPU state.
#[derive(Debug)]
struct Mem(Arc<dyn Layer>, Vec<CpuState>);
impl Layer for Mem {
    fn name(&self) -> &str {
        "mem"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestPhysical
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&self, o: u64, b: &mut [u8]) -> Result<()> {
        self.0.read_at(o, b)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.0.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"format": "mem"})
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        self.1.clone()
    }
}

fn cpu(index: u32, cr3: u64) -> CpuState {
    CpuState {
        index,
        arch: "x86_64",
        cr0: CR0_PG | 1,
        cr3,
        cr4: CR4_PAE | CR4_PSE,
        efer: EFER_LMA | EFER_NXE,
        ..Default::default()
    }
}

#[test]
fn the_plugin_stacks_on_cpu_state_and_offers_other_roots() {
    let phys = level4().layer();
    let mem: Arc<dyn Layer> = Arc::new(Mem(
        phys.clone(),
        vec![cpu(0, 0x1000), cpu(1, 0x1000), cpu(2, 0x7000)],
    ));
    let reg = Registry::empty().with(&vmsnap_x86::PLUGIN).unwrap();
    let (r, mut o) = (Resolver::default(), Options::new());
    let ctx = OpenCtx::new(&r, &reg, &o);
    let x = X86::open(mem.clone(), &ctx).unwrap();
    assert_eq!(x.main().root(), 0x1000);
    assert_eq!(x.main().mode(), Mode::Level4);
    let names: Vec<String> = x.children().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["root:0x7000"]);
    assert_eq!(x.describe()["mode"], "level_4");
    let t = x.translate(0x40_1000).unwrap().unwrap();
    assert_eq!(t["walk"]["physical"], "0x101000");
    // A root given by hand wins.
    o.set("x86.cr3", "0x7000");
    let ctx = OpenCtx::new(&r, &reg, &o);
    assert_eq!(X86::open(mem.clone(), &ctx).unwrap().main().root(), 0x7000);
    // The probe wants guest-physical memory with paging on.
    let sniff = vmsnap_core::Sniff::read(mem.as_ref()).unwrap();
    let cpus = mem.cpu_state();
    let w = vmsnap_core::SniffWindow {
        cpu: &cpus,
        ..sniff.window(mem.as_ref())
    };
    assert!((vmsnap_x86::PLUGIN.probe)(&w).is_yes());
    let off = vec![CpuState {
        cr0: 1,
        ..cpu(0, 0x1000)
    }];
    let w = vmsnap_core::SniffWindow {
        cpu: &off,
        ..sniff.window(mem.as_ref())
    };
    assert!(!(vmsnap_x86::PLUGIN.probe)(&w).is_yes());
    let w = vmsnap_core::SniffWindow {
        cpu: &cpus,
        ..sniff.window(phys.as_ref())
    };
    assert!(!vmsnap_x86::PLUGIN.recognises(&w).is_yes());
    // LA57 is chosen from CR4.
    let la57 = [CpuState {
        cr4: CR4_PAE | CR4_LA57,
        ..cpu(0, 0x1000)
    }];
    assert_eq!(Mode::of(&la57[0]), Some(Mode::Level5));
}
