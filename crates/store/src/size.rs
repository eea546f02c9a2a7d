//! Human byte sizes: `256MB`, `1.5GiB`, `4096`.

/// Parse a size: a number (fractions allowed) followed by an optional unit,
/// `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB`
/// (powers of 1024), case-insensitive. Zero and negative sizes are rejected.
///
/// ```
/// use tessera_store::parse_size;
/// assert_eq!(parse_size("256MB").unwrap(), 256_000_000);
/// assert_eq!(parse_size("1KiB").unwrap(), 1024);
/// assert!(parse_size("abc").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.is_empty() {
        return Err(format!(
            "'{s}' is not a size: expected a number with an optional unit such as 256MB or 1GiB"
        ));
    }
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size: '{num}' is not a number"))?;
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
            return Err(format!(
                "'{s}' is not a size: unknown unit '{unit}' (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    let v = n * mult as f64;
    if v.is_nan() || v < 1.0 || !v.is_finite() || v > u64::MAX as f64 {
        return Err(format!(
            "'{s}' is not a usable size: it must be at least one byte"
        ));
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
}
