//! `cargo xtask bench-peers`: vmsnap against qemu-img, whole-image convert of a realistic
//! image in every format, to a file and to a null target; median of N runs, the tools taking
//! turns run by run so that a change of load hits them alike. `--baseline PATH` adds a
//! second vmsnap binary (an earlier commit's release build) to the turns: a before/after
//! comparison on the same machine at the same time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{root, sh};

/// (label, qemu-img output format, extra qemu-img convert arguments)
const FORMATS: &[(&str, &str, &[&str])] = &[
    ("raw", "raw", &[]),
    ("qcow2", "qcow2", &[]),
    ("qcow2-zlib", "qcow2", &["-c"]),
    (
        "qcow2-zstd",
        "qcow2",
        &["-c", "-o", "compression_type=zstd"],
    ),
    (
        "qcow2-extl2",
        "qcow2",
        &["-o", "extended_l2=on,cluster_size=128k"],
    ),
    ("vmdk-sparse", "vmdk", &[]),
    (
        "vmdk-2gb",
        "vmdk",
        &["-o", "subformat=twoGbMaxExtentSparse"],
    ),
    ("vmdk-stream", "vmdk", &["-o", "subformat=streamOptimized"]),
    ("vhd", "vpc", &[]),
    ("vhdx", "vhdx", &[]),
    ("vdi", "vdi", &[]),
    ("qed", "qed", &[]),
    ("parallels", "parallels", &[]),
];

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Removes a benchmark's previous output, only when it is a regular file: run as root, a
/// plain `remove_file` of `/dev/null` (a sink some runs write to) deletes the device.
pub(crate) fn remove_output(out: &Path) {
    if std::fs::symlink_metadata(out).is_ok_and(|m| m.is_file()) {
        let _ = std::fs::remove_file(out);
    }
}

/// Median wall time of `runs` runs of `f`. Before each run (untimed) the last output is
/// removed and dirty pages are flushed, so that no run pays for an earlier run's writeback:
/// without that, file-target timings of either tool varied by 3x.
pub(crate) fn time(runs: usize, out: &Path, mut f: impl FnMut() -> bool) -> Option<f64> {
    let mut v = Vec::new();
    for _ in 0..runs {
        remove_output(out);
        let _ = Command::new("sync").status();
        let t = Instant::now();
        if !f() {
            return None;
        }
        v.push(t.elapsed().as_secs_f64());
    }
    Some(median(v))
}

/// Median wall time of each command over `runs` rounds in which they take turns (one run
/// each, in order), with [`time`]'s preparation before every run; `None` for a command that
/// failed.
fn turns(runs: usize, out: &Path, cmds: &mut [Command]) -> Vec<Option<f64>> {
    let mut times: Vec<Option<Vec<f64>>> = vec![Some(Vec::new()); cmds.len()];
    for _ in 0..runs {
        for (cmd, t) in cmds.iter_mut().zip(times.iter_mut()) {
            if let Some(v) = t {
                match time(1, out, || quiet(cmd)) {
                    Some(x) => v.push(x),
                    None => *t = None,
                }
            }
        }
    }
    times.into_iter().map(|t| t.map(median)).collect()
}

pub(crate) fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether vmsnap opens `img` as a format (not just a raw file).
fn vmsnap_reads(vmsnap: &Path, img: &Path, label: &str) -> bool {
    if label == "raw" {
        return true;
    }
    let out = Command::new(vmsnap)
        .args(["info", "--json"])
        .arg(img)
        .output();
    let Ok(out) = out else { return false };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["stack"].as_array().is_some_and(|s| s.len() >= 2) && v["error"].is_null()
}

