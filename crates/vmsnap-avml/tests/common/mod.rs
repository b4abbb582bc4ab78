//! What the AVML tests share: opening through vmsnap's AVML and LiME readers, running
//! Microsoft's converter (`avml convert`, installed by tools/setup.sh), and comparing two
//! memory layers byte for byte over everything either holds.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use vmsnap_avml::Avml;
use vmsnap_core::{ExtentKind, FileLayer, Layer, MemSource};
use vmsnap_lime::Lime;
use vmsnap_testkit::assert_same_bytes;

/// Opens an AVML image held in memory.
pub fn open_bytes(bytes: impl Into<Arc<[u8]>>) -> vmsnap_core::Result<Avml> {
    Avml::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes)))))
}

/// Opens an AVML image file.
pub fn open_avml(path: &Path) -> Avml {
    Avml::open_layer(Arc::new(FileLayer::open(path).unwrap()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Opens a LiME file (bytes) with vmsnap's LiME reader.
pub fn open_lime(bytes: impl Into<Arc<[u8]>>) -> Lime {
    Lime::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))))).unwrap()
}

/// `avml convert [args] SRC DST`: Microsoft's converter (tools/setup.sh installs it).
pub fn avml_convert(args: &[&str], src: &Path, dst: &Path) {
    let ok = Command::new("avml")
        .args(["convert", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`avml convert` is missing: tools/setup.sh installs it (cargo install avml --locked \
         --no-default-features --features convert)"
    );
    vmsnap_testkit::run(
        Command::new("avml")
            .arg("convert")
            .args(args)
            .arg(src)
            .arg(dst),
    );
}

/// The byte ranges of `layer` that hold data (not unallocated), merged.
fn present(layer: &dyn Layer) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for e in layer.extents(0..layer.len()).unwrap() {
        if e.kind == ExtentKind::Unallocated {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.1 == e.offset => last.1 = e.end(),
            _ => out.push((e.offset, e.end())),
        }
    }
    out
}

/// `len` bytes at `at` of `layer`, zeros past its end.
fn read(layer: &dyn Layer, at: u64, len: u64) -> Vec<u8> {
    let mut v = vec![0u8; len as usize];
    let end = layer.len().min(at + len);
    if at < end {
        layer.read_at(at, &mut v[..(end - at) as usize]).unwrap();
    }
    v
}

/// Asserts that `a` and `b` hold the same memory: every byte of everything either holds
/// (outside both, both read zeros). Returns how many bytes were compared.
pub fn same_memory(a: &dyn Layer, b: &dyn Layer, what: &str) -> u64 {
    let mut spans = present(a);
    spans.extend(present(b));
    spans.sort_unstable();
    let mut compared = 0u64;
    let mut done = 0u64;
    for (start, end) in spans {
        let mut at = start.max(done);
        while at < end {
            let n = (end - at).min(4 << 20);
            assert_same_bytes(
                &read(a, at, n),
                &read(b, at, n),
                &format!("{what}: {n:#x} bytes at {at:#x}"),
            );
            at += n;
            compared += n;
        }
        done = done.max(end);
    }
    compared
}
