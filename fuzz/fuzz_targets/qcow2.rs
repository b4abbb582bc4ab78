//! qcow2 and qcow v1: arbitrary bytes opened through both plugins (no external files: the default
//! deny policy), then every read, extent, metadata and child path exercised.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("qcow2").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
