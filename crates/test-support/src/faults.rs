//! A store that misbehaves on purpose, reproducibly: [`FaultyStore`] wraps
//! another store and, with a seeded generator, fails, delays or truncates
//! reads, and fails or repeats writes, so tests can check that every
//! operation either gives the right answer or a clear error, never a
//! silently wrong one.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tessera_store::object_store::path::Path;
use tessera_store::object_store::{
    CopyOptions, Error, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// What went wrong how often, for a [`FaultyStore`].
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Chance (0..=1) a call fails outright.
    pub fail: f64,
    /// Chance a read returns fewer bytes than it says.
    pub truncate: f64,
    /// Chance a call waits a few milliseconds first.
    pub delay: f64,
    /// Chance a write is done twice.
    pub duplicate: f64,
}

impl Faults {
    /// Every kind of fault with chance `p`.
    pub fn all(p: f64) -> Faults {
        Faults {
            fail: p,
            truncate: p,
            delay: p,
            duplicate: p,
        }
    }
}

/// A store wrapper injecting [`Faults`], seeded: the same seed and the
/// same calls in the same order give the same faults.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Faults,
    state: AtomicU64,
    /// Faults injected so far.
    pub injected: AtomicU64,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// Wrap `inner`, injecting `faults` from `seed`.
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Faults, seed: u64) -> FaultyStore {
        FaultyStore {
            inner,
            faults,
            state: AtomicU64::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            injected: AtomicU64::new(0),
        }
    }

    /// True with chance `p` (xorshift; shared by every call).
    fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        let hit = (x >> 11) as f64 / (1u64 << 53) as f64 <= p;
        if hit {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn failure(&self, what: &str, location: &Path) -> Error {
        Error::Generic {
            store: "FaultyStore",
            source: format!("injected fault: {what} {location}").into(),
        }
    }

    async fn maybe_wait(&self) {
        if self.roll(self.faults.delay) {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.maybe_wait().await;
        if self.roll(self.faults.fail) {
            return Err(self.failure("put", location));
        }
        if self.roll(self.faults.duplicate) {
            // A retried request the first of which landed.
            let _ = self
                .inner
                .put_opts(location, payload.clone(), opts.clone())
                .await;
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        if self.roll(self.faults.fail) {
            return Err(self.failure("multipart upload", location));
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.maybe_wait().await;
        if self.roll(self.faults.fail) {
            return Err(self.failure("get", location));
        }
        let mut got = self.inner.get_opts(location, options).await?;
        if got.range.end > got.range.start + 1 && self.roll(self.faults.truncate) {
            // Fewer bytes than the response says: a connection cut short.
            let bytes = match got.payload {
                GetResultPayload::Stream(s) => s.try_collect::<Vec<Bytes>>().await?.concat(),
                #[allow(unreachable_patterns)]
                other => {
                    got.payload = other;
                    return Ok(got);
                }
            };
            let cut = Bytes::from(bytes[..bytes.len() / 2].to_vec());
            got.payload =
                GetResultPayload::Stream(futures::stream::once(async move { Ok(cut) }).boxed());
        }
        Ok(got)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if self.roll(self.faults.fail) {
            return Err(self.failure("get ranges", location));
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.roll(self.faults.fail) {
            let e = self.failure("list", prefix.unwrap_or(&Path::default()));
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        if self.roll(self.faults.fail) {
            return Err(self.failure("list", prefix.unwrap_or(&Path::default())));
        }
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        if self.roll(self.faults.fail) {
            return Err(self.failure("copy", from));
        }
        self.inner.copy_opts(from, to, options).await
    }
}
