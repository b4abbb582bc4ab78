//! Snapshot time stamps: VirtualBox writes `timeStamp` as UTC, `YYYY-MM-DDTHH:MM:SSZ`.

/// Seconds since the Unix epoch of a `YYYY-MM-DDTHH:MM:SSZ` time stamp (fractions and a
/// missing `Z` accepted); `None` for anything else or a time before 1970.
pub fn epoch_seconds(ts: &str) -> Option<u64> {
    let ts = ts.trim().trim_end_matches('Z');
    let (date, time) = ts.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    if !(1970..=9999).contains(&y) || h < 0 || mi < 0 || se < 0 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_virtualbox_time_stamps() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        // `date -u -d 2026-12-07T17:30:00Z +%s`
        assert_eq!(epoch_seconds("2026-12-07T17:30:00Z"), Some(1_796_664_600));
        assert_eq!(epoch_seconds("2000-02-29T23:59:59.123Z"), Some(951_868_799));
        assert_eq!(epoch_seconds("2026-13-01T00:00:00Z"), None);
        assert_eq!(epoch_seconds("yesterday"), None);
    }
}
