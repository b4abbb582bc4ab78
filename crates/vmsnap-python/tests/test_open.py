"""vmsnap.open: layers, reads and maps against qemu-img; documents against the CLI's JSON."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading

import pytest

import vmsnap
from conftest import CORPUS, DISKS, ROOT, rel, run_json

os.chdir(ROOT)


# vmsnap's plugin names as qemu-img's -f takes them (a fixed VHD has no header qemu probes).
QEMU_FORMAT = {"vhd": "vpc"}


def qemu(qemu_img: str, command: str, path, fmt: str, *args) -> list:
    # qemu-img resolves some references (a raw data file) from the working directory.
    return [qemu_img, command, "-f", QEMU_FORMAT.get(fmt, fmt), *args, path.name]


def qemu_info(qemu_img: str, path, fmt: str) -> dict:
    return run_json(qemu(qemu_img, "info", path, fmt, "--output=json"), cwd=path.parent)


def data_ranges(extents, start="start", length="length"):
    """The byte ranges that hold data, merged."""
    out = []
    for e in extents:
        if not e["data"]:
            continue
        s, n = e[start], e[length]
        if out and out[-1][1] == s:
            out[-1][1] = s + n
        else:
            out.append([s, s + n])
    return out


def test_there_are_disks_to_test():
    assert len(DISKS) >= 20, DISKS


@pytest.mark.parametrize("path", DISKS, ids=lambda p: rel(p))
def test_disk_matches_qemu_img(path, qemu_img, tmp_path):
    stack = vmsnap.open(path)
    disk = stack.layer(1)
    info = qemu_info(qemu_img, path, disk.plugin)
    assert disk.space == "guest_disk"
    assert disk.plugin_kind == "disk"
    assert disk.size == info["virtual-size"]
    # Every byte, against qemu-img's own conversion of the image.
    raw = tmp_path / "disk.raw"
    subprocess.run(
        qemu(qemu_img, "convert", path, disk.plugin, "-O", "raw") + [str(raw)],
        cwd=path.parent,
        check=True,
    )
    want = hashlib.sha256(raw.read_bytes()).hexdigest()
    got = hashlib.sha256()
    disk.seek(0)
    while True:
        chunk = disk.read(1 << 20)
        if not chunk:
            break
        got.update(chunk)
    assert disk.tell() == disk.size
    assert got.hexdigest() == want
    # Where the data is, against qemu-img map.
    qmap = run_json(qemu(qemu_img, "map", path, disk.plugin, "--output=json"), cwd=path.parent)
    assert data_ranges(disk.extents()) == data_ranges(qmap)


@pytest.mark.parametrize("path", DISKS + [CORPUS / "qcow2/savevm.qcow2", CORPUS / "qemu/q35-64m.qevm"], ids=lambda p: rel(p))
def test_documents_equal_the_cli_json(path, cli):
    stack = vmsnap.open(rel(path))
    info = run_json([str(cli), "info", "--json", rel(path)])
    assert stack.describe() == info
    assert [l.name for l in stack.layers] == info["stack"]
    for layer, want in zip(stack.layers, info["layers"]):
        assert layer.describe() == want
        assert (layer.name, layer.space, layer.plugin_kind, layer.size) == (
            want["name"],
            want["space"],
            want["plugin_kind"],
            want["size"],
        )
    assert stack.findings == info["findings"]
    # The disk's map, a backing chain's depths and files included.
    m = run_json([str(cli), "map", "--json", "--layer", "1", rel(path)])
    assert stack.layer(1).extents() == m["extents"]


def test_savevm_qcow2_stacks_to_guest_memory(cli):
    stack = vmsnap.open(CORPUS / "qcow2/savevm.qcow2")
    names = [l.name for l in stack.layers]
    assert names == ["file", "qcow2", "qcow2/vmstate:1", "qcow2/vmstate:1/qemu"]
    mem = stack.layers[-1]
    assert (mem.space, mem.plugin_kind, mem.plugin) == ("guest_physical", "memory", "qemu")
    # The same bytes as `vmsnap cat`.
    out = subprocess.run(
        [str(cli), "cat", "--layer", "3", str(CORPUS / "qcow2/savevm.qcow2")],
        capture_output=True,
        check=True,
    ).stdout
    assert len(out) == mem.size
    assert mem.read() == out
    assert mem.read_at(0xF0000, 4096) == out[0xF0000 : 0xF0000 + 4096]


def test_read_at_is_a_short_read_past_the_end():
    disk = vmsnap.open(CORPUS / "vhd/fixed.vhd").layer(1)
    size = disk.size
    assert disk.read_at(size - 10, 100) == disk.read_at(size - 10, 10)
    assert len(disk.read_at(size - 10, 100)) == 10
    assert disk.read_at(size, 5) == b""
    assert disk.read_at(size + 1000, 5) == b""
    with pytest.raises(ValueError):
        disk.read_at(-1, 5)


def test_file_object_protocol(qemu_img, tmp_path):
    path = CORPUS / "qcow2/zlib.qcow2"
    raw = tmp_path / "d.raw"
    subprocess.run([qemu_img, "convert", "-O", "raw", str(path), str(raw)], check=True)
    want = raw.read_bytes()
    disk = vmsnap.open(path).layer("qcow2")
    assert isinstance(disk, io.RawIOBase)
    assert disk.readable() and disk.seekable() and not disk.writable()
    assert disk.seek(-4096, io.SEEK_END) == len(want) - 4096
    assert disk.read() == want[-4096:]
    assert disk.read(10) == b""
    disk.seek(12345)
    disk.seek(100, io.SEEK_CUR)
    assert disk.tell() == 12445
    buf = bytearray(70000)
    assert disk.readinto(buf) == 70000
    assert bytes(buf) == want[12445 : 12445 + 70000]
    assert disk.tell() == 12445 + 70000
    # A memoryview slice is written in place.
    mv = memoryview(buf)[100:200]
    assert disk.readinto_at(0, mv) == 100
    assert bytes(buf[100:200]) == want[:100]
    with pytest.raises(TypeError):
        disk.readinto_at(0, b"read-only")
    # Python's buffered reader works on top.
    disk.seek(0)
    br = io.BufferedReader(disk, buffer_size=65536)
    assert br.read(5000) == want[:5000]
    assert hashlib.sha256(want[5000:]).digest() == hashlib.sha256(br.read()).digest()
    disk.close()
    with pytest.raises(ValueError):
        disk.read(1)


def test_threads_read_in_parallel():
    mem = vmsnap.open(CORPUS / "qemu/q35-64m.qevm").default
    want = mem.read_at(0, 8 << 20)
    got = {}

    def worker(i):
        got[i] = b"".join(mem.read_at(o, 1 << 16) for o in range(0, 8 << 20, 1 << 16))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(v == want for v in got.values())


def stored_by_depth(extents):
    """(start, end, depth) of every stored range (data or zeros a file holds), merged."""
    out = []
    for e in extents:
        if e["depth"] is None or not (e["data"] or e.get("present", True)):
            continue
        s, t, d = e["start"], e["start"] + e["length"], e["depth"]
        if out and out[-1][1] == s and out[-1][2] == d:
            out[-1] = (out[-1][0], t, d)
        else:
            out.append((s, t, d))
    return out


@pytest.mark.parametrize("path", [CORPUS / "qcow2/chain-top.qcow2", CORPUS / "vmdk/child.vmdk"], ids=rel)
def test_chain_extents_say_which_file_holds_each_range(path, cli, qemu_img):
    stack = vmsnap.open(rel(path))
    got = stack.layer(1).extents()
    assert got == run_json([str(cli), "map", "--json", "--layer", "1", rel(path)])["extents"]
    # The depths are qemu-img's, and each file is the chain's file at that depth.
    qmap = run_json(qemu(qemu_img, "map", path, stack.layer(1).plugin, "--output=json"), cwd=path.parent)
    assert stored_by_depth(got) == stored_by_depth(qmap)
    chain = [rel(path)] + [
        r["path"] for r in stack.external_refs if r["kind"] in ("backing", "parent")
    ]
    depths = {e["depth"] for e in got if e["depth"] is not None}
    assert len(depths) > 1
    for e in got:
        if e["depth"] is not None:
            assert e["file"] == chain[e["depth"]]


def test_backing_chain_and_policy():
    top = CORPUS / "qcow2/chain-top.qcow2"
    refs = vmsnap.open(top).external_refs
    assert [r["decision"] for r in refs] == ["opened"] * len(refs) and refs
    with pytest.raises(vmsnap.Error) as e:
        vmsnap.open(top, external="none").layer(1).read_at(0, 1 << 20)
    assert e.value.kind == "unavailable"
    zeros = vmsnap.open(top, external="none", missing="zeros").layer(1)
    assert any(x["kind"] == "unavailable" for x in zeros.extents())


def test_errors_carry_the_cli_kind_and_message(cli):
    path = rel(CORPUS / "check/l1-past-eof.qcow2")
    with pytest.raises(vmsnap.Error) as e:
        vmsnap.open(path)
    out = subprocess.run([str(cli), "cat", path], capture_output=True, check=False)
    line = out.stderr.decode().strip().splitlines()[0]
    assert line == f"vmsnap: error: {e.value}"
    doc = run_json([str(cli), "map", "--json", path])["error"]
    assert (e.value.kind, e.value.file, e.value.layer, e.value.offset) == (
        doc["kind"],
        doc["file"],
        doc["layer"],
        doc["offset"],
    )
    assert issubclass(vmsnap.Error, Exception)
    with pytest.raises(vmsnap.Error) as e:
        vmsnap.open("corpus/no-such-file")
    assert e.value.kind == "io"
    with pytest.raises(vmsnap.Error) as e:
        vmsnap.open(CORPUS / "qcow2/v3.qcow2", options={"no.such": "1"})
    assert e.value.kind in ("not_found", "invalid_argument")
    with pytest.raises(vmsnap.Error) as e:
        vmsnap.open(CORPUS / "qcow2/v3.qcow2", external="everywhere")
    assert e.value.kind == "invalid_argument"


def test_cpu_state_registers_are_ints(cli):
    path = CORPUS / "qemu/q35-64m.qevm"
    mem = vmsnap.open(path).default
    assert mem.space == "guest_physical"
    cpus = mem.cpu_state()
    info = run_json([str(cli), "info", "--json", rel(path)])
    want = [l for l in info["layers"] if l["space"] == "guest_physical"][0]["cpu"]
    assert len(cpus) == len(want) >= 1
    for got, w in zip(cpus, want):
        assert got["cr0"] == int(w["cr0"], 16) and isinstance(got["cr3"], int)
        assert got["regs"] == {k: int(v, 16) for k, v in w["regs"].items()}


PAGING = ROOT / "target" / "paging" / "pc-4level" / "stream.bin"


@pytest.mark.skipif(not PAGING.is_file(), reason="no paging guest: cargo xtask paging-guests")
def test_translate_equals_the_cli_on_a_real_guest(cli):
    stack = vmsnap.open(PAGING)
    virt = [l for l in stack.layers if l.space == "guest_virtual"]
    assert virt, [l.name for l in stack.layers]
    v = virt[-1]
    assert v.plugin_kind == "translation"
    for addr in (0xFFFFFFFF81000000, 0x1000, 0xFFFF888000000000):
        try:
            got = v.translate(addr)
        except vmsnap.Error as e:
            got = {"error": e.kind}
        doc = run_json([str(cli), "translate", "--json", str(PAGING), hex(addr)])
        assert got == (doc if "error" not in doc else {"error": doc["error"]["kind"]})
    # Non-canonical addresses are refused as the CLI refuses them.
    with pytest.raises(vmsnap.Error) as e:
        v.translate(0x0000800000000000)
    assert e.value.kind == "invalid_argument"
