"""Memory export (`vmsnap convert -O elf|lime`) read by Volatility 3's own ELF and LiME
layers (from PyPI, not vmsnap's): every byte Volatility reads from the export equals the
source's guest-physical memory as `vmsnap convert -O raw` writes it, for QEMU, VMware,
Hyper-V, ELF and LiME sources; and on the real booted guest, Volatility's banners on the
exported ELF core equal its banners on QEMU's own `dump-guest-memory` core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORPUS, REAL_GUEST, ROOT, banners

pytest.importorskip("volatility3")
from volatility3.framework import contexts  # noqa: E402
from volatility3.framework.layers import elf, lime, physical  # noqa: E402

# Small samples with every kind of memory source; each is read whole.
SOURCES = [
    "vmware/embedded.vmss",
    "vmware/plain.vmss",
    "hyperv/savedstate.vmrs",
    "x86/core.elf",
    "elf/guest-slice.elf",
    "lime/small.lime",
    "qcow2/savevm.qcow2",
]
CHUNK = 4 << 20


def convert(cli: Path, src: Path, out: Path, fmt: str) -> None:
    subprocess.run(
        [str(cli), "convert", "--quiet", "-O", fmt, str(src), str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def volatility_layer(path: Path, stacker):
    ctx = contexts.Context()
    ctx.config["base.location"] = path.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "base", "base"))
    layer = stacker.stack(ctx, "base")
    assert layer is not None, f"Volatility does not stack {stacker.__name__} on {path}"
    ctx.add_layer(layer)
    return layer


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("fmt", ["elf", "lime"])
def test_volatility_reads_the_export_equal_to_the_source(cli, tmp_path, source, fmt):
    src = CORPUS / source
    raw, out = tmp_path / "memory.raw", tmp_path / f"memory.{fmt}"
    # The memory layer itself, as raw bytes (the layer -O elf|lime takes by default).
    info = json.loads(
        subprocess.run(
            [str(cli), "info", "--json", str(src)], cwd=ROOT, check=True, capture_output=True
        ).stdout
    )
    memory = [l["name"] for l in info["layers"] if l["space"] == "guest_physical"]
    assert len(memory) == 1, memory
    subprocess.run(
        [str(cli), "convert", "--quiet", "-l", memory[0], str(src), str(raw)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    convert(cli, src, out, fmt)
    layer = volatility_layer(out, elf.Elf64Stacker if fmt == "elf" else lime.LimeStacker)
    segments = sorted((seg[0], seg[2]) for seg in layer._segments)
    compared = 0
    with raw.open("rb") as f:
        for start, length in segments:
            for off in range(start, start + length, CHUNK):
                n = min(CHUNK, start + length - off)
                f.seek(off)
                assert layer.read(off, n) == f.read(n), f"{source} -O {fmt}: {off:#x}+{n:#x}"
                compared += n
        # What the segments leave out holds no data in the source (the raw file is sparse:
        # look only where it stores something).
        for lo, hi in data_ranges(f.fileno()):
            for start, length in segments:
                if start <= lo < start + length:
                    lo = min(hi, start + length)
            if lo < hi:
                f.seek(lo)
                rest = f.read(hi - lo)
                assert rest.count(0) == len(rest), f"{source}: data at {lo:#x} not exported"
    assert compared > 0


def data_ranges(fd: int):
    """The (start, end) ranges a sparse file stores, by SEEK_DATA/SEEK_HOLE."""
    end, pos = os.fstat(fd).st_size, 0
    while pos < end:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        pos = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, pos

@pytest.mark.skipif(
    not (REAL_GUEST / "stream.bin").is_file(),
    reason="no real guest: bash tools/install-qemu-system.sh && cargo xtask paging-guests",
)
def test_banners_on_the_exported_real_guest_equal_those_on_qemus_core(
    cli, tmp_path, real_core_banners
):
    out = tmp_path / "guest.elf"
    convert(cli, REAL_GUEST / "stream.bin", out, "elf")
    ours = banners([str(Path(sys.executable).parent / "vol")], out)
    assert any("Linux version" in row["Banner"] for row in ours)
    assert ours == real_core_banners
