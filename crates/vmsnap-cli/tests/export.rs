//! Memory export end to end: `convert -O elf` and `-O lime` of every memory sample of the
//! corpus (QEMU streams, a savevm qcow2, a libvirt save, VMware checkpoints, a Hyper-V
//! `.vmrs`, ELF cores, LiME files), re-opened by vmsnap: the same guest-physical bytes and
//! holes, the same CPU state (so the x86 layer stacks on the ELF core and maps every page
//! as on the source), and gdb — an oracle nobody here wrote — reads the registers back from
//! the core's `NT_PRSTATUS` notes. Also: how the memory layer is chosen, and refusals.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{s, stderr, vmsnap};
use vmsnap::core::{AddressSpace, ExtentKind, ExternalPolicy, FileLayer, Layer, Options, Resolver};
use vmsnap::stack::{Stack, Stacker};
use vmsnap_testkit::{corpus, libvirt_save, scratch_dir};

/// Every memory sample: corpus files as they are, gzipped ones unpacked, and a libvirt
/// save wrapped around a QEMU stream.
fn samples(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "qemu/pc-64m.qevm",
        "qemu/q35-64m.qevm",
        "qcow2/savevm.qcow2",
        "hyperv/savedstate.vmrs",
        "vmware/embedded.vmss",
        "vmware/plain.vmss",
        "vmware/padded.vmsn",
        "vmware/v0.vmss",
        "elf/small.elf",
        "elf/guest-slice.elf",
        "x86/core.elf",
        "lime/small.lime",
    ]
    .iter()
    .map(|r| corpus(r))
    .collect();
    for gz in [
        "qemu/pc-64m-mapped.qevm.gz",
        "qemu/q35-64m-novmdesc.qevm.gz",
        "elf/paging.elf.gz",
        "lime/guest.lime.gz",
    ] {
        let to = dir.join(Path::new(gz).file_stem().unwrap());
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(corpus(gz))
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(&to, out.stdout).unwrap();
        v.push(to);
    }
    let stream = std::fs::read(corpus("qemu/pc-64m.qevm")).unwrap();
    let save = dir.join("pc-64m.save");
    std::fs::write(
        &save,
        libvirt_save(&stream, 0, "<domain type='kvm'><name>t</name></domain>"),
    )
    .unwrap();
    v.push(save);
    v
}

fn stack(path: &Path) -> Stack {
    let registry = vmsnap::registry().unwrap();
    let resolver = Resolver::new(ExternalPolicy::SameDir);
    let options = Options::new();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(path).unwrap());
    let st = Stacker::new(&registry, &resolver, &options).stack(file);
    assert!(st.error.is_none(), "{}: {:?}", path.display(), st.error);
    st
}

/// The stack's only guest-physical layer.
fn memory(st: &Stack) -> Arc<dyn Layer> {
    let mut m = st
        .entries
        .iter()
        .filter(|e| e.layer.space() == AddressSpace::GuestPhysical);
    let first = m.next().expect("a guest-physical layer").layer.clone();
    assert!(m.next().is_none());
    first
}

fn x86(st: &Stack) -> Option<Arc<dyn Layer>> {
    st.entries
        .iter()
        .find(|e| e.name.ends_with("x86"))
        .map(|e| e.layer.clone())
}

/// Every byte the source holds reads the same from the export, and what is a hole in the
/// source is a hole in the export (which ends with the last present byte).
fn assert_same_memory(src: &dyn Layer, exp: &dyn Layer, what: &str) {
    assert!(exp.len() <= src.len(), "{what}: export longer than source");
    let mut a = vec![0u8; 1 << 20];
    let mut b = vec![0u8; 1 << 20];
    let mut present = 0u64;
    for e in src.extents(0..src.len()).unwrap() {
        if e.kind == ExtentKind::Unallocated {
            let end = e.end().min(exp.len());
            if e.offset < end {
                for x in exp.extents(e.offset..end).unwrap() {
                    assert_eq!(x.kind, ExtentKind::Unallocated, "{what}: {x:?} in {e:?}");
                }
            }
            continue;
        }
        assert!(e.end() <= exp.len(), "{what}: {e:?} past the export's end");
        let mut off = e.offset;
        while off < e.end() {
            let n = (e.end() - off).min(1 << 20) as usize;
            src.read_at(off, &mut a[..n]).unwrap();
            exp.read_at(off, &mut b[..n]).unwrap();
            assert!(a[..n] == b[..n], "{what}: bytes differ in {off:#x}+{n:#x}");
            off += n as u64;
        }
        present += e.len;
    }
    assert!(present > 0, "{what}: no memory compared");
}

