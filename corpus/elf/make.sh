#!/usr/bin/env bash
# Regenerates the ELF-core samples from a real, paused QEMU guest (run from the repo root).
#
# The guest: qemu-system-x86_64 -machine pc -m 32 (+ a 2 MiB pc-dimm that QEMU places at
# 4 GiB, so the core has a segment above 4 GiB), -S (never runs: RAM is zero except for
# the firmware QEMU maps and the blobs the loader device writes), TCG.
#   blob-a.bin   8192 bytes at 0x100000
#   blob-b.bin   4219 bytes at 0x1234000 (ends mid-page)
#   blob-c.bin  16384 bytes at 0x1ff0000 (ends at the top of the 32 MiB of RAM)
#   blob-d.bin   4096 bytes at 0x100000000 (the pc-dimm)
# Outputs (gzip -9n; tests decompress them):
#   core.elf.gz    dump-guest-memory FILE
#   paging.elf.gz  dump-guest-memory -p FILE (paging is off in a -S guest, so QEMU maps
#                  virtual = physical; a real paging test comes with the x86 issue)
#   z.kdump.gz     dump-guest-memory -z FILE (kdump-compressed, zlib, flattened format)
#   small.elf      dump-guest-memory FILE 0x1234000 0x2000 (one PT_LOAD: blob-b and the
#                  zeros after it), uncompressed: the golden-file sample of the format
#   guest-slice.elf (+ .txt) a 48 KiB slice of a real booted Debian guest: the 4-level guest
#                  of tools/make-paging-guest.py (made here if missing, ~1 min under TCG),
#                  cut by tools/make-guest-slice.py to its CPU notes, the page tables of a
#                  few walks (linux_banner, its direct-map alias, RIP, RSP, 0) and the
#                  pages they reach; .txt holds QEMU's physical answers. Not gzipped: the
#                  README's `translate` example runs on it as shipped.
# -l (lzo) and -s (snappy) are not compiled into this QEMU ("kdump-lzo is not available
# now"), so those variants are covered by crafted headers in the tests.
set -euo pipefail
out=corpus/elf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

blob() { # name key-byte size: deterministic pseudo-random bytes (AES-CTR of zeros)
  head -c "$3" /dev/zero > "$tmp/zeros"
  openssl enc -aes-128-ctr -K "$2112233445566778899aabbccddeeff" -iv 00000000000000000000000000000000 -nosalt \
    -in "$tmp/zeros" -out "$out/$1"
}
blob blob-a.bin 00 8192
blob blob-b.bin 01 4219
blob blob-c.bin 02 16384
blob blob-d.bin 03 4096

printf '%s\n' \
  "dump-guest-memory $tmp/core.elf" \
  "dump-guest-memory -p $tmp/paging.elf" \
  "dump-guest-memory -z $tmp/z.kdump" \
  "dump-guest-memory $tmp/small.elf 0x1234000 0x2000" \
  "quit" |
  qemu-system-x86_64 -machine pc -m 32,slots=1,maxmem=64M -S -accel tcg -display none \
    -nodefaults -monitor stdio \
    -object memory-backend-ram,id=m0,size=2M -device pc-dimm,memdev=m0,id=dimm0 \
    -device loader,file="$out/blob-a.bin",addr=0x100000,force-raw=on \
    -device loader,file="$out/blob-b.bin",addr=0x1234000,force-raw=on \
    -device loader,file="$out/blob-c.bin",addr=0x1ff0000,force-raw=on \
    -device loader,file="$out/blob-d.bin",addr=0x100000000,force-raw=on \
    > "$tmp/monitor.log" 2>&1

for f in core.elf paging.elf z.kdump; do
  test -s "$tmp/$f" || { cat "$tmp/monitor.log"; echo "missing $f" >&2; exit 1; }
  gzip -9n -c "$tmp/$f" > "$out/$f.gz"
done
test -s "$tmp/small.elf" || { cat "$tmp/monitor.log"; echo "missing small.elf" >&2; exit 1; }
install -m 644 "$tmp/small.elf" "$out/small.elf"

python3 tools/make-paging-guest.py --name pc-4level
cargo build -q -p vmsnap-cli
python3 tools/make-guest-slice.py target/debug/vmsnap target/paging/pc-4level "$out/guest-slice.elf"
ls -l "$out"
