#!/usr/bin/env bash
# Makes target/python-venv: maturin, pytest, and the readers the Python tests compare
# against (oslo.utils 10.2 for vmsnap.format_inspector, volatility3 for vmsnap.volatility),
# all from PyPI; then builds the vmsnap wheel (crates/vmsnap-python, abi3) into it with
# the workspace's shared target directory. Idempotent; prints the venv's python.
#   VMSNAP_PY_PROFILE=release  builds the wheel optimised (benchmarks); default: dev
#   VMSNAP_PY_SKIP_WHEEL=1     only makes the venv
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/target/python-venv"
py="$venv/bin/python"
profile="${VMSNAP_PY_PROFILE:-dev}"

if [ ! -x "$py" ]; then
  python3 -m venv "$venv"
fi
# Pinned where the tests compare answers: another oslo.utils may answer differently.
if ! "$py" -c 'import maturin, pytest, cryptography, oslo_utils, volatility3, importlib.metadata as m; assert m.version("volatility3") == "2.28.2"' >/dev/null 2>&1; then
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q 'maturin>=1.5,<2' 'pytest>=7' 'oslo.utils==10.2.0' cryptography 'volatility3==2.28.2'
fi
if [ "${VMSNAP_PY_SKIP_WHEEL:-}" != 1 ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
  rm -rf "$root/target/wheels"
  "$venv/bin/maturin" build -q --profile "$profile" --interpreter "$py" -o "$root/target/wheels" >&2
  "$py" -m pip install -q --force-reinstall --no-deps "$root"/target/wheels/vmsnap-*.whl
fi
echo "$py"
