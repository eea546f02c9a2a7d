//! Entry points for the fuzz targets in `fuzz/` (built with the `fuzzing`
//! feature only; not part of the API). Each panics when a law breaks.

/// The CSV record splitter: the block scanner fed in pieces agrees with
/// the byte scanner, records end at newlines outside quotes, and the SIMD
/// masks equal the byte-by-byte ones.
pub fn csv_scan(data: &[u8]) {
    crate::read::fuzz_csv_scan(data)
}
