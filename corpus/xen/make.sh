#!/usr/bin/env bash
# Writes the Xen dump-core samples (run from the repository root). No Xen runs here: the
# crate's builder (feature `builder`, crates/vmsnap-xen/src/builder.rs) writes them by the
# documented layout (Xen's docs/misc/dump-core-format.txt, libxenguest's xg_core.c) from
# the ELF cores QEMU wrote in corpus/elf, whose memory is each sample's oracle:
#
#   small-hvm.xen     HVM (.xen_pfn) of corpus/elf/small.elf (two pages at 0x1234000)
#   small-pv.xen      PV (.xen_p2m, gmfn = pfn + 0x100000) of the same, with two unused
#                     (~0) entries and zero pages at the end, as a live dump that lost
#                     pages writes
#   slice-hvm.xen     HVM of corpus/elf/guest-slice.elf (a booted guest's page-table and
#                     kernel pages with its vCPU: CR3 0x2a10000, so the x86 layer stacks)
#   core-hvm.xen.gz   HVM of corpus/elf/core.elf.gz (32 MiB + 2 MiB at 4 GiB), gzipped
#   core-pv.xen.gz    PV of the same, gzipped
set -euo pipefail
out=corpus/xen
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make() { cargo run -q -p vmsnap-xen --example make_xen_core -- "$@"; }
make corpus/elf/small.elf "$out/small-hvm.xen" hvm
make corpus/elf/small.elf "$out/small-pv.xen" pv 2
make corpus/elf/guest-slice.elf "$out/slice-hvm.xen" hvm
make corpus/elf/core.elf.gz "$tmp/core-hvm.xen" hvm
make corpus/elf/core.elf.gz "$tmp/core-pv.xen" pv
gzip -9n -c "$tmp/core-hvm.xen" > "$out/core-hvm.xen.gz"
gzip -9n -c "$tmp/core-pv.xen" > "$out/core-pv.xen.gz"
ls -l "$out"
