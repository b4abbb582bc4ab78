//! QEMU migration streams: arbitrary bytes probed and opened through the `qemu` plugin (and wrapped in a libvirt header through `libvirt-save`), then read whole.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target =
        vmsnap_fuzzing::target("qemu_stream").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
