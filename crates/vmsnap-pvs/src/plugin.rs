//! The `pvs` plugin: probe and open.

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Layer, OpenCtx, Plugin, PluginKind, Probe, Result, SniffWindow};

use crate::raw::{MAX_CONFIG_BYTES, ROOT};
use crate::vm::{Vm, NAME};

/// How far into the file the root element is looked for (after the XML declaration and
/// comments).
const ROOT_WINDOW: usize = 4096;

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    name: NAME,
    kind: PluginKind::Vm,
    priority: 15,
    stacks_on: &[AddressSpace::File],
    summary: "Parallels virtual machine (.pvm bundle, config.pvs): its .hdd disks and Snapshots.xml snapshots as inner layers",
    options: &[],
    probe,
    open,
};

/// Accepts an XML file whose first bytes open the `<ParallelsVirtualMachine>` root
/// element.
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.size > MAX_CONFIG_BYTES {
        return Probe::No("larger than any config.pvs");
    }
    let head = w.head.get(..ROOT_WINDOW).unwrap_or(w.head);
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'<') {
        return Probe::No("not XML");
    }
    let tag = format!("<{ROOT}");
    // The tag name ends there: `<ParallelsVirtualMachine>` or with attributes.
    let found = head.windows(tag.len() + 1).any(|x| {
        x.starts_with(tag.as_bytes())
            && x.last()
                .is_some_and(|b| matches!(b, b'>' | b'/') || b.is_ascii_whitespace())
    });
    if !found {
        return Probe::No("no <ParallelsVirtualMachine> element");
    }
    Probe::Yes
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Vm::open(lower, ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_the_root_element_only() {
        let yes = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ParallelsVirtualMachine dyn_lists=\"\" schemaVersion=\"1.0\">";
        assert_eq!(probe(&SniffWindow::of_bytes(yes, yes, 100)), Probe::Yes);
        for no in [
            &b"<?xml version='1.0'?><Parallels_disk_image>"[..],
            b"<ParallelsVirtualMachineX>",
            b"<ParallelsSavedStates>",
            b"xx<ParallelsVirtualMachine>",
        ] {
            assert!(
                matches!(probe(&SniffWindow::of_bytes(no, no, 100)), Probe::No(_)),
                "{}",
                String::from_utf8_lossy(no)
            );
        }
    }
}
