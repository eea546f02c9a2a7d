//! Datasets through the library: every operation on `memory://`, a local
//! folder and (when `TESSERA_TEST_S3` is set) a real S3 server.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use tessera_datasets::{AsOf, Datasets, Error, VERSION_COLUMN};
use tessera_store::units::parse_duration;
use tessera_store::{Location, PublishMode, StoreOptions};
use tessera_test_support::{s3_base, store_options, unique};

/// The datasets under `url`, with the environment's store options (the S3
/// server's endpoint and keys).
async fn open(url: &str) -> Datasets {
    Datasets::open(url, &store_options()).await.unwrap()
}

/// Rows as `id -> rest of the row rendered`, for comparisons.
fn rows(batches: &[RecordBatch]) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    for b in batches {
        let id = arrow::compute::cast(b.column_by_name("id").unwrap(), &DataType::Int64).unwrap();
        let id = id.as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let rest: Vec<String> = b
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name() != "id")
                .map(|(i, f)| {
                    format!(
                        "{}={}",
                        f.name(),
                        arrow::util::display::array_value_to_string(b.column(i), r).unwrap()
                    )
                })
                .collect();
            assert!(
                out.insert(id.value(r), rest.join(",")).is_none(),
                "duplicate id {}",
                id.value(r)
            );
        }
    }
    out
}

fn count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

fn events(ids: std::ops::Range<i64>) -> String {
    let mut s = String::from("id,event_date,user_id,amount,note\n");
    for i in ids {
        s.push_str(&format!(
            "{i},2024-03-{:02},{},{}.25,\"n, {i}\"\n",
            1 + i % 28,
            (i * 7919) % 500_000,
            i % 1000
        ));
    }
    s
}

async fn file(dir: &Location, rel: &str, data: impl Into<Vec<u8>>) -> Location {
    let l = dir.join(rel).unwrap();
    l.publish(data.into(), PublishMode::Overwrite)
        .await
        .unwrap();
    l
}

