#!/usr/bin/env python3
"""The Python package's read speed beside the Rust reader on the same layer.

Usage: bench-python.py [FILE] [--layer SPEC] [--mib N] [--random N]
Default FILE: target/paging/pc-4level/stream.bin (a real guest, `cargo xtask
paging-guests`), else corpus/qemu/q35-64m.qevm. Reads the first N MiB (default 1024) of the
layer (default: the guest-physical one) front to back in 1 MiB reads three ways — from Rust
alone (`bench_sequential`, the reader's own rate), `readinto` into one reused buffer, and
`read()` (a new bytes object per read) — then N random 4 KiB reads (default 300000) with
`readinto_at` and with `read_at`. Build the wheel optimised first:
`VMSNAP_PY_PROFILE=release bash tools/python-venv.sh`. Results go to docs/performance.md.
"""
import argparse
import os
import random
import sys
import time

import vmsnap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    guest = os.path.join(ROOT, "target", "paging", "pc-4level", "stream.bin")
    ap.add_argument("file", nargs="?", default=guest if os.path.exists(guest) else os.path.join(ROOT, "corpus", "qemu", "q35-64m.qevm"))
    ap.add_argument("--layer")
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--random", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    stack = vmsnap.open(a.file)
    if a.layer:
        layer = stack.layer(a.layer)
    else:
        mem = [l for l in stack.layers if l.space == "guest_physical"]
        layer = mem[-1] if mem else stack.default
    size = min(layer.size, a.mib << 20)
    chunk = 1 << 20
    print(f"{a.file}: layer {layer.name} ({layer.space}), first {size >> 20} MiB")

    def best(f):
        return min(f() for _ in range(a.runs))

    def rust():
        n, secs = layer._native.bench_sequential(chunk, size)
        assert n == size
        return secs

    def py_readinto():
        buf = bytearray(chunk)
        t = time.perf_counter()
        pos = 0
        while pos < size:
            pos += layer.readinto_at(pos, buf if size - pos >= chunk else memoryview(buf)[: size - pos])
        return time.perf_counter() - t

    def py_read():
        layer.seek(0)
        t = time.perf_counter()
        pos = 0
        while pos < size:
            pos += len(layer.read(min(chunk, size - pos)))
        return time.perf_counter() - t

    r = best(rust)
    rows = [("Rust reader (in process, 1 MiB reads)", r)]
    rows.append(("Python readinto, 1 MiB", best(py_readinto)))
    rows.append(("Python read(), 1 MiB", best(py_read)))
    for name, secs in rows:
        rate = size / secs / (1 << 20)
        print(f"  {name:<40} {rate:9.0f} MiB/s  {r / secs * 100:5.1f}% of Rust")

    rng = random.Random(1)
    pages = max(size // 4096, 1)
    offsets = [rng.randrange(pages) * 4096 for _ in range(a.random)]
    buf = bytearray(4096)

    def rand_readinto():
        t = time.perf_counter()
        ri = layer.readinto_at
        for o in offsets:
            ri(o, buf)
        return time.perf_counter() - t

    def rand_read():
        t = time.perf_counter()
        rd = layer.read_at
        for o in offsets:
            rd(o, 4096)
        return time.perf_counter() - t

    for name, f in (("random 4 KiB readinto_at", rand_readinto), ("random 4 KiB read_at", rand_read)):
        secs = best(f)
        print(f"  {name:<40} {a.random / secs / 1000:9.0f} k reads/s")


if __name__ == "__main__":
    sys.exit(main())
