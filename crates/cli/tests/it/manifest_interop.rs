//! Other engines (pyarrow, DuckDB) read the manifests tessera writes: the
//! location column is written by tessera's own page encoder, so this is the
//! check that it is standard Parquet.

use std::process::Command as StdCommand;

use crate::common::{ok, python, tessera};

#[test]
fn pyarrow_and_duckdb_read_a_manifest() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    // 300 genes x 150 tissues in listing order (tissues sort as text), plus
    // noise: 45,000 rows, three pages of the location column.
    let mut tissues: Vec<u32> = (1..=150).collect();
    tissues.sort_by_key(|t| t.to_string());
    let mut text = String::new();
    let mut want = Vec::new();
    for g in 0..300 {
        for &t in &tissues {
            text.push_str(&format!(
                "s3://b/models/v1/ad/G{g:05}/model_tissue_{t}.tl\n"
            ));
        }
        text.push_str(&format!("s3://b/models/v1/ad/G{g:05}/_SUCCESS\n"));
        for t in 1..=150u32 {
            want.push(format!("s3://b/models/v1/ad/G{g:05}/model_tissue_{t}.tl"));
        }
    }
    std::fs::write(p.join("keys.txt"), &text).unwrap();
    ok(tessera(p).args([
        "manifest",
        "build",
        "keys.txt",
        "-o",
        "m.parquet",
        "--template",
        "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl",
    ]));
    let script = r#"
import sys, json
import pyarrow.parquet as pq, duckdb
path = sys.argv[1]
t = pq.read_table(path)
md = pq.ParquetFile(path).metadata
duck = duckdb.sql(f"SELECT file_path FROM read_parquet('{path}')").fetchall()
one = duckdb.sql(
    f"SELECT file_path FROM read_parquet('{path}') WHERE gene_id = 'G00123' AND tissue_id = 77").fetchall()
print(json.dumps({
    "pyarrow": t.column("file_path").to_pylist(),
    "duckdb": [r[0] for r in duck],
    "one": [r[0] for r in one],
    "encodings": sorted({e for g in range(md.num_row_groups) for e in md.row_group(g).column(2).encodings}),
}))
"#;
    let o = StdCommand::new(&py)
        .arg("-c")
        .arg(script)
        .arg(p.join("m.parquet"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<String> = serde_json::from_value(v["pyarrow"].clone()).unwrap();
    assert_eq!(got, want, "pyarrow: rows in field order");
    let got: Vec<String> = serde_json::from_value(v["duckdb"].clone()).unwrap();
    assert_eq!(got, want, "duckdb");
    assert_eq!(
        v["one"],
        serde_json::json!(["s3://b/models/v1/ad/G00123/model_tissue_77.tl"])
    );
    assert_eq!(v["encodings"], serde_json::json!(["DELTA_BYTE_ARRAY"]));
}
