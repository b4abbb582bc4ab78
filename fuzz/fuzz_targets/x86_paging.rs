//! x86 page walks over arbitrary physical memory and an arbitrary root, in every mode:
//! translation, reads and mapping enumeration must end, and never panic.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target =
        vmsnap_fuzzing::target("x86_paging").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
