//! `vmsnap cat`: bytes of a layer to standard output.

use std::io::Write;

use vmsnap::core::{AddressSpace, Error, ErrorKind, Result};

use crate::cli::CatArgs;
use crate::open::{open_for_data, select};
use crate::output::parse_size;
use crate::Outcome;
use vmsnap_report::translate::offset_of;

/// Runs `cat`.
pub fn run(args: &CatArgs) -> Result<Outcome> {
    let opened = open_for_data(&args.open)?;
    let sel = select(&opened.stack, &args.layer)?;
    let len = sel.layer.len();
    let mut start = parse_size(&args.offset)?;
    // On a 4- or 5-level guest-virtual layer, an upper-half canonical address (what
    // `translate` takes and a kernel symbol is) names its layer offset.
    if start > len && sel.layer.space() == AddressSpace::GuestVirtual {
        let mode = sel.layer.describe()["mode"].as_str().map(str::to_string);
        if matches!(mode.as_deref(), Some("level_4" | "level_5")) {
            start = offset_of(start, mode.as_deref(), len)?;
        }
    }
    if start > len {
        return Err(Error::new(
            ErrorKind::OutOfBounds,
            format!(
                "offset {start:#x} is past the end of {} ({len:#x} bytes)",
                sel.name
            ),
        ));
    }
    let count = match &args.length {
        Some(l) => parse_size(l)?,
        None => len - start,
    };
    let end = start
        .checked_add(count)
        .filter(|&e| e <= len)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::OutOfBounds,
                format!(
                    "{count} bytes at {start:#x} run past the end of {} ({len:#x} bytes)",
                    sel.name
                ),
            )
        })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = start;
    while pos < end {
        let n = (end - pos).min(buf.len() as u64) as usize;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        sel.layer.read_at(pos, chunk)?;
        if let Err(e) = out.write_all(chunk) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(Outcome::Ok);
            }
            return Err(Error::from(e).during("writing to standard output"));
        }
        pos += n as u64;
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Error::from(e).during("writing to standard output"));
        }
    }
    Ok(Outcome::Ok)
}
