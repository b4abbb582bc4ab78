//! Opening the VM samples.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap_core::{ExternalPolicy, FileLayer, OpenCtx, Options, Registry, Resolver, Result};
use vmsnap_pvs::Vm;

/// `corpus/pvs/<name>`.
pub fn sample(name: &str) -> PathBuf {
    vmsnap_testkit::corpus(&format!("pvs/{name}"))
}

/// Opens the `config.pvs` at `path` under `resolver`.
pub fn open_with(path: &Path, resolver: &Resolver) -> Result<Vm> {
    let reg = Registry::empty();
    let o = Options::new();
    let ctx = OpenCtx::new(resolver, &reg, &o);
    Vm::open(Arc::new(FileLayer::open(path).unwrap()), &ctx)
}

/// Opens `corpus/pvs/<vm>.pvm/config.pvs` under the `vm-dir` policy (the CLI's default).
pub fn open(vm: &str) -> Vm {
    let dir = sample(&format!("{vm}.pvm"));
    let r = Resolver::new(ExternalPolicy::VmDir).with_vm_dir(&dir);
    open_with(&dir.join("config.pvs"), &r).unwrap()
}
