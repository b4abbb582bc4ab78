//! The whole stacker on arbitrary bytes: every registered plugin probes, the accepted ones
//! open, and every layer of the stack is read fully in chunks and described.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = vmsnap_fuzzing::target("stack").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
