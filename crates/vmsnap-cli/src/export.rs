//! `convert -O elf|lime`: which layer is the memory to export, and the exported file as a
//! layer that `convert` writes like any other (sparse, in parallel, to any output).

use std::sync::Arc;

use vmsnap::core::{AddressSpace, Error, ErrorKind, Layer, Result};
use vmsnap::stack::{Selection, Stack};

use crate::cli::{LayerArg, OutputFormat};
use crate::open::select;

/// The layer `convert` writes in `format`: for `raw` the layer `--layer` names (or the
/// default); for `elf` and `lime` the guest-physical layer `--layer` names, or the only
/// one in the stack, laid out in that format.
pub fn layer_to_write(
    stack: &Stack,
    arg: &LayerArg,
    format: OutputFormat,
) -> Result<Arc<dyn Layer>> {
    if format == OutputFormat::Raw {
        return Ok(select(stack, arg)?.layer);
    }
    let memory = memory_layer(stack, arg)?;
    Ok(match format {
        OutputFormat::Elf => Arc::new(vmsnap::elf::export::export(memory.layer)?),
        OutputFormat::Lime => Arc::new(vmsnap::lime::export::export(memory.layer)?),
        OutputFormat::Raw => memory.layer,
    })
}

/// The guest-physical layer to export: the one `--layer` names (refused when it is not
/// memory), else the only one of the stack.
fn memory_layer(stack: &Stack, arg: &LayerArg) -> Result<Selection> {
    if arg.layer.is_some() {
        let sel = select(stack, arg)?;
        let space = sel.layer.space();
        if space != AddressSpace::GuestPhysical {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "layer {} is {} space, not guest-physical memory: only memory is \
                     written as ELF or LiME (use -O raw)",
                    sel.name,
                    space.as_str()
                ),
            ));
        }
        return Ok(sel);
    }
    let memory: Vec<usize> = stack
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.layer.space() == AddressSpace::GuestPhysical)
        .map(|(i, _)| i)
        .collect();
    match memory.as_slice() {
        [i] => stack.select(&i.to_string()),
        [] => Err(Error::new(
            ErrorKind::InvalidArgument,
            "no guest-physical memory in this stack: only memory is written as ELF or LiME \
             (use -O raw)",
        )),
        several => {
            let names: Vec<String> = several
                .iter()
                .filter_map(|&i| stack.entries.get(i))
                .map(|e| e.name.clone())
                .collect();
            Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{} guest-physical layers in this stack; choose one with --layer: {}",
                    names.len(),
                    names.join(", ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use vmsnap::core::{FileLayer, MemSource, SliceLayer};
    use vmsnap::stack::StackEntry;

    use super::*;

    fn entry(name: &str, space: AddressSpace) -> StackEntry {
        let file: Arc<dyn Layer> =
            Arc::new(FileLayer::new(Arc::new(MemSource::new(vec![1u8; 64]))));
        StackEntry::new(
            name,
            Arc::new(SliceLayer::new(name, space, file, 0, 64).unwrap()),
        )
    }

    #[test]
    fn several_memory_layers_are_listed_and_one_is_taken() {
        let arg = LayerArg { layer: None };
        let mut stack = Stack::default();
        stack.entries.push(entry("file", AddressSpace::File));
        stack.entries.push(entry("qcow2", AddressSpace::GuestDisk));
        stack
            .entries
            .push(entry("qcow2/vmstate:1/qemu", AddressSpace::GuestPhysical));
        assert_eq!(
            memory_layer(&stack, &arg).unwrap().name,
            "qcow2/vmstate:1/qemu"
        );
        stack
            .entries
            .push(entry("qcow2/vmstate:2/qemu", AddressSpace::GuestPhysical));
        let e = memory_layer(&stack, &arg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.message()
                .ends_with("choose one with --layer: qcow2/vmstate:1/qemu, qcow2/vmstate:2/qemu"),
            "{e}"
        );
        let named = LayerArg {
            layer: Some("qcow2/vmstate:2/qemu".into()),
        };
        assert_eq!(
            memory_layer(&stack, &named).unwrap().name,
            "qcow2/vmstate:2/qemu"
        );
        let disk = LayerArg {
            layer: Some("qcow2".into()),
        };
        assert_eq!(
            memory_layer(&stack, &disk).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}
