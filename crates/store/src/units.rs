//! Units people type: byte sizes (`256MB`, `1.5GiB`, `4096`), durations
//! (`7d`, `12h`, `250ms`) and points in time (`2024-03-01T12:00:00Z`,
//! `2024-03-01`). One home for every parser of them, so the CLI, the server's
//! configuration and the Python package accept the same spellings.
//!
//! Errors are [`UnitError`]s, which name the text and what was expected, and
//! no command-line flag: callers add where the text came from.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Text that is not a size, a duration or a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a {kind}: {expected}")]
pub struct UnitError {
    /// The text as given.
    pub input: String,
    /// `size`, `duration` or `time`.
    pub kind: &'static str,
    /// What was expected instead.
    pub expected: String,
}

fn unit_error(input: &str, kind: &'static str, expected: impl Into<String>) -> UnitError {
    UnitError {
        input: input.to_string(),
        kind,
        expected: expected.into(),
    }
}

/// Parse a size: a number (fractions allowed) followed by an optional unit,
/// `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB`
/// (powers of 1024), case-insensitive. Zero and negative sizes are rejected.
///
/// ```
/// use tessera_store::units::parse_size;
/// assert_eq!(parse_size("256MB").unwrap(), 256_000_000);
/// assert_eq!(parse_size("1KiB").unwrap(), 1024);
/// assert!(parse_size("abc").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.is_empty() {
        return Err(unit_error(
            s,
            "size",
            "expected a number with an optional unit such as 256MB or 1GiB",
        ));
    }
    let n: f64 = num
        .parse()
        .map_err(|_| unit_error(s, "size", format!("'{num}' is not a number")))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(unit_error(
                s,
                "size",
                format!("unknown unit '{unit}' (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"),
            ))
        }
    };
    let v = n * mult as f64;
    if v.is_nan() || v < 1.0 || !v.is_finite() || v > u64::MAX as f64 {
        return Err(unit_error(s, "size", "it must be at least one byte"));
    }
    Ok(v as u64)
}

/// Format bytes for people: `1.5 MiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Parse a duration: a whole number with a unit, `ms`, `s`, `m`, `h`, `d`
/// or `w` (also `sec`, `min`, `hour(s)`, `day(s)`, `week(s)`), or `0`.
/// A bare number is refused: `7` could mean seconds or days.
///
/// ```
/// use tessera_store::units::parse_duration;
/// assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86_400);
/// assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
/// assert!(parse_duration("7").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let t = s.trim();
    let bad = || {
        unit_error(
            s,
            "duration",
            "use a whole number with a unit, e.g. 7d, 12h, 30m, 45s, 250ms, 2w",
        )
    };
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let millis: u64 = match unit.trim() {
        "ms" => 1,
        "s" | "sec" | "secs" => 1_000,
        "m" | "min" | "mins" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 604_800_000,
        _ => return Err(bad()),
    };
    n.checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

/// Parse a point in time, in UTC unless it says otherwise: RFC 3339
/// (`2024-03-01T12:00:00Z`, `2024-03-01T13:00:00+01:00`),
/// `YYYY-MM-DD HH:MM:SS[.f]`, `YYYY-MM-DDTHH:MM:SS` or `YYYY-MM-DD`
/// (midnight).
///
/// ```
/// use tessera_store::units::parse_time;
/// let t = parse_time("2024-03-01").unwrap();
/// assert_eq!(t.to_rfc3339(), "2024-03-01T00:00:00+00:00");
/// assert!(parse_time("March 1st").is_err());
/// ```
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, UnitError> {
    let t = s.trim();
    if let Ok(v) = DateTime::parse_from_rfc3339(t) {
        return Ok(v.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(v) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(v.and_utc());
        }
    }
    if let Some(d) = parse_date(t) {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(unit_error(
        s,
        "time",
        "expected 2024-03-01T12:00:00Z, 2024-03-01 12:00:00 or 2024-03-01",
    ))
}

/// Parse a calendar date `YYYY-MM-DD`.
///
/// ```
/// use tessera_store::units::parse_date;
/// assert!(parse_date("2024-02-29").is_some());
/// assert!(parse_date("2023-02-29").is_none());
/// ```
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("1.5kb").unwrap(), 1500);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size(" 3 MiB ").unwrap(), 3 << 20);
        for bad in ["", "0", "abc", "-1MB", "10XB", "MB", "1.2.3"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(12), "12 B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86_400);
        assert_eq!(parse_duration("0").unwrap().as_secs(), 0);
        assert_eq!(parse_duration("0s").unwrap().as_secs(), 0);
        assert_eq!(parse_duration("90m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration(" 2w ").unwrap().as_secs(), 2 * 604_800);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        for bad in ["", "d", "7", "7y", "-1d", "1.5h", "99999999999999999999d"] {
            let e = parse_duration(bad).unwrap_err();
            assert_eq!(e.kind, "duration", "{bad}");
        }
    }

    #[test]
    fn times() {
        let t = |s| parse_time(s).unwrap().to_rfc3339();
        assert_eq!(t("2024-03-01T12:00:00Z"), "2024-03-01T12:00:00+00:00");
        assert_eq!(t("2024-03-01T13:00:00+01:00"), "2024-03-01T12:00:00+00:00");
        assert_eq!(t("2024-03-01 12:00:00"), "2024-03-01T12:00:00+00:00");
        assert_eq!(t("2024-03-01T12:00:00.5"), "2024-03-01T12:00:00.500+00:00");
        assert_eq!(t("2024-03-01"), "2024-03-01T00:00:00+00:00");
        for bad in ["", "yesterday", "2024-13-01", "2024-03-01 25:00:00", "12"] {
            assert_eq!(parse_time(bad).unwrap_err().kind, "time", "{bad}");
        }
    }
}
