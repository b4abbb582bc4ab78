"""The recorded CR3 reaches Volatility 3's own Windows stacker: on a small ELF core (the
layout QEMU's dump-guest-memory writes, with its CPU note) whose CR3 table is
self-referencing at Windows' index and lies where Volatility's DTB scan does not look,
Volatility alone stacks no Intel layer, and through vmsnap its automagic stacks a
``WindowsIntel32e`` whose ``page_map_offset`` is that CR3."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

pytest.importorskip("volatility3")
from volatility3 import framework  # noqa: E402
from volatility3.framework import contexts, interfaces  # noqa: E402
from volatility3.framework.automagic import stacker, windows  # noqa: E402
from volatility3.framework.layers import elf, intel, physical  # noqa: E402

import vmsnap.volatility  # noqa: E402

# Above every range WindowsIntelStacker scans (the last ends at 0x5A00000).
DTB = 0x6000000
SELF_INDEX = 0x1ED  # Windows 7's fixed self-map index, inside the modern test's range too
CR0, CR4 = 0x80050033, 0x6B0  # paging, PAE; no LA57


def qemu_cpu_note(cr3: int) -> bytes:
    """A QEMU `QEMUCPUState` note (target/i386/arch_dump.c): version 1, 18 general
    registers, 10 segments of 24 bytes, cr[5], kernel_gs_base."""
    desc = struct.pack("<II", 1, 0x1B8) + bytes(18 * 8 + 10 * 24)
    desc += struct.pack("<5QQ", CR0, 0, 0, cr3, CR4, 0)
    assert len(desc) == 0x1B8
    name = b"QEMU\0"
    return struct.pack("<III", len(name), len(desc), 0) + name + bytes(3) + desc


def write_core(path: Path, cr3: int, table: bytes) -> None:
    """ELF64 core: the note, 1 MiB of zeros at 0 and the table's page at DTB."""
    note = qemu_cpu_note(cr3)
    low = 1 << 20
    phoff, phnum = 64, 3
    note_at = phoff + 56 * phnum
    data_at = (note_at + len(note) + 0xFFF) & ~0xFFF
    ehdr = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, 0, 0, 64, 56, phnum, 0, 0, 0)
    phdrs = struct.pack("<IIQQQQQQ", 4, 0, note_at, 0, 0, len(note), len(note), 0)
    phdrs += struct.pack("<IIQQQQQQ", 1, 7, data_at, 0, 0, low, low, 0)
    phdrs += struct.pack("<IIQQQQQQ", 1, 7, data_at + low, DTB, DTB, len(table), len(table), 0)
    with open(path, "wb") as f:
        f.write(ehdr + phdrs)
        f.seek(note_at)
        f.write(note)
        f.seek(data_at + low)
        f.write(table)


def self_map_table() -> bytes:
    entries = [0] * 512
    entries[SELF_INDEX] = DTB | 0x63  # present, writable, accessed, dirty
    return struct.pack("<512Q", *entries)


def stack_all(path: Path):
    """Volatility's automagic stacking as `vol` does it; the layers, highest first."""
    ctx = contexts.Context()
    ctx.config["base.location"] = path.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "base", "base"))
    framework.import_files(framework.layers)
    order = sorted(
        framework.class_subclasses(interfaces.automagic.StackerLayerInterface),
        key=lambda x: x.stack_order,
    )
    names = stacker.LayerStacker.stack_layer(ctx, "base", order)
    return ctx, [ctx.layers[n] for n in names]


@pytest.fixture
def core(tmp_path: Path) -> Path:
    p = tmp_path / "windows-like.elf"
    # CR3 with PCID bits set: the table address is what is offered.
    write_core(p, DTB | 0x5, self_map_table())
    return p


def test_volatility_alone_finds_no_dtb(core):
    ctx = contexts.Context()
    ctx.config["base.location"] = core.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "base", "base"))
    theirs = elf.Elf64Stacker.stack(ctx, "base")
    assert theirs is not None
    ctx.add_layer(theirs)
    assert windows.WindowsIntelStacker.stack(ctx, theirs.name) is None


def test_volatilitys_automagic_stacks_the_recorded_cr3(core):
    ctx, layers = stack_all(core)
    top = layers[0]
    assert isinstance(top, intel.WindowsIntel32e), [type(x).__name__ for x in layers]
    assert top.config["page_map_offset"] == DTB
    phys = ctx.layers[top.config["memory_layer"]]
    assert isinstance(phys, vmsnap.volatility.VmsnapLayer)
    assert phys.metadata["vmsnap_cr3"] == DTB | 0x5
    # The self-map translates: the table's own virtual address reads the table back.
    va = 0xFFFF000000000000 | (SELF_INDEX << 39) | (SELF_INDEX << 30) | (SELF_INDEX << 21) | (SELF_INDEX << 12)
    assert top.read(va, 0x1000) == self_map_table()


def test_no_hint_without_the_self_map(tmp_path: Path):
    p = tmp_path / "plain.elf"
    table = bytearray(self_map_table())
    table[SELF_INDEX * 8 : SELF_INDEX * 8 + 8] = bytes(8)
    write_core(p, DTB, bytes(table))
    ctx, layers = stack_all(p)
    assert not any(isinstance(x, intel.Intel) for x in layers)
    phys = next(x for x in layers if isinstance(x, vmsnap.volatility.VmsnapLayer))
    assert phys.metadata["page_map_offset"] == DTB
    assert phys.metadata["os"] == "Unknown"
