//! Server configuration: a TOML file, `TESSERA_*` environment overrides
//! (applied only on request: [`Config::from_env`], [`Config::apply_env`]),
//! and defaults that work with no file at all.
//!
//! ```toml
//! bind = "127.0.0.1:8080"
//! store = "s3://bucket/tessera"
//! auth = "auth.toml"
//!
//! [limits]
//! request_timeout = "30s"
//! max_page_size = 10000
//! max_concurrent_queries = 128
//! max_body = "1GB"
//! sql_row_limit = 100000
//! shutdown_timeout = "30s"      # in-flight requests after SIGTERM
//!
//! [query_parquet]
//! template = "state={statename}/dname={dname}/{dname}.parquet"
//!
//! [tables.sales]                # a Parquet file, a prefix or a Hive folder
//! location = "warehouse/sales/" # relative to the store, or a full URL
//! format = "parquet"            # parquet | csv | tsv | jsonl
//!
//! [tables.events]               # a dataset, optionally pinned
//! dataset = "events"
//! version = 3
//!
//! [manifests.genes]
//! location = "manifests/genes.parquet"
//! namespace = "lab"             # only callers of this namespace see it
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// The `/query-parquet` path template of the reference app.
pub const DEFAULT_TEMPLATE: &str = "state={statename}/dname={dname}/{dname}.parquet";

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free port).
    pub bind: String,
    /// The store everything is relative to (`./tessera-data` by default).
    pub store: String,
    /// Auth file (API tokens and JWT settings); `None` = no auth.
    pub auth: Option<PathBuf>,
    /// Allow a non-loopback bind without auth.
    pub insecure: bool,
    /// Namespace of callers when auth is off.
    pub default_namespace: String,
    /// Allow dataset writes on a store that does not enforce conditional
    /// creates (one writer process at a time is then the operator's duty).
    pub single_writer: bool,
    /// Limits.
    pub limits: Limits,
    /// The reference `/query-parquet` endpoint.
    pub query_parquet: QueryParquet,
    /// Tables served under `/v1/tables` and queryable by `/v1/sql`.
    pub tables: BTreeMap<String, TableConfig>,
    /// Manifests served under `/v1/manifests`.
    pub manifests: BTreeMap<String, ManifestConfig>,
    /// Store options (profile, endpoint, region).
    #[serde(skip)]
    pub store_options: tessera_store::StoreOptions,
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest a request may take before it is answered with 504.
    #[serde(with = "human_duration")]
    pub request_timeout: Duration,
    /// Largest `page_size` / `limit` of a paged endpoint.
    pub max_page_size: usize,
    /// Queries running at once; more get 429 with `Retry-After`.
    pub max_concurrent_queries: usize,
    /// Largest request body (uploads).
    #[serde(with = "human_size")]
    pub max_body: u64,
    /// Most rows `/v1/sql` returns.
    pub sql_row_limit: usize,
    /// How long cached Parquet footers and table registrations are trusted
    /// before the object's ETag is checked again.
    #[serde(with = "human_duration")]
    pub refresh_interval: Duration,
    /// Memory for Parquet files kept decoded (hot files are paged from
    /// memory; larger ones by ranged reads).
    #[serde(with = "human_size")]
    pub cache_memory: u64,
    /// After SIGTERM or Ctrl-C, how long requests in flight may take to
    /// finish (a client that stops reading a streamed answer would
    /// otherwise hold the server up for ever); then the server exits.
    #[serde(with = "human_duration")]
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(30),
            max_page_size: 10_000,
            max_concurrent_queries: 128,
            max_body: 1_000_000_000,
            sql_row_limit: 100_000,
            refresh_interval: Duration::from_secs(5),
            cache_memory: 512 << 20,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Settings of `/query-parquet`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryParquet {
    /// Path of the file under the store, with `{statename}` and `{dname}`.
    pub template: String,
}

impl Default for QueryParquet {
    fn default() -> Self {
        QueryParquet {
            template: DEFAULT_TEMPLATE.into(),
        }
    }
}

/// One registered table: exactly one of `location`, `dataset`, `manifest`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// A Parquet/CSV/JSONL file, a prefix or a Hive-partitioned folder.
    pub location: Option<String>,
    /// File format of `location` (`parquet`, `csv`, `tsv`, `jsonl`);
    /// guessed from the extension when absent, Parquet for folders.
    pub format: Option<String>,
    /// A dataset name (in `namespace`, or the default namespace).
    pub dataset: Option<String>,
    /// Pin a dataset table to this Delta version.
    pub version: Option<u64>,
    /// A manifest (Parquet) to serve as a table.
    pub manifest: Option<String>,
    /// Only callers of this namespace see the table; everyone when absent.
    pub namespace: Option<String>,
    /// A description shown by `/v1/tables`.
    pub description: Option<String>,
}

