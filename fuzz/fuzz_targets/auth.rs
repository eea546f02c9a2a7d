#![no_main]
//! `cargo fuzz run auth`: see [`tessera_fuzz::auth`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::auth(data));
