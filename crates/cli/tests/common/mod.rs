//! Helpers shared by the tests that run the real `tessera` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The binary, run in `cwd`, with the store and retries pinned.
pub fn tessera(cwd: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.current_dir(cwd)
        .env_remove("TESSERA_STORE")
        .env("TESSERA_MAX_RETRIES", "1");
    c
}

/// Run, expect exit status 1, return stderr.
pub fn fails(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "expected failure: {o:?}");
    String::from_utf8(o.stderr).unwrap()
}

/// Run, expect success, return stdout.
pub fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The value of `var`, or `None` (skip the test) when it is unset or empty;
/// when `require` is set, a missing `var` fails the test instead (the test
/// script sets both, so nothing is skipped there by accident).
fn configured(var: &str, require: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var(require).is_err(),
                "{require} is set but {var} is not"
            );
            eprintln!("skipping: {var} not set");
            None
        }
    }
}

/// The S3 bucket URL under test, or `None` (skip) when not configured.
pub fn s3_bucket() -> Option<String> {
    configured("TESSERA_TEST_S3", "TESSERA_REQUIRE_S3")
}

/// Python with pyarrow, deltalake, duckdb and polars (scripts/test.sh makes
/// one), or `None` (skip) when not configured.
pub fn python() -> Option<PathBuf> {
    configured("TESSERA_TEST_PYTHON", "TESSERA_REQUIRE_PYTHON").map(PathBuf::from)
}
