//! Reading and writing every format, on local disk and in memory.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use proptest::prelude::*;
use tessera_formats::{
    infer_schema, merge_inferred, open_sink, parse_schema, read, Cast, Error, FileFormat,
    FileWriter, ReadOptions, RecordLayout, WriteOptions,
};
use tessera_store::{Location, PublishMode, StoreOptions};
use tessera_test_support::rt;

fn put(dir: &Location, name: &str, data: &[u8]) -> Location {
    let l = dir.join(name).unwrap();
    rt().block_on(l.publish(data.to_vec(), PublishMode::Overwrite))
        .unwrap();
    l
}

fn opts() -> ReadOptions {
    // Many chunks even for small files.
    ReadOptions::new(rt().handle().clone()).with_chunk_bytes(1024)
}

fn read_all(loc: &Location, schema: SchemaRef) -> Result<Vec<RecordBatch>, Error> {
    let f = FileFormat::from_name(&loc.url()).unwrap();
    read(loc, f, schema, &opts())?.collect()
}

fn infer(loc: &Location) -> SchemaRef {
    let f = FileFormat::from_name(&loc.url()).unwrap();
    let s = infer_schema(loc, f, 1 << 20, rt().handle())
        .unwrap()
        .unwrap();
    Arc::new(merge_inferred([&s]))
}

fn concat(b: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&b[0].schema(), b).unwrap()
}

fn write(loc: &Location, schema: SchemaRef, batches: &[RecordBatch]) -> u64 {
    let f = FileFormat::from_name(&loc.url()).unwrap();
    let sink = open_sink(loc, rt().handle()).unwrap();
    let mut w = FileWriter::create(sink, schema, &WriteOptions::new(f), &loc.url()).unwrap();
    for b in batches {
        assert_eq!(w.write(b).unwrap(), b.num_rows());
    }
    w.finish().unwrap().rows
}

fn tricky_csv(rows: usize) -> String {
    let mut s = String::from("id,name,score,flag\n");
    for i in 0..rows {
        match i % 5 {
            0 => s.push_str(&format!("{i},\"a, b\",{}.5,true\n", i)),
            1 => s.push_str(&format!("{i},\"line\nbreak\",,false\n")),
            2 => s.push_str(&format!("{i},ünïcødé ✓,{i},\n")),
            3 => s.push_str(&format!("{i},\"say \"\"hi\"\"\",-{i}.25,true\r\n")),
            _ => s.push_str(&format!("{i},,1e3,false\n")),
        }
    }
    s
}

#[test]
fn csv_round_trips_through_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    for base in [
        Location::local(tmp.path()).unwrap(),
        rt().block_on(Location::open(
            "memory://formats-rt/x",
            &StoreOptions::default(),
        ))
        .unwrap(),
    ] {
        let src = put(&base, "in.csv", tricky_csv(500).as_bytes());
        let schema = infer(&src);
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        assert_eq!(schema.field(2).data_type(), &DataType::Float64);
        assert_eq!(schema.field(3).data_type(), &DataType::Boolean);
        let orig = concat(&read_all(&src, schema.clone()).unwrap());
        assert_eq!(orig.num_rows(), 500);
        let names = orig.column(1).as_string::<i32>();
        assert_eq!(names.value(0), "a, b");
        assert_eq!(names.value(1), "line\nbreak");
        assert_eq!(names.value(2), "ünïcødé ✓");
        assert_eq!(names.value(3), "say \"hi\"");
        assert!(names.is_null(4));
        assert!(orig.column(2).is_null(1));
        let ids = orig.column(0).as_primitive::<Int64Type>();
        assert!((0..500).all(|i| ids.value(i) == i as i64));
        for ext in [
            "csv",
            "tsv",
            "jsonl",
            "parquet",
            "snappy.parquet",
            "zstd.parquet",
            "uncompressed.parquet",
        ] {
            let out = base.join(&format!("out.{ext}")).unwrap();
            assert_eq!(
                write(&out, schema.clone(), std::slice::from_ref(&orig)),
                500
            );
            let back = concat(&read_all(&out, schema.clone()).unwrap());
            assert_eq!(back, orig, "round trip through {ext}");
        }
    }
}

