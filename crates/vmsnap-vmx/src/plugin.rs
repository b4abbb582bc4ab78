//! The `vmx` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::raw::MAX_CONFIG_BYTES;
use crate::vm::{Vm, NAME};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Vm,
    priority: 15,
    stacks_on: &[AddressSpace::File],
    summary: "VMware virtual machine (.vmx, with its .vmsd snapshots): disks, memory and snapshots as inner layers",
    options: &[],
    probe,
    open,
};

/// Keys only a VM configuration has near its top (a `.vmsd` or a VMDK descriptor has
/// none of them); an encrypted VMX keeps only its key safe in the clear.
const VMX_KEYS: [&str; 4] = [
    "config.version",
    "virtualhw.version",
    "encryption.keysafe",
    "vmx.encryptedvm",
];

/// Text (no NUL in the head) of at most [`MAX_CONFIG_BYTES`] with a `key = value` line
/// whose key only a VMX has.
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.size > MAX_CONFIG_BYTES {
        return Probe::No("larger than a VMX configuration can be");
    }
    if w.head.contains(&0) {
        return Probe::No("binary, not a VMX dictionary");
    }
    let has_key = w.head.split(|&b| b == b'\n').any(|line| {
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            return false;
        };
        let key = line.get(..eq).unwrap_or_default();
        let key = String::from_utf8_lossy(key);
        let key = key.trim().trim_start_matches('\u{feff}');
        VMX_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
    });
    if !has_key {
        return Probe::No("no config.version, virtualHW.version or encryption.keySafe key");
    }
    Probe::Yes
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Vm::open(lower, ctx)?))
}
