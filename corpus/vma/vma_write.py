#!/usr/bin/env python3
"""Writes a Proxmox VMA archive the way pve-qemu's vma-writer.c does.

No Proxmox `vma` tool runs here, so the corpus samples are written by this script from
the layout in pve-qemu's vma_spec.txt and the writer in
debian/patches/pve/0026-PVE-Backup-add-vma-backup-format-code.patch (vma-writer.c):

- the header: 12288 bytes (magic "VMA\\0", version 1, uuid, ctime, md5 over the whole
  header with the md5 field zeroed, blob buffer offset and size, header size, 256 config
  name and data pointers, 256 device infos), then the blob table (pointer 0 is unused: the
  first blob is at 1; each blob is a little-endian u16 length and the bytes; strings carry
  their NUL; the table is padded to a multiple of 512); configs are added first, device
  names when the header is written;
- extents: a 512-byte header ("VMAE", block count, uuid, md5 of the 512 bytes with the md5
  field zeroed, 59 big-endian blockinfos: mask << 48 | dev_id << 32 | cluster), then the
  non-zero 4 KiB blocks of each listed cluster. The writer flushes an extent before
  adding a cluster once it holds 58 (vma_writer_get_buffer); blocks past the device's end
  are marked zero and a last partial block is zero-padded.

Devices are written interleaved (`--interleave N` clusters of each in turn), as
concurrent backup jobs do.

usage: vma_write.py OUT --uuid HEX --ctime SECONDS [--config NAME=FILE]...
                    [--device NAME=RAWFILE]... [--interleave N]
"""

import argparse
import hashlib
import os
import struct
import sys

BLOCK = 4096
CLUSTER = 65536
HEADER = 12288
EXTENT_HEADER = 512
BLOCKS_PER_EXTENT = 59
FLUSH_AT = BLOCKS_PER_EXTENT - 1


class Blobs:
    def __init__(self):
        self.table = bytearray(b"\0")  # position 0 is never a blob

    def add(self, data):
        if len(data) > 0xFFFF:
            sys.exit("a blob holds at most 65535 bytes")
        pos = len(self.table)
        self.table += struct.pack("<H", len(data)) + data
        return pos

    def string(self, s):
        return self.add(s.encode() + b"\0")

    def padded(self):
        size = (len(self.table) + 511) // 512 * 512
        return bytes(self.table) + bytes(size - len(self.table))


def header(uuid, ctime, configs, devices):
    blobs = Blobs()
    names, datas = [], []
    for name, data in configs:
        names.append(blobs.string(name))
        datas.append(blobs.add(data))
    dev_ptrs = [blobs.string(name) for name, _ in devices]
    table = blobs.padded()
    h = bytearray(HEADER)
    struct.pack_into(">4sI16sQ", h, 0, b"VMA\0", 1, uuid, ctime)
    struct.pack_into(">III", h, 48, HEADER, len(blobs.table), HEADER + len(table))
    for i, (n, d) in enumerate(zip(names, datas)):
        struct.pack_into(">I", h, 2044 + 4 * i, n)
        struct.pack_into(">I", h, 3068 + 4 * i, d)
    for i, (ptr, (_, raw)) in enumerate(zip(dev_ptrs, devices), start=1):
        struct.pack_into(">IIQ", h, 4096 + 32 * i, ptr, 0, os.path.getsize(raw))
    whole = bytearray(h + table)
    whole[32:48] = hashlib.md5(whole).digest()
    return bytes(whole)


class Extents:
    def __init__(self, out, uuid):
        self.out, self.uuid = out, uuid
        self.infos, self.data = [], bytearray()

    def add(self, dev_id, cluster, buf, dev_size):
        if len(self.infos) >= FLUSH_AT:
            self.flush()
        mask = 0
        for i in range(16):
            at = cluster * CLUSTER + i * BLOCK
            block = buf[i * BLOCK:(i + 1) * BLOCK]
            if at < dev_size and block.count(0) != BLOCK:
                mask |= 1 << i
                self.data += block
        self.infos.append(mask << 48 | dev_id << 32 | cluster)

    def flush(self):
        if not self.infos:
            return
        h = bytearray(EXTENT_HEADER)
        struct.pack_into(">4sHH16s", h, 0, b"VMAE", 0, len(self.data) // BLOCK, self.uuid)
        for i, info in enumerate(self.infos):
            struct.pack_into(">Q", h, 40 + 8 * i, info)
        h[24:40] = hashlib.md5(h).digest()
        self.out.write(h)
        self.out.write(self.data)
        self.infos, self.data = [], bytearray()


def clusters(dev_id, raw):
    size = os.path.getsize(raw)
    with open(raw, "rb") as f:
        for c in range((size + CLUSTER - 1) // CLUSTER):
            buf = f.read(CLUSTER)
            yield dev_id, c, buf + bytes(CLUSTER - len(buf)), size


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--uuid", required=True)
    p.add_argument("--ctime", type=int, required=True)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("--device", action="append", default=[])
    p.add_argument("--interleave", type=int, default=8)
    a = p.parse_args()
    uuid = bytes.fromhex(a.uuid.replace("-", ""))
    configs = []
    for c in a.config:
        name, path = c.split("=", 1)
        with open(path, "rb") as f:
            configs.append((name, f.read()))
    devices = [tuple(d.split("=", 1)) for d in a.device]
    streams = [clusters(i, raw) for i, (_, raw) in enumerate(devices, start=1)]
    with open(a.out, "wb") as out:
        out.write(header(uuid, a.ctime, configs, devices))
        ext = Extents(out, uuid)
        while streams:
            for s in list(streams):
                for _ in range(a.interleave):
                    item = next(s, None)
                    if item is None:
                        streams.remove(s)
                        break
                    ext.add(*item)
        ext.flush()


if __name__ == "__main__":
    main()