/// The x86 layers map the same pages to the same physical addresses.
fn assert_same_paging(src: &dyn Layer, exp: &dyn Layer, what: &str) {
    let data = |l: &dyn Layer| -> Vec<(u64, u64, Option<u64>)> {
        l.extents(0..l.len())
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == ExtentKind::Data)
            .map(|e| (e.offset, e.len, e.lower_offset))
            .collect()
    };
    assert_eq!(src.len(), exp.len(), "{what}: paging mode");
    assert_eq!(data(src), data(exp), "{what}: mappings");
}

fn convert(src: &Path, out: &Path, format: &str) {
    let o = vmsnap(&["convert", "-O", format, "--quiet", s(src), s(out)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}: {}",
        src.display(),
        stderr(&o)
    );
}

#[test]
fn elf_and_lime_exports_reopen_to_the_same_memory_cpu_state_and_paging() {
    let dir = scratch_dir("export-corpus");
    let mut with_paging = 0;
    let mut with_cpus = 0;
    for src_path in samples(&dir) {
        let name = src_path.file_name().unwrap().to_string_lossy().into_owned();
        let src = stack(&src_path);
        let mem = memory(&src);
        for format in ["elf", "lime"] {
            let out = dir.join(format!("{name}.{format}"));
            convert(&src_path, &out, format);
            let exp = stack(&out);
            let what = format!("{name} -O {format}");
            let exp_mem = memory(&exp);
            let want = if format == "elf" { "elf-core" } else { "lime" };
            assert_eq!(exp_mem.name(), want, "{what}");
            assert_same_memory(mem.as_ref(), exp_mem.as_ref(), &what);
            if format == "lime" {
                continue;
            }
            // The CPU state QEMU's notes hold, per vCPU.
            let (a, b) = (mem.cpu_state(), exp_mem.cpu_state());
            assert_eq!(a.len(), b.len(), "{what}: vCPUs");
            for (x, y) in a.iter().zip(&b) {
                assert_eq!((x.cr0, x.cr3, x.cr4), (y.cr0, y.cr3, y.cr4), "{what}");
                for r in ["rip", "rsp", "rax", "r15"] {
                    if let Some(v) = x.regs.get(r) {
                        assert_eq!(y.regs.get(r), Some(v), "{what}: {r}");
                    }
                }
            }
            with_cpus += usize::from(!a.is_empty());
            match (x86(&src), x86(&exp)) {
                (Some(a), Some(b)) => {
                    assert_same_paging(a.as_ref(), b.as_ref(), &what);
                    with_paging += 1;
                }
                (None, None) => {}
                (a, b) => panic!(
                    "{what}: x86 on source {}, on export {}",
                    a.is_some(),
                    b.is_some()
                ),
            }
        }
    }
    assert!(with_cpus >= 10, "{with_cpus}");
    assert!(with_paging >= 6, "{with_paging}");
}

/// gdb's `info registers` on a core: register name → value.
fn gdb_registers(core: &Path) -> Option<Vec<(String, u64)>> {
    let o = Command::new("gdb")
        .args(["-batch", "-nx", "-c"])
        .arg(core)
        .args(["-ex", "info registers"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    Some(
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let name = it.next()?;
                let v = it.next()?.strip_prefix("0x")?;
                Some((name.to_string(), u64::from_str_radix(v, 16).ok()?))
            })
            .collect(),
    )
}