#[test]
fn compressed_text_reads_and_truncation_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Location::local(tmp.path()).unwrap();
    let text = tricky_csv(300);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(text.as_bytes(), 3).unwrap();
    let plain = put(&base, "a.csv", text.as_bytes());
    let schema = infer(&plain);
    let want = concat(&read_all(&plain, schema.clone()).unwrap());
    for (name, data) in [("a.csv.gz", &gz), ("a.csv.zst", &zst)] {
        let l = put(&base, name, data);
        assert_eq!(infer(&l), schema);
        assert_eq!(
            concat(&read_all(&l, schema.clone()).unwrap()),
            want,
            "{name}"
        );
    }
    let cut = put(&base, "cut.csv.gz", &gz[..gz.len() / 2]);
    let e = read_all(&cut, schema.clone()).unwrap_err().to_string();
    assert!(e.contains("cut.csv.gz") && e.contains("gzip"), "{e}");
}

#[test]
fn malformed_rows_name_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Location::local(tmp.path()).unwrap();
    let mut text = String::from("id,name\n");
    for i in 0..200 {
        text.push_str(&format!("{i},\"x\ny\"\n")); // two physical lines per record
    }
    text.push_str("oops,z\n"); // line 1 + 400 + 1 = 402
    let l = put(&base, "bad.csv", text.as_bytes());
    let schema = Arc::new(
        parse_schema(
            r#"[{"name":"id","type":"int64"},{"name":"name","type":"utf8"}]"#,
            "s",
        )
        .unwrap(),
    );
    let err = read_all(&l, schema.clone()).unwrap_err();
    let e = err.to_string();
    assert!(
        e.contains("bad.csv: line 402") && e.contains("'oops'"),
        "{e}"
    );
    // A program sees where: the object, the line and the column.
    match err {
        Error::InvalidRecord {
            object,
            line,
            column,
            ..
        } => {
            assert!(object.ends_with("bad.csv"), "{object}");
            assert_eq!(line, Some(402));
            assert_eq!(column.as_deref(), Some("id"));
        }
        other => panic!("not an InvalidRecord: {other:?}"),
    }

    let l = put(&base, "cols.csv", b"id,name\n1,a\n2,b,c\n");
    let e = read_all(&l, schema.clone()).unwrap_err().to_string();
    assert!(
        e.contains("cols.csv: line 3") && e.contains("fields"),
        "{e}"
    );

    let l = put(&base, "utf.csv", b"id,name\n1,a\n2,\xff\xfe\n");
    let e = read_all(&l, schema.clone()).unwrap_err().to_string();
    assert!(e.contains("utf.csv: line 3") && e.contains("UTF-8"), "{e}");

    let l = put(&base, "extra.csv", b"id,name,what\n1,a,b\n");
    let err = read_all(&l, schema.clone()).unwrap_err();
    let e = err.to_string();
    assert!(e.contains("extra.csv") && e.contains("'what'"), "{e}");
    match err {
        Error::SchemaMismatch { columns, .. } => {
            assert_eq!(columns.len(), 1);
            assert_eq!(columns[0].column, "what");
        }
        other => panic!("not a SchemaMismatch: {other:?}"),
    }

    let l = put(
        &base,
        "bad.jsonl",
        b"{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\":\"b\"}\n[1,2\n",
    );
    let e = read_all(&l, schema.clone()).unwrap_err().to_string();
    assert!(e.contains("bad.jsonl: line 3"), "{e}");

    let l = put(
        &base,
        "unknown.jsonl",
        b"{\"id\":1,\"name\":\"a\",\"zzz\":3}\n",
    );
    let e = read_all(&l, schema.clone()).unwrap_err().to_string();
    assert!(e.contains("zzz"), "{e}");

    let l = put(&base, "empty.csv", b"");
    assert!(infer_schema(
        &l,
        FileFormat::from_name("empty.csv").unwrap(),
        1024,
        rt().handle()
    )
    .unwrap()
    .is_none());
    assert_eq!(read_all(&l, schema.clone()).unwrap().len(), 0);

    let missing = base.join("missing.csv").unwrap();
    let e = read_all(&missing, schema).unwrap_err().to_string();
    assert!(e.contains("not found") && e.contains("missing.csv"), "{e}");
}

