//! Parsing locations (URLs and paths) into an object store plus a key.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::aws;
use crate::error::{redact_secrets, Error, Result};
use crate::options::StoreOptions;

/// The kind of store behind a [`Location`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// Amazon S3 or an S3-compatible server.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// The local file system.
    Local,
    /// A process-wide in-memory store (tests).
    Memory,
}

/// A place in an object store: the store itself plus a key (or key prefix).
///
/// Cloning is cheap; stores are shared between locations that name the same
/// bucket with the same options.
#[derive(Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    path: Path,
    root: Arc<str>,
    kind: StoreKind,
    /// Secrets of the options the store was opened with, removed from messages.
    secrets: Arc<[String]>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Location")
            .field("url", &self.url())
            .finish()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

type StoreRegistry = Mutex<HashMap<String, Arc<dyn ObjectStore>>>;

fn registry() -> &'static StoreRegistry {
    static REG: OnceLock<StoreRegistry> = OnceLock::new();
    REG.get_or_init(Default::default)
}

fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    reg.entry(format!("memory://{name}"))
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

fn local_store() -> Arc<dyn ObjectStore> {
    static LOCAL: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    LOCAL
        .get_or_init(|| Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)))
        .clone()
}

/// Make `p` absolute and remove `.` and `..` components without touching the disk.
fn absolute_lexical(p: &std::path::Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|e| Error::io("cannot resolve", p, e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Ok(out)
}

fn invalid(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.into(),
    }
}

/// Turn the path part of a URL into an object key.
fn url_key(url: &Url, original: &str) -> Result<Path> {
    let raw = url.path().trim_start_matches('/').trim_end_matches('/');
    if raw.is_empty() {
        return Ok(Path::default());
    }
    // The URL's path is percent-encoded (a space arrives as %20): decode it
    // to the key, so `s3://b/t x.csv` and `s3://b/t%20x.csv` both name the
    // object `t x.csv`.
    Path::from_url_path(raw)
        .or_else(|_| Path::parse(percent_decode(raw)))
        .map_err(|e| invalid(original, e.to_string()))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// The bucket (or container) of a cloud URL; `form` shows the expected shape.
fn bucket_of(url: &Url, location: &str, form: &str) -> Result<String> {
    url.host_str()
        .filter(|b| !b.is_empty())
        .map(String::from)
        .ok_or_else(|| invalid(location, format!("missing bucket: {form}")))
}

/// A built cloud store, with builder errors (bad settings) made readable.
fn built<S: ObjectStore>(
    r: object_store::Result<S>,
    opts: &StoreOptions,
) -> Result<Arc<dyn ObjectStore>> {
    r.map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| Error::Config(redact_secrets(&e.to_string(), &opts.secrets())))
}

fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(300))
}

