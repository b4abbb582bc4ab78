//! The ovf reader (OVF descriptors) on arbitrary bytes: probe, open through the plugin
//! (external references denied), then read, map and describe everything. Must never
//! panic, hang or over-allocate. The body lives in `vmsnap-fuzzing` (replayed over the
//! committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("ovf").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
