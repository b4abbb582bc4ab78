"""The native module (pyo3). Use the `vmsnap` package's names instead."""

from typing import Any, Optional

SCHEMA_VERSION: int

class Error(Exception):
    kind: str
    file: Optional[str]
    layer: Optional[str]
    offset: Optional[int]

class NativeLayer:
    name: str
    index: Optional[int]
    space: str
    plugin_kind: Optional[str]
    plugin: Optional[str]
    size: int
    def describe(self) -> dict[str, Any]: ...
    def read_at(self, offset: int, n: int) -> bytes: ...
    def readinto_at(self, offset: int, buffer: Any) -> int: ...
    def extents(self) -> list[dict[str, Any]]: ...
    def translate(self, addr: int) -> dict[str, Any]: ...
    def cpu_state(self) -> list[dict[str, Any]]: ...
    def bench_sequential(self, chunk: int, limit: int) -> tuple[int, float]: ...

class Stack:
    file: str
    layers: list[NativeLayer]
    default: NativeLayer
    findings: list[dict[str, Any]]
    external_refs: list[dict[str, Any]]
    def layer(self, spec: str) -> NativeLayer: ...
    def describe(self) -> dict[str, Any]: ...
    def __len__(self) -> int: ...

class Inspector:
    total: int
    retained: int
    def __init__(
        self,
        format: Optional[str] = None,
        allow: list[str] = ...,
        max_stream: int = ...,
        name: str = "-",
    ) -> None: ...
    def feed(self, data: Any) -> bool: ...
    def finish(self) -> dict[str, Any]: ...

def open(
    path: str, external: Optional[str] = None, missing: str = "error", options: Optional[dict[str, Any]] = None
) -> Stack: ...
def check_path(
    path: str, format: Optional[str] = None, allow: list[str] = ..., max_stream: int = ...
) -> dict[str, Any]: ...
def format_names() -> list[str]: ...
