"""Windows crash dumps (corpus/windump, built from QEMU ELF cores by the documented layout)
against Volatility 3's own crash layers (WindowsCrashDump32Layer/64Layer, which read dump
types 1 and 5): Volatility stacks each sample, maps the same pages, and every byte of every
segment it maps equals what vmsnap reads; the header fields Volatility reads equal vmsnap's.
Type 6 (kernel bitmap) dumps Volatility 2.28 refuses; vmsnap reads them (Rust tests)."""

from __future__ import annotations

import gzip
import shutil

import pytest

from conftest import CORPUS

pytest.importorskip("volatility3")
from volatility3.framework import contexts  # noqa: E402
from volatility3.framework.layers import crash, physical  # noqa: E402

import vmsnap  # noqa: E402

SAMPLES = sorted(p.name for p in (CORPUS / "windump").glob("*.dmp*") if "kernel" not in p.name)


@pytest.fixture
def dump(request, tmp_path):
    src = CORPUS / "windump" / request.param
    if src.suffix != ".gz":
        return src
    out = tmp_path / src.stem
    with gzip.open(src, "rb") as f, open(out, "wb") as g:
        shutil.copyfileobj(f, g)
    return out


def volatility_layer(path):
    ctx = contexts.Context()
    ctx.config["base.location"] = path.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "base", "base"))
    return crash.WindowsCrashDumpStacker.stack(ctx, "base")


def test_there_are_samples_of_each_width_and_type():
    assert {"small-64-full.dmp", "small-64-bitmap.dmp", "small-32-full.dmp", "small-32pae-bitmap.dmp"} <= set(SAMPLES)
    assert any(s.endswith(".gz") for s in SAMPLES)


@pytest.mark.parametrize("dump", SAMPLES, indirect=True)
def test_every_page_volatility_maps_equals_vmsnaps(dump):
    vol = volatility_layer(dump)
    assert vol is not None, dump
    width = "PAGEDU64" if isinstance(vol, crash.WindowsCrashDump64Layer) else "PAGEDUMP"
    ours = vmsnap.open(dump).layer("1")
    assert ours.plugin == "windump"
    d = ours.describe()["describe"]
    assert d["header"]["signature"] == width
    # The same pages are present.
    pages = set()
    for start, _, length, _ in vol._segments:
        pages.update(range(start >> 12, (start + length) >> 12))
    mapped = set()
    for e in ours.extents():
        if e["data"]:
            mapped.update(range(e["start"] >> 12, (e["start"] + e["length"]) >> 12))
    assert mapped == pages
    assert d["pages_present"] == len(pages)
    # Every byte of them.
    for start, _, length, _ in vol._segments:
        for off in range(start, start + length, 1 << 20):
            n = min(1 << 20, start + length - off)
            assert ours.read_at(off, n) == vol.read(off, n), hex(off)
    # The header as Volatility's symbol tables read it.
    h, ho = vol.get_header(), d["header"]
    assert int(ho["directory_table_base"], 16) == vol.dtb
    assert ho["dump_type"] == vol.dump_type
    for field, key in [
        ("KdDebuggerDataBlock", "kd_debugger_data_block"),
        ("PsActiveProcessHead", "ps_active_process_head"),
        ("PsLoadedModuleList", "ps_loaded_module_list"),
        ("PfnDataBase", "pfn_data_base"),
        ("BugCheckCode", "bug_check_code"),
        ("MachineImageType", "machine_image_type"),
        ("MajorVersion", "major_version"),
    ]:
        assert int(ho[key], 16) == int(getattr(h, field)), field
    assert [int(p, 16) for p in ho["bug_check_parameters"]] == [int(p) for p in h.BugCheckCodeParameter]
    assert ho["minor_version"] == h.MinorVersion
    assert ho["number_processors"] == h.NumberProcessors
    assert int(ho["system_time"], 16) == h.SystemTime
    assert int(ho["system_up_time"], 16) == h.SystemUpTime
    assert ho["required_dump_space"] == h.RequiredDumpSpace == dump.stat().st_size
    assert ho["comment"] == bytes(h.Comment).split(b"\0")[0].decode()
    if width == "PAGEDUMP":
        assert ho["pae_enabled"] == h.PaeEnabled
    else:
        assert ho["kd_secondary_version"] == h.KdSecondaryVersion
    if vol.dump_type == 5:
        s = vol.get_summary_header()
        assert (d["summary"]["header_size"], d["summary"]["pages"], d["summary"]["bitmap_size"]) == (
            s.HeaderSize,
            s.Pages,
            s.BitmapSize,
        )
    else:
        runs = h.PhysicalMemoryBlockBuffer
        assert ho["number_of_runs"] == runs.NumberOfRuns
        runs.Run.count = runs.NumberOfRuns
        assert [(r["base_page"], r["page_count"]) for r in d["runs"]] == [(r.BasePage, r.PageCount) for r in runs.Run]
