"""Volatility 3 (from PyPI) through vmsnap on a real booted guest (`cargo xtask
paging-guests`): the banners Volatility finds through vmsnap in the QEMU 10 migration
stream, the same moment saved with `savevm` inside a qcow2, and the same memory rewritten
as a VMware `.vmsn` with embedded memory and a Hyper-V `.vmrs` (`cargo xtask
paging-samples`) are the ones it
finds with its own ELF layer in the guest's ELF core, at the same physical offsets, and
every byte Volatility reads through vmsnap equals the core's."""

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
# The guest's memory in each format, with the vmsnap layer that holds it. paging-guests
# makes them all; one missing is a failure, not a skip.
SAMPLES = {
    "stream.bin": "qemu",
    "savevm.qcow2": "qcow2/vmstate:1/qemu",
    "guest.vmsn": "vmware",
    "guest.vmrs": "hyperv-vmrs-ram",
}


def sample(name: str) -> Path:
    p = GUEST / name
    if not p.is_file():
        pytest.fail(f"{p} is missing: cargo xtask paging-guests makes it")
    return p


def file_layer(ctx, name, path):
    ctx.config[f"{name}.location"] = path.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, name, name))
    return name


@pytest.mark.parametrize("name", SAMPLES)
def test_banners_through_vmsnap_equal_volatilitys_own_on_the_elf_core(name, real_core_banners):
    ours = banners([sys.executable, "-m", "vmsnap.volatility"], sample(name))
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


CHUNK = 1 << 22


@pytest.fixture(scope="session")
def core_chunks():
    """Volatility's own ELF layer on the core: (PT_LOAD ranges, digest of each 4 MiB)."""
    ctx = contexts.Context()
    core = elf.Elf64Stacker.stack(ctx, file_layer(ctx, "core", CORE))
    assert core is not None
    segments = sorted((s[0], s[2]) for s in core._segments)
    digests = {}
    for start, length in segments:
        for off in range(start, start + length, CHUNK):
            n = min(CHUNK, start + length - off)
            digests[off, n] = hashlib.sha256(core.read(off, n)).digest()
    assert sum(n for _, n in digests) >= 128 << 20
    return segments, digests


@pytest.mark.parametrize("name", SAMPLES)
def test_bytes_volatility_reads_through_vmsnap_equal_the_elf_core(name, core_chunks):
    segments, digests = core_chunks
    ctx = contexts.Context()
    ours = vmsnap.volatility.VmsnapStacker.stack(ctx, file_layer(ctx, "sample", sample(name)))
    assert ours is not None and ours.metadata["vmsnap_layer"] == SAMPLES[name]
    for start, length in segments:
        assert ours.is_valid(start, length), hex(start)
    for (off, n), digest in digests.items():
        assert hashlib.sha256(ours.read(off, n)).digest() == digest, hex(off)
    # Past the stored ranges Volatility gets its usual exception, or zeros when padding.
    top = ours.maximum_address
    assert not ours.is_valid(top + 1)


@pytest.mark.parametrize("name", SAMPLES)
def test_the_recorded_cr3_is_offered_but_a_linux_table_is_not_called_windows(name):
    ctx = contexts.Context()
    ours = vmsnap.volatility.VmsnapStacker.stack(ctx, file_layer(ctx, "s", sample(name)))
    cr3 = int((GUEST / "info-registers.txt").read_text().split("CR3=")[1].split()[0], 16)
    assert ours.metadata["vmsnap_cr3"] == cr3
    assert ours.metadata["page_map_offset"] == cr3 & ~0xFFF
    # Linux has no self-map: Volatility's Windows test fails on its table.
    assert ours.metadata["os"] == "Unknown"
