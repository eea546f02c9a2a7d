//! A local cache of remote objects, keyed by object URL and ETag.
//!
//! Layout under the cache directory:
//!
//! ```text
//! objects/<aa>/<sha256(url)>/<sha256(etag)[..16]>/<file name>   the cached copy
//! objects/<aa>/<sha256(url)>.lock                               one lock per URL
//! ```
//!
//! * **Revalidation**: every [`Cache::fetch`] asks the store for the object's
//!   current ETag (one HEAD request); a changed object is downloaded again
//!   and the stale copy removed.
//! * **One download**: the download runs under an exclusive file lock on the
//!   URL's lock file, so when many processes ask at once, one downloads and
//!   the others wait and then find the copy.
//! * **Atomic**: the download goes to a temporary file in the same folder and
//!   is renamed into place once complete and flushed, so a copy is never seen
//!   half-written, even after a crash.
//! * **LRU**: each hit refreshes the copy's modification time; after a
//!   download, the least recently used copies are deleted until the cache is
//!   under its size limit (copies whose URL is locked by another process are
//!   left alone).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::time::SystemTime;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::location::Location;

/// Default size limit of the cache: 10 GiB.
pub const DEFAULT_CACHE_LIMIT: u64 = 10 * 1024 * 1024 * 1024;

/// A local cache of objects (see the module documentation).
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn sanitize_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "object".to_string()
    } else {
        cleaned.chars().take(120).collect()
    }
}

