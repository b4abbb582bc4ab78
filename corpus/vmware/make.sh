#!/usr/bin/env bash
# Regenerates the VMware samples. No VMware product runs here: the samples come from the
# crate's test builder, which writes checkpoints from the documented format (see
# crates/vmsnap-vmware/src/builder.rs) with known guest memory.
#   embedded.vmss            memory embedded, 2 regions with a hole, padsize 7, scalar CPU tags
#   padded.vmsn + .vmem      memory in the .vmem, 3 regions, padsize 5, block CPU tags
#   plain.vmss + .vmem       the same layout with padsize 0 (what Volatility 3 reads)
#   v0.vmss                  magic 0xbed2bed0: 32-bit block sizes, one run, old CR tags
# Every sample also has Snapshot/cfgFile text and an MKSVMX/imageData PNG.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run -q -p vmsnap-vmware --example make_vmware_corpus -- corpus/vmware
