//! Every committed fuzz input replays through its target: the seeds, and
//! each input that once crashed a target (kept as a regression case).

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus_and_a_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in tessera_fuzz::TARGETS {
        assert!(!inputs(name).is_empty(), "fuzz/corpus/{name} is empty");
        let bin = root.join("fuzz_targets").join(format!("{name}.rs"));
        assert!(bin.is_file(), "no {}", bin.display());
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let bins = manifest.matches("[[bin]]").count();
    assert_eq!(bins, tessera_fuzz::TARGETS.len(), "a [[bin]] per target");
}

#[test]
fn the_corpus_replays_without_a_crash() {
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, target) in tessera_fuzz::TARGETS {
        for file in inputs(name) {
            let data = std::fs::read(&file).expect("a corpus file");
            ran += 1;
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failed.push(file.display().to_string());
            }
        }
        // Degenerate inputs too.
        for data in [&b""[..], b"\0", b"\xff\xff\xff\xff\xff", b"\n\n\n\n\n"] {
            if std::panic::catch_unwind(|| target(data)).is_err() {
                failed.push(format!("{name}: {data:?}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "crashes ({} of {ran} inputs): {failed:#?}",
        failed.len()
    );
}
