//! `tessera put`, `get` and `datasets` through the real binary: every
//! option, bad input, concurrent writers, S3, and other engines reading
//! what tessera wrote.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;

use crate::common::{fails, ok, python, s3_bucket, tessera, unique};

fn ok_err(c: &mut Command) -> (String, String) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn events(ids: std::ops::Range<i64>) -> String {
    let mut s = String::from("id,event_date,user_id,amount,note\n");
    for i in ids {
        s.push_str(&format!(
            "{i},2024-{:02}-{:02},{},{}.5,\"n, {i}\"\n",
            1 + i % 12,
            1 + i % 28,
            (i * 7919) % 300_000,
            i % 100
        ));
    }
    s
}

/// The `id` column of CSV output, as a set (checking no id repeats).
fn ids(csv: &str) -> BTreeSet<i64> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "id")
        .expect("an id column");
    let mut out = BTreeSet::new();
    for l in lines {
        let id: i64 = l.split(',').nth(col).unwrap().parse().unwrap();
        assert!(out.insert(id), "id {id} twice");
    }
    out
}

fn run_story(dir: &Path, store: &str, extra: &[&str]) {
    std::fs::write(dir.join("a.csv"), events(0..2000)).unwrap();
    std::fs::write(dir.join("b.jsonl"), {
        let mut s = String::new();
        for i in 2000..2100 {
            s.push_str(&format!(
                "{{\"id\":{i},\"event_date\":\"2024-05-{:02}\",\"user_id\":{i},\"amount\":1.5,\"note\":\"j\"}}\n",
                1 + i % 28
            ));
        }
        s
    })
    .unwrap();
    let t = |args: &[&str]| {
        let mut c = tessera(dir);
        c.args(args).args(["--store", store]).args(extra);
        c
    };
    let out = ok(&mut t(&[
        "put",
        "sales/events",
        "a.csv",
        "--date-key",
        "event_date:month",
        "--id-key",
        "user_id:50000",
        "--version",
        "v1",
        "--target-size",
        "64KB",
    ]));
    assert!(
        out.contains("loaded 2000 rows") && out.contains("new dataset"),
        "{out}"
    );
    let out = ok(&mut t(&[
        "put",
        "sales/events",
        "b.jsonl",
        "--version",
        "v2",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 100);
    assert_eq!(
        v["partition_columns"],
        serde_json::json!(["event_date_month", "user_id_range"])
    );

    // Everything, in the columns' original order.
    let all = ok(&mut t(&["get", "sales/events"]));
    assert!(
        all.starts_with("id,event_date,user_id,amount,note\n"),
        "{}",
        &all[..80]
    );
    assert_eq!(ids(&all), (0..2100).collect());
    assert_eq!(
        ids(&ok(&mut t(&["get", "sales/events", "--version", "v1"]))),
        (0..2000).collect()
    );
    assert_eq!(
        ids(&ok(&mut t(&["get", "sales/events", "--last"]))),
        (2000..2100).collect()
    );

    // A filter prunes: -v reports the files and bytes read.
    let (out, err) = ok_err(&mut t(&[
        "get",
        "sales/events",
        "--where",
        "event_date >= '2024-03-01' AND event_date < '2024-04-01' AND user_id < 50000",
        "--columns",
        "id,event_date",
        "-v",
    ]));
    let want: BTreeSet<i64> = (0..2000)
        .filter(|i| 1 + i % 12 == 3 && (i * 7919) % 300_000 < 50_000)
        .collect();
    assert_eq!(ids(&out), want);
    let (read, total) = files_read(&err);
    assert!(read * 10 <= total && read >= 1, "{err}");

    // Output files, format from the extension; read back through tessera.
    ok(&mut t(&[
        "get",
        "sales/events",
        "--version",
        "v2",
        "-o",
        "v2.parquet",
    ]));
    ok(&mut t(&["put", "copy", "v2.parquet"]));
    assert_eq!(ids(&ok(&mut t(&["get", "copy"]))), (2000..2100).collect());
    ok(&mut t(&[
        "get",
        "copy",
        "--format",
        "jsonl",
        "-o",
        "copy.jsonl",
    ]));
    assert_eq!(
        std::fs::read_to_string(dir.join("copy.jsonl"))
            .unwrap()
            .lines()
            .count(),
        100
    );
    ok(&mut t(&["get", "copy", "-o", "copy.arrow"]));
    let r = arrow::ipc::reader::StreamReader::try_new(
        std::fs::File::open(dir.join("copy.arrow")).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(r.map(|b| b.unwrap().num_rows()).sum::<usize>(), 100);
    let o = t(&["get", "copy", "--format", "arrow"]).output().unwrap();
    let r =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(o.stdout), None).unwrap();
    assert_eq!(r.schema().field(0).name(), "id");
    assert_eq!(r.map(|b| b.unwrap().num_rows()).sum::<usize>(), 100);
    let j = ok(&mut t(&[
        "get",
        "copy",
        "--format",
        "jsonl",
        "--columns",
        "id",
    ]));
    assert!(j.starts_with("{\"id\":"), "{j}");

    // stdin.
    let mut c = t(&["put", "piped", "-", "--format", "csv"]);
    c.write_stdin(events(0..10));
    ok(&mut c);
    assert_eq!(ids(&ok(&mut t(&["get", "piped"]))).len(), 10);

    // keep-last, history, time travel, compaction, vacuum.
    std::fs::write(dir.join("k.csv"), events(5000..5003)).unwrap();
    ok(&mut t(&[
        "put",
        "sales/events",
        "k.csv",
        "--keep-last",
        "--version",
        "v3",
    ]));
    assert_eq!(
        ids(&ok(&mut t(&["get", "sales/events"]))),
        (5000..5003).collect()
    );
    assert_eq!(
        ids(&ok(&mut t(&["get", "sales/events", "--as-of", "1"]))).len(),
        2100
    );
    let h = ok(&mut t(&["datasets", "history", "sales/events"]));
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines.len(), 4, "{h}");
    assert!(
        lines[1].contains("put (keep-last)") && lines[1].contains("v3"),
        "{h}"
    );
    assert!(lines[3].contains("2000") && lines[3].contains("v1"), "{h}");
    let hj: serde_json::Value = serde_json::from_str(&ok(&mut t(&[
        "datasets",
        "history",
        "sales/events",
        "--json",
        "--limit",
        "1",
    ])))
    .unwrap();
    assert_eq!(hj.as_array().unwrap().len(), 1);

    for i in 0..3 {
        std::fs::write(
            dir.join("s.csv"),
            format!(
                "id,event_date,user_id,amount,note\n{},2024-01-01,1,1.0,s\n",
                6000 + i
            ),
        )
        .unwrap();
        ok(&mut t(&["put", "sales/events", "s.csv"]));
    }
    let out = ok(&mut t(&[
        "datasets",
        "compact",
        "sales/events",
        "--target-size",
        "1MB",
    ]));
    assert!(out.contains("merged"), "{out}");
    assert_eq!(ids(&ok(&mut t(&["get", "sales/events"]))).len(), 6);

    let (out, err) = ok_err(&mut t(&[
        "datasets",
        "vacuum",
        "sales/events",
        "--retain",
        "0s",
        "--dry-run",
    ]));
    assert!(err.contains("would delete") && !out.is_empty(), "{err}");
    let (_, err) = ok_err(&mut t(&[
        "datasets",
        "vacuum",
        "sales/events",
        "--retain",
        "0s",
    ]));
    assert!(err.contains("deleted"), "{err}");
    let e = fails(&mut t(&["get", "sales/events", "--as-of", "1"]));
    assert!(e.contains("removed by vacuum"), "{e}");
    assert_eq!(ids(&ok(&mut t(&["get", "sales/events"]))).len(), 6);

    // Listing and removal.
    let l = ok(&mut t(&["datasets", "list"]));
    for n in ["copy", "piped", "sales/events"] {
        assert!(l.contains(n), "{l}");
    }
    let l = ok(&mut t(&["datasets", "list", "sales/"]));
    assert!(l.contains("sales/events") && !l.contains("copy"), "{l}");
    let e = fails(&mut t(&["datasets", "rm", "copy"]));
    assert!(e.contains("--yes"), "{e}");
    ok(&mut t(&["datasets", "rm", "copy", "--yes"]));
    assert!(!ok(&mut t(&["datasets", "list"])).contains("copy"));
    let e = fails(&mut t(&["get", "copy"]));
    assert!(e.contains("does not exist"), "{e}");

    // Namespaces are separate.
    let l = ok(&mut t(&["datasets", "list", "--namespace", "other"]));
    assert!(l.is_empty(), "{l}");
}

/// `read N of M file(s)` from a -v report.
fn files_read(err: &str) -> (u64, u64) {
    let i = err.find("read ").expect("a read report");
    let words: Vec<&str> = err[i + 5..].split_whitespace().collect();
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

#[test]
fn every_option_on_local_disk() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    run_story(d.path(), store.to_str().unwrap(), &[]);
}

#[test]
fn every_option_on_s3() {
    let Some(bucket) = s3_bucket() else { return };
    let d = tempfile::tempdir().unwrap();
    let store = format!("{bucket}/{}", unique("cli-datasets"));
    std::fs::write(d.path().join("a.csv"), events(0..5)).unwrap();
    // Garage ignores conditional writes: writers must promise to be alone.
    let e = fails(tessera(d.path()).args(["put", "x", "a.csv", "--store", &store]));
    assert!(
        e.contains("--single-writer") && e.contains("conditional"),
        "{e}"
    );
    run_story(d.path(), &store, &["--single-writer"]);
}

#[test]
fn bad_input_fails_clearly_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("a.csv"), events(0..20)).unwrap();
    std::fs::write(p.join("dates.csv"), "id,d\n1,2024-01-01\n2,not a date\n").unwrap();
    std::fs::write(p.join("ids.csv"), "id,u\n1,12\n2,twelve\n").unwrap();
    std::fs::write(
        p.join("float.csv"),
        "id,event_date,user_id,amount,note\n1.5,2024-01-01,1,1,x\n",
    )
    .unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["put", "../x", "a.csv"], "invalid dataset name"),
        (&["put", "a//b", "a.csv"], "empty segment"),
        (&["put", "a b", "a.csv"], "not allowed"),
        (&["put", "x/_delta_log", "a.csv"], "reserved"),
        (
            &["put", "x", "a.csv", "--date-key", "nope"],
            "no column 'nope'",
        ),
        (
            &["put", "x", "a.csv", "--date-key", "event_date:week"],
            "unknown unit",
        ),
        (
            &["put", "x", "a.csv", "--id-key", "user_id:0"],
            "positive integer",
        ),
        (&["put", "x", "dates.csv", "--date-key", "d"], "not a date"),
        (&["put", "x", "ids.csv", "--id-key", "u"], "twelve"),
        (&["put", "x", "missing.csv"], "missing.csv"),
        (&["put", "x", "-"], "--format"),
        (&["get", "nothing"], "does not exist"),
        (&["get", "x", "--as-of", "soon"], "--as-of"),
        (&["datasets", "history", "nothing"], "does not exist"),
        (
            &["datasets", "vacuum", "nothing", "--retain", "forever"],
            "duration",
        ),
        (&["datasets", "rm", "nothing", "--yes"], "does not exist"),
    ];
    for (args, want) in cases {
        let e = fails(tessera(p).args(*args));
        assert!(e.contains(want), "{args:?}: {e}");
    }
    assert!(
        !p.join("tessera-data/datasets/default/x/_delta_log")
            .exists(),
        "nothing committed"
    );
    // A conflicting type names the column; the dataset is unchanged.
    ok(tessera(p).args(["put", "x", "a.csv"]));
    let e = fails(tessera(p).args(["put", "x", "float.csv"]));
    assert!(
        e.contains("'id'") && e.contains("Float64") && e.contains("Int64"),
        "{e}"
    );
    let e = fails(tessera(p).args(["get", "x", "--where", "no_such > 1"]));
    assert!(e.contains("no_such"), "{e}");
    let e = fails(tessera(p).args(["get", "x", "-o", "out.xlsx"]));
    assert!(e.contains("extension"), "{e}");
    let e = fails(tessera(p).args(["get", "x", "--as-of", "7"]));
    assert!(e.contains("no version 7"), "{e}");
    assert_eq!(ids(&ok(tessera(p).args(["get", "x"]))).len(), 20);
}

