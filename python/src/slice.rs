//! Slicing: index an object once, plan byte-range slices, evaluate each
//! slice anywhere (slices pickle small and carry no credentials).

use std::io::Cursor;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use tessera_slice::{record_spans, AnyIndex, AnySlice, RecordFormat, Registry, Slice, Strategy};
use tessera_store::Location;

use crate::arrow_io::{schema_from_py, table_to_py};
use crate::errors::{arrow_err, Raised, ResultExt};
use crate::runtime::{block_on, detached};
use crate::store::{opts, size_arg, PyStoreOptions};

/// The text format of a slice or index, if it is one.
fn text_format(name: &str) -> Option<RecordFormat> {
    RecordFormat::from_str(name).ok()
}

/// A string field of a format's own index or slice fields.
fn detail_str(detail: &tessera_slice::Detail, key: &str) -> Option<String> {
    detail.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

async fn index_store_loc(
    index_store: Option<String>,
    o: &tessera_store::StoreOptions,
) -> PyResult<Option<Location>> {
    match index_store {
        Some(u) => Ok(Some(Location::open(&u, o).await.py()?)),
        None => Ok(None),
    }
}

/// An object's index: where each record starts (with the decoder state a
/// compressed object needs), enough to plan slices without reading data.
#[pyclass(name = "Index", module = "tessera._tessera", frozen)]
pub struct PyIndex {
    inner: Arc<AnyIndex>,
    /// Where the index was saved.
    location: String,
    store: Option<PyStoreOptions>,
}

/// A span of time: seconds (a number), a `datetime.timedelta`, or a
/// string such as `"30s"` or `"10min"`.
fn duration_arg(v: &Bound<'_, PyAny>) -> PyResult<std::time::Duration> {
    let secs: f64 = if let Ok(s) = v.extract::<String>() {
        return tessera_store::units::parse_duration(&s)
            .map_err(|e| Raised::invalid(format!("interval: {e}")).into());
    } else if let Ok(x) = v.extract::<f64>() {
        x
    } else if let Ok(x) = v
        .call_method0("total_seconds")
        .and_then(|t| t.extract::<f64>())
    {
        x
    } else {
        return Err(Raised::invalid(
            "interval: give seconds, a timedelta or a string such as '30s'",
        )
        .into());
    };
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| Raised::invalid(format!("interval: {secs} is not a span of time")).into())
}

fn strategy(
    count: Option<usize>,
    bytes: Option<Bound<'_, PyAny>>,
    records: Option<u64>,
    grid: Option<(u32, u32)>,
    level: Option<u32>,
    interval: Option<Bound<'_, PyAny>>,
) -> PyResult<Strategy> {
    if let Some(interval) = interval {
        if count.is_some()
            || bytes.is_some()
            || records.is_some()
            || grid.is_some()
            || level.is_some()
        {
            return Err(Raised::invalid("interval goes alone").into());
        }
        let d = duration_arg(&interval)?;
        if d.is_zero() {
            return Err(Raised::invalid("interval must be longer than zero").into());
        }
        return Ok(Strategy::Interval(d));
    }
    if let Some(level) = level {
        if bytes.is_some() || records.is_some() || grid.is_some() {
            return Err(Raised::invalid("level goes with count only").into());
        }
        return Ok(Strategy::Level {
            level,
            count: count.unwrap_or(1),
        });
    }
    let given = count.is_some() as u8
        + bytes.is_some() as u8
        + records.is_some() as u8
        + grid.is_some() as u8;
    if given != 1 {
        return Err(Raised::invalid(
            "give exactly one of count (number of slices), bytes (size of each), records (records in each) or grid ((columns, rows) of windows)",
        )
        .into());
    }
    if let Some((columns, rows)) = grid {
        if columns == 0 || rows == 0 {
            return Err(Raised::invalid("grid needs at least 1 column and 1 row").into());
        }
        return Ok(Strategy::Grid { columns, rows });
    }
    if let Some(n) = count {
        if n == 0 {
            return Err(Raised::invalid("count must be at least 1").into());
        }
        return Ok(Strategy::Count(n));
    }
    if let Some(b) = bytes {
        let n = size_arg(&b, "bytes")?;
        if n == 0 {
            return Err(Raised::invalid("bytes must be at least 1").into());
        }
        return Ok(Strategy::Bytes(n));
    }
    match records {
        Some(0) => Err(Raised::invalid("records must be at least 1").into()),
        Some(n) => Ok(Strategy::Records(n)),
        None => unreachable!("one strategy is given"),
    }
}

