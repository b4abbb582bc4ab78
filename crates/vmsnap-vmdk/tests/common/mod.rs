//! Shared helpers for the VMDK integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use vmsnap_core::{
    ExternalPolicy, FileLayer, FileSource, Layer, OpenCtx, Options, Registry, Resolver, Result,
    Source,
};

/// Opens `path` through the plugin under `policy`.
pub fn open_with(path: &Path, resolver: &Resolver) -> Result<Arc<dyn Layer>> {
    let reg = Registry::empty().with(&vmsnap_vmdk::PLUGIN)?;
    let o = Options::new();
    let ctx = OpenCtx::new(resolver, &reg, &o);
    let lower = Arc::new(FileLayer::open(path)?);
    (vmsnap_vmdk::PLUGIN.open)(lower, &ctx)
}

/// Opens `path` with the same-dir policy.
pub fn open(path: &Path) -> Arc<dyn Layer> {
    open_with(path, &Resolver::new(ExternalPolicy::SameDir)).unwrap()
}

/// A resolver that records every path it is asked to open.
pub fn counting(policy: ExternalPolicy) -> (Resolver, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let n = Arc::new(AtomicUsize::new(0));
    let paths = Arc::new(Mutex::new(Vec::new()));
    let (n2, p2) = (n.clone(), paths.clone());
    let r = Resolver::with_opener(policy, move |p| {
        n2.fetch_add(1, Ordering::SeqCst);
        p2.lock().unwrap().push(p.display().to_string());
        Ok(Arc::new(FileSource::open(p)?) as Arc<dyn Source>)
    });
    (r, n, paths)
}

/// The rules of a layer's findings.
pub fn rules(l: &dyn Layer) -> Vec<String> {
    l.findings()
        .iter()
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect()
}

/// Whether some finding has `rule` and a message containing `needle`.
pub fn has(l: &dyn Layer, rule: &str, needle: &str) -> bool {
    l.findings()
        .iter()
        .any(|f| f.rule == rule && f.message.contains(needle))
}

/// `qemu-img convert -f vmdk -O raw` into a directory of its own: testkit's
/// `qemu_img_raw` shares one scratch directory per process, so parallel tests in one
/// binary delete each other's output.
pub fn oracle(file: &Path) -> Vec<u8> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir =
        vmsnap_testkit::scratch_dir(&format!("vmdk-oracle-{}", N.fetch_add(1, Ordering::SeqCst)));
    let out = dir.join("out.raw");
    vmsnap_testkit::run(
        std::process::Command::new("qemu-img")
            .args(["convert", "-f", "vmdk", "-O", "raw"])
            .arg(file)
            .arg(&out),
    );
    let v = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    v
}
