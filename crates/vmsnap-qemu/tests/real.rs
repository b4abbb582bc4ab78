//! Real QEMU 10 samples (corpus/qemu, made by make.sh): every byte of guest-physical
//! memory equals the ELF core dump-guest-memory wrote at the same paused moment.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Read;
use std::sync::Arc;

use vmsnap_core::{
    AddressSpace, ErrorKind, ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options,
    Registry, Resolver, SliceLayer,
};
use vmsnap_qemu::{QemuMemory, LIBVIRT_PLUGIN, MAPPED_RAM_PLUGIN, PLUGIN};
use vmsnap_testkit::corpus;
use vmsnap_testkit::guest::Registers;

static CACHE: std::sync::Mutex<Vec<(String, Arc<Vec<u8>>)>> = std::sync::Mutex::new(Vec::new());

/// Decompresses a corpus file once per test process (debug-mode inflate is slow).
fn gunzip(rel: &str) -> Vec<u8> {
    let mut c = CACHE.lock().unwrap();
    if let Some((_, v)) = c.iter().find(|(k, _)| k == rel) {
        return v.as_ref().clone();
    }
    let f = std::fs::File::open(corpus(rel)).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .unwrap();
    c.push((rel.to_string(), Arc::new(out.clone())));
    out
}

fn load(rel: &str) -> Vec<u8> {
    if rel.ends_with(".gz") {
        gunzip(rel)
    } else {
        std::fs::read(corpus(rel)).unwrap()
    }
}

fn ctx_parts() -> (Resolver, Registry, Options) {
    let reg = Registry::empty()
        .with(&PLUGIN)
        .unwrap()
        .with(&MAPPED_RAM_PLUGIN)
        .unwrap()
        .with(&LIBVIRT_PLUGIN)
        .unwrap();
    (Resolver::new(ExternalPolicy::SameDir), reg, Options::new())
}

fn open_bytes(bytes: Vec<u8>, opts: &Options) -> vmsnap_core::Result<QemuMemory> {
    let (r, reg, _) = ctx_parts();
    let ctx = OpenCtx::new(&r, &reg, opts);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    QemuMemory::open(lower, &ctx)
}

fn check_against_elf(mem: &dyn Layer, elf_rel: &str) {
    let elf = gunzip(elf_rel);
    let loads: Vec<(u64, &[u8])> = vmsnap_testkit::elf::loads_in(&elf)
        .into_iter()
        .map(|(l, data)| (l.paddr, data))
        .collect();
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for (paddr, data) in &loads {
        let mut got = vec![0u8; data.len()];
        mem.read_at(*paddr, &mut got).unwrap();
        vmsnap_testkit::assert_same_bytes(&got, data, &format!("PT_LOAD at {paddr:#x}"));
        covered.push((*paddr, paddr + data.len() as u64));
    }
    // Zero everywhere else: ranges the map reports unallocated read as zeros (spot
    // checked); every byte of mapped ranges outside the PT_LOADs is read and checked.
    let inside = |a: u64| covered.iter().any(|&(s, e)| a >= s && a < e);
    for e in mem.extents(0..mem.len()).unwrap() {
        let mut pos = e.offset;
        let end = e.offset + e.len;
        if e.kind == vmsnap_core::ExtentKind::Unallocated {
            let mut b = [0xffu8; 4096];
            let n = (end - pos).min(4096) as usize;
            mem.read_at(pos, &mut b[..n]).unwrap();
            assert!(b[..n].iter().all(|&x| x == 0));
            continue;
        }
        let mut buf = vec![0u8; 4096];
        while pos < end {
            let n = (end - pos).min(4096) as usize;
            if !inside(pos) {
                mem.read_at(pos, &mut buf[..n]).unwrap();
                assert!(
                    buf[..n].iter().all(|&b| b == 0),
                    "non-zero outside PT_LOADs at {pos:#x}"
                );
            }
            pos += n as u64;
        }
    }
}

fn seg_base(text: &str, seg: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{seg:<3}=")))
        .unwrap();
    let base = line.split_whitespace().nth(2).unwrap();
    u64::from_str_radix(base, 16).unwrap()
}

fn vmdesc_block_names(stream: &[u8]) -> usize {
    // The vmdesc lists devices, not RAM blocks; RAM blocks come from MEM_SIZE. Count
    // devices to compare with describe().
    let j = stream
        .windows(16)
        .rposition(|w| w == b"{\"configuration\"" || w == b"{\"page_size\": 40")
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&stream[j..]).unwrap();
    v["devices"].as_array().unwrap().len()
}

fn expected_blocks(machine: &str) -> Vec<(&'static str, u64)> {
    let mut v = vec![
        ("pc.ram", 64 << 20),
        ("/rom@etc/acpi/tables", 131072),
        ("pc.bios", 262144),
        ("pc.rom", 131072),
        ("/rom@etc/table-loader", 4096),
        ("/rom@etc/acpi/rsdp", 4096),
    ];
    if machine == "q35" {
        v.retain(|_| true);
    }
    v
}