fn slices_of(
    index: &AnyIndex,
    s: Strategy,
    store: &Option<PyStoreOptions>,
) -> PyResult<Vec<PySlice>> {
    let plan = Registry::builtin().plan(index, s).py()?;
    plan.into_iter()
        .map(|slice| PySlice::new(slice, store.as_ref().map(PyStoreOptions::shareable)))
        .collect()
}

#[pymethods]
impl PyIndex {
    /// The object indexed.
    #[getter]
    fn url(&self) -> String {
        self.inner.url.clone()
    }
    /// Where the index is stored.
    #[getter]
    fn location(&self) -> String {
        self.location.clone()
    }
    /// The format (`csv`, `fastq`, `laz`, `cog`, …).
    #[getter]
    fn format(&self) -> String {
        self.inner.format.clone()
    }
    /// The object's compression (`none`, `gzip`, `bgzf`) for the text
    /// formats; `None` for the others.
    #[getter]
    fn compression(&self) -> Option<String> {
        detail_str(&self.inner.detail, "compression")
    }
    /// Records in the object (text: header excluded; LAS/LAZ: points;
    /// COG: tiles of the full-resolution image).
    #[getter]
    fn records(&self) -> u64 {
        self.inner.records
    }
    /// The object's size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size
    }
    /// The uncompressed size in bytes (text formats; `None` for others).
    #[getter]
    fn data_size(&self) -> Option<u64> {
        self.inner.detail.get("data_size").and_then(|v| v.as_u64())
    }
    /// Checkpoints (possible slice starts) in the index (text formats; `None` for others).
    #[getter]
    fn checkpoints(&self) -> Option<usize> {
        self.inner
            .detail
            .get("checkpoints")
            .and_then(|v| v.as_array())
            .map(Vec::len)
    }

    /// Plan slices: exactly one of `count` (about this many slices of even
    /// size), `bytes` (slices of about this many stored bytes), `records`
    /// (this many records each) or `grid` (COG: `(columns, rows)` of
    /// tile-aligned windows); `level` (COG: an overview level, 0 the full
    /// resolution) cuts that level into `count` windows; `interval`
    /// (MeasurementSets: seconds, a `timedelta` or a string such as
    /// `"10min"`) makes slices of whole timestamps spanning less than that.
    /// A MeasurementSet's slices never split a timestamp, whatever the
    /// strategy.
    #[pyo3(signature = (*, count=None, bytes=None, records=None, grid=None, level=None, interval=None))]
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        count: Option<usize>,
        bytes: Option<Bound<'_, PyAny>>,
        records: Option<u64>,
        grid: Option<(u32, u32)>,
        level: Option<u32>,
        interval: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<PySlice>> {
        slices_of(
            &self.inner,
            strategy(count, bytes, records, grid, level, interval)?,
            &self.store,
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "Index({:?}, format={}, records={}, size={})",
            self.inner.url, self.inner.format, self.inner.records, self.inner.size
        )
    }
}

