//! The local cache: one download under concurrency, revalidation, LRU, atomicity.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tessera_store::{Cache, Location, PublishMode, StoreKind};

/// An in-memory store that counts GETs of object bodies and slows them down.
#[derive(Debug)]
struct Counting {
    inner: InMemory,
    gets: AtomicUsize,
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting")
    }
}

#[async_trait::async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        l: &Path,
        p: PutPayload,
        o: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
        if !o.head {
            self.gets.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.inner.get_opts(l, o).await
    }
    async fn get_ranges(&self, l: &Path, r: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(l, r).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, p: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(p)
    }
    async fn list_with_delimiter(&self, p: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(p).await
    }
    async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(f, t, o).await
    }
}

fn counting() -> (Arc<Counting>, Location) {
    let store = Arc::new(Counting {
        inner: InMemory::new(),
        gets: AtomicUsize::new(0),
    });
    let loc = Location::from_store(
        store.clone(),
        "memory://counting",
        Path::from("data"),
        StoreKind::Memory,
    );
    (store, loc)
}

#[test]
fn concurrent_fetches_download_once() {
    let (store, base) = counting();
    let dir = tempfile::tempdir().unwrap();
    let obj = base.join("x/model.tl").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(obj.publish(Bytes::from(vec![7u8; 100_000]), PublishMode::Overwrite))
        .unwrap();

    // Threads with their own runtimes and their own Cache values: as separate
    // processes would, they only share the folder and its lock files.
    let paths: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let obj = obj.clone();
                let dir = dir.path().to_path_buf();
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let cache = Cache::new(dir, 1 << 30).unwrap();
                    rt.block_on(cache.fetch(&obj)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        1,
        "one download for eight callers"
    );
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(std::fs::read(&paths[0]).unwrap(), vec![7u8; 100_000]);
    // no temporary files left behind
    let parts: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.contains(".part"))
        .collect();
    assert!(parts.is_empty(), "{parts:?}");
}

fn walk(p: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn revalidates_when_the_object_changes() {
    let (store, base) = counting();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), 1 << 30).unwrap();
    let obj = base.join("v.txt").unwrap();
    obj.publish("one", PublishMode::Overwrite).await.unwrap();
    let p1 = cache.fetch(&obj).await.unwrap();
    assert_eq!(std::fs::read_to_string(&p1).unwrap(), "one");
    let again = cache.fetch(&obj).await.unwrap();
    assert_eq!(again, p1);
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        1,
        "a hit does not download"
    );

    obj.publish("two!", PublishMode::Overwrite).await.unwrap();
    let p2 = cache.fetch(&obj).await.unwrap();
    assert_eq!(std::fs::read_to_string(&p2).unwrap(), "two!");
    assert_eq!(store.gets.load(Ordering::SeqCst), 2);
    assert!(!p1.exists() || p1 == p2, "the stale copy is removed");
}

#[tokio::test]
async fn evicts_least_recently_used() {
    let (_store, base) = counting();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), 2500).unwrap();
    let mut paths = Vec::new();
    for i in 0..3 {
        let obj = base.join(&format!("o{i}")).unwrap();
        obj.publish(Bytes::from(vec![i as u8; 1000]), PublishMode::Overwrite)
            .await
            .unwrap();
        paths.push(cache.fetch(&obj).await.unwrap());
        // Distinct modification times.
        std::thread::sleep(std::time::Duration::from_millis(20));
        if i == 1 {
            // Use o0 again: o1 becomes the least recently used.
            cache.fetch(&base.join("o0").unwrap()).await.unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    assert!(cache.size() <= 2500, "size {}", cache.size());
    assert!(paths[0].exists(), "recently used o0 kept");
    assert!(!paths[1].exists(), "least recently used o1 evicted");
    assert!(paths[2].exists(), "newest kept");
}

#[tokio::test]
async fn missing_object_is_not_found_and_leaves_nothing() {
    let (_store, base) = counting();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), 1 << 20).unwrap();
    let e = cache.fetch(&base.join("nope").unwrap()).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(cache.size(), 0);
}

#[tokio::test]
async fn local_objects_are_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("data.bin");
    std::fs::write(&f, b"abc").unwrap();
    let cache = Cache::new(dir.path().join("cache"), 1 << 20).unwrap();
    let loc = Location::local(&f).unwrap();
    assert_eq!(cache.fetch(&loc).await.unwrap(), f);
}
