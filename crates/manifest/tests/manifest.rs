//! Manifest building and lookup: laws (property tests), typed matching,
//! duplicates and bad input.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use proptest::prelude::*;
use tessera_manifest::{BuildManifest, Error, LoadManifest, Manifest, Template, Value};
use tessera_store::{Location, StoreOptions};

const REF: &str = "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl";

fn build(paths: &str, template: &str) -> Manifest {
    let built = BuildManifest::new(Template::parse(template).unwrap(), paths.to_string())
        .with_row_group_rows(7)
        .run()
        .unwrap();
    let bytes = built.to_parquet().unwrap();
    Manifest::from_bytes("test.parquet", bytes.into()).unwrap()
}

fn value_strategy(ty: u8) -> BoxedStrategy<String> {
    match ty {
        // No '.': the template below puts '.' after some fields, and a value
        // containing the literal that follows it is ambiguous by nature.
        0 => "[A-Za-z0-9][A-Za-z0-9_-]{0,12}".boxed(),
        1 => any::<i32>().prop_map(|v| v.to_string()).boxed(),
        2 => any::<i64>().prop_map(|v| v.to_string()).boxed(),
        _ => (1900i32..2200, 1u32..13, 1u32..29)
            .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
            .boxed(),
    }
}

proptest! {
    /// Rendering random values into a template and matching the result gives
    /// the values back (for values that do not contain the literal following them).
    #[test]
    fn render_then_match_round_trips(
        types in proptest::collection::vec(0u8..4, 1..4),
        seps in proptest::collection::vec("[a-z_]{1,3}", 4),
        deep in any::<bool>(),
        values in proptest::collection::vec(value_strategy(0), 4),
        nums in proptest::collection::vec((any::<i32>(), any::<i64>(), 1900i32..2200, 1u32..13, 1u32..29), 4),
    ) {
        let type_names = ["string", "int32", "int64", "date"];
        let mut t = String::from(if deep { "**/" } else { "root/" });
        let mut vals = Vec::new();
        for (i, ty) in types.iter().enumerate() {
            t.push_str(&format!("{}{{f{i}:{}}}", seps[i], type_names[*ty as usize]));
            t.push_str(if i % 2 == 0 { "/" } else { "." });
            let (a, b, y, m, d) = nums[i];
            vals.push(match ty {
                0 => values[i].clone(),
                1 => a.to_string(),
                2 => b.to_string(),
                _ => format!("{y:04}-{m:02}-{d:02}"),
            });
        }
        t.push_str("end");
        let template = Template::parse(&t).unwrap();
        let refs: Vec<&str> = vals.iter().map(|s| s.as_str()).collect();
        let key = template.render(&refs);
        let key = if deep { format!("some/prefix/{key}") } else { key };
        let caps = template.match_key(&key);
        prop_assert!(caps.is_some(), "template {t} did not match {key}");
        let caps = caps.unwrap();
        for (i, (s, e)) in caps.iter().enumerate() {
            prop_assert_eq!(&key[*s..*e], vals[i].as_str());
        }
    }

    /// Every built record is found by exact lookup with its own location, and
    /// subset queries return exactly the brute-force filter (manifests round-trip).
    #[test]
    fn manifest_round_trips(
        recs in proptest::collection::vec(("[A-D]{1,2}", 0i32..6, 0u8..3), 1..60),
    ) {
        let mut paths = String::new();
        for (i, (g, t, noise)) in recs.iter().enumerate() {
            paths.push_str(&format!("s3://bkt/x{noise}/v1/ad/{g}/model_tissue_{t}.tl\n"));
            if i % 5 == 0 {
                paths.push_str("s3://bkt/other/readme.md\n");
            }
        }
        let m = build(&paths, REF);
        prop_assert_eq!(m.len(), recs.len());
        // Brute force expectation.
        let mut by_key: BTreeMap<(String, i32), BTreeSet<String>> = BTreeMap::new();
        for (g, t, noise) in &recs {
            by_key.entry((g.clone(), *t)).or_default()
                .insert(format!("s3://bkt/x{noise}/v1/ad/{g}/model_tissue_{t}.tl"));
        }
        for ((g, t), locs) in &by_key {
            let ts = t.to_string();
            let conds = [("gene_id", g.as_str()), ("tissue_id", ts.as_str())];
            prop_assert!(m.exists(&conds).unwrap());
            let got: BTreeSet<String> = m.locations(&conds).unwrap().into_iter().map(String::from).collect();
            prop_assert_eq!(&got, locs);
            let first = m.location(&conds).unwrap().unwrap();
            prop_assert!(locs.contains(first));
        }
        for t in 0..6 {
            let ts = t.to_string();
            let want: usize = recs.iter().filter(|r| r.1 == t).count();
            prop_assert_eq!(m.count(&[("tissue_id", ts.as_str())]).unwrap(), want);
        }
        for g in ["A", "B", "AB", "DD", "Z"] {
            let want = recs.iter().filter(|r| r.0 == g).count();
            prop_assert_eq!(m.count(&[("gene_id", g)]).unwrap(), want);
            prop_assert_eq!(m.records(&[("gene_id", g)]).unwrap().num_rows(), want);
        }
        let genes: BTreeSet<String> = recs.iter().map(|r| r.0.clone()).collect();
        let uniq: Vec<Value> = m.unique("gene_id").unwrap();
        prop_assert_eq!(uniq, genes.into_iter().map(Value::Str).collect::<Vec<_>>());
        let tissues: BTreeSet<i32> = recs.iter().map(|r| r.1).collect();
        prop_assert_eq!(m.unique("tissue_id").unwrap(), tissues.into_iter().map(|t| Value::Int(t as i64)).collect::<Vec<_>>());
        prop_assert_eq!(m.count(&[]).unwrap(), recs.len());
    }
}

