//! # tessera-test-support
//!
//! Helpers shared by tessera's integration tests (not published): the S3
//! test bucket and the Python interpreter the test script provides, one
//! runtime for synchronous tests, unique names for objects in a shared
//! bucket, the store options of the environment, and the real `tessera`
//! binary.
//!
//! Tests that need an outside resource skip when it is not configured, and
//! fail instead when the matching `TESSERA_REQUIRE_*` variable is set
//! (`scripts/test.sh` sets them, so nothing is skipped there by accident):
//!
//! | resource | variable | required by |
//! |---|---|---|
//! | S3 bucket URL ([`s3_base`]) | `TESSERA_TEST_S3` | `TESSERA_REQUIRE_S3` |
//! | Python with the other engines ([`python`]) | `TESSERA_TEST_PYTHON` | `TESSERA_REQUIRE_PYTHON` |
//!
//! ```
//! use tessera_test_support::{rt, s3_base, store_options, unique};
//! use tessera_store::Location;
//!
//! let Some(bucket) = s3_base() else { return };
//! let base = format!("{bucket}/{}", unique("doc"));
//! let dir = rt().block_on(Location::open(&base, &store_options())).unwrap();
//! # let _ = dir;
//! ```

pub mod compress;
pub mod faults;
pub use faults::{Faults, FaultyStore};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use tessera_store::StoreOptions;
use tokio::runtime::Runtime;

/// The value of `var`, or `None` (skip the test) when it is unset or empty;
/// when `require` is set, a missing `var` fails the test instead.
fn configured(var: &str, require: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var_os(require).is_none(),
                "{require} is set but {var} is not"
            );
            eprintln!("skipping: {var} not set");
            None
        }
    }
}

/// The S3 bucket URL under test (`TESSERA_TEST_S3`, e.g. `s3://tessera-test`),
/// or `None` (skip) when not configured. Open it with [`store_options`].
pub fn s3_base() -> Option<String> {
    configured("TESSERA_TEST_S3", "TESSERA_REQUIRE_S3")
}

/// Python with pyarrow, deltalake, duckdb and polars
/// (`TESSERA_TEST_PYTHON`; `scripts/test.sh` makes one), or `None` (skip).
pub fn python() -> Option<PathBuf> {
    configured("TESSERA_TEST_PYTHON", "TESSERA_REQUIRE_PYTHON").map(PathBuf::from)
}

/// The store options of the environment ([`StoreOptions::from_env`]): the S3
/// server's endpoint and keys, and `TESSERA_MAX_RETRIES` from the test script.
pub fn store_options() -> StoreOptions {
    StoreOptions::from_env()
}

/// One multi-threaded runtime shared by the synchronous tests of a test binary.
pub fn rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new().expect("cannot start the test runtime"))
}

/// `prefix-<time>-<process>-<counter>`: a name no other test run, test
/// binary or call uses, for objects in a shared bucket.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is before 1970")
        .as_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{nanos:x}-{}-{n}", std::process::id())
}

/// The `tessera` binary of this build, run in `cwd`, with the store pinned
/// (`TESSERA_STORE` removed) and one retry (`TESSERA_MAX_RETRIES=1`), so a
/// failing request fails fast.
///
/// Only the `tessera-cli` package's integration tests can run it: cargo
/// tells them where the binary is (`CARGO_BIN_EXE_tessera`).
pub fn tessera(cwd: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").expect("the tessera binary is not built");
    c.current_dir(cwd)
        .env_remove("TESSERA_STORE")
        .env("TESSERA_MAX_RETRIES", "1");
    c
}

/// Run, expect exit status 1 (an error), return stderr.
pub fn fails(c: &mut Command) -> String {
    let o = c.output().expect("cannot run the command");
    assert_eq!(o.status.code(), Some(1), "expected failure: {o:?}");
    String::from_utf8(o.stderr).expect("stderr is not UTF-8")
}

/// Run, expect success, return stdout.
pub fn ok(c: &mut Command) -> String {
    let o = c.output().expect("cannot run the command");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).expect("stdout is not UTF-8")
}
