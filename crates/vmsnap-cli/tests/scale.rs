//! Time and memory follow the data in the file, not the virtual size: the binary opens,
//! maps, checks and converts (to `/dev/null`) empty images of the largest virtual size each
//! format allows, made by qemu-img at test time (sparse, so they cost little disk), under
//! a cap on the child's peak resident set (`ru_maxrss`). A reader that allocates per
//! virtual grain or cluster needs gigabytes here and fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vmsnap_testkit::rusage::{can_measure, measure};
use vmsnap_testkit::{have_qemu_img, run, scratch_dir};

/// Peak RSS allowed for a format whose tables live outside the data (and are read on
/// demand).
const CAP_KIB: u64 = 64 * 1024;
/// Wall time allowed for one command: a guard against a hang, not a speed figure (a debug
/// build on a loaded 2-core machine; Parallels 16 TiB `map` took 8.7 s in one such run).
const TIME_CAP: Duration = Duration::from_secs(60);

/// Runs `vmsnap <args>` and asserts its exit code, peak RSS and time.
fn within(args: &[&str], dir: &Path, code: i32, cap_kib: u64) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmsnap"));
    c.args(args).current_dir(dir);
    let m = measure(&c);
    assert_eq!(
        m.code,
        Some(code),
        "vmsnap {args:?}: {}",
        String::from_utf8_lossy(&m.stderr)
    );
    assert!(
        m.max_rss_kib < cap_kib,
        "vmsnap {args:?} peaked at {} KiB (cap {cap_kib} KiB)",
        m.max_rss_kib
    );
    assert!(m.wall < TIME_CAP, "vmsnap {args:?} took {:?}", m.wall);
    eprintln!("vmsnap {args:?}: {:?}, {} KiB", m.wall, m.max_rss_kib);
}

/// Makes `name` with `qemu-img create -f fmt [-o opts] name size` in `dir`.
fn create(dir: &Path, fmt: &str, opts: &str, name: &str, size: &str) {
    let mut c = Command::new("qemu-img");
    c.args(["create", "-q", "-f", fmt]);
    if !opts.is_empty() {
        c.args(["-o", opts]);
    }
    run(c.args([name, size]).current_dir(dir));
}

/// One image through every command: `info` and `check` exit 0 or 1 (findings such as a
/// deprecated format), `map` and `convert` exit 0.
fn every_command(dir: &Path, name: &str, info_code: i32, cap_kib: u64) {
    within(&["info", name], dir, info_code, cap_kib);
    within(&["check", name], dir, info_code, cap_kib);
    within(&["map", "--json", name], dir, 0, cap_kib);
    within(&["convert", name, "/dev/null"], dir, 0, cap_kib);
}

#[test]
fn vmdk_sparse_and_stream_stay_small() {
    if !have_qemu_img() || !can_measure() {
        eprintln!("skipped: qemu-img or /usr/bin/time is not installed");
        return;
    }
    let dir = scratch_dir("scale-vmdk");
    // 4 Mi grains in allocated grain tables: one tuple per grain was 166 MB (1.33 GB at
    // 2 TiB, which `bench-scale` runs; an eighth keeps a debug build quick).
    create(
        &dir,
        "vmdk",
        "subformat=monolithicSparse",
        "sparse.vmdk",
        "256G",
    );
    every_command(&dir, "sparse.vmdk", 0, CAP_KIB);
    create(
        &dir,
        "vmdk",
        "subformat=streamOptimized",
        "stream.vmdk",
        "256G",
    );
    every_command(&dir, "stream.vmdk", 0, CAP_KIB);
    // 256 extents of 2 GiB, each with its own grain directory: a quarter of
    // `bench-scale`'s 2 TiB, whose `map` takes 14 s in a debug build (peak RSS the same).
    create(
        &dir,
        "vmdk",
        "subformat=twoGbMaxExtentSparse",
        "split.vmdk",
        "512G",
    );
    // `info`/`check` exit 1: the descriptor references its extent files.
    every_command(&dir, "split.vmdk", 1, CAP_KIB);
    std::fs::remove_dir_all(&dir).ok();
}

