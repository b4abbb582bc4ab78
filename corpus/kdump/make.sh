#!/usr/bin/env bash
# Writes the kdump-compressed samples with QEMU's own writer (`dump-guest-memory` in its
# kdump formats) from paused guests whose memory is also dumped as an ELF core, the
# oracle (run from the repo root, after corpus/elf/make.sh).
#
#   flat.kdump.gz   kdump-zlib (makedumpfile's flattened form) of corpus/elf's guest: the
#                   -S guest with 32 MiB + a 2 MiB pc-dimm at 4 GiB and the blobs of
#                   corpus/elf/make.sh; its oracle is corpus/elf/core.elf.gz (a never-run
#                   guest's RAM is the firmware and the blobs, the same in every run)
#   raw.kdump.gz    kdump-raw-zlib (the plain diskdump file) of the same guest
#   small.kdump     kdump-raw-zlib of a -S guest with 4 MiB of RAM and blob-a at 1 MiB,
#                   blob-b at 2 MiB (zlib pages, stored pages, the shared zero page, absent
#                   pages: the VGA hole); not gzipped, the golden-file sample
#   small.elf.gz    dump-guest-memory (ELF) of that same guest: small.kdump's oracle
#   fuzz-seeds/kdump/small-cut.kdump   the fuzz seed, cut by cut-seed.py (below)
#
# This QEMU writes only zlib (query-dump-guest-memory-capability lists kdump-zlib and
# kdump-raw-zlib; lzo and snappy are build options of Debian's qemu-system it lacks), so
# lzo/snappy pages are refused with an Unsupported error naming the compression.
# A booted guest (CR3, VMCOREINFO-free QEMU notes of a running kernel) is too large to
# commit: dump-guest.py makes one under target/paging/kdump-96 for the ignored test
# (cargo test -p vmsnap-kdump --test real_guest -- --ignored).
#
# `make.sh RAW OUT` writes OUT, the kdump-raw-zlib dump of a -S guest whose RAM holds the
# raw image RAW at 1 MiB (the bench's 256 MiB image).
set -euo pipefail
out=corpus/kdump
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

dump() { # commands-file qemu-args...: a paused -S guest, HMP commands from the file
  local cmds=$1
  shift
  qemu-system-x86_64 -machine pc -S -accel tcg -display none -nodefaults -monitor stdio "$@" \
    < "$cmds" > "$tmp/monitor.log" 2>&1 || { cat "$tmp/monitor.log"; exit 1; }
}

if [ $# -eq 2 ]; then
  size=$(stat -c %s "$1")
  printf '%s\n' "dump-guest-memory -z -R $tmp/out.kdump" quit > "$tmp/cmds"
  dump "$tmp/cmds" -m $(((size >> 20) + 2)) \
    -device loader,file="$1",addr=0x100000,force-raw=on
  test -s "$tmp/out.kdump" || { cat "$tmp/monitor.log"; exit 1; }
  mv "$tmp/out.kdump" "$2"
  exit 0
fi

e=corpus/elf
printf '%s\n' "dump-guest-memory -z $tmp/flat.kdump" "dump-guest-memory -z -R $tmp/raw.kdump" \
  quit > "$tmp/cmds"
dump "$tmp/cmds" -m 32,slots=1,maxmem=64M \
  -object memory-backend-ram,id=m0,size=2M -device pc-dimm,memdev=m0,id=dimm0 \
  -device loader,file="$e/blob-a.bin",addr=0x100000,force-raw=on \
  -device loader,file="$e/blob-b.bin",addr=0x1234000,force-raw=on \
  -device loader,file="$e/blob-c.bin",addr=0x1ff0000,force-raw=on \
  -device loader,file="$e/blob-d.bin",addr=0x100000000,force-raw=on

printf '%s\n' "dump-guest-memory -z -R $tmp/small.kdump" "dump-guest-memory $tmp/small.elf" \
  quit > "$tmp/cmds"
dump "$tmp/cmds" -m 4 \
  -device loader,file="$e/blob-a.bin",addr=0x100000,force-raw=on \
  -device loader,file="$e/blob-b.bin",addr=0x200000,force-raw=on

for f in flat.kdump raw.kdump small.elf; do
  test -s "$tmp/$f" || { cat "$tmp/monitor.log"; echo "missing $f" >&2; exit 1; }
  gzip -9n -c "$tmp/$f" > "$out/$f.gz"
done
test -s "$tmp/small.kdump" || { cat "$tmp/monitor.log"; echo "missing small.kdump" >&2; exit 1; }
install -m 644 "$tmp/small.kdump" "$out/small.kdump"
# The fuzz seed (<= 64 KiB): small.kdump cut to its first 236 page frames (crafted from
# QEMU's bytes: the headers and notes kept, bitmaps, descriptors and data offsets rewritten).
mkdir -p "$out/fuzz-seeds/kdump"
python3 "$out/cut-seed.py" "$out/small.kdump" "$out/fuzz-seeds/kdump/small-cut.kdump" 236
ls -l "$out"
