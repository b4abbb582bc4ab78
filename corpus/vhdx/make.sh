#!/usr/bin/env bash
# Makes the qemu-img VHDX samples in DIR (default corpus/vhdx; run from the repo root).
# Every VHDX spans at least 8 MiB (1 MiB header section, 1 MiB-aligned log, BAT and
# metadata regions, mostly holes), so only sample.vhdx is committed (the corpus sample:
# golden file, stable seeds, crates/vmsnap-vhdx/tests/corpus.rs); the larger ones are
# made when DIR is given, into a scratch directory (crates/vmsnap-vhdx/tests/qemu.rs).
# qemu-img 10 cannot set a 4 KiB logical sector; the tests' builder makes those.
set -euo pipefail
d=${1:-corpus/vhdx}
mkdir -p "$d"
rm -f "$d"/*.vhdx
w() { qemu-io -f vhdx "$@" >/dev/null; }

# The committed sample: dynamic, 1 MiB blocks, 3 MiB; blocks 0 and 2 written, block 1
# never allocated.
qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M,log_size=1M "$d/sample.vhdx" 3M
w -c 'write -P 0xc4 0 64k' -c 'write -P 0x3c 2099200 4k' "$d/sample.vhdx"
[ "$d" = corpus/vhdx ] && exit 0

# Dynamic, 1 MiB blocks, 8 MiB, a few writes.
qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M "$d/dynamic-1m.vhdx" 8M
w -c 'write -P 0xab 0 64k' -c 'write -P 0x11 3145728 4k' -c 'write -P 0x22 7340544 512' "$d/dynamic-1m.vhdx"

# Dynamic, 32 MiB blocks, 40 MiB (a partial last block).
qemu-img create -q -f vhdx -o subformat=dynamic,block_size=32M "$d/dynamic-32m.vhdx" 40M
w -c 'write -P 0x5a 1M 8k' -c 'write -P 0x33 35M 4k' "$d/dynamic-32m.vhdx"

# Fixed, 1 MiB blocks, 4 MiB.
qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M "$d/fixed-1m.vhdx" 4M
w -c 'write -P 0x77 0 4k' -c 'write -P 0x88 2M 3k' "$d/fixed-1m.vhdx"
