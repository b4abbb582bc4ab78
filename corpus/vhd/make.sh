#!/usr/bin/env bash
# Regenerates the VHD samples (run from the repo root). UUIDs and timestamps differ on
# each run, the layout does not. QEMU's dynamic VHDs have 2 MiB blocks, so a sample with
# data would exceed the corpus size cap: the tests make those at test time with the same
# commands (see crates/vmsnap-vhd/tests/qemu.rs); these are the small ones.
set -euo pipefail
d=corpus/vhd
rm -f "$d"/*.vhd
w() { qemu-io -f vpc "$@" >/dev/null; }

# Dynamic, empty, 8 MiB request rounded up by CHS (creator "qemu": CHS size).
qemu-img create -q -f vpc -o subformat=dynamic "$d/dynamic-empty.vhd" 8M

# Dynamic with force_size (creator "qem2": current_size), 5 MiB, empty.
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$d/dynamic-force-empty.vhd" 5M

# Fixed: raw data plus one footer at EOF (qemu's probe calls this raw; use -f vpc).
qemu-img create -q -f vpc -o subformat=fixed "$d/fixed.vhd" 200K
w -c 'write -P 0x77 0 4k' -c 'write -P 0x88 100k 3k' "$d/fixed.vhd"

# Fixed with force_size, 192 KiB.
qemu-img create -q -f vpc -o subformat=fixed,force_size=on "$d/fixed-force.vhd" 192K
w -c 'write -P 0x99 64k 64k' "$d/fixed-force.vhd"
