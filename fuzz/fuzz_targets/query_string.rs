#![no_main]
//! `cargo fuzz run query_string`: see [`tessera_fuzz::query_string`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::query_string(data));
