#!/usr/bin/env bash
# Regenerates the Parallels samples with qemu-img / qemu-io. Run from the repo root.
# (QEMU cannot store persistent dirty bitmaps in Parallels images; those are crafted in
# the tests.)
set -euo pipefail
d=corpus/parallels
rm -f "$d"/*.hds
# 8 MiB image, 64 KiB clusters: scattered data written out of order.
qemu-img create -q -f parallels -o cluster_size=64k "$d/plain.hds" 8M
qemu-io -f parallels \
  -c 'write -P 0x11 5M 4k' \
  -c 'write -P 0x22 60k 8k' \
  -c 'write -P 0x33 0 4k' \
  -c 'write -P 0x44 8188k 4k' \
  "$d/plain.hds" >/dev/null
# 4 KiB clusters, odd virtual size.
qemu-img create -q -f parallels -o cluster_size=4k "$d/small-clusters.hds" 1500k
qemu-io -f parallels -c 'write -P 0x55 100k 20k' -c 'write -P 0x56 1496k 4k' \
  "$d/small-clusters.hds" >/dev/null
# Default 1 MiB clusters, nothing written.
qemu-img create -q -f parallels "$d/empty.hds" 32M
