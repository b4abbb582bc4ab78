//! Layers that stand for memory bytes which are not plain file bytes: a compressed
//! `Memory` block inflated on first use, and memory that cannot be read at all (a
//! compressed block of unknown algorithm), whose reads fail with the reason.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use vmsnap_core::{check_read, AddressSpace, Error, ErrorKind, Layer, LayerExt, Result};

use crate::compress;
use crate::tag::Block;

/// A zlib-compressed `Memory` block, inflated once on first read and kept.
#[derive(Debug)]
pub struct InflatedBlock {
    file: Arc<dyn Layer>,
    block: Block,
    data: OnceLock<std::result::Result<Vec<u8>, (ErrorKind, String)>>,
}

impl InflatedBlock {
    /// The block of `file`; its `nbytesinmem` must already be checked against the limits.
    pub fn new(file: Arc<dyn Layer>, block: Block) -> Self {
        InflatedBlock {
            file,
            block,
            data: OnceLock::new(),
        }
    }

    fn data(&self) -> Result<&[u8]> {
        let r = self.data.get_or_init(|| {
            let b = &self.block;
            self.file
                .read_vec(
                    b.data_offset,
                    b.nbytes,
                    crate::raw::MAX_DECODED_MEMORY,
                    "compressed Memory block",
                )
                .and_then(|raw| {
                    compress::decode(&raw, b.nbytes_in_mem, crate::raw::MAX_DECODED_MEMORY)
                })
                .map_err(|e| (e.kind(), e.to_string()))
        });
        match r {
            Ok(v) => Ok(v),
            Err((k, m)) => Err(Error::new(*k, m.clone()).at(self.block.data_offset)),
        }
    }
}

impl Layer for InflatedBlock {
    fn name(&self) -> &str {
        "vmware-inflated"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::Stream
    }
    fn len(&self) -> u64 {
        self.block.nbytes_in_mem
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let d = self.data()?;
        let from = usize::try_from(offset)
            .map_err(|_| Error::out_of_bounds(offset, buf.len() as u64, self.len()))?;
        let src = from
            .checked_add(buf.len())
            .and_then(|end| d.get(from..end))
            .ok_or_else(|| Error::out_of_bounds(offset, buf.len() as u64, d.len() as u64))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.file.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"format": "vmware-inflated", "virtual_size": self.len()})
    }
    fn path(&self) -> Option<&Path> {
        self.file.path()
    }
}

/// Memory whose bytes cannot be produced; every read fails with `reason`.
#[derive(Debug)]
pub struct Unreadable {
    file: Arc<dyn Layer>,
    len: u64,
    reason: String,
}

impl Unreadable {
    /// `len` bytes that cannot be read, for `reason`.
    pub fn new(file: Arc<dyn Layer>, len: u64, reason: String) -> Self {
        Unreadable { file, len, reason }
    }
}

impl Layer for Unreadable {
    fn name(&self) -> &str {
        "vmware-unreadable"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::Stream
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        Err(Error::unsupported(self.reason.clone()).at(offset))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.file.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"format": "vmware-unreadable", "virtual_size": self.len, "reason": self.reason})
    }
    fn path(&self) -> Option<&Path> {
        self.file.path()
    }
}
