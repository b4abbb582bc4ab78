//! The libvirt `virsh save` wrapper (`LibvirtQemudSave` header, domain XML, padding, then
//! the QEVM stream, possibly through an external compressor).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::limits::MAX_TEXT_BYTES;
use vmsnap_core::{
    AddressSpace, Bytes, Error, Extent, Finding, Layer, LayerExt, OpenCtx, Result, SliceLayer,
};

use crate::raw::{LIBVIRT_HEADER, LIBVIRT_MAGIC, LIBVIRT_MAGIC_PARTIAL};

/// Names of the `format` field.
pub fn compression_name(format: u32) -> &'static str {
    match format {
        0 => "raw",
        1 => "gzip",
        2 => "bzip2",
        3 => "xz",
        4 => "lzop",
        5 => "zstd",
        6 => "sparse",
        _ => "unknown",
    }
}

/// A libvirt save image; its bytes are the embedded stream (a window of the file).
#[derive(Debug)]
pub struct LibvirtSave {
    stream: SliceLayer,
    describe: Value,
    findings: Vec<Finding>,
}

fn nul_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

impl LibvirtSave {
    /// Opens the header in `lower`.
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::build(lower).map_err(|e| e.in_layer("libvirt-save"))
    }

    fn build(lower: Arc<dyn Layer>) -> Result<Self> {
        let raw = lower.read_vec(0, LIBVIRT_HEADER, LIBVIRT_HEADER, "libvirt save header")?;
        let h = Bytes::new(&raw, 0);
        let magic = h.slice(0, 16)?;
        let partial = magic == LIBVIRT_MAGIC_PARTIAL;
        if magic != LIBVIRT_MAGIC && !partial {
            return Err(Error::malformed(0, "not a libvirt save image (magic)"));
        }
        // Host byte order: little-endian on x86; libvirt retries byte-swapped when the
        // version looks wrong.
        let mut le = true;
        let mut version = h.u32_le(16)?;
        if version > 2 && h.u32_be(16)? <= 2 {
            le = false;
            version = h.u32_be(16)?;
        }
        let rd = |o: usize| if le { h.u32_le(o) } else { h.u32_be(o) };
        if version == 0 || version > 2 {
            return Err(
                Error::unsupported(format!("libvirt save header version {version}")).at(16),
            );
        }
        let data_len = u64::from(rd(20)?);
        let was_running = rd(24)?;
        let format = rd(28)?;
        let cookie_off = u64::from(if version >= 2 { rd(32)? } else { 0 });
        let offset = LIBVIRT_HEADER + data_len;
        if offset > lower.len() {
            return Err(Error::truncated(
                20,
                format!("libvirt data of {data_len} bytes runs past the end of the file"),
            ));
        }
        let xml_len = data_len.min(MAX_TEXT_BYTES);
        let data = lower.read_vec(
            LIBVIRT_HEADER,
            xml_len,
            MAX_TEXT_BYTES,
            "libvirt domain XML",
        )?;
        let xml = nul_str(&data);
        let cookie = (cookie_off > 0)
            .then(|| data.get(cookie_off as usize..).map(nul_str))
            .flatten();
        let comp = compression_name(format);
        let mut findings = Vec::new();
        if partial {
            findings.push(
                Finding::warning(
                    crate::rule::INCOMPLETE,
                    "libvirt save image is marked incomplete (LibvirtQemudPart)",
                )
                .at(0),
            );
        }
        let compressed = !matches!(format, 0 | 6);
        if compressed {
            findings.push(Finding::warning(
                vmsnap_core::rule::COMPRESSED,
                format!("the QEMU stream at offset {offset} is {comp}-compressed (libvirt format {format}); decompress it to read guest memory"),
            ).at(28));
        }
        let describe = json!({
            "format": "libvirt-save",
            "virtual_size": lower.len() - offset,
            "version": version,
            "byte_order": if le { "little" } else { "big" },
            "incomplete": partial,
            "was_running": was_running != 0,
            "compression": comp,
            "compressed": compressed,
            "stream_offset": offset,
            "domain_xml": xml,
            "cookie_xml": cookie,
        });
        let len = lower.len() - offset;
        Ok(LibvirtSave {
            stream: SliceLayer::new("libvirt-save", AddressSpace::Stream, lower, offset, len)?,
            describe,
            findings,
        })
    }
}

impl Layer for LibvirtSave {
    fn name(&self) -> &str {
        "libvirt-save"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::Stream
    }
    fn len(&self) -> u64 {
        self.stream.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.stream.read_at(offset, buf)
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        self.stream.extents(range)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        self.stream.lower()
    }
    fn describe(&self) -> Value {
        self.describe.clone()
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn path(&self) -> Option<&Path> {
        self.stream.path()
    }
}
