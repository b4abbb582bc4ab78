#!/usr/bin/env bash
# Regenerates the QEMU stream samples in corpus/qemu (run from the repo root).
# A paused (-S) TCG guest without disk gets seeded blobs in RAM via -device loader;
# at that moment we save `info registers`, dump-guest-memory (ELF core, the oracle) and
# migrate to file: (default QEMU 10 stream). Fresh paused VMs restored from that stream
# (-incoming) then write the other variants: send-switchover-start=off, mapped-ram,
# suppress-vmdesc=on.
# Env: OUT (default corpus/qemu), MEM (default 64M), MACHINES (default "pc q35"),
#      HIGH=1 adds blobs above 4 GiB (for 4 GiB guests), GZIP=0 keeps the big files raw.
set -euo pipefail
OUT=${OUT:-corpus/qemu}
MEM=${MEM:-64M}
MACHINES=${MACHINES:-pc q35}
HIGH=${HIGH:-0}
GZIP=${GZIP:-1}
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Seeded blobs: deterministic pseudo-random bytes.
python3 - "$WORK" <<'PY'
import random, sys
d = sys.argv[1]
for name, size, seed in [("b1", 8192, 1), ("b2", 5000, 2), ("b3", 16384, 3), ("b4", 4096, 4)]:
    r = random.Random(seed)
    open(f"{d}/{name}", "wb").write(bytes(r.getrandbits(8) for _ in range(size)))
PY
LOADERS=(-device "loader,file=$WORK/b1,addr=0x200000,force-raw=on"
         -device "loader,file=$WORK/b2,addr=0x1234000,force-raw=on"
         -device "loader,file=$WORK/b3,addr=0x3000000,force-raw=on")
if [ "$HIGH" = 1 ]; then
  LOADERS+=(-device "loader,file=$WORK/b4,addr=0x7f000000,force-raw=on"
            -device "loader,file=$WORK/b3,addr=0x100200000,force-raw=on"
            -device "loader,file=$WORK/b1,addr=0x13f000000,force-raw=on")
fi

for M in $MACHINES; do
  tag="$M-$(echo "$MEM" | tr 'A-Z' 'a-z')"
  python3 - "$WORK" "$OUT" "$tag" "$M" "$MEM" "${LOADERS[@]}" <<'PY'
import json, os, socket, subprocess, sys, time
work, out, tag, machine, mem = sys.argv[1:6]
loaders = sys.argv[6:]
base = ["qemu-system-x86_64", "-S", "-accel", "tcg", "-display", "none", "-nodefaults",
        "-m", mem] + loaders

class Qmp:
    def __init__(self, name, extra, machine_opts=""):
        self.sock = os.path.join(work, name + ".sock")
        m = machine + machine_opts
        self.p = subprocess.Popen(base + ["-M", m, "-qmp", f"unix:{self.sock},server=on,wait=off"] + extra)
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        self.s = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            try:
                self.s.connect(self.sock); break
            except OSError:
                time.sleep(0.05)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")
    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n"); self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r: return r["return"]
            if "error" in r: raise SystemExit(f"{name}: {r['error']}")
    def wait_migration(self):
        for _ in range(6000):
            st = self.cmd("query-migrate").get("status")
            if st == "completed": return
            if st in ("failed", "cancelled"): raise SystemExit(f"migration {st}")
            time.sleep(0.05)
        raise SystemExit("migration timeout")
    def quit(self):
        try: self.cmd("quit")
        except Exception: pass
        self.p.wait(timeout=60)

stream = os.path.join(out, f"{tag}.qevm")
a = Qmp("a", [])
open(os.path.join(out, f"{tag}.regs.txt"), "w").write(
    a.cmd("human-monitor-command", **{"command-line": "info registers"}))
a.cmd("dump-guest-memory", paging=False, protocol="file:" + os.path.join(work, f"{tag}.elf"))
a.cmd("migrate", uri="file:" + stream)
a.wait_migration()
a.quit()

def restored(name, target, caps=(), machine_opts="", extra=()):
    v = Qmp(name, ["-incoming", "defer"] + list(extra), machine_opts)
    v.cmd("migrate-incoming", uri="file:" + stream)
    v.wait_migration()
    for _ in range(200):
        if v.cmd("query-status")["status"] in ("prelaunch", "paused"): break
        time.sleep(0.05)
    if caps:
        v.cmd("migrate-set-capabilities",
              capabilities=[{"capability": c, "state": True} for c in caps])
    v.cmd("migrate", uri="file:" + target)
    v.wait_migration()
    v.quit()

restored("b", os.path.join(work, f"{tag}-noswitch.qevm"),
         extra=["-global", "migration.send-switchover-start=off"])
restored("c", os.path.join(work, f"{tag}-mapped.qevm"), caps=["mapped-ram"])
restored("d", os.path.join(work, f"{tag}-novmdesc.qevm"), machine_opts=",suppress-vmdesc=on")
PY
  for f in "$tag.elf" "$tag-mapped.qevm" "$tag-noswitch.qevm" "$tag-novmdesc.qevm"; do
    if [ "$GZIP" = 1 ]; then gzip -9n -c "$WORK/$f" > "$OUT/$f.gz"; else cp --sparse=always "$WORK/$f" "$OUT/$f"; fi
  done
done
chmod 644 "$OUT"/*.qevm* "$OUT"/*.elf* "$OUT"/*.txt
ls -l "$OUT"
