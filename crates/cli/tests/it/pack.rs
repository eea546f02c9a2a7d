//! `tessera pack` through the real binary: messages for bad input, every
//! format to every format, and killing packs at random instants.

use std::io::Write;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};

use crate::common::{fails, ok, rt, s3_bucket, store_options, tessera, unique};
use tessera_formats::{infer_schema, parquet_schema, read, FileFormat, ReadOptions};
use tessera_store::{Location, PublishMode};

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn csv(ids: std::ops::Range<i64>) -> String {
    let mut s = String::from("id,name,score,day\n");
    for i in ids {
        s.push_str(&format!(
            "{i},\"n, {i}\nsecond line\",{}.25,2024-02-{:02}\n",
            i % 1000,
            1 + i % 28
        ));
    }
    s
}

/// Every id in the visible files of a table folder.
fn ids_in(dir: &Location) -> Vec<i64> {
    let (objs, _) = rt().block_on(dir.list_dir()).unwrap();
    let mut out = Vec::new();
    for o in objs {
        let name = o.location.filename().unwrap().to_string();
        if name.starts_with('_') {
            continue;
        }
        let loc = dir.with_path(o.location.clone());
        let f =
            FileFormat::from_name(&name).unwrap_or_else(|| panic!("visible non-data file {name}"));
        let schema = Arc::new(if f.is_text() {
            infer_schema(&loc, f, 1 << 20, rt().handle())
                .unwrap()
                .unwrap()
        } else {
            parquet_schema(&loc, rt().handle()).unwrap()
        });
        for b in read(&loc, f, schema, &ReadOptions::new(rt().handle().clone())).unwrap() {
            let b: RecordBatch = b.unwrap();
            let c =
                arrow::compute::cast(b.column_by_name("id").unwrap(), &DataType::Int64).unwrap();
            out.extend(c.as_primitive::<Int64Type>().values().iter().copied());
        }
    }
    out.sort();
    out
}

#[test]
fn bad_input_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let case = |name: &str, data: &[u8]| {
        let _ = std::fs::remove_dir_all(p.join("land"));
        write(&p.join("land/t").join(name), data);
        fails(tessera(p).args(["pack", "land", "db", "t"]))
    };
    // A bad value past the sample types are inferred from.
    let mut big = String::from("id,v\n");
    for i in 0..120_000 {
        big.push_str(&format!("{i},{i}\n"));
    }
    big.push_str("x,4\n");
    let e = case("a.csv", big.as_bytes());
    assert!(
        e.contains("a.csv: line 120002") && e.contains("'x'") && e.contains("'id'"),
        "{e}"
    );
    let e = case("a.csv", b"id,v\n1,2\n2,3,4\n");
    assert!(
        e.contains("a.csv: line 3") && e.contains("expected 2 got 3"),
        "{e}"
    );
    let e = case("a.csv", b"id,v\n1,2\n2,\xff\n");
    assert!(e.contains("a.csv: line 3") && e.contains("UTF-8"), "{e}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv(0..2000).as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let e = case("a.csv.gz", &gz[..gz.len() - 100]);
    assert!(e.contains("a.csv.gz") && e.contains("truncated"), "{e}");
    let e = case("a.dat", b"1,2\n");
    assert!(
        e.contains("a.dat") && e.contains("unknown file format"),
        "{e}"
    );
    let e = case("a.jsonl", b"{\"id\": 1}\n{\"id\": \n");
    assert!(e.contains("a.jsonl: line 2"), "{e}");
    // Nothing was published by any of the failures.
    assert!(
        !p.join("db/t").exists()
            || std::fs::read_dir(p.join("db/t")).unwrap().all(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('_'))
    );

    // Zero-byte inputs are packed as no rows (and counted as packed).
    let _ = std::fs::remove_dir_all(p.join("land"));
    write(&p.join("land/t/empty.csv"), b"");
    write(&p.join("land/t/a.csv"), b"id\n1\n");
    let out = ok(tessera(p).args(["pack", "land", "db", "t"]));
    assert!(out.contains("packed 1 rows from 2 file(s)"), "{out}");

    // An output folder with a file of another name or format.
    write(&p.join("db/u/foo.csv"), b"x\n");
    write(&p.join("land/u/a.csv"), b"id\n1\n");
    let e = fails(tessera(p).args(["pack", "land", "db", "u"]));
    assert!(
        e.contains("foo.csv") && e.contains("naming convention"),
        "{e}"
    );

    for bad in ["0", "abc", "-5MB", "12XB"] {
        let e =
            fails(tessera(p).args(["pack", "land", "db", "t", &format!("--max-file-size={bad}")]));
        assert!(e.contains("--max-file-size"), "{bad}: {e}");
    }
    let e = fails(tessera(p).args(["pack", "land", "db", "t", "--output-ext", "xlsx"]));
    assert!(e.contains("unknown format 'xlsx'"), "{e}");
    let e = fails(tessera(p).args(["pack", "land", "db", "t", "--output-ext", "csv.gz"]));
    assert!(e.contains("cannot write csv.gz"), "{e}");
    let e = fails(tessera(p).args(["pack", "land", "db"]));
    assert!(e.contains("INPUT_BASE OUTPUT_BASE TABLE"), "{e}");
    write(
        &p.join("s.json"),
        br#"[{"name": "id", "type": "decimal-ish"}]"#,
    );
    let e = fails(tessera(p).args(["pack", "land", "db", "t", "--schema", "s.json", "--force"]));
    assert!(e.contains("s.json") && e.contains("'decimal-ish'"), "{e}");
}

