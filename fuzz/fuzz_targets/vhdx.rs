//! The vhdx plugin on arbitrary bytes: open through the plugin on a `MemSource`, then
//! read, map and describe everything (no panics, no unbounded allocation).
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("vhdx").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
