#!/usr/bin/env bash
# Builds the Windows crash dump samples (run from the repository root). No Windows runs
# here: the dumps are written by the documented layout (DUMP_HEADER32/DUMP_HEADER64 and the
# bitmap summary header, see crates/vmsnap-windump/src/raw.rs) by the crate's builder (the
# `builder` feature), from the guest-physical memory of QEMU's ELF cores: one run or
# bitmap run per PT_LOAD, rounded out to pages; CR3 from the core's QEMU CPU note (0 in
# these paused guests: the header then records none). Volatility 3's crash layers read
# them (crates/vmsnap-python/tests/test_volatility_windump.py).
#
# * small-{64-full,64-bitmap,64-kernel,32-full,32pae-bitmap}.dmp: corpus/elf/small.elf
#   (one 8 KiB range at 0x1234000) as full (type 1), complete bitmap (type 5, FDMP) and
#   kernel bitmap (type 6, SDMP) dumps, 64-bit (PAGEDU64) and 32-bit (PAGEDUMP, one with
#   PaeEnabled); the golden-file samples.
# * guest-64-bitmap.dmp.gz, guest-32-full.dmp.gz: the whole guest of corpus/elf/core.elf.gz
#   (RAM below and above 4 GiB), gzipped.
set -euo pipefail
out=corpus/windump
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo build -q -p vmsnap-windump --features builder --example make_windump_corpus
make=target/debug/examples/make_windump_corpus
rm -f "$out"/*.dmp "$out"/*.dmp.gz
"$make" corpus/elf/small.elf "$out/small" 64-full 64-bitmap 64-kernel 32-full 32pae-bitmap
gzip -dc corpus/elf/core.elf.gz > "$tmp/core.elf"
"$make" "$tmp/core.elf" "$tmp/guest" 64-bitmap 32-full
for f in "$tmp"/guest-*.dmp; do
  gzip -9n -c "$f" > "$out/$(basename "$f").gz"
done
ls -l "$out"
