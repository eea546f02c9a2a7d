//! Indexing and slice fetches on a store that fails, truncates and delays
//! calls at random (seeded, so a failure replays): every call either gives
//! exactly the answer a healthy store gives, or a clear error — never a
//! silently wrong index or slice — and a run on the healthy store after the
//! faults converges to the same result.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tessera_slice::{Error, Registry, Strategy};
use tessera_store::object_store::memory::InMemory;
use tessera_store::object_store::path::Path;
use tessera_store::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tessera_store::{Location, StoreKind};
use tessera_test_support::{Faults, FaultyStore};

fn fastq_gz(n: usize) -> Vec<u8> {
    let text: String = (0..n)
        .map(|i| {
            format!(
                "@r{i}\nACGTACGTTG{}\n+\nIIIIIIIIII{}\n",
                "A".repeat(i % 7),
                "I".repeat(i % 7)
            )
        })
        .collect();
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(text.as_bytes()).unwrap();
    z.finish().unwrap()
}

fn csv(n: usize) -> Vec<u8> {
    let mut s = String::from("id,name,note\n");
    for i in 0..n {
        s.push_str(&format!("{i},\"name {i}\",\"a, b\nc {i}\"\n"));
    }
    s.into_bytes()
}

fn las(n: usize) -> Vec<u8> {
    let mut b = las::Builder::from((1, 2));
    b.point_format = las::point::Format::new(1).unwrap();
    let mut w =
        las::Writer::new(std::io::Cursor::new(Vec::new()), b.into_header().unwrap()).unwrap();
    for i in 0..n {
        w.write_point(las::Point {
            x: i as f64,
            y: (i % 17) as f64,
            z: 1.0,
            return_number: 1,
            number_of_returns: 1,
            gps_time: Some(i as f64),
            ..Default::default()
        })
        .unwrap();
    }
    w.close().unwrap();
    w.into_inner().unwrap().into_inner()
}

fn location(store: Arc<dyn ObjectStore>, key: &str) -> Location {
    Location::from_store(store, "memory://faults", Path::from(key), StoreKind::Memory)
}

/// An error a caller can act on: the store's, a truncation or a stale
/// object — never an internal fault or a parse error of good data.
fn clear(e: &Error) -> bool {
    matches!(
        e,
        Error::Store(_) | Error::Truncated { .. } | Error::NotFound { .. }
    ) || e.to_string().contains("injected fault")
}

#[tokio::test]
async fn faults_give_the_right_answer_or_a_clear_error() {
    let objects: Vec<(&str, Vec<u8>)> = vec![
        ("reads.fq.gz", fastq_gz(3000)),
        ("table.csv", csv(2000)),
        ("cloud.las", las(3000)),
    ];
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    for (key, data) in &objects {
        inner
            .put(&Path::from(*key), PutPayload::from(data.clone()))
            .await
            .unwrap();
    }
    let formats = Registry::builtin();
    let (mut ok, mut failed, mut injected) = (0, 0, 0);
    for (key, _) in &objects {
        // What a healthy store gives.
        let healthy = location(inner.clone(), key);
        let mut want_index = formats.index(&healthy).with_spacing(4096).await.unwrap();
        let want_slices = formats.plan(&want_index, Strategy::Count(5)).unwrap();
        let mut want_data = Vec::new();
        for s in &want_slices {
            want_data.push(formats.fetch(s, &healthy).await.unwrap());
        }
        for seed in 0..25u64 {
            let faulty = Arc::new(FaultyStore::new(inner.clone(), Faults::all(0.05), seed));
            let obj = location(faulty.clone(), key);
            match formats.index(&obj).with_spacing(4096).await {
                Ok(mut index) => {
                    index.created_by.clear();
                    want_index.created_by.clear();
                    assert_eq!(
                        index, want_index,
                        "{key} seed {seed}: an index that differs"
                    );
                    ok += 1;
                }
                Err(e) => {
                    assert!(clear(&e), "{key} seed {seed}: an unclear error: {e:?}");
                    failed += 1;
                }
            }
            for (k, s) in want_slices.iter().enumerate() {
                match formats.fetch(s, &obj).await {
                    Ok(data) => {
                        assert!(data == want_data[k], "{key} seed {seed}: slice {k} differs");
                        ok += 1;
                    }
                    Err(e) => {
                        assert!(
                            clear(&e),
                            "{key} seed {seed}: slice {k}: an unclear error: {e:?}"
                        );
                        failed += 1;
                    }
                }
            }
            injected += faulty.injected.load(Ordering::Relaxed);
        }
        // After the faults, the healthy store gives the same again.
        let again = formats.index(&healthy).with_spacing(4096).await.unwrap();
        assert_eq!(again.records, want_index.records);
    }
    eprintln!("faults injected {injected}: {ok} calls right, {failed} failed clearly");
    assert!(
        ok > 50 && failed > 5 && injected > 20,
        "ok {ok}, failed {failed}, injected {injected}"
    );
}
