"""Prints what dissect.hypervisor's VirtualBox descriptor parser reads from a .vbox file,
as JSON, for crates/vmsnap-vbox/tests/dissect.rs."""
import json
import sys

from dissect.hypervisor.descriptor.vbox import VBox

with open(sys.argv[1]) as fh:
    vbox = VBox(fh)


def uuid(u):
    return None if u is None else str(u)


print(json.dumps({
    "name": vbox.name,
    "uuid": uuid(vbox.uuid),
    "current_snapshot": uuid(vbox.machine.current_snapshot),
    "media": {
        str(u): {
            "location": m.location,
            "format": m.format,
            "type": m.type,
            "parent": uuid(m.parent.uuid) if m.parent is not None else None,
            "encrypted": m.is_encrypted,
        }
        for u, m in vbox.media.items()
    },
    "disks": [str(d.uuid) for d in vbox.hardware.disks],
    "snapshots": {
        str(u): {
            "name": s.name,
            "parent": uuid(s.parent.uuid) if s.parent is not None else None,
            "disks": [str(d.uuid) for d in s.hardware.disks],
        }
        for u, s in vbox.snapshots.items()
    },
}))
