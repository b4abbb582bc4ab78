//! `cargo xtask fuzz-cflite`: runs `.clusterfuzzlite/build.sh` outside Docker, as the
//! ClusterFuzzLite image would (SRC holding the repository as `vmsnap`, OUT, WORK and
//! SANITIZER=address, all scratch directories under `target/cflite/`), then checks that
//! $OUT holds every target's binary, options and dictionary, and a seed corpus zip for
//! every target that has seeds.

use std::process::Command;

use crate::fuzz::target_files;
use crate::{root, sh};

/// Runs the check.
pub fn run() -> bool {
    let base = root().join("target/cflite");
    let _ = std::fs::remove_dir_all(&base);
    let (src, out, work) = (base.join("src"), base.join("out"), base.join("work"));
    for d in [&src, &out, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink(root(), src.join("vmsnap")).unwrap();
    if !sh(Command::new("bash")
        .arg(root().join(".clusterfuzzlite/build.sh"))
        .env("SRC", &src)
        .env("OUT", &out)
        .env("WORK", &work)
        .env("SANITIZER", "address"))
    {
        return false;
    }
    let mut ok = true;
    for t in target_files() {
        let has = |name: String| {
            let there = out.join(&name).is_file();
            if !there {
                eprintln!("xtask: $OUT lacks {name}");
            }
            there
        };
        ok &= has(t.clone()) && has(format!("{t}.options"));
        if crate::fuzz::dict_file(&t).is_some() {
            ok &= has(format!("{t}.dict"));
        }
        if std::fs::read_dir(work.join("seeds").join(&t)).is_ok_and(|mut d| d.next().is_some()) {
            ok &= has(format!("{t}_seed_corpus.zip"));
        }
    }
    if ok {
        eprintln!(
            "xtask: build.sh built {} targets into {}",
            target_files().len(),
            out.display()
        );
    }
    ok
}
