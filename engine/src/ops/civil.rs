//! UTC calendar dates from Unix nanoseconds, for log timestamps and the history's trading days.
//! The proleptic Gregorian calendar by the days-to-civil arithmetic on 400-year eras (146 097
//! days each), exact for every `u64` of nanoseconds.

/// Nanoseconds in a day.
pub const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// `(year, month, day)` of the `days`-th day after 1970-01-01.
pub fn date_of_days(days: u64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01, so a leap day is the last day of its year.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to `(year, month, day)`; `None` before 1970 or for a date that does
/// not exist (`2025-02-30`).
pub fn days_of_date(year: i64, month: u32, day: u32) -> Option<u64> {
    if !(1..=12).contains(&month) || day == 0 || day > 31 || !(1970..=100_000).contains(&year) {
        return None;
    }
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    // A day past the month's end lands in the next month: not the date asked for.
    (date_of_days(days) == (year, month, day)).then_some(days)
}

/// Reads a time given on a command line: Unix nanoseconds (`1764966000000000000`), a UTC date
/// (`2025-12-05`, its first nanosecond) or an RFC 3339 UTC time (`2025-12-05T20:20:00Z`,
/// `2025-12-05T20:20:00.5Z`). `None` if it is none of them.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let days = days_of_date(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
    let mut ns = days.checked_mul(DAY_NS)?;
    if let Some(t) = time {
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let mut f = hms.splitn(3, ':');
        let h: u64 = f.next()?.parse().ok()?;
        let mi: u64 = f.next()?.parse().ok()?;
        let sec: u64 = f.next().unwrap_or("0").parse().ok()?;
        if h > 23
            || mi > 59
            || sec > 59
            || frac.len() > 9
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let frac_ns = if frac.is_empty() {
            0
        } else {
            frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32)
        };
        ns = ns.checked_add(((h * 60 + mi) * 60 + sec) * 1_000_000_000 + frac_ns)?;
    }
    Some(ns)
}

/// The UTC date of `unix_ns` as `YYYY-MM-DD`.
pub fn date(unix_ns: u64) -> String {
    let (y, m, d) = date_of_days(unix_ns / DAY_NS);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `unix_ns` as RFC 3339 in UTC with microseconds: `2025-12-05T20:20:00.123456Z`.
pub fn rfc3339_micros(unix_ns: u64) -> String {
    let in_day = unix_ns % DAY_NS;
    let secs = in_day / 1_000_000_000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:06}Z",
        date(unix_ns),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        in_day % 1_000_000_000 / 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_the_calendar() {
        assert_eq!(date(0), "1970-01-01");
        // A leap day, the day after, a century that is not a leap year, and a year end.
        assert_eq!(date(951_782_400 * 1_000_000_000), "2000-02-29");
        assert_eq!(date(951_868_800 * 1_000_000_000), "2000-03-01");
        assert_eq!(date(4_107_542_400 * 1_000_000_000), "2100-03-01");
        assert_eq!(date(1_767_225_599 * 1_000_000_000), "2025-12-31");
        assert_eq!(date(1_767_225_600 * 1_000_000_000), "2026-01-01");
        assert_eq!(
            rfc3339_micros(1_764_966_000_123_456_789),
            "2025-12-05T20:20:00.123456Z"
        );
        assert_eq!(days_of_date(2000, 2, 29), Some(951_782_400 / 86_400));
        assert_eq!(days_of_date(2100, 2, 29), None);
        assert_eq!(days_of_date(2025, 4, 31), None);
        assert_eq!(
            parse_time("2025-12-05"),
            Some(1_764_892_800 * 1_000_000_000)
        );
        assert_eq!(
            parse_time("2025-12-05T20:20:00.123456789Z"),
            Some(1_764_966_000_123_456_789)
        );
        assert_eq!(
            parse_time("2025-12-05T20:20Z"),
            Some(1_764_966_000 * 1_000_000_000)
        );
        assert_eq!(parse_time("17"), Some(17));
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "2025-12-05T24:00:00Z",
            "2025-12-05T20:20:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        // Day by day over four centuries, the dates are consecutive and valid.
        let mut last = date_of_days(0);
        for days in 1..146_097 * 2 {
            let d = date_of_days(days);
            let next_day = d.0 == last.0 && d.1 == last.1 && d.2 == last.2 + 1;
            let next_month = d.0 == last.0 && d.1 == last.1 + 1 && d.2 == 1;
            let next_year = d.0 == last.0 + 1 && (d.1, d.2, last.1, last.2) == (1, 1, 12, 31);
            assert!(next_day || next_month || next_year, "{last:?} → {d:?}");
            assert_eq!(days_of_date(d.0, d.1, d.2), Some(days));
            last = d;
        }
    }
}
