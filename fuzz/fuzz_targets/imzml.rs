#![no_main]
//! `cargo fuzz run imzml`: see [`tessera_fuzz::imzml`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::imzml(data));
