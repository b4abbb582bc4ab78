#!/usr/bin/env python3
"""make-vbox.py SRC OUT: writes OUT, a VirtualBox `dumpvmcore` core holding the RAM
(PT_LOADs) of the QEMU ELF core SRC, laid out as VirtualBox's DBGFCoreWrite.cpp writes
it (include/VBox/vmm/dbgfcorefmt.h, format version 1.6): the ELF header (EI_VERSION 0, as
VirtualBox leaves it), one PT_NOTE, the PT_LOADs, a `VBCORE` note (DBGFCOREDESCRIPTOR)
and one `VBCPU` note (DBGFCORECPU) per vCPU of SRC's QEMU notes (names padded to 8 bytes,
n_namesz without the NUL), then the memory. Registers QEMU records come from SRC's notes;
the rest (debug registers, SYSENTER, MSRs) get distinct values (0x7100 + offset), EFER
is 0xd01 (SCE, LME, LMA, NXE: a 64-bit Linux guest). Independent of vmsnap's code."""

import struct
import sys

NT_VBOXCORE, NT_VBOXCPU = 0xB00, 0xB01
MAGIC, FMT = 0xC01AC0DE, 0x00010006
VBOX_VERSION = (7 << 24) | (0 << 16) | 14  # 7.0.14
REVISION = 161095
EXT = 0x2000  # the X86XSAVEAREA after the registers (left zero, cbExt 0)


def loads_and_cpus(elf):
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    loads, cpus = [], []
    for i in range(phnum):
        t, _f, off, _va, pa, filesz, _memsz = struct.unpack_from("<IIQQQQQ", elf, phoff + i * phentsize)
        if t == 1:
            loads.append((pa, elf[off : off + filesz]))
        elif t == 4:
            pos, end = off, off + filesz
            while pos + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
                name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
                desc_at = pos + 12 + ((namesz + 3) & ~3)
                if name == b"QEMU":
                    cpus.append(elf[desc_at : desc_at + descsz])
                pos = desc_at + ((descsz + 3) & ~3)
    return loads, cpus


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    n += b"\0" * (-len(n) % 8)
    desc += b"\0" * (-len(desc) % 8)
    return struct.pack("<III", len(name), len(desc), ntype) + n + desc


def vbcpu(q):
    """DBGFCORECPU from a QEMUCPUState (version, size, 16 GPRs, rip, rflags, 10 segments
    of (selector, limit, flags, pad, base), cr[5], kernel_gs_base)."""
    c = bytearray(584 + EXT)
    for off in range(320, 584, 8):  # dr, gdtr/idtr, ldtr/tr, sysenter, MSRs: distinct values
        struct.pack_into("<Q", c, off, 0x7100 + off)
    g = struct.unpack_from("<18Q", q, 8)  # rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags
    order = [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 6, 7, 17]  # DBGFCORECPU's
    for i, k in enumerate(order):
        struct.pack_into("<Q", c, i * 8, g[k])
    seg = lambda k: struct.unpack_from("<IIIIQ", q, 152 + k * 24)
    # cs ds es fs gs ss ldt tr (QEMU) -> their DBGFCORESEL slots.
    for k, at in enumerate([144, 168, 192, 216, 240, 264, 416, 440]):
        sel, limit, flags, _pad, base = seg(k)
        struct.pack_into("<QIIH", c, at, base, limit, (flags >> 8) & 0xF0FF, sel)
    for k, at in ((8, 384), (9, 400)):  # gdt, idt
        _sel, limit, _flags, _pad, base = seg(k)
        struct.pack_into("<QI", c, at, base, limit)
    cr = struct.unpack_from("<5Q", q, 392)
    struct.pack_into("<4Q", c, 288, cr[0], cr[2], cr[3], cr[4])
    struct.pack_into("<Q", c, 488, 0xD01)  # msrEFER
    if len(q) >= 440:
        struct.pack_into("<Q", c, 536, struct.unpack_from("<Q", q, 432)[0])  # msrKernelGSBase
    return bytes(c)


def main(src, out):
    elf = open(src, "rb").read()
    loads, cpus = loads_and_cpus(elf)
    assert loads and cpus, "SRC needs PT_LOADs and QEMU CPU notes"
    notes = note("VBCORE", NT_VBOXCORE, struct.pack("<6I", MAGIC, FMT, 24, VBOX_VERSION, REVISION, len(cpus)))
    notes += b"".join(note("VBCPU", NT_VBOXCPU, vbcpu(q)) for q in cpus)
    phnum = 1 + len(loads)
    notes_at = 64 + 56 * phnum
    mem_at = notes_at + len(notes)
    ident = b"\x7fELF" + bytes([2, 1, 0]) + b"\0" * 9  # EI_VERSION left 0, as VirtualBox does
    head = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum, 64, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 4, notes_at, 0, 0, len(notes), len(notes), 0)
    off = mem_at
    for pa, data in loads:
        ph += struct.pack("<IIQQQQQQ", 1, 4, off, 0, pa, len(data), len(data), 0)
        off += len(data)
    with open(out, "wb") as f:
        f.write(head + ph + notes)
        for _pa, data in loads:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
