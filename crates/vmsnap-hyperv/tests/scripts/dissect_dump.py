"""Dumps every key dissect.hypervisor returns for a Hyper-V storage file as JSON lines:
[path components, kind, value]. Values dissect cannot read are skipped."""
import json
import sys

from dissect.hypervisor.descriptor.hyperv import HyperVFile
from dissect.hypervisor.descriptor.c_hyperv import KeyDataType


def walk(entries, path, out):
    for name, e in entries.items():
        p = path + [name]
        if e.type == KeyDataType.Node:
            out.append([p, "node", None])
            walk(e.children, p, out)
            continue
        try:
            v = e.value
        except Exception:  # file objects dissect does not find, unknown types
            continue
        if isinstance(v, bytes):
            out.append([p, "array", v.hex()])
        elif isinstance(v, bool):
            out.append([p, "bool", v])
        elif isinstance(v, float):
            out.append([p, "double", repr(v)])
        elif isinstance(v, int):
            out.append([p, "int", v])
        else:
            out.append([p, "string", v])


with open(sys.argv[1], "rb") as fh:
    f = HyperVFile(fh)
    out = []
    walk(f.root, [], out)
    json.dump(out, sys.stdout)
