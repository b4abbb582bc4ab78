#!/usr/bin/env bash
# Builds guest.lime.gz: a LiME file of the same guest RAM as corpus/elf/core.elf.gz (a
# paused QEMU guest seeded with blobs, see corpus/elf/make.sh), one LiME range per
# PT_LOAD of that core, in file order, as LiME's `lime` format lays them out: a 32-byte
# header (magic 0x4C694D45, version 1, start, inclusive end, 8 reserved zero bytes) and
# the range's bytes. Also small.lime, uncompressed, the same from corpus/elf/small.elf
# (one range: blob-b at 0x1234000 and the zeros after it; the golden-file sample). Run
# from the repo root after corpus/elf/make.sh.
set -euo pipefail
out=corpus/lime
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gzip -dc corpus/elf/core.elf.gz > "$tmp/core.elf"

le() { # value bytes: little-endian bytes of value
  local v=$1 n=$2 i
  for ((i = 0; i < n; i++)); do
    printf "\\x$(printf %02x $(((v >> (8 * i)) & 255)))"
  done
}

lime_of() { # core.elf out.lime: one LiME range per PT_LOAD of the core
  : > "$2"
  readelf -lW "$1" | awk '$1 == "LOAD" { print $2, $4, $5 }' |
    while read -r off paddr filesz; do
      off=$((off)) paddr=$((paddr)) filesz=$((filesz))
      {
        le $((0x4C694D45)) 4
        le 1 4
        le "$paddr" 8
        le $((paddr + filesz - 1)) 8
        le 0 8
        dd if="$1" iflag=skip_bytes,count_bytes skip="$off" count="$filesz" \
          bs=1M status=none
      } >> "$2"
    done
}

lime_of "$tmp/core.elf" "$tmp/guest.lime"
lime_of corpus/elf/small.elf "$out/small.lime"
gzip -9n -c "$tmp/guest.lime" > "$out/guest.lime.gz"
ls -l "$out"