/// Index an object in one pass and save the index beside it (or under
/// `index_store`).
#[pyfunction]
#[pyo3(signature = (url, format=None, *, spacing=None, header=true, spatial=false, index_store=None, store=None))]
#[allow(clippy::too_many_arguments)]
pub fn index(
    py: Python<'_>,
    url: &str,
    format: Option<&str>,
    spacing: Option<Bound<'_, PyAny>>,
    header: bool,
    spatial: bool,
    index_store: Option<String>,
    store: Option<PyRef<'_, PyStoreOptions>>,
) -> PyResult<PyIndex> {
    let store = store.as_deref().cloned();
    let o = opts(store.as_ref());
    let format = format.map(str::to_string);
    let spacing = match spacing {
        Some(s) => match size_arg(&s, "spacing")? {
            0 => return Err(Raised::invalid("spacing must be at least 1 byte").into()),
            n => Some(n),
        },
        None => None,
    };
    let url = url.to_string();
    let (index, location) = block_on(py, async move {
        let object = Location::open(&url, &o).await.py()?;
        let registry = Registry::builtin();
        let mut build = registry
            .index(&object)
            .with_header(header)
            .with_spatial(spatial);
        if let Some(f) = format {
            build = build.with_format(f);
        }
        if let Some(s) = spacing {
            build = build.with_spacing(s);
        }
        let index = build.await.py()?;
        let istore = index_store_loc(index_store, &o).await?;
        let at = AnyIndex::location_for(&object, istore.as_ref()).py()?;
        index.save(&at).await.py()?;
        Ok((index, at.url()))
    })?;
    Ok(PyIndex {
        inner: Arc::new(index),
        location,
        store,
    })
}

/// Open the saved index of an object (refusing one older than the object).
#[pyfunction]
#[pyo3(signature = (url, *, index_store=None, store=None))]
pub fn open_index(
    py: Python<'_>,
    url: &str,
    index_store: Option<String>,
    store: Option<PyRef<'_, PyStoreOptions>>,
) -> PyResult<PyIndex> {
    let store = store.as_deref().cloned();
    let o = opts(store.as_ref());
    let url = url.to_string();
    let (index, location) = block_on(py, async move {
        let object = Location::open(&url, &o).await.py()?;
        let istore = index_store_loc(index_store, &o).await?;
        let at = AnyIndex::location_for(&object, istore.as_ref()).py()?;
        let index = Registry::builtin()
            .open_index(&object, istore.as_ref())
            .await
            .py()?;
        Ok((index, at.url()))
    })?;
    Ok(PyIndex {
        inner: Arc::new(index),
        location,
        store,
    })
}

/// Plan slices of an indexed object (see `Index.plan`).
#[pyfunction]
#[pyo3(signature = (url, *, count=None, bytes=None, records=None, grid=None, level=None, interval=None, index_store=None, store=None))]
#[allow(clippy::too_many_arguments)]
pub fn plan(
    py: Python<'_>,
    url: &str,
    count: Option<usize>,
    bytes: Option<Bound<'_, PyAny>>,
    records: Option<u64>,
    grid: Option<(u32, u32)>,
    level: Option<u32>,
    interval: Option<Bound<'_, PyAny>>,
    index_store: Option<String>,
    store: Option<PyRef<'_, PyStoreOptions>>,
) -> PyResult<Vec<PySlice>> {
    let s = strategy(count, bytes, records, grid, level, interval)?;
    let idx = open_index(py, url, index_store, store)?;
    slices_of(&idx.inner, s, &idx.store)
}

/// One slice of an object: its byte ranges and decoding state. Evaluate it
/// in any process with `fetch()`, `records()` or `to_arrow()`; the store
/// credentials are that process's own.
#[pyclass(name = "Slice", module = "tessera._tessera", frozen)]
pub struct PySlice {
    inner: Arc<AnySlice>,
    /// The text formats' own view of the slice (byte ranges, decoding).
    text: Option<Arc<Slice>>,
    store: Option<PyStoreOptions>,
}

impl PySlice {
    fn new(inner: AnySlice, store: Option<PyStoreOptions>) -> PyResult<PySlice> {
        let text = match text_format(&inner.format) {
            Some(_) => Some(Arc::new(Slice::from_any(&inner).py()?)),
            None => None,
        };
        Ok(PySlice {
            inner: Arc::new(inner),
            text,
            store,
        })
    }