/// One registered manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestConfig {
    /// Where the manifest is (relative to the store, or a URL).
    pub location: String,
    /// Only callers of this namespace see it; everyone when absent.
    pub namespace: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: DEFAULT_BIND.into(),
            store: "./tessera-data".into(),
            auth: None,
            insecure: false,
            default_namespace: "default".into(),
            single_writer: false,
            limits: Limits::default(),
            query_parquet: QueryParquet::default(),
            tables: BTreeMap::new(),
            manifests: BTreeMap::new(),
            store_options: Default::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// The defaults with the `TESSERA_*` environment variables applied (see
    /// [`Config::apply_env`]) and the store's settings taken from the
    /// environment ([`tessera_store::StoreOptions::from_env`]: `AWS_*`,
    /// `TESSERA_MAX_RETRIES`, …). [`Config::default`] reads no environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut c = Config {
            store_options: tessera_store::StoreOptions::from_env(),
            ..Config::default()
        };
        c.apply_env(std::env::vars())?;
        Ok(c)
    }

    /// Parse a TOML document.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// Read a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        let mut c = Config::from_toml(&text, &path.display().to_string())?;
        // A relative auth file is relative to the config file.
        if let (Some(a), Some(dir)) = (&c.auth, path.parent()) {
            if a.is_relative() {
                c.auth = Some(dir.join(a));
            }
        }
        Ok(c)
    }

    /// Apply `TESSERA_*` variables (from the environment, after a `.env`
    /// file has been loaded by the caller): `TESSERA_STORE`, `TESSERA_BIND`,
    /// `TESSERA_AUTH`, `TESSERA_INSECURE`, `TESSERA_REQUEST_TIMEOUT`,
    /// `TESSERA_MAX_PAGE_SIZE`, `TESSERA_MAX_CONCURRENT_QUERIES`,
    /// `TESSERA_MAX_BODY`, `TESSERA_SQL_ROW_LIMIT`,
    /// `TESSERA_REFRESH_INTERVAL`, `TESSERA_CACHE_MEMORY`,
    /// `TESSERA_QUERY_PARQUET_TEMPLATE`.
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (k, v) in vars {
            let (k, v) = (k.as_ref(), v.as_ref());
            let bad = |what: &str| ConfigError(format!("{k}='{v}': {what}"));
            let num = || {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| bad("expected a number"))
            };
            let dur = || parse_duration(v).map_err(|e| bad(&e));
            match k {
                "TESSERA_STORE" => self.store = v.into(),
                "TESSERA_BIND" => self.bind = v.into(),
                "TESSERA_AUTH" => self.auth = Some(v.into()),
                "TESSERA_INSECURE" => {
                    self.insecure = matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
                }
                "TESSERA_SINGLE_WRITER" => {
                    self.single_writer =
                        matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
                }
                "TESSERA_REQUEST_TIMEOUT" => self.limits.request_timeout = dur()?,
                "TESSERA_REFRESH_INTERVAL" => self.limits.refresh_interval = dur()?,
                "TESSERA_SHUTDOWN_TIMEOUT" => self.limits.shutdown_timeout = dur()?,
                "TESSERA_MAX_PAGE_SIZE" => self.limits.max_page_size = num()?,
                "TESSERA_MAX_CONCURRENT_QUERIES" => self.limits.max_concurrent_queries = num()?,
                "TESSERA_SQL_ROW_LIMIT" => self.limits.sql_row_limit = num()?,
                "TESSERA_MAX_BODY" => {
                    self.limits.max_body =
                        tessera_store::parse_size(v).map_err(|e| bad(&e.to_string()))?
                }
                "TESSERA_CACHE_MEMORY" => {
                    self.limits.cache_memory =
                        tessera_store::parse_size(v).map_err(|e| bad(&e.to_string()))?
                }
                "TESSERA_QUERY_PARQUET_TEMPLATE" => self.query_parquet.template = v.into(),
                _ => {}
            }
        }
        self.validate()
    }

    /// Check the values that cannot be checked by types alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        let l = &self.limits;
        if l.max_page_size == 0 || l.max_concurrent_queries == 0 || l.sql_row_limit == 0 {
            return Err(ConfigError(
                "limits: max_page_size, max_concurrent_queries and sql_row_limit must be at least 1"
                    .into(),
            ));
        }
        let t = &self.query_parquet.template;
        if !t.contains("{statename}") && !t.contains("{dname}") {
            return Err(ConfigError(format!(
                "query_parquet.template '{t}' uses neither {{statename}} nor {{dname}}"
            )));
        }
        tessera_datasets::name::check_namespace(&self.default_namespace)
            .map_err(|e| ConfigError(format!("default_namespace: {e}")))?;
        for (name, t) in &self.tables {
            check_table_name(name).map_err(|e| ConfigError(format!("tables.{name}: {e}")))?;
            let n = [&t.location, &t.dataset, &t.manifest]
                .iter()
                .filter(|o| o.is_some())
                .count();
            if n != 1 {
                return Err(ConfigError(format!(
                    "tables.{name}: give exactly one of location, dataset or manifest"
                )));
            }
            if t.version.is_some() && t.dataset.is_none() {
                return Err(ConfigError(format!(
                    "tables.{name}: version applies to dataset tables only"
                )));
            }
            if let Some(f) = &t.format {
                if !matches!(f.as_str(), "parquet" | "csv" | "tsv" | "jsonl" | "json") {
                    return Err(ConfigError(format!(
                        "tables.{name}: unknown format '{f}' (parquet, csv, tsv or jsonl)"
                    )));
                }
            }
        }
        for name in self.manifests.keys() {
            check_table_name(name).map_err(|e| ConfigError(format!("manifests.{name}: {e}")))?;
        }
        Ok(())
    }

    /// The parsed bind address.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        let s = if self.bind.starts_with(':') {
            format!("0.0.0.0{}", self.bind)
        } else {
            self.bind.clone()
        };
        s.parse().map_err(|_| {
            ConfigError(format!(
                "bind '{}' is not an address such as 127.0.0.1:8080 or 0.0.0.0:80",
                self.bind
            ))
        })
    }
}

