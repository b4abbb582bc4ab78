#!/usr/bin/env bash
# Makes the Parallels VM bundles (.pvm) in corpus/pvs (run from the repo root).
#
# config.pvs is written by the schema of the VM configuration as OpenVZ's prl-disp-service
# and libprlsdk read and write it (root <ParallelsVirtualMachine>, Identification,
# Hardware/Hdd with Enabled, Connected, EmulatedType, SystemName, UserFriendlyName,
# InterfaceType = PRL_MASS_STORAGE_INTERFACE_TYPE, StackIndex, Size in MiB), and
# Snapshots.xml by the ParallelsSavedStates layout libvzctl's src/lib/snapshot.c writes
# (no tool here writes either). The .hdd disk bundles come from corpus/hdd/bundle.sh:
# DiskDescriptor.xml by QEMU's docs/interop/prl-xml.txt, the .hds images by qemu-img and
# qemu-io. A VM snapshot's GUID is its disks' snapshot GUID, as Parallels makes it.
#
#   plain.pvm      two disks on different buses (sata0:0, scsi0:1), a host device Hdd
#                  (listed, never opened) and a CD-ROM
#   snapshots.pvm  one disk with a snapshot tree of two (Snapshots.xml); each snapshot's
#                  Snapshots/{GUID}.mem and .sav are placeholders (their layout is not
#                  public: vmsnap lists them and never reads them), the first has a .pvc
#   encrypted.pvm  its disk has an encryption key id (Hdd/Encryption/KeyId): not opened
#   absolute.pvm   its disk's SystemName is the absolute path on the Mac that wrote it, as
#                  real configurations have it (found by its trailing names under vm-dir)
set -euo pipefail

source corpus/hdd/bundle.sh

S1='{8c6b7a51-3f0e-4d2a-9b1c-2e4f6a8b0c11}'
S2='{a1d2c3b4-5e6f-4a7b-8c9d-0e1f2a3b4c22}'

# bundle DIR P GUIDS… : a 4 MiB .hdd bundle DIR with one expanding image per GUID (the
# first the base, each next one's parent the previous, the last TOP); each image gets its
# own pattern at its own offset (image i: 64 KiB of 0xPi at i MiB + 64 KiB * i).
bundle() {
  local dir=$1 p=$2 base name parent=$NULL i=0 images='' shots=''
  shift 2
  base=$(basename "$dir")
  mkdir -p "$dir"
  for g in "$@"; do
    name="$base.0.$g.hds"
    hds "$dir/$name" 4M "write -P 0x$p$i $((i * 1048576 + i * 65536)) 64k"
    images+="$(image "$g" Compressed "$name")"$'\n'
    shots+="$(shot "$g" "$parent")"$'\n'
    parent=$g
    i=$((i + 1))
  done
  descriptor "$dir" 8192 "$(storage 0 8192 "$images")" "$shots"
}

# hdd ID INTERFACE STACK SYSTEMNAME [EXTRA]: one Hdd element (EXTRA: more children).
hdd() {
  cat <<XML
      <Hdd id="$1" dyn_lists="Partition 0">
         <Index>$1</Index>
         <Enabled>1</Enabled>
         <Connected>1</Connected>
         <EmulatedType>${6:-1}</EmulatedType>
         <SystemName>$4</SystemName>
         <UserFriendlyName>$4</UserFriendlyName>
         <Remote>0</Remote>
         <InterfaceType>$2</InterfaceType>
         <StackIndex>$3</StackIndex>
         <DiskType>1</DiskType>
         <Size>4</Size>
         <Splitted>0</Splitted>
         <CompatLevel>level2</CompatLevel>${5:-}
      </Hdd>
XML
}

# config DIR NAME UUID DEVICES: DIR/config.pvs.
config() {
  cat > "$1/config.pvs" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<ParallelsVirtualMachine dyn_lists="VirtualAppliance 0" schemaVersion="1.0">
   <AppVersion>18.1.1-53328</AppVersion>
   <ValidRc>0</ValidRc>
   <Identification dyn_lists="">
      <VmUuid>$3</VmUuid>
      <SourceVmUuid>$3</SourceVmUuid>
      <VmName>$2</VmName>
      <VmFilesLocation>1</VmFilesLocation>
      <VmCreationDate>2024-05-06 07:08:09</VmCreationDate>
   </Identification>
   <Security>
      <AccessControlList dyn_lists=""/>
      <Owner></Owner>
      <IsOwner>0</IsOwner>
   </Security>
   <Settings dyn_lists="">
      <General>
         <OsType>9</OsType>
         <OsNumber>2321</OsNumber>
         <VmDescription></VmDescription>
      </General>
   </Settings>
   <Hardware dyn_lists="Fdd 0 CdRom 1 Hdd 2 NetworkAdapter 1">
      <Cpu>
         <Number>2</Number>
      </Cpu>
      <Memory>
         <RAM>2048</RAM>
      </Memory>
$4
   </Hardware>
</ParallelsVirtualMachine>
XML
}

