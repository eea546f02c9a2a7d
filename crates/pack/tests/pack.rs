//! Packing behaviour through the library, on memory and local stores.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use proptest::prelude::*;
use tessera_formats::{parquet_schema, read, FileFormat, ReadOptions};
use tessera_pack::{Compact, Error, Pack, PackTarget};
use tessera_store::{Location, PublishMode, StoreOptions};
use tessera_test_support::rt;

fn mem(name: &str) -> Location {
    rt().block_on(Location::open(
        &format!("memory://{name}"),
        &StoreOptions::default(),
    ))
    .unwrap()
}

fn put(dir: &Location, rel: &str, data: impl Into<Vec<u8>>) {
    rt().block_on(
        dir.join(rel)
            .unwrap()
            .publish(data.into(), PublishMode::Overwrite),
    )
    .unwrap();
}

fn csv_rows(ids: std::ops::Range<i64>) -> String {
    let mut s = String::from("id,name,score\n");
    for i in ids {
        s.push_str(&format!("{i},\"n, {i}\",{}.5\n", i % 97));
    }
    s
}

/// Visible files of a folder (name → size), hidden names skipped.
fn files(dir: &Location) -> BTreeMap<String, u64> {
    let (objs, _) = rt().block_on(dir.list_dir()).unwrap();
    objs.into_iter()
        .map(|o| (o.location.filename().unwrap().to_string(), o.size))
        .filter(|(n, _)| !n.starts_with('_'))
        .collect()
}

/// Every id in the visible files of `dir`, read back.
fn ids(dir: &Location) -> Vec<i64> {
    let mut out = Vec::new();
    for name in files(dir).keys() {
        let loc = dir.join(name).unwrap();
        let f = FileFormat::from_name(name).unwrap();
        let schema = Arc::new(match f.is_text() {
            true => tessera_formats::infer_schema(&loc, f, 1 << 20, rt().handle())
                .unwrap()
                .unwrap(),
            false => parquet_schema(&loc, rt().handle()).unwrap(),
        });
        let o = ReadOptions::new(rt().handle().clone());
        for b in read(&loc, f, schema, &o).unwrap() {
            let b: RecordBatch = b.unwrap();
            let c = arrow::compute::cast(
                b.column_by_name("id").unwrap(),
                &arrow::datatypes::DataType::Int64,
            )
            .unwrap();
            out.extend(c.as_primitive::<Int64Type>().values().iter().copied());
        }
    }
    out
}

fn pack(input: &Location, output: &Location) -> Pack {
    Pack::new(input.clone(), output.clone(), "t")
}

/// Run a pack or a compaction.
fn run<T>(op: impl IntoFuture<Output = Result<T, Error>>) -> Result<T, Error> {
    rt().block_on(op.into_future())
}

#[test]
fn names_numbers_and_appends() {
    let (land, db) = (mem("b1/land"), mem("b1/db"));
    put(&land, "t/a.csv", csv_rows(0..2500));
    let r = run(pack(&land, &db).with_max_file_size(20_000)).unwrap();
    let out = db.join("t").unwrap();
    let f1 = files(&out);
    assert!(f1.len() >= 2, "{f1:?}");
    let names: Vec<_> = f1.keys().cloned().collect();
    for (i, n) in names.iter().enumerate() {
        assert_eq!(n, &format!("t_{i}.snappy.parquet"));
    }
    for (n, s) in f1.iter().take(f1.len() - 1) {
        assert!((*s as f64 - 20_000.0).abs() <= 1_000.0, "{n}: {s}");
    }
    assert_eq!(r.rows, 2500);

    // Same inputs again: nothing to do.
    let r = run(pack(&land, &db).with_max_file_size(20_000)).unwrap();
    assert!(r.seq.is_none() && r.plan.already_packed.len() == 1);

    // New input: the partial last file is rewritten first, numbering continues.
    let last = names.last().unwrap().clone();
    put(&land, "t/b.csv", csv_rows(2500..3200));
    let r = run(pack(&land, &db).with_max_file_size(20_000)).unwrap();
    let partial = f1[&last] < 19_000;
    let expect = if partial {
        last.clone()
    } else {
        format!("t_{}.snappy.parquet", names.len())
    };
    assert_eq!(r.outputs[0].path, expect, "{f1:?}");
    assert_eq!(r.outputs[0].replaces, partial);
    let mut got = ids(&out);
    got.sort();
    assert_eq!(got, (0..3200).collect::<Vec<_>>());

    // A suffix makes its own series beside the first.
    put(&land, "t/c.csv", csv_rows(5000..5010));
    run(pack(&land, &db)
        .with_max_file_size(20_000)
        .with_suffix("eu"))
    .unwrap();
    assert!(files(&out).contains_key("t_eu_0.snappy.parquet"));
}

