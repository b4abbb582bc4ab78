#!/usr/bin/env python3
"""Cuts a small ELF64 core out of the real 4-level guest of tools/make-paging-guest.py
(target/paging/pc-4level/core.elf, QEMU's `dump-guest-memory` of a booted Debian cloud
kernel): the CPU notes as QEMU wrote them (so the x86 layer stacks with the recorded CR3),
the page-table pages the walks of a few addresses read, and the 4 KiB pages those
addresses land in. Everything else is left out: absent guest-physical pages are holes.

The addresses:
  banner      the kernel's `linux_banner` in the kernel-image mapping (2 MiB page): the
              first "Linux version …\\n" string in physical memory that QEMU's paging core
              (core-paging.elf, `dump-guest-memory -p`) maps at 0xffffffff80000000 or above
  direct-map  the same byte through the direct map of physical memory (0xffff888000000000)
  rip         the instruction the vCPU was stopped at (RIP of `info registers`)
  rsp         its stack pointer (a vmalloc'd stack: 4 KiB pages, a walk down to the PTE)
  null        address 0 (not mapped: the walk stops at the PML4E)

The page walks are vmsnap's own (`vmsnap translate --json` on the full core); the physical
answers written beside the slice come from QEMU's paging core, not from vmsnap.

Outputs: OUT (default corpus/elf/guest-slice.elf) and OUT with `.txt` for `.elf`: one line
per address, `name address physical` (physical `unmapped` when QEMU maps nothing there).

Usage: tools/make-guest-slice.py VMSNAP [GUEST_DIR] [OUT]
"""
import json
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = 4096
KERNEL_IMAGE = 0xFFFFFFFF80000000
DIRECT_MAP = (0xFFFF888000000000, 0xFFFFC88000000000)


def phdrs(data):
    """(type, offset, vaddr, paddr, filesz, memsz) of every program header (ELF64 LE)."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE core"
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    out = []
    for i in range(phnum):
        t, _flags, off, va, pa, fs, ms, _al = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        out.append((t, off, va, pa, fs, ms))
    return out


def phys_read(core, loads, pa, n):
    for _t, off, _va, lpa, fs, _ms in loads:
        if lpa <= pa and pa + n <= lpa + fs:
            return core[off + pa - lpa: off + pa - lpa + n]
    raise SystemExit(f"make-guest-slice: physical {pa:#x}+{n} is not in the core")


def qemu_virtual_to_physical(paging_loads, va):
    """QEMU's answer from its paging core: the PT_LOAD covering `va`, or None."""
    for _t, _off, lva, lpa, _fs, ms in paging_loads:
        if lva <= va < lva + ms:
            return lpa + va - lva
    return None


def qemu_virtual_of(paging_loads, pa, lo, hi):
    """The lowest virtual address in [lo, hi) that QEMU's paging core maps to `pa`."""
    best = None
    for _t, _off, lva, lpa, _fs, ms in paging_loads:
        if lo <= lva < hi and lpa <= pa < lpa + ms:
            va = lva + pa - lpa
            best = va if best is None else min(best, va)
    return best


def walk(vmsnap, core_path, va):
    out = subprocess.run([vmsnap, "translate", "--json", core_path, f"{va:#x}"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["walk"]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    vmsnap = sys.argv[1]
    guest = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target/paging/pc-4level")
    out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "corpus/elf/guest-slice.elf")
    core_path = os.path.join(guest, "core.elf")
    core = open(core_path, "rb").read()
    headers = phdrs(core)
    loads = [h for h in headers if h[0] == 1]
    notes = [h for h in headers if h[0] == 4]
    paging_loads = [h for h in phdrs(open(os.path.join(guest, "core-paging.elf"), "rb").read())
                    if h[0] == 1]

    banner = None
    for _t, off, _va, pa, fs, _ms in loads:
        for m in re.finditer(rb"Linux version [^\0]*\n\0", core[off: off + fs]):
            hit = pa + m.start()
            va = qemu_virtual_of(paging_loads, hit, KERNEL_IMAGE, 1 << 64)
            if va is not None:
                banner = (hit, va)
                break
        if banner:
            break
    if banner is None:
        raise SystemExit("make-guest-slice: no linux_banner in the kernel image")
    regs = open(os.path.join(guest, "info-registers.txt")).read()

    def reg(name):
        return int(re.search(rf"\b{name} ?=([0-9a-f]+)", regs).group(1), 16)

    addresses = [
        ("banner", banner[1]),
        ("direct-map", qemu_virtual_of(paging_loads, banner[0], *DIRECT_MAP)),
        ("rip", reg("RIP")),
        ("rsp", reg("RSP")),
        ("null", 0),
    ]
    pages = set()
    lines = []
    for name, va in addresses:
        if va is None:
            raise SystemExit(f"make-guest-slice: QEMU maps no {name} address")
        w = walk(vmsnap, core_path, va)
        pages.update(int(s["entry_address"], 16) // PAGE * PAGE for s in w["steps"])
        qemu = qemu_virtual_to_physical(paging_loads, va)
        ours = int(w["physical"], 16) if w["result"] == "mapped" else None
        if ours != qemu:
            raise SystemExit(f"make-guest-slice: {name} {va:#x}: vmsnap {ours}, QEMU {qemu}")
        if ours is not None:
            pages.add(ours // PAGE * PAGE)
        lines.append(f"{name} {va:#x} {'unmapped' if qemu is None else hex(qemu)}\n")

    # Adjacent pages become one PT_LOAD.
    runs = []
    for p in sorted(pages):
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1][1] += PAGE
        else:
            runs.append([p, PAGE])
    note_bytes = b"".join(core[off: off + fs] for _t, off, _va, _pa, fs, _ms in notes)
    phnum = 1 + len(runs)
    data_at = 64 + 56 * phnum
    data_at += len(note_bytes)
    data_at = (data_at + PAGE - 1) // PAGE * PAGE
    ehdr = bytearray(core[:64])
    struct.pack_into("<QQQ", ehdr, 24, 0, 64, 0)  # e_entry, e_phoff, e_shoff
    struct.pack_into("<HHHHHH", ehdr, 52, 64, 56, phnum, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56 * phnum, 0, 0, len(note_bytes), len(note_bytes), 0)
    body = b""
    for pa, n in runs:
        ph += struct.pack("<IIQQQQQQ", 1, 0, data_at + len(body), pa, pa, n, n, 0)
        body += phys_read(core, loads, pa, n)
    image = bytes(ehdr) + ph + note_bytes
    image += b"\0" * (data_at - len(image)) + body
    with open(out, "wb") as f:
        f.write(image)
    with open(re.sub(r"\.elf$", "", out) + ".txt", "w") as f:
        f.write("# name, virtual address, physical address per QEMU's paging core "
                "(tools/make-guest-slice.py)\n")
        f.writelines(lines)
    print(f"make-guest-slice: {out}: {len(image)} bytes, {len(pages)} pages in {len(runs)} PT_LOADs")


if __name__ == "__main__":
    main()
