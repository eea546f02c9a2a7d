//! Load a manifest and time lookups; used by `bench/manifest/run.sh`.
//!
//! ```text
//! cargo run --release -p tessera-manifest --example manifest_lookup -- MANIFEST QUERIES.tsv
//! ```
//! QUERIES.tsv holds `gene_id<TAB>tissue_id` lines. Prints one JSON object:
//! load seconds, rows, and the median nanoseconds per lookup over 5 rounds,
//! with and without a prepared query.

use std::time::Instant;

use tessera_manifest::Manifest;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: manifest_lookup MANIFEST QUERIES.tsv");
        std::process::exit(2);
    }
    let data = std::fs::read(&args[1]).expect("read manifest");
    let t = Instant::now();
    let m = Manifest::from_bytes(&args[1], data.into()).expect("open manifest");
    let load = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&args[2]).expect("read queries");
    let queries: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('\t')).collect();
    let mut rounds = Vec::new();
    let mut hits = 0usize;
    for _ in 0..5 {
        hits = 0;
        let t = Instant::now();
        for (g, ti) in &queries {
            if m.location(&[("gene_id", g), ("tissue_id", ti)])
                .unwrap()
                .is_some()
            {
                hits += 1;
            }
        }
        rounds.push(t.elapsed().as_nanos() as f64 / queries.len() as f64);
    }
    let prepared: Vec<_> = queries
        .iter()
        .map(|(g, ti)| m.prepare(&[("gene_id", g), ("tissue_id", ti)]).unwrap())
        .collect();
    let mut prounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0usize;
        for q in &prepared {
            n += usize::from(m.location_prepared(q).is_some());
        }
        assert_eq!(n, hits);
        prounds.push(t.elapsed().as_nanos() as f64 / queries.len() as f64);
    }
    rounds.sort_by(|a, b| a.partial_cmp(b).unwrap());
    prounds.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{{\"load_s\": {load:.4}, \"rows\": {}, \"lookups\": {}, \"hits\": {hits}, \"lookup_ns\": {:.1}, \"prepared_lookup_ns\": {:.1}}}",
        m.len(),
        queries.len(),
        rounds[2],
        prounds[2]
    );
}