#[test]
fn numbering_continues_after_gaps() {
    for (full, expect) in [(false, "t_12.csv"), (true, "t_13.csv")] {
        let tag = if full { "full" } else { "part" };
        let (land, db) = (
            mem(&format!("gap-{tag}/land")),
            mem(&format!("gap-{tag}/db")),
        );
        let small = csv_rows(0..10);
        let big = csv_rows(10..2000);
        put(&db, "t/t_0.csv", small.clone());
        put(
            &db,
            "t/t_12.csv",
            if full { big.clone() } else { csv_rows(10..20) },
        );
        put(&land, "t/new.csv", csv_rows(100_000..100_010));
        let limit = if full { big.len() as u64 } else { 100_000 };
        let r = run(pack(&land, &db)
            .with_output_format(FileFormat::from_extension("csv").unwrap())
            .with_max_file_size(limit))
        .unwrap();
        assert_eq!(r.outputs[0].path, expect, "{tag}");
        assert_eq!(r.outputs.len(), 1);
        assert_eq!(r.outputs[0].replaces, !full);
    }
}

#[test]
fn partitions_count_only_their_own_files() {
    let (land, db) = (mem("parts/land"), mem("parts/db"));
    put(&db, "t/t_0.snappy.parquet", Vec::new()); // placeholder, replaced below
    rt().block_on(db.join("t/t_0.snappy.parquet").unwrap().delete())
        .unwrap();
    put(&land, "t/a.csv", csv_rows(0..100));
    run(pack(&land, &db).with_partition("day", "2024-01-01")).unwrap();
    put(&land, "t/b.csv", csv_rows(100..200));
    run(pack(&land, &db).with_partition("day", "2024-01-02")).unwrap();
    let d1 = db.join("t/day=2024-01-01").unwrap();
    let d2 = db.join("t/day=2024-01-02").unwrap();
    assert_eq!(
        files(&d1).keys().collect::<Vec<_>>(),
        vec!["t_0.snappy.parquet"]
    );
    assert_eq!(
        files(&d2).keys().collect::<Vec<_>>(),
        vec!["t_0.snappy.parquet"]
    );
    assert!(files(&db.join("t").unwrap()).is_empty());

    // --partition-by: one folder per value, the column moves to the path.
    let (land, db) = (mem("pby/land"), mem("pby/db"));
    put(&land, "t/a.csv", "id,country\n1,fr\n2,de\n3,fr\n4,\n");
    put(&land, "t/b.csv", "id,country\n5,../x\n");
    let err = run(pack(&land, &db).with_partition_by("country")).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidName { what: "partition value", name, .. } if name == "../x"),
        "{err:?}"
    );
    let e = err.to_string();
    assert!(
        e.contains("\"../x\"") && e.contains("cannot be a folder name"),
        "{e}"
    );
    assert!(rt()
        .block_on(db.list_all(4))
        .unwrap()
        .iter()
        .all(|o| o.location.as_ref().contains("_tessera")));
    rt().block_on(land.join("t/b.csv").unwrap().delete())
        .unwrap();
    run(pack(&land, &db).with_partition_by("country")).unwrap();
    let t = db.join("t").unwrap();
    let (_, dirs) = rt().block_on(t.list_dir()).unwrap();
    let mut names: Vec<String> = dirs
        .iter()
        .map(|d| d.filename().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "_tessera",
            "country=__HIVE_DEFAULT_PARTITION__",
            "country=de",
            "country=fr"
        ]
    );
    let fr = db.join("t/country=fr").unwrap();
    let mut got = ids(&fr);
    got.sort();
    assert_eq!(got, vec![1, 3]);
    let schema = parquet_schema(&fr.join("t_0.snappy.parquet").unwrap(), rt().handle()).unwrap();
    assert!(schema.field_with_name("country").is_err());
}

