#![no_main]
//! `cargo fuzz run read_text`: see [`tessera_fuzz::read_text`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::read_text(data));
