"""vmsnap: open what hypervisors leave on disk as address spaces you can read.

A file becomes a stack of layers, stacked by itself like Volatility 3's automagic: a
qcow2 disk, the QEMU migration stream inside one of its snapshots, the guest-physical
memory that stream holds, and the guest-virtual space its page tables make::

    import vmsnap
    stack = vmsnap.open("savevm.qcow2")
    for layer in stack.layers:
        print(layer.name, layer.space, layer.plugin_kind, layer.size)
    mem = stack.layer("qcow2/snap1/qemu")      # a Layer: an io.RawIOBase
    mem.seek(0x100000); head = mem.read(4096)
    mem.read_at(0x7000, 16)                   # like os.pread: short past the end
    mem.extents()                             # as `vmsnap map --json`

    vmsnap.check("upload.img", format="qcow2")   # the `vmsnap check --json` object

The documents (``Stack.describe()``, ``Layer.describe()``, ``Layer.extents()``,
``check()``) have the same content and names as the CLI's ``--json`` output: the same
code builds both. Errors are :class:`vmsnap.Error` with ``.kind`` (the CLI's error kind)
and the CLI's message. ``vmsnap.format_inspector`` offers OpenStack's
``oslo_utils.imageutils.format_inspector`` call shapes; ``python -m vmsnap.volatility``
runs Volatility 3 with vmsnap's layers registered.
"""

from __future__ import annotations

import io
import os
from typing import Any, Iterable, Optional, Union

from . import _vmsnap
from ._vmsnap import Error, Inspector, SCHEMA_VERSION, format_names

__all__ = [
    "Error",
    "Inspector",
    "Layer",
    "Stack",
    "SCHEMA_VERSION",
    "check",
    "format_names",
    "open",
]


Error.__doc__ = (
    "Every error vmsnap raises. ``.kind`` is the CLI's error kind (``malformed``, "
    "``truncated``, ``unsupported``, ``limit_exceeded``, ``out_of_bounds``, "
    "``policy_denied``, ``unavailable``, ``not_found``, ``invalid_argument``, ``io``, …); "
    "``.file``, ``.layer`` and ``.offset`` say where (None where unknown)."
)


