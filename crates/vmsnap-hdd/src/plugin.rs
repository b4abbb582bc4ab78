//! The `hdd` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::layer::{Hdd, NAME};
use crate::raw::{MAX_XML_LEN, ROOT};

/// How far into the file the root element is looked for (after the XML declaration and
/// comments).
const ROOT_WINDOW: usize = 4096;

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Vm,
    priority: 20,
    stacks_on: &[AddressSpace::File],
    summary: "Parallels .hdd bundle (DiskDescriptor.xml): split and snapshot storages of plain and expanding images",
    options: &[],
    probe,
    open,
};

/// Accepts an XML file whose first bytes open the `<Parallels_disk_image>` root element.
fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.size > MAX_XML_LEN {
        return Probe::No("larger than any DiskDescriptor.xml");
    }
    let head = w.head.get(..ROOT_WINDOW).unwrap_or(w.head);
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'<') {
        return Probe::No("not XML");
    }
    let tag = format!("<{ROOT}");
    if !head.windows(tag.len()).any(|x| x == tag.as_bytes()) {
        return Probe::No("no <Parallels_disk_image> element");
    }
    Probe::Yes
}

/// Opens the bundle the descriptor describes.
fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Hdd::open(lower, ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_the_root_element_only() {
        let yes = b"<?xml version='1.0' encoding='UTF-8'?>\n<Parallels_disk_image Version=\"1.0\">";
        assert_eq!(probe(&SniffWindow::of_bytes(yes, yes, 100)), Probe::Yes);
        let no = b"<?xml version='1.0'?><VirtualBox>";
        assert!(matches!(
            probe(&SniffWindow::of_bytes(no, no, 100)),
            Probe::No(_)
        ));
        let bin = b"WithouFreSpacExt<Parallels_disk_image";
        assert!(matches!(
            probe(&SniffWindow::of_bytes(bin, bin, 100)),
            Probe::No(_)
        ));
    }
}
