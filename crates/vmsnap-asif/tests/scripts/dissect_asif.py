"""Prints what dissect.hypervisor reads from an ASIF image, as one JSON object:

  size         the virtual size
  guid         the header's UUID
  metadata     the metadata property list (dict), {} without one
  pieces       {offset: hex} for every PIECE-byte piece of the whole disk that is not all
               zeros (the rest reads as zeros)

Usage: dissect_asif.py FILE PIECE (with a Python that has `pip install dissect.hypervisor`)."""
import json
import sys

from dissect.hypervisor.disk.asif import ASIF

path, piece = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as fh:
    asif = ASIF(fh)
    stream = asif.open()
    pieces = {}
    offset = 0
    while offset < asif.size:
        data = stream.read(min(piece, asif.size - offset))
        if len(data) == 0:
            raise SystemExit(f"dissect read nothing at {offset:#x}")
        if data.strip(b"\0"):
            pieces[str(offset)] = data.hex()
        offset += len(data)
    json.dump(
        {
            "size": asif.size,
            "guid": str(asif.guid),
            "metadata": asif.metadata,
            "pieces": pieces,
        },
        sys.stdout,
    )
