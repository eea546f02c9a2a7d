//! Versioned, partitioned datasets (Delta tables) of a store.

use std::str::FromStr;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use pyo3::prelude::*;
use tessera_datasets::{AsOf, Datasets, DateKey, Granularity, IdKey, Rows};
use tessera_formats::FileFormat;
use tessera_store::Location;

use crate::arrow_io::{batches_from_py, reader_to_py, table_to_py};
use crate::errors::{Raised, ResultExt};
use crate::runtime::{block_on, runtime};
use crate::store::{opts, report, size_arg, PyStoreOptions};

/// The datasets of one namespace of a store.
#[pyclass(name = "Datasets", module = "tessera._tessera", frozen)]
pub struct PyDatasets {
    inner: Datasets,
    store: Option<PyStoreOptions>,
    url: String,
}

/// How `get` and `scan` read.
struct ReadArgs {
    version: Option<String>,
    last: bool,
    as_of: Option<AsOf>,
    filter: Option<String>,
    columns: Option<Vec<String>>,
}

fn as_of_arg(v: &Bound<'_, PyAny>) -> PyResult<AsOf> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "as_of must be a version number, a datetime or a time string, not a bool",
        ));
    }
    if let Ok(n) = v.extract::<i64>() {
        return AsOf::from_str(&n.to_string()).py();
    }
    let text: String = if let Ok(s) = v.extract::<String>() {
        s
    } else if v.hasattr("isoformat")? {
        v.call_method0("isoformat")?.extract()?
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "as_of must be a version number, a datetime or a time string, not {}",
            v.get_type().name()?
        )));
    };
    AsOf::from_str(&text).py()
}

/// Reads a dataset's rows batch by batch for a `pyarrow.RecordBatchReader`;
/// each batch is awaited on the runtime.
struct RowsReader {
    rows: Rows,
    schema: SchemaRef,
    rt: std::sync::Arc<tokio::runtime::Runtime>,
}

impl Iterator for RowsReader {
    type Item = Result<RecordBatch, arrow::error::ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let rows = &mut self.rows;
        self.rt
            .block_on(rows.next())
            .map(|r| r.map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))))
    }
}

impl RecordBatchReader for RowsReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl PyDatasets {
    fn get_builder(&self, name: &str, a: ReadArgs) -> tessera_datasets::Get {
        let mut g = self.inner.get(name).with_last(a.last);
        if let Some(v) = a.version {
            g = g.with_version(v);
        }
        if let Some(at) = a.as_of {
            g = g.with_as_of(at);
        }
        if let Some(f) = a.filter {
            g = g.with_filter(f);
        }
        if let Some(c) = a.columns {
            g = g.with_columns(c);
        }
        g
    }

    fn read_args(
        version: Option<String>,
        last: bool,
        as_of: Option<Bound<'_, PyAny>>,
        filter: Option<String>,
        columns: Option<Vec<String>>,
    ) -> PyResult<ReadArgs> {
        Ok(ReadArgs {
            version,
            last,
            as_of: as_of.map(|v| as_of_arg(&v)).transpose()?,
            filter,
            columns,
        })
    }
}

#[pymethods]
impl PyDatasets {
    /// The datasets of `namespace` (default `default`) in the store at `url`.
    #[new]
    #[pyo3(signature = (url, *, namespace=None, single_writer=false, store=None))]
    fn new(
        py: Python<'_>,
        url: &str,
        namespace: Option<String>,
        single_writer: bool,
        store: Option<PyRef<'_, PyStoreOptions>>,
    ) -> PyResult<Self> {
        let store = store.as_deref().cloned();
        let o = opts(store.as_ref());
        let u = url.to_string();
        let loc = block_on(py, async move { Location::open(&u, &o).await.py() })?;
        let mut inner = Datasets::new(loc).with_single_writer(single_writer);
        if let Some(ns) = namespace {
            inner = inner.with_namespace(&ns).py()?;
        }
        Ok(PyDatasets {
            inner,
            store,
            url: url.to_string(),
        })
    }