/// The whole user story on one store.
async fn story(base: &str, single_writer: bool) {
    let ds = open(base).await.with_single_writer(single_writer);
    let land = Location::open(&format!("{base}/land"), &store_options())
        .await
        .unwrap();
    let a = file(&land, "a.csv", events(0..3000)).await;
    let b = file(&land, "b.csv", events(3000..5000)).await;

    // Two loads, partitioned by day and ID range.
    let r1 = ds
        .put("shop/events")
        .with_date_key("event_date".parse().unwrap())
        .with_id_key("user_id:100000".parse().unwrap())
        .with_version("2024-03")
        .with_target_size(64 * 1024)
        .with_files(vec![a.clone()])
        .await
        .unwrap();
    assert_eq!(r1.rows, 3000);
    assert!(r1.created);
    assert_eq!(r1.partition_columns, vec!["event_date", "user_id_range"]);
    // A later load repeats no options: the layout is remembered.
    let r2 = ds
        .put("shop/events")
        .with_version("2024-04")
        .with_files(vec![b.clone()])
        .await
        .unwrap();
    assert_eq!(r2.rows, 2000);
    assert_eq!(r2.table_version, r1.table_version + 1);

    // All rows, exactly once, without tessera's own columns.
    let all = ds.get("shop/events").collect().await.unwrap();
    let got = rows(&all);
    assert_eq!(got.len(), 5000);
    assert_eq!(
        got[&7],
        "event_date=2024-03-08,user_id=55433,amount=7.25,note=n, 7"
    );
    assert!(all[0].schema().field_with_name(VERSION_COLUMN).is_err());
    assert!(all[0].schema().field_with_name("user_id_range").is_err());

    // By version key, and the last load.
    assert_eq!(
        count(
            &ds.get("shop/events")
                .with_version("2024-03")
                .collect()
                .await
                .unwrap()
        ),
        3000
    );
    let last = ds
        .get("shop/events")
        .with_last(true)
        .collect()
        .await
        .unwrap();
    assert_eq!(rows(&last).keys().next(), Some(&3000));
    assert_eq!(count(&last), 2000);

    // A filter on partition columns prunes files.
    let mut q = ds
        .get("shop/events")
        .with_filter("event_date = '2024-03-05' AND user_id < 100000")
        .await
        .unwrap();
    let mut n = 0;
    while let Some(b) = q.next().await {
        let b = b.unwrap();
        for i in 0..b.num_rows() {
            let d = arrow::util::display::array_value_to_string(
                b.column_by_name("event_date").unwrap(),
                i,
            )
            .unwrap();
            assert_eq!(d, "2024-03-05");
        }
        n += b.num_rows();
    }
    let want = (0..5000i64)
        .filter(|i| 1 + i % 28 == 5 && (i * 7919) % 500_000 < 100_000)
        .count();
    assert_eq!(n, want);
    let st = q.stats();
    assert!(st.files_total > 20, "{st:?}");
    assert!(
        st.files_read >= 1 && st.files_read * 10 <= st.files_total,
        "{st:?}"
    );
    assert!(st.bytes_read * 10 <= st.bytes_total, "{st:?}");

    // Columns, in the order asked.
    let c = ds
        .get("shop/events")
        .with_columns(vec!["note".into(), "id".into(), VERSION_COLUMN.into()])
        .collect()
        .await
        .unwrap();
    let names: Vec<_> = c[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, vec!["note", "id", VERSION_COLUMN]);

    // A load with a new column merges it; old rows read it as null.
    let c3 = file(
        &land,
        "c.csv",
        "id,event_date,user_id,amount,note,channel\n9000,2024-05-01,3,1.5,x,web\n",
    )
    .await;
    let r3 = ds
        .put("shop/events")
        .with_version("v3")
        .with_files(vec![c3])
        .await
        .unwrap();
    assert_eq!(r3.new_columns, vec!["channel"]);
    let all = rows(&ds.get("shop/events").collect().await.unwrap());
    assert!(all[&9000].ends_with("channel=web"), "{}", all[&9000]);
    assert!(all[&1].ends_with("channel="), "{}", all[&1]);

    // A changed type is refused, naming the column; nothing is committed.
    let bad = file(
        &land,
        "bad.csv",
        "id,event_date,user_id,amount,note\n1.5,2024-05-01,3,1.5,x\n",
    )
    .await;
    let e = ds
        .put("shop/events")
        .with_files(vec![bad])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("'id'") && e.contains("Float64"), "{e}");

    // History: newest first, with keys and rows.
    let h = ds.history("shop/events").await.unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].version_key.as_deref(), Some("v3"));
    assert_eq!(h[2].rows, Some(3000));
    assert_eq!(h[2].operation, "put");
    assert_eq!(h[2].version, 0);

    // Keep-last replaces everything; time travel still sees the past.
    let k = file(&land, "k.csv", events(100..110)).await;
    let rk = ds
        .put("shop/events")
        .with_version("fresh")
        .with_keep_last(true)
        .with_files(vec![k])
        .await
        .unwrap();
    assert_eq!(count(&ds.get("shop/events").collect().await.unwrap()), 10);
    let before = ds
        .get("shop/events")
        .with_as_of(AsOf::Version(rk.table_version - 1))
        .collect()
        .await
        .unwrap();
    assert_eq!(count(&before), 5001);
    assert_eq!(
        count(
            &ds.get("shop/events")
                .with_as_of(AsOf::Version(0))
                .collect()
                .await
                .unwrap()
        ),
        3000
    );
    assert!(matches!(
        ds.get("shop/events")
            .with_as_of(AsOf::Version(99))
            .await
            .err()
            .unwrap(),
        Error::NoSuchVersion { .. }
    ));

    // Compaction: fewer files, same rows.
    for i in 0..4 {
        let mut small = String::from("id,event_date,user_id,amount,note\n");
        for j in 0..10 {
            small.push_str(&format!("{},2024-06-01,1,0.5,s\n", 20_000 + i * 10 + j));
        }
        let f = file(&land, &format!("s{i}.csv"), small).await;
        ds.put("shop/events")
            .with_version("small")
            .with_keep_last(false)
            .with_files(vec![f])
            .await
            .unwrap();
    }
    let before = ds.info("shop/events").await.unwrap();
    let cr = ds
        .compact("shop/events")
        .with_target_size(1 << 20)
        .await
        .unwrap();
    assert!(cr.files_removed > cr.files_added, "{cr:?}");
    let after = ds.info("shop/events").await.unwrap();
    assert!(after.files < before.files);
    assert_eq!(after.rows, Some(50));
    assert_eq!(count(&ds.get("shop/events").collect().await.unwrap()), 50);

    // Vacuum removes the files old versions need: time travel says so.
    let v = ds
        .vacuum("shop/events")
        .with_retain(parse_duration("0s").unwrap())
        .await
        .unwrap();
    assert!(!v.files.is_empty());
    let e = ds
        .get("shop/events")
        .with_as_of(AsOf::Version(0))
        .collect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Vacuumed { .. }), "{e}");
    assert!(e.to_string().contains("vacuum"), "{e}");
    assert_eq!(count(&ds.get("shop/events").collect().await.unwrap()), 50);

    // Listing and removal.
    let s = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let one = RecordBatch::try_new(s, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    ds.put("shop/other")
        .with_batches(vec![one.clone()])
        .await
        .unwrap();
    ds.put("zoo").with_batches(vec![one]).await.unwrap();
    let names: Vec<_> = ds
        .list("shop/")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, vec!["shop/events", "shop/other"]);
    assert_eq!(
        ds.names("").await.unwrap(),
        vec!["shop/events", "shop/other", "zoo"]
    );
    let rm = ds.remove("shop/other").await.unwrap();
    assert!(rm.objects >= 2);
    assert_eq!(ds.names("").await.unwrap(), vec!["shop/events", "zoo"]);
    assert!(matches!(
        ds.get("shop/other").collect().await.unwrap_err(),
        Error::NotFound { .. }
    ));

    // Another namespace sees none of it.
    let other = open(base)
        .await
        .with_single_writer(single_writer)
        .with_namespace("team-b")
        .unwrap();
    assert!(other.names("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_in_memory() {
    story("memory://ds-story", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_local_disk() {
    let d = tempfile::tempdir().unwrap();
    story(d.path().to_str().unwrap(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_s3() {
    let Some(bucket) = s3_base() else { return };
    let base = format!("{bucket}/{}", unique("datasets"));
    // Garage ignores conditional writes: writing needs the single-writer promise.
    let ds = open(&base).await;
    let s = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let one = RecordBatch::try_new(s, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let e = ds.put("x").with_batches(vec![one]).await.unwrap_err();
    assert!(matches!(e, Error::UnsafeStore { .. }), "{e}");
    assert!(
        e.to_string().contains("single-writer") && e.to_string().contains("conditional"),
        "{e}"
    );
    story(&base, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_clear_errors() {
    let ds = open("memory://ds-bad").await;
    let land = Location::open("memory://ds-bad/land", &StoreOptions::default())
        .await
        .unwrap();
    // Names: each rule.
    for (n, want) in [
        ("", "empty"),
        ("/a", "start or end"),
        ("a//b", "empty segment"),
        ("a/../b", "'..'"),
        ("a b", "not allowed"),
        ("x/_delta_log", "reserved"),
    ] {
        let e = ds.get(n).collect().await.unwrap_err().to_string();
        assert!(e.contains(want), "{n:?}: {e}");
    }
    let f = file(&land, "e.csv", events(0..50)).await;
    // Unknown partition column.
    let e = ds
        .put("e")
        .with_date_key("nope".parse().unwrap())
        .with_files(vec![f.clone()])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no column 'nope'") && e.contains("event_date"),
        "{e}"
    );
    // Non-date values in a date key.
    let nd = file(
        &land,
        "nd.csv",
        "id,d\n1,2024-01-01\n2,2024-01-02\n3,someday\n",
    )
    .await;
    let e = ds
        .put("nd")
        .with_date_key("d".parse().unwrap())
        .with_files(vec![nd])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 3") && e.contains("someday"), "{e}");
    assert!(
        ds.names("").await.unwrap().is_empty(),
        "nothing is committed"
    );
    // Non-integer ID key.
    let ni = file(&land, "ni.csv", "id,u\n1,5\n2,x7\n").await;
    let e = ds
        .put("ni")
        .with_id_key("u".parse().unwrap())
        .with_files(vec![ni])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row 2") && e.contains("x7") && e.contains("integer"),
        "{e}"
    );
    let fl = file(&land, "fl.csv", "id,u\n1,5.5\n").await;
    let e = ds
        .put("fl")
        .with_id_key("u".parse().unwrap())
        .with_files(vec![fl])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("Float64") && e.contains("integers"), "{e}");
    // Missing dataset; --last with no loads.
    let e = ds.get("missing").collect().await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    let e = ds.history("missing").await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    // A malformed row names the object and line.
    let mal = file(&land, "mal.csv", "id,amount\n1,2.5\n2,abc\n").await;
    ds.put("mal")
        .with_files(vec![file(&land, "ok.csv", "id,amount\n1,2.5\n").await])
        .await
        .unwrap();
    let e = ds
        .put("mal")
        .with_files(vec![mal])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("mal.csv") && e.contains("line 3"), "{e}");
    assert_eq!(count(&ds.get("mal").collect().await.unwrap()), 1);
    // A reserved column name in the data.
    let rv = file(&land, "rv.csv", format!("id,{VERSION_COLUMN}\n1,x\n")).await;
    let e = ds
        .put("rv")
        .with_files(vec![rv])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(VERSION_COLUMN), "{e}");
    // Nested datasets are refused both ways.
    let e = ds
        .put("mal/inner")
        .with_files(vec![f.clone()])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("inside another"), "{e}");
    ds.put("outer/inner")
        .with_files(vec![f.clone()])
        .await
        .unwrap();
    let e = ds
        .put("outer")
        .with_files(vec![f.clone()])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds other datasets"), "{e}");
    // A partitioning different from the dataset's.
    let e = ds
        .put("outer/inner")
        .with_id_key("user_id".parse().unwrap())
        .with_files(vec![f.clone()])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("partitioned by nothing"), "{e}");
    // Bad predicates and columns.
    let e = ds
        .get("outer/inner")
        .with_filter("nope > 1")
        .collect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidPredicate { .. }), "{e}");
    assert!(
        e.to_string().contains("nope > 1") && e.to_string().contains("filter"),
        "{e}"
    );
    let e = ds
        .get("outer/inner")
        .with_columns(vec!["zz".into()])
        .collect()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column 'zz'"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_needs_a_load() {
    // A Delta table made by another writer: no tessera loads in its history.
    let d = tempfile::tempdir().unwrap();
    let ds = open(d.path().to_str().unwrap()).await;
    let loc = ds.location("foreign").unwrap();
    std::fs::create_dir_all(loc.local_path().unwrap()).unwrap();
    let url = url::Url::parse(&format!("{}/", loc.url())).unwrap();
    let t = deltalake::DeltaTable::try_from_url(url).await.unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let b = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
    t.write(vec![b]).await.unwrap();
    assert_eq!(count(&ds.get("foreign").collect().await.unwrap()), 2);
    let e = ds
        .get("foreign")
        .with_last(true)
        .collect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoLoads { .. }), "{e}");
    // tessera can append to it; then --last works.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![3])),
            Arc::new(StringArray::from(vec!["x"])),
        ],
    )
    .unwrap();
    ds.put("foreign")
        .with_version("mine")
        .with_batches(vec![b])
        .await
        .unwrap();
    let last = ds.get("foreign").with_last(true).collect().await.unwrap();
    assert_eq!(count(&last), 1);
    assert_eq!(
        last[0]
            .column_by_name("s")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "x"
    );
    assert_eq!(last[0].column_by_name("id").unwrap().null_count(), 0);
}

