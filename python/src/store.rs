//! Store options, values between Rust and Python, and `ls`.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tessera_store::{Location, StoreOptions};

use crate::errors::{Raised, ResultExt};
use crate::runtime::block_on;

/// How to reach the object stores: the same settings as the command line's
/// store flags. Unset settings come from the environment (`AWS_PROFILE`,
/// `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …) unless
/// `from_env=False`.
#[pyclass(
    name = "StoreOptions",
    module = "tessera._tessera",
    frozen,
    skip_from_py_object
)]
#[derive(Debug, Clone, Default)]
pub struct PyStoreOptions {
    #[pyo3(get)]
    profile: Option<String>,
    #[pyo3(get)]
    endpoint: Option<String>,
    #[pyo3(get)]
    region: Option<String>,
    #[pyo3(get)]
    max_retries: Option<usize>,
    config: BTreeMap<String, String>,
    #[pyo3(get)]
    from_env: bool,
}

#[pymethods]
impl PyStoreOptions {
    #[new]
    #[pyo3(signature = (*, profile=None, endpoint=None, region=None, max_retries=None, config=None, from_env=true))]
    fn new(
        profile: Option<String>,
        endpoint: Option<String>,
        region: Option<String>,
        max_retries: Option<usize>,
        config: Option<BTreeMap<String, String>>,
        from_env: bool,
    ) -> Self {
        PyStoreOptions {
            profile,
            endpoint,
            region,
            max_retries,
            config: config.unwrap_or_default(),
            from_env,
        }
    }

    /// The `object_store` settings given (values hidden: they may be secrets).
    #[getter]
    fn config_keys(&self) -> Vec<String> {
        self.config.keys().cloned().collect()
    }

    fn __repr__(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("profile", &self.profile),
            ("endpoint", &self.endpoint),
            ("region", &self.region),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v:?}"));
            }
        }
        if let Some(r) = self.max_retries {
            parts.push(format!("max_retries={r}"));
        }
        if !self.config.is_empty() {
            parts.push(format!("config=<{} keys>", self.config.len()));
        }
        if !self.from_env {
            parts.push("from_env=False".into());
        }
        format!("StoreOptions({})", parts.join(", "))
    }
}

impl PyStoreOptions {
    /// The library's options: the environment's, then these settings.
    pub fn options(&self) -> StoreOptions {
        let mut o = if self.from_env {
            StoreOptions::from_env()
        } else {
            StoreOptions::default()
        };
        if let Some(p) = &self.profile {
            o = o.with_profile(p);
        }
        if let Some(e) = &self.endpoint {
            o = o.with_endpoint(e);
        }
        if let Some(r) = &self.region {
            o = o.with_region(r);
        }
        if let Some(n) = self.max_retries {
            o = o.with_max_retries(n);
        }
        for (k, v) in &self.config {
            o = o.with_config(k, v.clone());
        }
        o
    }

    /// The settings that may travel with a slice to another process: the
    /// profile name, endpoint and region (never `config`, which may hold
    /// keys).
    pub fn shareable(&self) -> PyStoreOptions {
        PyStoreOptions {
            config: BTreeMap::new(),
            ..self.clone()
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "profile": self.profile,
            "endpoint": self.endpoint,
            "region": self.region,
            "max_retries": self.max_retries,
            "from_env": self.from_env,
        })
    }

    pub fn from_json(v: &serde_json::Value) -> PyStoreOptions {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
        PyStoreOptions {
            profile: s("profile"),
            endpoint: s("endpoint"),
            region: s("region"),
            max_retries: v
                .get("max_retries")
                .and_then(|x| x.as_u64())
                .map(|n| n as usize),
            config: BTreeMap::new(),
            from_env: v.get("from_env").and_then(|x| x.as_bool()).unwrap_or(true),
        }
    }
}

