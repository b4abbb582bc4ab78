#!/usr/bin/env python3
"""Boots the distribution's cloud kernel under qemu-system-x86_64 (TCG, no disk), waits
until it has printed its boot messages, stops it and records the oracles for the x86
paging tests into target/paging/<name>/:

  core.elf          dump-guest-memory (guest-physical, with QEMU CPU notes)
  core-paging.elf   dump-guest-memory -p (guest-virtual PT_LOADs: the oracle)
  stream.bin        a migration stream of the same paused moment
  savevm.qcow2      the same moment as `savevm` state inside a qcow2 (QEMU loads
                    stream.bin into a guest with an empty qcow2 drive and saves it there;
                    made for existing guests too, a few seconds)
  info-mem.txt, info-tlb.txt, info-registers.txt   the monitor's views
  gva2gpa.txt       `gva2gpa` answers for sampled addresses

Usage: tools/make-paging-guest.py [--name pc-4level] [--kernel cloud-amd64|686-pae]
                                  [--cpu max] [--append ...] [-m 256]
Needs qemu-system-x86_64 (tools/install-qemu-system.sh) and apt-get (to fetch the kernel
package; it is unpacked with dpkg -x, never installed). `--kernel 686-pae` takes Debian's
32-bit PAE kernel through a private apt state under target/paging/apt-i386, so the host's
dpkg architectures are not changed. Idempotent: existing outputs are kept unless --force.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "target", "paging")


# Kernel packages by --kernel: (Debian architecture, metapackage).
KERNELS = {
    "cloud-amd64": ("amd64", "linux-image-cloud-amd64"),
    "686-pae": ("i386", "linux-image-686-pae"),
}


def apt_options(arch):
    """apt options for `arch`: none for the host's own, else a private state directory
    whose sources list the same Debian suite for that architecture only."""
    if arch == "amd64":
        return []
    d = os.path.join(WORK, f"apt-{arch}")
    for sub in ("lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    src = os.path.join(d, "sources.list")
    with open(src, "w") as f:
        f.write(f"deb [arch={arch} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                "http://deb.debian.org/debian bookworm main\n")
    return ["-o", f"Dir::Etc::sourcelist={src}", "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::lists={d}/lists", "-o", f"Dir::Cache={d}/cache",
            "-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures::={arch}",
            "-o", "Dir::State::status=/dev/null"]


def kernel(kind):
    """Path of a vmlinuz from the `kind` kernel package, fetched once."""
    arch, meta = KERNELS[kind]
    # The cloud kernel keeps its old directory so existing checkouts reuse it.
    kdir = os.path.join(WORK, "kernel" if kind == "cloud-amd64" else f"kernel-{kind}")
    boot = os.path.join(kdir, "boot")
    if os.path.isdir(boot):
        for f in sorted(os.listdir(boot)):
            if f.startswith("vmlinuz"):
                return os.path.join(boot, f)
    os.makedirs(WORK, exist_ok=True)
    opts = apt_options(arch)

    def depends():
        dep = subprocess.run(["apt-cache", *opts, "depends", meta],
                             capture_output=True, text=True).stdout
        return re.findall(r"Depends: (linux-image-\S+)", dep)

    names = [] if opts else depends()
    if not names:
        subprocess.run(["apt-get", *opts, "update", "-qq"], check=True)
        names = depends()
    if not names:
        sys.exit(f"make-paging-guest: no package behind {meta} found")
    dl = os.path.join(WORK, f"deb-{kind}")
    os.makedirs(dl, exist_ok=True)
    subprocess.run(["apt-get", *opts, "download", names[0]], cwd=dl, check=True)
    debs = sorted(f for f in os.listdir(dl) if f.endswith(".deb"))
    subprocess.run(["dpkg", "-x", os.path.join(dl, debs[-1]), kdir], check=True)
    return kernel(kind)


class Monitor:
    """The human monitor on a unix socket."""

    def __init__(self, path):
        for _ in range(100):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("make-paging-guest: monitor did not come up")
        self.read_prompt()

    def read_prompt(self, timeout=600):
        buf = b""
        self.s.settimeout(timeout)
        while not buf.endswith(b"(qemu) "):
            chunk = self.s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")

    def cmd(self, line, timeout=600):
        self.s.sendall(line.encode() + b"\n")
        out = self.read_prompt(timeout)
        # Drop the echoed command line and the prompt; HMP echoes with terminal escapes.
        out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out)
        lines = out.replace("\r", "").split("\n")
        return "\n".join(l for l in lines[1:] if not l.startswith("(qemu)")).strip() + "\n"


def qemu_args(a):
    """The guest's machine: the same for the boot and for reloading its stream."""
    return [
        "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", a.cpu, "-m", a.m,
        "-smp", "1", "-display", "none", "-nodefaults", "-no-reboot",
        "-kernel", kernel(a.kernel), "-append", a.append,
    ]


class Qmp:
    """QMP on a unix socket (one command at a time; events are skipped)."""

    def __init__(self, path):
        for _ in range(100):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("make-paging-guest: QMP did not come up")
        self.f = s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                sys.exit(f"make-paging-guest: QEMU closed QMP during {name}")
            r = json.loads(line)
            if "error" in r:
                sys.exit(f"make-paging-guest: {name}: {r['error']}")
            if "return" in r:
                return r["return"]


