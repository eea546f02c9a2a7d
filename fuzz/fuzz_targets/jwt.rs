#![no_main]
//! `cargo fuzz run jwt`: see [`tessera_fuzz::jwt`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::jwt(data));
