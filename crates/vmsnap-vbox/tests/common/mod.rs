//! Shared helpers for the vbox tests: opening a VM, copying the sample VM to a scratch
//! directory, and the byte oracle of a VDI chain.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver, Result};

/// The sample VM's directory.
pub fn sample_dir() -> PathBuf {
    vmsnap_testkit::corpus("vbox")
}

/// The sample VM's settings file.
pub fn sample() -> PathBuf {
    sample_dir().join("vm.vbox")
}

/// The registry a VM's disks are opened with (VDI and VMDK, as the facade has them).
pub fn registry() -> Registry {
    Registry::empty()
        .with(&vmsnap_vdi::PLUGIN)
        .unwrap()
        .with(&vmsnap_vmdk::PLUGIN)
        .unwrap()
}

/// Opens the settings file at `path` under `policy`; the resolver is returned too.
pub fn open(path: &Path, policy: ExternalPolicy) -> (Result<Arc<dyn Layer>>, Resolver) {
    let r = Resolver::new(policy);
    let reg = registry();
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let layer = FileLayer::open(path).and_then(|f| (vmsnap_vbox::PLUGIN.open)(Arc::new(f), &ctx));
    (layer, r)
}

/// A copy of the sample VM in a fresh scratch directory `tag`, its `vm.vbox` passed
/// through `edit`.
pub fn copy_sample(tag: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let dir = vmsnap_testkit::scratch_dir(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("Snapshots")).unwrap();
    for rel in walk(&sample_dir()) {
        std::fs::create_dir_all(dir.join(&rel).parent().unwrap()).unwrap();
        std::fs::copy(sample_dir().join(&rel), dir.join(&rel)).unwrap();
    }
    let text = std::fs::read_to_string(dir.join("vm.vbox")).unwrap();
    std::fs::write(dir.join("vm.vbox"), edit(text)).unwrap();
    dir
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = PathBuf::from(e.file_name());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()).into_iter().map(|p| name.join(p)));
        } else {
            out.push(name);
        }
    }
    out
}

/// `qemu-img` serialised: the testkit's oracle uses one scratch directory per process.
fn qemu_img_raw(path: &Path, extra: &[&str]) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    vmsnap_testkit::qemu_img_raw(path, extra)
}

/// The bytes of the VDI chain `files` (base first) as the VDI layout defines them: each
/// image's allocated blocks hide its parent's. Each image's own bytes and allocation are
/// read by qemu-img, a differencing image after patching its type back to dynamic in a
/// scratch copy and clearing its parent UUIDs (QEMU reads only static and dynamic VDIs
/// without a parent; a differencing image is a dynamic one with a parent).
pub fn vdi_chain_oracle(files: &[PathBuf]) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<u8> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let mut bytes = std::fs::read(f).unwrap();
        let image_type = u32::from_le_bytes(bytes[0x4C..0x50].try_into().unwrap());
        assert_eq!(image_type, if i == 0 { 1 } else { 4 }, "{}", f.display());
        bytes[0x4C..0x50].copy_from_slice(&1u32.to_le_bytes());
        bytes[0x1A8..0x1C8].fill(0);
        let dir = vmsnap_testkit::workspace_root().join("target/test-scratch/vbox-chain-oracle");
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!("{}-{i}.vdi", std::process::id()));
        std::fs::write(&tmp, &bytes).unwrap();
        let raw = qemu_img_raw(&tmp, &["-f", "vdi"]);
        if i == 0 {
            out = raw;
        } else {
            assert_eq!(raw.len(), out.len(), "chain members differ in size");
            for (start, len) in allocated(&tmp) {
                let (s, e) = (start as usize, (start + len) as usize);
                out[s..e].copy_from_slice(&raw[s..e]);
            }
        }
        std::fs::remove_file(&tmp).unwrap();
    }
    out
}

/// The ranges `qemu-img map` reports as data in a VDI.
fn allocated(path: &Path) -> Vec<(u64, u64)> {
    let out = vmsnap_testkit::run(
        Command::new("qemu-img")
            .args(["map", "--output=json", "-f", "vdi"])
            .arg(path),
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"] == true)
        .map(|e| (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
        .collect()
}

/// The raw bytes of a file qemu-img reads (`-f FORMAT`).
pub fn raw(path: &Path, format: &str) -> Vec<u8> {
    qemu_img_raw(path, &["-f", format])
}
