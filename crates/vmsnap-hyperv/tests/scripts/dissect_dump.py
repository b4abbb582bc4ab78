"""Dumps what dissect.hypervisor returns for a Hyper-V storage file, as one JSON object:

  values       [path components, kind, value] for every key dissect returns
               (kind: node, int, bool, double, string, array; arrays as hex)
  unreadable   [path components, error] for every key dissect returns but cannot read
               (a file object it does not know, a type it does not know): reported,
               never dropped, so the caller decides whether that is expected
  file_objects how many file objects dissect registered from the object table

Usage: dissect_dump.py FILE (with a Python that has `pip install dissect.hypervisor`)."""
import json
import sys

from dissect.hypervisor.descriptor.c_hyperv import KeyDataType
from dissect.hypervisor.descriptor.hyperv import HyperVFile


def walk(entries, path, values, unreadable):
    for name, e in entries.items():
        p = path + [name]
        try:
            is_node = e.type == KeyDataType.Node
            v = None if is_node else e.value
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            unreadable.append([p, f"{type(exc).__name__}: {exc}"])
            continue
        if is_node:
            values.append([p, "node", None])
            walk(e.children, p, values, unreadable)
        elif isinstance(v, bytes):
            values.append([p, "array", v.hex()])
        elif isinstance(v, bool):
            values.append([p, "bool", v])
        elif isinstance(v, float):
            values.append([p, "double", repr(v)])
        elif isinstance(v, int):
            values.append([p, "int", v])
        elif isinstance(v, str):
            values.append([p, "string", v])
        else:
            unreadable.append([p, f"unexpected Python type {type(v).__name__}"])


def main():
    with open(sys.argv[1], "rb") as fh:
        f = HyperVFile(fh)
        values, unreadable = [], []
        walk(f.root, [], values, unreadable)
        json.dump(
            {
                "values": values,
                "unreadable": unreadable,
                "file_objects": len(f.file_objects),
            },
            sys.stdout,
        )


if __name__ == "__main__":
    main()