#[test]
fn every_format_to_every_format() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(&p.join("land/src/a.csv"), csv(0..300).as_bytes());
    write(&p.join("land/src/b.csv"), csv(300..500).as_bytes());
    let outs = [
        "csv",
        "tsv",
        "jsonl",
        "parquet",
        "snappy.parquet",
        "zstd.parquet",
    ];
    for (i, o) in outs.iter().enumerate() {
        // Source table packed to format o, then that table packed back to every format.
        let src_table = format!("s{i}");
        std::fs::create_dir_all(p.join("l2")).unwrap();
        let _ = std::fs::rename(p.join("land/src"), p.join(format!("land/{src_table}")));
        ok(tessera(p).args([
            "pack",
            "land",
            "l2",
            &src_table,
            "--output-ext",
            o,
            "--max-file-size",
            "20KB",
        ]));
        let _ = std::fs::rename(p.join(format!("land/{src_table}")), p.join("land/src"));
        for (j, o2) in outs.iter().enumerate() {
            let t = format!("s{i}");
            let out = ok(tessera(p).args([
                "pack",
                "l2",
                &format!("o{j}"),
                &t,
                "--output-ext",
                o2,
                "--json",
            ]));
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["rows"], 500, "{o} -> {o2}");
            let dir = Location::local(&p.join(format!("o{j}/{t}"))).unwrap();
            assert_eq!(ids_in(&dir), (0..500).collect::<Vec<_>>(), "{o} -> {o2}");
        }
    }
    // Types survive CSV -> Parquet: ints, floats, dates, strings with newlines.
    let dir = Location::local(&p.join("o3/s0")).unwrap();
    let s = parquet_schema(&dir.join("s0_0.parquet").unwrap(), rt().handle()).unwrap();
    let types: Vec<String> = s
        .fields()
        .iter()
        .map(|f| f.data_type().to_string())
        .collect();
    assert_eq!(types, vec!["Int64", "Utf8", "Float64", "Date32"]);
}

#[test]
fn dry_run_schema_and_compact() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(&p.join("land/t/a.csv"), csv(0..2000).as_bytes());
    let out = ok(tessera(p).args(["pack", "land", "db", "t", "--dry-run"]));
    assert!(
        out.contains("inputs: 1 file(s)")
            && out.contains("create: t_0.snappy.parquet")
            && out.contains("dry run"),
        "{out}"
    );
    assert!(!p.join("db").exists());
    write(
        &p.join("s.json"),
        br#"[{"name":"id","type":"utf8"},{"name":"score","type":"float32"}]"#,
    );
    ok(tessera(p).args([
        "pack",
        "land",
        "db",
        "t",
        "--schema",
        "s.json",
        "--max-file-size",
        "1MB",
    ]));
    let s = parquet_schema(
        &Location::local(&p.join("db/t/t_0.snappy.parquet")).unwrap(),
        rt().handle(),
    )
    .unwrap();
    assert_eq!(
        s.field_with_name("id").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        s.field_with_name("score").unwrap().data_type(),
        &DataType::Float32
    );
    let out = ok(tessera(p).args(["pack", "--compact", "db", "t", "--max-file-size", "10KB"]));
    assert!(
        out.contains("compacted") && out.contains("t_1.snappy.parquet"),
        "{out}"
    );
    let dir = Location::local(&p.join("db/t")).unwrap();
    assert_eq!(ids_in(&dir).len(), 2000);
}

#[test]
fn same_inputs_into_two_partitions() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(&p.join("land/t/a.csv"), csv(0..300).as_bytes());
    let pack = |v: &str| {
        ok(tessera(p).args([
            "pack",
            "land",
            "db",
            "t",
            "--partition",
            &format!("some_val={v}"),
        ]))
    };
    let out = pack("A");
    assert!(out.contains("packed 300 rows"), "{out}");
    let out = pack("B");
    assert!(
        out.contains("packed 300 rows")
            && out.contains("was packed into partition some_val=A before"),
        "{out}"
    );
    for v in ["A", "B"] {
        let dir = Location::local(&p.join(format!("db/t/some_val={v}"))).unwrap();
        assert_eq!(ids_in(&dir), (0..300).collect::<Vec<_>>(), "{v}");
        // A re-run into the same partition adds nothing, says so, and succeeds.
        let out = pack(v);
        assert!(
            out.contains(&format!(
                "nothing to pack: all 1 input file(s) were packed into partition some_val={v} before"
            )),
            "{out}"
        );
        assert_eq!(ids_in(&dir), (0..300).collect::<Vec<_>>(), "{v}");
    }
}

