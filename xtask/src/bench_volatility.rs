//! `cargo xtask bench-volatility [--runs N] [--no-vmsnap-build]`: Volatility 3's
//! `banners.Banners` over a 4 GiB QEMU guest, through vmsnap against Volatility's own
//! QEMU layer (out of CI: minutes).
//!
//! The guest: QEMU (`-M pc -m 4G`, paused, never run) whose RAM is a private mapping of
//! `target/bench-volatility/ram.bin`, 4 GiB made of the real 4-level guest's 256 MiB of
//! memory (`target/paging/pc-4level/core.elf`, `paging-guests`) sixteen times over, zero
//! pages left sparse. It is migrated to a file with `send-switchover-start=off`: the
//! QEMU 9-style stream Volatility's QEMU layer reads (a QEMU 10 stream carries a
//! `QEMU_VM_COMMAND` section it stops at). Both sides then read that same file; the
//! timings and the ratio are printed. The venv is `tools/python-venv.sh`'s, with the
//! wheel built optimised (`VMSNAP_PY_PROFILE=release`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use vmsnap_testkit::elf;

const GIB: u64 = 1 << 30;
const PAGE: usize = 4096;

/// Runs the benchmark; false on failure.
pub fn run(args: &[String]) -> bool {
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let root = crate::root();
    let dir = root.join("target").join("bench-volatility");
    let core = root.join("target/paging/pc-4level/core.elf");
    if !core.is_file() {
        eprintln!(
            "xtask: {} is missing: cargo xtask paging-guests",
            core.display()
        );
        return false;
    }
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let ram = dir.join("ram.bin");
    let stream = dir.join("pc-4g-qemu9.qevm");
    if !stream.exists() {
        if let Err(e) = write_ram(&core, &ram) {
            eprintln!("xtask: {}: {e}", ram.display());
            return false;
        }
        if !migrate(&ram, &stream) {
            return false;
        }
        // The stream holds it all now.
        let _ = std::fs::remove_file(&ram);
    }
    if !args.iter().any(|a| a == "--no-vmsnap-build")
        && !crate::sh(
            Command::new("bash")
                .arg("tools/python-venv.sh")
                .env("VMSNAP_PY_PROFILE", "release"),
        )
    {
        return false;
    }
    let venv = root.join("target/python-venv/bin");
    let py = venv.join("python");
    let vol = venv.join("vol");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let (t, a) = banners(Command::new(&py).args(["-m", "vmsnap.volatility"]), &stream);
        let (u, b) = banners(&mut Command::new(&vol), &stream);
        let (Some(a), Some(b)) = (a, b) else {
            return false;
        };
        if a != b {
            eprintln!("xtask: the banners differ:\n vmsnap: {a}\n Volatility: {b}");
            return false;
        }
        ours.push(t);
        theirs.push(u);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (a, b) = (best(&ours), best(&theirs));
    println!(
        "banners.Banners over {} (4 GiB QEMU 9-style stream), best of {runs}:",
        stream.display()
    );
    println!("  through vmsnap:            {a:8.1} s");
    println!("  Volatility's QEMU layer:   {b:8.1} s");
    println!("  ratio:                     {:8.1}x", b / a);
    true
}

/// Times `vol … -f stream banners.Banners`: (seconds, the JSON rows) — None on failure.
fn banners(cmd: &mut Command, stream: &Path) -> (f64, Option<String>) {
    let start = Instant::now();
    let out = cmd
        .args(["-q", "-r", "json", "-f"])
        .arg(stream)
        .arg("banners.Banners")
        .stderr(Stdio::inherit())
        .output();
    let t = start.elapsed().as_secs_f64();
    match out {
        Ok(o) if o.status.success() => {
            let rows = String::from_utf8_lossy(&o.stdout);
            // Whatever precedes the JSON (a version line) is not compared.
            let json = rows.find('[').map_or("", |i| &rows[i..]).trim().to_string();
            (t, Some(json))
        }
        Ok(o) => {
            eprintln!("xtask: {cmd:?} failed: {}", o.status);
            (t, None)
        }
        Err(e) => {
            eprintln!("xtask: cannot run {cmd:?}: {e}");
            (t, None)
        }
    }
}

/// 4 GiB of RAM: the core's first PT_LOAD (from physical 0) repeated, zero pages skipped.
fn write_ram(core: &Path, out: &Path) -> std::io::Result<()> {
    let loads = elf::loads(core);
    let first = loads
        .iter()
        .find(|l| l.paddr == 0)
        .ok_or_else(|| std::io::Error::other("the core has no PT_LOAD at 0"))?;
    let mut src = File::open(core)?;
    let mut memory = vec![0u8; usize::try_from(first.filesz).map_err(std::io::Error::other)?];
    src.seek(SeekFrom::Start(first.offset))?;
    src.read_exact(&mut memory)?;
    let mut f = File::create(out)?;
    f.set_len(4 * GIB)?;
    let mut at = 0u64;
    while at < 4 * GIB {
        for (i, page) in memory.chunks(PAGE).enumerate() {
            let pos = at + (i * PAGE) as u64;
            if pos >= 4 * GIB {
                break;
            }
            if page.iter().any(|&b| b != 0) {
                f.seek(SeekFrom::Start(pos))?;
                f.write_all(page)?;
            }
        }
        at += first.filesz;
    }
    f.flush()
}

/// A paused 4 GiB `pc` guest with `ram` as its RAM, migrated to `stream` in the QEMU 9
/// form; the HMP `migrate` returns when the migration has completed.
fn migrate(ram: &Path, stream: &Path) -> bool {
    let tmp = stream.with_extension("tmp");
    let mut child = match Command::new("qemu-system-x86_64")
        .args([
            "-M",
            "pc,memory-backend=pc.ram",
            "-m",
            "4G",
            "-accel",
            "tcg",
            "-S",
        ])
        .args(["-display", "none", "-nodefaults", "-monitor", "stdio"])
        .arg("-object")
        .arg(format!(
            "memory-backend-file,id=pc.ram,size=4G,share=off,mem-path={}",
            ram.display()
        ))
        .args(["-global", "migration.send-switchover-start=off"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: qemu-system-x86_64: {e} (bash tools/install-qemu-system.sh)");
            return false;
        }
    };
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = writeln!(stdin, "migrate file:{}\nquit", tmp.display());
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    ok && std::fs::rename(&tmp, stream).is_ok()
}
