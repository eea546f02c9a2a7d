//! Every failure a program may want to tell apart comes back as its own
//! `Error` variant, with a message that names the object and the place.

use std::io::Write;

use tessera_slice::{pick_slice, Error, Index, RecordFormat, Strategy};
use tessera_store::{Location, PublishMode, StoreOptions};

async fn object(url: &str, data: impl Into<Vec<u8>>) -> Location {
    let obj = Location::open(url, &StoreOptions::default()).await.unwrap();
    obj.publish(data.into(), PublishMode::Overwrite)
        .await
        .unwrap();
    obj
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn reads(n: usize) -> String {
    (0..n).map(|i| format!("@r{i}\nACGT\n+\nIIII\n")).collect()
}

#[tokio::test]
async fn indexing_errors_are_typed() {
    // No format given and none in the name.
    let obj = object("memory://errors/data.bin", "x\n").await;
    let e = Index::build(&obj).await.unwrap_err();
    assert!(
        matches!(&e, Error::UnknownFormat { object } if object.ends_with("data.bin")),
        "{e}"
    );
    assert!(!e.to_string().contains("--"), "{e}");

    // A missing object.
    let missing = Location::open("memory://errors/missing.fq", &StoreOptions::default())
        .await
        .unwrap();
    let e = Index::build(&missing).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");

    // Data that is not the declared format: the line is a field.
    let obj = object("memory://errors/t.csv", "a,b\n1,2\n").await;
    let e = Index::build(&obj)
        .with_format(RecordFormat::Fastq)
        .await
        .unwrap_err();
    match &e {
        Error::InvalidRecord {
            object,
            format,
            line,
            ..
        } => {
            assert!(object.ends_with("t.csv"));
            assert_eq!((*format, *line), (RecordFormat::Fastq, Some(1)));
        }
        other => panic!("expected InvalidRecord, got {other:?}"),
    }
    assert!(e.to_string().contains("not valid fastq: line 1:"), "{e}");

    // An unclosed CSV quote names the line where the data ends.
    let obj = object("memory://errors/q.csv", "a,b\n1,\"open\n2,3\n").await;
    let e = Index::build(&obj).await.unwrap_err();
    assert!(
        matches!(e, Error::InvalidRecord { line: Some(4), .. }),
        "{e}"
    );
    assert!(e.to_string().contains("never closed"), "{e}");

    // A truncated gzip stream.
    let gz = gzip(reads(5000).as_bytes());
    let obj = object("memory://errors/cut.fq.gz", &gz[..gz.len() * 2 / 3]).await;
    let e = Index::build(&obj).await.unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("truncated gzip"), "{e}");

    // Damaged deflate data.
    let mut bad = gzip(reads(5000).as_bytes());
    for b in &mut bad[40..80] {
        *b = 0xff;
    }
    let obj = object("memory://errors/bad.fq.gz", bad).await;
    let e = Index::build(&obj).await.unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");

    // Sidecars a format cannot have.
    let obj = object("memory://errors/r.fq", reads(10)).await;
    let (index, _) = Index::build(&obj).await.unwrap();
    assert!(matches!(index.fai(), Err(Error::Unsupported { .. })));
    let e = index.gzi().unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("a .gzi indexes BGZF"), "{e}");
}

#[tokio::test]
async fn planning_and_fetching_errors_are_typed() {
    let obj = object("memory://errors-plan/r.fq", reads(100)).await;

    // No index yet.
    let e = Index::open(&obj).await.unwrap_err();
    assert!(matches!(e, Error::NoIndex { .. }), "{e}");
    assert!(e.to_string().contains("no index"), "{e}");

    let (index, _) = Index::build(&obj).with_spacing(64).await.unwrap();
    index
        .save(&Index::location_for(&obj, None).unwrap())
        .await
        .unwrap();
    let index = Index::open(&obj).await.unwrap();

    // A zero count.
    let e = index.plan(Strategy::Count(0)).run().unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidStrategy {
                strategy: Strategy::Count(0)
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("at least 1"), "{e}");

    let slices = index.plan(Strategy::Count(3)).run().unwrap();
    let json = serde_json::to_vec(&slices).unwrap();

    // A slice number past the end; a file that is not a slices file.
    let e = pick_slice(&json, "s.json", 3).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NoSuchSlice {
                slice: 3,
                count: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("there is no slice 3"), "{e}");
    let e = pick_slice(b"{}", "junk.json", 0).unwrap_err();
    assert!(matches!(e, Error::InvalidSlicesFile { .. }), "{e}");

    // A descriptor edited by hand.
    let mut edited = slices[1].clone();
    edited.ranges[0].end = 10_000_000_000;
    let e = edited.fetch(&obj).await.unwrap_err();
    assert!(matches!(e, Error::InvalidSlice { slice: 1, .. }), "{e}");
    assert!(e.to_string().contains("outside the object"), "{e}");

    // The object changed after indexing: opening and fetching refuse.
    obj.publish(reads(101), PublishMode::Overwrite)
        .await
        .unwrap();
    let e = Index::open(&obj).await.unwrap_err();
    assert!(
        matches!(&e, Error::StaleIndex { object, .. } if object.ends_with("r.fq")),
        "{e}"
    );
    assert!(
        e.to_string().contains("changed since it was indexed"),
        "{e}"
    );
    assert!(
        !e.to_string().contains("tessera index"),
        "no CLI words: {e}"
    );
}
