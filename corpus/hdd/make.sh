#!/usr/bin/env bash
# Makes the Parallels .hdd bundles in corpus/hdd (run from the repo root); `make.sh RAW
# OUT` writes the raw image RAW as the bundle directory OUT instead (the bench's image).
#
# The .hds images are written by qemu-img (`create -f parallels`, an expanding image) and
# qemu-io (`write -P`), or are raw files (a `Plain` image); DiskDescriptor.xml is written
# by the schema of QEMU's docs/interop/prl-xml.txt, as Parallels Desktop writes it (no
# tool here writes one). The current state has the GUID Parallels gives it,
# {5fbaabe3-6958-40ff-92a7-860e329aab41}.
#
#   simple.hdd    one storage, one expanding image
#   split.hdd     two storages: an expanding image, then a plain (raw) one
#   snapshot.hdd  one storage, a snapshot and the current state over it (differencing)
set -euo pipefail

# The writers (descriptor, storage, image, shot, hds) and TOP, BASE, NULL.
source "$(dirname "$0")/bundle.sh"

if [ $# -eq 2 ]; then
  size=$(stat -c %s "$1")
  rm -rf "$2"
  mkdir -p "$2"
  qemu-img convert -q -f raw -O parallels "$1" "$2/disk.hds"
  descriptor "$2" $((size / 512)) "$(storage 0 $((size / 512)) "$(image "$TOP" Compressed disk.hds)")" "$(shot "$TOP" "$NULL")"
  exit 0
fi

d=corpus/hdd
rm -rf "$d/simple.hdd" "$d/split.hdd" "$d/snapshot.hdd"
mkdir -p "$d/simple.hdd" "$d/split.hdd" "$d/snapshot.hdd"

f="simple.hdd.0.$TOP.hds"
hds "$d/simple.hdd/$f" 4M 'write -P 0xab 0 64k' 'write -P 0xcd 1049088 4k' 'write -P 0xef 4128768 64k'
descriptor "$d/simple.hdd" 8192 "$(storage 0 8192 "$(image "$TOP" Compressed "$f")")" "$(shot "$TOP" "$NULL")"

f0="split.hdd.0.$TOP.hds"
f1="split.hdd.1.$TOP.hds"
hds "$d/split.hdd/$f0" 2M 'write -P 0x5a 0 64k' 'write -P 0xa5 2031616 64k'
(yes 'a plain Parallels storage' || true) | head -c 2097152 > "$d/split.hdd/$f1"
descriptor "$d/split.hdd" 8192 "$(storage 0 4096 "$(image "$TOP" Compressed "$f0")")
$(storage 4096 8192 "$(image "$TOP" Plain "$f1")")" "$(shot "$TOP" "$NULL")"

fb="snapshot.hdd.0.$BASE.hds"
ft="snapshot.hdd.0.$TOP.hds"
hds "$d/snapshot.hdd/$fb" 4M 'write -P 0x11 0 1M' 'write -P 0x22 2M 64k'
hds "$d/snapshot.hdd/$ft" 4M 'write -P 0x33 512k 64k' 'write -P 0x44 3M 4k'
descriptor "$d/snapshot.hdd" 8192 "$(storage 0 8192 "$(image "$BASE" Compressed "$fb")
$(image "$TOP" Compressed "$ft")")" "$(shot "$BASE" "$NULL")
$(shot "$TOP" "$BASE")"

rm -f "$d/sample.hdd"

# The descriptors seed the fuzz target (the bundles are directories, which it skips).
mkdir -p "$d/fuzz-seeds/hdd"
for b in simple split snapshot; do
  cp "$d/$b.hdd/DiskDescriptor.xml" "$d/fuzz-seeds/hdd/$b.xml"
done
du -a "$d"
