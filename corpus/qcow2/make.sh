#!/usr/bin/env bash
# Regenerates the qcow2 corpus with qemu-img / qemu-io / qemu-system-x86_64.
# Run from the repository root: bash corpus/qcow2/make.sh
# Deterministic except savevm.qcow2 (timestamps and device state of a real QEMU run).
set -euo pipefail

cd "$(dirname "$0")"
export LC_ALL=C
rm -f ./*.qcow2 ./*.qcow ./*.raw
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

io() { # io FILE CMD... : qemu-io writes
  local f=$1; shift
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  qemu-io -f qcow2 "${args[@]}" "$f" >/dev/null
}

# Deterministic pseudo-random bytes: N bytes from SEED.
prand() { python3 -c "import random,sys; random.seed($2); sys.stdout.buffer.write(random.randbytes($1))"; }

# v2 (compat=0.10), 16 KiB clusters, 4 MiB, data and a partial cluster.
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=16k v2.qcow2 4M
io v2.qcow2 "write -P 0x11 0 64k" "write -P 0x22 1M 1536" "write -P 0x33 3M 4k"

# v3, 64 KiB clusters (the default), zero writes, partial clusters.
qemu-img create -q -f qcow2 -o compat=1.1 v3.qcow2 4M
io v3.qcow2 "write -P 0x44 0 100k" "write -z 64k 64k" "write -P 0x55 150k 700" \
  "write -z 2M 4k"

# v3 with lazy refcounts and a persistent dirty bitmap, 4 KiB clusters.
qemu-img create -q -f qcow2 -o cluster_size=4k,lazy_refcounts=on bitmaps.qcow2 1M
io bitmaps.qcow2 "write -P 0x45 8k 8k"
qemu-img bitmap --add -g 64k bitmaps.qcow2 bitmap0
qemu-img bitmap --add --disable bitmaps.qcow2 second-bitmap

# 512-byte clusters (many L2 tables), 1 MiB.
qemu-img create -q -f qcow2 -o cluster_size=512 c512.qcow2 1M
io c512.qcow2 "write -P 0x88 0 1000" "write -P 0x99 40k 33k" "write -z 41k 1k" "write -P 0xaa 1048064 512"

# Compressed: deflate (zlib, 64 KiB clusters) and zstd (32 KiB clusters), from a mixed raw (pattern, random, zeros).
prand 65536 1 > "$tmp/rand"
python3 - "$tmp/src.raw" <<'PY'
import sys, random
random.seed(7)
b = bytearray(2 << 20)
for i in range(0, 512 << 10):
    b[i] = (i * 7 + (i >> 10)) & 0xff          # compressible
b[600 << 10:(600 << 10) + 65536] = random.randbytes(65536)   # incompressible
b[1 << 20:(1 << 20) + 3000] = b"qcow2 compressed sample " * 125
open(sys.argv[1], "wb").write(bytes(b))
PY
qemu-img convert -q -f raw -O qcow2 -c "$tmp/src.raw" zlib.qcow2
qemu-img convert -q -f raw -O qcow2 -c -o compression_type=zstd,cluster_size=32k "$tmp/src.raw" \
  zstd.qcow2

# Extended L2 entries (subclusters), 16 KiB clusters (512-byte subclusters).
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16k extl2.qcow2 2M
io extl2.qcow2 "write -P 0xbb 0 1200" "write -P 0xcc 33k 2k" "write -z 40k 3k" \
  "write -P 0xdd 64k 32k" "write -z 70k 1k" "write -P 0xee 1M 512"

# A 3-deep backing chain (base smaller than the overlays), zero writes and partial
# clusters in the overlays, 4 KiB clusters, relative names, backing format recorded.
qemu-img create -q -f qcow2 -o cluster_size=4k chain-base.qcow2 3M
io chain-base.qcow2 "write -P 0x01 0 64k" "write -P 0x02 2M 20k" "write -P 0x07 3141632 4096"
qemu-img create -q -f qcow2 -o cluster_size=4k -b chain-base.qcow2 -F qcow2 chain-mid.qcow2 4M
io chain-mid.qcow2 "write -z 4k 8k" "write -P 0x03 100k 1000" "write -P 0x04 3M 512" "write -z 2M 2k"
qemu-img create -q -f qcow2 -o cluster_size=4k -b chain-mid.qcow2 -F qcow2 chain-top.qcow2 4M
io chain-top.qcow2 "write -P 0x05 101k 100" "write -z 0 512" "write -P 0x06 3584k 5000"

# External data file (relative name) and a raw external data file.
qemu-img create -q -f qcow2 -o cluster_size=4k,data_file=datafile.raw datafile.qcow2 256k
io datafile.qcow2 "write -P 0x31 0 64k" "write -P 0x32 128k 1000" "write -z 16k 8k"
qemu-img create -q -f qcow2 -o cluster_size=4k,data_file=datafile-raw.raw,data_file_raw=on \
  datafile-raw.qcow2 256k
io datafile-raw.qcow2 "write -P 0x41 4096 8192"

# Two internal snapshots with different contents, 4 KiB clusters.
qemu-img create -q -f qcow2 -o cluster_size=4k snapshots.qcow2 2M
io snapshots.qcow2 "write -P 0x61 0 16k" "write -P 0x62 1M 4k"
qemu-img snapshot -c one snapshots.qcow2
io snapshots.qcow2 "write -P 0x63 8k 16k" "write -z 1M 4k" "write -P 0x64 1536k 3000"
qemu-img snapshot -c two snapshots.qcow2
io snapshots.qcow2 "write -P 0x65 0 4k"

# qcow v1, to be reported as `qcow`.
qemu-img create -q -f qcow qcow1.qcow 1M

# savevm with VM state from a real, paused QEMU (64 MiB guest, 16 MiB disk, 4 KiB
# clusters to keep the file small).
qemu-img create -q -f qcow2 -o cluster_size=4k savevm.qcow2 16M
io savevm.qcow2 "write -P 0x71 0 64k" "write -P 0x72 8M 4k"
printf 'savevm snap1\nquit\n' | timeout 120 qemu-system-x86_64 -machine pc -m 64 -S \
  -display none -nodefaults -drive file=savevm.qcow2,format=qcow2,if=ide -monitor stdio \
  >/dev/null
io savevm.qcow2 "write -P 0x73 0 4k"

ls -l .
