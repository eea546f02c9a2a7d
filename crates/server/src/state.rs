//! The state shared by every request.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use tessera_manifest::{Manifest, OpenManifest};
use tessera_store::Location;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::{Identity, SharedAuth};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::pages::ParquetFiles;
use crate::tables::Tables;

/// A manifest, its ETag and when that was last checked.
type CachedManifest = (Arc<Manifest>, Option<String>, Instant);

/// Cheap to clone: everything is behind one `Arc`.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// What the handlers share.
#[derive(Debug)]
pub struct Inner {
    /// The configuration the server was built with.
    pub config: Config,
    /// The store everything is relative to.
    pub store: Location,
    /// The authenticator, when auth is configured.
    pub auth: SharedAuth,
    /// Request metrics.
    pub metrics: Metrics,
    /// Open Parquet footers.
    pub files: ParquetFiles,
    /// Registered tables.
    pub tables: Tables,
    manifests: tokio::sync::Mutex<HashMap<String, CachedManifest>>,
    queries: Arc<Semaphore>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Build the state (no I/O besides what `Tables::new` needs).
    pub fn new(config: Config, store: Location, auth: SharedAuth) -> AppState {
        let files = ParquetFiles::new(config.limits.refresh_interval, config.limits.cache_memory);
        let tables = Tables::new(&config);
        let queries = Arc::new(Semaphore::new(config.limits.max_concurrent_queries));
        AppState(Arc::new(Inner {
            config,
            store,
            auth,
            metrics: Metrics::default(),
            files,
            tables,
            manifests: Default::default(),
            queries,
        }))
    }

    /// A slot to run a query in, or 429 when all are taken.
    pub fn query_permit(&self) -> ApiResult<OwnedSemaphorePermit> {
        self.queries.clone().try_acquire_owned().map_err(|_| {
            ApiError::TooManyRequests(format!(
                "{} queries are running, the most this server runs at once; retry shortly",
                self.config.limits.max_concurrent_queries
            ))
        })
    }

    /// A location named in the config: a URL, or a key under the store.
    pub async fn resolve(&self, s: &str) -> ApiResult<Location> {
        if s.contains("://") || s.starts_with('/') {
            Ok(Location::open(s, &self.config.store_options).await?)
        } else {
            let rel = s.trim_end_matches('/');
            if rel.is_empty() {
                return Ok(self.store.clone());
            }
            Ok(self.store.join(rel)?)
        }
    }

    /// A configured manifest, if the caller may see it (cached; the object's
    /// ETag is checked again after the refresh interval).
    pub async fn manifest(&self, id: &Identity, name: &str) -> ApiResult<Arc<Manifest>> {
        let Some(cfg) = self.config.manifests.get(name) else {
            return Err(ApiError::NotFound(format!(
                "no manifest named '{}'",
                crate::format::truncate(name, 80)
            )));
        };
        id.check_namespace(cfg.namespace.as_deref(), &format!("manifest '{name}'"))?;
        let mut cache = self.manifests.lock().await;
        if let Some((m, _, at)) = cache.get(name) {
            if at.elapsed() < self.config.limits.refresh_interval {
                return Ok(m.clone());
            }
        }
        let loc = self.resolve(&cfg.location).await?;
        let head = loc.head().await?;
        if let Some((m, etag, at)) = cache.get_mut(name) {
            if etag.is_some() && *etag == head.e_tag {
                *at = Instant::now();
                return Ok(m.clone());
            }
        }
        let m = Arc::new(OpenManifest::new(&loc).await?);
        cache.insert(name.to_string(), (m.clone(), head.e_tag, Instant::now()));
        Ok(m)
    }

    /// The datasets of the caller's namespace.
    pub fn datasets(&self, id: &Identity) -> ApiResult<tessera_datasets::Datasets> {
        Ok(tessera_datasets::Datasets::new(self.store.clone())
            .with_namespace(&id.namespace)?
            .with_single_writer(self.config.single_writer))
    }
}