#[test]
fn values_compare_by_type() {
    let m = build(
        "s3://b/v1/ad/G1/model_tissue_45.tl\ns3://b/v1/ad/G1/model_tissue_7.tl\n",
        REF,
    );
    assert!(m.exists(&[("tissue_id", "45")]).unwrap());
    assert!(
        m.exists(&[("tissue_id", "045")]).unwrap(),
        "045 is the int 45"
    );
    assert!(m.exists(&[("tissue_id", " 45 ")]).unwrap());
    assert!(!m.exists(&[("tissue_id", "46")]).unwrap());
    assert!(
        !m.exists(&[("gene_id", "g1")]).unwrap(),
        "strings are case-sensitive"
    );
    match m.exists(&[("tissue_id", "abc")]) {
        Err(Error::InvalidValue { field, value, .. }) => {
            assert_eq!(field, "tissue_id");
            assert_eq!(value, "abc");
        }
        other => panic!("expected InvalidValue, got {other:?}"),
    }
    assert!(matches!(
        m.exists(&[("tissue_id", "99999999999")]),
        Err(Error::InvalidValue { .. })
    ));
    assert!(matches!(
        m.exists(&[("tissue", "1")]),
        Err(Error::UnknownField { .. })
    ));
    // Two conditions on one field that disagree match nothing.
    assert!(!m
        .exists(&[("tissue_id", "45"), ("tissue_id", "7")])
        .unwrap());
}

#[test]
fn dates_and_int64_fields() {
    let m = build(
        "logs/2024-01-31/host_9000000000.log\nlogs/2024-02-01/host_1.log\nlogs/2024-02-30/host_1.log\n",
        "logs/{day:date}/host_{id:int64}.log",
    );
    assert_eq!(m.len(), 2, "2024-02-30 is not a date and is skipped");
    assert!(m
        .exists(&[("day", "2024-01-31"), ("id", "9000000000")])
        .unwrap());
    assert!(matches!(
        m.exists(&[("day", "31/01/2024")]),
        Err(Error::InvalidValue { .. })
    ));
    assert_eq!(
        m.unique("day").unwrap(),
        vec![
            Value::Date("2024-01-31".into()),
            Value::Date("2024-02-01".into())
        ]
    );
}

