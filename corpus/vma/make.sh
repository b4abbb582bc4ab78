#!/usr/bin/env bash
# Makes corpus/vma/sample.vma (run from the repo root); `make.sh RAW OUT` writes the raw
# image RAW as the one device `drive-scsi0` of the VMA archive OUT instead (the bench's
# 256 MiB image).
#
# No Proxmox `vma` tool runs here: vma_write.py writes the archive as pve-qemu's
# vma-writer.c does (see its docstring). The devices' contents come from real tools:
# `qemu-img create -f raw` and the `qemu-io` writes listed in devices.tsv; the VM
# configuration is qemu-server.conf beside this script (a Proxmox VM config, as vzdump
# stores it), plus an empty firewall config `qemu-server.fw`.
set -euo pipefail
here=corpus/vma
uuid=6a1e7b2c-3d4f-4a5b-8c6d-7e8f9a0b1c2d
ctime=1700000000

if [ $# -eq 2 ]; then
  python3 "$here/vma_write.py" "$2" --uuid "$uuid" --ctime "$ctime" \
    --config "qemu-server.conf=$here/qemu-server.conf" --device "drive-scsi0=$1"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/fw"
devices=()
while IFS=$'\t' read -r name size writes; do
  case "$name" in '#'* | '') continue ;; esac
  qemu-img create -q -f raw "$tmp/$name.raw" "$size"
  IFS=';' read -ra cmds <<< "$writes"
  for c in "${cmds[@]}"; do
    qemu-io -f raw -c "$c" "$tmp/$name.raw" > /dev/null
  done
  devices+=(--device "$name=$tmp/$name.raw")
done < "$here/devices.tsv"
python3 "$here/vma_write.py" "$here/sample.vma" --uuid "$uuid" --ctime "$ctime" \
  --config "qemu-server.conf=$here/qemu-server.conf" --config "qemu-server.fw=$tmp/fw" \
  --interleave 3 "${devices[@]}"
ls -l "$here"
