//! Choosing a layer of a stack by index or name (`--layer`).

use std::sync::Arc;

use vmsnap_core::{AddressSpace, Error, ErrorKind, Layer, Result};

use crate::Stack;

/// A layer chosen from a stack, with the name it is known by.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The name (entry name, or `<entry>/<child>`).
    pub name: String,
    /// The layer.
    pub layer: Arc<dyn Layer>,
}

impl Stack {
    /// The default layer for `convert`, `cat` and `map`: the top of the main chain, or the
    /// layer below it when the top is guest-virtual (a sparse 256 TiB space is rarely what
    /// one wants to convert).
    pub fn default_selection(&self) -> Selection {
        let mut idx = self.main_top();
        while let Some(e) = self.entries.get(idx) {
            match (e.layer.space(), e.parent) {
                (AddressSpace::GuestVirtual | AddressSpace::Metadata, Some(p)) => idx = p,
                _ => break,
            }
        }
        self.selection_of(idx)
    }

    fn selection_of(&self, idx: usize) -> Selection {
        match self.entries.get(idx) {
            Some(e) => Selection {
                name: e.name.clone(),
                layer: e.layer.clone(),
            },
            None => Selection {
                name: String::new(),
                layer: Arc::new(vmsnap_core::FileLayer::new(Arc::new(
                    vmsnap_core::MemSource::new(Vec::new()),
                ))),
            },
        }
    }

    /// The layer named `spec`: an entry index (`0` is the file), an entry name (`qcow2`,
    /// `qcow2/vmstate:1/qemu`), a child name of any entry (`snapshot:1`, `ram:pc.ram`,
    /// `snapshot:base/disk:scsi0:0`) or `<entry>/<child>`.
    pub fn select(&self, spec: &str) -> Result<Selection> {
        if let Ok(i) = spec.parse::<usize>() {
            if i < self.entries.len() {
                return Ok(self.selection_of(i));
            }
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no layer {i}: the stack has {} layers", self.entries.len()),
            ));
        }
        if let Some(i) = self.entries.iter().position(|e| e.name == spec) {
            return Ok(self.selection_of(i));
        }
        // A child's own name may hold `/` (`snapshot:base/disk:scsi0:0`): match whole names.
        for e in &self.entries {
            let qualified = spec
                .strip_prefix(e.name.as_str())
                .and_then(|rest| rest.strip_prefix('/'));
            if let Some(c) = e
                .layer
                .children()
                .into_iter()
                .find(|c| c.name == spec || qualified == Some(c.name.as_str()))
            {
                return Ok(Selection {
                    name: format!("{}/{}", e.name, c.name),
                    layer: c.layer,
                });
            }
        }
        Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no layer named {spec:?}; layers are: {}",
                self.layer_names().join(", ")
            ),
        ))
    }

    /// Every selectable name: entries, then children of entries.
    pub fn layer_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.entries.iter().map(|e| e.name.clone()).collect();
        for e in &self.entries {
            for c in e.layer.children() {
                let n = format!("{}/{}", e.name, c.name);
                if !v.contains(&n) {
                    v.push(n);
                }
            }
        }
        v
    }
}