#[test]
fn packed_inputs_are_remembered_per_target() {
    let (land, db) = (mem("targets/land"), mem("targets/db"));
    put(&land, "t/a.csv", csv_rows(0..50));
    let part = |v: &str| pack(&land, &db).with_partition("some_val", v);
    let in_part = |v: &str| {
        let mut got = ids(&db.join(&format!("t/some_val={v}")).unwrap());
        got.sort();
        got
    };
    let r = run(part("A")).unwrap();
    assert_eq!(r.rows, 50);
    assert!(r.plan.packed_elsewhere.is_empty());

    // Another partition is another target: the same input is packed there
    // too, and the report says where it went before.
    let r = run(part("B")).unwrap();
    assert_eq!(r.rows, 50);
    assert!(r.plan.already_packed.is_empty());
    let a = PackTarget {
        partition: vec![("some_val".into(), "A".into())],
        partition_by: None,
    };
    assert_eq!(r.plan.packed_elsewhere.len(), 1);
    assert!(r.plan.packed_elsewhere[0].0.ends_with("/t/a.csv"));
    assert_eq!(r.plan.packed_elsewhere[0].1, a);
    assert_eq!(in_part("A"), (0..50).collect::<Vec<_>>());
    assert_eq!(in_part("B"), (0..50).collect::<Vec<_>>());

    // Re-runs into either partition add nothing.
    for v in ["A", "B"] {
        let r = run(part(v)).unwrap();
        assert!(r.seq.is_none(), "{v}");
        assert_eq!(r.plan.already_packed.len(), 1, "{v}");
    }
    assert_eq!(in_part("A"), (0..50).collect::<Vec<_>>());
    assert_eq!(in_part("B"), (0..50).collect::<Vec<_>>());

    // The table folder itself and a split by column are targets of their own.
    let r = run(pack(&land, &db)).unwrap();
    assert_eq!(r.rows, 50);
    assert_eq!(r.plan.packed_elsewhere.len(), 1);
    assert!(run(pack(&land, &db)).unwrap().seq.is_none());
    let r = run(pack(&land, &db).with_partition_by("score")).unwrap();
    assert_eq!(r.rows, 50);
    assert!(run(pack(&land, &db).with_partition_by("score"))
        .unwrap()
        .seq
        .is_none());
    let mut root = ids(&db.join("t").unwrap());
    root.sort();
    assert_eq!(root, (0..50).collect::<Vec<_>>());

    // A journal record written before targets were recorded counts for
    // every target, as it did when it was written.
    let (land, db) = (mem("targets-old/land"), mem("targets-old/db"));
    put(&land, "t/a.csv", csv_rows(0..10));
    run(pack(&land, &db).with_partition("p", "A")).unwrap();
    let runs = db.join("t/_tessera/runs").unwrap();
    let (objs, _) = rt().block_on(runs.list_dir()).unwrap();
    let rec = objs
        .iter()
        .find(|o| o.location.as_ref().ends_with(".json"))
        .unwrap();
    let rec = runs.with_path(rec.location.clone());
    let mut v: serde_json::Value =
        serde_json::from_slice(&rt().block_on(rec.read()).unwrap()).unwrap();
    assert!(v.as_object_mut().unwrap().remove("target").is_some());
    rt().block_on(rec.publish(v.to_string(), PublishMode::Overwrite))
        .unwrap();
    let r = run(pack(&land, &db).with_partition("p", "B")).unwrap();
    assert!(r.seq.is_none());
    assert_eq!(r.plan.already_packed.len(), 1);
}

