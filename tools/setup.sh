#!/usr/bin/env bash
# Installs what vmsnap's tests, CI and fuzzing need and is missing on a fresh machine:
# rustfmt and clippy, a nightly toolchain's presence (for cargo-fuzz), cargo-fuzz, LLVM 19's
# coverage tools,
# qemu-img (the oracle the disk tests compare against), and Python's venv (for the
# dissect.hypervisor cross-check). Idempotent.
# `tools/install-qemu-system.sh` (root) adds a QEMU 10 system emulator, needed only to
# regenerate the memory samples with `cargo xtask corpus`.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
if ! have qemu-img; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-utils
  else
    echo "setup: qemu-img is missing; install qemu-utils" >&2
    exit 1
  fi
fi
# `cargo xtask fuzz-coverage` merges and reports with Debian's LLVM 19 tools (the nightly
# toolchain ships none).
if ! have llvm-cov-19 || ! have llvm-profdata-19; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-19
  else
    echo "setup: llvm-cov-19 is missing; install llvm-19 (needed by cargo xtask fuzz-coverage only)" >&2
  fi
fi
# `cargo xtask dissect` installs dissect.hypervisor into a venv under target/.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  else
    echo "setup: python3 cannot make venvs; install python3-venv" >&2
    exit 1
  fi
fi
# `vmsnap serve` runs nbdkit; its tests read through nbdinfo and nbdcopy (libnbd-bin).
if ! have nbdkit || ! have nbdinfo || ! have nbdcopy; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nbdkit libnbd-bin
  else
    echo "setup: nbdkit or nbdinfo is missing; install nbdkit and libnbd-bin" >&2
    exit 1
  fi
fi
# The memory-export tests read the registers of `convert -O elf` cores back with gdb.
if ! have gdb; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdb
  else
    echo "setup: gdb is missing; install gdb (the memory-export tests read cores with it)" >&2
    exit 1
  fi
fi
# AVML samples (corpus/avml/make.sh) are written and read back by Microsoft's own converter
# (`avml convert`: avml 0.21 has it as a subcommand, older releases as `avml-convert`);
# Volatility 3's AVML layer decompresses through Debian's libsnappy (ctypes).
if ! avml convert --help >/dev/null 2>&1; then
  cargo install avml --locked --no-default-features --features convert
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libsnappy\.so\.1'; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsnappy1v5
  else
    echo "setup: libsnappy is missing; install libsnappy1v5 (Volatility's AVML layer needs it)" >&2
  fi
fi
echo "setup: $(cargo --version); $(qemu-img --version | head -1); $(cargo +nightly fuzz --version)"
