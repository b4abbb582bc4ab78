"""vmsnap.check and vmsnap.Inspector give `vmsnap check --json`'s object, for files and
for streams, on every crafted check sample and every corpus disk."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

import vmsnap
from conftest import CHECK_SAMPLES, CORPUS, DISKS, ROOT, rel, run_json

os.chdir(ROOT)


def test_there_are_samples():
    assert len(CHECK_SAMPLES) >= 25, CHECK_SAMPLES


@pytest.mark.parametrize("path", CHECK_SAMPLES + DISKS, ids=lambda p: rel(p))
def test_check_equals_the_cli(path, cli):
    want = run_json([str(cli), "check", "--json", rel(path)])
    assert vmsnap.check(rel(path)) == want
    assert want["verdict"] in ("safe", "unsafe", "error")


@pytest.mark.parametrize("path", CHECK_SAMPLES + DISKS, ids=lambda p: rel(p))
def test_streams_equal_the_cli_on_a_pipe(path, cli):
    # `vmsnap check -` reading a pipe: the streaming inspector.
    cat = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    want = run_json([str(cli), "check", "--json", "-"], stdin=cat.stdout)
    cat.wait()
    # A file object is read front to back (bounded memory), and named as the pipe is not.
    with open(path, "rb") as f:
        got = vmsnap.check(f)
    assert got["file"] == str(path)
    got["file"] = want["file"]
    assert got == want
    # Chunks of any size, fed by hand.
    data = path.read_bytes()
    insp = vmsnap.Inspector(name="-")
    for i in range(0, len(data), 65537):
        assert insp.feed(data[i : i + 65537])
    assert insp.total == len(data)
    assert insp.finish() == want


def test_format_and_allow_as_the_cli(cli):
    q = rel(CORPUS / "qcow2/v3.qcow2")
    want = run_json([str(cli), "check", "--json", "--format", "vmdk", q])
    got = vmsnap.check(q, format="vmdk")
    assert got == want and got["verdict"] == "unsafe"
    assert vmsnap.check(q, format="qcow2")["verdict"] == "safe"
    iso = rel(CORPUS / "check/iso-mbr.iso")
    want = run_json([str(cli), "check", "--json", "--allow", "iso+gpt", iso])
    assert vmsnap.check(iso, allow=["iso+gpt"]) == want
    # Aliases as qemu and Glance say them.
    vhd = rel(CORPUS / "vhd/fixed.vhd")
    assert vmsnap.check(vhd, format="vpc") == run_json([str(cli), "check", "--json", "--format", "vpc", vhd])
    with pytest.raises(vmsnap.Error) as e:
        vmsnap.check(q, format="no-such-format")
    assert e.value.kind == "invalid_argument"


def test_a_stream_past_the_limit_is_not_inspected():
    insp = vmsnap.Inspector(max_stream=1 << 20)
    assert insp.feed(bytes(1 << 19))
    assert not insp.feed(bytes(1 << 20))
    r = insp.finish()
    assert r["verdict"] == "error"
    assert r["error"]["kind"] == "limit_exceeded"
    assert "stream longer than 1048576 bytes" in r["error"]["message"]
    # An endless stream ends.
    class Zeros(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            b[:] = bytes(len(b))
            return len(b)

    r = vmsnap.check(Zeros(), max_stream=8 << 20)
    assert r["verdict"] == "error" and r["error"]["kind"] == "limit_exceeded"


def test_memory_stays_bounded():
    insp = vmsnap.Inspector()
    chunk = bytes(1 << 20)
    for _ in range(256):
        insp.feed(chunk)
    assert insp.total == 256 << 20
    assert insp.retained < 64 << 20
    assert insp.finish()["format"] == "raw"