#[test]
fn output_folder_is_checked_before_writing() {
    let (land, db) = (mem("chk/land"), mem("chk/db"));
    put(&land, "t/a.csv", csv_rows(0..10));
    put(&db, "t/foo.csv", "x\n1\n");
    let err = run(pack(&land, &db)).unwrap_err();
    assert!(matches!(err, Error::ForeignFile { .. }), "{err:?}");
    let e = err.to_string();
    assert!(
        e.contains("foo.csv") && e.contains("naming convention"),
        "{e}"
    );
    rt().block_on(db.join("t/foo.csv").unwrap().delete())
        .unwrap();
    put(&db, "t/t_0.csv", "id\n1\n");
    let err = run(pack(&land, &db)).unwrap_err();
    assert!(
        matches!(&err, Error::FormatMismatch { found, expected, .. } if found == "csv" && expected == "snappy.parquet"),
        "{err:?}"
    );
    let e = err.to_string();
    assert!(
        e.contains("t_0.csv") && e.contains("csv file, but this pack writes snappy.parquet"),
        "{e}"
    );
    put(&db, "t/t_0.parquet", "not used");
    rt().block_on(db.join("t/t_0.csv").unwrap().delete())
        .unwrap();
    let e = run(pack(&land, &db)).unwrap_err().to_string();
    assert!(
        e.contains("t_0.parquet") && e.contains("parquet file"),
        "{e}"
    );
    // Nothing was written into the table.
    assert_eq!(files(&db.join("t").unwrap()).len(), 1);
}

#[test]
fn inputs_are_checked() {
    let (land, db) = (mem("in/land"), mem("in/db"));
    put(&land, "t/a.csv", csv_rows(0..10));
    put(&land, "t/b.jsonl", "{\"id\": 1}\n");
    let err = run(pack(&land, &db)).unwrap_err();
    assert!(
        matches!(&err, Error::MixedInputs { formats, .. } if formats == &["csv", "jsonl"]),
        "{err:?}"
    );
    let e = err.to_string();
    assert!(
        e.contains("mixes formats") && e.contains("csv, jsonl"),
        "{e}"
    );
    let r = run(pack(&land, &db).with_input_format(FileFormat::from_extension("jsonl").unwrap()))
        .unwrap();
    assert_eq!(r.rows, 1);
    put(&land, "t/notes.txt", "hello");
    let err = run(pack(&land, &db).with_force(true)).unwrap_err();
    assert!(matches!(err, Error::UnknownInputFormat { .. }), "{err:?}");
    let e = err.to_string();
    assert!(
        e.contains("notes.txt") && e.contains("unknown file format"),
        "{e}"
    );
    let err = run(pack(&mem("none/land"), &db)).unwrap_err();
    assert!(matches!(err, Error::NoInput { .. }), "{err:?}");
    let e = err.to_string();
    assert!(e.contains("no input files"), "{e}");
    let err = run(Pack::new(land.clone(), land.clone(), "t")).unwrap_err();
    assert!(matches!(err, Error::InputOverlapsOutput { .. }), "{err:?}");
    let e = err.to_string();
    assert!(e.contains("overlap"), "{e}");
    for bad in ["../t", "a/b", "", "_x", "a.b"] {
        let err = run(Pack::new(land.clone(), db.clone(), bad)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidName { what: "table name", name, .. } if name == bad),
            "{bad}: {err:?}"
        );
        let e = err.to_string();
        assert!(e.contains("invalid table name"), "{bad}: {e}");
    }
}

