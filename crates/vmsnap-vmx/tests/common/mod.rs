//! Opening the VM samples with the plugins a VM needs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver, Result,
};
use vmsnap_vmx::Vm;

/// `corpus/vmx/<name>`.
pub fn sample(name: &str) -> PathBuf {
    vmsnap_testkit::corpus(&format!("vmx/{name}"))
}

/// The plugins a VM's files are read with.
pub fn registry() -> Registry {
    Registry::empty()
        .with(&vmsnap_vmdk::PLUGIN)
        .unwrap()
        .with(&vmsnap_vmware::PLUGIN)
        .unwrap()
        .with(&vmsnap_vmx::PLUGIN)
        .unwrap()
}

/// Opens the `.vmx` at `path` under `resolver`.
pub fn open_with(path: &Path, resolver: &Resolver) -> Result<Vm> {
    let reg = registry();
    let o = Options::new();
    let ctx = OpenCtx::new(resolver, &reg, &o);
    Vm::open(Arc::new(FileLayer::open(path).unwrap()), &ctx)
}

/// Opens `corpus/vmx/<name>` with files in its directory allowed.
pub fn open(name: &str) -> Vm {
    open_with(&sample(name), &Resolver::new(ExternalPolicy::SameDir)).unwrap()
}

/// Opens `text` as if it were the `.vmx` at `path` (references resolve beside `path`).
pub fn open_text(text: &[u8], path: &Path, resolver: &Resolver) -> Result<Vm> {
    let reg = registry();
    let o = Options::new();
    let ctx = OpenCtx::new(resolver, &reg, &o);
    Vm::open(
        Arc::new(Named(
            FileLayer::new(Arc::new(MemSource::new(text.to_vec()))),
            path.to_path_buf(),
        )),
        &ctx,
    )
}

/// A layer with a path (the `.vmx` text is in memory, its references on disk).
#[derive(Debug)]
struct Named(FileLayer, PathBuf);

impl Layer for Named {
    fn name(&self) -> &str {
        "file"
    }
    fn space(&self) -> vmsnap_core::AddressSpace {
        self.0.space()
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.0.read_at(offset, buf)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        Vec::new()
    }
    fn describe(&self) -> serde_json::Value {
        self.0.describe()
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.1)
    }
}
