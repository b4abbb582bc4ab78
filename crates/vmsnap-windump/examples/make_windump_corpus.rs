//! Turns a QEMU ELF core into Windows crash dumps by the documented layout (the crate's
//! `builder` feature): `make_windump_corpus CORE OUT_PREFIX KIND...`, where each KIND is
//! `64-full`, `64-bitmap`, `32-full`, `32-bitmap`, `32pae-full`, `32pae-bitmap` or
//! `64-kernel`, written to `OUT_PREFIX-KIND.dmp`. CR3 is the first vCPU's in the core's
//! QEMU notes; `CR3=0x…` as an argument overrides it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use vmsnap_windump::builder::{elf_source, from_elf_core, Kind, Spec};
use vmsnap_windump::Width;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [core, prefix, kinds @ ..] = args.as_slice() else {
        eprintln!("usage: make_windump_corpus CORE OUT_PREFIX KIND... [CR3=0x...]");
        std::process::exit(2);
    };
    let core = Path::new(core);
    let mut cr3 = elf_source(core).expect("open the ELF core").cr3;
    for k in kinds {
        if let Some(v) = k.strip_prefix("CR3=") {
            cr3 = u64::from_str_radix(v.trim_start_matches("0x"), 16).expect("CR3 in hex");
        }
    }
    for k in kinds.iter().filter(|k| !k.starts_with("CR3=")) {
        let (width, pae, kind) = match k.as_str() {
            "64-full" => (Width::Bits64, false, Kind::Full),
            "64-bitmap" => (Width::Bits64, false, Kind::BitmapFull),
            "64-kernel" => (Width::Bits64, false, Kind::BitmapKernel),
            "32-full" => (Width::Bits32, false, Kind::Full),
            "32-bitmap" => (Width::Bits32, false, Kind::BitmapFull),
            "32pae-full" => (Width::Bits32, true, Kind::Full),
            "32pae-bitmap" => (Width::Bits32, true, Kind::BitmapFull),
            other => {
                eprintln!("unknown kind {other}");
                std::process::exit(2);
            }
        };
        let out = format!("{prefix}-{k}.dmp");
        let n = from_elf_core(core, &Spec::new(width, kind, cr3, pae), Path::new(&out))
            .expect("write the dump");
        println!("{out} {n} bytes (CR3 {cr3:#x})");
    }
}