/// Key columns named with spaces, quotes, `:`, `=`, `/` and non-ASCII.
const ODD_DATE: &str = "event date: 'x' \"y\"/z=é";
const ODD_ID: &str = "user id=\"u\"/ü:1";

/// Rows `ids` of a table with odd key column names: `ODD_DATE` (dates),
/// `ODD_ID` (integers), `id` and `note`.
fn odd_batch(ids: std::ops::Range<i64>) -> RecordBatch {
    use arrow::array::Date32Array;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new(ODD_DATE, DataType::Date32, true),
        Field::new(ODD_ID, DataType::Int64, true),
        Field::new("note", DataType::Utf8, true),
    ]));
    // 2024-03-01 is day 19783 since 1970-01-01.
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(Date32Array::from_iter_values(
                ids.clone().map(|i| 19783 + (i % 10) as i32),
            )),
            Arc::new(Int64Array::from_iter_values(
                ids.clone().map(|i| i * 37 % 1000),
            )),
            Arc::new(StringArray::from_iter_values(ids.map(|i| format!("n {i}")))),
        ],
    )
    .unwrap()
}

/// The Delta table of dataset `name`, loaded.
async fn delta_table(ds: &Datasets, name: &str) -> deltalake::DeltaTable {
    let url = url::Url::parse(&format!("{}/", ds.location(name).unwrap().url())).unwrap();
    deltalake::open_table(url).await.unwrap()
}

