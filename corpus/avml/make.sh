#!/usr/bin/env bash
# Makes the AVML samples with Microsoft's own converter, `avml convert` (avml 0.21,
# `cargo install avml --locked --no-default-features --features convert`, tools/setup.sh),
# from the LiME samples of corpus/lime (a paused QEMU guest's RAM, see corpus/lime/make.sh).
# Run from the repo root. `make.sh RAW OUT` writes the raw memory image RAW as AVML instead
# (the bench's 256 MiB image).
#
#   small.avml      corpus/lime/small.lime (one 8 KiB range at 0x1234000) as one AVML
#                   version-2 range (2 snappy chunks);
#   guest.avml      corpus/lime/guest.lime.gz (the whole 32 MiB guest, 6 ranges) as AVML:
#                   avml leaves out the two all-zero ranges below 0xe0000 and splits the
#                   31 MiB range at 1 MiB into 16 MiB blocks (5 AVML ranges, 534 chunks);
#   mixed.avml      small.avml, then guest.lime's range at 0xfffc0000 as LiME version 1
#                   (avml writes and reads both kinds of range in one file);
#   lime-first.avml small.lime (LiME version 1), then guest.lime's range at 0xfffc0000 as
#                   AVML (the AVML header lies in the head: the probe tells it from LiME).
#
# The mixed files are the converter's own ranges concatenated (cut at their headers):
# no tool here writes one file of both kinds, avml reads them (its `convert_block` reads
# each range by its header).
set -euo pipefail
out=corpus/avml

if [ $# -eq 2 ]; then
  avml convert --source-format raw --format lime_compressed "$1" "$2"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gzip -dc corpus/lime/guest.lime.gz > "$tmp/guest.lime"

lime_range() { # lime start out: the LiME range of `lime` that starts at `start`
  python3 - "$@" <<'PY'
import struct, sys
data, want = open(sys.argv[1], "rb").read(), int(sys.argv[2], 0)
at = 0
while at < len(data):
    magic, version, start, end, _ = struct.unpack_from("<IIQQQ", data, at)
    assert (magic, version) == (0x4C694D45, 1), hex(at)
    size = 32 + end - start + 1
    if start == want:
        open(sys.argv[3], "wb").write(data[at:at + size])
        sys.exit(0)
    at += size
sys.exit(f"no range at {want:#x}")
PY
}

avml convert --source-format lime --format lime_compressed corpus/lime/small.lime \
  "$tmp/small.avml"
avml convert --source-format lime --format lime_compressed "$tmp/guest.lime" "$tmp/guest.avml"
lime_range "$tmp/guest.lime" 0xfffc0000 "$tmp/bios.lime"
avml convert --source-format lime --format lime_compressed "$tmp/bios.lime" "$tmp/bios.avml"
cp "$tmp/small.avml" "$tmp/guest.avml" "$out/"
cat "$tmp/small.avml" "$tmp/bios.lime" > "$out/mixed.avml"
cat corpus/lime/small.lime "$tmp/bios.avml" > "$out/lime-first.avml"
chmod 644 "$out"/*.avml
ls -l "$out"
