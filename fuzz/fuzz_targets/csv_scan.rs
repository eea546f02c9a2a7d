#![no_main]
//! `cargo fuzz run csv_scan`: see [`tessera_fuzz::csv_scan`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::csv_scan(data));
