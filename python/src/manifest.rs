//! Manifests: build one, open one, look records up.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tessera_manifest::{BuildManifest, Manifest, OpenManifest, Template, Value};
use tessera_store::Location;

use crate::arrow_io::table_to_py;
use crate::errors::ResultExt;
use crate::runtime::{block_on, detached};
use crate::store::{cache, opts, report, PyStoreOptions};

/// A manifest opened for lookups: every record held in memory, indexed by
/// its fields.
#[pyclass(name = "Manifest", module = "tessera._tessera", frozen)]
pub struct PyManifest {
    inner: Arc<Manifest>,
    store: Option<PyStoreOptions>,
}

/// `field=value` conditions from keyword arguments; values are turned into
/// text (`str(value)`; dates as `YYYY-MM-DD`) and compared as the field's
/// type.
fn conditions(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(kw) = kwargs {
        for (k, v) in kw.iter() {
            let k: String = k.extract()?;
            let v = if let Ok(s) = v.extract::<String>() {
                s
            } else if v.is_instance_of::<pyo3::types::PyBool>() {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "field '{k}': a bool is not a manifest value"
                )));
            } else if let Ok(i) = v.extract::<i64>() {
                i.to_string()
            } else if v.hasattr("isoformat")? {
                v.call_method0("isoformat")?.extract()?
            } else {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "field '{k}': expected str, int or date, not {}",
                    v.get_type().name()?
                )));
            };
            out.push((k, v));
        }
    }
    Ok(out)
}

fn borrow(c: &[(String, String)]) -> Vec<(&str, &str)> {
    c.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    match v {
        Value::Str(s) => s.into_bound_py_any(py),
        Value::Int(i) => i.into_bound_py_any(py),
        Value::Date(s) => {
            let date = py.import("datetime")?.getattr("date")?;
            date.call_method1("fromisoformat", (s,))
        }
    }
}

#[pymethods]
impl PyManifest {
    /// Open the manifest at `url` (a tessera manifest or another tool's
    /// Parquet file with the field columns and a location column).
    #[staticmethod]
    #[pyo3(signature = (url, *, location_column=None, store=None))]
    fn open(
        py: Python<'_>,
        url: &str,
        location_column: Option<String>,
        store: Option<PyRef<'_, PyStoreOptions>>,
    ) -> PyResult<PyManifest> {
        let store = store.as_deref().cloned();
        let o = opts(store.as_ref());
        let url = url.to_string();
        let m = block_on(py, async move {
            let loc = Location::open(&url, &o).await.py()?;
            let mut open = OpenManifest::new(&loc);
            if let Some(c) = location_column {
                open = open.with_location_column(c);
            }
            open.await.py()
        })?;
        Ok(PyManifest {
            inner: Arc::new(m),
            store,
        })
    }

    /// Where the manifest was read from.
    #[getter]
    fn url(&self) -> String {
        self.inner.url().to_string()
    }

    /// The field columns, in order.
    #[getter]
    fn fields(&self) -> Vec<String> {
        self.inner.fields().iter().map(|f| f.name.clone()).collect()
    }

    /// The column holding each record's location.
    #[getter]
    fn location_column(&self) -> String {
        self.inner.location_column().to_string()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Manifest({:?}, records={}, fields={:?})",
            self.inner.url(),
            self.inner.len(),
            self.fields()
        )
    }

    /// Whether a record matches every `field=value` given.
    #[pyo3(signature = (**fields))]
    fn exists(&self, fields: Option<&Bound<'_, PyDict>>) -> PyResult<bool> {
        let c = conditions(fields)?;
        self.inner.exists(&borrow(&c)).py()
    }

    /// The location of the first matching record, or None.
    #[pyo3(signature = (**fields))]
    fn location(&self, fields: Option<&Bound<'_, PyDict>>) -> PyResult<Option<String>> {
        let c = conditions(fields)?;
        Ok(self.inner.location(&borrow(&c)).py()?.map(String::from))
    }

    /// The locations of every matching record.
    #[pyo3(signature = (**fields))]
    fn locations(&self, fields: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<String>> {
        let c = conditions(fields)?;
        Ok(self
            .inner
            .locations(&borrow(&c))
            .py()?
            .into_iter()
            .map(String::from)
            .collect())
    }

    /// How many records match.
    #[pyo3(signature = (**fields))]
    fn count(&self, fields: Option<&Bound<'_, PyDict>>) -> PyResult<usize> {
        let c = conditions(fields)?;
        self.inner.count(&borrow(&c)).py()
    }

    /// The matching records as a `pyarrow.Table` (every record with no
    /// conditions).
    #[pyo3(signature = (**fields))]
    fn records<'py>(
        &self,
        py: Python<'py>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = conditions(fields)?;
        let inner = self.inner.clone();
        let batch = detached(py, move || inner.records(&borrow(&c)).py())?;
        let schema = batch.schema();
        table_to_py(py, vec![batch], schema)
    }

    /// The distinct values of a field, sorted.
    fn unique<'py>(&self, py: Python<'py>, field: &str) -> PyResult<Bound<'py, PyAny>> {
        let values = self.inner.unique(field).py()?;
        let list = pyo3::types::PyList::empty(py);
        for v in &values {
            list.append(value_to_py(py, v)?)?;
        }
        Ok(list.into_any())
    }

    /// Download the first matching object through the local cache
    /// (`cache_dir`, else `TESSERA_CACHE` / `~/.cache/tessera`) and return
    /// its local path; a location that is a local path is returned as it is.
    #[pyo3(signature = (cache_dir=None, **fields))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        cache_dir: Option<PathBuf>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = conditions(fields)?;
        let o = opts(self.store.as_ref());
        let inner = self.inner.clone();
        let path = block_on(py, async move {
            let cache = cache(cache_dir)?;
            inner.fetch(&borrow(&c), &cache, &o).await.py()
        })?;
        py.import("pathlib")?
            .getattr("Path")?
            .call1(PyTuple::new(py, [path])?)
    }
}

/// Build a manifest from a paths file or the listing of a prefix and
/// publish it at `out`; returns the build summary.
#[pyfunction]
#[pyo3(signature = (source, out, template, *, location_column="file_path".to_string(), strict=false, store=None))]
pub fn build_manifest<'py>(
    py: Python<'py>,
    source: &str,
    out: &str,
    template: &str,
    location_column: String,
    strict: bool,
    store: Option<PyRef<'py, PyStoreOptions>>,
) -> PyResult<Bound<'py, PyAny>> {
    let template = Template::parse(template).py()?;
    let o = opts(store.as_deref());
    let (source, out) = (source.to_string(), out.to_string());
    let summary = block_on(py, async move {
        let out = Location::open(&out, &o).await.py()?;
        let src = Location::open(&source, &o).await.py()?;
        let (text, name) = tessera_manifest::read_listing(&src).await.py()?;
        BuildManifest::new(template, text)
            .with_listing_name(name)
            .with_strict(strict)
            .with_location_column(location_column)
            .write_to(&out)
            .await
            .py()
    })?;
    report(py, &summary)
}
