#!/usr/bin/env python3
"""Patches qemu-img's output (`craft.py patch`) and builds the hand-made samples
(`craft.py build`) of corpus/check; see make.sh. Layouts: VHD footer (checksum at 64),
qcow2 header (cluster_bits at 20, l1_size at 36, autoclear at 88), VDI header (block size
at 0x178), VMDK sparse header (grainSize at 20, numGTEsPerGT at 44), VHD dynamic header
(block size at 32), VHDX region and metadata tables, ISO 9660 volume descriptors at 32 KiB, MBR,
UDIF koly trailer, cloop 2.0, bochs redolog, ustar, VMware seSparse."""
import io
import struct
import sys
import tarfile
import zlib


def patch(name, at, data):
    with open(name, "r+b") as f:
        f.seek(at)
        f.write(data)


def read(name, at, n):
    with open(name, "rb") as f:
        f.seek(at)
        return f.read(n)


def flip(name, at):
    patch(name, at, bytes([read(name, at, 1)[0] ^ 0xFF]))


def guid(s):
    import uuid
    return uuid.UUID(s).bytes_le


def vhdx_has_parent(name):
    rt = read(name, 192 * 1024, 64 * 1024)
    assert rt[:4] == b"regi"
    (n,) = struct.unpack_from("<I", rt, 8)
    meta = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
    params = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
    at = next(struct.unpack_from("<Q", rt, 16 + i * 32 + 16)[0]
              for i in range(n) if rt[16 + i * 32:32 + i * 32] == meta)
    table = read(name, at, 64 * 1024)
    assert table[:8] == b"metadata"
    (count,) = struct.unpack_from("<H", table, 10)
    for i in range(count):
        e = table[32 + i * 32:64 + i * 32]
        if e[:16] == params:
            (off,) = struct.unpack_from("<I", e, 16)
            flags = read(name, at + off + 4, 1)[0]
            patch(name, at + off + 4, bytes([flags | 0x02]))  # HasParent
            # The payload blocks past the metadata region (at 3 MiB) are not needed to
            # refuse it: keep 4 MiB of qemu-img's 8.
            with open(name, "r+b") as f:
                f.truncate(4 << 20)
            return
    raise SystemExit("no file parameters item")


def do_patch():
    flip("head-checksum.vhd", 64)  # the footer copy at 0 only
    with open("fixed-checksum.vhd", "rb") as f:
        size = len(f.read())
    flip("fixed-checksum.vhd", size - 512 + 64)
    patch("data-file-raw.qcow2", 95, bytes([read("data-file-raw.qcow2", 95, 1)[0] | 0x02]))
    patch("cluster-bits-8.qcow2", 20, struct.pack(">I", 8))
    patch("cluster-bits-22.qcow2", 20, struct.pack(">I", 22))
    patch("l1-over-limit.qcow2", 36, struct.pack(">I", (32 << 20) // 8 + 1))
    patch("l1-past-eof.qcow2", 36, struct.pack(">I", 65536))
    patch("block-size.vdi", 0x178, struct.pack("<I", 128 << 20))
    patch("gtes-per-gt.vmdk", 44, struct.pack("<I", 1 << 20))  # QEMU's limit: 512
    patch("grain-size.vmdk", 20, struct.pack("<Q", 0x400000))  # sectors; limit 0x200000
    patch("vhd-block-size.vhd", 512 + 32, struct.pack(">I", 1 << 30))
    vhdx_has_parent("has-parent.vhdx")


def iso_with_mbr(boot):
    v = bytearray(64 * 1024)
    # Partition 0: type 0x17, LBA 0 for 128 sectors (what isohybrid writes, in short).
    v[446:462] = struct.pack("<B3BB3BII", boot, 0, 1, 0, 0x17, 0, 32, 0, 0, 128)
    v[510:512] = b"\x55\xaa"
    v[32768:32775] = b"\x01CD001\x01"  # primary volume descriptor
    v[34816:34823] = b"\xffCD001\x01"  # terminator
    return bytes(v)


def dmg():
    koly = bytearray(512)
    struct.pack_into(">4sII", koly, 0, b"koly", 4, 512)
    struct.pack_into(">Q", koly, 492, 8)  # sector count
    return bytes(4096) + bytes(koly)


def cloop():
    magic = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
    bs, blocks = 4096, [bytes([0x41]) * 4096, bytes(4096)]
    head = magic.ljust(128, b"\0") + struct.pack(">II", bs, len(blocks))
    data = [zlib.compress(b, 9) for b in blocks]
    offsets, at = [], len(head) + 8 * (len(blocks) + 1)
    for d in data:
        offsets.append(at)
        at += len(d)
    offsets.append(at)
    return head + b"".join(struct.pack(">Q", o) for o in offsets) + b"".join(data)


def bochs():
    h = bytearray(512)
    h[0:32] = b"Bochs Virtual HD Image".ljust(32, b"\0")
    h[32:48] = b"Redolog".ljust(16, b"\0")
    h[48:64] = b"Growing".ljust(16, b"\0")
    # version 2, header 512, catalog 16 entries, bitmap 512, extent 4096, reserved, disk.
    struct.pack_into("<IIIIIIQ", h, 64, 0x00020000, 512, 16, 512, 4096, 0, 65536)
    return bytes(h) + b"\xff\xff\xff\xff" * 16


def tar():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("disk.raw")
        info.size, info.mtime = 4096, 0
        t.addfile(info, io.BytesIO(bytes(4096)))
    return out.getvalue()


def sesparse():
    # capacity 2048 sectors; volatile header at 1, grain directory at 2, grain tables at
    # 3 (64 sectors), grains at 67: one grain allocated (grain 0 -> cluster 0).
    h = [0xCAFEBABE, 0x200000001, 2048, 8, 64, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0,
         2, 1, 3, 64, 0, 0, 0, 0, 67, 8]
    f = bytearray(67 * 512)
    struct.pack_into("<%dQ" % len(h), f, 0, *h)
    struct.pack_into("<Q", f, 512, 0xCAFECAFE)
    struct.pack_into("<Q", f, 1024, 0x1000000000000000)  # grain table 0 allocated
    struct.pack_into("<Q", f, 3 * 512, 3 << 60)  # grain 0 -> cluster 0
    return bytes(f) + b"\x5e" * 4096


def do_build():
    for name, data in [
        ("iso-mbr.iso", iso_with_mbr(0x80)),
        ("iso-mbr-bad-boot.iso", iso_with_mbr(0x12)),
        ("trailer.dmg", dmg()),
        ("sample.cloop", cloop()),
        ("sample.bochs", bochs()),
        ("disk.tar", tar()),
        ("lone-sesparse.vmdk", sesparse()),
    ]:
        with open(name, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    {"patch": do_patch, "build": do_build}[sys.argv[1]]()