/// The crafted 62 TiB seSparse extent `bench-scale` opens (`vmsnap_testkit::sesparse`):
/// empty, its grain directory a 31 MiB hole; and with four grains written, one per grain
/// table from the first grain-directory entry to the last, whose bytes `cat` returns as
/// QEMU's reader does.
#[test]
fn sesparse_of_62_tib_stays_small() {
    use vmsnap_testkit::sesparse::{write_sesparse, written_grains, CAPACITY, GRAIN};
    if !can_measure() {
        eprintln!("skipped: /usr/bin/time is not installed");
        return;
    }
    let dir = scratch_dir("scale-sesparse");
    for written in [false, true] {
        let desc = write_sesparse(&dir, written).unwrap();
        let name = desc.file_name().unwrap().to_str().unwrap();
        // `info`/`check` exit 1: the descriptor's reference to its extent and QEMU's
        // unsupported-subformat finding.
        every_command(&dir, name, 1, CAP_KIB);
        assert_eq!(layer_size(&dir, name, "guest_disk"), CAPACITY, "{name}");
        let grains = if written {
            written_grains()
        } else {
            vec![(CAPACITY / 2, 0)]
        };
        for (at, fill) in grains {
            let got = run(Command::new(env!("CARGO_BIN_EXE_vmsnap"))
                .args(["cat", name, "--offset", &at.to_string(), "--length"])
                .arg(GRAIN.to_string())
                .current_dir(&dir));
            assert_eq!(got, vec![fill; GRAIN as usize], "{name} at {at:#x}");
            if have_qemu_io() {
                // QEMU's seSparse reader agrees (`read -P` fails on any other byte).
                let out = Command::new("qemu-io")
                    .args(["-f", "vmdk", "-r", "-c"])
                    .arg(format!("read -P {fill} {at} {GRAIN}"))
                    .arg(name)
                    .current_dir(&dir)
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success() && !text.contains("fail") && text.contains("read "),
                    "qemu-io on {name} at {at:#x}: {text}"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Whether qemu-io runs.
fn have_qemu_io() -> bool {
    Command::new("qemu-io")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn table_formats_at_their_largest_stay_small() {
    if !have_qemu_img() || !can_measure() {
        eprintln!("skipped: qemu-img or /usr/bin/time is not installed");
        return;
    }
    let dir = scratch_dir("scale-tables");
    // (format, options, size, info/check exit code, peak RSS cap). qcow (version 1) holds
    // its L1 table, 64 MiB at 16 TiB (8 Mi entries of 2 MiB each), once.
    let cases: &[(&str, &str, &str, i32, u64)] = &[
        ("qcow2", "", "64T", 0, CAP_KIB),
        ("vhdx", "", "64T", 0, CAP_KIB),
        ("vdi", "", "4T", 0, CAP_KIB),
        ("qed", "", "64T", 1, CAP_KIB),
        ("vpc", "", "2040G", 0, CAP_KIB),
        ("qcow", "", "16T", 0, 14 * 1024 + 64 * 1024),
    ];
    for (fmt, opts, size, code, cap) in cases {
        let name = format!("{fmt}.img");
        create(&dir, fmt, opts, &name, size);
        every_command(&dir, &name, *code, *cap);
        std::fs::remove_file(dir.join(&name)).ok();
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn parallels_needs_its_bat_and_no_more() {
    if !have_qemu_img() || !can_measure() {
        eprintln!("skipped: qemu-img or /usr/bin/time is not installed");
        return;
    }
    let dir = scratch_dir("scale-parallels");
    // A 64 MiB BAT (16 Mi clusters of 1 MiB) held once, plus the process: its bytes and
    // entries side by side were 136 MB.
    create(&dir, "parallels", "", "p.img", "16T");
    every_command(&dir, "p.img", 0, 14 * 1024 + 64 * 1024);
    std::fs::remove_dir_all(&dir).ok();
}

/// `vmsnap cat FILE --offset O --length 8`: the 8 bytes there.
fn eight_bytes_at(dir: &Path, name: &str, offset: u64) -> Vec<u8> {
    run(Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args([
            "cat",
            name,
            "--offset",
            &offset.to_string(),
            "--length",
            "8",
        ])
        .current_dir(dir))
}

/// `info --json`'s size of the guest-physical layer.
fn physical_size(dir: &Path, name: &str) -> u64 {
    layer_size(dir, name, "guest_physical")
}

/// `info --json`'s size of the layer in `space` (`guest_disk`, `guest_physical`).
fn layer_size(dir: &Path, name: &str, space: &str) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["info", "--json", name])
        .current_dir(dir)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["space"] == space)
        .and_then(|l| l["size"].as_u64())
        .unwrap_or_else(|| panic!("{name}: no {space} layer in {v}"))
}

#[test]
fn memory_formats_declaring_a_terabyte_stay_small() {
    use vmsnap_testkit::huge_memory::*;
    if !can_measure() {
        eprintln!("skipped: /usr/bin/time is not installed");
        return;
    }
    let dir = scratch_dir("scale-memory");
    let pages = scattered_pages(TIB);
    write_elf_core(&dir.join("holes.elf"), &pages, None);
    write_elf_core(&dir.join("fill.elf"), &[0], Some(TIB));
    write_lime(&dir.join("holes.lime"), &pages);
    let real = std::fs::read(vmsnap_testkit::corpus("qemu/pc-64m.qevm")).unwrap();
    std::fs::write(dir.join("big.qevm"), qemu_stream_declaring(&real, TIB)).unwrap();
    // 16 GiB sent as QEMU sends untouched RAM without mapped-ram: a ZERO record per page
    // (4 Mi records, 36 MiB). Kept one by one they took 64 MiB; as runs, a few bytes.
    let zeros = qemu_stream_declaring(&real, 16 << 30);
    let zeros = qemu_stream_with_zero_records(
        &zeros,
        (64 << 20) / PAGE,
        (16 << 30) / PAGE - (64 << 20) / PAGE,
    );
    std::fs::write(dir.join("zeros.qevm"), zeros).unwrap();
    let (files, _, written) = vmsnap_vmware::builder::huge_sample(TIB / PAGE, 1 << 22);
    for (name, image) in files {
        image.write_to(&dir.join(name)).unwrap();
    }
    // (file, guest-physical size, a page it holds and the first 8 bytes there); `check`
    // finds the checkpoint's reference to its `.vmem` unsafe (exit 1).
    let vmware_page = written[written.len() / 2] * PAGE;
    let vmware_word = (vmware_page ^ vmsnap_vmware::builder::CORPUS_SEED).to_le_bytes();
    // The pc machine puts RAM above 3 GiB at 4 GiB: 1 TiB of RAM ends 1 GiB later.
    let qemu_size = TIB + (1 << 30);
    let cases: Vec<(&str, u64, u64, Vec<u8>)> = vec![
        ("holes.elf", TIB, TIB / 2, (TIB / 2).to_le_bytes().to_vec()),
        ("fill.elf", TIB, 0, 0u64.to_le_bytes().to_vec()),
        (
            "holes.lime",
            TIB,
            TIB - PAGE,
            (TIB - PAGE).to_le_bytes().to_vec(),
        ),
        ("big.qevm", qemu_size, TIB, vec![0; 8]),
        ("zeros.qevm", (17 << 30), 8 << 30, vec![0; 8]),
        ("huge.vmss", qemu_size, vmware_page, vmware_word.to_vec()),
    ];
    for (name, size, at, want) in &cases {
        let check = if name.ends_with(".vmss") { 1 } else { 0 };
        within(&["info", name], &dir, 0, CAP_KIB);
        within(&["check", name], &dir, check, CAP_KIB);
        within(&["map", "--json", name], &dir, 0, CAP_KIB);
        within(&["convert", name, "/dev/null"], &dir, 0, CAP_KIB);
        assert_eq!(physical_size(&dir, name), *size, "{name}");
        assert_eq!(&eight_bytes_at(&dir, name, *at), want, "{name} at {at:#x}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// QEMU's real mapped-ram file rewritten to declare 8 TiB of `pc.ram` (a 256 MiB dirty
/// bitmap, nearly all clear, in a sparse file) with three more pages set far apart: the
/// bitmap is read in `BITMAP_CHUNK_BYTES` pieces and kept as runs, so every command stays
/// under the cap (read whole, the bitmap alone took 256 MiB).
#[test]
fn mapped_ram_bitmap_of_eight_tib_stays_small() {
    use vmsnap_testkit::huge_memory::*;
    if !can_measure() {
        eprintln!("skipped: /usr/bin/time is not installed");
        return;
    }
    let gz = vmsnap_testkit::corpus("qemu/pc-64m-mapped.qevm.gz");
    let out = Command::new("gzip").arg("-dc").arg(&gz).output().unwrap();
    assert!(out.status.success(), "gzip -dc {}", gz.display());
    let dir = scratch_dir("scale-mapped");
    let ram = 8 * TIB;
    // Offsets in pc.ram: above 3 GiB the pc machine maps them 1 GiB higher.
    let extra = [4 << 30, 5 * TIB + 7 * PAGE, ram - PAGE];
    let name = "mapped-8t.qevm";
    write_qemu_mapped_ram_declaring(&dir.join(name), &out.stdout, ram, &extra);
    within(&["info", name], &dir, 0, CAP_KIB);
    within(&["check", name], &dir, 0, CAP_KIB);
    within(&["map", "--json", name], &dir, 0, CAP_KIB);
    within(&["convert", name, "/dev/null"], &dir, 0, CAP_KIB);
    assert_eq!(physical_size(&dir, name), ram + (1 << 30));
    for off in extra {
        assert_eq!(
            eight_bytes_at(&dir, name, off + (1 << 30)),
            off.to_le_bytes(),
            "pc.ram offset {off:#x}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
