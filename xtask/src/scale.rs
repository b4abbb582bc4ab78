//! `cargo xtask bench-scale`: time and peak RSS of `vmsnap info`, `map`, `check` and
//! `convert … /dev/null` beside qemu-img's on images of the largest virtual size each
//! format allows, empty and with a few scattered writes; the table goes into
//! `docs/performance.md` between the `bench-scale` markers.
//!
//! qemu-img makes the images it writes (`qemu-img create`, `qemu-io -c write`); seSparse,
//! which it cannot create, is crafted by `vmsnap_testkit::sesparse`. qemu-img's convert goes
//! to a `null-co` target of the image's size with `-n --target-is-zero` (what `/dev/null` is to vmsnap).

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use vmsnap_testkit::rusage::{can_measure, measure, Measured};

use crate::{root, sh};

/// (label, qemu-img format, create options, virtual size)
const IMAGES: &[(&str, &str, &str, &str)] = &[
    ("qcow2 1 PiB", "qcow2", "", "1P"),
    ("qcow 16 TiB", "qcow", "", "16T"),
    (
        "VMDK monolithicSparse 2 TiB",
        "vmdk",
        "subformat=monolithicSparse",
        "2T",
    ),
    (
        "VMDK streamOptimized 2 TiB",
        "vmdk",
        "subformat=streamOptimized",
        "2T",
    ),
    (
        "VMDK twoGbMaxExtentSparse 2 TiB",
        "vmdk",
        "subformat=twoGbMaxExtentSparse",
        "2T",
    ),
    ("VHDX 64 TiB", "vhdx", "", "64T"),
    ("VHD 2040 GiB", "vpc", "", "2040G"),
    ("VDI 4 TiB", "vdi", "", "4T"),
    ("QED 64 TiB", "qed", "", "64T"),
    ("Parallels 16 TiB", "parallels", "", "16T"),
];

/// Seconds one command may run.
const TIMEOUT: &str = "60";

