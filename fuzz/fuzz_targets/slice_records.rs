#![no_main]
//! `cargo fuzz run slice_records`: see [`tessera_fuzz::slice_records`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::slice_records(data));
