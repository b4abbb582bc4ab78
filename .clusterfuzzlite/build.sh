#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script (the Rust / cargo-fuzz conventions): builds every
# target of fuzz/ with `cargo fuzz build -O`, and puts into $OUT each binary, its seed corpus
# (<target>_seed_corpus.zip, the same seeds `cargo xtask fuzz` uses), its dictionary
# (<target>.dict) and its libFuzzer options (<target>.options).
# Inside the image the repository is $SRC/vmsnap. Tested outside Docker by
# `cargo xtask fuzz-cflite`, which sets SRC, OUT, WORK and SANITIZER to scratch directories.
repo="$SRC/vmsnap"
cd "$repo"

# The base image's default toolchain is nightly; elsewhere ask rustup for it.
cargo_nightly=(cargo)
if ! rustc --version | grep -q nightly; then
  cargo_nightly=(cargo +nightly)
fi
case "${SANITIZER:-address}" in
  address) sanitizer=address ;;
  memory) sanitizer=memory ;;
  *) sanitizer=none ;; # undefined/coverage: the base image's RUSTFLAGS do the work
esac

# One target directory for every build of the repository (the workspace's, unless the
# caller set CARGO_TARGET_DIR).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
(cd fuzz && "${cargo_nightly[@]}" fuzz build -O --sanitizer "$sanitizer")
bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"

# Seeds: one directory per target, and its dictionary, by the repository's own rule.
cargo run --quiet -p xtask -- fuzz-seed-dirs "$WORK/seeds"

for src in fuzz/fuzz_targets/*.rs; do
  target=$(basename "${src%.rs}")
  cp "$bin_dir/$target" "$OUT/$target"
  if [ -n "$(ls -A "$WORK/seeds/$target" 2>/dev/null)" ]; then
    rm -f "$OUT/${target}_seed_corpus.zip"
    (cd "$WORK/seeds/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
  fi
  if [ -f "$WORK/seeds/$target.dict" ]; then
    cp "$WORK/seeds/$target.dict" "$OUT/$target.dict"
  fi
  cat > "$OUT/$target.options" <<OPTIONS
[libfuzzer]
rss_limit_mb = 2048
malloc_limit_mb = 2048
timeout = 10
OPTIONS
done
