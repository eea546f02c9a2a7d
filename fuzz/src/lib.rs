//! Fuzz targets for every tessera parser that takes outside bytes.
//!
//! Each target is a function from bytes to nothing that panics when a law
//! breaks: a crash is a panic, an abort or a hang, never an `Err` (bad input
//! must give a clear error, and that is what it gives). The same functions
//! run three ways:
//!
//! - under libFuzzer, through the thin binaries in `fuzz_targets/` (`bash
//!   bench/fuzz/run.sh`, which installs `cargo fuzz` and prints executions,
//!   coverage and crashes per target);
//! - in the test suite, which replays every committed input under
//!   `fuzz/corpus/TARGET/` (seeds, and each crash the fuzzer found, kept as a
//!   regression case);
//! - by hand: `cargo test -p tessera-fuzz` after dropping a file in a corpus.
//!
//! | target | parser | law checked |
//! |---|---|---|
//! | `template` | manifest templates, key and line matching | captures lie in the key, in order; a key rendered from the captures matches |
//! | `csv_scan` | the CSV record splitter | the SIMD block scan in pieces equals the byte scan |
//! | `read_text` | CSV/TSV/JSON Lines readers | rows do not depend on the chunking |
//! | `slice_records` | the CSV, TSV, text, JSON Lines, FASTA, FASTQ, VCF scanners, plain, gzip, BGZF | slices concatenate to the records, each once |
//! | `gzip` | the gzip/BGZF checkpoint reader on hostile compressed bytes | slices concatenate to what zlib decodes |
//! | `descriptors` | index and slice-descriptor JSON | what parses, round-trips |
//! | `query_string` | the server's query parameters: filters, sorts, columns, cursors | what is accepted runs; cursors read back |
//! | `sql` | the read-only SQL guard | what is accepted is a query |
//! | `config` | the server's TOML configuration | no panic; a valid config binds |
//! | `auth` | the auth TOML and `Authorization` headers | no panic; unknown tokens refused |
//! | `jwt` | JWT verification | forged or untrusted tokens refused; accepted ones carry their claims |
//! | `las` | LAS/LAZ headers and points | slices hold every point once |
//! | `cog` | TIFF/COG headers | slices fetch, or fail clearly |
//! | `imzml` | imzML XML and `.ibd` | slices hold every spectrum once |
//! | `ms` | MeasurementSet main tables: `table.dat`, `table.lock`, the storage managers' files | each slice is a table of its rows |
//!
//! ```
//! // A target takes any bytes.
//! tessera_fuzz::template(b"{a}/{b:int32}.csv\nx/12.csv\n");
//! ```

mod records;
mod server;
mod sources;

pub use records::{gzip, read_text, slice_records};
pub use server::{auth, config, jwt};
pub use sources::{cog, descriptors, imzml, las, ms, template};

/// The CSV record splitter (see [`tessera_formats`]'s reader).
pub fn csv_scan(data: &[u8]) {
    tessera_formats::fuzzing::csv_scan(data)
}

/// The server's query parameters, run against a small table.
pub fn query_string(data: &[u8]) {
    tessera_server::fuzzing::query_string(data)
}

/// The server's read-only SQL guard.
pub fn sql(data: &[u8]) {
    tessera_server::fuzzing::sql(data)
}

/// A fuzz target: any bytes in, a panic when a law breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/corpus/NAME/` and `fuzz_targets/NAME.rs`
/// call them.
pub const TARGETS: &[(&str, Target)] = &[
    ("template", template),
    ("csv_scan", csv_scan),
    ("read_text", read_text),
    ("slice_records", slice_records),
    ("gzip", gzip),
    ("descriptors", descriptors),
    ("query_string", query_string),
    ("sql", sql),
    ("config", config),
    ("auth", auth),
    ("jwt", jwt),
    ("las", las),
    ("cog", cog),
    ("imzml", imzml),
    ("ms", ms),
];

/// A runtime for the targets that await (one per process).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// The object `name` in a process-wide memory store, holding `bytes` (each
/// run overwrites the last one's, so memory does not grow over a campaign).
pub(crate) async fn object(name: &str, bytes: Vec<u8>) -> tessera_store::Location {
    let loc = tessera_store::Location::open(
        &format!("memory://fuzz/{name}"),
        &tessera_store::StoreOptions::default(),
    )
    .await
    .expect("a memory location");
    loc.publish(bytes, tessera_store::PublishMode::Overwrite)
        .await
        .expect("a memory write");
    loc
}

/// Split fuzz input into a few control bytes and the rest.
pub(crate) fn split<const N: usize>(data: &[u8]) -> Option<([u8; N], &[u8])> {
    if data.len() < N {
        return None;
    }
    let (head, rest) = data.split_at(N);
    Some((head.try_into().ok()?, rest))
}