#[test]
fn gdb_reads_the_recorded_registers_from_the_elf_export() {
    if Command::new("gdb").arg("--version").output().is_err() {
        eprintln!("skipped: no gdb (tools/setup.sh installs it)");
        return;
    }
    let dir = scratch_dir("export-gdb");
    let (mut checked, mut total) = (0, 0);
    for src_path in samples(&dir) {
        let name = src_path.file_name().unwrap().to_string_lossy().into_owned();
        let cpus = memory(&stack(&src_path)).cpu_state();
        let Some(first) = cpus.first().filter(|c| c.long_mode()) else {
            continue;
        };
        let out = dir.join(format!("{name}.elf"));
        convert(&src_path, &out, "elf");
        let regs = gdb_registers(&out).unwrap();
        let shown = |n: &str| regs.iter().find(|(r, _)| r == n).map(|(_, v)| *v);
        // Every register the source records reads back; those it does not are 0.
        assert!(first.regs.contains_key("rip"), "{name}");
        let mut compared = 0;
        for (gdb_name, ours) in [
            ("rip", "rip"),
            ("rsp", "rsp"),
            ("rax", "rax"),
            ("rbx", "rbx"),
            ("rcx", "rcx"),
            ("rdx", "rdx"),
            ("rsi", "rsi"),
            ("rdi", "rdi"),
            ("rbp", "rbp"),
            ("r8", "r8"),
            ("r15", "r15"),
            ("eflags", "rflags"),
            ("cs", "cs"),
            ("ss", "ss"),
            ("ds", "ds"),
            ("fs", "fs"),
            ("gs", "gs"),
            ("fs_base", "fs_base"),
            ("gs_base", "gs_base"),
        ] {
            // gdb shows fs_base and gs_base only with a target description.
            let Some(g) = shown(gdb_name) else {
                assert!(
                    gdb_name.ends_with("_base"),
                    "{name}: gdb shows no {gdb_name}"
                );
                continue;
            };
            let g = Some(g);
            match first.regs.get(ours) {
                Some(v) => {
                    assert_eq!(g, Some(*v), "{name}: {gdb_name}");
                    compared += 1;
                }
                None if ["rip", "rsp", "rax", "r15"].contains(&gdb_name) => {
                    assert_eq!(g, Some(0), "{name}: {gdb_name}")
                }
                None => {}
            }
        }
        assert!(compared >= 2, "{name}: gdb showed {regs:?}");
        total += compared;
        checked += 1;
    }
    assert!(
        checked >= 4 && total >= 40,
        "{checked} cores, {total} registers"
    );
}

