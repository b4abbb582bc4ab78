//! Opening the OVF/OVA samples with the disk plugins their files need.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap_core::{
    ExternalPolicy, FileLayer, MemSource, OpenCtx, Options, Registry, Resolver, Result,
};
use vmsnap_ovf::Ovf;

/// `corpus/ovf/<name>`.
pub fn sample(name: &str) -> PathBuf {
    vmsnap_testkit::corpus(&format!("ovf/{name}"))
}

/// The plugins the samples' disks are read with.
pub fn registry() -> Registry {
    Registry::empty()
        .with(&vmsnap_vmdk::PLUGIN)
        .unwrap()
        .with(&vmsnap_qcow2::PLUGIN)
        .unwrap()
}

/// Opens the `.ovf` at `path` under `resolver`.
pub fn open_ovf(path: &Path, resolver: &Resolver) -> Result<Ovf> {
    let reg = registry();
    let o = Options::new();
    let ctx = OpenCtx::new(resolver, &reg, &o);
    Ovf::open(Arc::new(FileLayer::open(path).unwrap()), &ctx)
}

/// Opens `corpus/ovf/<name>` (a `.ovf`) with files in its directory allowed.
pub fn ovf(name: &str) -> Ovf {
    open_ovf(
        &sample(name),
        &Resolver::new(ExternalPolicy::VmDir).with_vm_dir(sample("")),
    )
    .unwrap()
}

/// Opens the bytes of an OVA (nothing outside it may be opened).
pub fn ova_bytes(bytes: Vec<u8>) -> Result<Ovf> {
    let reg = registry();
    let o = Options::new();
    let r = Resolver::new(ExternalPolicy::Deny);
    let ctx = OpenCtx::new(&r, &reg, &o);
    Ovf::open_ova(
        Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))),
        &ctx,
    )
}

/// Opens `corpus/ovf/<name>` (an `.ova`).
pub fn ova(name: &str) -> Ovf {
    ova_bytes(std::fs::read(sample(name)).unwrap()).unwrap()
}

/// `corpus/ovf/<name>` (an `.ova`) unpacked by GNU tar into a fresh scratch directory `tag`:
/// the members as the reference readers see them.
pub fn extracted(name: &str, tag: &str) -> PathBuf {
    let dir = vmsnap_testkit::scratch_dir(tag);
    vmsnap_testkit::run(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(sample(name))
            .arg("-C")
            .arg(&dir),
    );
    dir
}
