//! The `vma` plugin: probe and open. Compressed archives (`.vma.zst`, `.vma.lzo`,
//! `.vma.gz`, what vzdump writes by default) are recognised by name and magic and refused
//! with one error naming the compressor.

use std::sync::Arc;

use vmsnap_core::{
    AddressSpace, Error, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow,
};

use crate::layer::{Vma, NAME};
use crate::raw::MAGIC;

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Vm,
    priority: 15,
    stacks_on: &[AddressSpace::File],
    summary: "Proxmox VMA backup archive: configuration files, each device a layer disk:<name>",
    options: &[],
    probe,
    open,
};

/// The compressors vzdump uses: file name suffix, magic, the command that decompresses.
const COMPRESSORS: [(&str, &[u8], &str, &str); 3] = [
    (".vma.zst", b"\x28\xb5\x2f\xfd", "zstd", "zstd -d"),
    (".vma.lzo", b"\x89LZO\x00\r\n\x1a\n", "lzo", "lzop -d"),
    (".vma.gz", b"\x1f\x8b", "gzip", "gzip -d"),
];

/// The compressor of a compressed VMA archive, by its file name and magic.
fn compressor(w: &SniffWindow<'_>) -> Option<(&'static str, &'static str)> {
    let name = w.path?.file_name()?.to_str()?;
    COMPRESSORS
        .iter()
        .find(|(suffix, magic, _, _)| name.ends_with(suffix) && w.head.starts_with(magic))
        .map(|&(_, _, what, cmd)| (what, cmd))
}

/// Accepts files that start with the VMA magic (`open` checks the rest), and compressed
/// archives (to refuse them with a clear error).
fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.head.starts_with(MAGIC) || compressor(w).is_some() {
        Probe::Yes
    } else {
        Probe::No("no VMA magic")
    }
}

/// Opens the archive, or says how to decompress it.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    let mut head = [0u8; 16];
    let n = head
        .len()
        .min(usize::try_from(lower.len()).unwrap_or(usize::MAX));
    lower.read_at(0, head.get_mut(..n).unwrap_or_default())?;
    if !head.starts_with(MAGIC) {
        let window = SniffWindow {
            path: lower.path(),
            ..SniffWindow::of_bytes(&head, &[], lower.len())
        };
        if let Some((what, cmd)) = compressor(&window) {
            let file = window
                .path
                .and_then(|p| p.file_name())
                .map_or_else(|| "FILE".into(), |n| n.to_string_lossy());
            return Err(Error::unsupported(format!(
                "a {what}-compressed Proxmox VMA archive: decompress first (`{cmd} {file}` \
                 writes the .vma, which vmsnap reads)"
            ))
            .in_layer(NAME));
        }
    }
    Ok(Arc::new(Vma::open(lower, ctx)?))
}
