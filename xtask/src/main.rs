//! `cargo xtask`: the project's tasks.
//!
//! * `ci` — everything `.ci/run` does (it runs that script).
//! * `corpus` — rebuilds `corpus/` from the recipes (`corpus/*/make.sh`), then makes the
//!   paging guests.
//! * `paging-guests` — boots Debian's kernels under QEMU (4-level, 5-level and 32-bit PAE
//!   paging) and records their snapshots and the monitor's oracles into `target/paging/`
//!   (`tools/make-paging-guest.py`; needs `tools/install-qemu-system.sh` first). Kept out
//!   of `corpus/` for their size (a few hundred MiB each). Then the 4-level guest's memory
//!   is rewritten as a VMware `.vmsn` and a Hyper-V `.vmrs` (`paging_samples`, also
//!   `cargo xtask paging-samples`) for the Volatility tests.
//! * `golden` — regenerates the golden `info --json` dumps under `corpus/golden/`.
//! * `fuzz [TARGET] [--seconds N] [--replay-only]` — replays each target's seeds, then
//!   fuzzes it for N seconds (default 30), each with its dictionary; a failure names the
//!   target and the artifact that reproduces it.
//! * `fuzz-grow [TARGET] [--seconds N]` — fuzzes longer (default 300 s) and adds the
//!   inputs that raise coverage (≤ 64 KiB each, ≤ 10 MiB a target) to the target's seeds.
//! * `fuzz-seed-dirs DIR` — every target's seeds into `DIR/<target>/` (for ClusterFuzzLite).
//! * `fuzz-coverage [TARGET]` — line coverage of each parser crate's `src/` reached by the
//!   seeds (`cargo fuzz coverage`, `llvm-profdata-19`, `llvm-cov-19`), as a table.
//! * `fuzz-cflite` — runs `.clusterfuzzlite/build.sh` outside Docker (scratch SRC, OUT,
//!   WORK, SANITIZER=address) and checks it built every target with seeds and dictionary.
//! * `fuzz-seeds` — rewrites the gzipped LiME and ELF guests into small seeds of the same
//!   format (every header kept, each range cut to a few KiB of its real data).
//! * `bench [ARGS…]` — the criterion benches (`benches/` and each format crate's own).
//! * `bench-peers [--size-mib N] [--runs N] [--formats a,b] [--baseline VMSNAP]` — vmsnap
//!   against qemu-img on a realistic image per format, taking turns run by run; prints MiB/s
//!   and ratios; `--baseline` adds an earlier build of vmsnap to the turns (before/after).
//! * `bench-scale [--no-build] [--only SUBSTRING] [--no-write]` — time and peak RSS of
//!   `info`, `map`, `check` and `convert` to `/dev/null` beside qemu-img's, on every format
//!   at its largest virtual size, empty and with a few writes; writes the table into
//!   `docs/performance.md`.
//! * `bench-nbd [--size-mib N] [--runs N]` — `qemu-img convert` of a 1 GiB qcow2 read over
//!   NBD through `vmsnap serve` (nbdkit and the vmsnap plugin) against through `qemu-nbd`.
//! * `bench-export [--runs N]` — `convert -O elf|lime` of the 4 GiB QEMU bench guest
//!   against `-O raw`, to `/dev/null` and to a file (`docs/performance.md`).
//! * `bench-volatility [--runs N] [--no-vmsnap-build]` — Volatility 3's `banners.Banners`
//!   over a 4 GiB QEMU 9-style stream made from the real guest's memory, through vmsnap
//!   against Volatility's own QEMU layer; prints both times and the ratio.
//! * `dissect` — the Hyper-V corpus against dissect.hypervisor (Fox-IT's parser): makes a
//!   venv under `target/dissect-venv`, installs dissect.hypervisor from PyPI there, and
//!   runs the ignored test that compares every value dissect returns (`$DISSECT_PYTHON`,
//!   when set, is used instead of the venv).
//! * `man [DIR]` — man pages for `vmsnap` and each command (clap_mangen), into
//!   `target/man/` by default.
//! * `new-format NAME [--root DIR]` — scaffolds a format crate and registers it
//!   (docs/adding-a-format.md).
//! * `compare-oslo` — `vmsnap check` beside OpenStack's format inspector on every corpus
//!   disk and crafted sample (`tools/compare-oslo.py`; the Python in `$OSLO_PYTHON`, else a
//!   venv made under `target/oslo-venv` with oslo.utils 10.2 and cryptography).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod bench_volatility;
mod dissect;
mod export_bench;
mod fuzz;
mod fuzz_cflite;
mod fuzz_coverage;
mod fuzz_seeds;
mod man;
mod nbd;
mod new_format;
mod paging_samples;
mod peers;
mod scale;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The workspace root.
pub fn root() -> PathBuf {
    vmsnap_testkit::workspace_root()
}