fn retry_config(opts: &StoreOptions) -> RetryConfig {
    RetryConfig {
        max_retries: opts.max_retries(),
        retry_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

impl Location {
    /// Parse a location and open (or reuse) its store.
    ///
    /// Stores are shared by every location of the same bucket opened with
    /// equal options. Cloud stores take their settings from `opts` only
    /// (see [`StoreOptions`] for what `StoreOptions::default()` leaves to
    /// `object_store` and what [`StoreOptions::from_env`] adds).
    ///
    /// Accepts `s3://bucket/prefix` (and `s3a://`), `gs://bucket/prefix`,
    /// `az://container/prefix` (also `abfs://`, `abfss://`, `azure://`),
    /// `file:///abs/path`, a plain local path (relative or absolute) and
    /// `memory://name/prefix`.
    ///
    /// ```
    /// # tokio_test_block(async {
    /// use tessera_store::{Location, StoreOptions};
    /// let loc = Location::open("memory://demo/data", &StoreOptions::default()).await.unwrap();
    /// assert_eq!(loc.url(), "memory://demo/data");
    /// # });
    /// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
    /// #     tokio::runtime::Runtime::new().unwrap().block_on(f)
    /// # }
    /// ```
    pub async fn open(location: &str, opts: &StoreOptions) -> Result<Location> {
        let trimmed = location.trim();
        if trimmed.is_empty() {
            return Err(invalid(location, "empty location"));
        }
        let looks_like_url = trimmed
            .find("://")
            .map(|i| {
                trimmed[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            })
            .unwrap_or(false);
        if !looks_like_url {
            return Self::local(std::path::Path::new(trimmed));
        }
        let url = Url::parse(trimmed).map_err(|e| invalid(location, e.to_string()))?;
        match url.scheme() {
            "file" => {
                let p = url
                    .to_file_path()
                    .map_err(|_| invalid(location, "file URLs must be absolute: file:///abs/path"))?;
                Self::local(&p)
            }
            "memory" => {
                let name = url.host_str().unwrap_or("").to_string();
                Ok(Location {
                    store: memory_store(&name),
                    path: url_key(&url, location)?,
                    root: format!("memory://{name}").into(),
                    kind: StoreKind::Memory,
                    secrets: no_secrets(),
                })
            }
            "s3" | "s3a" => {
                let bucket = bucket_of(&url, location, "s3://bucket/prefix")?;
                let store = open_s3(&bucket, opts).await?;
                Ok(Location {
                    store,
                    path: url_key(&url, location)?,
                    root: format!("s3://{bucket}").into(),
                    kind: StoreKind::S3,
                    secrets: opts.secrets().into(),
                })
            }
            "gs" => {
                let bucket = bucket_of(&url, location, "gs://bucket/prefix")?;
                let key = format!("gs://{bucket}");
                let store = cached(&key, opts, || {
                    let mut builder = GoogleCloudStorageBuilder::new()
                        .with_client_options(client_options())
                        .with_retry(retry_config(opts));
                    for (k, v) in opts.gcs_config()? {
                        builder = builder.with_config(k, v);
                    }
                    built(builder.with_bucket_name(&bucket).build(), opts)
                })?;
                Ok(Location {
                    store,
                    path: url_key(&url, location)?,
                    root: key.into(),
                    kind: StoreKind::Gcs,
                    secrets: opts.secrets().into(),
                })
            }
            "az" | "abfs" | "abfss" | "azure" | "adl" => {
                let container = bucket_of(&url, location, "az://container/prefix")?;
                let root = format!("{}://{container}", url.scheme());
                let container_name = container.split('@').next().unwrap_or(&container).to_string();
                let store = cached(&root, opts, || {
                    let mut builder = MicrosoftAzureBuilder::new()
                        .with_client_options(client_options())
                        .with_retry(retry_config(opts));
                    for (k, v) in opts.azure_config()? {
                        builder = builder.with_config(k, v);
                    }
                    built(
                        builder
                            .with_url(root.clone())
                            .with_container_name(&container_name)
                            .build(),
                        opts,
                    )
                })?;
                Ok(Location {
                    store,
                    path: url_key(&url, location)?,
                    root: root.into(),
                    kind: StoreKind::Azure,
                    secrets: opts.secrets().into(),
                })
            }
            other => Err(invalid(
                location,
                format!(
                    "unsupported scheme '{other}': use s3://, gs://, az://, file://, memory:// or a local path"
                ),
            )),
        }
    }

    /// A location on the local file system.
    pub fn local(p: &std::path::Path) -> Result<Location> {
        let abs = absolute_lexical(p)?;
        let path = Path::from_absolute_path(&abs)
            .map_err(|e| invalid(&p.display().to_string(), e.to_string()))?;
        Ok(Location {
            store: local_store(),
            path,
            root: "file://".into(),
            kind: StoreKind::Local,
            secrets: no_secrets(),
        })
    }

    /// Wrap an existing store (for embedding and tests). `root` is the URL
    /// prefix used to name objects in messages, e.g. `s3://bucket`.
    pub fn from_store(
        store: Arc<dyn ObjectStore>,
        root: &str,
        path: Path,
        kind: StoreKind,
    ) -> Self {
        Location {
            store,
            path,
            root: root.trim_end_matches('/').into(),
            kind,
            secrets: no_secrets(),
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key (or key prefix) inside the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kind of store.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The URL of the store root, e.g. `s3://bucket`, `file://` or `memory://name`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// This location as a URL.
    pub fn url(&self) -> String {
        self.url_of(&self.path)
    }

    /// The URL of another key in the same store.
    pub fn url_of(&self, path: &Path) -> String {
        match self.kind {
            StoreKind::Local => format!("file:///{}", path.as_ref()),
            _ if path.as_ref().is_empty() => self.root.to_string(),
            _ => format!("{}/{}", self.root, path.as_ref()),
        }
    }

    /// For a local location, the file-system path.
    pub fn local_path(&self) -> Option<PathBuf> {
        match self.kind {
            StoreKind::Local => Some(PathBuf::from(format!(
                "/{}",
                percent_decode(self.path.as_ref())
            ))),
            _ => None,
        }
    }

    /// The same store at another key.
    pub fn with_path(&self, path: Path) -> Location {
        Location {
            store: self.store.clone(),
            path,
            root: self.root.clone(),
            kind: self.kind,
            secrets: self.secrets.clone(),
        }
    }

    /// A location below this one. `rel` is split on `/`; empty, `.` and `..`
    /// segments are rejected so a relative name can never escape the prefix.
    pub fn join(&self, rel: &str) -> Result<Location> {
        let mut parts: Vec<String> = self.path.parts().map(|p| p.as_ref().to_string()).collect();
        for seg in rel.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(invalid(
                    &format!("{}/{rel}", self.url()),
                    "relative names may not contain empty, '.' or '..' segments",
                ));
            }
            parts.push(seg.to_string());
        }
        let path = Path::from_iter(
            parts
                .iter()
                .map(|s| object_store::path::PathPart::from(s.as_str())),
        );
        Ok(self.with_path(path))
    }

    /// The last segment of the key (a file name), if any.
    pub fn filename(&self) -> Option<&str> {
        self.path.filename()
    }

    /// The secrets of the options this location was opened with.
    pub(crate) fn secrets(&self) -> &[String] {
        &self.secrets
    }
}

fn no_secrets() -> Arc<[String]> {
    static NONE: OnceLock<Arc<[String]>> = OnceLock::new();
    NONE.get_or_init(|| Arc::from(Vec::new())).clone()
}

/// Stores opened with different options are different stores, whatever
/// differs (endpoint, profile, keys, retries…).
///
/// A network store is also one per Tokio runtime. Its HTTP client keeps
/// pooled connections whose tasks run on the runtime that opened them; a
/// store shared with another runtime hands that runtime connections whose
/// task dies with the first one, and a request on such a connection fails
/// with "error sending request", which `object_store` does not retry.
/// A program has one runtime; a test harness has one per test.
fn registry_key(key: &str, opts: &StoreOptions) -> String {
    let runtime = tokio::runtime::Handle::try_current()
        .map(|h| h.id().to_string())
        .unwrap_or_default();
    format!("{key}|{}|{runtime}", opts.fingerprint())
}

fn remembered(full_key: &str) -> Option<Arc<dyn ObjectStore>> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(full_key)
        .cloned()
}

fn remember(full_key: String, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(full_key, store.clone());
    store
}

/// The store registered under `key` and `opts`, built on first use.
fn cached(
    key: &str,
    opts: &StoreOptions,
    build: impl FnOnce() -> Result<Arc<dyn ObjectStore>>,
) -> Result<Arc<dyn ObjectStore>> {
    let full_key = registry_key(key, opts);
    match remembered(&full_key) {
        Some(s) => Ok(s),
        None => Ok(remember(full_key, build()?)),
    }
}

async fn open_s3(bucket: &str, opts: &StoreOptions) -> Result<Arc<dyn ObjectStore>> {
    let full_key = registry_key(&format!("s3://{bucket}"), opts);
    if let Some(s) = remembered(&full_key) {
        return Ok(s);
    }
    let resolved = aws::resolve(opts).await?;
    // Client options first: the settings may add to them (`aws_allow_http`, …).
    let mut builder = AmazonS3Builder::new()
        .with_client_options(client_options())
        .with_retry(retry_config(opts));
    for (k, v) in opts.s3_config()? {
        builder = builder.with_config(k, v);
    }
    builder = builder
        .with_bucket_name(bucket)
        .with_region(resolved.region.clone());
    if let Some(endpoint) = &resolved.endpoint {
        builder = builder
            .with_endpoint(endpoint.clone())
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    if let Some(creds) = resolved.credentials {
        builder = builder.with_credentials(creds);
    }
    Ok(remember(full_key, built(builder.build(), opts)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_are_decoded_to_keys() {
        for (url, key) in [
            ("s3://b/t x.csv", "t x.csv"),
            ("s3://b/t%20x.csv", "t x.csv"),
            ("s3://b/d/%C3%A9.las", "d/\u{e9}.las"),
            ("s3://b/d/\u{e9}.las", "d/\u{e9}.las"),
            ("s3://b/a%25b", "a%b"),
            ("s3://b/dir/", "dir"),
            ("s3://b/", ""),
        ] {
            let u = Url::parse(url).unwrap();
            let p = url_key(&u, url).unwrap();
            assert_eq!(p.as_ref(), key, "{url}");
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Runtime::new().unwrap()
    }

    #[test]
    fn parses_forms() {
        rt().block_on(async {
            let o = StoreOptions::default();
            let m = Location::open("memory://x/a/b", &o).await.unwrap();
            assert_eq!(m.kind(), StoreKind::Memory);
            assert_eq!(m.path().as_ref(), "a/b");
            assert_eq!(m.url(), "memory://x/a/b");

            let f = Location::open("file:///tmp/a/../b", &o).await.unwrap();
            assert_eq!(f.kind(), StoreKind::Local);
            assert_eq!(f.url(), "file:///tmp/b");

            let p = Location::open("/tmp/x/./y", &o).await.unwrap();
            assert_eq!(p.url(), "file:///tmp/x/y");
            assert_eq!(p.local_path().unwrap(), PathBuf::from("/tmp/x/y"));

            let rel = Location::open("rel/dir", &o).await.unwrap();
            assert!(rel.url().ends_with("/rel/dir"), "{}", rel.url());

            let s3 = Location::open("s3://bucket/some/prefix", &o).await.unwrap();
            assert_eq!(s3.kind(), StoreKind::S3);
            assert_eq!(s3.url(), "s3://bucket/some/prefix");
            assert_eq!(s3.path().as_ref(), "some/prefix");
        });
    }

    #[test]
    fn rejects_bad_forms() {
        rt().block_on(async {
            let o = StoreOptions::default();
            for bad in ["", "ftp://x/y", "s3:///nobucket", "gs:///x"] {
                let e = Location::open(bad, &o).await.unwrap_err();
                assert!(matches!(e, Error::InvalidUrl { .. }), "{bad}: {e}");
            }
        });
    }

    #[test]
    fn join_refuses_escape() {
        let l = Location::local(std::path::Path::new("/tmp/base")).unwrap();
        assert!(l.join("../etc/passwd").is_err());
        assert!(l.join("a//b").is_err());
        assert_eq!(l.join("a/b.txt").unwrap().url(), "file:///tmp/base/a/b.txt");
    }

    #[test]
    fn cloud_stores_are_shared_by_equal_options_only() {
        rt().block_on(async {
            let keys = |secret: &str| {
                StoreOptions::default()
                    .with_endpoint("http://127.0.0.1:9")
                    .with_config("aws_access_key_id", "GKshared")
                    .with_config("aws_secret_access_key", secret)
            };
            let a = Location::open("s3://shared/x", &keys("one-secret"))
                .await
                .unwrap();
            let b = Location::open("s3://shared/y", &keys("one-secret"))
                .await
                .unwrap();
            assert!(Arc::ptr_eq(a.store(), b.store()));
            let c = Location::open("s3://shared/x", &keys("two-secret"))
                .await
                .unwrap();
            assert!(!Arc::ptr_eq(a.store(), c.store()));
            let d = Location::open("s3://shared/x", &keys("one-secret").with_max_retries(0))
                .await
                .unwrap();
            assert!(!Arc::ptr_eq(a.store(), d.store()));
            assert_eq!(a.secrets(), ["GKshared", "one-secret"]);
            assert!(a
                .join("k")
                .unwrap()
                .secrets()
                .contains(&"one-secret".to_string()));
        });
    }

    /// A cloud store's pooled connections belong to the runtime that made
    /// them: another runtime (another test) gets its own store; memory
    /// stores stay shared, since they hold no connections.
    #[test]
    fn cloud_stores_are_not_shared_across_runtimes() {
        let open = |url: &'static str| {
            let o = StoreOptions::default()
                .with_endpoint("http://127.0.0.1:9")
                .with_config("aws_access_key_id", "GKruntime")
                .with_config("aws_secret_access_key", "runtime-secret");
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move { Location::open(url, &o).await.unwrap() })
        };
        let (a, b) = (open("s3://runtimes/x"), open("s3://runtimes/x"));
        assert!(!Arc::ptr_eq(a.store(), b.store()));
        let (m, n) = (open("memory://runtimes/x"), open("memory://runtimes/x"));
        assert!(Arc::ptr_eq(m.store(), n.store()));
    }

    #[test]
    fn unknown_settings_fail_the_open() {
        rt().block_on(async {
            let o = StoreOptions::default().with_config("aws_no_such_setting", "1");
            let e = Location::open("s3://b/x", &o).await.unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{e}");
            assert!(e.to_string().contains("aws_no_such_setting"), "{e}");
            // Settings of other stores do not matter to local paths.
            Location::open("memory://settings/x", &o).await.unwrap();
        });
    }

    #[test]
    fn memory_stores_are_shared_by_name() {
        rt().block_on(async {
            let o = StoreOptions::default();
            let a = Location::open("memory://shared/x", &o).await.unwrap();
            let b = Location::open("memory://shared/y", &o).await.unwrap();
            assert!(Arc::ptr_eq(a.store(), b.store()));
            let c = Location::open("memory://other/x", &o).await.unwrap();
            assert!(!Arc::ptr_eq(a.store(), c.store()));
        });
    }
}
