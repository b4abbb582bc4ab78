//! Hyper-V storage container: arbitrary bytes opened through `hyperv-vmcx` (and
//! `hyperv-vmrs-ram` stacked on it when it accepts), then every read, extent, the whole
//! key tree, findings, references and children exercised.
//! The body lives in `vmsnap-fuzzing` (replayed over the committed seeds by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target =
        vmsnap_fuzzing::target("hyperv_container").expect("registered in vmsnap_fuzzing::TARGETS");
    (target.run)(data);
});