#[test]
fn records_are_sorted_and_dictionary_encoded() {
    let m = build(
        "v1/ad/B/model_tissue_2.tl\nv1/ad/A/model_tissue_10.tl\nv1/ad/B/model_tissue_1.tl\nv1/ad/A/model_tissue_9.tl\n",
        REF,
    );
    let b: RecordBatch = m.records(&[]).unwrap();
    // The built batch, before any file, has the same rows.
    let built = BuildManifest::new(Template::parse(REF).unwrap(), "v1/ad/B/model_tissue_2.tl\nv1/ad/A/model_tissue_10.tl\nv1/ad/B/model_tissue_1.tl\nv1/ad/A/model_tissue_9.tl\n")
        .run()
        .unwrap();
    assert_eq!(built.len(), 4);
    let direct = built.batch().unwrap();
    assert_eq!(
        direct.column(2).as_string::<i32>().value(0),
        "v1/ad/A/model_tissue_9.tl"
    );
    let genes = b.column(0).as_dictionary::<Int32Type>();
    let values = genes.values().as_string::<i32>();
    let got: Vec<(String, i32)> = (0..b.num_rows())
        .map(|i| {
            (
                values.value(genes.keys().value(i) as usize).to_string(),
                b.column(1).as_primitive::<Int32Type>().value(i),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("A".into(), 9),
            ("A".into(), 10),
            ("B".into(), 1),
            ("B".into(), 2)
        ],
        "sorted by gene, then tissue as a number"
    );
    assert_eq!(b.schema().field(2).name(), "file_path");
    assert_eq!(b.column(2).null_count(), 0);
}

#[test]
fn summary_counts_skips_and_duplicates() {
    let paths = "\
s3://b/v1/ad/G1/model_tissue_1.tl
s3://b/copy/v1/ad/G1/model_tissue_1.tl

not/a/model.txt\r
s3://b/v1/ad/G2/model_tissue_x.tl
s3://b/v1/ad/G2/model_tissue_2.tl
";
    let built = BuildManifest::new(Template::parse(REF).unwrap(), paths.to_string())
        .run()
        .unwrap();
    let s = &built.summary;
    assert_eq!((s.read, s.matched, s.skipped, s.duplicates), (5, 3, 2, 1));
    assert_eq!(
        s.skipped_examples[0],
        (4, "not/a/model.txt".to_string()),
        "line numbers count blank lines"
    );
    assert_eq!(s.skipped_examples[1].0, 5);
    assert_eq!(
        s.duplicate_examples,
        vec!["gene_id=G1, tissue_id=1".to_string()]
    );
}

#[test]
fn strict_and_empty_are_errors() {
    let t = |text: &[u8]| BuildManifest::new(Template::parse(REF).unwrap(), text.to_vec());
    let e = t(b"v1/ad/G/model_tissue_1.tl\nbad\n")
        .with_strict(true)
        .run()
        .err()
        .unwrap();
    match &e {
        Error::InvalidRecord {
            object,
            line,
            message,
        } => {
            assert_eq!((object.as_str(), *line), ("the listing", 2));
            assert!(message.contains("1 of 2 paths did not match"), "{e}");
        }
        other => panic!("expected InvalidRecord, got {other:?}"),
    }
    assert!(e.to_string().contains("line 2: bad"), "{e}");
    assert!(!e.to_string().contains("--"), "no flag names: {e}");
    let e = t(b"nothing\nmatches\n").run().err().unwrap();
    assert!(matches!(e, Error::EmptyMatch { read: 2, .. }), "{e}");
    let e = t(b"").run().err().unwrap();
    assert!(matches!(e, Error::EmptyMatch { read: 0, .. }), "{e}");
    let e = t(b"v1/ad/\xff/model_tissue_1.tl\n")
        .with_listing_name("paths.txt")
        .run()
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::InvalidRecord { object, line: 1, .. } if object == "paths.txt"),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("line 1") && e.to_string().contains("UTF-8"),
        "{e}"
    );
    let e = BuildManifest::new(Template::parse("{file_path}/x").unwrap(), b"a/x".to_vec())
        .run()
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::InvalidName { name, .. } if name == "file_path"),
        "{e:?}"
    );
    assert!(e.to_string().contains("location column"), "{e}");
    assert!(!e.to_string().contains("--"), "no flag names: {e}");
}