/// Runs bench-peers.
pub fn run(args: &[String]) -> bool {
    let mut size_mib = 1024u64;
    let mut runs = 3usize;
    let mut only: Option<Vec<String>> = None;
    let mut baseline: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--size-mib" => size_mib = it.next().and_then(|s| s.parse().ok()).unwrap_or(size_mib),
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(runs)
                    .max(1)
            }
            "--formats" => {
                only = it
                    .next()
                    .map(|s| s.split(',').map(str::to_string).collect())
            }
            "--baseline" => baseline = it.next().map(PathBuf::from),
            _ => {}
        }
    }
    if !sh(Command::new("cargo").args(["build", "--release", "-p", "vmsnap-cli"])) {
        return false;
    }
    let vmsnap = root().join("target/release/vmsnap");
    let dir = root().join("target/peers");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join(format!("realistic-{size_mib}m.raw"));
    if !raw.exists() {
        eprintln!("xtask: writing {}", raw.display());
        vmsnap_testkit::image::write_realistic_raw(&raw, size_mib, 42).unwrap();
    }
    let out = dir.join("out.raw");
    println!("image: {size_mib} MiB realistic (60% random, 30% zero, 10% repeated), median of {runs} runs");
    println!(
        "{:<13} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
        "format", "vmsnap→file", "qemu→file", "ratio", "vmsnap→null", "qemu→null", "ratio"
    );
    if let Some(b) = &baseline {
        println!(
            "baseline {}: its rates and now÷baseline follow each row",
            b.display()
        );
    }
    for (label, fmt, extra) in FORMATS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == label)) {
            continue;
        }
        let img: PathBuf = if *label == "raw" {
            raw.clone()
        } else {
            let p = dir.join(format!("realistic-{size_mib}m.{label}"));
            if !p.exists()
                && !quiet(
                    Command::new("qemu-img")
                        .args(["convert", "-O", fmt])
                        .args(*extra)
                        .arg(&raw)
                        .arg(&p),
                )
            {
                println!("{label:<13} (qemu-img cannot create it here; skipped)");
                continue;
            }
            p
        };
        if !vmsnap_reads(&vmsnap, &img, label) {
            println!("{label:<13} (vmsnap does not read this format yet; skipped)");
            continue;
        }
        let mib = size_mib as f64;
        // The null target is sized like the image: a VHD's CHS-rounded size is not 1 GiB.
        let virtual_size = vmsnap_testkit::qemu_img_info(&img)["virtual-size"]
            .as_u64()
            .unwrap_or(0);
        let to_file = |bin: &Path| {
            let mut c = Command::new(bin);
            c.args(["convert", "--quiet"]).arg(&img).arg(&out);
            c
        };
        let to_null = |bin: &Path| {
            let mut c = Command::new(bin);
            c.args(["convert", "--quiet"]).arg(&img).arg("/dev/null");
            c
        };
        let qemu_file = || {
            let mut c = Command::new("qemu-img");
            c.args(["convert", "-O", "raw"]).arg(&img).arg(&out);
            c
        };
        let qemu_null = || {
            let mut c = Command::new("qemu-img");
            c.args(["convert", "-n", "--target-image-opts"])
                .arg(&img)
                .arg(format!("driver=null-co,size={virtual_size}"));
            c
        };
        let mut file_runs: Vec<Command> = vec![to_file(&vmsnap), qemu_file()];
        let mut null_runs: Vec<Command> = vec![to_null(&vmsnap), qemu_null()];
        if let Some(b) = &baseline {
            file_runs.push(to_file(b));
            null_runs.push(to_null(b));
        }
        let file_times = turns(runs, &out, &mut file_runs);
        let null_times = turns(runs, &out, &mut null_runs);
        let (vm_file, qi_file) = (file_times[0], file_times[1]);
        let (vm_null, qi_null) = (null_times[0], null_times[1]);
        let rate = |t: Option<f64>| {
            t.map(|t| format!("{:.0} MiB/s", mib / t))
                .unwrap_or("failed".into())
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}x", b / a),
            _ => "-".into(),
        };
        println!(
            "{label:<13} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
            rate(vm_file),
            rate(qi_file),
            ratio(vm_file, qi_file),
            rate(vm_null),
            rate(qi_null),
            ratio(vm_null, qi_null)
        );
        if baseline.is_some() {
            let (b_file, b_null) = (file_times[2], null_times[2]);
            println!(
                "{:<13} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
                "  baseline",
                rate(b_file),
                "",
                ratio(vm_file, b_file),
                rate(b_null),
                "",
                ratio(vm_null, b_null)
            );
        }
    }
    let _ = std::fs::remove_file(&out);
    volatility_qemu(&vmsnap);
    true
}

/// With `$VOL3_PYTHON` set (a Python with volatility3), times Volatility 3's QEMU layer on
/// the 4 GiB QEMU-9-style stream (`send-switchover-start=off`) that the big QEMU test makes,
/// beside `vmsnap info` of the same file.
fn volatility_qemu(vmsnap: &Path) {
    let Ok(python) = std::env::var("VOL3_PYTHON") else {
        println!("(set VOL3_PYTHON to a Python with volatility3 to time its QEMU layer too)");
        return;
    };
    let stream = root().join("target/qemu-4g/pc-4g-noswitch.qevm");
    if !stream.exists() {
        println!(
            "(no {}: run `cargo test -p vmsnap-qemu --release --test big -- --ignored`)",
            stream.display()
        );
        return;
    }
    let t = time(3, &root().join("target/peers/none"), || {
        quiet(Command::new(vmsnap).arg("info").arg(&stream))
    });
    println!(
        "qemu 4 GiB stream: vmsnap open (whole `info` process) {}",
        t.map(|t| format!("{t:.3} s")).unwrap_or("failed".into())
    );
    let _ = sh(Command::new(python)
        .arg(root().join("tools/vol3-qemu.py"))
        .arg(&stream));
}
