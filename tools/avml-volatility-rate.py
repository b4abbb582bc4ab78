"""Volatility 3's AVML layer on the real-guest AVML image (target/avml-guest/guest.avml,
made by `cargo test -p vmsnap-avml --test real_guest -- --ignored`): reads every chunk it
maps once, in 1 MiB pieces, one thread, and prints MB/s beside vmsnap's rate on the same
bytes through its Python binding. Run with the venv of tools/python-venv.sh (built with
VMSNAP_PY_PROFILE=release for a fair vmsnap figure):
  target/python-venv/bin/python tools/avml-volatility-rate.py"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from volatility3.framework import contexts
from volatility3.framework.layers import avml, physical

import vmsnap

ROOT = Path(__file__).resolve().parents[1]
PATH = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "target/avml-guest/guest.avml"
PIECE = 1 << 20


def spans_of(segments):
    out = []
    for start, _, length, _ in sorted(segments):
        if out and out[-1][1] == start:
            out[-1][1] = start + length
        else:
            out.append([start, start + length])
    return out


def timed(read, spans):
    t = time.perf_counter()
    total = 0
    for start, end in spans:
        for at in range(start, end, PIECE):
            n = min(PIECE, end - at)
            assert len(read(at, n)) == n
            total += n
    return total, time.perf_counter() - t


def main():
    ctx = contexts.Context()
    ctx.config["base.location"] = PATH.as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "base", "base"))
    t = time.perf_counter()
    theirs = avml.AVMLStacker.stack(ctx, "base")
    opened = time.perf_counter() - t
    spans = spans_of(theirs._segments)
    ours = vmsnap.open(str(PATH)).layer("avml")
    n, vol = timed(theirs.read, spans)
    _, vm = timed(ours.read_at, spans)
    mb = n / 1e6
    print(f"{PATH}: {mb:.0f} MB in {len(theirs._segments)} snappy chunks")
    print(f"  Volatility 3 AVML layer: open {opened:.2f} s, read {vol:.2f} s = {mb / vol:.0f} MB/s")
    print(f"  vmsnap (Python binding): read {vm:.2f} s = {mb / vm:.0f} MB/s")


if __name__ == "__main__":
    main()
