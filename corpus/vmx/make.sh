#!/usr/bin/env bash
# Regenerates the VMware VM samples (run from the repository root). No VMware product runs
# here: the configuration files are written from VMware's documented dictionary format
# (`key = "value"`, `.encoding`, `|XX` escapes) as Workstation writes them; the disks are
# made by qemu-img/qemu-io; the memory files are byte copies of small corpus/vmware
# samples (written from the documented checkpoint format by that crate's builder).
#
#   vm.vmx           the VM: scsi0:0 at the top of a delta chain, sata0:0 an independent
#                    twoGbMaxExtentSparse disk, a CD-ROM image and a disk not present
#                    (listed, not opened), suspended (checkpoint.vmState = vm.vmss)
#   vm.vmsd          two snapshots: "Installed" (disk.vmdk, memory in a .vmem beside its
#                    .vmsn) and uid 2, whose display name has a '/' so its layer name is
#                    its uid (memory embedded in its .vmsn)
#   disk.vmdk        monolithicSparse base  <- disk-000001.vmdk <- disk-000002.vmdk (deltas
#                    made with qemu-img create -b … -F vmdk), each with its own writes
#   data.vmdk        twoGbMaxExtentSparse (descriptor + data-s001.vmdk)
#   vm.vmss/.vmem    corpus/vmware/plain.vmss and plain.vmem
#   vm-Snapshot1.vmsn/.vmem   corpus/vmware/padded.vmsn and padded.vmem
#   vm-Snapshot2.vmsn         corpus/vmware/embedded.vmss
#   encrypted.vmx    an encrypted VM's configuration: a key safe and encrypted data
#                    with fake values (nothing decrypts)
set -euo pipefail
src=corpus/vmware
d=corpus/vmx
cd "$d"
rm -f -- *.vmdk *.vmx *.vmsd *.vmss *.vmsn *.vmem
w() { qemu-io -f vmdk "${@:2}" "$1" >/dev/null; }

qemu-img create -q -f vmdk -o subformat=monolithicSparse disk.vmdk 8M
w disk.vmdk -c "write -P 0x11 0 64k" -c "write -P 0x12 1M 4k" -c "write -P 0x13 8188k 4k"
# Snapshot 1 freezes disk.vmdk; writes go to its delta.
qemu-img create -q -f vmdk -b disk.vmdk -F vmdk disk-000001.vmdk 8M
w disk-000001.vmdk -c "write -P 0x21 32k 64k" -c "write -P 0x22 4M 128k"
# Snapshot 2 freezes disk-000001.vmdk.
qemu-img create -q -f vmdk -b disk-000001.vmdk -F vmdk disk-000002.vmdk 8M
w disk-000002.vmdk -c "write -P 0x31 0 4k" -c "write -P 0x32 4M 4k" -c "write -z 1M 4k"

qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse data.vmdk 8M
w data.vmdk -c "write -P 0x41 512k 64k" -c "write -P 0x42 7M 4k"

cat "../../$src/plain.vmss" > vm.vmss
cat "../../$src/plain.vmem" > vm.vmem
cat "../../$src/padded.vmsn" > vm-Snapshot1.vmsn
cat "../../$src/padded.vmem" > vm-Snapshot1.vmem
cat "../../$src/embedded.vmss" > vm-Snapshot2.vmsn

cat > vm.vmx <<'VMX'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "vmsnap |22sample|22 VM"
guestOS = "ubuntu-64"
memsize = "256"
numvcpus = "1"
uuid.bios = "56 4d 6e 8a 1b 2c 3d 4e-5f 60 71 82 93 a4 b5 c6"
# Disks: the current state is the top of the chain.
scsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "disk-000002.vmdk"
scsi0:0.deviceType = "scsi-hardDisk"
sata0.present = "TRUE"
sata0:0.present = "TRUE"
sata0:0.fileName = "data.vmdk"
sata0:0.mode = "independent-persistent"
ide1:0.present = "TRUE"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "ubuntu-22.04.iso"
ide1:0.startConnected = "FALSE"
nvme0.present = "TRUE"
nvme0:0.present = "FALSE"
nvme0:0.fileName = "spare.vmdk"
ethernet0.present = "TRUE"
ethernet0.connectionType = "nat"
ethernet0.virtualDev = "e1000"
checkpoint.vmState = "vm.vmss"
VMX

cat > vm.vmsd <<'VMSD'
.encoding = "UTF-8"
snapshot.lastUID = "2"
snapshot.current = "2"
snapshot0.uid = "1"
snapshot0.filename = "vm-Snapshot1.vmsn"
snapshot0.displayName = "Installed"
snapshot0.description = "clean install"
snapshot0.createTimeHigh = "399012"
snapshot0.createTimeLow = "-1498542342"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "disk.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot1.uid = "2"
snapshot1.filename = "vm-Snapshot2.vmsn"
snapshot1.parent = "1"
snapshot1.displayName = "pre-update 1/2"
snapshot1.createTimeHigh = "399013"
snapshot1.createTimeLow = "12345678"
snapshot1.numDisks = "1"
snapshot1.disk0.fileName = "disk-000001.vmdk"
snapshot1.disk0.node = "scsi0:0"
snapshot.numSnapshots = "2"
VMSD

# Fake key material: a phrase-wrapped pair in VMware's KeySafe syntax, base64 of zeros.
salt=$(head -c 16 /dev/zero | base64 -w0)
blob=$(head -c 64 /dev/zero | base64 -w0)
data=$(head -c 96 /dev/zero | base64 -w0)
cat > encrypted.vmx <<VMX
.encoding = "UTF-8"
displayName = "encrypted sample"
encryption.keySafe = "vmware:key/list/(pair/(phrase/sample-id/pass2key%3dPBKDF2-HMAC-SHA-256%3acipher%3dAES-256%3arounds%3d10000%3asalt%3d${salt//=/%3d},HMAC-SHA-256,${blob//=/%3d}))"
encryption.data = "${data}"
VMX
ls -l