fn check_stream(machine: &str, rel: &str) -> QemuMemory {
    let bytes = load(rel);
    let o = Options::new();
    let mem = open_bytes(bytes.clone(), &o).unwrap_or_else(|e| panic!("{rel}: {e}"));
    check_against_elf(&mem, &format!("qemu/{machine}-64m.elf.gz"));
    let d = mem.describe();
    let names: Vec<(String, u64)> = mem
        .blocks()
        .iter()
        .map(|b| (b.name.clone(), b.size))
        .collect();
    for (n, s) in expected_blocks(machine) {
        assert!(
            names.contains(&(n.to_string(), s)),
            "{rel}: block {n} {s} missing in {names:?}"
        );
    }
    assert_eq!(d["ram_blocks"].as_array().unwrap().len(), names.len());
    // Every block is a child layer with its size.
    let kids = mem.children();
    assert_eq!(kids.len(), names.len());
    for (k, (n, s)) in kids.iter().zip(&names) {
        assert_eq!(k.name, format!("ram:{n}"));
        assert_eq!(k.layer.len(), *s);
    }
    mem
}

#[test]
fn pc_default_stream_matches_elf_core_and_registers() {
    let mem = check_stream("pc", "qemu/pc-64m.qevm");
    let d = mem.describe();
    assert_eq!(d["machine"], "pc-i440fx-10.0");
    assert_eq!(d["layout"]["family"], "pc");
    assert_eq!(d["layout"]["ram_below_4g"], 64u64 << 20);
    // The default QEMU 10 stream has the switchover-start command.
    assert_eq!(d["commands"][0]["command"], 11);
    let text = std::fs::read_to_string(corpus("qemu/pc-64m.regs.txt")).unwrap();
    let regs = Registers::read(&corpus("qemu/pc-64m.regs.txt"));
    let cpus = mem.cpu_state();
    assert_eq!(cpus.len(), 1);
    let c = &cpus[0];
    assert_eq!(c.cr3, regs.get("CR3"));
    assert_eq!(c.cr0, regs.get("CR0"));
    assert_eq!(c.cr4, regs.get("CR4"));
    assert_eq!(c.efer, regs.get("EFER"));
    assert_eq!(c.regs["rip"], regs.get("EIP"));
    assert_eq!(c.regs["rflags"], regs.get("EFL"));
    assert_eq!(c.regs["rsp"], regs.get("ESP"));
    assert_eq!(c.regs["rdx"], regs.get("EDX"));
    assert_eq!(c.regs["cs_base"], seg_base(&text, "CS"));
    assert_eq!(c.regs["cs_base"], 0xffff_0000);
    let bytes = load("qemu/pc-64m.qevm");
    assert_eq!(d["vmdesc"]["devices"], vmdesc_block_names(&bytes));
}

#[test]
fn q35_default_stream_matches_elf_core_and_registers() {
    let mem = check_stream("q35", "qemu/q35-64m.qevm");
    let d = mem.describe();
    assert!(d["machine"].as_str().unwrap().starts_with("pc-q35-"));
    assert_eq!(d["layout"]["family"], "q35");
    let regs = Registers::read(&corpus("qemu/q35-64m.regs.txt"));
    let c = &mem.cpu_state()[0];
    assert_eq!(c.cr3, regs.get("CR3"));
    assert_eq!(c.regs["rip"], regs.get("EIP"));
}

#[test]
fn noswitch_streams_match_elf_core() {
    for m in ["pc", "q35"] {
        let mem = check_stream(m, &format!("qemu/{m}-64m-noswitch.qevm.gz"));
        assert_eq!(mem.describe()["commands"].as_array().unwrap().len(), 0);
    }
}

#[test]
fn novmdesc_streams_match_elf_core_by_footer_scan() {
    for m in ["pc", "q35"] {
        let mem = check_stream(m, &format!("qemu/{m}-64m-novmdesc.qevm.gz"));
        assert!(mem.describe()["vmdesc"].is_null());
        assert!(mem.cpu_state().is_empty());
        assert!(mem
            .findings()
            .iter()
            .any(|f| f.rule == vmsnap_qemu::rule::VMDESC));
    }
}

#[test]
fn mapped_ram_streams_match_elf_core() {
    for m in ["pc", "q35"] {
        let mem = check_stream(m, &format!("qemu/{m}-64m-mapped.qevm.gz"));
        let d = mem.describe();
        assert_eq!(d["mapped_ram"], true);
        assert!(d["ram_blocks"][0]["mapped_ram"]["pages_offset"]
            .as_u64()
            .unwrap()
            .is_multiple_of(1 << 20));
    }
}

