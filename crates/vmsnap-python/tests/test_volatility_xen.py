"""Volatility 3's own Xen layer (layers/xen.py, `XenCoreDumpLayer`) reads every Xen
dump-core sample of corpus/xen, and every page it maps equals what vmsnap reads at the
same guest-physical address (`vmsnap convert -O raw --layer xen`); the pages it maps are
the ones vmsnap reports as data.

Volatility's quirks, which the comparisons allow for and nothing else:
* `.xen_pfn`: it skips an entry of pfn 0 (`if entry and ...`) and tests unused entries
  against 0xFFFFFFFF where the format's marker is ~0 (64-bit): the HVM samples have no
  unused entries.
* `.xen_p2m`: its symbol table types the entries as plain integers, so `entry.pfn`
  fails and the layer cannot be built: the PV samples are checked against their source
  cores only (crates/vmsnap-xen/tests/oracle.rs); this test asserts that failure so a
  fixed Volatility turns it into a comparison."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import pytest

from conftest import CORPUS

pytest.importorskip("volatility3")
from volatility3.framework import contexts  # noqa: E402
from volatility3.framework.layers import physical, xen  # noqa: E402

PAGE = 4096
HVM = ["small-hvm.xen", "slice-hvm.xen", "core-hvm.xen.gz"]
PV = ["small-pv.xen", "core-pv.xen.gz"]


def plain(name: str, tmp_path):
    """The sample, gunzipped into tmp_path when it is gzipped."""
    src = CORPUS / "xen" / name
    if not name.endswith(".gz"):
        return src
    out = tmp_path / name.removesuffix(".gz")
    with gzip.open(src) as f, open(out, "wb") as g:
        shutil.copyfileobj(f, g)
    return out


def volatility_layer(path):
    ctx = contexts.Context()
    ctx.config["base.location"] = path.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "base", "base"))
    return xen.XenCoreDumpStacker.stack(ctx, "base")


def vmsnap_memory(cli, path, tmp_path) -> bytes:
    out = tmp_path / (path.name + ".raw")
    subprocess.run(
        [cli, "convert", "--quiet", "-O", "raw", "--layer", "xen", path, out],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def vmsnap_data_pages(cli, path) -> set:
    import json

    out = subprocess.run([cli, "map", "--json", "--layer", "xen", path], check=True, capture_output=True)
    pages = set()
    for e in json.loads(out.stdout)["extents"]:
        if e["kind"] == "data":
            pages.update(range(e["start"] // PAGE, (e["start"] + e["length"]) // PAGE))
    return pages


@pytest.mark.parametrize("name", HVM)
def test_every_page_volatility_maps_equals_vmsnaps(name, cli, tmp_path):
    path = plain(name, tmp_path)
    layer = volatility_layer(path)
    assert isinstance(layer, xen.XenCoreDumpLayer), name
    ours = vmsnap_memory(cli, path, tmp_path)
    theirs = set()
    for (start, _off, length, _mlen) in layer._segments:
        assert length == PAGE
        theirs.add(start // PAGE)
        assert layer.read(start, PAGE) == ours[start : start + PAGE], f"{name}: page at {start:#x}"
    assert theirs, name
    data = vmsnap_data_pages(cli, path)
    # Volatility drops pfn 0 of a .xen_pfn table; every other page is mapped by both.
    assert theirs == data - {0}, name


@pytest.mark.parametrize("name", PV)
def test_volatilitys_p2m_reading_fails_on_pv_dumps(name, tmp_path):
    with pytest.raises(AttributeError, match="pfn"):
        volatility_layer(plain(name, tmp_path))
