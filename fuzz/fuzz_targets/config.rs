#![no_main]
//! `cargo fuzz run config`: see [`tessera_fuzz::config`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::config(data));
