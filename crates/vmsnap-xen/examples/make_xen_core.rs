//! `make_xen_core SRC OUT hvm|pv [INVALID_TAIL]`: writes OUT, the Xen dump-core of the ELF
//! core SRC (its guest-physical memory and QEMU vCPU notes, gzipped when SRC ends in
//! `.gz`), by the documented layout (corpus/xen/make.sh).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufWriter, Read};
use std::sync::Arc;

use vmsnap_core::{FileLayer, Layer, MemSource};
use vmsnap_elf::ElfCore;
use vmsnap_xen::builder::{write, Kind, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, out, kind, rest @ ..] = args.as_slice() else {
        eprintln!("usage: make_xen_core SRC OUT hvm|pv [INVALID_TAIL]");
        std::process::exit(2);
    };
    let file: Arc<dyn Layer> = if src.ends_with(".gz") {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))))
    } else {
        Arc::new(FileLayer::open(src).unwrap())
    };
    let core = ElfCore::open_layer(file).unwrap();
    let mut o = Options::new(match kind.as_str() {
        "hvm" => Kind::Hvm,
        "pv" => Kind::Pv,
        k => panic!("unknown kind {k}"),
    });
    o.invalid_tail = rest.first().map_or(0, |n| n.parse().unwrap());
    let mut w = BufWriter::new(std::fs::File::create(out).unwrap());
    write(&core, &core.cpu_state(), &o, &mut w).unwrap();
}
