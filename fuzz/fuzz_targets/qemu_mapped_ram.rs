//! QEMU mapped-ram files: arbitrary bytes probed and opened through the `qemu-mapped-ram` plugin, then read whole (RAM block children too).
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target =
        vmsnap_fuzzing::target("qemu_mapped_ram").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
