//! Helpers shared by the integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, MissingPolicy, OpenCtx, Options, Registry,
    Resolver, Result,
};
use vmsnap_vmware::PLUGIN;

/// Opens `lower` through the plugin under `policy`.
pub fn open_layer(lower: Arc<dyn Layer>, policy: ExternalPolicy) -> Result<Arc<dyn Layer>> {
    open_layer_missing(lower, policy, MissingPolicy::Error)
}

/// Opens `lower` through the plugin under `policy`, reading references that were not
/// opened as `missing` says.
pub fn open_layer_missing(
    lower: Arc<dyn Layer>,
    policy: ExternalPolicy,
    missing: MissingPolicy,
) -> Result<Arc<dyn Layer>> {
    let r = Resolver::new(policy).with_missing(missing);
    let reg = Registry::empty().with(&PLUGIN)?;
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    (PLUGIN.open)(lower, &ctx)
}

/// Opens bytes in memory (no path) through the plugin.
pub fn open_bytes(b: Vec<u8>) -> Result<Arc<dyn Layer>> {
    open_layer(
        Arc::new(FileLayer::new(Arc::new(MemSource::new(b)))),
        ExternalPolicy::Deny,
    )
}

/// Opens a file through the plugin.
pub fn open_path(p: &Path, policy: ExternalPolicy) -> Result<Arc<dyn Layer>> {
    open_layer(Arc::new(FileLayer::open(p)?), policy)
}
