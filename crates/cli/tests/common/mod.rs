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

/// The S3 bucket URL under test, or `None` (skip) when not configured.
pub fn s3_bucket() -> Option<String> {
    match std::env::var("TESSERA_TEST_S3") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("TESSERA_REQUIRE_S3").is_err(),
                "TESSERA_REQUIRE_S3 is set but TESSERA_TEST_S3 is not"
            );
            eprintln!("skipping: TESSERA_TEST_S3 not set");
            None
        }
    }
}

/// Python with pyarrow, deltalake, duckdb and polars (scripts/test.sh makes
/// one), or `None` (skip) when not configured.
pub fn python() -> Option<PathBuf> {
    match std::env::var("TESSERA_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            assert!(
                std::env::var("TESSERA_REQUIRE_PYTHON").is_err(),
                "TESSERA_REQUIRE_PYTHON is set but TESSERA_TEST_PYTHON is not"
            );
            eprintln!("skipping: TESSERA_TEST_PYTHON not set");
            None
        }
    }
}
