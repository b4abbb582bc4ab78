//! Helpers for tests, fuzz targets and benchmarks. Not for production use: these
//! functions panic on failure, which is what a test wants.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use vmsnap_core::{Layer, LayerExt};

pub mod elf;
pub mod fuzz_seeds;
pub mod guest;
pub mod huge_memory;
pub mod image;
pub mod loopdev;
pub mod rusage;
pub mod sesparse;

/// The workspace root (where `Cargo.toml` with `[workspace]` is).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or(here)
}

/// `corpus/` in the workspace.
pub fn corpus_dir() -> PathBuf {
    workspace_root().join("corpus")
}

/// A file under `corpus/`.
pub fn corpus(rel: &str) -> PathBuf {
    corpus_dir().join(rel)
}

/// A fresh scratch directory `target/test-scratch/<tag>-<pid>`, kept after the test for a
/// look at what it left. The same tag's directories of test processes that have ended are
/// removed first, so repeated runs do not pile up gigabytes.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let base = workspace_root().join("target").join("test-scratch");
    remove_stale(&base, tag);
    let d = base.join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Removes `base/<tag>-<pid>` for every pid that is no running process (Linux's `/proc`;
/// elsewhere nothing is removed).
fn remove_stale(base: &Path, tag: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let prefix = format!("{tag}-");
    for e in entries.flatten() {
        let name = e.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The inner layer `name` of `layer` (`disk:scsi0:0`, `snapshot:s1/memory`); panics naming
/// the children there are when it has none of that name.
pub fn child(layer: &dyn Layer, name: &str) -> Arc<dyn Layer> {
    let kids = layer.children();
    let names: Vec<String> = kids.iter().map(|c| c.name.clone()).collect();
    kids.into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no child {name:?} among {names:?}"))
        .layer
}

/// A resolver that allows every reference, opens none (each open fails) and records the
/// path of each it was asked to open: for tests that a file is never even tried.
pub fn recording_resolver() -> (
    vmsnap_core::Resolver,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let r = vmsnap_core::Resolver::with_opener(vmsnap_core::ExternalPolicy::Any, move |p| {
        log.lock().unwrap().push(p.display().to_string());
        Err::<Arc<dyn vmsnap_core::Source>, _>(vmsnap_core::Error::new(
            vmsnap_core::ErrorKind::Io,
            "not in this test",
        ))
    });
    (r, seen)
}

/// A libvirt save image (`virsh save`) wrapping a QEMU migration `stream`: the
/// `LibvirtQemudSave` header (version 2, `format` = the compression, 0 for none), the domain
/// `xml` with its NUL and 64 KiB of padding, then the stream.
pub fn libvirt_save(stream: &[u8], format: u32, xml: &str) -> Vec<u8> {
    let pad = 64 * 1024;
    let data_len = xml.len() + 1 + pad;
    let mut v = Vec::new();
    v.extend_from_slice(b"LibvirtQemudSave");
    for x in [2u32, data_len as u32, 0, format, 0] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(&[0u8; 56]);
    assert_eq!(v.len(), 92);
    v.extend_from_slice(xml.as_bytes());
    v.push(0);
    v.extend(std::iter::repeat_n(0u8, pad));
    v.extend_from_slice(stream);
    v
}

/// Whether `qemu-img` can be run.
pub fn have_qemu_img() -> bool {
    Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a command and panics with its stderr when it fails; returns its standard output.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    run_ok(cmd).stdout
}

/// Runs a command, prints its stderr (shown with the test's output when the test fails)
/// and panics with it when the command fails; returns everything it produced.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    out
}

/// What `qemu-img convert -O raw [extra] FILE` produces: the oracle for disk formats.
/// `extra` may hold e.g. `["-l", "snapshot.name=one"]` or `["-f", "vmdk"]`.
pub fn qemu_img_raw(file: &Path, extra: &[&str]) -> Vec<u8> {
    // One directory per call: tests run in parallel threads of one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch_dir(&format!("oracle-{n}"));
    let out = dir.join("out.raw");
    run(Command::new("qemu-img")
        .arg("convert")
        .args(extra)
        .arg("-O")
        .arg("raw")
        .arg(file)
        .arg(&out));
    let v = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    v
}

/// `qemu-img info --output=json FILE`.
pub fn qemu_img_info(file: &Path) -> serde_json::Value {
    let out = run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(file));
    serde_json::from_slice(&out).unwrap()
}

/// Every byte of `layer` (panics past 1 GiB: tests use small samples).
pub fn read_all(layer: &dyn Layer) -> Vec<u8> {
    assert!(layer.len() <= 1 << 30, "layer too large for read_all");
    layer
        .read_vec(0, layer.len(), 1 << 30, "whole layer")
        .unwrap()
}

/// Asserts two byte strings are equal, reporting the first difference instead of
/// dumping megabytes.
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got.len() != want.len() {
        panic!("{what}: length {} != expected {}", got.len(), want.len());
    }
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: first difference at byte {i:#x}: got {:#04x}, expected {:#04x}",
            got[i], want[i]
        );
    }
}

/// Drives a layer the way a fuzz target should: reads it whole in chunks (up to
/// `budget` bytes), asks for extents, describe, meta, findings, external refs, CPU state,
/// and does the same for its children (one level). Ignores errors; must never panic.
pub fn exercise(layer: &Arc<dyn Layer>, budget: u64) {
    exercise_one(layer.as_ref(), budget);
    for child in layer.children().into_iter().take(8) {
        exercise_one(child.layer.as_ref(), budget / 4);
    }
}

fn exercise_one(layer: &dyn Layer, budget: u64) {
    let len = layer.len();
    let _ = layer.extents(0..len.min(budget.saturating_mul(16)));
    let _ = layer.describe().to_string();
    let _ = layer.meta().to_string();
    let _ = layer.findings();
    let _ = layer.external_refs();
    let _ = layer.cpu_state();
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    while off < len.min(budget) {
        let n = (len - off).min(buf.len() as u64) as usize;
        if layer.read_at(off, &mut buf[..n]).is_err() {
            // Keep going: later ranges may still be readable.
        }
        off += n as u64;
    }
    // A read straddling the end must fail, not panic.
    let _ = layer.read_at(len.saturating_sub(1), &mut [0u8; 2]);
    let _ = layer.read_at(u64::MAX - 1, &mut [0u8; 4]);
}
