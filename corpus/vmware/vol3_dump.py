#!/usr/bin/env python3
"""Dump the guest-physical bytes Volatility 3's VmwareLayer gives for a .vmem (with its
.vmss/.vmsn beside it), for vmsnap's cross-check test.

usage: vol3_dump.py FILE.vmem OUT.raw   -> prints JSON {"stacked": class, "size": N}
Volatility 3 only stacks on a file named *.vmem; when it does not stack (or fails), the
JSON says so and OUT is not written.
"""
import json
import logging
import sys

from volatility3.framework import contexts, interfaces
from volatility3.framework.layers import physical, vmware


def main():
    vmem, out = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.ERROR)
    ctx = contexts.Context()
    path = interfaces.configuration.path_join("cross", "base")
    ctx.config[interfaces.configuration.path_join(path, "location")] = "file://" + vmem
    ctx.layers.add_layer(physical.FileLayer(ctx, path, "base"))
    try:
        layer = vmware.VmwareStacker.stack(ctx, "base")
    except Exception as e:  # noqa: BLE001 - report whatever Volatility raised
        print(json.dumps({"stacked": None, "error": f"{type(e).__name__}: {e}"}))
        return
    if layer is None:
        print(json.dumps({"stacked": None, "error": "stacker returned None"}))
        return
    size = layer.maximum_address + 1
    with open(out, "wb") as f:
        chunk = 1 << 20
        off = 0
        while off < size:
            n = min(chunk, size - off)
            f.write(layer.read(off, n, pad=True))
            off += n
    print(json.dumps({"stacked": type(layer).__name__, "size": size}))


if __name__ == "__main__":
    main()