#[test]
fn the_memory_layer_is_chosen_or_the_choice_is_refused() {
    let dir = scratch_dir("export-choice");
    // A disk has no memory; a named non-memory layer is refused.
    let out = dir.join("x.elf");
    let o = vmsnap(&["convert", "-O", "elf", "corpus/qcow2/v3.qcow2", s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no guest-physical memory"),
        "{}",
        stderr(&o)
    );
    let o = vmsnap(&[
        "convert",
        "-O",
        "lime",
        "-l",
        "qcow2",
        "corpus/qcow2/savevm.qcow2",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("guest_disk space, not guest-physical"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // Named, the memory layer is taken.
    let o = vmsnap(&[
        "convert",
        "-O",
        "elf",
        "-l",
        "qcow2/vmstate:1/qemu",
        "corpus/qcow2/savevm.qcow2",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // An unknown format is an argument error.
    let o = vmsnap(&["convert", "-O", "vmdk", "corpus/qemu/pc-64m.qevm", s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("elf"), "{}", stderr(&o));
}

#[test]
fn exports_go_through_the_output_rules() {
    let dir = scratch_dir("export-outputs");
    let file = dir.join("plain.elf");
    convert(&corpus("vmware/plain.vmss"), &file, "elf");
    // A stream gets the same bytes as a file.
    for fmt in ["elf", "lime"] {
        let o = vmsnap(&["convert", "-O", fmt, "corpus/vmware/plain.vmss", "-"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let f = dir.join(format!("p.{fmt}"));
        convert(&corpus("vmware/plain.vmss"), &f, fmt);
        assert!(
            o.stdout == std::fs::read(&f).unwrap(),
            "-O {fmt} to a stream"
        );
    }
    // Memory that cannot be read (its .vmem not opened) leaves nothing behind.
    let failed = dir.join("failed.elf");
    let o = vmsnap(&[
        "convert",
        "-O",
        "elf",
        "--external",
        "none",
        "corpus/vmware/plain.vmss",
        s(&failed),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("plain.vmem"), "{}", stderr(&o));
    let mut left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["p.elf", "p.lime", "plain.elf"]);
    // A file of the stack is never an output.
    let vmem = dir.join("plain.vmem");
    std::fs::copy(corpus("vmware/plain.vmem"), &vmem).unwrap();
    std::fs::copy(corpus("vmware/plain.vmss"), dir.join("plain.vmss")).unwrap();
    let before = std::fs::read(&vmem).unwrap();
    let o = vmsnap(&[
        "convert",
        "-O",
        "lime",
        s(&dir.join("plain.vmss")),
        s(&vmem),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("refusing to write over an input"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&vmem).unwrap(), before);
}

/// The real 4-level guest of `cargo xtask paging-guests`: its QEMU stream exported to ELF
/// is QEMU's own `dump-guest-memory` core of the same paused guest — the same PT_LOAD
/// ranges and bytes (read with the testkit's independent ELF reader) and the same vCPU
/// registers and CR3 in the notes. CI runs it in its real-guest step.
#[test]
#[ignore = "needs target/paging (cargo xtask paging-guests)"]
fn real_guest_export_equals_qemus_own_core() {
    use std::io::{Read, Seek, SeekFrom};

    use vmsnap_testkit::elf::loads;

    let guest = vmsnap_testkit::workspace_root().join("target/paging/pc-4level");
    let (stream, qemu_core) = (guest.join("stream.bin"), guest.join("core.elf"));
    assert!(stream.is_file(), "no real guest: cargo xtask paging-guests");
    let dir = scratch_dir("export-real");
    let ours = dir.join("guest.elf");
    convert(&stream, &ours, "elf");

    let (a, b) = (loads(&qemu_core), loads(&ours));
    let ranges = |l: &[vmsnap_testkit::elf::Load]| -> Vec<(u64, u64)> {
        l.iter().map(|x| (x.paddr, x.filesz)).collect()
    };
    assert_eq!(ranges(&a), ranges(&b));
    assert!(a.iter().map(|l| l.filesz).sum::<u64>() >= 256 << 20);
    let (mut fa, mut fb) = (
        std::fs::File::open(&qemu_core).unwrap(),
        std::fs::File::open(&ours).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 22], vec![0u8; 1 << 22]);
    for (la, lb) in a.iter().zip(&b) {
        let mut done = 0;
        while done < la.filesz {
            let n = (la.filesz - done).min(1 << 22) as usize;
            fa.seek(SeekFrom::Start(la.offset + done)).unwrap();
            fb.seek(SeekFrom::Start(lb.offset + done)).unwrap();
            fa.read_exact(&mut x[..n]).unwrap();
            fb.read_exact(&mut y[..n]).unwrap();
            assert!(x[..n] == y[..n], "bytes differ at {:#x}", la.paddr + done);
            done += n as u64;
        }
    }

    let (qa, qb) = (memory(&stack(&qemu_core)), memory(&stack(&ours)));
    let (ca, cb) = (qa.cpu_state(), qb.cpu_state());
    assert!(!ca.is_empty());
    assert_eq!(ca.len(), cb.len());
    for (p, q) in ca.iter().zip(&cb) {
        assert_eq!((p.cr0, p.cr3, p.cr4, p.efer), (q.cr0, q.cr3, q.cr4, q.efer));
        for r in [
            "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r15", "rip", "rflags",
            "cs", "ss", "fs_base", "gs_base", "gdt_base", "idt_base", "cr2",
        ] {
            assert_eq!(p.regs.get(r), q.regs.get(r), "vCPU {}: {r}", p.index);
        }
    }
    let (xa, xb) = (
        x86(&stack(&qemu_core)).unwrap(),
        x86(&stack(&ours)).unwrap(),
    );
    assert_same_paging(xa.as_ref(), xb.as_ref(), "real guest");
}
