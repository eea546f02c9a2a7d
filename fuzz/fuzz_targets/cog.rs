#![no_main]
//! `cargo fuzz run cog`: see [`tessera_fuzz::cog`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::cog(data));
