//! VMDK: the input is either a sparse extent (KDMV / COWD, streamOptimized) or a text
//! descriptor; opened through the plugin on a memory source with no file path, so every
//! external reference is refused, then read whole, mapped and described.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("vmdk").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
