//! Operations on a [`Location`]: listing, reading, writing, publishing and probing.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion,
};
use tokio::io::AsyncWriteExt;

use crate::error::{redact_secrets, Error, Result};
use crate::location::Location;

/// How [`Location::publish`] treats an object that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishMode {
    /// Replace it (the new object appears atomically).
    Overwrite,
    /// Fail with [`Error::AlreadyExists`] if it exists (create-if-absent).
    ///
    /// Only as safe as the store: see [`Location::capabilities`].
    CreateNew,
}

/// What a store really enforces, found by [`Location::capabilities`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// A create-if-absent write (`PutMode::Create`, `If-None-Match: *`)
    /// fails when the object exists.
    pub conditional_create: bool,
    /// A write conditioned on an ETag (`PutMode::Update`, `If-Match`) fails
    /// when the ETag does not match.
    pub conditional_update: bool,
}

impl Capabilities {
    /// A sentence for users explaining what is unsafe on this store, if anything.
    pub fn describe(&self) -> &'static str {
        match (self.conditional_create, self.conditional_update) {
            (true, true) => "the store enforces conditional writes; concurrent writers are safe",
            (true, false) => "the store enforces create-if-absent but ignores If-Match",
            (false, _) => "the store ignores conditional writes (If-None-Match): concurrent writers could silently overwrite each other's commits",
        }
    }
}

/// Parts of a multipart upload are this large; objects above it are uploaded in parts.
pub const MULTIPART_CHUNK: usize = 10 * 1024 * 1024;

impl Location {
    fn err(&self, path: &Path, e: object_store::Error) -> Error {
        Error::from_object_store_redacting(self.url_of(path), e, self.secrets())
    }

