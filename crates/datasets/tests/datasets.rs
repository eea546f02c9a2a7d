//! Datasets through the library: every operation on `memory://`, a local
//! folder and (when `TESSERA_TEST_S3` is set) a real S3 server.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use tessera_datasets::{parse_duration, AsOf, Datasets, Error, VERSION_COLUMN};
use tessera_store::{Location, PublishMode, StoreOptions};

async fn open(url: &str) -> Datasets {
    Datasets::open(url, &StoreOptions::default()).await.unwrap()
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
    let ds = open(base).await.single_writer(single_writer);
    let land = Location::open(&format!("{base}/land"), &StoreOptions::default())
        .await
        .unwrap();
    let a = file(&land, "a.csv", events(0..3000)).await;
    let b = file(&land, "b.csv", events(3000..5000)).await;

    // Two loads, partitioned by day and ID range.
    let r1 = ds
        .put("shop/events")
        .date_key("event_date".parse().unwrap())
        .id_key("user_id:100000".parse().unwrap())
        .version("2024-03")
        .target_size(64 * 1024)
        .execute_files(std::slice::from_ref(&a))
        .await
        .unwrap();
    assert_eq!(r1.rows, 3000);
    assert!(r1.created);
    assert_eq!(r1.partition_columns, vec!["event_date", "user_id_range"]);
    // A later load repeats no options: the layout is remembered.
    let r2 = ds
        .put("shop/events")
        .version("2024-04")
        .execute_files(std::slice::from_ref(&b))
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
                .version("2024-03")
                .collect()
                .await
                .unwrap()
        ),
        3000
    );
    let last = ds.get("shop/events").last().collect().await.unwrap();
    assert_eq!(rows(&last).keys().next(), Some(&3000));
    assert_eq!(count(&last), 2000);

    // A filter on partition columns prunes files.
    let mut q = ds
        .get("shop/events")
        .filter("event_date = '2024-03-05' AND user_id < 100000")
        .execute()
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
        .columns(vec!["note".into(), "id".into(), VERSION_COLUMN.into()])
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
        .version("v3")
        .execute_files(&[c3])
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
        .execute_files(&[bad])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("'id'") && e.contains("Float64"), "{e}");

    // History: newest first, with keys and rows.
    let h = ds.history("shop/events", None).await.unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].version_key.as_deref(), Some("v3"));
    assert_eq!(h[2].rows, Some(3000));
    assert_eq!(h[2].operation, "put");
    assert_eq!(h[2].version, 0);

    // Keep-last replaces everything; time travel still sees the past.
    let k = file(&land, "k.csv", events(100..110)).await;
    let rk = ds
        .put("shop/events")
        .version("fresh")
        .keep_last(true)
        .execute_files(&[k])
        .await
        .unwrap();
    assert_eq!(count(&ds.get("shop/events").collect().await.unwrap()), 10);
    let before = ds
        .get("shop/events")
        .as_of(AsOf::Version(rk.table_version - 1))
        .collect()
        .await
        .unwrap();
    assert_eq!(count(&before), 5001);
    assert_eq!(
        count(
            &ds.get("shop/events")
                .as_of(AsOf::Version(0))
                .collect()
                .await
                .unwrap()
        ),
        3000
    );
    assert!(matches!(
        ds.get("shop/events")
            .as_of(AsOf::Version(99))
            .execute()
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
            .version("small")
            .keep_last(false)
            .execute_files(&[f])
            .await
            .unwrap();
    }
    let before = ds.info("shop/events").await.unwrap();
    let cr = ds
        .compact("shop/events")
        .target_size(1 << 20)
        .execute()
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
        .retain(parse_duration("0s").unwrap())
        .execute()
        .await
        .unwrap();
    assert!(!v.files.is_empty());
    let e = ds
        .get("shop/events")
        .as_of(AsOf::Version(0))
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
        .execute(vec![one.clone()])
        .await
        .unwrap();
    ds.put("zoo").execute(vec![one]).await.unwrap();
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
        .single_writer(single_writer)
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

fn s3_base() -> Option<String> {
    match std::env::var("TESSERA_TEST_S3") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("TESSERA_REQUIRE_S3").is_err(),
                "TESSERA_REQUIRE_S3 is set but TESSERA_TEST_S3 is not"
            );
            eprintln!("skipping: TESSERA_TEST_S3 not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_s3() {
    let Some(bucket) = s3_base() else { return };
    let base = format!(
        "{bucket}/datasets-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    // Garage ignores conditional writes: writing needs the single-writer promise.
    let ds = open(&base).await;
    let s = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let one = RecordBatch::try_new(s, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let e = ds.put("x").execute(vec![one]).await.unwrap_err();
    assert!(matches!(e, Error::UnsafeStore { .. }), "{e}");
    assert!(e.to_string().contains("--single-writer"));
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
        .date_key("nope".parse().unwrap())
        .execute_files(std::slice::from_ref(&f))
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
        .date_key("d".parse().unwrap())
        .execute_files(&[nd])
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
        .id_key("u".parse().unwrap())
        .execute_files(&[ni])
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
        .id_key("u".parse().unwrap())
        .execute_files(&[fl])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("Float64") && e.contains("integers"), "{e}");
    // Missing dataset; --last with no loads.
    let e = ds.get("missing").collect().await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    let e = ds.history("missing", None).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    // A malformed row names the object and line.
    let mal = file(&land, "mal.csv", "id,amount\n1,2.5\n2,abc\n").await;
    ds.put("mal")
        .execute_files(&[file(&land, "ok.csv", "id,amount\n1,2.5\n").await])
        .await
        .unwrap();
    let e = ds
        .put("mal")
        .execute_files(&[mal])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("mal.csv") && e.contains("line 3"), "{e}");
    assert_eq!(count(&ds.get("mal").collect().await.unwrap()), 1);
    // A reserved column name in the data.
    let rv = file(&land, "rv.csv", format!("id,{VERSION_COLUMN}\n1,x\n")).await;
    let e = ds
        .put("rv")
        .execute_files(&[rv])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(VERSION_COLUMN), "{e}");
    // Nested datasets are refused both ways.
    let e = ds
        .put("mal/inner")
        .execute_files(std::slice::from_ref(&f))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("inside another"), "{e}");
    ds.put("outer/inner")
        .execute_files(std::slice::from_ref(&f))
        .await
        .unwrap();
    let e = ds
        .put("outer")
        .execute_files(std::slice::from_ref(&f))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds other datasets"), "{e}");
    // A partitioning different from the dataset's.
    let e = ds
        .put("outer/inner")
        .id_key("user_id".parse().unwrap())
        .execute_files(std::slice::from_ref(&f))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("partitioned by nothing"), "{e}");
    // Bad predicates and columns.
    let e = ds
        .get("outer/inner")
        .filter("nope > 1")
        .collect()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--where") && e.contains("nope"), "{e}");
    let e = ds
        .get("outer/inner")
        .columns(vec!["zz".into()])
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
    let e = ds.get("foreign").last().collect().await.unwrap_err();
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
        .version("mine")
        .execute(vec![b])
        .await
        .unwrap();
    let last = ds.get("foreign").last().collect().await.unwrap();
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
