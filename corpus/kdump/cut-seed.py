#!/usr/bin/env python3
"""Cuts a small fuzz seed from a raw kdump file QEMU wrote: the same header, sub header
and notes, max_mapnr cut to the first N page frames (one block per bitmap), their
descriptors and page data, with the data offsets moved to where the data now lies.
Usage: cut-seed.py IN OUT N"""
import struct
import sys

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = open(src, "rb").read()
bs, sub, bmb, mapnr = struct.unpack_from("<IIII", d, 428)
assert n <= bs * 8
bm1 = (1 + sub) * bs
half = bmb * bs // 2
b1, b2 = d[bm1:bm1 + half], d[bm1 + half:bm1 + 2 * half]
desc = (1 + sub + bmb) * bs
dumped_before = lambda pfn: sum(1 for i in range(pfn) if b2[i // 8] >> (i % 8) & 1)
kept = [i for i in range(n) if b2[i // 8] >> (i % 8) & 1]
new_desc = (1 + sub + 2) * bs
data_at = new_desc + 24 * len(kept)
descs, data, moved = [], b"", {}
zero_off = desc + 24 * sum(1 for i in range(mapnr) if b2[i // 8] >> (i % 8) & 1)
# The shared zero page first, as QEMU writes it.
data += d[zero_off:zero_off + bs]
moved[zero_off] = data_at
for pfn in kept:
    off, size, flags, pflags = struct.unpack_from("<QIIQ", d, desc + 24 * dumped_before(pfn))
    if off not in moved:
        moved[off] = data_at + len(data)
        data += d[off:off + size]
    descs.append(struct.pack("<QIIQ", moved[off], size, flags, pflags))
head = bytearray(d[:(1 + sub) * bs])
struct.pack_into("<II", head, 436, 2, n)
struct.pack_into("<Q", head, bs + 96, n)
bitmap = lambda b: bytes(b[: (n + 7) // 8]).ljust(bs, b"\0")
open(out, "wb").write(bytes(head) + bitmap(b1) + bitmap(b2) + b"".join(descs) + data)