#[test]
fn settings_are_checked() {
    let (land, db) = (mem("set/land"), mem("set/db"));
    put(&land, "t/a.csv", csv_rows(0..10));
    let err = run(pack(&land, &db).with_max_file_size(1000)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "max_file_size",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("too small"), "{err}");
    let err = run(pack(&land, &db).with_suffix("a.b")).unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { what: "suffix", .. }),
        "{err:?}"
    );
    let err = run(pack(&land, &db).with_partition("day", "")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidName {
                what: "partition value",
                ..
            }
        ),
        "{err:?}"
    );
    let err = run(pack(&land, &db)
        .with_partition("name", "x")
        .with_partition_by("name"))
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "partition_by",
                ..
            }
        ),
        "{err:?}"
    );
    let err = run(pack(&land, &db).with_partition_by("country")).unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchColumn { column, columns } if column == "country" && columns.len() == 3),
        "{err:?}"
    );
    assert!(err.to_string().contains("id, name, score"), "{err}");
    let gz = FileFormat::from_extension("csv.gz").unwrap();
    let err = run(pack(&land, &db).with_output_format(gz)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "output_format",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("cannot write csv.gz"), "{err}");
    // Planning checks the same, and nothing was written by any of them.
    let err = rt()
        .block_on(pack(&land, &db).with_max_file_size(10).plan())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "max_file_size",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(rt().block_on(db.list_all(4)).unwrap().is_empty());
}

#[test]
fn schema_conflict_on_append_names_columns() {
    let (land, db) = (mem("sc/land"), mem("sc/db"));
    put(&land, "t/a.csv", "id,v\n1,2\n");
    run(pack(&land, &db)).unwrap();
    put(&land, "t/b.csv", "id,v\n3,x\n");
    let e = run(pack(&land, &db)).unwrap_err().to_string();
    assert!(e.contains("'v'") && e.contains("b.csv"), "{e}");
    put(&land, "t/b.csv", "id,v,w\n3,4,5\n");
    let err = run(pack(&land, &db)).unwrap_err();
    assert!(
        matches!(&err, Error::SchemaMismatch { column, expected: None, found: Some(_), object } if column == "w" && object.ends_with("/t/b.csv")),
        "{err:?}"
    );
    let e = err.to_string();
    assert!(e.contains("'w'"), "{e}");
    // A compatible file appends (missing columns are null).
    put(&land, "t/b.csv", "id\n3\n");
    run(pack(&land, &db)).unwrap();
    let mut got = ids(&db.join("t").unwrap());
    got.sort();
    assert_eq!(got, vec![1, 3]);
}

#[test]
fn dry_run_writes_nothing() {
    let (land, db) = (mem("dry/land"), mem("dry/db"));
    put(&land, "t/a.csv", csv_rows(0..10));
    let plan = rt().block_on(pack(&land, &db).plan()).unwrap();
    assert_eq!(plan.inputs.len(), 1);
    // No run was committed (nor anything else written).
    let runs = rt()
        .block_on(db.join("t/_tessera/runs").unwrap().list_all(4))
        .unwrap();
    assert!(runs.is_empty(), "{runs:?}");
    let all = rt().block_on(db.list_all(4)).unwrap();
    assert!(all.is_empty(), "{all:?}");
}

#[test]
fn compaction_rebalances() {
    let (land, db) = (mem("cmp/land"), mem("cmp/db"));
    for i in 0..6 {
        put(
            &land,
            &format!("t/{i}.csv"),
            csv_rows(i * 100..(i + 1) * 100),
        );
        run(pack(&land, &db).with_max_file_size(1_000_000)).unwrap();
    }
    // Six small packs into a big limit: one file rewritten six times.
    let out = db.join("t").unwrap();
    assert_eq!(files(&out).len(), 1);
    // Now make files of a smaller limit by splitting: compaction splits oversized ones.
    let r = run(Compact::new(db.clone(), "t").with_max_file_size(4_000)).unwrap();
    let f = files(&out);
    assert!(f.len() >= 3, "{f:?} {r:?}");
    for (n, s) in f.iter().take(f.len() - 1) {
        assert!((*s as f64 - 4000.0).abs() <= 200.0, "{n}: {s}");
    }
    let mut got = ids(&out);
    got.sort();
    assert_eq!(got, (0..600).collect::<Vec<_>>());
    // Balanced now: nothing to do.
    let r = run(Compact::new(db.clone(), "t").with_max_file_size(4_000)).unwrap();
    assert!(r.seq.is_none());
}

