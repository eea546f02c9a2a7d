//! Tables registered in the config, turned into DataFusion tables lazily
//! and cached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::execution::runtime_env::RuntimeEnv;
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};
use tokio::sync::Mutex;

use crate::auth::Identity;
use crate::config::{Config, TableConfig};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What kind of source a table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// One Parquet file.
    File,
    /// A prefix or Hive-partitioned folder.
    Folder,
    /// A tessera dataset (Delta table).
    Dataset,
    /// A manifest.
    Manifest,
}

/// A table and when it was built.
type CachedProvider = (Arc<dyn TableProvider>, Instant);

/// The registered tables and their cached providers.
pub struct Tables {
    configs: Vec<(String, TableConfig)>,
    runtime: Arc<RuntimeEnv>,
    cache: Mutex<HashMap<String, CachedProvider>>,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables")
            .field("tables", &self.configs.len())
            .finish()
    }
}

pub use tessera_datasets::sql::session_config;

impl Tables {
    pub(crate) fn new(config: &Config) -> Tables {
        Tables {
            configs: config
                .tables
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            runtime: Arc::new(RuntimeEnv::default()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The tables `id` may see, in name order.
    pub fn visible<'a>(
        &'a self,
        id: &'a Identity,
    ) -> impl Iterator<Item = (&'a str, &'a TableConfig)> {
        self.configs
            .iter()
            .filter(move |(_, c)| c.namespace.as_deref().is_none_or(|ns| ns == id.namespace))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The config of a table `id` may see: 404 when there is none, 403
    /// when it belongs to another namespace.
    pub fn get<'a>(&'a self, id: &'a Identity, name: &str) -> ApiResult<&'a TableConfig> {
        match self.configs.iter().find(|(k, _)| k == name) {
            None => Err(ApiError::NotFound(format!(
                "no table named '{}'",
                crate::format::truncate(name, 80)
            ))),
            Some((_, c)) => {
                id.check_namespace(c.namespace.as_deref(), &format!("table '{name}'"))?;
                Ok(c)
            }
        }
    }

    /// A new query session sharing the tables' object stores.
    pub fn session(&self, config: SessionConfig) -> SessionContext {
        SessionContext::new_with_config_rt(config, self.runtime.clone())
    }

    /// The DataFusion table of `name` (cached; rebuilt after the refresh
    /// interval so new files and new dataset versions show).
    pub async fn provider(
        &self,
        state: &AppState,
        id: &Identity,
        name: &str,
    ) -> ApiResult<Arc<dyn TableProvider>> {
        let cfg = self.get(id, name)?.clone();
        let mut cache = self.cache.lock().await;
        if let Some((p, at)) = cache.get(name) {
            let pinned = cfg.dataset.is_some() && cfg.version.is_some();
            if pinned || at.elapsed() < state.config.limits.refresh_interval {
                return Ok(p.clone());
            }
        }
        let p = self.build(state, name, &cfg).await?;
        cache.insert(name.to_string(), (p.clone(), Instant::now()));
        Ok(p)
    }

    async fn build(
        &self,
        state: &AppState,
        name: &str,
        cfg: &TableConfig,
    ) -> ApiResult<Arc<dyn TableProvider>> {
        let ctx = self.session(session_config());
        if let Some(ds) = &cfg.dataset {
            let ns = cfg
                .namespace
                .clone()
                .unwrap_or_else(|| state.config.default_namespace.clone());
            let datasets =
                tessera_datasets::Datasets::new(state.store.clone()).with_namespace(&ns)?;
            let mut get = datasets.get(ds);
            if let Some(v) = cfg.version {
                get = get.with_as_of(tessera_datasets::AsOf::Version(v));
            }
            return Ok(get.table_provider(&ctx).await?);
        }
        let (src, format) = match (&cfg.location, &cfg.manifest) {
            (Some(l), _) => (l.as_str(), cfg.format.clone()),
            (None, Some(m)) => (m.as_str(), Some("parquet".to_string())),
            _ => unreachable!("the config is validated"),
        };
        let loc = state.resolve(src).await?;
        let folder = tessera_datasets::sql::is_folder(src, &loc).await;
        tessera_datasets::sql::source_table(&ctx, &loc, folder, format.as_deref())
            .await
            .map_err(|e| match e {
                tessera_datasets::Error::InvalidSource { .. } => {
                    ApiError::Store(format!("table '{name}': {e}"))
                }
                other => ApiError::Internal(format!("table '{name}': {other}")),
            })
    }

    /// The kind of a configured table.
    pub fn kind(cfg: &TableConfig) -> TableKind {
        if cfg.dataset.is_some() {
            TableKind::Dataset
        } else if cfg.manifest.is_some() {
            TableKind::Manifest
        } else if cfg
            .location
            .as_deref()
            .is_some_and(|l| !l.ends_with('/') && l.ends_with(".parquet"))
        {
            TableKind::File
        } else {
            TableKind::Folder
        }
    }
}