#[test]
fn declared_types_cast_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Location::local(tmp.path()).unwrap();
    let src = put(&base, "in.csv", b"a,b\n1,2024-01-02\n2,2024-03-04\n");
    let inferred = infer(&src);
    let batches = read_all(&src, inferred.clone()).unwrap();
    let pq = base.join("x.parquet").unwrap();
    write(&pq, inferred, &batches);
    let declared = Arc::new(
        parse_schema(
            r#"[{"name":"a","type":"utf8"},{"name":"b","type":"date32"}]"#,
            "s",
        )
        .unwrap(),
    );
    let o = opts().with_cast(Cast::Declared);
    let got: Vec<RecordBatch> = read(
        &pq,
        FileFormat::from_name("x.parquet").unwrap(),
        declared.clone(),
        &o,
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(got[0].schema(), declared);
    assert_eq!(got[0].column(0).as_string::<i32>().value(1), "2");
    // Lossless mode refuses a narrowing conversion and names the column.
    let narrow = Arc::new(
        parse_schema(
            r#"[{"name":"a","type":"int8"},{"name":"b","type":"date32"}]"#,
            "s",
        )
        .unwrap(),
    );
    let e = read(
        &pq,
        FileFormat::from_name("x.parquet").unwrap(),
        narrow,
        &opts(),
    )
    .unwrap()
    .collect::<Result<Vec<_>, _>>()
    .unwrap_err();
    match &e {
        Error::SchemaMismatch { columns, .. } => {
            assert_eq!(
                (
                    &*columns[0].column,
                    &*columns[0].expected,
                    &*columns[0].found
                ),
                ("a", "Int8", "Int64")
            );
        }
        other => panic!("not a SchemaMismatch: {other:?}"),
    }
    let e = e.to_string();
    assert!(e.contains("'a' is Int64 here but Int8"), "{e}");
}

