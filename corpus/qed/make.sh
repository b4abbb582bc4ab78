#!/usr/bin/env bash
# Regenerates the QED samples with qemu-img / qemu-io. Run from the repo root.
set -euo pipefail
d=corpus/qed
rm -f "$d"/*.qed "$d"/*.raw
# 8 MiB image, 4 KiB clusters, 2-cluster tables: scattered data, a zeroed range, the last
# cluster, and more than one L2 table.
qemu-img create -q -f qed -o cluster_size=4096,table_size=2 "$d/plain.qed" 8M
qemu-io -f qed \
  -c 'write -P 0x11 0 4k' \
  -c 'write -P 0x22 60k 8k' \
  -c 'write -P 0x33 3M 20k' \
  -c 'write -z 3M 8k' \
  -c 'write -P 0x44 8188k 4k' \
  "$d/plain.qed" >/dev/null
# Default geometry (64 KiB clusters, 4-cluster tables).
qemu-img create -q -f qed "$d/default.qed" 16M
qemu-io -f qed -c 'write -P 0x77 64k 64k' -c 'write -P 0x78 15M 4k' "$d/default.qed" >/dev/null
# Raw backing file and a QED overlay naming it with -F raw (features = 0x5).
qemu-img create -q -f raw "$d/base.raw" 256k
qemu-io -f raw -c 'write -P 0xb1 0 64k' -c 'write -P 0xb2 192k 64k' "$d/base.raw" >/dev/null
qemu-img create -q -f qed -o cluster_size=4096,table_size=2 -b base.raw -F raw "$d/overlay-raw.qed"
qemu-io -f qed -c 'write -P 0xc1 32k 8k' -c 'write -z 200k 4k' "$d/overlay-raw.qed" >/dev/null
# QED overlay on a QED base: QED has no field for a backing format other than "raw", so
# the header only says "backing file" (features = 0x1) and readers probe its format.
qemu-img create -q -f qed -o cluster_size=4096,table_size=2 -b plain.qed -F qed "$d/overlay-qed.qed"
qemu-io -f qed -c 'write -P 0xd1 4k 8k' "$d/overlay-qed.qed" >/dev/null
