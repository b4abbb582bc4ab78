//! Samples and their source cores.
#![allow(dead_code)]

use std::io::Read;
use std::sync::Arc;

use vmsnap_core::{FileLayer, Layer, MemSource};
use vmsnap_testkit::corpus;
use vmsnap_xen::Xen;

/// The bytes of a corpus file, gunzipped when its name ends in `.gz`.
pub fn bytes(rel: &str) -> Vec<u8> {
    let raw = std::fs::read(corpus(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e} (run corpus/xen/make.sh)"));
    if !rel.ends_with(".gz") {
        return raw;
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A layer over bytes in memory.
pub fn file(bytes: Vec<u8>) -> Arc<dyn Layer> {
    Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))))
}

/// Opens bytes as a dump-core.
pub fn open(bytes: Vec<u8>) -> vmsnap_core::Result<Xen> {
    Xen::open_layer(file(bytes))
}

/// (sample, source ELF core, HVM?, unused entries at the end) for every committed sample.
pub const SAMPLES: &[(&str, &str, bool, u64)] = &[
    ("xen/small-hvm.xen", "elf/small.elf", true, 0),
    ("xen/small-pv.xen", "elf/small.elf", false, 2),
    ("xen/slice-hvm.xen", "elf/guest-slice.elf", true, 0),
    ("xen/core-hvm.xen.gz", "elf/core.elf.gz", true, 0),
    ("xen/core-pv.xen.gz", "elf/core.elf.gz", false, 0),
];
