#![no_main]
//! `cargo fuzz run las`: see [`tessera_fuzz::las`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::las(data));