impl PyStoreOptions {
    /// `store=` or the store keywords (`profile`, `endpoint`, `region`,
    /// `max_retries`, `config`), not both; any other keyword is a
    /// `TypeError`.
    pub fn from_args(
        store: Option<&PyStoreOptions>,
        kw: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<PyStoreOptions>> {
        let Some(kw) = kw.filter(|k| !k.is_empty()) else {
            return Ok(store.cloned());
        };
        if store.is_some() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "give store=StoreOptions(...) or store keywords, not both",
            ));
        }
        let mut o = PyStoreOptions {
            from_env: true,
            ..PyStoreOptions::default()
        };
        for (k, v) in kw.iter() {
            let k: String = k.extract()?;
            match k.as_str() {
                "profile" => o.profile = v.extract()?,
                "endpoint" => o.endpoint = v.extract()?,
                "region" => o.region = v.extract()?,
                "max_retries" => o.max_retries = v.extract()?,
                "config" => {
                    o.config = v
                        .extract::<Option<BTreeMap<String, String>>>()?
                        .unwrap_or_default()
                }
                other => {
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "unexpected keyword argument '{other}'"
                    )))
                }
            }
        }
        Ok(Some(o))
    }
}

/// Store options from an optional argument (the environment's by default).
pub fn opts(store: Option<&PyStoreOptions>) -> StoreOptions {
    match store {
        Some(s) => s.options(),
        None => StoreOptions::from_env(),
    }
}

/// A JSON value as a Python object (dicts, lists, str, int, float, bool, None).
pub fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    Ok(match v {
        serde_json::Value::Null => py.None().into_bound(py),
        serde_json::Value::Bool(b) => b.into_bound_py_any(py)?,
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)?
            } else if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)?
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?
            }
        }
        serde_json::Value::String(s) => s.into_bound_py_any(py)?,
        serde_json::Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(json_to_py(py, x)?)?;
            }
            l.into_any()
        }
        serde_json::Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// A serializable report as a Python dict.
pub fn report<'py, T: serde::Serialize>(py: Python<'py>, r: &T) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(r).map_err(|e| {
        PyErr::from(Raised::new(
            crate::errors::Class::Internal,
            "Internal",
            e.to_string(),
        ))
    })?;
    json_to_py(py, &v)
}

/// The objects under a prefix: `(url, size, last_modified RFC 3339)`.
#[pyfunction]
#[pyo3(signature = (url, store=None, concurrency=16))]
pub fn ls(
    py: Python<'_>,
    url: &str,
    store: Option<PyRef<'_, PyStoreOptions>>,
    concurrency: usize,
) -> PyResult<Vec<(String, u64, String)>> {
    let o = opts(store.as_deref());
    let url = url.to_string();
    block_on(py, async move {
        let loc = Location::open(&url, &o).await.py()?;
        let objects = loc.list_all(concurrency.max(1)).await.py()?;
        Ok(objects
            .iter()
            .map(|m| {
                (
                    loc.url_of(&m.location),
                    m.size,
                    m.last_modified.to_rfc3339(),
                )
            })
            .collect())
    })
}

/// Parse a size argument: an int of bytes or a string with a unit.
pub fn size_arg(v: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(n) = v.extract::<u64>() {
        return Ok(n);
    }
    if let Ok(s) = v.extract::<String>() {
        return tessera_store::parse_size(&s)
            .map_err(|e| Raised::invalid(format!("{what} '{s}': {e}")).into());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "{what} must be an int of bytes or a string such as '256MB', not {}",
        v.get_type().name()?
    )))
}

/// The cache in `dir`, else the environment's (`TESSERA_CACHE`,
/// `~/.cache/tessera`).
pub fn cache(dir: Option<std::path::PathBuf>) -> PyResult<tessera_store::Cache> {
    match dir {
        Some(d) => tessera_store::Cache::new(d, tessera_store::cache::DEFAULT_CACHE_LIMIT).py(),
        None => tessera_store::Cache::from_env().py(),
    }
}

/// Download an object into the local cache (`cache_dir`, else the
/// environment's: `TESSERA_CACHE`, `~/.cache/tessera`) and return its local
/// path; a local file is returned as it is. A cached copy is used while the
/// object's ETag is unchanged.
#[pyfunction]
#[pyo3(signature = (url, *, cache_dir=None, store=None))]
pub fn fetch<'py>(
    py: Python<'py>,
    url: &str,
    cache_dir: Option<std::path::PathBuf>,
    store: Option<PyRef<'py, PyStoreOptions>>,
) -> PyResult<Bound<'py, PyAny>> {
    let o = opts(store.as_deref());
    let url = url.to_string();
    let path = block_on(py, async move {
        let cache = cache(cache_dir)?;
        let loc = Location::open(&url, &o).await.py()?;
        cache.fetch(&loc).await.py()
    })?;
    py.import("pathlib")?.getattr("Path")?.call1((path,))
}