d=corpus/pvs
rm -rf "$d"/*.pvm "$d/fuzz-seeds"

v=$d/plain.pvm
mkdir -p "$v"
bundle "$v/system.hdd" 1 "$TOP"
bundle "$v/data.hdd" 2 "$TOP"
config "$v" "Plain VM" '{3e8f6c2a-1b4d-4e5f-9a7b-6c8d0e2f4a01}' "$(hdd 0 2 0 system.hdd)
$(hdd 1 1 1 data.hdd)
$(hdd 2 0 1 /dev/disk2 '' 0)
      <CdRom id=\"0\">
         <Enabled>1</Enabled>
         <EmulatedType>1</EmulatedType>
         <SystemName>ubuntu.iso</SystemName>
         <InterfaceType>2</InterfaceType>
         <StackIndex>1</StackIndex>
      </CdRom>"

v=$d/snapshots.pvm
mkdir -p "$v/Snapshots"
bundle "$v/harddisk.hdd" 3 "$S1" "$S2" "$TOP"
config "$v" "Snapshot VM" '{5a7c9e1b-3d5f-4a6b-8c0d-2e4f6a8b0c02}' "$(hdd 0 2 0 harddisk.hdd)"
cat > "$v/Snapshots.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<ParallelsSavedStates>
 <SavedStateItem guid="">
  <Name></Name>
  <DateTime></DateTime>
  <Creator></Creator>
  <ScreenShot></ScreenShot>
  <Description></Description>
  <SavedStateItem guid="$S1">
   <Name>Before update</Name>
   <DateTime>2024-05-07 10:00:00</DateTime>
   <Creator>analyst</Creator>
   <ScreenShot></ScreenShot>
   <Description><![CDATA[clean install]]></Description>
   <SavedStateItem guid="$S2" current="yes">
    <Name>After update</Name>
    <DateTime>2024-05-08 11:30:00</DateTime>
    <Creator>analyst</Creator>
    <ScreenShot></ScreenShot>
    <Description><![CDATA[]]></Description>
   </SavedStateItem>
  </SavedStateItem>
 </SavedStateItem>
</ParallelsSavedStates>
XML
# The first snapshot also keeps the configuration as it was then (.pvc, the same schema).
cp "$v/config.pvs" "$v/Snapshots/$S1.pvc"
for g in "$S1" "$S2"; do
  for ext in mem sav; do
    printf 'placeholder %s: the layout of a Parallels .%s file is not public; vmsnap lists it, never reads it\n' "$g" "$ext" > "$v/Snapshots/$g.$ext"
  done
done

v=$d/encrypted.pvm
mkdir -p "$v"
bundle "$v/harddisk.hdd" 4 "$TOP"
config "$v" "Encrypted VM" '{7b9d1f3a-5c7e-4b8d-9e0f-1a2b3c4d5e03}' "$(hdd 0 2 0 harddisk.hdd '
         <Encryption>
            <KeyId>{0f1e2d3c-4b5a-4697-8877-665544332211}</KeyId>
         </Encryption>')"

v=$d/absolute.pvm
mkdir -p "$v"
bundle "$v/harddisk.hdd" 5 "$TOP"
config "$v" "Absolute VM" '{9d1f3b5c-7e9a-4c0d-8e1f-3a4b5c6d7e04}' "$(hdd 0 0 0 '/Users/alice/Parallels/Absolute VM.pvm/harddisk.hdd')"

# The configurations seed the fuzz target (the bundles are directories, which it skips).
mkdir -p "$d/fuzz-seeds/pvs"
for b in plain snapshots encrypted absolute; do
  cp "$d/$b.pvm/config.pvs" "$d/fuzz-seeds/pvs/$b.pvs"
done
du -a "$d"
