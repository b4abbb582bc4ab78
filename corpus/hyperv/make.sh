#!/usr/bin/env bash
# Regenerates the Hyper-V samples. No Hyper-V runs here: the samples are written from the
# documented format (shared/reference/hyperv.md) by the crate's builder (the `builder` feature), which
# shares no code with the reader. Also writes fuzz-seeds/<target>/ for the fuzz targets
# whose input is not a whole file (hyperv_ram: RAM-block metadata and record streams;
# xpress: a selector byte and a stream), from the test encoder. Run from the repository
# root.
set -euo pipefail
cargo run -q -p vmsnap-hyperv --example make_hyperv_corpus -- corpus/hyperv
