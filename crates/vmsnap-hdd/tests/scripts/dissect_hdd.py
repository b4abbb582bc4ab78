"""What dissect.hypervisor's Parallels reader (disk/hdd.py) reads from a .hdd bundle.

Usage: dissect_hdd.py BUNDLE OUT. Writes OUT/<guid>.raw, the disk in every snapshot as
HDD.open(guid) reads it (and OUT/top.raw for HDD.open() with no GUID), and prints the
descriptor as dissect parses it, as JSON.
"""

import json
import sys
from pathlib import Path

from dissect.hypervisor.disk.hdd import HDD


def main():
    bundle, out = Path(sys.argv[1]), Path(sys.argv[2])
    hdd = HDD(bundle)
    d = hdd.descriptor
    shots = [{"guid": str(s.guid), "parent": str(s.parent)} for s in d.snapshots.shots]
    storages = [
        {
            "start": s.start,
            "end": s.end,
            "images": [{"guid": str(i.guid), "type": i.type, "file": i.file} for i in s.images],
        }
        for s in d.storage_data.storages
    ]
    for s in d.snapshots.shots:
        stream = hdd.open(s.guid)
        (out / f"{s.guid}.raw").write_bytes(stream.read())
    (out / "top.raw").write_bytes(hdd.open().read())
    print(json.dumps({"shots": shots, "storages": storages}))


main()
