"""Dumps what dissect.hypervisor's VMX parser returns for a .vmx or .vmsd, as one JSON
object: `attr` (VMX.attr: lower-case keys, values with their quotes stripped), `disks`
(VMX.disks()), `encrypted` (VMX.encrypted) and, for an encrypted VMX, `locators` (the
wrapped-key kind of each pair of its KeySafe)."""
import json
import sys

from dissect.hypervisor.descriptor.vmx import VMX, KeySafe, Phrase

with open(sys.argv[1], encoding="utf-8") as f:
    vmx = VMX.parse(f.read())
out = {"attr": vmx.attr, "disks": vmx.disks(), "encrypted": vmx.encrypted}
if vmx.encrypted:
    safe = KeySafe.from_text(vmx.attr["encryption.keysafe"])
    out["locators"] = [
        "phrase" if isinstance(p.wrapped_key, Phrase) else type(p.wrapped_key).__name__
        for p in safe.locators
    ]
    out["macs"] = [p.mac for p in safe.locators]
print(json.dumps(out))