/// Runs the benchmark: `--no-build` skips the release build, `--only SUBSTRING` keeps
/// the images whose label contains it (`--only memory`: the memory formats), `--no-write`
/// leaves docs/performance.md alone.
pub fn run(args: &[String]) -> bool {
    if !can_measure() {
        eprintln!("bench-scale: needs /usr/bin/time (GNU time)");
        return false;
    }
    let flag = |f: &str| args.iter().any(|a| a == f);
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    if !flag("--no-build")
        && !sh(Command::new("cargo").args(["build", "--release", "-p", "vmsnap-cli"]))
    {
        return false;
    }
    let vmsnap = root().join("target/release/vmsnap");
    let dir = root().join("target/bench-scale");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut rows = String::new();
    let mut memory_rows = String::new();
    let mut cases: Vec<(String, PathBuf, Option<&str>)> = Vec::new();
    for (i, (label, fmt, opts, size)) in IMAGES.iter().enumerate() {
        if only.as_ref().is_some_and(|o| !label.contains(o.as_str())) {
            continue;
        }
        for written in [false, true] {
            let name = format!("img{i}-{}.{fmt}", if written { "w" } else { "e" });
            let path = dir.join(&name);
            let mut c = Command::new("qemu-img");
            c.args(["create", "-q", "-f", fmt]);
            if !opts.is_empty() {
                c.args(["-o", opts]);
            }
            if !sh(c.arg(&path).arg(size)) {
                continue;
            }
            if written && !scatter(&path, fmt) {
                continue;
            }
            let tag = if written { "4 writes" } else { "empty" };
            cases.push((format!("{label}, {tag}"), path, Some(fmt)));
        }
    }
    if only
        .as_ref()
        .is_none_or(|o| "seSparse".contains(o.as_str()))
    {
        for written in [false, true] {
            let desc = vmsnap_testkit::sesparse::write_sesparse(&dir, written).unwrap();
            let tag = if written { "4 writes" } else { "empty" };
            cases.push((
                format!("VMDK seSparse 62 TiB (crafted), {tag}"),
                desc,
                Some("vmdk"),
            ));
        }
    }
    memory_cases(&dir, only.as_deref(), &mut cases);
    for (label, path, fmt) in &cases {
        eprintln!("bench-scale: {label}");
        let p = path.to_str().unwrap();
        let v = |args: &[&str]| {
            let mut c = Command::new("timeout");
            c.arg(TIMEOUT).arg(&vmsnap).args(args).current_dir(&dir);
            measure(&c)
        };
        let q = |args: &[&str]| {
            let mut c = Command::new("timeout");
            c.arg(TIMEOUT).arg("qemu-img").args(args).current_dir(&dir);
            measure(&c)
        };
        let Some(fmt) = *fmt else {
            // A memory format: qemu-img reads none of them.
            let mut row = format!("| {label} |");
            for args in [
                &["info", p][..],
                &["map", p],
                &["check", p],
                &["convert", p, "/dev/null"],
            ] {
                let _ = write!(row, " {} | — |", cell(&v(args), true));
            }
            println!("{row}");
            memory_rows.push_str(&row);
            memory_rows.push('\n');
            continue;
        };
        let null = format!("driver=null-co,size={}", virtual_size(path));
        let cells = [
            (v(&["info", p]), q(&["info", "-f", fmt, p])),
            (v(&["map", p]), q(&["map", "-f", fmt, p])),
            (v(&["check", p]), q(&["check", "-f", fmt, p])),
            (
                v(&["convert", p, "/dev/null"]),
                q(&[
                    "convert",
                    "-n",
                    "--target-is-zero",
                    "-f",
                    fmt,
                    p,
                    "--target-image-opts",
                    &null,
                ]),
            ),
        ];
        let mut row = format!("| {label} |");
        for (a, b) in &cells {
            let _ = write!(row, " {} | {} |", cell(a, true), cell(b, false));
        }
        println!("{row}");
        rows.push_str(&row);
        rows.push('\n');
    }
    let _ = std::fs::remove_dir_all(&dir);
    let table = format!(
        "| image | vmsnap info | qemu-img info | vmsnap map | qemu-img map | vmsnap check | qemu-img check | vmsnap convert → /dev/null | qemu-img convert → null-co |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n{rows}"
    );
    let memory_table = format!(
        "| guest memory | vmsnap info | qemu-img | vmsnap map | qemu-img | vmsnap check | qemu-img | vmsnap convert → /dev/null | qemu-img |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n{memory_rows}"
    );
    // A table is rewritten only when this run measured rows of it (`--only` keeps the
    // other).
    if !flag("--no-write") {
        if !rows.is_empty() {
            write_table("bench-scale", &table);
        }
        if !memory_rows.is_empty() {
            write_table("bench-scale memory", &memory_table);
        }
    }
    true
}

/// "0.12 s, 9 MiB", or what went wrong. vmsnap's `info`/`check` exit 1 for a finding.
fn cell(m: &Measured, ours: bool) -> String {
    let ok = match m.code {
        Some(0) => true,
        Some(1) if ours => true,
        _ => false,
    };
    let fig = format!(
        "{:.2} s, {} MiB",
        m.wall.as_secs_f64(),
        m.max_rss_kib.div_ceil(1024)
    );
    if ok {
        fig
    } else if m.code == Some(124) {
        format!("timeout ({TIMEOUT} s)")
    } else if String::from_utf8_lossy(&m.stderr).contains("does not support") {
        "n/a".into()
    } else {
        format!("fails ({fig})")
    }
}

/// Four 1 MiB writes spread over the disk (ascending, grain aligned: a stream takes them).
fn scatter(path: &Path, fmt: &str) -> bool {
    let size = virtual_size(path);
    let mib = 1u64 << 20;
    let mut c = Command::new("qemu-io");
    c.args(["-f", fmt]);
    for (k, at) in [0, size / 3, 2 * (size / 3), size - mib].iter().enumerate() {
        let at = at / mib * mib;
        c.args(["-c", &format!("write -P {} {at} {mib}", k + 1)]);
    }
    let ok = c
        .arg(path)
        .output()
        .is_ok_and(|o| o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("fail"));
    if !ok {
        eprintln!("bench-scale: qemu-io cannot write {}", path.display());
    }
    ok
}

