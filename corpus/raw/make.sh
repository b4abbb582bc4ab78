#!/usr/bin/env bash
# Recipe for corpus/raw: a 1 MiB raw disk with a recognisable pattern in its first and
# last sectors and a hole between (deterministic: printf + dd only).
set -euo pipefail
cd "$(dirname "$0")"
out=sample.raw
rm -f "$out"
truncate -s 1M "$out"
printf 'vmsnap raw sample: first sector\n' | dd of="$out" conv=notrunc status=none
printf 'vmsnap raw sample: sector at 512 KiB\n' | dd of="$out" bs=1 seek=$((512 * 1024)) conv=notrunc status=none
printf 'vmsnap raw sample: last sector\n' | dd of="$out" bs=1 seek=$((1024 * 1024 - 512)) conv=notrunc status=none
