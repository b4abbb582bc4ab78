//! The `vbox` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Vbox, NAME};
use crate::raw::{MAX_CONFIG_BYTES, NAMESPACE};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Vm,
    priority: 20,
    stacks_on: &[AddressSpace::File],
    summary: "VirtualBox machine settings (.vbox): disks with their differencing chains, \
              snapshots, saved states listed",
    options: &[],
    probe,
    open,
};

/// Accepts a file whose head (after an optional BOM, the XML declaration and comments)
/// holds the `VirtualBox` root in VirtualBox's namespace and a `Machine` element; `open`
/// checks the rest.
fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.size > MAX_CONFIG_BYTES {
        return Probe::No("larger than a VirtualBox settings file is read");
    }
    let head = w.head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(w.head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace());
    if start.and_then(|i| head.get(i)) != Some(&b'<') {
        return Probe::No("not XML");
    }
    let has = |needle: &[u8]| head.windows(needle.len()).any(|x| x == needle);
    if !has(b"<VirtualBox") || !has(NAMESPACE.as_bytes()) {
        return Probe::No("no VirtualBox root element in the VirtualBox namespace");
    }
    if !has(b"<Machine") {
        return Probe::No("VirtualBox XML without a Machine (the global VirtualBox.xml?)");
    }
    Probe::Yes
}

/// Opens the layer: parses the settings and opens every attached disk through the
/// resolver.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Vbox::open(lower, ctx)?))
}
