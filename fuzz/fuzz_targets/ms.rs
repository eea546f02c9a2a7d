#![no_main]
//! `cargo fuzz run ms`: see [`tessera_fuzz::ms`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::ms(data));
