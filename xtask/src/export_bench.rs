//! `cargo xtask bench-export [--runs N]`: `convert -O elf` and `-O lime` of the 4 GiB QEMU
//! bench guest (the criterion `qemu` bench's `qemu-4g-pc.qevm`: 1 GiB of realistic RAM,
//! the rest zero pages) against `convert -O raw` of the same guest-physical layer, each to
//! `/dev/null` and to a file; median of N runs (default 5), release build.

use std::process::Command;

use crate::peers::{quiet, time};
use crate::{root, sh};

/// Runs bench-export.
pub fn run(args: &[String]) -> bool {
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    let guest = root().join("target/bench-data/qemu-4g-pc.qevm");
    // The criterion bench makes the guest on first use; `--test` runs each bench once.
    if !guest.exists()
        && !sh(Command::new("cargo").args([
            "bench",
            "-p",
            "vmsnap-benches",
            "--bench",
            "qemu",
            "--",
            "--test",
            "qemu/4g",
        ]))
    {
        return false;
    }
    if !sh(Command::new("cargo").args(["build", "--release", "-p", "vmsnap-cli"])) {
        return false;
    }
    let vmsnap = root().join("target/release/vmsnap");
    let dir = root().join("target/bench-data");
    println!(
        "guest: {} (4 GiB QEMU stream, 1 GiB realistic RAM), median of {runs} runs",
        guest.display()
    );
    println!("| output | -O raw | -O elf | elf / raw | -O lime | lime / raw |");
    println!("|---|---:|---:|---:|---:|---:|");
    for target in ["/dev/null", "file"] {
        let mut secs = Vec::new();
        for fmt in ["raw", "elf", "lime"] {
            // `time` removes this file before each run: never the output when it is
            // /dev/null.
            let file = dir.join(format!("export-bench.{fmt}"));
            let out = if target == "file" {
                file.clone()
            } else {
                "/dev/null".into()
            };
            let t = time(runs, &file, || {
                quiet(
                    Command::new(&vmsnap)
                        .args(["convert", "--quiet", "-l", "qemu", "-O", fmt])
                        .arg(&guest)
                        .arg(&out),
                )
            });
            let _ = std::fs::remove_file(&file);
            let Some(t) = t else {
                eprintln!("xtask: convert -O {fmt} to {target} failed");
                return false;
            };
            secs.push(t);
        }
        let (raw, elf, lime) = (secs[0], secs[1], secs[2]);
        // Speed relative to raw: raw's time over the format's.
        println!(
            "| {target} | {raw:.2} s | {elf:.2} s | {:.2}× | {lime:.2} s | {:.2}× |",
            raw / elf,
            raw / lime
        );
    }
    true
}
