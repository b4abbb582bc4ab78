//! `convert` on a small fake layer: unavailable extents are read (and fail) like data,
//! never skipped as holes; files appear only when complete; streams read ahead in order.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use vmsnap::core::{AddressSpace, ErrorKind, Extent};

use super::*;

const MIB: u64 = 1 << 20;

/// 1 MiB of 0x11, 1 MiB whose backing file is unavailable, 1 MiB of zeros, then 1 MiB of
/// data that is half zeros.
#[derive(Debug)]
struct Fake {
    missing_reads_as_zeros: bool,
}

impl Fake {
    fn byte_at(&self, off: u64) -> u8 {
        match off / MIB {
            0 => 0x11,
            3 if off % MIB >= MIB / 2 => 0x33,
            _ => 0,
        }
    }
}

impl Layer for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    fn len(&self) -> u64 {
        4 * MIB
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r: Range<u64> = offset..offset + buf.len() as u64;
        if r.end > self.len() {
            return Err(Error::out_of_bounds(offset, buf.len() as u64, self.len()));
        }
        if r.start < 2 * MIB && r.end > MIB && !self.missing_reads_as_zeros {
            return Err(Error::new(
                ErrorKind::PolicyDenied,
                "backing file \"base.qcow2\" is unavailable (not found)",
            ));
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.byte_at(offset + i as u64);
        }
        Ok(())
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let all = [
            Extent::data(0, MIB, None),
            Extent::of(ExtentKind::Unavailable, MIB, MIB),
            Extent::of(ExtentKind::Zero, 2 * MIB, MIB),
            Extent::data(3 * MIB, MIB, None),
        ];
        Ok(all
            .into_iter()
            .filter(|e| e.offset < range.end && e.end() > range.start)
            .collect())
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        Vec::new()
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmsnap-convert-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_plan_reads_unavailable_extents_and_merges_holes() {
    let fake = Fake {
        missing_reads_as_zeros: false,
    };
    let p = plan(&fake).unwrap();
    let piece = |offset, len, read| Piece { offset, len, read };
    assert_eq!(
        p,
        vec![
            piece(0, MIB, true),
            piece(MIB, MIB, true),
            piece(2 * MIB, MIB, false),
            piece(3 * MIB, MIB, true),
        ]
    );
}

#[test]
fn an_unavailable_backing_file_fails_the_convert_and_leaves_no_file() {
    let dir = scratch("unavailable");
    let target = dir.join("out.raw");
    std::fs::write(&target, b"previous").unwrap();
    let fake = Fake {
        missing_reads_as_zeros: false,
    };
    let out = Output::create(&target, fake.len(), &OutputOptions::new()).unwrap();
    let e = convert_layer(&fake, out, 3, &ProgressBar::hidden()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    assert!(e.to_string().contains("base.qcow2"), "{e}");
    assert_eq!(std::fs::read(&target).unwrap(), b"previous");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn with_missing_zeros_the_unavailable_range_reads_as_zeros_and_stays_a_hole() {
    let dir = scratch("zeros");
    let target = dir.join("out.raw");
    let fake = Fake {
        missing_reads_as_zeros: true,
    };
    let out = Output::create(&target, fake.len(), &OutputOptions::new()).unwrap();
    convert_layer(&fake, out, 3, &ProgressBar::hidden()).unwrap();
    let got = std::fs::read(&target).unwrap();
    let want: Vec<u8> = (0..fake.len()).map(|o| fake.byte_at(o)).collect();
    assert!(got == want, "content differs");
    use std::os::unix::fs::MetadataExt;
    // Only the 1.5 MiB of non-zero data take space.
    let used = std::fs::metadata(&target).unwrap().blocks() * 512;
    assert!(used <= 3 * MIB / 2 + 64 * 1024, "{used} bytes allocated");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reading_ahead_hands_pieces_out_in_order_and_stops_at_an_error() {
    let fake = Fake {
        missing_reads_as_zeros: true,
    };
    let reads: Vec<(u64, usize)> = (0..64)
        .map(|i| (i * MIB / 16, (MIB / 16) as usize))
        .collect();
    for threads in [1, 2, 7] {
        let mut got = Vec::new();
        read_in_order(&fake, &reads, threads, |b| {
            got.extend_from_slice(b);
            Ok(true)
        })
        .unwrap();
        let want: Vec<u8> = (0..4 * MIB).map(|o| fake.byte_at(o)).collect();
        assert!(got == want, "threads={threads}");
    }
    let failing = Fake {
        missing_reads_as_zeros: false,
    };
    let mut calls = 0;
    let e = read_in_order(&failing, &reads, 4, |_| {
        calls += 1;
        Ok(true)
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    assert!(calls <= 16, "{calls} pieces written past the failure");
}

#[test]
fn non_zero_runs_coalesce_neighbours_and_skip_zero_blocks() {
    let mut chunk = vec![0u8; 5 * ZERO_BLOCK + 10];
    chunk[3] = 1; // block 0
    chunk[ZERO_BLOCK + ZERO_BLOCK - 1] = 1; // block 1, last byte
    chunk[3 * ZERO_BLOCK + 700] = 1; // block 3
    chunk[5 * ZERO_BLOCK + 9] = 1; // the short tail block
    assert_eq!(
        non_zero_runs(&chunk),
        vec![
            0..2 * ZERO_BLOCK,
            3 * ZERO_BLOCK..4 * ZERO_BLOCK,
            5 * ZERO_BLOCK..5 * ZERO_BLOCK + 10
        ]
    );
    assert!(non_zero_runs(&vec![0u8; 3 * ZERO_BLOCK]).is_empty());
}

#[test]
fn is_zero_sees_a_single_set_byte_anywhere() {
    let mut b = vec![0u8; 1000];
    assert!(is_zero(&b));
    for i in [0, 255, 256, 999] {
        b[i] = 0x80;
        assert!(!is_zero(&b), "byte {i}");
        b[i] = 0;
    }
}