/// Runs a command in the workspace root; false when it fails.
pub fn sh(cmd: &mut Command) -> bool {
    eprintln!("xtask: {cmd:?}");
    match cmd.current_dir(root()).status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("xtask: cannot run {cmd:?}: {e}");
            false
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <ci | corpus | paging-guests | paging-samples | golden | fuzz [TARGET] [--seconds N] [--replay-only] | fuzz-seeds | fuzz-grow [TARGET] [--seconds N] | fuzz-seed-dirs DIR | fuzz-coverage [TARGET] | fuzz-cflite | bench [ARGS] | bench-peers [--size-mib N] [--runs N] [--formats a,b] [--baseline VMSNAP] | bench-scale [--no-build] [--only S] [--no-write] | bench-nbd [--size-mib N] [--runs N] | bench-export [--runs N] | bench-volatility [--runs N] [--no-vmsnap-build] | dissect | man [DIR] | compare-oslo | new-format NAME>"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    let ok = match cmd.as_str() {
        "ci" => sh(Command::new("bash").arg(".ci/run")),
        "corpus" => corpus() && paging_guests(),
        "paging-guests" => paging_guests(),
        "paging-samples" => paging_samples::run(),
        "golden" => sh(Command::new("cargo")
            .args(["test", "-p", "vmsnap-cli", "--test", "golden"])
            .env("VMSNAP_BLESS", "1")),
        "fuzz" => fuzz::run(rest),
        "fuzz-seeds" => fuzz_seeds::run(),
        "fuzz-grow" => fuzz::grow(rest),
        "fuzz-seed-dirs" => fuzz::seed_dirs(rest),
        "fuzz-coverage" => fuzz_coverage::run(rest),
        "fuzz-cflite" => fuzz_cflite::run(),
        "bench" => sh(Command::new("cargo")
            .arg("bench")
            .args(bench_packages())
            .args(["--bench", "*"])
            .args(rest)),
        "bench-peers" => peers::run(rest),
        "bench-scale" => scale::run(rest),
        "bench-nbd" => nbd::run(rest),
        "bench-export" => export_bench::run(rest),
        "bench-volatility" => bench_volatility::run(rest),
        "dissect" => dissect::run(),
        "man" => man::run(rest),
        "new-format" => new_format::run(rest),
        "compare-oslo" => {
            sh(Command::new("cargo").args(["build", "--release", "-p", "vmsnap-cli"]))
                && oslo_python().is_some_and(|py| {
                    sh(Command::new(py)
                        .arg("tools/compare-oslo.py")
                        .arg("target/release/vmsnap"))
                })
        }
        _ => return usage(),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The oslo.utils the comparison is pinned to (the release the rule table cites).
const OSLO_UTILS: &str = "oslo.utils==10.2.*";

/// The Python that runs `tools/compare-oslo.py`: `$OSLO_PYTHON`, else a venv under
/// `target/oslo-venv` with oslo.utils 10.2 and cryptography, made on first use.
fn oslo_python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("OSLO_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = root().join("target").join("oslo-venv");
    let py = venv.join("bin").join("python");
    let ready = py.exists()
        && Command::new(&py)
            .args([
                "-c",
                "import oslo_utils.imageutils.format_inspector, cryptography",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(py);
    }
    let made = (py.exists() || sh(Command::new("python3").arg("-m").arg("venv").arg(&venv)))
        && sh(Command::new(&py).args(["-m", "pip", "install", "-q", OSLO_UTILS, "cryptography"]));
    made.then_some(py)
}

/// The real guests of the x86 tests: (name, extra arguments of make-paging-guest.py).
const PAGING_GUESTS: [(&str, &[&str]); 3] = [
    ("pc-4level", &[]),
    // The same cloud kernel in 5-level paging (TCG emulates LA57).
    ("pc-5level", &["--cpu", "max,+la57"]),
    // Debian's 32-bit PAE kernel (an i386 package, fetched through a private apt state).
    ("pc-pae", &["--kernel", "686-pae"]),
];

/// Makes every paging guest that is not made yet, then the other formats' samples of the
/// first one's memory (`paging_samples`).
fn paging_guests() -> bool {
    PAGING_GUESTS.iter().all(|(name, extra)| {
        sh(Command::new("python3")
            .arg("tools/make-paging-guest.py")
            .args(["--name", name])
            .args(*extra))
    }) && paging_samples::run()
}

/// Runs every `corpus/*/make.sh` (each is idempotent and regenerates its samples).
fn corpus() -> bool {
    let mut recipes: Vec<PathBuf> = std::fs::read_dir(root().join("corpus"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("make.sh")))
        .filter(|p| p.is_file())
        .collect();
    recipes.sort();
    let mut ok = true;
    for r in recipes {
        ok &= sh(Command::new("bash").arg(&r));
    }
    ok && sh(Command::new("cargo")
        .args(["test", "-p", "vmsnap-cli", "--test", "golden"])
        .env("VMSNAP_BLESS", "1"))
}

/// `-p` arguments for every package with criterion benches: `vmsnap-benches` and each
/// format crate with a `benches/` folder.
fn bench_packages() -> Vec<String> {
    let mut crates: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("benches").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    crates.sort();
    std::iter::once("vmsnap-benches".to_string())
        .chain(crates)
        .flat_map(|c| ["-p".to_string(), c])
        .collect()
}