/// The memory formats, each declaring ≥ 1 TiB of guest RAM with a few pages present
/// (`vmsnap_testkit::huge_memory`, the VMware and Hyper-V builders), and a real QEMU guest of 1 TiB
/// saved with mapped-ram when qemu-system-x86_64 is installed.
fn memory_cases(dir: &Path, only: Option<&str>, cases: &mut Vec<(String, PathBuf, Option<&str>)>) {
    use vmsnap_testkit::huge_memory::*;
    let mut add = |label: &str, name: &str, make: &dyn Fn(&Path) -> bool| {
        // `--only memory` keeps every memory format.
        if only.is_some_and(|o| o != "memory" && !label.contains(o)) {
            return;
        }
        let path = dir.join(name);
        if make(&path) {
            cases.push((label.to_string(), path, None));
        }
    };
    let pages = scattered_pages(TIB);
    add("ELF core 1 TiB, 4 pages (crafted)", "holes.elf", &|p| {
        write_elf_core(p, &pages, None);
        true
    });
    add(
        "ELF core 1 TiB p_memsz, 1 page (crafted)",
        "fill.elf",
        &|p| {
            write_elf_core(p, &[0], Some(TIB));
            true
        },
    );
    add("LiME 1 TiB, 4 pages (crafted)", "holes.lime", &|p| {
        write_lime(p, &pages);
        true
    });
    let real = std::fs::read(root().join("corpus/qemu/pc-64m.qevm")).unwrap();
    add(
        "QEMU stream, pc.ram declared 1 TiB (real stream, rewritten)",
        "big.qevm",
        &|p| {
            std::fs::write(p, qemu_stream_declaring(&real, TIB)).unwrap();
            true
        },
    );
    add(
        "QEMU stream 64 GiB, a ZERO record per page (crafted)",
        "zeros.qevm",
        &|p| {
            let s = qemu_stream_declaring(&real, 64 << 30);
            let first = (64 << 20) / PAGE;
            let s = qemu_stream_with_zero_records(&s, first, (64 << 30) / PAGE - first);
            std::fs::write(p, s).unwrap();
            true
        },
    );
    add(
        "QEMU 1 TiB guest, mapped-ram (real QEMU)",
        "mapped.qevm",
        &|p| qemu_mapped_ram_1t(p),
    );
    add(
        "VMware .vmss + sparse 1 TiB .vmem (crafted)",
        "huge.vmss",
        &|p| {
            let (files, _, _) = vmsnap_vmware::builder::huge_sample(TIB / PAGE, 1 << 22);
            for (name, image) in files {
                image.write_to(&p.with_file_name(name)).unwrap();
            }
            true
        },
    );
    for (written, tag) in [(false, "empty"), (true, "4 writes")] {
        add(
            &format!("Hyper-V .vmrs 1 TiB in 65 536 blocks, {tag} (crafted)"),
            &format!("huge-{}.vmrs", if written { "w" } else { "e" }),
            &|p| {
                std::fs::write(p, huge_vmrs(written)).unwrap();
                true
            },
        );
    }
}

