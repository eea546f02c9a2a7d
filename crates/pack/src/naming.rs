//! Output file names: `{TABLE}_{N}.{EXT}` or `{TABLE}_{SUFFIX}_{N}.{EXT}`,
//! Hive partition folders, and the names tessera accepts.

use crate::error::{Error, Result};

/// Check a table name or suffix: letters, digits, `-` and `_`, not starting
/// with `_` (readers skip such names); no `.`, since the extension starts at
/// the first dot. `what` names it in the error (`table name`, `suffix`).
pub fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            name: name.to_string(),
            rule: "use letters, digits, '-' and '_' (not first), no '.' or '/'".to_string(),
        })
    }
}

/// A file of a table folder, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// The suffix between the table name and the number, if any.
    pub suffix: Option<String>,
    /// The number.
    pub n: u64,
    /// Everything after the first `.`.
    pub ext: String,
}

/// Parse `name` as a file of table `table`. `Err` carries why it breaks the convention.
pub fn parse(table: &str, name: &str) -> std::result::Result<FileName, String> {
    let (stem, ext) = name
        .split_once('.')
        .ok_or_else(|| "it has no extension".to_string())?;
    let rest = stem
        .strip_prefix(table)
        .and_then(|r| r.strip_prefix('_'))
        .ok_or_else(|| format!("it does not start with '{table}_'"))?;
    let (suffix, digits) = match rest.rsplit_once('_') {
        Some((s, d)) => (Some(s.to_string()), d),
        None => (None, rest),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 18 {
        return Err("it does not end in _<number> before the extension".to_string());
    }
    if suffix.as_deref() == Some("") {
        return Err("it has an empty suffix".to_string());
    }
    Ok(FileName {
        suffix,
        n: digits.parse().expect("checked digits"),
        ext: ext.to_string(),
    })
}

/// The name of file `n`.
pub fn file_name(table: &str, suffix: Option<&str>, n: u64, ext: &str) -> String {
    match suffix {
        Some(s) => format!("{table}_{s}_{n}.{ext}"),
        None => format!("{table}_{n}.{ext}"),
    }
}

/// Whether readers (Hive, Spark, pyarrow) skip this name.
pub fn hidden(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

/// A Hive partition folder `key=value`; a null or empty value is Hive's
/// `__HIVE_DEFAULT_PARTITION__`.
///
/// Values that cannot be a folder name the same way on every store and for
/// every reader (holding `/`, `\`, `%`, `=` or control characters, starting
/// with `.` or `_`, which readers skip, or longer than 200 bytes) are refused
/// rather than escaped: an error names the value.
pub fn partition_dir(key: &str, value: Option<&str>) -> Result<String> {
    match value {
        None | Some("") => Ok(format!("{key}=__HIVE_DEFAULT_PARTITION__")),
        Some(v) => {
            let bad = v.len() > 200
                || v.starts_with(['.', '_'])
                || v.chars()
                    .any(|c| c.is_control() || matches!(c, '/' | '\\' | '%' | '='));
            if bad {
                return Err(Error::InvalidName {
                    what: "partition value",
                    name: v.to_string(),
                    rule: format!(
                        "cannot be a folder name for key '{key}' (no '/', '\\', '%', '=', control characters, leading '.' or '_', at most 200 bytes)"
                    ),
                });
            }
            Ok(format!("{key}={v}"))
        }
    }
}

/// Parse a static partition written `key=value`, and check it.
pub fn parse_partition(spec: &str) -> Result<(String, String)> {
    let (k, v) = spec.split_once('=').ok_or_else(|| Error::InvalidName {
        what: "partition",
        name: spec.to_string(),
        rule: "expected key=value".to_string(),
    })?;
    check_partition(k, v)?;
    Ok((k.to_string(), v.to_string()))
}

/// Check a static partition `key=value`: a valid key and a non-empty value
/// that can be a folder name.
pub fn check_partition(key: &str, value: &str) -> Result<()> {
    check_key(key)?;
    if value.is_empty() {
        return Err(Error::InvalidName {
            what: "partition value",
            name: String::new(),
            rule: format!("the value of '{key}' is empty"),
        });
    }
    partition_dir(key, Some(value))?;
    Ok(())
}

/// A partition key: a column name fit for a folder name.
pub fn check_key(k: &str) -> Result<()> {
    let ok = !k.is_empty()
        && !k.starts_with(['_', '.'])
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: "partition key",
            name: k.to_string(),
            rule: "use letters, digits, '-', '_' and '.', not first '_' or '.'".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = |n: &str| parse("sales", n);
        assert_eq!(
            p("sales_0.snappy.parquet").unwrap(),
            FileName {
                suffix: None,
                n: 0,
                ext: "snappy.parquet".into()
            }
        );
        assert_eq!(p("sales_eu_12.csv").unwrap().suffix.as_deref(), Some("eu"));
        assert_eq!(
            p("sales_eu_west_3.csv").unwrap().suffix.as_deref(),
            Some("eu_west")
        );
        assert!(p("sales.csv").is_err());
        assert!(p("sales_x.csv").is_err());
        assert!(p("other_1.csv").is_err());
        assert!(p("sales_1").is_err());
        assert!(p("salesman_1.csv").is_err());
        assert!(p("sales__1.csv").is_err());
        assert_eq!(file_name("t", Some("s"), 4, "csv"), "t_s_4.csv");
        assert!(check_name("table", "a.b").is_err());
        assert!(check_name("table", "../x").is_err());
        assert!(check_name("table", "_x").is_err());
        assert!(check_name("table", "ok-name_1").is_ok());
    }

    #[test]
    fn partition_values_are_checked() {
        assert_eq!(
            partition_dir("d", Some("2024-01-01")).unwrap(),
            "d=2024-01-01"
        );
        assert_eq!(
            partition_dir("d", Some("it's \"q\" #1")).unwrap(),
            "d=it's \"q\" #1"
        );
        assert_eq!(
            partition_dir("d", None).unwrap(),
            "d=__HIVE_DEFAULT_PARTITION__"
        );
        assert_eq!(
            partition_dir("d", Some("")).unwrap(),
            "d=__HIVE_DEFAULT_PARTITION__"
        );
        for bad in ["../x", "a/b", "a=b", "50%", ".hidden", "_x", "a\nb"] {
            let e = partition_dir("d", Some(bad)).unwrap_err().to_string();
            assert!(e.contains("cannot be a folder name"), "{bad}: {e}");
        }
        assert!(partition_dir("d", Some(&"x".repeat(201))).is_err());
        assert!(parse_partition("a=1").is_ok());
        assert!(parse_partition("a").is_err());
        assert!(parse_partition("../a=1").is_err());
        assert!(parse_partition("a=").is_err());
    }
}
