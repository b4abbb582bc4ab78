#!/usr/bin/env bash
# Writes the VirtualBox `dumpvmcore` samples (run from the repository root). No VirtualBox
# runs here: make-vbox.py writes the layout DBGFCoreWrite.cpp writes (ELF64, VBCORE and
# VBCPU notes, dbgfcorefmt.h format 1.6) around the RAM and vCPU registers of QEMU cores of
# corpus/elf, which are each sample's oracle. vmsnap reads them with the ELF reader
# (crates/vmsnap-elf/src/vbox.rs).
#   vbox-small.elf   corpus/elf/small.elf's RAM (two pages at 0x1234000), its -S vCPU
#   vbox-slice.elf   corpus/elf/guest-slice.elf: a booted guest's page tables and vCPU
#                    (CR3 0x2a10000), so the x86 layer stacks
set -euo pipefail
out=corpus/vbox
python3 "$out/make-vbox.py" corpus/elf/small.elf "$out/vbox-small.elf"
python3 "$out/make-vbox.py" corpus/elf/guest-slice.elf "$out/vbox-slice.elf"
ls -l "$out"
# Makes the VirtualBox VM sample in corpus/vbox/ (run from the repo root):
#
#   vm.vbox                          the machine's settings, written by the documented
#                                    schema (VirtualBox-settings.xsd, settings 1.19)
#   base.vdi                         base disk: qemu-img create -f vdi + qemu-io writes
#   Snapshots/{…0b}.vdi              differencing image of base.vdi  (snapshot "Before update")
#   Snapshots/{…0c}.vdi              differencing image of {…0b}.vdi (the current state)
#   data.vmdk                        a second disk, Writethrough (not snapshotted): qemu-img
#
# Snapshot tree: "Installed" (disk base.vdi) -> "Before update" (disk {…0b}.vdi, with a
# saved state that is listed, not written) -> current state (disk {…0c}.vdi, data.vmdk).
#
# qemu-img cannot write differencing VDIs, and VirtualBox does not run here, so the two
# differencing images are crafted from qemu-img-written dynamic VDIs: each is created with
# qemu-img and written with qemu-io (whole 1 MiB blocks, as QEMU writes them), then its
# header is patched by the documented VDI 1.1 layout (VirtualBox's VDICore.h): image type
# 4 (differencing) at 0x4C, uuid_link (the parent's uuid_image) at 0x1A8, uuid_parent (the
# parent's uuid_last_snap) at 0x1B8. Every image's uuid_image (0x188) and uuid_last_snap
# (0x198) are set to fixed UUIDs so the samples are reproducible; UUIDs are stored in the
# mixed-endian GUID layout (Python's UUID.bytes_le). The tests read each image's own
# blocks with qemu-img (the header patched back to dynamic) as the oracle.
set -euo pipefail
d=corpus/vbox
rm -rf "$d/Snapshots" "$d"/*.vdi "$d"/*.vmdk "$d"/*.vbox
mkdir -p "$d/Snapshots"

BASE=00000000-0000-4000-8000-00000000000a
DIFF1=00000000-0000-4000-8000-00000000000b
DIFF2=00000000-0000-4000-8000-00000000000c
VMDK=00000000-0000-4000-8000-00000000000d
MACHINE=00000000-0000-4000-8000-000000000001
SNAP1=00000000-0000-4000-8000-000000000011
SNAP2=00000000-0000-4000-8000-000000000012

# 3 MiB disks (three 1 MiB VDI blocks).
qemu-img create -q -f vdi "$d/base.vdi" 3M
qemu-io -f vdi -c 'write -P 0x11 0 64k' -c 'write -P 0x12 1100k 8k' "$d/base.vdi" >/dev/null
qemu-img create -q -f vdi "$d/Snapshots/{$DIFF1}.vdi" 3M
qemu-io -f vdi -c 'write -P 0x21 1200k 4k' "$d/Snapshots/{$DIFF1}.vdi" >/dev/null
qemu-img create -q -f vdi "$d/Snapshots/{$DIFF2}.vdi" 3M
qemu-io -f vdi -c 'write -P 0x31 2100k 12k' "$d/Snapshots/{$DIFF2}.vdi" >/dev/null
qemu-img create -q -f vmdk "$d/data.vmdk" 1M
qemu-io -f vmdk -c 'write -P 0x44 4k 4k' "$d/data.vmdk" >/dev/null

python3 - "$d" "$BASE" "$DIFF1" "$DIFF2" <<'EOF'
import sys, uuid
d, base, diff1, diff2 = sys.argv[1:5]
def last_snap(u):  # a fixed modification UUID per image
    return str(uuid.UUID(u)).replace("4000-8000", "4000-9000")
def patch(path, image, link=None):
    with open(path, "r+b") as f:
        f.seek(0x188); f.write(uuid.UUID(image).bytes_le)
        f.seek(0x198); f.write(uuid.UUID(last_snap(image)).bytes_le)
        if link:
            f.seek(0x4C); f.write((4).to_bytes(4, "little"))
            f.seek(0x1A8); f.write(uuid.UUID(link).bytes_le)
            f.seek(0x1B8); f.write(uuid.UUID(last_snap(link)).bytes_le)
patch(f"{d}/base.vdi", base)
patch(f"{d}/Snapshots/{{{diff1}}}.vdi", diff1, base)
patch(f"{d}/Snapshots/{{{diff2}}}.vdi", diff2, diff1)
EOF

# Hardware of one machine state: the SATA controller with the chain's disk on port 0,
# the Writethrough VMDK on port 1, and an empty DVD drive on the IDE controller.
hardware() { # image-uuid
  cat <<EOF
      <Hardware>
        <CPU count="1"/>
        <Memory RAMSize="512"/>
        <StorageControllers>
          <StorageController name="SATA" type="AHCI" PortCount="2" useHostIOCache="false" Bootable="true">
            <AttachedDevice type="HardDisk" hotpluggable="false" port="0" device="0">
              <Image uuid="{$1}"/>
            </AttachedDevice>
            <AttachedDevice type="HardDisk" hotpluggable="false" port="1" device="0">
              <Image uuid="{$VMDK}"/>
            </AttachedDevice>
          </StorageController>
          <StorageController name="IDE" type="PIIX4" PortCount="2" useHostIOCache="true" Bootable="true">
            <AttachedDevice passthrough="false" type="DVD" hotpluggable="false" port="1" device="0"/>
          </StorageController>
        </StorageControllers>
      </Hardware>
EOF
}

{
  cat <<EOF
<?xml version="1.0"?>
<!--
** DO NOT EDIT THIS FILE.
** If you make changes to this file while any VirtualBox related application
** is running, your changes will be overwritten later, without taking effect.
** Use VBoxManage or the VirtualBox Manager GUI to make changes.
-->
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
  <Machine uuid="{$MACHINE}" name="vmsnap-sample" OSType="Ubuntu_64" currentSnapshot="{$SNAP2}" snapshotFolder="Snapshots" lastStateChange="2026-12-07T18:00:00Z">
    <MediaRegistry>
      <HardDisks>
        <HardDisk uuid="{$BASE}" location="base.vdi" format="VDI" type="Normal">
          <HardDisk uuid="{$DIFF1}" location="Snapshots/{$DIFF1}.vdi" format="VDI">
            <HardDisk uuid="{$DIFF2}" location="Snapshots/{$DIFF2}.vdi" format="VDI"/>
          </HardDisk>
        </HardDisk>
        <HardDisk uuid="{$VMDK}" location="data.vmdk" format="VMDK" type="Writethrough"/>
      </HardDisks>
    </MediaRegistry>
    <ExtraData>
      <ExtraDataItem name="GUI/LastCloseAction" value="PowerOff"/>
    </ExtraData>
    <Snapshot uuid="{$SNAP1}" name="Installed" timeStamp="2026-12-07T17:00:00Z">
      <Description>fresh install</Description>
EOF
  hardware "$BASE"
  cat <<EOF
      <Snapshots>
        <Snapshot uuid="{$SNAP2}" name="Before update" timeStamp="2026-12-07T17:30:00Z" stateFile="Snapshots/2026-12-07T17-30-00-000000000Z.sav">
EOF
  hardware "$DIFF1" | sed 's/^/    /'
  cat <<EOF
        </Snapshot>
      </Snapshots>
    </Snapshot>
EOF
  hardware "$DIFF2" | sed 's/^  //'
  cat <<EOF
  </Machine>
</VirtualBox>
EOF
} > "$d/vm.vbox"
ls -lR "$d"
