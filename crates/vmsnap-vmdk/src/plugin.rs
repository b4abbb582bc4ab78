//! The `vmdk` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::Vmdk;
use crate::raw::{COWD_MAGIC, KDMV_MAGIC, MAX_DESCRIPTOR_BYTES, SESPARSE_MAGIC};

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: "vmdk",
    kind: PluginKind::Disk,
    priority: 20,
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "VMware VMDK: monolithicSparse, streamOptimized, flat/split descriptors, COWD, seSparse, parent chains",
    options: &[],
    probe,
    open,
};

/// Whether the first non-comment, non-blank line is `version=1|2|3` (QEMU's text probe).
pub fn is_descriptor_text(head: &[u8]) -> bool {
    // Every other format's header is binary: decide on the first significant byte before
    // splitting 64 KiB into lines (that split was a third of a whole `check`).
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'#' | b'v')) {
        return false;
    }
    for line in head.split(|&b| b == b'\n') {
        let l = line.strip_suffix(b"\r").unwrap_or(line);
        let t = l.trim_ascii();
        if t.is_empty() || t.first() == Some(&b'#') {
            continue;
        }
        return matches!(t, b"version=1" | b"version=2" | b"version=3");
    }
    false
}

fn probe(w: &SniffWindow<'_>) -> Probe {
    let m = w.head.get(..4);
    if m == Some(KDMV_MAGIC.as_slice()) || m == Some(COWD_MAGIC.as_slice()) {
        return Probe::Yes;
    }
    // A seSparse extent on its own (QEMU opens it only through a descriptor, and would
    // probe it as raw).
    if w.head.get(..8) == Some(SESPARSE_MAGIC.to_le_bytes().as_slice()) {
        return Probe::Yes;
    }
    if w.size <= MAX_DESCRIPTOR_BYTES && is_descriptor_text(w.head) {
        return Probe::Yes;
    }
    Probe::No("no KDMV/COWD/seSparse magic and no `version=N` descriptor line")
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Vmdk::open(lower, ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(head: &[u8], size: u64) -> Probe {
        probe(&SniffWindow::of_bytes(head, head, size))
    }

    #[test]
    fn probes() {
        assert!(p(b"KDMV\x01\0\0\0", 512).is_yes());
        assert!(p(b"COWD\x01\0\0\0", 512).is_yes());
        assert!(p(b"\xbe\xba\xfe\xca\0\0\0\0", 512).is_yes());
        assert!(p(b"# Disk DescriptorFile\r\n\r\nversion=1\r\nCID=1\r\n", 40).is_yes());
        assert!(p(b"  version=3\n", 12).is_yes());
        assert!(!p(b"version=4\n", 10).is_yes());
        assert!(!p(b"# only a comment\n", 17).is_yes());
        assert!(!p(b"QFI\xfb", 4).is_yes());
        assert!(!p(b"version=1\n", MAX_DESCRIPTOR_BYTES + 1).is_yes());
        assert!(!p(b"", 0).is_yes());
    }
}
