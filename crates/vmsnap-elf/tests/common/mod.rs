//! Test helpers: the real samples and opening through the plugin; the ELF core builder for
//! crafted cases and the independent PT_LOAD extractor are vmsnap_testkit::elf's.
#![allow(dead_code)]
// Builders and readers outside `#[test]` functions, which clippy.toml's test allowances do
// not cover.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use vmsnap_core::{
    ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, Registry, Resolver,
};

/// The decompressed sample, decompressed once per test binary (debug-mode inflate of
/// 36 MiB is slow).
pub fn gunzip(rel: &str) -> Arc<[u8]> {
    static CACHE: Mutex<BTreeMap<String, Arc<[u8]>>> = Mutex::new(BTreeMap::new());
    let mut c = CACHE.lock().unwrap();
    c.entry(rel.to_string())
        .or_insert_with(|| {
            let f = std::fs::File::open(vmsnap_testkit::corpus(rel)).unwrap();
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(f)
                .read_to_end(&mut out)
                .unwrap();
            out.into()
        })
        .clone()
}

pub fn blob(name: &str) -> Vec<u8> {
    std::fs::read(vmsnap_testkit::corpus(&format!("elf/{name}"))).unwrap()
}

/// (address, blob file) of the seeded guest RAM.
pub const BLOBS: [(u64, &str); 4] = [
    (0x100000, "blob-a.bin"),
    (0x1234000, "blob-b.bin"),
    (0x1ff0000, "blob-c.bin"),
    (0x1_0000_0000, "blob-d.bin"),
];

pub fn file_layer(bytes: impl Into<Arc<[u8]>>) -> Arc<dyn Layer> {
    Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))))
}

/// Opens through the plugin, as the stacker would.
pub fn open(bytes: impl Into<Arc<[u8]>>) -> vmsnap_core::Result<Arc<dyn Layer>> {
    let reg = Registry::empty().with(&vmsnap_elf::PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::SameDir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    (vmsnap_elf::PLUGIN.open)(file_layer(bytes), &ctx)
}

pub fn probe(bytes: &[u8]) -> vmsnap_core::Probe {
    (vmsnap_elf::PLUGIN.probe)(&vmsnap_core::SniffWindow::of_whole(bytes))
}