/// The binary `cargo test` runs is built with tessera-pack's
/// `fault-injection` feature (a dev-dependency feature): TESSERA_FAULT
/// really aborts there, so the crash tests below test what they claim.
#[test]
fn fault_points_abort_in_test_builds() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(&p.join("land/t/a.csv"), csv(0..100).as_bytes());
    let o = tessera(p)
        .args(["pack", "land", "db", "t"])
        .env("TESSERA_FAULT", "after-stage")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{o:?}");
    assert!(stderr.contains("aborting at after-stage"), "{stderr}");
    // Staged, not committed: nothing visible, and the next run packs it all.
    assert!(!p.join("db/t/t_0.snappy.parquet").exists());
    let out = ok(tessera(p).args(["pack", "land", "db", "t"]));
    assert!(out.contains("packed 100 rows"), "{out}");
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Start packs, kill them at random instants, add inputs, run again; in the
/// end every input row is in the output exactly once.
fn crash_test(land: &str, db: &str, extra: &[&str], put: &dyn Fn(usize, &str)) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut rng = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("tessera");
    let mut rows = 0i64;
    let mut killed = 0;
    for round in 0..10 {
        let n = 3000 + rng.next(5000) as i64;
        put(round, &csv(rows..rows + n));
        rows += n;
        // Some runs die at a chosen point of the protocol, the others are
        // killed at a random instant or finish.
        let fault = [
            "after-stage",
            "after-commit",
            "mid-apply",
            "mid-cleanup",
            "",
            "",
            "",
        ][rng.next(7) as usize];
        let mut child = StdCommand::new(&bin)
            .current_dir(dir.path())
            .args(["pack", land, db, "t", "--max-file-size", "40KB", "-q"])
            .args(extra)
            .env("TESSERA_MAX_RETRIES", "1")
            .env("TESSERA_FAULT", fault)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let wait = if fault.is_empty() && rng.next(2) == 0 {
            Duration::from_millis(rng.next(100 + 80 * round as u64))
        } else {
            Duration::from_secs(600)
        };
        let start = std::time::Instant::now();
        while start.elapsed() < wait && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        match child.try_wait().unwrap() {
            Some(status) => {
                let o = child.wait_with_output().unwrap();
                if fault.is_empty() {
                    assert!(status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                } else {
                    killed += 1;
                }
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
            }
        }
    }
    let o = StdCommand::new(&bin)
        .current_dir(dir.path())
        .args(["pack", land, db, "t", "--max-file-size", "40KB"])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!(
        "{killed} of 10 packs killed or aborted; final run: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let out = rt()
        .block_on(Location::open(&format!("{db}/t"), &store_options()))
        .unwrap();
    assert_eq!(ids_in(&out), (0..rows).collect::<Vec<_>>(), "seed {seed}");
    // And the journal is clean: no staging left behind.
    let staging = rt()
        .block_on(out.join("_tessera/staging").unwrap().list_all(4))
        .unwrap();
    assert!(staging.is_empty(), "{staging:?}");
}

#[test]
fn killed_packs_converge_exactly_once_on_disk() {
    let d = tempfile::tempdir().unwrap();
    let land = d.path().join("land");
    let db = d.path().join("db");
    let put = |i: usize, data: &str| write(&land.join(format!("t/in{i}.csv")), data.as_bytes());
    crash_test(land.to_str().unwrap(), db.to_str().unwrap(), &[], &put);
}

#[test]
fn killed_packs_converge_exactly_once_on_s3() {
    let Some(bucket) = s3_bucket() else { return };
    let base = format!("{bucket}/{}", unique("pack-crash"));
    let land = format!("{base}/land");
    let db = format!("{base}/db");
    let land_loc = rt()
        .block_on(Location::open(&land, &store_options()))
        .unwrap();
    let put = |i: usize, data: &str| {
        rt().block_on(
            land_loc
                .join(&format!("t/in{i}.csv"))
                .unwrap()
                .publish(data.to_string(), PublishMode::Overwrite),
        )
        .unwrap();
    };
    // Garage ignores conditional writes: packs refuse unless told there is one writer.
    let e = fails(tessera(Path::new(".")).args(["pack", &land, &db, "t"]));
    assert!(e.contains("--single-writer"), "{e}");
    crash_test(&land, &db, &["--single-writer"], &put);
}
