"""Volatility 3 through vmsnap: a layer and a stacker that Volatility's automagic uses.

Importing this module (``python -m vmsnap.volatility`` does, before Volatility's command
line runs) registers :class:`VmsnapStacker` with Volatility's automagic. For a local file
that vmsnap stacks down to guest-physical memory — a QEMU 7–10 migration stream
(mapped-ram too), a qcow2 with savevm state, a libvirt save, VMware ``.vmss``/``.vmsn``
(embedded memory too), Hyper-V ``.vmrs``, ELF cores, LiME — the stacker puts a
:class:`VmsnapLayer` on Volatility's file layer; Volatility's own page-table automagic
(``LinuxIntelStacker``, ``WindowsIntelStacker`` …) then runs above it. A file vmsnap sees
as plain raw bytes is left to Volatility.

The layer's metadata offers what the snapshot recorded: ``vmsnap_cr3`` (the first vCPU's
CR3, the page-table root) and ``vmsnap_layer`` (the vmsnap layer read). When that vCPU was
in 4-level long mode the CR3's table address is ``page_map_offset``; when that table passes
the test Volatility's ``WindowsIntelStacker`` scans memory with (``DtbSelfRef64bit``: one
self-referencing entry, Windows' self-map), the metadata also says ``os: Windows`` and
``architecture: Intel64`` — the hint Volatility's Windows stacker takes instead of
scanning, so the stacked ``WindowsIntel32e`` layer uses the recorded CR3 (the same table
then also finds a DTB where Volatility's scan ranges do not reach). Linux kernels are
stacked by Volatility from their symbols (``init_top_pgt``), which take no hint.
"""

from __future__ import annotations

import bisect
import logging
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

from volatility3.framework import constants, exceptions, interfaces
from volatility3.framework.automagic import windows as vol_windows
from volatility3.framework.configuration import requirements

import vmsnap

vollog = logging.getLogger(__name__)

__all__ = ["VmsnapLayer", "VmsnapStacker", "dtb_hints", "memory_layer"]

_CR0_PG = 1 << 31
_CR4_PAE = 1 << 5
_CR4_LA57 = 1 << 12
# CR3 bits 51:12 in long mode (the low bits are PCID or flags, bit 63 no-flush).
_CR3_TABLE_64 = 0x000F_FFFF_FFFF_F000
_PAGE = 0x1000


def _local_path(location: str) -> Optional[str]:
    """The local path of a ``file:`` URL, else None."""
    url = urllib.parse.urlparse(location)
    if url.scheme != "file":
        return None
    return urllib.request.url2pathname(url.path)


def memory_layer(stack: "vmsnap.Stack") -> Optional["vmsnap.Layer"]:
    """The guest-physical layer of a stack (the topmost), or None."""
    mem = [layer for layer in stack.layers if layer.space == "guest_physical"]
    return mem[-1] if mem else None


def dtb_hints(cpu: Dict[str, Any], page_at) -> Dict[str, Any]:
    """Metadata for Volatility's Intel stackers from one recorded vCPU (a
    ``Layer.cpu_state()`` entry); ``page_at(offset)`` gives a physical page or None.

    In 4-level long mode: ``page_map_offset`` (CR3's table); with ``os: Windows`` and
    ``architecture: Intel64`` too when the table passes Volatility's own
    ``DtbSelfRef64bit`` test, which is what its ``WindowsIntelStacker`` needs to take the
    DTB from the layer instead of scanning for one. Other modes give nothing."""
    cr0, cr3, cr4 = cpu.get("cr0", 0), cpu.get("cr3"), cpu.get("cr4", 0)
    if cr3 is None or cpu.get("arch") != "x86_64":
        return {}
    if not (cr0 & _CR0_PG and cr4 & _CR4_PAE) or cr4 & _CR4_LA57:
        return {}
    dtb = cr3 & _CR3_TABLE_64
    hints: Dict[str, Any] = {"page_map_offset": dtb}
    page = page_at(dtb)
    if page is not None and vol_windows.DtbSelfRef64bit()(page, dtb, 0) is not None:
        hints.update(os="Windows", architecture="Intel64")
    return hints