fn configuration(t: &deltalake::DeltaTable) -> std::collections::HashMap<String, String> {
    t.snapshot().unwrap().metadata().configuration().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_key_column_names_are_recorded_escaped_and_pruned() {
    use tessera_datasets::keys::{
        DATE_KEY_COLUMN, DATE_KEY_GRANULARITY, ID_KEY_COLUMN, ID_KEY_WIDTH,
    };
    use tessera_datasets::{DateKey, Granularity, IdKey};

    let d = tempfile::tempdir().unwrap();
    let ds = open(d.path().to_str().unwrap()).await;
    let r = ds
        .put("odd")
        .with_batches(vec![odd_batch(0..500)])
        .with_date_key(DateKey::new(ODD_DATE, Granularity::Day))
        .with_id_key(IdKey::new(ODD_ID, 100))
        .with_version("v1")
        .await
        .unwrap();
    // The version 0 commit holds the data and the layout.
    assert_eq!((r.table_version, r.rows), (0, 500));
    let date_part = "event date%3A %27x%27 %22y%22%2Fz%3Dé_day";
    let id_part = "user id%3D%22u%22%2Fü%3A1_range";
    assert_eq!(r.partition_columns, vec![date_part, id_part]);
    let t = delta_table(&ds, "odd").await;
    let conf = configuration(&t);
    assert_eq!(conf[DATE_KEY_COLUMN], ODD_DATE);
    assert_eq!(conf[DATE_KEY_GRANULARITY], "day");
    assert_eq!(conf[ID_KEY_COLUMN], ODD_ID);
    assert_eq!(conf[ID_KEY_WIDTH], "100");

    // A second load is told nothing: the layout comes from the configuration.
    let r2 = ds
        .put("odd")
        .with_batches(vec![odd_batch(500..600)])
        .with_version("v2")
        .await
        .unwrap();
    assert_eq!(r2.partition_columns, vec![date_part, id_part]);

    // Folders: one level per key, named by the escaped partition columns.
    let root = ds.location("odd").unwrap().local_path().unwrap();
    let mut folders = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let e = e.unwrap();
        let n = e.file_name().into_string().unwrap();
        if n == "_delta_log" {
            continue;
        }
        assert!(n.starts_with(&format!("{date_part}=2024-03-")), "{n}");
        for inner in std::fs::read_dir(e.path()).unwrap() {
            let inner = inner.unwrap();
            let n = inner.file_name().into_string().unwrap();
            assert!(n.starts_with(&format!("{id_part}=from_")), "{n}");
            assert!(inner.path().is_dir());
            folders += 1;
        }
    }
    assert!(folders > 10, "{folders}");

    // Read back whole: the key columns as they were, no derived columns.
    let all = ds.get("odd").collect().await.unwrap();
    let names: Vec<String> = all[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, vec!["id", ODD_DATE, ODD_ID, "note"]);
    assert_eq!(count(&all), 600);
    let got = rows(&all);
    assert_eq!(
        got[&7],
        format!("{ODD_DATE}=2024-03-08,{ODD_ID}=259,note=n 7")
    );

    // Filtered on both key columns (quoted identifiers), pruned.
    let date_col = format!("\"{}\"", ODD_DATE.replace('"', "\"\""));
    let id_col = format!("\"{}\"", ODD_ID.replace('"', "\"\""));
    let mut q = ds
        .get("odd")
        .with_filter(format!("{date_col} = DATE '2024-03-04' AND {id_col} < 100"))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(b) = q.next().await {
        got.extend(rows(&[b.unwrap()]).into_keys());
    }
    // Files are read concurrently: batches arrive in no set order.
    got.sort_unstable();
    let want: Vec<i64> = (0..600)
        .filter(|i| i % 10 == 3 && i * 37 % 1000 < 100)
        .collect();
    assert_eq!(got, want);
    let st = q.stats();
    assert!(
        st.files_read >= 1 && st.files_read * 5 <= st.files_total,
        "{st:?}"
    );
    // The derived partition column answers by its escaped name.
    let part = ds
        .get("odd")
        .with_columns(vec!["id".into(), id_part.into()])
        .with_filter(format!(
            "\"{}\" = 'from_0_to_100'",
            id_part.replace('"', "\"\"")
        ))
        .collect()
        .await
        .unwrap();
    assert_eq!(
        count(&part),
        (0..600).filter(|i| i * 37 % 1000 < 100).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_the_previous_release_are_read_and_migrated() {
    use deltalake::kernel::transaction::CommitProperties;
    use tessera_datasets::keys::{
        DATE_KEY_COLUMN, DATE_KEY_GRANULARITY, ID_KEY_COLUMN, ID_KEY_WIDTH,
    };
    use tessera_datasets::{DateKey, Granularity, IdKey};

    // A dataset as the previous release wrote it: the layout as flags in the table
    // description, derived columns named from the raw key column names,
    // version keys in a column and in the commit.
    let d = tempfile::tempdir().unwrap();
    let ds = open(d.path().to_str().unwrap()).await;
    let loc = ds.location("legacy").unwrap();
    std::fs::create_dir_all(loc.local_path().unwrap()).unwrap();
    let url = url::Url::parse(&format!("{}/", loc.url())).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("event date", DataType::Utf8, true),
        Field::new("u=v", DataType::Int64, true),
        Field::new("event date_month", DataType::Utf8, true),
        Field::new("u=v_range", DataType::Utf8, true),
        Field::new(VERSION_COLUMN, DataType::Utf8, true),
    ]));
    let old = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![
                "2024-01-05",
                "2024-02-06",
                "2024-02-07",
            ])),
            Arc::new(Int64Array::from(vec![5, 1500, 2500])),
            Arc::new(StringArray::from(vec!["2024-01", "2024-02", "2024-02"])),
            Arc::new(StringArray::from(vec![
                "from_0_to_1000",
                "from_1000_to_2000",
                "from_2000_to_3000",
            ])),
            Arc::new(StringArray::from(vec!["old"; 3])),
        ],
    )
    .unwrap();
    deltalake::DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .write(vec![old])
        .with_partition_columns(["event date_month", "u=v_range"])
        .with_description("tessera dataset --date-key event date:month --id-key u=v:1000")
        .with_table_name("legacy")
        .with_commit_properties(CommitProperties::default().with_metadata([(
            "tessera".to_string(),
            serde_json::json!({"operation": "put", "versionKey": "old", "keepLast": false}),
        )]))
        .await
        .unwrap();
    assert!(!configuration(&delta_table(&ds, "legacy").await).contains_key(DATE_KEY_COLUMN));

    // Read as it is: data columns only, version keys, the last load.
    let all = ds.get("legacy").collect().await.unwrap();
    assert_eq!(rows(&all)[&2], "event date=2024-02-06,u=v=1500".to_string());
    assert_eq!(
        count(&ds.get("legacy").with_last(true).collect().await.unwrap()),
        3
    );
    assert_eq!(ds.info("legacy").await.unwrap().partition_columns.len(), 2);

    // The first load without keys migrates the layout, then loads.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("event date", DataType::Utf8, true),
        Field::new("u=v", DataType::Int64, true),
    ]));
    let new = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![4, 5])),
            Arc::new(StringArray::from(vec!["2024-03-01", "2024-01-09"])),
            Arc::new(Int64Array::from(vec![7, 1999])),
        ],
    )
    .unwrap();
    let r = ds
        .put("legacy")
        .with_batches(vec![new.clone()])
        .with_version("new")
        .await
        .unwrap();
    assert_eq!(r.partition_columns, vec!["event date_month", "u=v_range"]);
    assert_eq!(r.table_version, 2, "version 1 records the layout");
    let t = delta_table(&ds, "legacy").await;
    let conf = configuration(&t);
    assert_eq!(conf[DATE_KEY_COLUMN], "event date");
    assert_eq!(conf[DATE_KEY_GRANULARITY], "month");
    assert_eq!(conf[ID_KEY_COLUMN], "u=v");
    assert_eq!(conf[ID_KEY_WIDTH], "1000");
    let h = ds.history("legacy").await.unwrap();
    let ops: Vec<&str> = h.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(ops, vec!["put", "record layout", "put"]);

    // Reads still work, by key and in all.
    let all = rows(&ds.get("legacy").collect().await.unwrap());
    assert_eq!(all.len(), 5);
    assert_eq!(all[&5], "event date=2024-01-09,u=v=1999");
    let last = ds.get("legacy").with_last(true).collect().await.unwrap();
    assert_eq!(rows(&last).into_keys().collect::<Vec<_>>(), vec![4, 5]);
    let jan = ds
        .get("legacy")
        .with_filter("\"event date_month\" = '2024-01'")
        .collect()
        .await
        .unwrap();
    assert_eq!(rows(&jan).into_keys().collect::<Vec<_>>(), vec![1, 5]);

    // Later loads neither migrate again nor mind being told the same keys.
    let r = ds
        .put("legacy")
        .with_batches(vec![new])
        .with_date_key(DateKey::new("event date", Granularity::Month))
        .with_id_key(IdKey::new("u=v", 1000))
        .with_version("again")
        .await
        .unwrap();
    assert_eq!(r.table_version, 3);
    let e = ds
        .put("legacy")
        .with_batches(vec![odd_batch(0..1)])
        .with_id_key(IdKey::new("u=v", 10))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e}");
}

