#!/usr/bin/env bash
# Makes corpus/avml/sample.avml (run from the repo root); `make.sh RAW OUT` writes the
# raw image RAW as OUT in the format instead (the bench's 256 MiB image).
#
# TODO(new-format): write the samples with the format's reference writer (qemu-img create
# -f avml and qemu-io writes, the vendor's tool …), one per feature the reader handles,
# each small enough to commit (≤ 4 MiB: they also seed the fuzz targets); craft a file only
# where no tool writes a feature, and say so here. This placeholder writes the scaffold's
# own layout: a 512-byte header (magic, virtual size at 32, data offset at 40), the data.
set -euo pipefail

le() { # value bytes: little-endian bytes of value
  local v=$1 n=$2 i
  for ((i = 0; i < n; i++)); do
    printf "\\x$(printf %02x $(((v >> (8 * i)) & 255)))"
  done
}

convert() { # raw out
  local magic='vmsnap avml sample' size
  size=$(stat -c %s "$1")
  {
    printf '%s\n' "$magic"
    head -c $((32 - ${#magic} - 1)) /dev/zero
    le "$size" 8
    le 512 8
    head -c $((512 - 48)) /dev/zero
    cat "$1"
  } > "$2"
}

if [ $# -eq 2 ]; then
  convert "$1" "$2"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 1 MiB: 64 KiB of one pattern, zeros, 4 KiB of another at 512 KiB.
{
  (yes 'avml sample data' || true) | head -c 65536
  head -c $((512 * 1024 - 65536)) /dev/zero
  (yes 'more avml data' || true) | head -c 4096
  head -c $((512 * 1024 - 4096)) /dev/zero
} > "$tmp/sample.raw"
convert "$tmp/sample.raw" corpus/avml/sample.avml
ls -l corpus/avml
