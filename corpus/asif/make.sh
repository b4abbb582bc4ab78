#!/usr/bin/env bash
# Makes the ASIF samples in corpus/asif/ (run from the repo root); `make.sh RAW OUT` writes
# the raw image RAW as OUT in ASIF instead (the bench's 256 MiB image).
#
# No tool that writes ASIF runs here (only macOS 26's diskutil does), so the builder below
# writes the layout dissect.hypervisor's reader (disk/asif.py, c_asif.py) and the notes at
# https://github.com/huven/asif-format describe: a big-endian header, two directories (the
# higher version active), one table per range of the disk in chunk groups of 4 × block
# size data entries and one bitmap entry, data chunks in state 01 (written) or 11 (partly
# written, the group bitmap holding 2 bits a sector), a metadata block (`meta` header and
# an XML property list) in the reserved area past the virtual size.
#
#   disk.asif   64 KiB chunks, 1 GiB in three tables (max 2 GiB, six): written chunks,
#               unwritten ones, a partly written chunk, two chunks stored one after the
#               other, a written chunk of zeros, a chunk in the second group of a table,
#               one in the second table, the disk's last chunk; the active directory is
#               the second (the first, older, names no tables); metadata.
#   apple.asif  Apple's geometry (1 MiB chunks, 512-byte sectors, maximum 4 PiB): 64 MiB,
#               data in the first and last chunks, the first directory active.
set -euo pipefail

python3 - "$@" <<'PY'
import struct
import sys

SHDW = 0x73686477
FULL, PARTIAL = 1 << 62, 3 << 62


def pattern(tag, n):
    line = tag.encode() + b"\n"
    return (line * (n // len(line) + 1))[:n]


def build(out, *, chunk, block, size, max_size, data, partial=None, metadata=None,
          active=1, guid=bytes(range(0x10, 0x20))):
    """data: {virtual chunk: bytes}; partial: {virtual chunk: (bytes, written sectors)};
    metadata: property list bytes (stored at the last chunk of max_size)."""
    partial = partial or {}
    group = 4 * block
    groups = (chunk // 8) // (group + 1)
    per_table = groups * group
    table_entries = groups * (group + 1)
    span = per_table * chunk
    max_tables = -(-max_size // span)
    used_tables = -(-size // span)
    dir_len = 8 + 8 * max_tables
    dir_offs = [512, 512 + -(-dir_len // 512) * 512]
    assert dir_offs[1] + dir_len <= chunk, "directories do not fit in chunk 0"
    chunks = [bytearray(chunk)]  # physical chunk 0: header and directories

    def alloc(content=b""):
        chunks.append(bytearray(content.ljust(chunk, b"\0")))
        return len(chunks) - 1

    tables = {t: alloc() for t in range(used_tables)}
    meta_chunk = 0
    if metadata is not None:
        meta_chunk = max_size // chunk - 1
        head = struct.pack(">IIIQQ", 0x6D657461, 1, 512, len(metadata), 0).ljust(512, b"\0")
        written = range(-(-(512 + len(metadata)) // block))
        partial = dict(partial)
        partial[meta_chunk] = (head + metadata, list(written))
        if meta_chunk // per_table not in tables:
            tables[meta_chunk // per_table] = alloc()
    bitmaps = {}

    def entry_of(v):
        t, within = divmod(v, per_table)
        g, i = divmod(within, group)
        return tables[t], g * (group + 1) + i, g * (group + 1) + group, i * (chunk // block)

    def put(table, index, value):
        struct.pack_into(">Q", chunks[table], 8 * index, value)

    for v in sorted(data):
        table, index, _, _ = entry_of(v)
        put(table, index, FULL | alloc(data[v]))
    for v in sorted(partial):
        content, sectors = partial[v]
        table, index, bitmap_index, first = entry_of(v)
        key = (table, bitmap_index)
        if key not in bitmaps:
            bitmaps[key] = alloc()
            put(table, bitmap_index, bitmaps[key])
        content = bytearray(content.ljust(chunk, b"\0"))
        for s in range(chunk // block):
            if s not in sectors:
                content[s * block:(s + 1) * block] = bytes(block)  # never written
        for s in sectors:
            gs = first + s
            chunks[bitmaps[key]][gs // 4] |= 1 << (gs % 4 * 2)
        put(table, index, PARTIAL | alloc(bytes(content)))
    # The active directory names the tables; the other, one version older, names none.
    for slot, off in enumerate(dir_offs):
        version = 2 if slot == active else 1
        entries = [0] * max_tables
        if slot == active:
            for t, c in tables.items():
                entries[t] = c
        struct.pack_into(">Q%dQ" % max_tables, chunks[0], off, version, *entries)
    struct.pack_into(
        ">IIIIQQ16sQQIHHQ16sIII", chunks[0], 0, SHDW, 1, 512, 0, dir_offs[0], dir_offs[1],
        guid, size // block, max_size // block, chunk, block, 0, meta_chunk, bytes(16), 0, 0, 0)
    with open(out, "wb") as f:
        for c in chunks:
            f.write(c)


if len(sys.argv) == 3:
    raw, out = sys.argv[1:]
    chunk = 1 << 20
    data = {}
    with open(raw, "rb") as f:
        i = 0
        while piece := f.read(chunk):
            if piece.strip(b"\0"):
                data[i] = piece
            i += 1
        size = f.tell()
    build(out, chunk=chunk, block=512, size=size, max_size=size, data=data, active=0)
    sys.exit(0)

K = 64 * 1024
written = pattern("asif partly written chunk", K)
plist = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>internal metadata</key>
\t<dict>
\t\t<key>stable uuid</key>
\t\t<string>6f0d3c52-8a41-4e27-9b1e-2d5c7a90e13f</string>
\t</dict>
\t<key>user metadata</key>
\t<dict/>
</dict>
</plist>
"""
build(
    "corpus/asif/disk.asif", chunk=K, block=512, size=1 << 30, max_size=2 << 30,
    data={
        0: pattern("asif chunk 0", K),
        10: pattern("asif chunk 10", K),
        11: pattern("asif chunk 11", K),
        12: bytes(K),
        2048 + 5: pattern("asif second group", K),
        6144 + 100: pattern("asif second table", K),
        (1 << 30) // K - 1: pattern("asif last chunk", K),
    },
    partial={2: (written, list(range(8)) + list(range(100, 104)))},
    metadata=plist,
)
M = 1 << 20
build(
    "corpus/asif/apple.asif", chunk=M, block=512, size=64 << 20, max_size=1 << 52,
    data={0: pattern("asif apple first", M), 63: pattern("asif apple last", M)},
    active=0, guid=bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90"),
)
PY
[ $# -eq 2 ] || ls -l corpus/asif
