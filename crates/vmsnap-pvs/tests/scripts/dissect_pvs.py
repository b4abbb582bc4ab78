"""What dissect.hypervisor reads from a Parallels .pvm bundle.

Usage: dissect_pvs.py VM_DIR OUT. Prints, as JSON, the disk file names descriptor/pvs.py's
PVS.disks() yields from VM_DIR/config.pvs; for each disk i whose .hdd bundle
disk/hdd.py opens, writes OUT/<i>.raw (HDD.open(): the current state) and
OUT/<i>.<guid>.raw (HDD.open(guid): every snapshot of the bundle). A bundle named by an
absolute path from another host is looked for by its last name in VM_DIR.
"""

import json
import sys
from pathlib import Path

from dissect.hypervisor.descriptor.pvs import PVS
from dissect.hypervisor.disk.hdd import HDD


def main():
    vm, out = Path(sys.argv[1]), Path(sys.argv[2])
    with (vm / "config.pvs").open() as fh:
        disks = list(PVS(fh).disks())
    for i, name in enumerate(disks):
        bundle = vm / name
        if not bundle.is_dir():
            bundle = vm / Path(name).name
        if not (bundle / "DiskDescriptor.xml").is_file():
            continue
        hdd = HDD(bundle)
        (out / f"{i}.raw").write_bytes(hdd.open().read())
        for s in hdd.descriptor.snapshots.shots:
            (out / f"{i}.{s.guid}.raw").write_bytes(hdd.open(s.guid).read())
    print(json.dumps({"disks": disks}))


main()