impl Cache {
    /// A cache in `dir` holding at most `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(dir.join("objects"))
            .map_err(|e| Error::io("cannot create cache folder", &dir, e))?;
        Ok(Cache { dir, max_bytes })
    }

    /// The cache configured by the environment: `TESSERA_CACHE` (default
    /// `~/.cache/tessera`) and `TESSERA_CACHE_SIZE` in bytes or with a unit
    /// (`500MB`, `20GiB`; default 10 GiB).
    pub fn from_env() -> Result<Self> {
        let dir = match std::env::var_os("TESSERA_CACHE") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("tessera"),
        };
        let max = match std::env::var("TESSERA_CACHE_SIZE") {
            Ok(s) if !s.is_empty() => crate::units::parse_size(&s)
                .map_err(|e| Error::Config(format!("TESSERA_CACHE_SIZE: {e}")))?,
            _ => DEFAULT_CACHE_LIMIT,
        };
        Self::new(dir, max)
    }

    /// The cache folder.
    pub fn dir(&self) -> &FsPath {
        &self.dir
    }

    /// The size limit in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn url_dir(&self, url: &str) -> (PathBuf, PathBuf) {
        let h = sha(url);
        let base = self.dir.join("objects").join(&h[..2]);
        (base.join(&h), base.join(format!("{h}.lock")))
    }

    /// A local copy of the object, downloaded if missing or stale.
    ///
    /// Local objects are not copied: their own path is returned.
    pub async fn fetch(&self, loc: &Location) -> Result<PathBuf> {
        if let Some(p) = loc.local_path() {
            if p.is_file() {
                return Ok(p);
            }
            return Err(Error::NotFound { url: loc.url() });
        }
        let url = loc.url();
        let meta = loc.head().await?;
        let version = meta.e_tag.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                meta.size,
                meta.last_modified.timestamp_nanos_opt().unwrap_or(0)
            )
        });
        let (url_dir, lock_path) = self.url_dir(&url);
        let name = sanitize_name(loc.filename().unwrap_or("object"));
        let entry_dir = url_dir.join(&sha(&version)[..16]);
        let entry = entry_dir.join(&name);
        if entry.is_file() {
            touch(&entry);
            return Ok(entry);
        }
        fs::create_dir_all(&url_dir)
            .map_err(|e| Error::io("cannot create cache folder", &url_dir, e))?;
        let lock = lock_exclusive(lock_path.clone()).await?;
        if entry.is_file() {
            // Another process downloaded it while we waited.
            touch(&entry);
            drop(lock);
            return Ok(entry);
        }
        fs::create_dir_all(&entry_dir)
            .map_err(|e| Error::io("cannot create cache folder", &entry_dir, e))?;
        let tmp = entry_dir.join(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
        let result = self.download(loc, &tmp, meta.size).await;
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &entry).map_err(|e| Error::io("cannot publish cache entry", &entry, e))?;
        // Older versions of the same URL are stale now.
        if let Ok(rd) = fs::read_dir(&url_dir) {
            for d in rd.flatten() {
                if d.path() != entry_dir {
                    let _ = fs::remove_dir_all(d.path());
                }
            }
        }
        drop(lock);
        self.evict(&entry)?;
        Ok(entry)
    }

    async fn download(&self, loc: &Location, tmp: &FsPath, expected: u64) -> Result<()> {
        let (_, mut stream) = loc.read_stream().await?;
        let mut f = File::create(tmp).map_err(|e| Error::io("cannot create", tmp, e))?;
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            f.write_all(&chunk)
                .map_err(|e| Error::io("cannot write", tmp, e))?;
        }
        f.sync_all()
            .map_err(|e| Error::io("cannot flush", tmp, e))?;
        if written != expected {
            return Err(Error::Store {
                url: loc.url(),
                message: format!("download ended after {written} of {expected} bytes"),
            });
        }
        Ok(())
    }

    /// Total bytes held by cached copies.
    pub fn size(&self) -> u64 {
        self.entries().iter().map(|e| e.1).sum()
    }

    /// (path, size, last use) of every cached copy.
    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut out = Vec::new();
        let Ok(shards) = fs::read_dir(self.dir.join("objects")) else {
            return out;
        };
        for shard in shards.flatten() {
            let Ok(urls) = fs::read_dir(shard.path()) else {
                continue;
            };
            for u in urls.flatten() {
                if !u.path().is_dir() {
                    continue;
                }
                let Ok(versions) = fs::read_dir(u.path()) else {
                    continue;
                };
                for v in versions.flatten() {
                    let Ok(files) = fs::read_dir(v.path()) else {
                        continue;
                    };
                    for f in files.flatten() {
                        if f.file_name().to_string_lossy().starts_with('.') {
                            continue;
                        }
                        if let Ok(m) = f.metadata() {
                            out.push((
                                f.path(),
                                m.len(),
                                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    /// Delete least recently used copies until the cache fits its limit.
    /// `keep` (the copy just fetched) is never deleted.
    fn evict(&self, keep: &FsPath) -> Result<()> {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        if total <= self.max_bytes {
            return Ok(());
        }
        entries.sort_by_key(|e| e.2);
        for (path, size, _) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            // The lock file sits beside the URL folder: <shard>/<hash>.lock
            let Some(url_dir) = path.parent().and_then(|p| p.parent()) else {
                continue;
            };
            let lock_path = url_dir.with_extension("lock");
            let Ok(lf) = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
            else {
                continue;
            };
            if lf.try_lock().is_err() {
                continue; // in use by another process
            }
            if fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(size);
                if let Some(v) = path.parent() {
                    let _ = fs::remove_dir(v);
                }
            }
            let _ = lf.unlock();
        }
        Ok(())
    }
}

fn touch(p: &FsPath) {
    if let Ok(f) = File::options().append(true).open(p) {
        let _ = f.set_modified(SystemTime::now());
    }
}

async fn lock_exclusive(path: PathBuf) -> Result<File> {
    tokio::task::spawn_blocking(move || {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("cannot open lock", &path, e))?;
        f.lock().map_err(|e| Error::io("cannot lock", &path, e))?;
        Ok(f)
    })
    .await
    .map_err(|e| Error::Internal(format!("lock task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_hostile_names() {
        assert_eq!(sanitize_name("../etc/passwd"), "_etc_passwd");
        assert_eq!(sanitize_name("a b\"c"), "a_b_c");
        assert_eq!(sanitize_name(""), "object");
        assert_eq!(sanitize_name(&"x".repeat(500)).len(), 120);
    }
}
