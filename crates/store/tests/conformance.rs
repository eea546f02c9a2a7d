//! One conformance suite for every backend: `memory://`, a local folder and a
//! real S3 server (Garage, started by `scripts/test.sh`; set `TESSERA_TEST_S3`
//! to an `s3://bucket` and the usual `AWS_*` variables to run it by hand).

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tessera_store::{Error, Location, PublishMode, StoreOptions, MULTIPART_CHUNK};
use tessera_test_support::{s3_base, store_options, unique};
use tokio::io::AsyncWriteExt;

struct Expect {
    conditional_create: bool,
    /// Whether to exercise paging beyond the 1000 keys a list page holds.
    many_keys: bool,
}

async fn suite(base: Location, expect: Expect) {
    let base = base.join(&unique("conformance")).unwrap();

    // put / get / head
    let a = base.join("a.txt").unwrap();
    a.write(Bytes::from_static(b"hello world")).await.unwrap();
    assert_eq!(a.read().await.unwrap().as_ref(), b"hello world");
    let meta = a.head().await.unwrap();
    assert_eq!(meta.size, 11);
    assert!(a.exists().await.unwrap());

    // missing objects
    let missing = base.join("missing/none.bin").unwrap();
    let e = missing.read().await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        e.to_string().contains("missing/none.bin"),
        "message names the object: {e}"
    );
    assert!(!missing.exists().await.unwrap());

    // ranges
    assert_eq!(a.read_range(6..11).await.unwrap().as_ref(), b"world");
    assert_eq!(a.read_range(0..1).await.unwrap().as_ref(), b"h");
    let rs = a.read_ranges(&[0..5, 6..11]).await.unwrap();
    assert_eq!(rs[0].as_ref(), b"hello");
    assert_eq!(rs[1].as_ref(), b"world");
    let past = a.read_range(100..200).await;
    assert!(past.is_err(), "a range past the end is an error");

    // listing: nested prefixes, sorted, with parallel listing
    for k in ["d/x/1", "d/x/2", "d/y/3", "d/z/q/4", "d/top"] {
        base.join(k)
            .unwrap()
            .write(Bytes::from(k.to_string()))
            .await
            .unwrap();
    }
    let d = base.join("d").unwrap();
    let listed: Vec<String> = d
        .list_all(4)
        .await
        .unwrap()
        .iter()
        .map(|m| d.url_of(&m.location))
        .collect();
    let expected: Vec<String> = ["d/top", "d/x/1", "d/x/2", "d/y/3", "d/z/q/4"]
        .iter()
        .map(|k| base.join(k).unwrap().url())
        .collect();
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(listed, sorted_expected);
    let streamed: Vec<_> = d.list().try_collect().await.unwrap();
    assert_eq!(streamed.len(), 5);
    assert!(base
        .join("nothing-here")
        .unwrap()
        .list_all(4)
        .await
        .unwrap()
        .is_empty());

    if expect.many_keys {
        let many = base.join("many").unwrap();
        futures::stream::iter(0..1100)
            .map(|i| {
                let o = many.join(&format!("k{i:05}")).unwrap();
                async move { o.write(Bytes::from_static(b"x")).await }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
        let all = many.list_all(8).await.unwrap();
        assert_eq!(all.len(), 1100, "every page is listed");
        let streamed: Vec<_> = many.list().try_collect().await.unwrap();
        assert_eq!(streamed.len(), 1100);
    }

    // multipart: a streaming write larger than one part
    let big = base.join("big.bin").unwrap();
    let payload: Vec<u8> = (0..(MULTIPART_CHUNK + MULTIPART_CHUNK / 2))
        .map(|i| (i % 251) as u8)
        .collect();
    let mut w = big.writer();
    for chunk in payload.chunks(1 << 20) {
        w.write_all(chunk).await.unwrap();
    }
    assert!(
        !big.exists().await.unwrap(),
        "nothing is visible before the upload completes"
    );
    w.shutdown().await.unwrap();
    let back = big.read().await.unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back.as_ref() == payload.as_slice());
    let mid = MULTIPART_CHUNK as u64 - 10;
    assert_eq!(
        big.read_range(mid..mid + 20).await.unwrap().as_ref(),
        &payload[mid as usize..mid as usize + 20]
    );
    // publish of a large payload (multipart) replaces atomically
    let big2 = base.join("big2.bin").unwrap();
    big2.publish(Bytes::from(payload.clone()), PublishMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(big2.head().await.unwrap().size, payload.len() as u64);

    // publish: create-if-absent
    let p = base.join("publish/one").unwrap();
    p.publish(Bytes::from_static(b"first"), PublishMode::CreateNew)
        .await
        .unwrap();
    let second = p
        .publish(Bytes::from_static(b"second"), PublishMode::CreateNew)
        .await;
    if expect.conditional_create {
        assert!(
            matches!(second, Err(Error::AlreadyExists { .. })),
            "{second:?}"
        );
        assert_eq!(p.read().await.unwrap().as_ref(), b"first");
    } else {
        // The store ignores If-None-Match: exactly what the probe must report.
        assert!(second.is_ok());
    }
    p.publish(Bytes::from_static(b"third"), PublishMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(p.read().await.unwrap().as_ref(), b"third");

    // probe
    let caps = base.capabilities().await.unwrap();
    assert_eq!(
        caps.conditional_create, expect.conditional_create,
        "{caps:?}"
    );
    let leftovers = base.join("_tessera").unwrap().list_all(4).await.unwrap();
    assert!(leftovers.is_empty(), "the probe cleans up: {leftovers:?}");

    // delete
    a.delete().await.unwrap();
    assert!(!a.exists().await.unwrap());
    a.delete().await.unwrap(); // deleting a missing object is fine

    // hostile relative names are refused
    assert!(base.join("../escape").is_err());
    assert!(base.join("a/./b").is_err());

    // clean up
    let rest = base.list_all(8).await.unwrap();
    for m in rest {
        base.with_path(m.location).delete().await.unwrap();
    }
}

async fn run_on(url: &str, conditional_create: bool, many_keys: bool) {
    let base = Location::open(url, &store_options()).await.unwrap();
    suite(
        base,
        Expect {
            conditional_create,
            many_keys,
        },
    )
    .await;
}

#[tokio::test]
async fn memory_backend() {
    run_on("memory://conformance/root", true, true).await;
}

#[tokio::test]
async fn local_backend() {
    let dir = tempfile::tempdir().unwrap();
    run_on(dir.path().to_str().unwrap(), true, false).await;
}

#[tokio::test]
async fn file_url_backend() {
    let dir = tempfile::tempdir().unwrap();
    run_on(&format!("file://{}/sub", dir.path().display()), true, false).await;
}

#[tokio::test]
async fn s3_backend_garage() {
    let Some(url) = s3_base() else { return };
    // Garage ignores If-None-Match: the suite checks the probe says so.
    let is_garage = std::env::var("AWS_REGION").ok().as_deref() == Some("garage");
    run_on(&url, !is_garage, true).await;
}

#[tokio::test]
async fn unreachable_endpoint_is_reported() {
    // The environment's keys, if any, against an endpoint nothing listens on.
    let opts = store_options()
        .with_endpoint("http://127.0.0.1:9")
        .with_region("us-east-1")
        .with_max_retries(0);
    let loc = Location::open("s3://nobucket/x", &opts).await.unwrap();
    let e = loc.read().await.unwrap_err();
    if std::env::var("AWS_ACCESS_KEY_ID").is_ok() {
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    } else {
        // Without credentials the chain ends at instance metadata, which is not there.
        assert!(
            matches!(e, Error::Unreachable { .. } | Error::Unauthenticated { .. }),
            "{e:?}"
        );
    }
    assert!(e.to_string().contains("s3://nobucket/x"), "{e}");
}

#[tokio::test]
async fn bad_endpoint_is_a_config_error() {
    let opts = StoreOptions::default().with_endpoint("localhost:3900");
    let e = Location::open("s3://b/x", &opts).await.unwrap_err();
    assert!(e.to_string().contains("must start with http"), "{e}");
}

#[tokio::test]
async fn unknown_explicit_profile_is_an_error() {
    let opts = StoreOptions::default().with_profile("tessera-no-such-profile-xyz");
    let e = Location::open("s3://b/x", &opts).await.unwrap_err();
    assert!(e.to_string().contains("tessera-no-such-profile-xyz"), "{e}");
}
