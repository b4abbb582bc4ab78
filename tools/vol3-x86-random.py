#!/usr/bin/env python3
"""Times Volatility 3's Intel32e layer on random 4 KiB virtual reads of a real guest.

Usage: vol3-x86-random.py GUEST_DIR [N]
GUEST_DIR is what tools/make-paging-guest.py wrote (core.elf, info-mem.txt,
info-registers.txt). Prints reads/s, for the x86 issue's comparison with vmsnap's
criterion bench (benches/benches/x86.rs). Needs `pip install volatility3`.
"""
import os
import random
import re
import sys
import time

from volatility3.framework import contexts
from volatility3.framework.layers import elf, intel, physical


def main():
    guest = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    regs = open(f"{guest}/info-registers.txt").read()
    cr3 = int(re.search(r"CR3=([0-9a-f]+)", regs).group(1), 16)
    ranges = []
    for line in open(f"{guest}/info-mem.txt"):
        parts = line.split()
        if len(parts) >= 2 and "-" in parts[0]:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            ranges.append((lo, hi))
    pages = [(lo, (hi - lo) // 4096) for lo, hi in ranges]
    total = sum(p for _, p in pages)

    ctx = contexts.Context()
    ctx.config["file.location"] = "file://" + f"{guest}/core.elf"
    ctx.add_layer(physical.FileLayer(ctx, "file", "file"))
    ctx.config["phys.base_layer"] = "file"
    ctx.add_layer(elf.Elf64Layer(ctx, "phys", "phys"))
    ctx.config["virt.memory_layer"] = "phys"
    ctx.config["virt.page_map_offset"] = cr3
    virt = intel.Intel32e(ctx, "virt", "virt")
    ctx.add_layer(virt)

    rng = random.Random(1234)
    addrs = []
    for _ in range(n):
        k = rng.randrange(total)
        for lo, cnt in pages:
            if k < cnt:
                addrs.append(lo + k * 4096)
                break
            k -= cnt
    t = time.perf_counter()
    for a in addrs:
        virt.read(a, 4096, pad=True)
    dt = time.perf_counter() - t
    print(f"volatility3 Intel32e: {n} random 4 KiB reads over {total * 4096 >> 20} MiB "
          f"mapped in {dt:.2f} s = {n / dt:,.0f} reads/s")


if __name__ == "__main__":
    main()
