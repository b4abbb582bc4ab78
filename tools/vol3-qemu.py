#!/usr/bin/env python3
"""Times Volatility 3's QEMU layer: open a QEMU stream, then read up to 1 GiB of it in
1 MiB reads. Usage: vol3-qemu.py STREAM. Needs `pip install volatility3`; used by
`cargo xtask bench-peers` when $VOL3_PYTHON is set."""
import os, sys, time
from volatility3.framework import contexts
from volatility3.framework.layers import physical, qemu
path = os.path.abspath(sys.argv[1])
ctx = contexts.Context()
ctx.config["file.location"] = "file://" + path
ctx.add_layer(physical.FileLayer(ctx, "file", "file"))
ctx.config["q.base_layer"] = "file"
t = time.perf_counter()
layer = qemu.QemuSuspendLayer(ctx, "q", "q")
ctx.add_layer(layer)
t_open = time.perf_counter() - t
end = min(layer.maximum_address + 1, 1 << 30)
t = time.perf_counter()
off = 0
while off < end:
    n = min(1 << 20, end - off)
    layer.read(off, n, pad=True)
    off += n
dt = time.perf_counter() - t
print(f"open {t_open:.2f} s; read {end >> 20} MiB in {dt:.2f} s = {end / dt / 1e9:.3f} GB/s")
