#!/usr/bin/env bash
# Recipe for corpus/check: crafted images for `vmsnap check`, one per class of issue 21
# (what QEMU refuses, named limits, polyglots, LUKS, wrappers and formats vmsnap does not
# read). qemu-img writes what it can; craft.py patches or builds the rest by hand from the
# documented layouts. expected.tsv holds what `check` must say about each and whether
# `qemu-img convert` opens it; crates/vmsnap-cli/tests/check_corpus.rs reads it.
# Needs qemu-img, python3, gzip, xz, zstd, bzip2 and cryptsetup (cryptsetup-bin).
# LUKS key material, VHD timestamps and UUIDs differ on each run.
set -euo pipefail
cd "$(dirname "$0")"
rm -f -- *.qcow2 *.vhd *.vhdx *.vdi *.vmdk *.iso *.luks *.gz *.xz *.zst *.bz2 *.dmg \
    *.cloop *.bochs *.tar
q() { qemu-img create -q "$@"; }

# 1. Images QEMU refuses.
q -f vpc head-checksum.vhd 1M                       # dynamic: footer copy at 0 and at EOF
q -f vpc -o subformat=fixed fixed-checksum.vhd 64K  # fixed: footer at EOF only
q -f qcow2 data-file-raw.qcow2 64K
# 2. Named limits.
for n in cluster-bits-8 cluster-bits-22 l1-over-limit l1-past-eof; do q -f qcow2 "$n.qcow2" 64K; done
q -f vdi block-size.vdi 1M
q -f vmdk gtes-per-gt.vmdk 1M
q -f vmdk grain-size.vmdk 1M
q -f vpc vhd-block-size.vhd 1M
# 3. A differencing VHDX without its parent locator.
q -f vhdx has-parent.vhdx 1M
python3 craft.py patch

# 5. LUKS: version 1 by qemu-img, version 2 by cryptsetup (a 288 KiB header, 32 KiB payload).
q -f luks --object secret,id=s,data=x -o key-secret=s,cipher-alg=aes-128,iter-time=10 luks1.luks 64K
truncate -s 320K luks2.luks
printf x | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --luks2-metadata-size 16k --luks2-keyslots-size 256k --key-size 256 --offset 576 \
    --key-file - luks2.luks

# 6. Compressed wrappers of a small qcow2 (as cloud images ship).
q -f qcow2 inner.qcow2 64K
gzip -9 -n -c inner.qcow2 > wrapped.qcow2.gz
xz -c inner.qcow2 > wrapped.qcow2.xz
zstd -q -c inner.qcow2 > wrapped.qcow2.zst
bzip2 -c inner.qcow2 > wrapped.qcow2.bz2
rm inner.qcow2

# 4, 6, 7. Built by hand: isohybrid ISOs, dmg trailer, cloop, bochs, tar, a lone seSparse.
python3 craft.py build