    /// The store's URL as given.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// The namespace.
    #[getter]
    fn namespace(&self) -> String {
        self.inner.namespace().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Datasets({:?}, namespace={:?})",
            self.url,
            self.inner.namespace()
        )
    }

    /// Where a dataset's Delta table is.
    fn location(&self, name: &str) -> PyResult<String> {
        Ok(self.inner.location(name).py()?.url())
    }

    /// Load rows as a new version. `data` is Arrow data (anything with
    /// `__arrow_c_stream__` / `__arrow_c_array__`) or, with `files=True`,
    /// a list of file URLs.
    #[pyo3(signature = (name, data, *, files=false, date_key=None, id_key=None, version=None,
        keep_last=false, target_size=None, input_format=None, sources=None, memory=None))]
    #[allow(clippy::too_many_arguments)]
    fn put<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        data: Bound<'py, PyAny>,
        files: bool,
        date_key: Option<(String, String)>,
        id_key: Option<(String, u64)>,
        version: Option<String>,
        keep_last: bool,
        target_size: Option<Bound<'py, PyAny>>,
        input_format: Option<String>,
        sources: Option<Vec<String>>,
        memory: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut put = self.inner.put(name).with_keep_last(keep_last);
        if let Some(m) = memory {
            put = put.with_memory_budget(size_arg(&m, "memory")?);
        }
        if let Some((col, unit)) = date_key {
            let g = Granularity::from_str(&unit).py()?;
            put = put.with_date_key(DateKey::new(col, g));
        }
        if let Some((col, width)) = id_key {
            if width == 0 {
                return Err(Raised::invalid(format!(
                    "ID key '{col}': the width must be a positive integer, not 0"
                ))
                .into());
            }
            put = put.with_id_key(IdKey::new(col, width));
        }
        if let Some(v) = version {
            put = put.with_version(v);
        }
        if let Some(t) = target_size {
            put = put.with_target_size(size_arg(&t, "target_size")?);
        }
        if let Some(f) = input_format {
            put = put.with_input_format(FileFormat::from_extension(&f).py()?);
        }
        if let Some(s) = sources {
            put = put.with_sources(s);
        }
        let r = if files {
            let urls: Vec<String> = data.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err("files=True takes a list of paths or URLs")
            })?;
            let o = opts(self.store.as_ref());
            block_on(py, async move {
                let mut locs = Vec::with_capacity(urls.len());
                for u in &urls {
                    locs.push(Location::open(u, &o).await.py()?);
                }
                put.with_files(locs).await.py()
            })?
        } else {
            let (_, batches) = batches_from_py(py, &data)?;
            block_on(py, async move { put.with_batches(batches).await.py() })?
        };
        report(py, &r)
    }

    /// Read rows into a `pyarrow.Table`.
    #[pyo3(signature = (name, *, version=None, last=false, as_of=None, filter=None, columns=None))]
    #[allow(clippy::too_many_arguments)]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        version: Option<String>,
        last: bool,
        as_of: Option<Bound<'py, PyAny>>,
        filter: Option<String>,
        columns: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Self::read_args(version, last, as_of, filter, columns)?;
        let get = self.get_builder(name, a);
        let (schema, batches) = block_on(py, async move {
            let mut rows = get.await.py()?;
            let schema = rows.schema().clone();
            let mut out = Vec::new();
            while let Some(b) = rows.next().await {
                out.push(b.py()?);
            }
            Ok((schema, out))
        })?;
        table_to_py(py, batches, schema)
    }

    /// Read rows as a stream: a `pyarrow.RecordBatchReader`.
    #[pyo3(signature = (name, *, version=None, last=false, as_of=None, filter=None, columns=None))]
    #[allow(clippy::too_many_arguments)]
    fn scan<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        version: Option<String>,
        last: bool,
        as_of: Option<Bound<'py, PyAny>>,
        filter: Option<String>,
        columns: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Self::read_args(version, last, as_of, filter, columns)?;
        let get = self.get_builder(name, a);
        let rows = block_on(py, async move { get.await.py() })?;
        let schema = rows.schema().clone();
        let reader = RowsReader {
            rows,
            schema,
            rt: runtime()?,
        };
        reader_to_py(py, Box::new(reader))
    }

    /// The versions of a dataset, newest first.
    #[pyo3(signature = (name, *, limit=None))]
    fn history<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut h = self.inner.history(name);
        if let Some(n) = limit {
            h = h.with_limit(n);
        }
        let entries = block_on(py, async move { h.await.py() })?;
        report(py, &entries)
    }

    /// The datasets whose names start with `prefix`, with their sizes.
    #[pyo3(signature = (prefix=""))]
    fn list<'py>(&self, py: Python<'py>, prefix: &str) -> PyResult<Bound<'py, PyAny>> {
        let ds = self.inner.clone();
        let prefix = prefix.to_string();
        let infos = block_on(py, async move { ds.list(&prefix).await.py() })?;
        report(py, &infos)
    }

    /// The names of the datasets whose names start with `prefix`.
    #[pyo3(signature = (prefix=""))]
    fn names(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<String>> {
        let ds = self.inner.clone();
        let prefix = prefix.to_string();
        block_on(py, async move { ds.names(&prefix).await.py() })
    }

    /// One dataset's current version, files, bytes, rows and partitioning.
    fn info<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let ds = self.inner.clone();
        let name = name.to_string();
        let info = block_on(py, async move { ds.info(&name).await.py() })?;
        report(py, &info)
    }

    /// Whether a dataset exists.
    fn exists(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        let ds = self.inner.clone();
        let name = name.to_string();
        block_on(py, async move { ds.try_exists(&name).await.py() })
    }

    /// Delete a dataset and every object of it.
    fn remove<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let ds = self.inner.clone();
        let name = name.to_string();
        let r = block_on(py, async move { ds.remove(&name).await.py() })?;
        report(py, &r)
    }

    /// Delete the files no version newer than `retain` (seconds or a
    /// duration such as `"7d"`) needs.
    #[pyo3(signature = (name, *, retain=None, dry_run=false))]
    fn vacuum<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        retain: Option<Bound<'py, PyAny>>,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut v = self.inner.vacuum(name).with_dry_run(dry_run);
        if let Some(r) = retain {
            let d = if let Ok(secs) = r.extract::<f64>() {
                if !(secs >= 0.0 && secs.is_finite()) {
                    return Err(
                        Raised::invalid(format!("retain {secs}: must be >= 0 seconds")).into(),
                    );
                }
                std::time::Duration::from_secs_f64(secs)
            } else if let Ok(s) = r.extract::<String>() {
                tessera_store::units::parse_duration(&s)
                    .map_err(|e| PyErr::from(Raised::invalid(format!("retain '{s}': {e}"))))?
            } else if r.hasattr("total_seconds")? {
                std::time::Duration::from_secs_f64(r.call_method0("total_seconds")?.extract()?)
            } else {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "retain must be seconds, a timedelta or a duration such as '7d'",
                ));
            };
            v = v.with_retain(d);
        }
        let r = block_on(py, async move { v.await.py() })?;
        report(py, &r)
    }

    /// Rewrite each partition's small files into files of about
    /// `target_size` bytes, as a new version with the same rows.
    #[pyo3(signature = (name, *, target_size=None))]
    fn compact<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        target_size: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut c = self.inner.compact(name);
        if let Some(t) = target_size {
            c = c.with_target_size(size_arg(&t, "target_size")?);
        }
        let r = block_on(py, async move { c.await.py() })?;
        report(py, &r)
    }
}

impl PyDatasets {
    /// The library handle (for SQL).
    pub fn inner(&self) -> &Datasets {
        &self.inner
    }
}