def savevm_qcow2(a, out):
    """savevm.qcow2: the paused guest of stream.bin, reloaded by QEMU (`-incoming`) with an
    empty qcow2 drive that no device uses (the guest's machine is unchanged, so the stream
    loads), then `savevm guest`: the same RAM as core.elf, in QEMU's savevm form."""
    dst = os.path.join(out, "savevm.qcow2")
    stream = os.path.join(out, "stream.bin")
    if os.path.exists(dst) and not a.force:
        return
    tmp = dst + ".tmp"
    sock = os.path.join(out, "qmp.sock")
    for f in (tmp, sock):
        if os.path.exists(f):
            os.remove(f)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", tmp, "64M"], check=True)
    # The boot's serial port is a device of the stream: a null one stands in for the file.
    vm = subprocess.Popen(qemu_args(a) + [
        "-qmp", f"unix:{sock},server=on,wait=off", "-serial", "null", "-S",
        "-drive", f"if=none,id=vmstate,format=qcow2,file={tmp}",
        "-incoming", f"exec:cat {stream}",
    ])
    try:
        qmp = Qmp(sock)
        for _ in range(1200):
            status = qmp.cmd("query-status")["status"]
            if status != "inmigrate":
                break
            time.sleep(0.1)
        if status != "paused":
            sys.exit(f"make-paging-guest: after loading the stream the guest is {status}")
        # QEMU 10 leaves an incoming guest's block nodes inactive until it runs; savevm
        # needs them active, and running the guest would change its RAM.
        qmp.cmd("blockdev-set-active", active=True)
        answer = qmp.cmd("human-monitor-command", **{"command-line": "savevm guest"})
        if answer.strip():
            sys.exit(f"make-paging-guest: savevm: {answer.strip()}")
        qmp.cmd("quit")
    finally:
        try:
            vm.wait(timeout=30)
        except subprocess.TimeoutExpired:
            vm.kill()
        if os.path.exists(sock):
            os.remove(sock)
    os.rename(tmp, dst)
    print(f"make-paging-guest: wrote {dst}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="pc-4level")
    ap.add_argument("--kernel", choices=sorted(KERNELS), default="cloud-amd64")
    ap.add_argument("--cpu", default="qemu64")
    ap.add_argument("--append", default="console=ttyS0 panic=0 nokaslr")
    ap.add_argument("-m", default="256")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    out = os.path.join(WORK, a.name)
    if os.path.exists(os.path.join(out, "gva2gpa.txt")) and not a.force:
        print(f"make-paging-guest: {out} exists")
        savevm_qcow2(a, out)
        return
    os.makedirs(out, exist_ok=True)
    sock = os.path.join(out, "monitor.sock")
    serial = os.path.join(out, "serial.log")
    for f in (sock, serial):
        if os.path.exists(f):
            os.remove(f)
    vm = subprocess.Popen(qemu_args(a) + [
        "-serial", f"file:{serial}", "-monitor", f"unix:{sock},server=on,wait=off",
    ])
    try:
        mon = Monitor(sock)
        deadline = time.time() + 300
        while time.time() < deadline:
            text = open(serial, errors="replace").read() if os.path.exists(serial) else ""
            if "Kernel panic" in text or "Unable to mount root" in text:
                break
            time.sleep(1)
        else:
            sys.exit("make-paging-guest: the kernel printed no panic within 300 s")
        time.sleep(2)
        mon.cmd("stop")
        for name, c in [("info-registers.txt", "info registers"), ("info-mem.txt", "info mem"),
                        ("info-tlb.txt", "info tlb")]:
            with open(os.path.join(out, name), "w") as f:
                f.write(mon.cmd(c))
        # Sample addresses from `info tlb`: first page of each of the first mappings.
        tlb = open(os.path.join(out, "info-tlb.txt")).read().splitlines()
        addrs = []
        for l in tlb:
            m = re.match(r"([0-9a-f]+): ([0-9a-f]+)", l.strip())
            if m:
                addrs.append(m.group(1))
        step = max(1, len(addrs) // 64)
        with open(os.path.join(out, "gva2gpa.txt"), "w") as f:
            for va in addrs[::step][:64] + ["0"]:
                f.write(f"{va} {mon.cmd('gva2gpa 0x' + va).strip()}\n")
        for name, c in [("core.elf", "dump-guest-memory {}"),
                        ("core-paging.elf", "dump-guest-memory -p {}")]:
            p = os.path.join(out, name)
            mon.cmd(c.format(p), timeout=600)
        mon.cmd(f'migrate "exec:cat > {os.path.join(out, "stream.bin")}"')
        for _ in range(600):
            if "completed" in mon.cmd("info migrate"):
                break
            time.sleep(0.5)
        mon.cmd("quit")
    finally:
        try:
            vm.wait(timeout=30)
        except subprocess.TimeoutExpired:
            vm.kill()
    savevm_qcow2(a, out)
    print(f"make-paging-guest: wrote {out}")


if __name__ == "__main__":
    main()