class Layer(io.RawIOBase):
    """One layer of a stack as a readable, seekable binary file.

    Besides the file-object methods (``read``, ``readinto``, ``seek``, ``tell``), a layer
    reads at any offset without moving (``read_at``, ``readinto_at``), lists its extents
    (``extents()``, as ``vmsnap map --json``) and, for translation layers, translates
    virtual addresses (``translate()``). Reads release the GIL, so threads read in
    parallel.
    """

    def __init__(self, native: "_vmsnap.NativeLayer"):
        super().__init__()
        self._native = native
        self._pos = 0
        self._size = native.size
        # Positioned reads go straight to the native methods (no Python frame between):
        # random 4 KiB reads are dominated by call overhead.
        self.read_at = native.read_at
        self.readinto_at = native.readinto_at

    # -- what the layer is ------------------------------------------------------------
    @property
    def name(self) -> str:
        """The layer's name in the stack (``qcow2``, ``qcow2/snap1/qemu``, ``x86``)."""
        return self._native.name

    @property
    def index(self) -> Optional[int]:
        """Its index in ``Stack.layers`` (as ``vmsnap info`` numbers it)."""
        return self._native.index

    @property
    def space(self) -> str:
        """The address space: ``file``, ``guest_disk``, ``guest_physical``, ``guest_virtual``, …"""
        return self._native.space

    @property
    def plugin_kind(self) -> Optional[str]:
        """The kind of plugin that opened it (``disk``, ``memory``, ``translation``, …)."""
        return self._native.plugin_kind

    @property
    def plugin(self) -> Optional[str]:
        """The plugin that opened it (``qcow2``), None for the file itself."""
        return self._native.plugin

    @property
    def size(self) -> int:
        """Its size in bytes."""
        return self._size

    def describe(self) -> dict:
        """This layer's entry of ``vmsnap info --json``'s ``layers``."""
        return self._native.describe()

    def extents(self) -> list:
        """The extents as ``vmsnap map --json`` lists them."""
        return self._native.extents()

    def translate(self, addr: int) -> dict:
        """The page-table walk of virtual address ``addr`` (``vmsnap translate --json``)."""
        return self._native.translate(addr)

    def cpu_state(self) -> list:
        """The CPU state the snapshot records, registers as Python ints."""
        out = []
        for cpu in self._native.cpu_state():
            cpu = dict(cpu)
            for key in ("cr0", "cr3", "cr4", "efer"):
                if isinstance(cpu.get(key), str):
                    cpu[key] = int(cpu[key], 16)
            if isinstance(cpu.get("regs"), dict):
                cpu["regs"] = {
                    k: int(v, 16) if isinstance(v, str) else v for k, v in cpu["regs"].items()
                }
            out.append(cpu)
        return out

    # -- reading at an offset ---------------------------------------------------------
    def read_at(self, offset: int, n: int) -> bytes:  # replaced per instance by the native method
        """Up to ``n`` bytes at ``offset``: fewer past the end, like ``os.pread``."""
        return self._native.read_at(offset, n)

    def readinto_at(self, offset: int, buffer) -> int:  # replaced per instance likewise
        """Reads into a writable buffer at ``offset`` (no copy); returns the byte count."""
        return self._native.readinto_at(offset, buffer)

    # -- io.RawIOBase ---------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if pos < 0:
            raise OSError(22, f"negative seek position {pos}")
        self._pos = pos
        return pos

    def read(self, size: int = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            size = max(self._size - self._pos, 0)
        data = self._native.read_at(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer) -> int:
        self._check_open()
        n = self._native.readinto_at(self._pos, buffer)
        self._pos += n
        return n

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed layer")

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"<vmsnap.Layer {self.name!r} ({self.space}, {self.size} bytes)>"


class Stack:
    """The layers one file stacks into (made by :func:`vmsnap.open`)."""

    def __init__(self, native: "_vmsnap.Stack"):
        self._native = native

    @property
    def file(self) -> str:
        """The file the stack was opened from."""
        return self._native.file

    @property
    def layers(self) -> list[Layer]:
        """Every layer, bottom (the file) first, numbered as ``vmsnap info`` numbers them."""
        return [Layer(n) for n in self._native.layers]

    @property
    def default(self) -> Layer:
        """The layer ``vmsnap cat`` reads without ``--layer``."""
        return Layer(self._native.default)

    def layer(self, spec: Union[str, int]) -> Layer:
        """The layer ``spec`` names as ``--layer`` takes it: an index, a name, ``qcow2/snap1``."""
        return Layer(self._native.layer(str(spec)))

    def describe(self) -> dict:
        """The whole ``vmsnap info --json`` document."""
        return self._native.describe()

    @property
    def findings(self) -> list:
        """Every finding of every layer (``info --json``'s ``findings``)."""
        return self._native.findings

    @property
    def external_refs(self) -> list:
        """Every external reference the stack's files make, and what became of it."""
        return self._native.external_refs

    def __len__(self) -> int:
        return len(self._native)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        return repr(self._native)


def open(  # noqa: A001 - the library's verb
    path: Union[str, os.PathLike],
    external: Optional[str] = None,
    missing: str = "error",
    options: Optional[dict] = None,
) -> Stack:
    """Opens ``path`` and stacks it into layers.

    ``external``: which files the image may make vmsnap open (backing files, parents,
    extents): ``"same_dir"`` (plain names in the image's directory), ``"vm_dir"`` (the VM
    configuration's directory and below), ``"none"``, ``"any"``; by default ``"vm_dir"``
    for a VM configuration or bundle (``.vmx``, ``.vbox``, ``DiskDescriptor.xml``,
    ``config.pvs``, a VM directory), else ``"same_dir"``. ``missing``: what reads do where such a file was not opened:
    ``"error"`` (the default) or ``"zeros"``. ``options``: plugin options, as the CLI's
    ``-o key=value``.
    """
    return Stack(_vmsnap.open(os.fspath(path), external, missing, dict(options or {})))


_CHUNK = 1 << 20


def check(
    path_or_fileobj,
    format: Optional[str] = None,  # noqa: A002 - the CLI's name
    allow: Iterable[str] = (),
    max_stream: Optional[int] = None,
) -> dict:
    """Is this image safe to hand to a hypervisor? Returns the ``vmsnap check --json``
    object (``verdict`` is ``safe``, ``unsafe`` or ``error``).

    ``path_or_fileobj``: a path (a FIFO or character device is read as a stream), or a
    binary file object, read front to back with bounded memory. ``format``: the format(s)
    the image must be (comma-separated, aliases such as ``vpc`` accepted); ``allow``:
    combinations such as ``"iso+gpt"`` to accept. Nothing outside the image is opened.
    """
    kwargs: dict[str, Any] = {"format": format, "allow": list(allow)}
    if max_stream is not None:
        kwargs["max_stream"] = max_stream
    if isinstance(path_or_fileobj, (str, bytes, os.PathLike)):
        return _vmsnap.check_path(os.fsdecode(path_or_fileobj), **kwargs)
    f = path_or_fileobj
    name = getattr(f, "name", "-")
    inspector = Inspector(name=name if isinstance(name, str) else "-", **kwargs)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    readinto = getattr(f, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            if not n:
                break
            chunk = view[:n]
        else:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
        if not inspector.feed(chunk):
            break
    return inspector.finish()