#[test]
fn hostile_values_are_data_not_code() {
    let paths = "v1/ad/'; DROP TABLE x;--/model_tissue_1.tl\nv1/ad/\"quoted\"/model_tissue_2.tl\nv1/ad/..%2F/model_tissue_3.tl\n";
    let m = build(paths, REF);
    assert!(m.exists(&[("gene_id", "'; DROP TABLE x;--")]).unwrap());
    assert!(m.exists(&[("gene_id", "\"quoted\"")]).unwrap());
    let huge = "9".repeat(10_000);
    assert!(matches!(
        m.exists(&[("tissue_id", huge.as_str())]),
        Err(Error::InvalidValue { .. })
    ));
    assert!(!m.exists(&[("gene_id", huge.as_str())]).unwrap());
}

#[test]
fn opens_manifests_from_other_tools_and_reports_missing_columns() {
    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    // Unsorted, plain strings, no tessera metadata (as pandas would write it).
    let schema = Arc::new(Schema::new(vec![
        Field::new("gene_id", DataType::Utf8, false),
        Field::new("tissue_id", DataType::Int32, false),
        Field::new("file_path", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["Z", "A", "M"])),
            Arc::new(Int32Array::from(vec![3, 1, 2])),
            Arc::new(StringArray::from(vec!["s3://b/z", "s3://b/a", "s3://b/m"])),
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let m = Manifest::from_bytes("pandas.parquet", buf.clone().into()).unwrap();
    assert_eq!(m.location(&[("gene_id", "A")]).unwrap(), Some("s3://b/a"));
    assert_eq!(m.location(&[("tissue_id", "2")]).unwrap(), Some("s3://b/m"));
    assert_eq!(
        m.unique("gene_id").unwrap(),
        vec![
            Value::Str("A".into()),
            Value::Str("M".into()),
            Value::Str("Z".into())
        ]
    );

    let e = LoadManifest::new("pandas.parquet", buf)
        .with_location_column("path")
        .run()
        .unwrap_err();
    match e {
        Error::MissingColumn {
            column, available, ..
        } => {
            assert_eq!(column, "path");
            assert!(available.contains("file_path"));
        }
        other => panic!("{other}"),
    }
    let e = Manifest::from_bytes("notes.txt", b"hello, not parquet".to_vec().into()).unwrap_err();
    assert!(matches!(e, Error::NotAManifest { .. }), "{e:?}");
    assert!(e.to_string().contains("notes.txt"), "{e}");
}

#[tokio::test]
async fn build_to_store_and_open_from_it() {
    let out = Location::open(
        "memory://manifests/m/manifest.parquet",
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let paths = "s3://b/v1/ad/G1/model_tissue_1.tl\n";
    let b = |text: &[u8]| BuildManifest::new(Template::parse(REF).unwrap(), text.to_vec());
    let s = b(paths.as_bytes()).write_to(&out).await.unwrap();
    assert_eq!(s.matched, 1);
    assert!(s.bytes_written > 0);
    let m = Manifest::open(
        "memory://manifests/m/manifest.parquet",
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(m.exists(&[("gene_id", "G1")]).unwrap());

    // A failed build writes nothing.
    let out2 = Location::open(
        "memory://manifests/m/empty.parquet",
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(b(b"x\n").write_to(&out2).await.is_err());
    assert!(!out2.exists().await.unwrap());
    let e = Manifest::open(
        "memory://manifests/m/none.parquet",
        &StoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
}

/// A line for the bulk-vs-line-by-line test: keys in the reference layout
/// (as URLs, plain keys or absolute paths), with blanks, `\r`, non-ASCII
/// text, long prefixes that cross 64-byte blocks, and noise.
fn line_strategy() -> BoxedStrategy<String> {
    let gene = prop_oneof!["[A-C]{1,2}", "é[a-z]{0,3}", "[a-z]{20,70}"];
    let prefix = prop_oneof![
        Just(String::new()),
        Just("/".to_string()),
        Just("s3://bkt/".to_string()),
        Just("file:///tmp/".to_string()),
        "[a-z/]{0,90}",
        "ünï/[a-z]{1,5}/",
    ];
    let tissue = prop_oneof![
        (0i64..600).prop_map(|t| t.to_string()),
        Just("007".to_string()),
        Just("-3".to_string()),
        Just("2147483648".to_string()),
        Just("x".to_string()),
    ];
    // Listings repeat everything up to the last slash on consecutive lines
    // (the build reuses the previous line's match then): a group of lines
    // shares the blanks, prefix and gene, and ends in various last segments.
    let last = prop_oneof![
        6 => (tissue, "[ \t\r]{0,2}").prop_map(|(t, trail)| format!("model_tissue_{t}.tl{trail}")),
        1 => Just("_SUCCESS".to_string()),
        1 => Just(String::new()),
        1 => Just(" \r".to_string()),
        1 => Just("model_tissue_.tl".to_string()),
        1 => Just("model_tissue_1.tl/x".to_string()),
        1 => Just("model_tissue_é.tl".to_string()),
    ];
    let group = (
        prefix,
        gene,
        "[ \t]{0,2}",
        proptest::collection::vec((last, 0..8), 1..5),
    )
        .prop_map(|(p, g, lead, lasts)| {
            lasts
                .iter()
                .map(|(l, i)| match i {
                    // Its last slash earlier than the line before's.
                    0 => format!("{lead}{p}v1/ad/{l}"),
                    _ => format!("{lead}{p}v1/ad/{g}/{l}"),
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
    prop_oneof![
        6 => group,
        1 => Just(String::new()),
        1 => "[ -~é/]{0,80}",
        1 => Just("v1/ad/G/model_tissue_1.tl.bak".to_string()),
        1 => Just("ad/G/model_tissue_1.tl".to_string()),
        1 => Just("s3://bkt/x\ns3://bkt/y".to_string()),
    ]
    .boxed()
}

proptest! {
    /// The bulk build (lines and slashes found 64 bytes at a time, in
    /// parallel chunks) keeps exactly the rows that matching each line on
    /// its own keeps, with the same values; with a deep template and a
    /// fixed-depth one.
    #[test]
    fn bulk_build_agrees_with_matching_each_line(
        lines in proptest::collection::vec(line_strategy(), 1..60),
        deep in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let template = if deep {
            REF.to_string()
        } else {
            "*/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl".to_string()
        };
        let t = Template::parse(&template).unwrap();
        let mut text = lines.join("\n");
        if final_newline {
            text.push('\n');
        }
        let mut want: Vec<(String, String, i64)> = Vec::new();
        let mut read = 0;
        for line in text.split('\n') {
            let line = line.trim_end_matches('\r').trim_matches(|c: char| c.is_ascii_whitespace());
            if line.is_empty() {
                continue;
            }
            read += 1;
            if let Some(c) = t.match_line(line) {
                let tissue = line[c[1].0..c[1].1].parse::<i32>().unwrap();
                want.push((line.to_string(), line[c[0].0..c[0].1].to_string(), tissue as i64));
            }
        }
        want.sort();
        match BuildManifest::new(t, text.clone()).with_row_group_rows(7).run() {
            Err(Error::EmptyMatch { read: r, .. }) => {
                prop_assert!(want.is_empty());
                prop_assert_eq!(r, read);
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            Ok(built) => {
                prop_assert_eq!(built.summary.read, read);
                let batch = built.batch().unwrap();
                let genes = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
                let genes = genes.as_string::<i32>();
                let tissues = batch.column(1).as_primitive::<Int32Type>();
                let locs = batch.column(2).as_string::<i32>();
                let mut got: Vec<(String, String, i64)> = (0..batch.num_rows())
                    .map(|i| (locs.value(i).to_string(), genes.value(i).to_string(), tissues.value(i) as i64))
                    .collect();
                // The written file holds the same rows, in the same order.
                let file = built.to_parquet().unwrap();
                let written: Vec<RecordBatch> = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file))
                    .unwrap()
                    .build()
                    .unwrap()
                    .map(|b| b.unwrap())
                    .collect();
                let written = arrow::compute::concat_batches(&written[0].schema(), &written).unwrap();
                prop_assert_eq!(written.column(2).as_string::<i32>(), locs);
                prop_assert_eq!(written.column(1).as_primitive::<Int32Type>(), tissues);
                got.sort();
                prop_assert_eq!(got, want);
            }
        }
    }
}

#[test]
fn invalid_utf8_is_reported_on_its_line_after_valid_non_ascii() {
    let mut text = Vec::new();
    for i in 0..500 {
        text.extend_from_slice(format!("v1/ad/gène{i}/model_tissue_{i}.tl\n").as_bytes());
    }
    text.extend_from_slice(b"v1/ad/G/model_tissue_1.tl\n");
    let valid = text.len();
    text.extend_from_slice(b"v1/ad/\xe9t\xe9/model_tissue_2.tl\n");
    let t = |text: Vec<u8>| BuildManifest::new(Template::parse(REF).unwrap(), text);
    let e = t(text.clone()).run().err().unwrap();
    assert!(matches!(e, Error::InvalidRecord { line: 502, .. }), "{e:?}");
    assert!(e.to_string().contains("line 502 "), "{e}");
    text.truncate(valid);
    assert_eq!(t(text).run().unwrap().len(), 501);
}

proptest! {
    /// Rows come out sorted by the fields, equal rows in input order, and
    /// duplicates are counted: whether the fields pack into 32 bits (small
    /// numbers), into 64 bits, or not at all (numbers over the whole i64
    /// range); listings grouped by the first field are sorted group by group
    /// (by counting, for groups of 32 rows or more).
    #[test]
    fn rows_sort_by_fields_stably_for_every_key_width(
        recs in proptest::collection::vec(("[a-c]{1,2}", 0i64..5, 0i32..3), 1..200),
        width in 0u8..3,
        listing_order in any::<bool>(),
    ) {
        let spread = |v: i64| match width {
            0 => v,
            1 => v << 40,
            _ => (v - 2).wrapping_mul(i64::MAX / 3),
        };
        let mut recs: Vec<(String, i64, i32)> =
            recs.into_iter().map(|(g, v, w)| (g, spread(v), w)).collect();
        if listing_order {
            recs.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut text = String::new();
        for (i, (g, v, w)) in recs.iter().enumerate() {
            text.push_str(&format!("root/{g}/{v}/{w}/row{i}\n"));
        }
        let t = Template::parse("root/{g}/{v:int64}/{w:int32}/*").unwrap();
        let built = BuildManifest::new(t, text).run().unwrap();
        let mut want: Vec<(String, i64, i32, usize)> =
            recs.iter().enumerate().map(|(i, (g, v, w))| (g.clone(), *v, *w, i)).collect();
        want.sort();
        let batch = built.batch().unwrap();
        let g = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let g = g.as_string::<i32>();
        let v = batch.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        let w = batch.column(2).as_primitive::<arrow::datatypes::Int32Type>();
        let loc = batch.column(3).as_string::<i32>();
        let got: Vec<(String, i64, i32, usize)> = (0..batch.num_rows())
            .map(|j| {
                let row = loc.value(j).rsplit("row").next().unwrap().parse().unwrap();
                (g.value(j).to_string(), v.value(j), w.value(j), row)
            })
            .collect();
        prop_assert_eq!(got, want);
        let distinct: BTreeSet<&(String, i64, i32)> = recs.iter().collect();
        prop_assert_eq!(built.summary.duplicates, (recs.len() - distinct.len()) as u64);
    }
}

#[test]
fn written_locations_end_where_the_line_was_trimmed() {
    // Equal keys keep input order, so "k/a  " (trimmed to "k/a") follows
    // "k/a  b" and shares more bytes with it than its own length.
    let t = Template::parse("{c}/*").unwrap();
    let built = BuildManifest::new(t, "k/a  b\nk/a  \r\n\tk/a \n".to_string())
        .with_row_group_rows(7)
        .run()
        .unwrap();
    let m = Manifest::from_bytes("t.parquet", built.to_parquet().unwrap().into()).unwrap();
    assert_eq!(
        m.locations(&[("c", "k")]).unwrap(),
        vec!["k/a  b", "k/a", "k/a"]
    );
}

/// Manifest builds on a store that fails, truncates, delays and repeats
/// calls at random (seeded, so a failure replays): a build that reports
/// success left the new manifest whole, one that failed left the old one
/// whole — never a half-written object — and opening the manifest through
/// the faulty store gives the manifest or an error, never other records.
#[tokio::test]
async fn store_faults_leave_the_old_manifest_or_the_new_one() {
    use std::sync::Arc;
    use tessera_manifest::OpenManifest;
    use tessera_store::object_store::memory::InMemory;
    use tessera_store::object_store::{path::Path, ObjectStore};
    use tessera_store::StoreKind;
    use tessera_test_support::{Faults, FaultyStore};

    let listing = |genes: std::ops::Range<usize>| -> String {
        genes
            .map(|i| format!("s3://b/v1/ad/G{i}/model_tissue_{}.tl\n", i % 10))
            .collect()
    };
    let build = |text: String| BuildManifest::new(Template::parse(REF).unwrap(), text);
    let at = |store: Arc<dyn ObjectStore>| {
        Location::from_store(
            store,
            "memory://faults",
            Path::from("m/manifest.parquet"),
            StoreKind::Memory,
        )
    };
    let (mut ok, mut failed, mut open_failed) = (0, 0, 0);
    for seed in 0..32u64 {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let healthy = at(inner.clone());
        build(listing(0..300)).write_to(&healthy).await.unwrap();
        let faulty = at(Arc::new(FaultyStore::new(
            inner.clone(),
            Faults::all(0.2),
            seed,
        )));
        let result = build(listing(300..700)).write_to(&faulty).await;
        let m = OpenManifest::new(&healthy)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: the manifest is unreadable: {e}"));
        let (old, new) = (
            m.exists(&[("gene_id", "G5")]).unwrap(),
            m.exists(&[("gene_id", "G650")]).unwrap(),
        );
        match &result {
            Ok(_) => {
                assert!(
                    new && !old && m.len() == 400,
                    "seed {seed}: a build that succeeded"
                );
                ok += 1;
            }
            Err(e) => {
                assert!(
                    (old && !new && m.len() == 300) || (new && !old && m.len() == 400),
                    "seed {seed}: after a failed build ({e}) the manifest holds {} records",
                    m.len()
                );
                assert!(!e.to_string().is_empty());
                failed += 1;
            }
        }
        match OpenManifest::new(&faulty).await {
            Ok(through) => {
                assert_eq!(through.len(), m.len(), "seed {seed}");
                assert_eq!(
                    through.exists(&[("gene_id", "G650")]).unwrap(),
                    new,
                    "seed {seed}"
                );
            }
            Err(e) => {
                assert!(e.to_string().contains("manifest"), "seed {seed}: {e}");
                open_failed += 1;
            }
        }
    }
    assert!(
        ok > 0 && failed > 0,
        "ok {ok}, failed {failed}, open failed {open_failed}"
    );
}
