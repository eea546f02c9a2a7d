#![no_main]
//! `cargo fuzz run sql`: see [`tessera_fuzz::sql`].
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::sql(data));