    /// Every object under this prefix, recursively, all pages, as a stream.
    ///
    /// Keys are reported as the store returns them; use [`Location::list_all`]
    /// for the parallel, directory-marker-free listing `tessera ls` prints.
    pub fn list(&self) -> BoxStream<'static, Result<ObjectMeta>> {
        let this = self.clone();
        let prefix = if self.path().as_ref().is_empty() {
            None
        } else {
            Some(self.path().clone())
        };
        self.store()
            .list(prefix.as_ref())
            .map(move |r| r.map_err(|e| this.err(this.path(), e)))
            .boxed()
    }

    /// Every object under this prefix, listed in parallel, sorted by key.
    ///
    /// The prefix is split on the sub-prefixes discovered with delimiter
    /// listings (down to a few levels, until there are enough of them), and
    /// each part is listed concurrently. Directory markers (zero-byte keys
    /// that are also the prefix of other keys, as left by `mkdir` in S3
    /// consoles) are skipped. A location that names one object lists that object.
    pub async fn list_all(&self, concurrency: usize) -> Result<Vec<ObjectMeta>> {
        let concurrency = concurrency.max(1);
        let mut leaves: Vec<ObjectMeta> = Vec::new();
        let mut frontier: Vec<Path> = vec![self.path().clone()];
        let mut parts: Vec<Path> = Vec::new();
        // Expand the frontier breadth-first while it is narrower than the concurrency.
        for _depth in 0..3 {
            if frontier.is_empty() || frontier.len() >= concurrency {
                break;
            }
            let results: Vec<_> = stream::iter(frontier.drain(..))
                .map(|p| async move {
                    let prefix = if p.as_ref().is_empty() {
                        None
                    } else {
                        Some(p.clone())
                    };
                    let r = self.store().list_with_delimiter(prefix.as_ref()).await;
                    (p, r)
                })
                .buffered(concurrency)
                .collect()
                .await;
            for (p, r) in results {
                match r {
                    Ok(res) => {
                        leaves.extend(res.objects);
                        frontier.extend(res.common_prefixes);
                    }
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.err(&p, e)),
                }
            }
        }
        parts.append(&mut frontier);
        let lists: Vec<Vec<ObjectMeta>> = stream::iter(parts)
            .map(|p| {
                let sub = self.with_path(p);
                async move { sub.list().try_collect::<Vec<_>>().await }
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        let mut all = leaves;
        for l in lists {
            all.extend(l);
        }
        all.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
        all.dedup_by(|a, b| a.location == b.location);
        if all.is_empty() && !self.path().as_ref().is_empty() {
            // Not a prefix: perhaps the location names one object.
            match self.head().await {
                Ok(meta) => return Ok(vec![meta]),
                Err(e) if e.is_not_found() => {}
                Err(Error::Store { .. }) => {} // e.g. a local directory
                Err(e) => return Err(e),
            }
        }
        Ok(drop_directory_markers(all))
    }

    /// The direct children of this prefix: objects, and sub-prefixes (one
    /// level, like a directory listing). A missing prefix lists as empty.
    pub async fn list_dir(&self) -> Result<(Vec<ObjectMeta>, Vec<Path>)> {
        let prefix = if self.path().as_ref().is_empty() {
            None
        } else {
            Some(self.path().clone())
        };
        match self.store().list_with_delimiter(prefix.as_ref()).await {
            Ok(mut r) => {
                r.objects
                    .sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
                r.objects.retain(|m| &m.location != self.path());
                Ok((r.objects, r.common_prefixes))
            }
            Err(object_store::Error::NotFound { .. }) => Ok((Vec::new(), Vec::new())),
            Err(e) => Err(self.err(self.path(), e)),
        }
    }

    /// Move this object to `to`, replacing what is there. On local disk this
    /// is an atomic rename; on object stores a server-side copy then a delete
    /// (the target appears whole, at once; if interrupted between the two,
    /// both exist and moving again is safe).
    pub async fn rename_to(&self, to: &Location) -> Result<()> {
        self.store()
            .rename(self.path(), to.path())
            .await
            .map_err(|e| self.err(self.path(), e))
    }

    /// Metadata of this object.
    pub async fn head(&self) -> Result<ObjectMeta> {
        self.store()
            .head(self.path())
            .await
            .map_err(|e| self.err(self.path(), e))
    }

    /// True when the object exists.
    pub async fn exists(&self) -> Result<bool> {
        match self.head().await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The whole object.
    pub async fn read(&self) -> Result<Bytes> {
        if let Some(p) = self.local_path() {
            // One read straight into memory: several times faster than the
            // generic chunked path for large local files.
            let url = self.url();
            return tokio::task::spawn_blocking(move || match std::fs::read(&p) {
                Ok(v) => Ok(Bytes::from(v)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound { url }),
                Err(e) if p.is_dir() => Err(Error::Store {
                    url,
                    message: format!("is a folder, not an object: {e}"),
                }),
                Err(e) => Err(Error::io("cannot read", &p, e)),
            })
            .await
            .map_err(|e| Error::Internal(format!("read task failed: {e}")))?;
        }
        let r = self
            .store()
            .get(self.path())
            .await
            .map_err(|e| self.err(self.path(), e))?;
        r.bytes().await.map_err(|e| self.err(self.path(), e))
    }

    /// The object as a stream of chunks (for large objects).
    pub async fn read_stream(&self) -> Result<(ObjectMeta, BoxStream<'static, Result<Bytes>>)> {
        let r = self
            .store()
            .get(self.path())
            .await
            .map_err(|e| self.err(self.path(), e))?;
        let meta = r.meta.clone();
        let this = self.clone();
        let s = r
            .into_stream()
            .map(move |c| c.map_err(|e| this.err(this.path(), e)))
            .boxed();
        Ok((meta, s))
    }

    /// One byte range of the object. A range past the end is an error naming the object.
    pub async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        self.store()
            .get_range(self.path(), range.clone())
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => self.err(self.path(), e),
                other => Error::Store {
                    url: self.url(),
                    message: format!(
                        "cannot read bytes {}..{}: {}",
                        range.start,
                        range.end,
                        redact_secrets(&other.to_string(), self.secrets())
                    ),
                },
            })
    }

    /// Several byte ranges, fetched concurrently (adjacent ranges are coalesced by the store).
    pub async fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.store()
            .get_ranges(self.path(), ranges)
            .await
            .map_err(|e| self.err(self.path(), e))
    }

    /// Write the object in one request (overwrites).
    pub async fn write(&self, data: impl Into<Bytes>) -> Result<PutResult> {
        self.publish(data, PublishMode::Overwrite).await
    }

    /// Publish an object atomically: readers see the old object (or none) or
    /// the whole new one, never a part. Small payloads are one PUT; payloads
    /// above [`MULTIPART_CHUNK`] are uploaded in parts that become visible
    /// only when the upload completes. `CreateNew` is a single conditional
    /// PUT whatever the size, since multipart completion cannot be made
    /// conditional on every store.
    pub async fn publish(&self, data: impl Into<Bytes>, mode: PublishMode) -> Result<PutResult> {
        let data: Bytes = data.into();
        match mode {
            PublishMode::CreateNew => {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                self.store()
                    .put_opts(self.path(), PutPayload::from(data), opts)
                    .await
                    .map_err(|e| self.err(self.path(), e))
            }
            PublishMode::Overwrite if data.len() <= MULTIPART_CHUNK => self
                .store()
                .put(self.path(), PutPayload::from(data))
                .await
                .map_err(|e| self.err(self.path(), e)),
            PublishMode::Overwrite => {
                let mut w = self.writer();
                w.write_all(&data).await.map_err(|e| self.io_err(e))?;
                w.shutdown().await.map_err(|e| self.io_err(e))?;
                let meta = self.head().await?;
                Ok(PutResult {
                    e_tag: meta.e_tag,
                    version: meta.version,
                })
            }
        }
    }

    /// Replace the object only if its ETag is still `etag` (compare-and-swap).
    pub async fn publish_if_match(&self, data: impl Into<Bytes>, etag: &str) -> Result<PutResult> {
        let opts = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: Some(etag.to_string()),
                version: None,
            }),
            ..Default::default()
        };
        self.store()
            .put_opts(self.path(), PutPayload::from(data.into()), opts)
            .await
            .map_err(|e| self.err(self.path(), e))
    }

    fn io_err(&self, e: std::io::Error) -> Error {
        match e.into_inner() {
            Some(inner) => match inner.downcast::<object_store::Error>() {
                Ok(os) => self.err(self.path(), *os),
                Err(other) => Error::Store {
                    url: self.url(),
                    message: redact_secrets(&other.to_string(), self.secrets()),
                },
            },
            None => Error::Store {
                url: self.url(),
                message: "write failed".into(),
            },
        }
    }

    /// A streaming writer (`tokio::io::AsyncWrite`): buffers up to
    /// [`MULTIPART_CHUNK`], then switches to a multipart upload. The object
    /// appears when the writer is shut down, and not before.
    pub fn writer(&self) -> BufWriter {
        BufWriter::with_capacity(self.store().clone(), self.path().clone(), MULTIPART_CHUNK)
            .with_max_concurrency(4)
    }

    /// Upload a local file (multipart when large).
    pub async fn upload_file(&self, local: &std::path::Path) -> Result<()> {
        let mut f = tokio::fs::File::open(local)
            .await
            .map_err(|e| Error::io("cannot open", local, e))?;
        let mut w = self.writer();
        tokio::io::copy(&mut f, &mut w)
            .await
            .map_err(|e| self.io_err(e))?;
        w.shutdown().await.map_err(|e| self.io_err(e))?;
        Ok(())
    }

    /// Delete the object (deleting a missing object is not an error).
    pub async fn delete(&self) -> Result<()> {
        match self.store().delete(self.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(self.path(), e)),
        }
    }

    /// Find out, by trying, whether the store enforces conditional writes.
    ///
    /// Writes and deletes two small objects under `_tessera/probe/` below this
    /// location. The answer is cached per store for the life of the process.
    pub async fn capabilities(&self) -> Result<Capabilities> {
        static CACHE: OnceLock<Mutex<HashMap<String, Capabilities>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = format!("{}|{:p}", self.root(), std::sync::Arc::as_ptr(self.store()));
        if let Some(c) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(*c);
        }
        let probe = self.join(&format!("_tessera/probe/{}", uuid::Uuid::new_v4()))?;
        if let Err(e) = probe
            .publish(Bytes::from_static(b"1"), PublishMode::CreateNew)
            .await
        {
            match e {
                // A store that refuses conditional writes outright: write
                // plainly; the second conditional write then tells.
                Error::Store { .. } => {
                    probe
                        .publish(Bytes::from_static(b"1"), PublishMode::Overwrite)
                        .await?;
                }
                e => return Err(e),
            }
        }
        let conditional_create = match probe
            .publish(Bytes::from_static(b"2"), PublishMode::CreateNew)
            .await
        {
            Err(Error::AlreadyExists { .. }) | Err(Error::Precondition { .. }) => {
                // Make sure the first write is still there: a store that
                // reported a conflict but overwrote anyway is not safe either.
                probe.read().await?.as_ref() == b"1"
            }
            Ok(_) => false,
            Err(Error::Store { .. }) => false,
            Err(e) => {
                let _ = probe.delete().await;
                return Err(e);
            }
        };
        let conditional_update = match probe
            .publish_if_match(Bytes::from_static(b"3"), "\"tessera-probe-wrong-etag\"")
            .await
        {
            Err(Error::Precondition { .. }) | Err(Error::AlreadyExists { .. }) => true,
            Ok(_) => false,
            Err(_) => false,
        };
        probe.delete().await?;
        let caps = Capabilities {
            conditional_create,
            conditional_update,
        };
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, caps);
        Ok(caps)
    }
}

