//! Time and memory follow the data in the file, not the virtual size: the binary opens,
//! maps, checks and converts (to `/dev/null`) empty images of the largest virtual size each
//! format allows, made by qemu-img at test time (sparse, so they cost little disk), under
//! a cap on the child's peak resident set (`ru_maxrss`). A reader that allocates per
//! virtual grain or cluster needs gigabytes here and fails.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vmsnap_testkit::rusage::{can_measure, measure};
use vmsnap_testkit::{have_qemu_img, run, scratch_dir};

/// Peak RSS allowed for a format whose tables live outside the data (and are read on
/// demand).
const CAP_KIB: u64 = 64 * 1024;
/// Wall time allowed for one command (a debug build, on a loaded 2-core machine).
const TIME_CAP: Duration = Duration::from_secs(20);

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
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn table_formats_at_their_largest_stay_small() {
    if !have_qemu_img() || !can_measure() {
        eprintln!("skipped: qemu-img or /usr/bin/time is not installed");
        return;
    }
    let dir = scratch_dir("scale-tables");
    // (format, options, size, info/check exit code)
    let cases: &[(&str, &str, &str, i32)] = &[
        ("qcow2", "", "64T", 0),
        ("vhdx", "", "64T", 0),
        ("vdi", "", "4T", 0),
        ("qed", "", "16T", 1),
        ("vpc", "", "2040G", 0),
        ("qcow", "", "4T", 0),
    ];
    for (fmt, opts, size, code) in cases {
        let name = format!("{fmt}.img");
        create(&dir, fmt, opts, &name, size);
        every_command(&dir, &name, *code, CAP_KIB);
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
    // A 16 MiB BAT (4 Mi clusters of 1 MiB) held once, plus the process: its bytes and
    // entries side by side were 37 MB. (16 TiB, a 64 MiB BAT, is in `bench-scale`.)
    create(&dir, "parallels", "", "p.img", "4T");
    every_command(&dir, "p.img", 0, 14 * 1024 + 16 * 1024);
    std::fs::remove_dir_all(&dir).ok();
}
