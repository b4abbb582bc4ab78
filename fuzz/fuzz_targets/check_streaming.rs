//! Streaming inspection on arbitrary input fed in arbitrary chunk sizes: never panics,
//! memory stays under the stated bound, and the result equals random-access inspection.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target =
        vmsnap_fuzzing::target("check_streaming").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
