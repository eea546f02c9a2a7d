//! Link options for the `tessera` binary.
//!
//! On Linux with glibc the binary is linked with packed relative relocations
//! (`DT_RELR`, glibc ≥ 2.36, binutils ≥ 2.38). The binary is position
//! independent and carries a few hundred thousand relative relocations
//! (vtables of the query engine and the object stores): as classic RELA
//! entries they are a 6 MB table that every start reads and applies, several
//! milliseconds per process. Workers that run `tessera slice get` once per
//! slice pay that each time; packed, the table is a few kilobytes.
//! `TESSERA_NO_RELR=1` turns it off for older toolchains.

fn main() {
    println!("cargo:rerun-if-env-changed=TESSERA_NO_RELR");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && std::env::var_os("TESSERA_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
