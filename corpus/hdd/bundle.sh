# Writers of Parallels .hdd bundles, sourced by corpus/hdd/make.sh and corpus/pvs/make.sh.
#
# DiskDescriptor.xml is written by the schema of QEMU's docs/interop/prl-xml.txt, as
# Parallels Desktop writes it (no tool here writes one); the .hds images by qemu-img
# (`create -f parallels`, an expanding image) and qemu-io (`write -P`). The current state
# has the GUID Parallels gives it, {5fbaabe3-6958-40ff-92a7-860e329aab41}.

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

