#!/usr/bin/env python3
"""vmsnap check beside OpenStack's format inspector (oslo.utils) on every disk sample.

Usage: compare-oslo.py VMSNAP_BINARY [FILES...]   (default: the disk samples in corpus/)
Needs `pip install 'oslo.utils==10.2.*' cryptography` (`cargo xtask compare-oslo` makes a
venv under target/ with them). Prints one row per file: the format, virtual
size and verdict of each tool, and the rules each failed. Exit 1 when vmsnap calls a file
safe that OpenStack rejects, unless the case is listed in docs/inspection.md as deliberate
(those are marked "deliberate" here).
"""
import glob
import json
import os
import subprocess
import sys

from oslo_utils.imageutils import format_inspector

DISK_DIRS = ["qcow2", "vmdk", "vhd", "vhdx", "vdi", "qed", "parallels", "raw", "check"]
# OpenStack names -> vmsnap names.
NAMES = {"vhd": "vhd", "vhdx": "vhdx", "qcow2": "qcow2", "vmdk": "vmdk", "raw": "raw",
         "vdi": "vdi", "iso": "iso", "gpt": "gpt", "luks": "luks", "qed": "qed"}
# (file, why) where vmsnap deliberately answers "safe" although OpenStack rejects.
DELIBERATE = {
    "qcow1.qcow": "vmsnap reads qcow v1 (its backing file is a finding like qcow2's); "
                  "OpenStack rejects the version because it cannot parse it",
    "extl2.qcow2": "extended L2 entries (incompatible bit 4) are read by QEMU since 5.2 and "
                   "by vmsnap; OpenStack rejects every incompatible bit above 3",
}


def oslo(path):
    try:
        insp = format_inspector.detect_file_format(path)
    except Exception as e:  # OpenStack raises on ambiguity and on some descriptors
        return ("error", None, "unsafe", f"{type(e).__name__}: {e}")
    try:
        insp.safety_check()
        verdict, why = "safe", ""
    except format_inspector.SafetyCheckFailed as e:
        verdict, why = "unsafe", ",".join(sorted(e.failures))
    except Exception as e:
        verdict, why = "unsafe", f"{type(e).__name__}"
    return (NAMES.get(insp.NAME, insp.NAME), insp.virtual_size, verdict, why)


def vmsnap(binary, path):
    out = subprocess.run([binary, "check", "--json", path], capture_output=True, text=True)
    try:
        r = json.loads(out.stdout)
    except json.JSONDecodeError:
        return ("error", None, "error", out.stderr.strip()[:60])
    failed = ",".join(x["rule"] for x in r.get("rules", []) if x["verdict"] == "fail")
    return (r.get("format"), r.get("virtual_size"), r.get("verdict"), failed)


def main():
    binary = sys.argv[1]
    files = sys.argv[2:]
    if not files:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
        for d in DISK_DIRS:
            for f in sorted(glob.glob(os.path.join(root, d, "*"))):
                if os.path.isfile(f) and not f.endswith((".sh", ".md", ".txt", ".py", ".tsv")) \
                        and not (f.endswith(".gz") and "/check/" not in f):
                    files.append(f)
    bad = 0
    print(f"{'file':<34} {'openstack':<34} {'vmsnap':<40} note")
    for f in files:
        o = oslo(f)
        v = vmsnap(binary, f)
        name = os.path.relpath(f, os.path.join(os.path.dirname(f), "..", ".."))
        note = ""
        if o[0] != v[0]:
            note = "format differs"
        if v[2] == "safe" and o[2] != "safe":
            if os.path.basename(f) in DELIBERATE:
                note = "deliberate: " + DELIBERATE[os.path.basename(f)]
            else:
                note = "VMSNAP SAFE, OPENSTACK NOT"
                bad += 1
        os_col = f"{o[0]} {o[1]} {o[2]} {o[3]}"[:33]
        vm_col = f"{v[0]} {v[1]} {v[2]} {v[3]}"[:39]
        print(f"{name[-34:]:<34} {os_col:<34} {vm_col:<40} {note}")
    print(f"{len(files)} files; {bad} called safe by vmsnap but not by OpenStack without a reason")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