    fn fetch_bytes(&self, py: Python<'_>, store: Option<&PyStoreOptions>) -> PyResult<Vec<u8>> {
        let o = opts(store.or(self.store.as_ref()));
        let slice = self.inner.clone();
        block_on(py, async move {
            Registry::builtin().fetch_from_url(&slice, &o).await.py()
        })
    }

    /// The text format's view, or an error naming what needs one.
    fn text(&self, what: &str) -> PyResult<(&Slice, RecordFormat)> {
        match (&self.text, text_format(&self.inner.format)) {
            (Some(s), Some(f)) => Ok((s, f)),
            _ => Err(Raised::invalid(format!(
                "{}: {what} reads text formats, not {}",
                self.inner.url, self.inner.format
            ))
            .into()),
        }
    }
}

#[pymethods]
impl PySlice {
    /// The object.
    #[getter]
    fn url(&self) -> String {
        self.inner.url.clone()
    }
    /// This slice's number (0-based).
    #[getter]
    fn number(&self) -> usize {
        self.inner.slice
    }
    /// How many slices the plan has.
    #[getter]
    fn slices(&self) -> usize {
        self.inner.slices
    }
    /// The format (`csv`, `fastq`, `laz`, `cog`, …).
    #[getter]
    fn format(&self) -> String {
        self.inner.format.clone()
    }
    /// The object's compression (text formats; `None` for others).
    #[getter]
    fn compression(&self) -> Option<&'static str> {
        self.text.as_ref().map(|s| s.compression.name())
    }
    /// Number of the slice's first record in the object (0-based).
    #[getter]
    fn first_record(&self) -> u64 {
        self.inner.first_record
    }
    /// Records that start in this slice.
    #[getter]
    fn record_count(&self) -> u64 {
        self.inner.record_count
    }
    /// The object's byte ranges read, as `(start, end)` half-open pairs
    /// (text formats; `None` for others).
    #[getter]
    fn ranges(&self) -> Option<Vec<(u64, u64)>> {
        self.text
            .as_ref()
            .map(|s| s.ranges.iter().map(|r| (r.start, r.end)).collect())
    }
    /// The format's own fields of the descriptor, as a dict (a COG
    /// window's `window` = `[x, y, width, height]`, a LAZ slice's chunks, …).
    #[getter]
    fn detail<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::store::json_to_py(py, &serde_json::Value::Object(self.inner.detail.clone()))
    }

    /// The slice's data: for text formats the header (if the format has
    /// one), then its records, uncompressed; for LAS/LAZ a standalone
    /// LAS/LAZ file; for a COG a standalone GeoTIFF of its window; for
    /// imzML a tar stream of the slice's `.imzML` and `.ibd`, for a
    /// MeasurementSet a tar stream of a standalone MeasurementSet folder
    /// (unpack either with `tarfile`, or write the files with
    /// `fetch_to(folder)`). Store settings:
    /// `store=` or the store keywords, else those given when planning (never
    /// credentials) and the environment's.
    #[pyo3(signature = (*, store=None, **kw))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        store: Option<PyRef<'py, PyStoreOptions>>,
        kw: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let store = PyStoreOptions::from_args(store.as_deref(), kw)?;
        // When the descriptor fixes the size, the data is written straight
        // into the `bytes` object (one copy of a slice in memory, not two).
        if let Some((text, n)) = self.text.as_ref().and_then(|t| {
            let n = usize::try_from(t.output_size()?).ok()?;
            Some((t.clone(), n))
        }) {
            let o = opts(store.as_ref().or(self.store.as_ref()));
            let slice = text;
            return PyBytes::new_with(py, n, |buf| {
                block_on(py, async move {
                    let mut w: &mut [u8] = buf;
                    let written = slice.fetch_from_url(&o).write_to(&mut w).await.py()?;
                    if written as usize != n || !w.is_empty() {
                        return Err(Raised::new(
                            crate::errors::Class::Internal,
                            "Internal",
                            format!(
                                "{} slice {}: fetched {written} bytes, the descriptor says {n}",
                                slice.url, slice.slice
                            ),
                        )
                        .into());
                    }
                    Ok(())
                })
            });
        }
        let data = self.fetch_bytes(py, store.as_ref())?;
        Ok(PyBytes::new(py, &data))
    }

    /// Write the files of an imzML or MeasurementSet slice into the folder
    /// `folder` (created if missing) and return their paths: the slice's
    /// `.imzML` and `.ibd` pair, or its MeasurementSet folder
    /// `NAME.sliceK.ms`. The files are written as they are made, with no
    /// tar stream between. Store settings as for `fetch()`.
    #[pyo3(signature = (folder, *, store=None, **kw))]
    fn fetch_to<'py>(
        &self,
        py: Python<'py>,
        folder: std::path::PathBuf,
        store: Option<PyRef<'py, PyStoreOptions>>,
        kw: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Vec<String>> {
        let store = PyStoreOptions::from_args(store.as_deref(), kw)?;
        let o = opts(store.as_ref().or(self.store.as_ref()));
        let slice = self.inner.clone();
        block_on(py, async move {
            let written = Registry::builtin()
                .fetch_from_url(&slice, &o)
                .write_into(&folder)
                .await
                .py()?;
            Ok(written
                .into_iter()
                .map(|p| p.display().to_string())
                .collect())
        })
    }

    /// The slice's records, each as `bytes` (line terminators included;
    /// the header is not a record).
    #[pyo3(signature = (*, store=None, **kw))]
    fn records<'py>(
        &self,
        py: Python<'py>,
        store: Option<PyRef<'py, PyStoreOptions>>,
        kw: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = PyStoreOptions::from_args(store.as_deref(), kw)?;
        let (_, format) = self.text("records()")?;
        let data = self.fetch_bytes(py, store.as_ref())?;
        let name = format!("{} (slice {})", self.inner.url, self.inner.slice);
        let (data, spans) = detached(py, move || {
            let spans = record_spans(format, &data, &name).py()?;
            Ok((data, spans))
        })?;
        let list = PyList::empty(py);
        for s in spans {
            list.append(PyBytes::new(py, &data[s]))?;
        }
        list.call_method0("__iter__")
    }

    /// The slice's records as a `pyarrow.Table`: CSV, TSV and JSON Lines
    /// rows (column types inferred from the slice unless `schema` is given:
    /// give it when every slice must have the same types), or a point
    /// cloud's points (`x`, `y`, `z` scaled, intensity, returns,
    /// classification, scan angle, user data, point source, GPS time), or
    /// an imzML slice's spectra (`x`, `y`, `z`, `mz` and `intensity` lists).
    #[pyo3(signature = (*, schema=None, store=None, **kw))]
    fn to_arrow<'py>(
        &self,
        py: Python<'py>,
        schema: Option<Bound<'py, PyAny>>,
        store: Option<PyRef<'py, PyStoreOptions>>,
        kw: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = PyStoreOptions::from_args(store.as_deref(), kw)?;
        if matches!(self.inner.format.as_str(), "las" | "laz" | "copc") {
            if schema.is_some() {
                return Err(Raised::invalid("a point cloud slice has a fixed schema").into());
            }
            let data = self.fetch_bytes(py, store.as_ref())?;
            let name = format!("{} (slice {})", self.inner.url, self.inner.slice);
            let batch = detached(py, move || {
                tessera_slice::points_to_arrow(&data, &name).py()
            })?;
            return table_to_py(py, vec![batch.clone()], batch.schema());
        }
        let (_, format) = self.text("to_arrow")?;
        if !matches!(
            format,
            RecordFormat::Csv | RecordFormat::Tsv | RecordFormat::Jsonl
        ) {
            return Err(Raised::invalid(format!(
                "{}: to_arrow reads CSV, TSV and JSON Lines, not {}",
                self.inner.url,
                format.name()
            ))
            .into());
        }
        let schema = schema.map(|s| schema_from_py(&s)).transpose()?;
        let data = self.fetch_bytes(py, store.as_ref())?;
        let (schema, batches) = detached(py, move || decode(format, data, schema))?;
        table_to_py(py, batches, schema)
    }

    /// The slice descriptor as JSON (the same as `tessera slice plan` writes).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&*self.inner).map_err(|e| {
            Raised::new(crate::errors::Class::Internal, "Internal", e.to_string()).into()
        })
    }

    /// A slice from its JSON descriptor.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<PySlice> {
        Self::_from_state(text, None)
    }

    #[staticmethod]
    #[pyo3(signature = (text, store=None))]
    fn _from_state(text: &str, store: Option<&str>) -> PyResult<PySlice> {
        let slice: AnySlice = serde_json::from_str(text).map_err(|e| {
            Raised::new(
                crate::errors::Class::InvalidInput,
                "InvalidSlice",
                format!("slice descriptor: {e}"),
            )
        })?;
        slice.validate().py()?;
        let store = match store {
            Some(s) => Some(PyStoreOptions::from_json(
                &serde_json::from_str(s)
                    .map_err(|e| Raised::invalid(format!("slice store options: {e}")))?,
            )),
            None => None,
        };
        PySlice::new(slice, store)
    }

    /// Pickled as its descriptor and the non-secret store settings
    /// (endpoint, region, profile name): never credentials.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let me = slf.get();
        let ctor = slf.get_type().getattr("_from_state")?;
        let store = me.store.as_ref().map(|s| s.to_json().to_string());
        let args = (me.to_json()?, store).into_pyobject(py)?;
        PyTuple::new(py, [ctor, args.into_any()])
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<PySlice>() {
            Ok(o) => *o.get().inner == *self.inner,
            Err(_) => false,
        }
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        let Some(t) = &self.text else {
            return format!(
                "Slice({}/{} of {:?}: {}, records {}..{})",
                s.slice,
                s.slices,
                s.url,
                s.format,
                s.first_record,
                s.first_record + s.record_count
            );
        };
        let bytes: u64 = t.ranges.iter().map(|r| r.end - r.start).sum();
        format!(
            "Slice({}/{} of {:?}: {} {}, records {}..{}, {} bytes in {} range{})",
            s.slice,
            s.slices,
            s.url,
            s.format,
            t.compression.name(),
            s.first_record,
            s.first_record + s.record_count,
            bytes,
            t.ranges.len(),
            if t.ranges.len() == 1 { "" } else { "s" }
        )
    }
}

