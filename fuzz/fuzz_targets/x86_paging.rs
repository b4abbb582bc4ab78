//! x86 page walks over arbitrary physical memory and an arbitrary root, in every mode:
//! translation, reads and mapping enumeration must end, and never panic.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnap_core::{FileLayer, Layer, MemSource};
use vmsnap_x86::{Mode, VirtualLayer};

fuzz_target!(|input: (u8, u64, Vec<u64>, Vec<u8>)| {
    let (mode, root, addrs, memory) = input;
    let mode = match mode % 5 {
        0 => Mode::Bits32 { pse: false },
        1 => Mode::Bits32 { pse: true },
        2 => Mode::Pae,
        3 => Mode::Level4,
        _ => Mode::Level5,
    };
    let phys: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(memory))));
    let v = VirtualLayer::new(phys, mode, root % 0x10_0000, true);
    let mut buf = [0u8; 64];
    for a in addrs.iter().take(64) {
        let off = a % v.len();
        let _ = v.walk(off);
        let n = ((v.len() - off) as usize).min(buf.len());
        let _ = v.read_at(off, &mut buf[..n]);
    }
    let _ = v.mappings_bounded(0..v.len(), 200_000);
});
