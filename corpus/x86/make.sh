#!/usr/bin/env bash
# Makes core.elf: an ELF core of a real QEMU guest with 32-bit paging on, and the monitor's
# oracles beside it (run from the repo root; needs qemu-system-x86_64, as and ld).
#
# The guest is the multiboot kernel below, loaded at 1 MiB by QEMU's `-kernel`: it fills
# one page table mapping the 16 pages at physical 0x100000..0x110000 (read-write), the
# marker page 0x110000 (read-only) and 0x111000 (user, read-write), points page-directory
# entries 0 (identity) and 768 (virtual 0xC0000000, a higher half) at it, loads CR3, sets
# CR0.PG and halts. The monitor then records
#   info-registers.txt  `info registers` (CR0, CR3, CR4, EFER)
#   info-mem.txt        `info mem`: the oracle for the x86 layer's mappings
#                       (crates/vmsnap-x86/tests/real_guest.rs)
#   core.elf            `dump-guest-memory FILE 0x100000 0x12000`: just those 72 KiB of RAM
#                       with the vCPU's registers in QEMU's note, small enough to commit;
#                       the x86 plugin stacks on it (CR0.PG set, CR3 inside the range).
set -euo pipefail
out=corpus/x86
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/kernel.S" <<'ASM'
        .code32
        .text
        .globl _start
header: .long 0x1BADB002, 0, -0x1BADB002       # multiboot magic, flags, checksum
_start:
        mov $pt + 256 * 4, %edi                 # PTEs 256..271: 0x100000.. read-write
        mov $0x100003, %eax
        mov $16, %ecx
1:      mov %eax, (%edi)
        add $4, %edi
        add $0x1000, %eax
        loop 1b
        movl $0x110001, (%edi)                  # PTE 272: the marker page, read-only
        movl $0x111007, 4(%edi)                 # PTE 273: a user page, read-write
        mov $pt + 7, %eax                       # user-accessible: the PTEs decide
        mov %eax, pd                            # PDE 0: identity
        mov %eax, pd + 768 * 4                  # PDE 768: 0xC0000000
        mov $pd, %eax
        mov %eax, %cr3
        mov %cr0, %eax
        or $0x80000000, %eax
        mov %eax, %cr0
2:      hlt
        jmp 2b
        .balign 4096
pd:     .fill 1024, 4, 0
pt:     .fill 1024, 4, 0
        .balign 4096
        .fill 13 * 4096, 1, 0                   # up to 0x110000
marker: .ascii "vmsnap x86 sample: the marker page at physical 0x110000\n"
        .balign 4096
user:   .ascii "vmsnap x86 sample: the user page at physical 0x111000\n"
        .balign 4096
ASM
as --32 -o "$tmp/kernel.o" "$tmp/kernel.S"
ld -m elf_i386 -Ttext=0x100000 -e _start -o "$tmp/kernel.elf" "$tmp/kernel.o"

{
  sleep 2
  printf '%s\n' "stop" "info registers" "info mem" \
    "dump-guest-memory $tmp/core.elf 0x100000 0x12000" "quit"
} | qemu-system-x86_64 -machine pc -m 4 -accel tcg -display none -nodefaults \
  -monitor stdio -kernel "$tmp/kernel.elf" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' > "$tmp/monitor.txt"
grep -E '^[A-Z0-9]+ *=|=[0-9a-f]{8}' "$tmp/monitor.txt" | grep -v '(qemu)' > "$out/info-registers.txt"
grep -aoE '^[0-9a-f]{16}-[0-9a-f]{16} [0-9a-f]{16} [-u]r[-w]$' "$tmp/monitor.txt" > "$out/info-mem.txt"
install -m 644 "$tmp/core.elf" "$out/core.elf"
ls -l "$out"