/// Table and manifest names: `[A-Za-z_][A-Za-z0-9_]*`, so that they are
/// plain SQL identifiers and URL segments.
pub fn check_table_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid table name (letters, digits and _, not starting with a digit, at most 128)"
        ))
    }
}

/// `30s`, `5m`, `2h`, `1d`, `250ms`, or a number of seconds (configuration
/// files and environment variables have always taken plain seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(n) = s.trim().parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    tessera_store::units::parse_duration(s).map_err(|e| e.to_string())
}

mod human_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Duration::from_secs(n)),
            Raw::S(s) => super::parse_duration(&s).map_err(serde::de::Error::custom),
        }
    }
}

mod human_size {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => tessera_store::parse_size(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = Config::from_toml(
            r#"
bind = "0.0.0.0:9000"
store = "memory://x"
[limits]
request_timeout = "2m"
max_page_size = 50
max_body = "10MB"
[tables.sales]
location = "sales/"
[tables.ev]
dataset = "events"
version = 2
[manifests.genes]
location = "m.parquet"
namespace = "lab"
"#,
            "test",
        )
        .unwrap();
        assert_eq!(c.bind_addr().unwrap().port(), 9000);
        assert_eq!(c.limits.request_timeout, Duration::from_secs(120));
        assert_eq!(c.limits.max_body, 10_000_000);
        assert_eq!(c.tables["ev"].version, Some(2));
        assert_eq!(c.manifests["genes"].namespace.as_deref(), Some("lab"));
    }

    #[test]
    fn rejects_bad_configs_by_name() {
        for (toml, want) in [
            ("bnd = 1", "unknown field"),
            ("bind = 'nowhere'", "not an address"),
            ("[tables.t]\nlocation='a'\ndataset='b'", "exactly one"),
            ("[tables.t]\nlocation='a'\nversion=1", "dataset tables only"),
            ("[tables.\"a b\"]\nlocation='a'", "not a valid table name"),
            ("[tables.t]\nlocation='a'\nformat='xls'", "unknown format"),
            ("[limits]\nmax_page_size = 0", "at least 1"),
            ("[limits]\nrequest_timeout = 'soon'", "soon"),
            ("[query_parquet]\ntemplate = 'x.parquet'", "neither"),
        ] {
            let e = Config::from_toml(toml, "t").unwrap_err().to_string();
            assert!(e.contains(want), "{toml}: {e}");
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut c = Config::default();
        c.apply_env([
            ("TESSERA_BIND", "127.0.0.1:0"),
            ("TESSERA_MAX_PAGE_SIZE", "7"),
            ("TESSERA_REQUEST_TIMEOUT", "250ms"),
            ("UNRELATED", "x"),
        ])
        .unwrap();
        assert_eq!(c.limits.max_page_size, 7);
        assert_eq!(c.limits.request_timeout, Duration::from_millis(250));
        let e = c
            .apply_env([("TESSERA_MAX_PAGE_SIZE", "many")])
            .unwrap_err();
        assert!(
            e.to_string().contains("TESSERA_MAX_PAGE_SIZE='many'"),
            "{e}"
        );
    }
}