/// A Hyper-V saved state declaring 1 TiB of guest RAM in 65 536 `RamMemoryBlock`s of
/// 16 MiB, each followed by a 16 MiB hole (guest-physical space of 2 TiB), with no data
/// block or, `written`, four 1 MiB blocks spread over it (filled with 1, 2, 3, 4 as
/// `scatter` does for disks).
fn huge_vmrs(written: bool) -> Vec<u8> {
    use vmsnap_hyperv::builder::{sparse_saved_state, GuestOpts};
    const BLOCK: u64 = 16 << 20;
    const BLOCKS: u64 = 1 << 16;
    let mib = 1u64 << 20;
    let extents: Vec<(u64, u64)> = (0..BLOCKS).map(|i| (2 * i * BLOCK, BLOCK)).collect();
    let fills: Vec<Vec<u8>> = (1..=4u8).map(|k| vec![k; mib as usize]).collect();
    let at = [0, BLOCKS / 3, 2 * BLOCKS / 3, BLOCKS - 1].map(|i| 2 * i * BLOCK + BLOCK - mib);
    let pieces: Vec<(u64, &[u8])> = if written {
        at.iter().zip(&fills).map(|(&a, f)| (a, &f[..])).collect()
    } else {
        Vec::new()
    };
    sparse_saved_state(&extents, &pieces, &[], &GuestOpts::default()).bytes
}

/// Saves a paused 1 TiB QEMU guest (`memory-backend-ram,reserve=off`: nothing is
/// allocated) to `path` with mapped-ram: a sparse file of 1 TiB holding its 32 MiB dirty
/// bitmap and the few pages the firmware wrote. A few minutes under TCG.
fn qemu_mapped_ram_1t(path: &Path) -> bool {
    use std::io::{BufRead, BufReader};
    let spawned = Command::new("qemu-system-x86_64")
        .args([
            "-M",
            "pc,memory-backend=m",
            "-cpu",
            "max,phys-bits=42",
            "-m",
            "1T",
            "-object",
            "memory-backend-ram,id=m,size=1T,reserve=off",
            "-S",
            "-accel",
            "tcg",
            "-display",
            "none",
            "-nodefaults",
            "-qmp",
            "stdio",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut vm) = spawned else {
        eprintln!("bench-scale: no qemu-system-x86_64 (tools/install-qemu-system.sh)");
        return false;
    };
    let mut input = vm.stdin.take().unwrap();
    let mut output = BufReader::new(vm.stdout.take().unwrap());
    let mut send = |cmd: &str| -> String {
        if writeln!(input, "{cmd}").is_err() {
            return String::new();
        }
        let mut line = String::new();
        loop {
            line.clear();
            if output.read_line(&mut line).unwrap_or(0) == 0 {
                return String::new();
            }
            if line.contains("\"return\"") || line.contains("\"error\"") {
                return line.clone();
            }
        }
    };
    send(r#"{"execute":"qmp_capabilities"}"#);
    send(
        r#"{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"mapped-ram","state":true}]}}"#,
    );
    let uri = format!("file:{}", path.display());
    send(&format!(
        r#"{{"execute":"migrate","arguments":{{"uri":"{uri}"}}}}"#
    ));
    let mut ok = false;
    for _ in 0..1200 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let r = send(r#"{"execute":"query-migrate"}"#);
        if r.contains("\"completed\"") {
            ok = true;
            break;
        }
        if r.is_empty() || r.contains("\"failed\"") {
            eprintln!("bench-scale: the 1 TiB migration failed: {r}");
            break;
        }
    }
    send(r#"{"execute":"quit"}"#);
    let _ = vm.wait();
    ok
}

fn virtual_size(path: &Path) -> u64 {
    vmsnap_testkit::qemu_img_info(path)["virtual-size"]
        .as_u64()
        .unwrap_or(0)
}

/// Replaces the table between the `<!-- MARKER start -->` and `<!-- MARKER end -->` lines
/// in docs/performance.md (appends it the first time).
fn write_table(marker: &str, table: &str) {
    let path = root().join("docs/performance.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = (
        format!("<!-- {marker} start -->"),
        format!("<!-- {marker} end -->"),
    );
    let (start, end) = (start.as_str(), end.as_str());
    let block = format!("{start}\n{table}{end}");
    let new = match (doc.find(start), doc.find(end)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &doc[..a], &doc[b + end.len()..]),
        _ => format!("{doc}\n{block}\n"),
    };
    std::fs::write(&path, new).unwrap();
    eprintln!("bench-scale: table written to {}", path.display());
}
