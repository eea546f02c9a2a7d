//! Dataset and namespace names.
//!
//! A dataset name is one or more `/`-separated segments, each made of
//! `[A-Za-z0-9._-]`; no empty segment (so no `/` at either end and no
//! `//`), no `.` or `..` segment, and no segment named like the table's own
//! folders (`_delta_log`, `_tessera`). A namespace is a single segment.

use crate::error::{Error, Result};

/// Longest accepted name, in bytes (object keys are limited to 1 KiB).
pub const MAX_NAME: usize = 512;

const RESERVED: &[&str] = &[
    "_delta_log",
    "_tessera",
    "_change_data",
    "_deletion_vectors",
];

fn bad(name: &str, rule: impl Into<String>) -> Error {
    Error::InvalidName {
        name: name.escape_debug().to_string(),
        rule: rule.into(),
    }
}

fn check_segment(name: &str, seg: &str) -> Result<()> {
    if seg.is_empty() {
        return Err(bad(
            name,
            if name.is_empty() {
                "the name is empty".to_string()
            } else if name.starts_with('/') || name.ends_with('/') {
                "a name may not start or end with '/'".to_string()
            } else {
                "empty segment ('//')".to_string()
            },
        ));
    }
    if seg == "." || seg == ".." {
        return Err(bad(name, format!("'{seg}' is not allowed as a segment")));
    }
    if let Some(c) = seg
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(bad(
            name,
            format!(
                "character {:?} is not allowed (segments use A-Z a-z 0-9 . _ -)",
                c
            ),
        ));
    }
    if RESERVED.contains(&seg) {
        return Err(bad(
            name,
            format!("'{seg}' is reserved for the table's own files"),
        ));
    }
    Ok(())
}

/// Check a dataset name (see the module docs).
pub fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(bad(
            &format!("{}…", name.chars().take(40).collect::<String>()),
            format!("longer than {MAX_NAME} bytes"),
        ));
    }
    if name.is_empty() {
        return Err(bad(name, "the name is empty"));
    }
    for seg in name.split('/') {
        check_segment(name, seg)?;
    }
    Ok(())
}

/// Check a namespace: one segment of a dataset name.
pub fn check_namespace(ns: &str) -> Result<()> {
    if ns.contains('/') {
        return Err(bad(ns, "a namespace is a single segment (no '/')"));
    }
    check_name(ns)
}

/// Check a dataset prefix for listing: like a name, but may be empty and
/// may end with `/`.
pub fn check_prefix(prefix: &str) -> Result<()> {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return Ok(());
    }
    check_name(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names() {
        for n in ["a", "project/dataset", "p/d/subset", "A-b_c.1", "x.y"] {
            check_name(n).unwrap();
        }
    }

    #[test]
    fn each_rule_is_enforced() {
        let cases = [
            ("", "empty"),
            ("/a", "start or end"),
            ("a/", "start or end"),
            ("a//b", "empty segment"),
            ("a/../b", "'..'"),
            ("./a", "'.'"),
            ("a b", "' '"),
            ("a/'b", "'\\''"),
            ("a/b\"", "'\"'"),
            ("a\\b", "'\\\\'"),
            ("ä", "'ä'"),
            ("a\nb", "'\\n'"),
            ("x/_delta_log", "reserved"),
            ("_tessera", "reserved"),
            ("k=v", "'='"),
        ];
        for (n, want) in cases {
            let e = check_name(n).unwrap_err().to_string();
            assert!(e.contains(want), "{n:?}: {e}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        assert!(check_name(&long)
            .unwrap_err()
            .to_string()
            .contains("longer"));
        assert!(check_namespace("a/b").is_err());
        check_namespace("team-1").unwrap();
        check_prefix("").unwrap();
        check_prefix("proj/").unwrap();
        assert!(check_prefix("../").is_err());
    }
}