/// Loads on a store that fails, truncates, delays and repeats calls at
/// random (seeded): a load that reports success is there whole; one that
/// fails leaves the dataset with the load whole or not at all (never part
/// of it), and the dataset takes further loads on a healthy store.
#[tokio::test]
async fn store_faults_leave_a_load_whole_or_absent() {
    use tessera_store::object_store::memory::InMemory;
    use tessera_store::object_store::{path::Path, ObjectStore};
    use tessera_store::StoreKind;
    use tessera_test_support::{Faults, FaultyStore};

    let (mut ok, mut failed) = (0, 0);
    for seed in 0..16u64 {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let at = |store: Arc<dyn ObjectStore>, key: &str| {
            Location::from_store(
                store,
                "memory://ds-faults",
                Path::from(key),
                StoreKind::Memory,
            )
        };
        let land = at(inner.clone(), "land");
        let a = file(&land, "a.csv", events(0..1500)).await;
        let faulty: Arc<dyn ObjectStore> =
            Arc::new(FaultyStore::new(inner.clone(), Faults::all(0.03), seed));
        let ds = Datasets::new(at(faulty, "wh")).with_single_writer(true);
        let result = ds
            .put("shop/events")
            .with_date_key("event_date".parse().unwrap())
            .with_version("v1")
            .with_files(vec![a.clone()])
            .await;
        let healthy = Datasets::new(at(inner.clone(), "wh")).with_single_writer(true);
        let present = match healthy.get("shop/events").collect().await {
            Ok(batches) => rows(&batches).len(),
            Err(Error::NotFound { .. }) => 0,
            Err(e) => panic!("seed {seed}: the dataset cannot be read after the faults: {e}"),
        };
        match result {
            Ok(r) => {
                assert_eq!(
                    (r.rows, present),
                    (1500, 1500),
                    "seed {seed}: a load that succeeded"
                );
                ok += 1;
            }
            Err(e) => {
                assert!(
                    present == 0 || present == 1500,
                    "seed {seed}: {present} rows of a failed load ({e})"
                );
                failed += 1;
            }
        }
        // The dataset still takes loads.
        let b = file(&land, "b.csv", events(5000..5100)).await;
        healthy
            .put("shop/events")
            .with_date_key("event_date".parse().unwrap())
            .with_version("v2")
            .with_files(vec![b])
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: a healthy load after the faults failed: {e}"));
        let after = rows(&healthy.get("shop/events").collect().await.unwrap()).len();
        assert_eq!(after, present + 100, "seed {seed}");
    }
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
}

