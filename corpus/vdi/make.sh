#!/usr/bin/env bash
# Regenerates the VDI samples with qemu-img / qemu-io. Run from the repo root.
# QEMU only handles 1 MiB VDI blocks and writes whole blocks, so every sample with data is
# just over 1 MiB; the multi-block cases (reads spanning many blocks, an out-of-order block
# map) are generated at test time by the same commands into target/.
set -euo pipefail
d=corpus/vdi
rm -f "$d"/*.vdi
# Dynamic 4 MiB image: one block allocated (block 2), the rest never allocated.
qemu-img create -q -f vdi "$d/dynamic.vdi" 4M
qemu-io -f vdi -c 'write -P 0x33 2052k 8k' -c 'write -P 0x34 3068k 4k' "$d/dynamic.vdi" >/dev/null
# Dynamic 64 MiB image with nothing allocated.
qemu-img create -q -f vdi "$d/empty.vdi" 64M
# Static (preallocated) 1 MiB image with a little data.
qemu-img create -q -f vdi -o static=on "$d/static.vdi" 1M
qemu-io -f vdi -c 'write -P 0x55 512k 4k' -c 'write -P 0x56 1020k 4k' "$d/static.vdi" >/dev/null
