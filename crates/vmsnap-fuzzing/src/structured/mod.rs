//! Structure-aware targets: an input starting with [`crate::STRUCTURED`] describes a file
//! (decoded with `arbitrary`) that the crate's own test writer builds with its regions at
//! their real offsets and its checksums computed; a list of patches then changes bytes
//! inside named regions, and checksums are recomputed afterwards unless the description
//! says not to. Any other input is the file itself.

pub mod hyperv;
pub mod parallels;
pub mod qcow2;
pub mod qemu;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;
pub mod vmware;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use vmsnap_core::{
    Error, ErrorKind, ExternalPolicy, FileLayer, Layer, MemSource, Resolver, Source,
};

/// The virtual directory in which the structured modes' files live.
const DIR: &str = "/vmsnap-fuzz";

/// A resolver whose opener serves `files` (by name, in [`DIR`]) from memory and refuses
/// every other path, without touching the file system; the policy lets every local name
/// through to it, so references by absolute path or with `..` reach the opener too.
pub(crate) fn in_memory(files: HashMap<String, Arc<[u8]>>) -> Resolver {
    Resolver::with_opener(ExternalPolicy::Any, move |p: &Path| {
        let bytes = p
            .file_name()
            .and_then(|n| files.get(n.to_str()?))
            .filter(|_| p.parent() == Some(Path::new(DIR)))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("{} is not a fuzz file", p.display()),
                )
            })?;
        Ok(Arc::new(MemSource::with_path(bytes.clone(), p)) as Arc<dyn Source>)
    })
}

/// `bytes` as a file layer called `name` in [`DIR`].
pub(crate) fn at_path(bytes: Vec<u8>, name: &str) -> Arc<dyn Layer> {
    Arc::new(FileLayer::new(Arc::new(MemSource::with_path(
        bytes,
        format!("{DIR}/{name}"),
    ))))
}

/// `data` as a zlib stream.
pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `Some(description)` when `data` selects the structured mode and decodes.
pub(crate) fn description<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    let rest = data.strip_prefix(crate::STRUCTURED)?;
    T::arbitrary_take_rest(Unstructured::new(rest)).ok()
}

/// Bytes written at an offset inside a region of the built file.
#[derive(Arbitrary, Debug)]
pub(crate) struct Patch {
    /// Which region (taken modulo the format's region count).
    pub region: u8,
    /// Where inside it (modulo the region's length).
    pub offset: u32,
    /// What to write (cut at the region's end).
    pub bytes: Vec<u8>,
}

/// Applies `patches` (at most 16) to `file`, whose regions are `(start, len)`.
pub(crate) fn apply(file: &mut [u8], regions: &[(usize, usize)], patches: &[Patch]) {
    for p in patches.iter().take(16) {
        let Some(&(start, len)) = regions.get(usize::from(p.region) % regions.len().max(1)) else {
            return;
        };
        let at = start + (p.offset as usize) % len.max(1);
        let end = (at + p.bytes.len()).min(start + len).min(file.len());
        if at < end {
            file[at..end].copy_from_slice(&p.bytes[..end - at]);
        }
    }
}
