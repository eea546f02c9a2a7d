#![no_main]
//! `cargo fuzz run template`: see [`tessera_fuzz::template`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::template(data));