#[test]
fn probes_pick_the_right_plugin() {
    let head = load("qemu/pc-64m.qevm");
    let w = vmsnap_core::SniffWindow::of_bytes(
        &head[..65536],
        &head[head.len() - 65536..],
        head.len() as u64,
    );
    assert!((PLUGIN.probe)(&w).is_yes());
    assert!(!(MAPPED_RAM_PLUGIN.probe)(&w).is_yes());
    let m = load("qemu/pc-64m-mapped.qevm.gz");
    let w = vmsnap_core::SniffWindow::of_bytes(&m[..65536], &m[m.len() - 65536..], m.len() as u64);
    assert!(!(PLUGIN.probe)(&w).is_yes());
    assert!((MAPPED_RAM_PLUGIN.probe)(&w).is_yes());
    // A Stream-space layer (a qcow2 vmstate) starting with QEVM is accepted.
    let mut w2 = vmsnap_core::SniffWindow::of_bytes(&head[..65536], &head[..0], head.len() as u64);
    w2.space = AddressSpace::Stream;
    w2.layer = "qcow2-vmstate";
    assert!((PLUGIN.probe)(&w2).is_yes());
}

#[test]
fn libvirt_wrapper_exposes_xml_and_stacks_the_stream() {
    let (r, reg, o) = ctx_parts();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let stream = load("qemu/pc-64m.qevm");
    let xml = "<domain type='kvm'><name>t</name></domain>";
    let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(
        vmsnap_testkit::libvirt_save(&stream, 0, xml),
    ))));
    let sniff = vmsnap_core::Sniff::read(file.as_ref()).unwrap();
    assert!((LIBVIRT_PLUGIN.probe)(&sniff.window(file.as_ref())).is_yes());
    let lv = (LIBVIRT_PLUGIN.open)(file, &ctx).unwrap();
    assert_eq!(lv.space(), AddressSpace::Stream);
    assert_eq!(lv.describe()["domain_xml"], xml);
    assert_eq!(lv.len(), stream.len() as u64);
    let sniff = vmsnap_core::Sniff::read(lv.as_ref()).unwrap();
    assert!((PLUGIN.probe)(&sniff.window(lv.as_ref())).is_yes());
    let mem = (PLUGIN.open)(lv, &ctx).unwrap();
    check_against_elf(mem.as_ref(), "qemu/pc-64m.elf.gz");

    // mapped-ram inside the wrapper: offsets are file offsets, shifted by the header.
    let mapped = load("qemu/pc-64m-mapped.qevm.gz");
    let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(
        vmsnap_testkit::libvirt_save(&mapped, 6, xml),
    ))));
    let lv = (LIBVIRT_PLUGIN.open)(file, &ctx).unwrap();
    assert_eq!(lv.describe()["compression"], "sparse");
    // QEMU writes absolute offsets: rewrite the headers as it would have.
    // (Here the inner offsets are stream-relative, so the delta is 0.)
    let mem = (MAPPED_RAM_PLUGIN.open)(lv, &ctx).unwrap();
    check_against_elf(mem.as_ref(), "qemu/pc-64m.elf.gz");

    // Compressed saves are reported with the compression name.
    let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(
        vmsnap_testkit::libvirt_save(b"\x1f\x8b\x08\x00", 1, xml),
    ))));
    let lv = (LIBVIRT_PLUGIN.open)(file, &ctx).unwrap();
    assert_eq!(lv.describe()["compression"], "gzip");
    assert!(lv
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::COMPRESSED && f.message.contains("gzip")));
}

#[test]
fn ram_below_4g_option_overrides_the_split() {
    let mut o = Options::new();
    o.set("qemu.ram-below-4g", "32M");
    let mem = open_bytes(load("qemu/pc-64m.qevm"), &o).unwrap();
    let d = mem.describe();
    assert_eq!(d["layout"]["ram_below_4g"], 32u64 << 20);
    assert_eq!(d["layout"]["rule"], "option qemu.ram-below-4g");
    // The blob at 48 MiB of pc.ram now lives at 4 GiB + 16 MiB.
    let mut a = vec![0u8; 4096];
    let mut b = vec![0u8; 4096];
    mem.read_at((1 << 32) + (16 << 20), &mut a).unwrap();
    mem.children()[0].layer.read_at(48 << 20, &mut b).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|&x| x != 0));
    o.set("qemu.ram-below-4g", "lots");
    assert_eq!(
        open_bytes(load("qemu/pc-64m.qevm"), &o).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn slice_of_stream_opens_like_a_vmstate_layer() {
    let bytes = load("qemu/pc-64m.qevm");
    let n = bytes.len() as u64;
    let mut padded = vec![0u8; 4096];
    padded.extend_from_slice(&bytes);
    let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(padded))));
    let s: Arc<dyn Layer> =
        Arc::new(SliceLayer::new("vmstate", AddressSpace::Stream, file, 4096, n).unwrap());
    let (r, reg, o) = ctx_parts();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let mem = QemuMemory::open(s, &ctx).unwrap();
    check_against_elf(&mem, "qemu/pc-64m.elf.gz");
}
