//! Every committed fuzz seed through the same harness bodies the fuzz targets call, on the
//! stable toolchain: a seed that panics fails `cargo test` before any fuzzer runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Instant;

use vmsnap_fuzzing::{target, STRUCTURED, TARGETS};
use vmsnap_testkit::fuzz_seeds::{seeds, SEED_MAX};
use vmsnap_testkit::{corpus_dir, workspace_root};

/// The committed-seed caps (docs/fuzzing.md).
const FILE_CAP: u64 = 64 << 10;
const TARGET_CAP: u64 = 10 << 20;

#[test]
fn every_fuzz_target_has_a_body_here() {
    let mut on_disk: Vec<String> = std::fs::read_dir(workspace_root().join("fuzz/fuzz_targets"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "rs").then(|| p.file_stem().unwrap().to_string_lossy().into())
        })
        .collect();
    on_disk.sort();
    let mut here: Vec<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
    here.sort();
    assert_eq!(
        on_disk, here,
        "fuzz/fuzz_targets/*.rs and vmsnap_fuzzing::TARGETS differ"
    );
    for name in &here {
        let src =
            std::fs::read_to_string(workspace_root().join(format!("fuzz/fuzz_targets/{name}.rs")))
                .unwrap();
        assert!(
            src.contains(&format!("vmsnap_fuzzing::target(\"{name}\")")),
            "fuzz/fuzz_targets/{name}.rs does not call its body in vmsnap-fuzzing"
        );
    }
}

#[test]
fn committed_seeds_replay_through_every_target() {
    let mut total = 0;
    for t in TARGETS {
        let start = Instant::now();
        let list = seeds(t.name);
        let mut n = 0;
        for s in list.iter().filter(|s| !s.gzipped) {
            let data = std::fs::read(&s.path).unwrap();
            assert!(data.len() as u64 <= SEED_MAX);
            (t.run)(&data);
            n += 1;
        }
        eprintln!("{}: {n} seeds in {:?}", t.name, start.elapsed());
        total += n;
    }
    assert!(total > 100, "only {total} seeds found under corpus/");
}

#[test]
fn the_gzipped_guests_have_small_seeds_of_their_own() {
    // The LiME and ELF guests are committed gzipped; `cargo xtask fuzz-seeds` cuts them.
    for (target, min) in [("lime", 2), ("elf_core", 3)] {
        let own: Vec<_> = seeds(target)
            .into_iter()
            .filter(|s| s.path.to_string_lossy().contains("/fuzz-seeds/") && !s.gzipped)
            .collect();
        assert!(own.len() >= min, "{target}: {} own seeds", own.len());
    }
}

#[test]
fn committed_seeds_fit_the_caps() {
    for fmt in std::fs::read_dir(corpus_dir()).unwrap() {
        let seeds_dir = fmt.unwrap().path().join("fuzz-seeds");
        let Ok(targets) = std::fs::read_dir(&seeds_dir) else {
            continue;
        };
        for t in targets {
            let t = t.unwrap().path();
            let mut sum = 0;
            for f in std::fs::read_dir(&t).unwrap() {
                let f = f.unwrap().path();
                let len = f.metadata().unwrap().len();
                assert!(len <= FILE_CAP, "{} is {len} bytes", f.display());
                sum += len;
            }
            assert!(sum <= TARGET_CAP, "{} holds {sum} bytes", t.display());
        }
    }
}

/// A small deterministic generator (xorshift64*).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn structured_modes_build_from_any_description() {
    // The builders must accept every description: a panic there would be a false crash.
    for (name, runs) in [
        ("vhd", 200),
        ("vhdx", 24),
        ("hyperv_container", 200),
        ("qcow2", 200),
        ("vmdk", 200),
        ("vmware", 200),
        ("qemu_stream", 200),
        ("parallels", 200),
    ] {
        let t = target(name).unwrap();
        for i in 0..runs {
            let mut data = STRUCTURED.to_vec();
            data.extend(bytes(i, 64 + (i as usize * 37) % 2048));
            (t.run)(&data);
        }
    }
}
