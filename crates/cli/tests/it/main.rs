//! Integration tests of the `tessera` binary: one test binary, so the whole
//! tree is linked once. Each module covers one command; `common` holds the
//! helpers that run the real binary.

mod common;

mod cli;
mod datasets;
mod manifest_interop;
mod pack;
#[allow(unsafe_code)] // sends SIGTERM to the server it started (libc::kill)
mod secrets;
#[allow(unsafe_code)] // sends SIGTERM to the server it started (libc::kill)
mod serve;
mod slice;
