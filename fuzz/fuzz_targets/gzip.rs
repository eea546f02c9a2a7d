#![no_main]
//! `cargo fuzz run gzip`: see [`tessera_fuzz::gzip`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::gzip(data));
