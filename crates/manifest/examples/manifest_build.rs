//! Time the stages of a manifest build in one process (match + sort, then
//! Parquet encoding); a profiling aid for `bench/manifest`.
//!
//! ```text
//! cargo run --release -p tessera-manifest --example manifest_build -- KEYS.txt TEMPLATE [ROUNDS [OUT.parquet]]
//! ```
//! Prints, per round, the seconds spent building in memory and encoding;
//! `TESSERA_LOG=tessera_manifest=debug` adds the stages of the build.

use std::time::Instant;

use tessera_manifest::{BuildManifest, Template};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: manifest_build KEYS.txt TEMPLATE [ROUNDS [OUT.parquet]]");
        std::process::exit(2);
    }
    // Stage timings with TESSERA_LOG=tessera_manifest=debug.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TESSERA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let text = bytes::Bytes::from(std::fs::read(&args[1]).expect("read keys"));
    let template = Template::parse(&args[2]).expect("template");
    let rounds: usize = args.get(3).map_or(3, |r| r.parse().expect("rounds"));
    for _ in 0..rounds {
        let build = BuildManifest::new(template.clone(), text.clone());
        let t = Instant::now();
        let built = build.run().expect("build");
        let b = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = built.to_parquet().expect("encode");
        let e = t.elapsed().as_secs_f64();
        println!(
            "rows {} build {b:.3} s encode {e:.3} s total {:.3} s ({} bytes)",
            built.len(),
            b + e,
            out.len()
        );
        if let Some(path) = args.get(4) {
            std::fs::write(path, &out).expect("write manifest");
        }
    }
}
