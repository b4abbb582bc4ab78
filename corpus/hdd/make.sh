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

TOP='{5fbaabe3-6958-40ff-92a7-860e329aab41}'
BASE='{4f0e2ad4-a9b0-4bd1-9c1e-0c6a3e5b7d21}'
NULL='{00000000-0000-0000-0000-000000000000}'

# descriptor DIR SECTORS STORAGES SHOTS: DiskDescriptor.xml of a disk of SECTORS sectors;
# STORAGES and SHOTS are the <Storage> and <Shot> elements.
descriptor() {
  cat > "$1/DiskDescriptor.xml" <<XML
<?xml version='1.0' encoding='UTF-8'?>
<Parallels_disk_image Version="1.0">
    <Disk_Parameters>
        <Disk_size>$2</Disk_size>
        <Cylinders>$(($2 / 16 / 63))</Cylinders>
        <PhysicalSectorSize>512</PhysicalSectorSize>
        <Heads>16</Heads>
        <Sectors>63</Sectors>
        <Padding>0</Padding>
        <Encryption>
            <Engine>{00000000-0000-0000-0000-000000000000}</Engine>
            <Data></Data>
        </Encryption>
        <UID>{9b1c4f6e-2d3a-4e5f-8a7b-1c2d3e4f5a6b}</UID>
        <Name>$(basename "$1" .hdd)</Name>
        <Miscellaneous>
            <CompatLevel>level2</CompatLevel>
            <Bootable>1</Bootable>
            <SuspendState>0</SuspendState>
        </Miscellaneous>
    </Disk_Parameters>
    <StorageData>
$3
    </StorageData>
    <Snapshots>
        <TopGUID>$TOP</TopGUID>
$4
    </Snapshots>
</Parallels_disk_image>
XML
}

# storage START END IMAGES
storage() {
  printf '        <Storage>\n            <Start>%s</Start>\n            <End>%s</End>\n            <Blocksize>128</Blocksize>\n%s\n        </Storage>' "$1" "$2" "$3"
}
# image GUID TYPE FILE
image() {
  printf '            <Image>\n                <GUID>%s</GUID>\n                <Type>%s</Type>\n                <File>%s</File>\n            </Image>' "$1" "$2" "$3"
}
# shot GUID PARENT
shot() {
  printf '        <Shot>\n            <GUID>%s</GUID>\n            <ParentGUID>%s</ParentGUID>\n        </Shot>' "$1" "$2"
}
# hds FILE BYTES [qemu-io commands…]: an expanding image with 64 KiB clusters.
hds() {
  local f=$1 size=$2
  shift 2
  qemu-img create -q -f parallels -o cluster_size=65536 "$f" "$size"
  local c
  for c in "$@"; do
    qemu-io -f parallels -c "$c" "$f" > /dev/null
  done
}

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
