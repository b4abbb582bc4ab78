#!/usr/bin/env python3
"""Writes the structured-mode seeds of `stack` (a command line around a committed image)
and of `check_streaming` (claims and chunk sizes around a committed image), encoded as
`arbitrary` 1.x decodes the harnesses' descriptions (crates/vmsnap-fuzzing/src/command.rs
and check.rs): enum variant k of n is a u32 with (v * n) >> 32 == k, a Vec is a `1` byte
before each element and a `0` after the last, integers are little-endian. Run from the
repository root; rewrites corpus/raw/fuzz-seeds/stack/structured-* and
corpus/check/fuzz-seeds/check_streaming/structured-*."""
import os
import struct

PREFIX = b"\xf5Zs"


def variant(k, n):
    return struct.pack("<I", -(-(k << 32) // n))


def vec(items):
    return b"".join(b"\x01" + i for i in items) + b"\x00"


def key_declared(i):
    return variant(0, 2) + bytes([i])


def value(kind, payload):
    return variant(kind, 5) + payload


def command(options, external, zeros, layer, from_file, mapped):
    out = vec([k + v for k, v in options])
    out += bytes([external, zeros])
    out += b"\x00" if layer is None else b"\x01" + key_declared(layer)
    return out + bytes([from_file, mapped])


def name(k, i):  # Name: Known(u8), Alias(bool), Shouted(u8), Text(String)
    return variant(k, 4) + bytes([i])


def claims(chunks, expected, allow, gap=None):
    out = vec([struct.pack("<H", c) for c in chunks])
    out += b"\x00" if expected is None else b"\x01" + vec(expected)
    out += vec([vec(a) for a in allow])
    return out + (b"\x00" if gap is None else b"\x01" + struct.pack("<BI", *gap))


def write(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for f in os.listdir(directory):
        if f.startswith("structured-"):
            os.remove(os.path.join(directory, f))
    for i, (desc, image) in enumerate(seeds):
        data = PREFIX + desc + open(image, "rb").read()
        assert len(data) <= 64 << 10, image
        open(os.path.join(directory, f"structured-{i}"), "wb").write(data)


cr3 = (key_declared(0), value(1, struct.pack("<Q", 0x1000)))
size = (key_declared(0), value(2, struct.pack("<HB", 4, 1)))
write("corpus/raw/fuzz-seeds/stack", [
    (command([], 1, 1, None, 1, 1), "corpus/qcow2/chain-top.qcow2"),
    (command([], 2, 0, 1, 1, 0), "corpus/qcow2/chain-top.qcow2"),
    (command([], 1, 1, 2, 0, 0), "corpus/vmdk/split.vmdk"),
    (command([], 0, 0, 3, 0, 0), "corpus/vmdk/splitflat.vmdk"),
    (command([], 2, 1, None, 1, 1), "corpus/qcow2/datafile.qcow2"),
    (command([cr3], 0, 0, 2, 1, 1), "corpus/elf/guest-slice.elf"),
    (command([size], 0, 0, None, 0, 0), "corpus/elf/guest-slice.elf"),
    (command([], 0, 0, 1, 1, 0), "corpus/elf/small.elf"),
])
write("corpus/check/fuzz-seeds/check_streaming", [
    (claims([1, 512], [name(0, 3)], []), "corpus/check/head-checksum.vhd"),
    (claims([4096], [name(1, 1), name(2, 5)], [[name(0, 1), name(0, 7)]]),
     "corpus/check/disk.tar"),
    (claims([], [name(0, 9), name(1, 0)], [[name(1, 1), name(2, 2)]]),
     "corpus/check/trailer.dmg"),
    (claims([7, 65535], None, [[name(0, 4), name(0, 5)], [name(2, 6)]]),
     "corpus/check/wrapped.qcow2.gz"),
    (claims([3], [name(2, 12)], []), "corpus/check/sample.cloop"),
    (claims([100], [name(0, 2)], [[name(0, 0)]]), "corpus/check/block-size.vdi"),
    (claims([4096, 1], None, [], (20, 1024)), "corpus/check/sample.bochs"),
    (claims([65535], None, [], (4, 0)), "corpus/check/trailer.dmg"),
    (claims([512], [name(0, 1)], [], (63, 9999)), "corpus/check/head-checksum.vhd"),
])
