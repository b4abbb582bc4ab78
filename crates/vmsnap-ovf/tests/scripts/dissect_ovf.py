"""What dissect.hypervisor reads from an OVF package.

Usage: dissect_ovf.py DESCRIPTOR.ovf. Prints, as JSON, the disk files `OVF.disks()`
(descriptor/ovf.py) lists, in drive order, and for each the SHA-256 of the disk's bytes as
dissect's own disk readers read them (disk/vmdk.py for VMDK, disk/qcow2.py for qcow2) from
the file beside the descriptor.
"""

import hashlib
import json
import sys
from pathlib import Path

from dissect.hypervisor.descriptor.ovf import OVF
from dissect.hypervisor.disk.qcow2 import QCow2
from dissect.hypervisor.disk.vmdk import VMDK


def disk_bytes(path):
    with path.open("rb") as fh:
        if path.suffix == ".qcow2":
            stream = QCow2(fh).open()
        else:
            stream = VMDK(fh)
        h = hashlib.sha256()
        size = stream.size
        done = 0
        while done < size:
            chunk = stream.read(min(1 << 20, size - done))
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
        return {"size": size, "sha256": h.hexdigest()}


def main():
    path = Path(sys.argv[1])
    with path.open() as fh:
        disks = list(OVF(fh).disks())
    out = {"disks": disks, "bytes": {d: disk_bytes(path.parent / d) for d in disks}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
