//! LiME files: arbitrary bytes probed and opened through
//! the `lime` plugin, then the layer read whole.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("lime").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