/// CSV, TSV or JSON Lines bytes as record batches.
fn decode(
    format: RecordFormat,
    data: Vec<u8>,
    schema: Option<SchemaRef>,
) -> PyResult<(SchemaRef, Vec<arrow::record_batch::RecordBatch>)> {
    let batches = match format {
        RecordFormat::Jsonl => {
            let schema = match schema {
                Some(s) => s,
                None => {
                    let (s, _) = arrow::json::reader::infer_json_schema_from_seekable(
                        Cursor::new(&data),
                        None,
                    )
                    .map_err(arrow_err)?;
                    Arc::new(s)
                }
            };
            let reader = arrow::json::ReaderBuilder::new(schema.clone())
                .build(Cursor::new(data))
                .map_err(arrow_err)?;
            let batches = reader.collect::<Result<Vec<_>, _>>().map_err(arrow_err)?;
            return Ok((schema, batches));
        }
        _ => {
            let mut fmt = arrow::csv::reader::Format::default().with_header(true);
            if format == RecordFormat::Tsv {
                fmt = fmt.with_delimiter(b'\t');
            }
            let schema = match schema {
                Some(s) => s,
                None => {
                    let (s, _) = fmt
                        .infer_schema(Cursor::new(&data), None)
                        .map_err(arrow_err)?;
                    Arc::new(s)
                }
            };
            let reader = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_format(fmt)
                .build(Cursor::new(data))
                .map_err(arrow_err)?;
            (
                schema,
                reader.collect::<Result<Vec<_>, _>>().map_err(arrow_err)?,
            )
        }
    };
    Ok(batches)
}