class VmsnapLayer(interfaces.layers.DataLayerInterface):
    """Guest-physical memory read through vmsnap from the file of ``base_layer``.

    Addresses that no stored range covers (holes between RAM blocks, PCI holes) are not
    valid: reads there raise ``InvalidAddressException`` unless padded, as Volatility's own
    segmented layers do.
    """

    _direct_metadata = {"architecture": "Unknown", "os": "Unknown"}

    def __init__(
        self,
        context: interfaces.context.ContextInterface,
        config_path: str,
        name: str,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(context, config_path, name, metadata)
        base = self.context.layers[self.config["base_layer"]]
        path = _local_path(getattr(base, "location", "") or "")
        if path is None:
            raise exceptions.LayerException(name, "vmsnap reads local files only")
        self._stack = vmsnap.open(path)
        spec = self.config.get("vmsnap_layer", None)
        layer = self._stack.layer(spec) if spec else memory_layer(self._stack)
        if layer is None:
            raise exceptions.LayerException(name, f"vmsnap finds no guest-physical memory in {path}")
        self._layer = layer
        self._size = layer.size
        # Valid ranges: stored data and zeros, merged (start, end) sorted.
        self._starts: List[int] = []
        self._ends: List[int] = []
        for e in layer.extents():
            if e["kind"] not in ("data", "zero"):
                continue
            if self._ends and self._ends[-1] == e["start"]:
                self._ends[-1] = e["start"] + e["length"]
            else:
                self._starts.append(e["start"])
                self._ends.append(e["start"] + e["length"])
        cpus = []
        try:
            cpus = layer.cpu_state()
        except vmsnap.Error:
            pass
        self._metadata = dict(self._metadata or {})
        self._metadata["vmsnap_layer"] = layer.name
        if cpus:
            self._metadata["vmsnap_cr3"] = cpus[0]["cr3"]
            self._metadata.update(dtb_hints(cpus[0], self._table))

    def _table(self, offset: int) -> Optional[bytes]:
        """The page at ``offset`` if stored, else None."""
        if not self.is_valid(offset, _PAGE):
            return None
        data = self._layer.read_at(offset, _PAGE)
        return data if len(data) == _PAGE else None

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return [
            requirements.TranslationLayerRequirement(
                name="base_layer", description="The file vmsnap opens", optional=False
            ),
            requirements.StringRequirement(
                name="vmsnap_layer",
                description="The vmsnap layer to read (default: the guest-physical one)",
                optional=True,
            ),
        ]

    @property
    def dependencies(self) -> List[str]:
        return [self.config["base_layer"]]

    @property
    def maximum_address(self) -> int:
        return max(self._size - 1, 0)

    @property
    def minimum_address(self) -> int:
        return 0

    def _covered(self, offset: int, length: int) -> bool:
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and self._ends[i] >= offset + length

    def is_valid(self, offset: int, length: int = 1) -> bool:
        if offset < 0 or length < 0 or offset + length > self._size:
            return False
        return self._covered(offset, max(length, 1))

    def read(self, offset: int, length: int, pad: bool = False) -> bytes:
        if offset < 0:
            raise exceptions.InvalidAddressException(self.name, offset, "negative address")
        if not pad and not self.is_valid(offset, length):
            raise exceptions.InvalidAddressException(
                self.name, offset, f"Offset outside of the {self.name} layer's stored ranges"
            )
        data = self._layer.read_at(offset, length)
        if len(data) < length:
            data += b"\x00" * (length - len(data))
        return data

    def write(self, offset: int, data: bytes) -> None:
        raise exceptions.LayerException(self.name, "vmsnap layers are read-only")

    def _scan_iterator(
        self, scanner: interfaces.layers.ScannerInterface, sections
    ):
        # Only the stored ranges are scanned: holes hold nothing to find.
        for section_start, section_length in sections:
            end = section_start + section_length
            i = max(bisect.bisect_right(self._starts, section_start) - 1, 0)
            ranges: List[Tuple[int, int]] = []
            while i < len(self._starts) and self._starts[i] < end:
                s, e = max(self._starts[i], section_start), min(self._ends[i], end)
                if s < e:
                    ranges.append((s, e - s))
                i += 1
            yield from super()._scan_iterator(scanner, ranges)


class VmsnapStacker(interfaces.automagic.StackerLayerInterface):
    """Stacks a :class:`VmsnapLayer` on a local file vmsnap reads as memory."""

    # Before Volatility's own format stackers (10 and above).
    stack_order = 5

    @classmethod
    def stack(
        cls,
        context: interfaces.context.ContextInterface,
        layer_name: str,
        progress_callback: constants.ProgressCallback = None,
    ) -> Optional[interfaces.layers.DataLayerInterface]:
        base = context.layers[layer_name]
        path = _local_path(getattr(base, "location", "") or "")
        if path is None:
            return None
        try:
            stack = vmsnap.open(path)
        except vmsnap.Error as e:
            vollog.log(constants.LOGLEVEL_VV, f"vmsnap does not stack {path}: {e}")
            return None
        mem = memory_layer(stack)
        if mem is None:
            return None
        new_name = context.layers.free_layer_name("VmsnapLayer")
        context.config[interfaces.configuration.path_join(new_name, "base_layer")] = layer_name
        context.config[interfaces.configuration.path_join(new_name, "vmsnap_layer")] = mem.name
        vollog.log(constants.LOGLEVEL_V, f"vmsnap stacks {path} as {mem.name}")
        return VmsnapLayer(context, new_name, new_name)
