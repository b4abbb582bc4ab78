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
out=corpus/elf
python3 "$out/make-vbox.py" corpus/elf/small.elf "$out/vbox-small.elf"
python3 "$out/make-vbox.py" corpus/elf/guest-slice.elf "$out/vbox-slice.elf"
ls -l "$out"
