//! CPU registers from `partition_state` (`VidSavedStateDescriptor` + 16-byte chunk
//! headers, per openvmm's `hvdef::save_restore`): per VP the general-purpose registers
//! (0x30005000), the control registers (0x30007000) and the table registers
//! (0x3000A000). Segment registers are left out: the two sources disagree on their order.

use vmsnap_core::{Bytes, CpuState, Finding};

use crate::limits::MAX_STATE_CHUNKS;

/// Chunk: start of one VP (`u32 vp_index`).
pub const CHUNK_VP: u32 = 0x3000_1000;
/// Chunk: rax … r15, rip, rflags.
pub const CHUNK_GP: u32 = 0x3000_5000;
/// Chunk: cr0, cr2, cr3, cr4, cr8, efer.
pub const CHUNK_CR: u32 = 0x3000_7000;
/// Chunk: idtr then gdtr, each `{u16 pad[3], u16 limit, u64 base}`.
pub const CHUNK_TABLES: u32 = 0x3000_A000;
/// Chunk: end.
pub const CHUNK_EPILOG: u32 = 0xF000_0000;

const GP_NAMES: [&str; 18] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip", "rflags",
];

/// Parses `blob` (the `partition_state` value) into one state per VP.
pub fn parse(blob: &[u8], base: u64) -> (Vec<CpuState>, Vec<Finding>) {
    let b = Bytes::new(blob, base);
    let mut findings = Vec::new();
    let mut cpus: Vec<CpuState> = Vec::new();
    let Ok(header_size) = b.u64_le(8) else {
        findings.push(Finding::warning(
            crate::rule::PARTITION_STATE,
            "partition_state is shorter than its descriptor",
        ));
        return (cpus, findings);
    };
    let Some(mut pos) = header_size
        .checked_add(16)
        .and_then(|p| usize::try_from(p).ok())
    else {
        return (cpus, findings);
    };
    let mut current: Option<usize> = None;
    for _ in 0..MAX_STATE_CHUNKS {
        let (Ok(id), Ok(len)) = (b.u32_le(pos), b.u32_le(pos + 4)) else {
            break;
        };
        let Ok(data) = b.sub(pos + 16, len as usize) else {
            findings.push(
                Finding::warning(
                    crate::rule::PARTITION_STATE,
                    format!("chunk {id:#010x} of {len} bytes runs past the blob"),
                )
                .at(b.file_offset(pos)),
            );
            break;
        };
        if id == CHUNK_EPILOG {
            break;
        }
        let cpu = |cpus: &mut Vec<CpuState>, current: &mut Option<usize>| -> usize {
            match *current {
                Some(i) => i,
                None => {
                    cpus.push(CpuState {
                        index: cpus.len() as u32,
                        arch: "x86_64",
                        ..CpuState::default()
                    });
                    let i = cpus.len() - 1;
                    *current = Some(i);
                    i
                }
            }
        };
        match id {
            CHUNK_VP => {
                cpus.push(CpuState {
                    index: data.u32_le(0).unwrap_or(cpus.len() as u32),
                    arch: "x86_64",
                    ..CpuState::default()
                });
                current = Some(cpus.len() - 1);
            }
            CHUNK_GP => {
                let i = cpu(&mut cpus, &mut current);
                if let Some(c) = cpus.get_mut(i) {
                    for (n, name) in GP_NAMES.iter().enumerate() {
                        if let Ok(v) = data.u64_le(n * 8) {
                            c.regs.insert((*name).to_string(), v);
                        }
                    }
                }
            }
            CHUNK_CR => {
                let i = cpu(&mut cpus, &mut current);
                if let Some(c) = cpus.get_mut(i) {
                    let r = |n: usize| data.u64_le(n * 8).unwrap_or(0);
                    c.cr0 = r(0);
                    c.cr3 = r(2);
                    c.cr4 = r(3);
                    c.efer = r(5);
                    c.regs.insert("cr2".into(), r(1));
                    c.regs.insert("cr8".into(), r(4));
                }
            }
            CHUNK_TABLES => {
                let i = cpu(&mut cpus, &mut current);
                if let Some(c) = cpus.get_mut(i) {
                    for (n, name) in ["idtr", "gdtr"].iter().enumerate() {
                        if let (Ok(limit), Ok(base)) =
                            (data.u16_le(n * 16 + 6), data.u64_le(n * 16 + 8))
                        {
                            c.regs.insert(format!("{name}_base"), base);
                            c.regs.insert(format!("{name}_limit"), u64::from(limit));
                        }
                    }
                }
            }
            _ => {}
        }
        pos = pos + 16 + len as usize;
    }
    (cpus, findings)
}
