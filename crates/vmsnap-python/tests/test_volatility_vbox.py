"""Volatility 3's own ELF layer (layers/elf.py, which accepts VirtualBox's EI_VERSION 0)
reads the VirtualBox `dumpvmcore` samples of corpus/elf (vbox-*.elf), and every segment it maps
equals what vmsnap's ELF reader reads at the same guest-physical address (`vmsnap convert
-O raw --layer elf-core`). The VBCORE/VBCPU notes, which Volatility does not read, are
checked field by field against the documented layout in crates/vmsnap-elf/tests/vbox.rs."""

from __future__ import annotations

import subprocess

import pytest

from conftest import CORPUS

pytest.importorskip("volatility3")
from volatility3.framework import contexts  # noqa: E402
from volatility3.framework.layers import elf, physical  # noqa: E402

SAMPLES = ["vbox-small.elf", "vbox-slice.elf"]


@pytest.mark.parametrize("name", SAMPLES)
def test_every_segment_volatility_maps_equals_vmsnaps(name, cli, tmp_path):
    path = CORPUS / "elf" / name
    ctx = contexts.Context()
    ctx.config["base.location"] = path.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "base", "base"))
    layer = elf.Elf64Stacker.stack(ctx, "base")
    assert isinstance(layer, elf.Elf64Layer), name
    out = tmp_path / "mem.raw"
    subprocess.run(
        [cli, "convert", "--quiet", "-O", "raw", "--layer", "elf-core", path, out],
        check=True,
        capture_output=True,
    )
    ours = out.read_bytes()
    total = 0
    for (start, _off, length, _mlen) in layer._segments:
        assert layer.read(start, length) == ours[start : start + length], f"{name}: {start:#x}"
        total += length
    assert total >= 2 * 4096, name