#[test]
fn concurrent_writers_lose_nothing() {
    // 8 processes at a time, 20 appends each: every row of every load is there.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_path_buf();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tessera"));
    for w in 0..8 {
        let mut s = String::from("id,writer,seq\n");
        for k in 0..20 {
            s.push_str(&format!("{},{w},{k}\n", w * 1000 + k));
        }
        std::fs::write(p.join(format!("w{w}.csv")), s).unwrap();
    }
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let p = p.clone();
            let bin = bin.clone();
            std::thread::spawn(move || {
                for k in 0..20 {
                    // Each load: one row of this writer's file.
                    let f = p.join(format!("w{w}-{k}.csv"));
                    std::fs::write(&f, format!("id,writer,seq\n{},{w},{k}\n", w * 1000 + k))
                        .unwrap();
                    let o = StdCommand::new(&bin)
                        .current_dir(&p)
                        .env_remove("TESSERA_STORE")
                        .args(["put", "shared", f.to_str().unwrap(), "--version"])
                        .arg(format!("w{w}-{k}"))
                        .output()
                        .unwrap();
                    assert!(
                        o.status.success(),
                        "writer {w} load {k}: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let all = ok(tessera(&p).args(["get", "shared"]));
    let want: BTreeSet<i64> = (0..8)
        .flat_map(|w| (0..20).map(move |k| w * 1000 + k))
        .collect();
    assert_eq!(ids(&all), want);
    let h: serde_json::Value = serde_json::from_str(&ok(
        tessera(&p).args(["datasets", "history", "shared", "--json"])
    ))
    .unwrap();
    let h = h.as_array().unwrap();
    assert_eq!(h.iter().filter(|e| e["operation"] == "put").count(), 160);
    let keys: BTreeSet<&str> = h.iter().filter_map(|e| e["version_key"].as_str()).collect();
    assert_eq!(keys.len(), 160);
}

#[test]
fn other_engines_read_what_tessera_wrote() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("a.csv"), events(0..1000)).unwrap();
    std::fs::write(p.join("b.csv"), events(1000..1500)).unwrap();
    ok(tessera(p).args([
        "put",
        "shop/ev",
        "a.csv",
        "--date-key",
        "event_date",
        "--id-key",
        "user_id:100000",
        "--version",
        "v1",
    ]));
    ok(tessera(p).args(["put", "shop/ev", "b.csv", "--version", "v2"]));
    let table = p.join("tessera-data/datasets/default/shop/ev");
    let script = r#"
import sys, json
import deltalake, duckdb, polars as pl, pyarrow.compute as pc
path = sys.argv[1]
dt = deltalake.DeltaTable(path)
t = dt.to_pyarrow_table()
one = t.filter(pc.equal(t.column("id"), 7)).to_pylist()[0]
# DuckDB reads the Parquet files and the Hive layout on its own.
files = f"{path}/**/*.parquet"
duck = duckdb.sql(f"SELECT id FROM read_parquet('{files}', hive_partitioning = true)").fetchall()
march = duckdb.sql(
    f"SELECT count(*) FROM read_parquet('{files}', hive_partitioning = true) "
    "WHERE event_date >= DATE '2024-03-01' AND event_date < DATE '2024-04-01'").fetchall()[0][0]
print(json.dumps({
    "deltalake": sorted(t.column("id").to_pylist()),
    "polars": sorted(pl.read_delta(path)["id"].to_list()),
    "duckdb": sorted(r[0] for r in duck),
    "parts": dt.metadata().partition_columns,
    "row7": {k: str(v) for k, v in one.items()},
    "march": march,
    "versions": [h.get("tessera", {}).get("versionKey") for h in dt.history()],
}))
"#;
    let o = StdCommand::new(&py)
        .arg("-c")
        .arg(script)
        .arg(&table)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want: Vec<i64> = (0..1500).collect();
    for engine in ["deltalake", "polars", "duckdb"] {
        let got: Vec<i64> = serde_json::from_value(v[engine].clone()).unwrap();
        assert_eq!(got, want, "{engine}");
    }
    assert_eq!(
        v["parts"],
        serde_json::json!(["event_date", "user_id_range"])
    );
    assert_eq!(v["row7"]["event_date"], "2024-08-08");
    assert_eq!(v["row7"]["user_id_range"], "from_0_to_100000");
    assert_eq!(v["row7"]["_version_key"], "v1");
    let march = (0..1500).filter(|i| 1 + i % 12 == 3).count();
    assert_eq!(v["march"], march);
    assert_eq!(v["versions"], serde_json::json!(["v2", "v1"]));
}

/// Key columns whose names hold spaces, quotes, `:`, `=`, `/` and
/// non-ASCII: loaded, read back, filtered and pruned through the binary;
/// their partition folders escaped the Hive way, so DuckDB's and Polars'
/// Hive readers split them right, and Delta readers agree.
#[test]
fn odd_key_column_names_work_end_to_end() {
    const DATE: &str = "event date: 'x' \"y\"/z=é";
    const ID: &str = "user id=\"u\"/ü:1";
    const DATE_PART: &str = "event date%3A %27x%27 %22y%22%2Fz%3Dé_day";
    const ID_PART: &str = "user id%3D%22u%22%2Fü%3A1_range";
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let csv_name = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
    let rows = |ids: std::ops::Range<i64>| {
        let mut s = format!("id,{},{},note\n", csv_name(DATE), csv_name(ID));
        for i in ids {
            s.push_str(&format!(
                "{i},2024-03-{:02},{},n{i}\n",
                1 + i % 10,
                i * 37 % 1000
            ));
        }
        s
    };
    std::fs::write(p.join("a.csv"), rows(0..300)).unwrap();
    std::fs::write(p.join("b.csv"), rows(300..400)).unwrap();
    let out = ok(tessera(p).args([
        "put",
        "odd",
        "a.csv",
        "--date-key",
        &format!("{DATE}:day"),
        "--id-key",
        &format!("{ID}:100"),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["partition_columns"],
        serde_json::json!([DATE_PART, ID_PART])
    );
    ok(tessera(p).args(["put", "odd", "b.csv"]));

    let table = p.join("tessera-data/datasets/default/odd");
    for e in std::fs::read_dir(&table).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        assert!(
            n == "_delta_log" || n.starts_with(&format!("{DATE_PART}=2024-03-")),
            "{n}"
        );
    }
    let all = ok(tessera(p).args(["get", "odd"]));
    assert!(
        all.starts_with(&format!("id,{},{},note\n", csv_name(DATE), csv_name(ID))),
        "{}",
        all.lines().next().unwrap_or("")
    );
    assert_eq!(ids(&all), (0..400).collect());
    let quoted = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
    let (out, err) = ok_err(tessera(p).args([
        "get",
        "odd",
        "--where",
        &format!(
            "{} = DATE '2024-03-04' AND {} < 100",
            quoted(DATE),
            quoted(ID)
        ),
        "-v",
    ]));
    let want: BTreeSet<i64> = (0..400)
        .filter(|i| i % 10 == 3 && i * 37 % 1000 < 100)
        .collect();
    assert_eq!(ids(&out), want);
    let (read, total) = files_read(&err);
    assert!(read >= 1 && read * 5 <= total, "{err}");

    let Some(py) = python() else { return };
    let script = r#"
import sys, json
import deltalake, duckdb, polars as pl
path = sys.argv[1]
dt = deltalake.DeltaTable(path)
files = f"{path}/**/*.parquet"
duck = duckdb.sql(f"SELECT * FROM read_parquet('{files}', hive_partitioning = true)")
pol = pl.read_parquet(files, hive_partitioning=True)
print(json.dumps({
    "deltalake": sorted(dt.to_pyarrow_table().column("id").to_pylist()),
    "delta_columns": dt.to_pyarrow_table().column_names,
    "parts": dt.metadata().partition_columns,
    "configuration": dt.metadata().configuration,
    "polars_delta": sorted(pl.read_delta(path)["id"].to_list()),
    "duckdb_columns": duck.columns,
    "duckdb": sorted(r[0] for r in duck.select("id").fetchall()),
    "polars_columns": pol.columns,
    "polars": sorted(pol["id"].to_list()),
}))
"#;
    let o = StdCommand::new(&py)
        .arg("-c")
        .arg(script)
        .arg(&table)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want: Vec<i64> = (0..400).collect();
    for engine in ["deltalake", "polars_delta", "duckdb", "polars"] {
        let got: Vec<i64> = serde_json::from_value(v[engine].clone()).unwrap();
        assert_eq!(got, want, "{engine}");
    }
    assert_eq!(v["parts"], serde_json::json!([DATE_PART, ID_PART]));
    assert_eq!(v["configuration"]["tessera.partition.dateKey.column"], DATE);
    assert_eq!(v["configuration"]["tessera.partition.idKey.width"], "100");
    // The Hive readers see the partition columns under their Delta names.
    for engine in ["delta_columns", "duckdb_columns", "polars_columns"] {
        let cols: BTreeSet<String> = serde_json::from_value(v[engine].clone()).unwrap();
        let want: BTreeSet<String> = ["id", DATE, ID, "note", "_version_key", DATE_PART, ID_PART]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(cols, want, "{engine}");
    }
}
