"""AVML images against Volatility 3's own AVML layer (volatility3/framework/layers/avml.py,
which decompresses each snappy chunk through Debian's libsnappy): on every sample made by
Microsoft's converter (corpus/avml/make.sh), Volatility's layer maps the same bytes as
vmsnap's `avml` layer and every chunk it maps reads the same through both. Volatility reads
files of version-2 ranges only: a LiME range in the same file stops it."""

from __future__ import annotations

import pytest

from conftest import CORPUS

pytest.importorskip("volatility3")
from volatility3.framework import contexts, exceptions  # noqa: E402
from volatility3.framework.layers import avml  # noqa: E402

import vmsnap  # noqa: E402
from test_volatility import file_layer  # noqa: E402

# Every range compressed: what Volatility's layer reads.
SAMPLES = ["small.avml", "guest.avml"]


def merged(spans):
    out = []
    for start, end in sorted(spans):
        if out and out[-1][1] == start:
            out[-1][1] = end
        else:
            out.append([start, end])
    return out


def test_libsnappy_is_there_for_volatility():
    # tools/setup.sh installs libsnappy1v5; without it Volatility declines AVML.
    assert avml.HAS_SNAPPY


@pytest.mark.parametrize("name", SAMPLES)
def test_volatility_reads_what_vmsnap_reads(name):
    path = CORPUS / "avml" / name
    ctx = contexts.Context()
    theirs = avml.AVMLStacker.stack(ctx, file_layer(ctx, "base", path))
    assert theirs is not None
    ours = vmsnap.open(str(path)).layer("avml")
    assert ours.plugin == "avml" and ours.space == "guest_physical"
    # One Volatility segment per snappy chunk: (address, file offset, length, stored).
    segments = sorted((s[0], s[2]) for s in theirs._segments)
    assert len(segments) >= 1
    mapped = merged((s, s + n) for s, n in segments)
    data = merged((e["start"], e["start"] + e["length"]) for e in ours.extents() if e["data"])
    assert mapped == data
    for start, length in segments:
        assert theirs.read(start, length) == ours.read_at(start, length), hex(start)
    # Pages across chunk boundaries too.
    for start, end in mapped:
        for at in range(start, end - 4096 + 1, 0x3000):
            assert theirs.read(at + 0x800, 4096) == ours.read_at(at + 0x800, 4096), hex(at)


@pytest.mark.parametrize("name", ["mixed.avml", "lime-first.avml"])
def test_volatility_refuses_files_that_mix_lime_ranges(name):
    path = CORPUS / "avml" / name
    ctx = contexts.Context()
    base = file_layer(ctx, "base", path)
    if name == "mixed.avml":
        # Its first range is AVML: the layer is made, and stops at the LiME range
        # ("File not completely in AVML format").
        with pytest.raises(exceptions.LayerException):
            avml.AVMLStacker.stack(ctx, base)
    else:
        # A LiME range first: Volatility's AVML header check declines.
        assert avml.AVMLStacker.stack(ctx, base) is None
    # vmsnap reads them (tests/oracle.rs compares them with their source LiME).
    assert vmsnap.open(str(path)).layer("avml").size > 0