/// Rows over a thousand days and a million user IDs, in random order;
/// with the number of distinct days and of 1000-wide user ID ranges.
fn scattered(ids: std::ops::Range<i64>, seed: u64) -> (String, usize, usize) {
    let mut s = String::from("id,event_date,user_id,note\n");
    let (mut days, mut ranges) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    let mut x = seed | 1;
    for i in ids {
        // xorshift: deterministic, spread over every partition.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let day = chrono::NaiveDate::from_ymd_opt(2015, 1, 1).unwrap()
            + chrono::Duration::days((x % 1000) as i64);
        let user = (x >> 20) % 1_000_000;
        days.insert(day);
        ranges.insert(user / 1000);
        s.push_str(&format!("{i},{day},{user},\"note {i}, {}\"\n", x % 977));
    }
    (s, days.len(), ranges.len())
}

/// A load into a thousand partitions under a small memory budget spills
/// to local disk and still writes every row once, one file per partition
/// (the spilled pieces of a partition are written into the same file), on
/// every store; with the default budget the same load does not spill.
#[tokio::test]
async fn many_partitions_under_a_small_budget_spill_and_keep_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut bases = vec![
        format!("memory://spill-{}", unique("m")),
        dir.path().join("wh").to_string_lossy().into_owned(),
    ];
    if let Some(s3) = s3_base() {
        bases.push(format!("{s3}/{}", unique("spill")));
    }
    for base in bases {
        let ds = open(&base).await.with_single_writer(true);
        let land = Location::open(&format!("{base}/land"), &store_options())
            .await
            .unwrap();
        let n = 20_000;
        let (csv, days, ranges) = scattered(0..n, 7);
        let a = file(&land, "a.csv", csv).await;
        let small = ds
            .put("ev")
            .with_files(vec![a.clone()])
            .with_date_key("event_date".parse().unwrap())
            .with_memory_budget(1)
            .with_version("small")
            .await
            .unwrap();
        assert_eq!(small.rows, n as u64, "{base}");
        assert!(small.spilled_bytes > 0, "{base}: nothing spilled");
        assert_eq!(small.files, days as u64, "{base}: one file per partition");
        let got = ds
            .get("ev")
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{base}: reading the load back: {e:?}"));
        assert_eq!(count(&got), n as usize, "{base}");
        let ids: std::collections::BTreeSet<i64> = rows(&got).into_keys().collect();
        assert_eq!(ids, (0..n).collect(), "{base}: every row once");

        // The same rows with the default budget: no spill, same files.
        let again = ds
            .put("ev2")
            .with_files(vec![a.clone()])
            .with_date_key("event_date".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(again.spilled_bytes, 0, "{base}");
        assert_eq!(again.files, small.files, "{base}");

        // ID ranges and keep_last through the spilling writer: the old
        // files are removed, the new rows replace them whole.
        let b = file(&land, "b.csv", scattered(n..n + 5_000, 11).0).await;
        let ids = ds
            .put("ids")
            .with_files(vec![a])
            .with_id_key(tessera_datasets::IdKey::new("user_id", 1000))
            .with_memory_budget(1)
            .await
            .unwrap();
        assert!(ids.spilled_bytes > 0, "{ids:?}");
        assert_eq!(ids.files, ranges as u64, "{base}: one file per ID range");
        let last = ds
            .put("ids")
            .with_files(vec![b])
            .with_keep_last(true)
            .with_memory_budget(1)
            .await
            .unwrap();
        assert_eq!(last.rows, 5_000);
        let got = ds
            .get("ids")
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{base}: reading the load back: {e:?}"));
        let ids: std::collections::BTreeSet<i64> = rows(&got).into_keys().collect();
        assert_eq!(ids, (n..n + 5_000).collect(), "{base}: keep_last");
    }
}