#[test]
fn files_end_at_the_target_size() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Location::local(tmp.path()).unwrap();
    let src = put(&base, "in.csv", tricky_csv(60_000).as_bytes());
    let schema = infer(&src);
    let batches = read_all(&src, schema.clone()).unwrap();
    // Small row groups under a large target: most are encoded in the
    // background while the next is buffered; they must still land in order.
    for (ext, target, row_group) in [
        ("csv", 200_000u64, 64 << 10),
        ("jsonl", 300_000, 64 << 10),
        ("snappy.parquet", 150_000, 64 << 10),
        ("zstd.parquet", 100_000, 64 << 10),
        ("parquet", 250_000, 8 << 10),
    ] {
        let f = FileFormat::from_extension(ext).unwrap();
        let opts = WriteOptions::new(f)
            .with_target_size(target)
            .with_row_group_bytes(row_group);
        let mut files = Vec::new();
        let mut written = Vec::new();
        let mut pending: std::collections::VecDeque<RecordBatch> =
            batches.iter().cloned().collect();
        let mut total = 0;
        while !pending.is_empty() {
            let loc = base
                .join(&format!("sized/{ext}/f_{}.{ext}", files.len()))
                .unwrap();
            let mut w = FileWriter::create(
                open_sink(&loc, rt().handle()).unwrap(),
                schema.clone(),
                &opts,
                &loc.url(),
            )
            .unwrap();
            while let Some(b) = pending.pop_front() {
                let n = w.write(&b).unwrap();
                if n < b.num_rows() {
                    pending.push_front(b.slice(n, b.num_rows() - n));
                    break;
                }
            }
            let done = w.finish().unwrap();
            for b in done.leftover.into_iter().rev() {
                pending.push_front(b);
            }
            total += done.rows;
            let size = std::fs::metadata(loc.local_path().unwrap()).unwrap().len();
            assert_eq!(size, done.bytes, "{ext}: reported size is the real size");
            files.push(size);
            if f.layout == RecordLayout::Parquet {
                written.extend(read_all(&loc, schema.clone()).unwrap());
            }
        }
        assert_eq!(total, 60_000, "{ext}: every row written once");
        if f.layout == RecordLayout::Parquet {
            assert_eq!(
                concat(&written),
                concat(&batches),
                "{ext}: the files hold the rows in their order"
            );
        }
        assert!(files.len() >= 3, "{ext}: {files:?}");
        for s in &files[..files.len() - 1] {
            let dev = (*s as f64 - target as f64) / target as f64;
            assert!(
                dev.abs() <= 0.05,
                "{ext}: file of {s} bytes is {:.1}% off {target}: {files:?}",
                dev * 100.0
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Chunked parallel parsing yields exactly the rows of the file, in order,
    /// whatever the chunk size and the quoted newlines.
    #[test]
    fn chunked_csv_is_exact(rows in proptest::collection::vec(("[a-z,\"\n ]{0,12}", any::<i32>()), 1..300), chunk in 1024usize..4096) {
        let tmp = tempfile::tempdir().unwrap();
        let base = Location::local(tmp.path()).unwrap();
        let mut text = String::from("s,n\n");
        for (s, n) in &rows {
            text.push_str(&format!("\"{}\",{n}\n", s.replace('"', "\"\"")));
        }
        let src = put(&base, "p.csv", text.as_bytes());
        let schema = Arc::new(parse_schema(r#"[{"name":"s","type":"utf8"},{"name":"n","type":"int64"}]"#, "s").unwrap());
        let o = opts().with_chunk_bytes(chunk);
        let got: Vec<RecordBatch> = read(&src, FileFormat::from_name("p.csv").unwrap(), schema, &o).unwrap().collect::<Result<_, _>>().unwrap();
        let got = concat(&got);
        prop_assert_eq!(got.num_rows(), rows.len());
        let s = got.column(0).as_string::<i32>();
        let n = got.column(1).as_primitive::<Int64Type>();
        for (i, (es, en)) in rows.iter().enumerate() {
            if es.is_empty() { prop_assert!(s.is_null(i)); } else { prop_assert_eq!(s.value(i), es.as_str()); }
            prop_assert_eq!(n.value(i), *en as i64);
        }
    }
}

#[test]
fn result_encoders() {
    use tessera_formats::{CountingWriter, ResultEncoder, ResultFormat};
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(arrow::array::Int64Array::from(vec![1, 2])) as arrow::array::ArrayRef,
        ),
        (
            "s",
            Arc::new(arrow::array::StringArray::from(vec![Some("a,b"), None])) as _,
        ),
    ])
    .unwrap();
    let schema = batch.schema();
    let encode = |format: ResultFormat, batches: &[RecordBatch]| {
        let mut enc =
            ResultEncoder::new(format, schema.clone(), CountingWriter::new(Vec::new())).unwrap();
        for b in batches {
            enc.write(b).unwrap();
        }
        let out = enc.finish().unwrap();
        assert_eq!(out.bytes(), out.into_inner().len() as u64);
        let mut enc = ResultEncoder::new(format, schema.clone(), Vec::new()).unwrap();
        for b in batches {
            enc.write(b).unwrap();
        }
        enc.finish().unwrap()
    };
    let two = [batch.clone(), batch.slice(0, 0), batch.clone()];
    assert_eq!(
        encode(ResultFormat::Json, &two),
        br#"[{"id":1,"s":"a,b"},{"id":2,"s":null},{"id":1,"s":"a,b"},{"id":2,"s":null}]"#
    );
    assert_eq!(encode(ResultFormat::Json, &[]), b"[]");
    assert_eq!(
        encode(ResultFormat::Csv, &two),
        b"id,s\n1,\"a,b\"\n2,\n1,\"a,b\"\n2,\n"
    );
    // An empty result still has its header line.
    assert_eq!(encode(ResultFormat::Csv, &[]), b"id,s\n");
    let ipc = encode(ResultFormat::Arrow, &two);
    let back: Vec<RecordBatch> =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 4);
    let pq = encode(ResultFormat::Parquet, &two);
    let back: Vec<RecordBatch> = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
        bytes::Bytes::from(pq),
        1024,
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(back[0].schema(), schema);
    assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 4);
    assert_eq!("IPC".parse::<ResultFormat>().unwrap(), ResultFormat::Arrow);
    assert!(matches!(
        "xls".parse::<ResultFormat>(),
        Err(Error::UnknownFormat { .. })
    ));
}
