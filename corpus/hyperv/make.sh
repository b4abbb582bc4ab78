#!/usr/bin/env bash
# Regenerates the Hyper-V samples. No Hyper-V runs here: the samples are written from the
# documented format (shared/reference/hyperv.md) by the crate's test builder, which
# shares no code with the reader. Run from the repository root.
set -euo pipefail
cargo run -q -p vmsnap-hyperv --example make_corpus -- corpus/hyperv
