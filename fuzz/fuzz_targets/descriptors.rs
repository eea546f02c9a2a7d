#![no_main]
//! `cargo fuzz run descriptors`: see [`tessera_fuzz::descriptors`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::descriptors(data));
