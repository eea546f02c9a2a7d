//! Helpers of the tests that run the real `tessera` binary: the shared ones
//! of `tessera-test-support`, under the names these tests use.

pub use tessera_test_support::{
    fails, ok, python, rt, s3_base as s3_bucket, store_options, tessera, unique,
};