#[test]
fn compaction_plans_before_writing() {
    let (land, db) = (mem("cmp-plan/land"), mem("cmp-plan/db"));
    put(&land, "t/a.csv", csv_rows(0..600));
    run(pack(&land, &db).with_max_file_size(1_000_000)).unwrap();
    let out = db.join("t").unwrap();
    let before = files(&out);
    let compact = Compact::new(db.clone(), "t").with_max_file_size(4_000);
    let plan = rt().block_on(compact.plan()).unwrap();
    assert_eq!(plan.folders.len(), 1);
    assert_eq!(plan.folders[0].rel, "");
    assert_eq!(plan.folders[0].first_n, 0);
    assert_eq!(plan.folders[0].files.len(), 1);
    assert_eq!(plan.input_bytes, before["t_0.snappy.parquet"]);
    assert_eq!(files(&out), before, "planning writes nothing");
    let r = run(compact).unwrap();
    assert_eq!(r.rows, 600);
    assert!(r.deleted.is_empty(), "t_0 is written over: {r:?}");
    assert!(r.outputs.len() >= 3 && r.outputs[0].replaces, "{r:?}");
    // Only one partition folder, when given; a table without files has nothing to compact.
    let err = run(Compact::new(mem("cmp-plan/none"), "t")).unwrap_err();
    assert!(matches!(err, Error::NoInput { .. }), "{err:?}");
    let err = run(Compact::new(db.clone(), "t").with_partition("day", "1")).unwrap_err();
    assert!(matches!(err, Error::NoInput { .. }), "{err:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Whatever the inputs, limits and existing files, the output holds the
    /// existing rows and the input rows, each once.
    #[test]
    fn every_row_once(
        existing in 0i64..400,
        inputs in proptest::collection::vec(0i64..300, 1..5),
        limit in 2_000u64..30_000,
        ext in prop::sample::select(vec!["csv", "jsonl", "snappy.parquet", "zstd.parquet"]),
    ) {
        // A fresh store for every execution, shrinking runs included.
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let case = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (land, db) = (
            mem(&format!("prop-{}-{case}/land", std::process::id())),
            mem(&format!("prop-{}-{case}/db", std::process::id())),
        );
        let fmt = FileFormat::from_extension(ext).unwrap();
        let mut next = 0;
        let mut want = Vec::new();
        if existing > 0 {
            put(&land, "t/old.csv", csv_rows(0..existing));
            run(pack(&land, &db).with_output_format(fmt).with_max_file_size(limit)).unwrap();
            rt().block_on(land.join("t/old.csv").unwrap().delete()).unwrap();
            want.extend(0..existing);
            next = existing;
        }
        for (i, n) in inputs.iter().enumerate() {
            put(&land, &format!("t/in{i}.csv"), csv_rows(next..next + n));
            want.extend(next..next + n);
            next += n;
        }
        run(pack(&land, &db).with_output_format(fmt).with_max_file_size(limit)).unwrap();
        let mut got = ids(&db.join("t").unwrap());
        got.sort();
        prop_assert_eq!(got, want);
    }
}

/// Pack on a store that fails, truncates, delays and repeats calls at
/// random (seeded): a run either packs every row exactly once or fails with
/// an error, and a healthy re-run after it converges to every row exactly
/// once (the journal makes the re-run finish what the failed run started).
#[test]
fn store_faults_fail_clearly_and_a_rerun_converges() {
    use tessera_store::object_store::memory::InMemory;
    use tessera_store::object_store::{path::Path, ObjectStore};
    use tessera_store::StoreKind;
    use tessera_test_support::{Faults, FaultyStore};

    let (mut ok, mut failed) = (0, 0);
    for seed in 0..24u64 {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let at = |store: Arc<dyn ObjectStore>, key: &str| {
            Location::from_store(store, "memory://faults", Path::from(key), StoreKind::Memory)
        };
        let (land, db) = (at(inner.clone(), "land"), at(inner.clone(), "db"));
        for f in 0..3 {
            put(
                &land,
                &format!("t/{f}.csv"),
                csv_rows(f * 1000..(f + 1) * 1000),
            );
        }
        let faulty: Arc<dyn ObjectStore> =
            Arc::new(FaultyStore::new(inner.clone(), Faults::all(0.04), seed));
        let result = run(Pack::new(at(faulty.clone(), "land"), at(faulty, "db"), "t")
            .with_max_file_size(40_000)
            .with_single_writer(true));
        let table = db.join("t").unwrap();
        match result {
            Ok(_) => {
                let mut got = ids(&table);
                got.sort_unstable();
                assert_eq!(
                    got,
                    (0..3000).collect::<Vec<_>>(),
                    "seed {seed}: a run that succeeded"
                );
                ok += 1;
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                failed += 1;
            }
        }
        // A healthy re-run finishes the job; every row once.
        run(pack(&land, &db)
            .with_max_file_size(40_000)
            .with_single_writer(true))
        .unwrap_or_else(|e| panic!("seed {seed}: the re-run failed: {e}"));
        let mut got = ids(&table);
        got.sort_unstable();
        assert_eq!(
            got,
            (0..3000).collect::<Vec<_>>(),
            "seed {seed}: after the re-run"
        );
    }
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
}

/// A split into many folders under a small memory budget keeps rows waiting
/// on local disk and writes each folder in turn: every row once, one file
/// per folder, rows in input order within a folder; a second run appends
/// to the same folders.
#[test]
fn a_split_into_many_folders_under_a_small_budget_keeps_every_row_once() {
    let (land, db) = (mem("many-folders/land"), mem("many-folders/db"));
    // 40,000 rows over 400 folders, values scattered through the input.
    let rows = |ids: std::ops::Range<i64>| {
        let mut s = String::from("id,bucket,note\n");
        for i in ids {
            s.push_str(&format!(
                "{i},{},\"note {i}, padded {}\"\n",
                (i * 7919) % 400,
                "x".repeat(40)
            ));
        }
        s
    };
    put(&land, "t/a.csv", rows(0..40_000));
    let r = run(pack(&land, &db)
        .with_partition_by("bucket")
        .with_output_format(FileFormat::from_extension("parquet").unwrap())
        .with_memory_budget(1))
    .unwrap();
    assert_eq!(r.rows, 40_000);
    assert_eq!(r.outputs.len(), 400, "one file per folder");
    let table = db.join("t").unwrap();
    let (_, folders) = rt().block_on(table.list_dir()).unwrap();
    let folders: Vec<String> = folders
        .iter()
        .filter(|f| f.as_ref().contains("bucket="))
        .map(|f| f.as_ref().rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(folders.len(), 400);
    let mut all = Vec::new();
    for f in &folders {
        let b: i64 = f.trim_start_matches("bucket=").parse().unwrap();
        let got = ids(&table.join(f).unwrap());
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{f}: rows out of input order"
        );
        assert!(
            got.iter().all(|i| (i * 7919) % 400 == b),
            "{f}: a row of another folder"
        );
        all.extend(got);
    }
    all.sort();
    assert_eq!(all, (0..40_000).collect::<Vec<_>>());

    // More rows: the folders' partial files are rewritten with them.
    put(&land, "t/b.csv", rows(40_000..44_000));
    let r = run(pack(&land, &db)
        .with_partition_by("bucket")
        .with_output_format(FileFormat::from_extension("parquet").unwrap())
        .with_memory_budget(1))
    .unwrap();
    assert_eq!(r.rows, 4_000);
    let mut all = Vec::new();
    for f in &folders {
        all.extend(ids(&table.join(f).unwrap()));
    }
    all.sort();
    assert_eq!(all, (0..44_000).collect::<Vec<_>>());
}
