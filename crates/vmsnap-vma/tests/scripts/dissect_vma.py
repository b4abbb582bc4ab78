"""What dissect.archive reads from a VMA archive, as JSON on stdout: uuid, creation time,
configuration files (hex), devices (id, name, size); every byte dissect reads from
each device goes to OUTDIR/<id>.raw. `tests/dissect.rs` compares vmsnap's reading with it.

usage: dissect_vma.py FILE.vma OUTDIR
"""

import json
import os
import sys

from dissect.archive.vma import VMA

with open(sys.argv[1], "rb") as fh:
    vma = VMA(fh)
    devices = []
    for d in vma.devices():
        data = d.open().read()
        with open(os.path.join(sys.argv[2], f"{d.id}.raw"), "wb") as out:
            out.write(data)
        devices.append(
            {
                "id": d.id,
                "name": d.name,
                "size": d.size,
            }
        )
    json.dump(
        {
            "uuid": str(vma.uuid),
            "ctime": vma.creation_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "configs": {k: v.hex() for k, v in vma.configs().items()},
            "devices": devices,
        },
        sys.stdout,
    )
