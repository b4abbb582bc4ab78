"""Shared fixtures: the repository's corpus, the CLI binary (the Python package must give
the CLI's answers), qemu-img (the oracle for disks)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "corpus"

# Every disk image of the corpus qemu-img reads on its own (no other file needed, or its
# references lie beside it), with qemu-img's format name.
DISKS = sorted(
    p
    for pattern in (
        "qcow2/*.qcow2",
        "qcow2/*.qcow",
        "vmdk/*.vmdk",
        "vhd/*.vhd",
        "vdi/*.vdi",
        "qed/*.qed",
        "parallels/*.hds",
    )
    for p in CORPUS.glob(pattern)
    # Extents of a split or flat VMDK are descriptors' files, not images of their own.
    if not p.name.startswith(("split-s", "splitflat-f", "flat-flat"))
)
CHECK_SAMPLES = sorted(
    p for p in (CORPUS / "check").iterdir() if p.is_file() and p.suffix not in (".py", ".sh", ".tsv")
)


def cargo_target() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


@pytest.fixture(scope="session")
def cli() -> Path:
    """The vmsnap binary: $VMSNAP_BIN, else target/{debug,release}/vmsnap, else built."""
    if os.environ.get("VMSNAP_BIN"):
        return Path(os.environ["VMSNAP_BIN"])
    for profile in ("debug", "release"):
        b = cargo_target() / profile / "vmsnap"
        if b.is_file():
            return b
    subprocess.run(["cargo", "build", "-q", "-p", "vmsnap-cli"], cwd=ROOT, check=True)
    return cargo_target() / "debug" / "vmsnap"


def run_json(args: list, cwd: Path = ROOT, stdin=None) -> dict:
    out = subprocess.run(args, cwd=cwd, stdin=stdin, capture_output=True, check=False)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError as e:  # pragma: no cover - a failure's message
        raise AssertionError(f"{args}: not JSON ({e}): {out.stdout!r} {out.stderr!r}") from e


@pytest.fixture(scope="session")
def qemu_img() -> str:
    q = shutil.which("qemu-img")
    if q is None:
        pytest.fail("qemu-img is missing: bash tools/setup.sh installs it")
    return q


def rel(p: Path) -> str:
    """The path as the tests name it to both the CLI and the package."""
    return str(p.relative_to(ROOT))


# The real booted guest of `cargo xtask paging-guests` (4-level paging), when made.
REAL_GUEST = ROOT / "target" / "paging" / "pc-4level"


def banners(command: list, image: Path) -> list:
    """Volatility's `banners.Banners` rows for `image`, run by `command` (`vol`, or
    `python -m vmsnap.volatility`)."""
    out = subprocess.run(
        [*command, "-q", "-r", "json", "-f", str(image), "banners.Banners"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def real_core_banners() -> list:
    """Volatility's own banners on QEMU's `dump-guest-memory` core of the real guest
    (computed once: both the vmsnap layer and the export tests compare with them)."""
    import sys

    rows = banners([str(Path(sys.executable).parent / "vol")], REAL_GUEST / "core.elf")
    assert rows, "Volatility finds no banner in the ELF core"
    return rows