/// Drop zero-byte objects whose key is also a prefix of other keys (S3 "folders").
/// `objects` must be sorted by key.
fn drop_directory_markers(objects: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
    let zero: BTreeSet<String> = objects
        .iter()
        .filter(|m| m.size == 0)
        .map(|m| m.location.as_ref().to_string())
        .collect();
    if zero.is_empty() {
        return objects;
    }
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for m in &objects {
        let key = m.location.as_ref();
        let mut end = 0;
        while let Some(i) = key[end..].find('/') {
            let parent = &key[..end + i];
            if zero.contains(parent) {
                dirs.insert(parent.to_string());
            }
            end += i + 1;
        }
    }
    objects
        .into_iter()
        .filter(|m| {
            let k = m.location.as_ref();
            !(m.size == 0 && (dirs.contains(k) || k.ends_with("_$folder$")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(k: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(k),
            last_modified: Default::default(),
            size,
            e_tag: None,
            version: None,
        }
    }

    #[test]
    fn markers_dropped_but_empty_files_kept() {
        let v = vec![
            meta("a", 0),
            meta("a/b", 3),
            meta("c", 0),
            meta("d_$folder$", 0),
        ];
        let out: Vec<_> = drop_directory_markers(v)
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        assert_eq!(out, vec!["a/b", "c"]);
    }
}
