#!/usr/bin/env python3
"""Boots a Linux kernel under qemu-system-x86_64 (TCG, no disk, no initrd), waits until it
panics for want of a root file system, stops it and writes the same paused moment as:

  core.elf         dump-guest-memory, format elf (the oracle: PT_LOADs + QEMU CPU notes)
  flat.kdump       dump-guest-memory, format kdump-zlib (makedumpfile's flattened form)
  raw.kdump        dump-guest-memory, format kdump-raw-zlib (the plain diskdump file)
  formats.json     query-dump-guest-memory-capability (which kdump compressions this QEMU has)
  registers.txt    the monitor's `info registers` (CR3 among them)

Usage: dump-guest.py KERNEL OUTDIR [-m MiB]
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


class Qmp:
    def __init__(self, path):
        for _ in range(100):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("dump-guest: QMP did not come up")
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r:
                return r["return"]
            if "error" in r:
                sys.exit(f"dump-guest: {name}: {r['error']}")


def main():
    kernel, out = sys.argv[1], sys.argv[2]
    mem = sys.argv[sys.argv.index("-m") + 1] if "-m" in sys.argv else "32"
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    sock, serial = os.path.join(tmp, "qmp.sock"), os.path.join(out, "serial.log")
    vm = subprocess.Popen([
        "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "qemu64", "-m", mem,
        "-smp", "1", "-display", "none", "-nodefaults", "-no-reboot",
        "-kernel", kernel, "-append", "console=ttyS0 panic=0 nokaslr",
        "-device", "vmcoreinfo", "-serial", f"file:{serial}", "-qmp", f"unix:{sock},server=on,wait=off",
    ])
    try:
        q = Qmp(sock)
        deadline = time.time() + 900
        while time.time() < deadline:
            text = open(serial, errors="replace").read() if os.path.exists(serial) else ""
            if "Kernel panic" in text:
                break
            if vm.poll() is not None:
                sys.exit(f"dump-guest: QEMU exited ({vm.returncode}) before the kernel panicked:\n{text[-2000:]}")
            time.sleep(1)
        else:
            sys.exit("dump-guest: the kernel printed no panic within 900 s")
        time.sleep(2)
        q.cmd("stop")
        with open(os.path.join(out, "formats.json"), "w") as f:
            json.dump(q.cmd("query-dump-guest-memory-capability"), f)
            f.write("\n")
        with open(os.path.join(out, "registers.txt"), "w") as f:
            f.write(q.cmd("human-monitor-command", **{"command-line": "info registers"}))
        for name, fmt in [("core.elf", "elf"), ("flat.kdump", "kdump-zlib"),
                          ("raw.kdump", "kdump-raw-zlib")]:
            q.cmd("dump-guest-memory", paging=False, protocol="file:" + os.path.join(out, name),
                  format=fmt)
        q.cmd("quit")
    finally:
        try:
            vm.wait(timeout=30)
        except subprocess.TimeoutExpired:
            vm.kill()


if __name__ == "__main__":
    main()
