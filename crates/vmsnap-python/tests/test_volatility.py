"""Volatility 3 (from PyPI) through vmsnap on a real booted guest (`cargo xtask
paging-guests`): the banners Volatility finds through vmsnap in the QEMU 10 migration
stream are the ones it finds with its own ELF layer in the same guest's ELF core, at the
same physical offsets, and every byte Volatility reads through vmsnap equals the core's."""

from __future__ import annotations

import hashlib
import sys

import pytest

from conftest import REAL_GUEST, ROOT, banners

pytest.importorskip("volatility3")
from volatility3.framework import contexts  # noqa: E402
from volatility3.framework.layers import elf, physical  # noqa: E402

import vmsnap.volatility  # noqa: E402

GUEST = REAL_GUEST
STREAM, CORE = GUEST / "stream.bin", GUEST / "core.elf"
pytestmark = pytest.mark.skipif(
    not (STREAM.is_file() and CORE.is_file()),
    reason="no real guest: bash tools/install-qemu-system.sh && cargo xtask paging-guests",
)


def file_layer(ctx, name, path):
    ctx.config[f"{name}.location"] = path.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, name, name))
    return name


def test_banners_through_vmsnap_equal_volatilitys_own_on_the_elf_core(real_core_banners):
    ours = banners([sys.executable, "-m", "vmsnap.volatility"], STREAM)
    assert any("Linux version" in row["Banner"] for row in ours)
    assert ours == real_core_banners


def test_the_automagic_stacks_vmsnap_on_the_stream():
    ctx = contexts.Context()
    base = file_layer(ctx, "base", STREAM)
    layer = vmsnap.volatility.VmsnapStacker.stack(ctx, base)
    assert isinstance(layer, vmsnap.volatility.VmsnapLayer)
    assert layer.metadata["vmsnap_layer"] == "qemu"
    assert layer.metadata["vmsnap_cr3"] > 0
    # Raw bytes are left to Volatility.
    ctx2 = contexts.Context()
    raw = file_layer(ctx2, "base", ROOT / "corpus" / "raw" / "sample.raw")
    assert vmsnap.volatility.VmsnapStacker.stack(ctx2, raw) is None


def test_bytes_volatility_reads_through_vmsnap_equal_the_elf_core():
    ctx = contexts.Context()
    ours = vmsnap.volatility.VmsnapStacker.stack(ctx, file_layer(ctx, "stream", STREAM))
    ctx.add_layer(ours)
    core = elf.Elf64Stacker.stack(ctx, file_layer(ctx, "core", CORE))
    assert core is not None
    ctx.add_layer(core)
    segments = sorted((s[0], s[2]) for s in core._segments)
    total = 0
    for start, length in segments:
        assert ours.is_valid(start, length), hex(start)
        for off in range(start, start + length, 1 << 22):
            n = min(1 << 22, start + length - off)
            a = hashlib.sha256(ours.read(off, n)).digest()
            b = hashlib.sha256(core.read(off, n)).digest()
            assert a == b, hex(off)
            total += n
    assert total >= 128 << 20
    # Past the stored ranges Volatility gets its usual exception, or zeros when padding.
    top = ours.maximum_address
    assert not ours.is_valid(top + 1)
