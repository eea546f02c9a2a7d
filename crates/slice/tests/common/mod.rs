//! Test helpers: gzip and BGZF writers that cut blocks and members where told.
#![allow(dead_code)]

pub use tessera_test_support::compress::{bgzf, gzip};
