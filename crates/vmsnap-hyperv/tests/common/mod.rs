//! Shared test helpers: the independent writer (the crate's `builder` feature) and the
//! test data generators.
#![allow(dead_code)]

pub mod encode;
pub mod samples;

pub use vmsnap_hyperv::builder;

use std::sync::Arc;

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver,
};

/// Opens `bytes` through `plugin` (and `more` stacked on top, in order).
pub fn open_with(
    bytes: Vec<u8>,
    plugins: &[&'static vmsnap_core::Plugin],
) -> vmsnap_core::Result<Arc<dyn Layer>> {
    let mut reg = Registry::empty();
    for p in plugins {
        reg = reg.with(p)?;
    }
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let mut layer: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    for p in plugins {
        layer = (p.open)(layer, &ctx)?;
    }
    Ok(layer)
}
