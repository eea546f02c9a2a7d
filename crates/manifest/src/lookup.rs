//! Opening a manifest and looking things up in it without scanning.
//!
//! When a manifest is opened, its row groups are decoded in parallel and
//! every field becomes an in-memory column of order-preserving 64-bit keys
//! (string fields through a sorted dictionary with a hash map from value to
//! code). Rows are kept sorted by the fields in template order (manifests
//! tessera writes are already sorted; others are sorted on open), so:
//!
//! * a query that fixes a leading run of fields (`gene_id`, or `gene_id` and
//!   `tissue_id`) is a hash lookup per string value plus a binary search per
//!   field: well under a microsecond on ten million rows;
//! * a query on other fields (`tissue_id` alone) uses a secondary index of
//!   that field (value → sorted positions), built the first time such a
//!   query is made and kept.

use std::future::IntoFuture;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, DictionaryArray, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{DataType, Field as ArrowField, Int32Type, Schema};
use bytes::Bytes;
use futures::future::BoxFuture;
use hashbrown::HashMap;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use rayon::prelude::*;
use tessera_store::{Cache, Location, StoreOptions};

use crate::error::{Error, Result};
use crate::template::{format_date, Field, FieldType};
use crate::{ManifestMeta, DEFAULT_LOCATION_COLUMN, META_KEY};

/// A typed field value, as returned by [`Manifest::unique`] and in records.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A string field value.
    Str(String),
    /// An integer field value.
    Int(i64),
    /// A date field value, formatted `YYYY-MM-DD`.
    Date(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) | Value::Date(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
        }
    }
}

enum IndexCol {
    Str {
        /// Sorted distinct values; a row's code is its value's rank.
        dict: Vec<Box<str>>,
        map: HashMap<Box<str>, u32>,
        codes: Vec<u32>,
    },
    Num(Vec<i64>),
}

impl IndexCol {
    #[inline]
    fn key(&self, row: usize) -> u64 {
        match self {
            IndexCol::Str { codes, .. } => codes[row] as u64,
            IndexCol::Num(v) => (v[row] as u64) ^ (1 << 63),
        }
    }
}

/// A query whose field names and values have been checked and typed.
///
/// Prepare once with [`Manifest::prepare`] and reuse it to look up without
/// parsing (the figure the benchmark reports as "prepared").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// (field index, key) pairs; `None` when the value cannot occur (an
    /// unknown string), which makes the query match nothing.
    conds: Option<Vec<(usize, u64)>>,
}

/// An opened manifest. See the [module documentation](self) for how lookups work.
pub struct Manifest {
    url: String,
    fields: Vec<Field>,
    location_column: String,
    cols: Vec<IndexCol>,
    locations: Vec<StringArray>,
    starts: Vec<usize>,
    /// Sorted position → row, when the file was not sorted by the fields.
    order: Option<Vec<u32>>,
    rows: usize,
    secondary: Vec<OnceLock<HashMap<u64, Vec<u32>>>>,
    /// For a string leading field: `starts[c]..starts[c + 1]` are the sorted
    /// positions whose leading value has code `c` (rows are sorted by it), so
    /// the first narrowing step is two array reads instead of a binary search.
    lead_starts: Option<Vec<u32>>,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("url", &self.url)
            .field("rows", &self.rows)
            .field("fields", &self.fields)
            .finish()
    }
}

fn field_type_of(dt: &DataType) -> Option<FieldType> {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(FieldType::String),
        DataType::Dictionary(_, v)
            if matches!(
                **v,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) =>
        {
            Some(FieldType::String)
        }
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            Some(FieldType::Int32)
        }
        DataType::Int64 | DataType::UInt32 => Some(FieldType::Int64),
        DataType::Date32 => Some(FieldType::Date),
        _ => None,
    }
}

/// Open the manifest at a location (local path, `s3://…`, …), on the
/// caller's runtime (decoding runs on a blocking thread). Awaiting it gives
/// the [`Manifest`].
///
/// The location column is taken from the file's tessera metadata, or is
/// `file_path` for manifests written by other tools (then every other
/// string, integer or date column is a field), unless it is named with
/// [`OpenManifest::with_location_column`].
#[derive(Clone)]
#[must_use = "a manifest is opened only when the operation is awaited"]
pub struct OpenManifest {
    location: Location,
    location_column: Option<String>,
}

impl OpenManifest {
    /// Open the manifest at `location`.
    pub fn new(location: &Location) -> Self {
        OpenManifest {
            location: location.clone(),
            location_column: None,
        }
    }

    /// Name the column holding object locations, instead of the one the
    /// file's metadata names (or `file_path`).
    pub fn with_location_column(mut self, name: impl Into<String>) -> Self {
        self.location_column = Some(name.into());
        self
    }
}

impl IntoFuture for OpenManifest {
    type Output = Result<Manifest>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let data = self.location.read().await?;
            let url = self.location.url();
            let col = self.location_column;
            tokio::task::spawn_blocking(move || Manifest::load(&url, data, col.as_deref()))
                .await
                .map_err(|e| Error::Internal(format!("the manifest load task failed: {e}")))?
        })
    }
}

/// Load a manifest from the bytes of its Parquet file; [`run`](Self::run)
/// gives the [`Manifest`]. As [`OpenManifest`], without a store.
#[must_use = "a manifest is loaded only when the operation is run"]
pub struct LoadManifest {
    url: String,
    data: Bytes,
    location_column: Option<String>,
}

impl LoadManifest {
    /// Load the manifest in `data`; `url` names it in messages.
    pub fn new(url: impl Into<String>, data: impl Into<Bytes>) -> Self {
        LoadManifest {
            url: url.into(),
            data: data.into(),
            location_column: None,
        }
    }

    /// Name the column holding object locations, instead of the one the
    /// file's metadata names (or `file_path`).
    pub fn with_location_column(mut self, name: impl Into<String>) -> Self {
        self.location_column = Some(name.into());
        self
    }

    /// Decode the manifest and build its index.
    pub fn run(self) -> Result<Manifest> {
        Manifest::load(&self.url, self.data, self.location_column.as_deref())
    }
}

impl Manifest {
    /// Open a manifest from any location (local path, `s3://…`, …): a
    /// shortcut for [`OpenManifest`] with its defaults.
    pub async fn open(url: &str, opts: &StoreOptions) -> Result<Manifest> {
        let loc = Location::open(url, opts).await?;
        OpenManifest::new(&loc).await
    }

    /// Load a manifest from the bytes of its Parquet file: a shortcut for
    /// [`LoadManifest`] with its defaults.
    pub fn from_bytes(url: &str, data: Bytes) -> Result<Manifest> {
        LoadManifest::new(url, data).run()
    }

    fn load(url: &str, data: Bytes, location_column: Option<&str>) -> Result<Manifest> {
        let perr = |e| Error::Parquet {
            url: url.to_string(),
            source: e,
        };
        let meta =
            ArrowReaderMetadata::load(&data, ArrowReaderOptions::new()).map_err(|e| match e {
                parquet::errors::ParquetError::General(_)
                | parquet::errors::ParquetError::EOF(_) => Error::NotAManifest {
                    url: url.to_string(),
                    reason: format!("not a Parquet file ({e})"),
                },
                e => perr(e),
            })?;
        let schema = meta.schema().clone();
        let stored: Option<ManifestMeta> = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == META_KEY))
            .and_then(|k| k.value.as_deref())
            .and_then(|v| serde_json::from_str(v).ok());
        let available = || {
            schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let location_column = location_column
            .map(String::from)
            .or_else(|| stored.as_ref().map(|m| m.location_column.clone()))
            .unwrap_or_else(|| DEFAULT_LOCATION_COLUMN.to_string());
        let loc_idx = schema
            .index_of(&location_column)
            .map_err(|_| Error::MissingColumn {
                url: url.to_string(),
                column: location_column.clone(),
                available: available(),
            })?;
        let mut fields: Vec<(usize, Field)> = Vec::new();
        match &stored {
            Some(m) => {
                for (name, ty) in &m.fields {
                    let idx = schema.index_of(name).map_err(|_| Error::MissingColumn {
                        url: url.to_string(),
                        column: name.clone(),
                        available: available(),
                    })?;
                    let ty = FieldType::from_name(ty).ok_or_else(|| Error::NotAManifest {
                        url: url.to_string(),
                        reason: format!("unknown field type '{ty}' in its metadata"),
                    })?;
                    fields.push((
                        idx,
                        Field {
                            name: name.clone(),
                            ty,
                        },
                    ));
                }
            }
            None => {
                for (idx, f) in schema.fields().iter().enumerate() {
                    if idx == loc_idx {
                        continue;
                    }
                    if let Some(ty) = field_type_of(f.data_type()) {
                        fields.push((
                            idx,
                            Field {
                                name: f.name().clone(),
                                ty,
                            },
                        ));
                    }
                }
            }
        }
        if fields.is_empty() {
            return Err(Error::NotAManifest {
                url: url.to_string(),
                reason: format!(
                    "it has no field columns besides '{location_column}' (it has: {})",
                    available()
                ),
            });
        }
        for (idx, f) in &fields {
            let dt = schema.field(*idx).data_type();
            if field_type_of(dt) != Some(f.ty)
                && !(f.ty == FieldType::Int64 && field_type_of(dt) == Some(FieldType::Int32))
            {
                return Err(Error::SchemaMismatch {
                    url: url.to_string(),
                    column: f.name.clone(),
                    expected: format!("{} for the field", f.ty),
                    found: dt.to_string(),
                });
            }
        }
        if !matches!(
            schema.field(loc_idx).data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _)
        ) {
            return Err(Error::SchemaMismatch {
                url: url.to_string(),
                column: location_column,
                expected: "strings for the location column".into(),
                found: schema.field(loc_idx).data_type().to_string(),
            });
        }

        // Decode row groups in parallel, only the columns we need.
        let mut wanted: Vec<usize> = fields.iter().map(|f| f.0).collect();
        wanted.push(loc_idx);
        let mask = ProjectionMask::roots(
            meta.metadata().file_metadata().schema_descr(),
            wanted.clone(),
        );
        let groups = meta.metadata().num_row_groups();
        let decoded: Vec<Result<Vec<RecordBatch>>> = (0..groups)
            .into_par_iter()
            .map(|g| {
                let rows = meta.metadata().row_group(g).num_rows() as usize;
                let reader =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(data.clone(), meta.clone())
                        .with_row_groups(vec![g])
                        .with_projection(mask.clone())
                        .with_batch_size(rows.clamp(1, 1 << 20))
                        .build()
                        .map_err(perr)?;
                reader
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(Error::Arrow)
            })
            .collect();
        let mut batches = Vec::new();
        for d in decoded {
            batches.extend(d?);
        }
        drop(data);
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let name_of = |idx: usize| schema.field(idx).name().clone();

        let mut cols = Vec::with_capacity(fields.len());
        for (idx, f) in &fields {
            let name = name_of(*idx);
            let arrays: Vec<&ArrayRef> = batches
                .iter()
                .map(|b| b.column_by_name(&name).expect("projected column present"))
                .collect();
            if arrays.iter().any(|a| a.null_count() > 0) {
                return Err(Error::NotAManifest {
                    url: url.to_string(),
                    reason: format!("field column '{name}' has nulls"),
                });
            }
            cols.push(match f.ty {
                FieldType::String => build_str_col(&arrays, rows)?,
                _ => build_num_col(&arrays, rows)?,
            });
        }
        let loc_name = name_of(loc_idx);
        let mut locations = Vec::with_capacity(batches.len());
        let mut starts = Vec::with_capacity(batches.len());
        let mut acc = 0;
        for b in &batches {
            let a = b
                .column_by_name(&loc_name)
                .expect("projected column present");
            let s = arrow::compute::cast(a, &DataType::Utf8)?;
            if s.null_count() > 0 {
                return Err(Error::NotAManifest {
                    url: url.to_string(),
                    reason: format!("column '{location_column}' has empty (null) locations"),
                });
            }
            starts.push(acc);
            acc += s.len();
            locations.push(s.as_string::<i32>().clone());
        }
        let n_fields = fields.len();
        let mut m = Manifest {
            url: url.to_string(),
            fields: fields.into_iter().map(|f| f.1).collect(),
            location_column,
            cols,
            locations,
            starts,
            order: None,
            rows,
            secondary: (0..n_fields).map(|_| OnceLock::new()).collect(),
            lead_starts: None,
        };
        m.ensure_sorted();
        m.build_lead_starts();
        Ok(m)
    }

    fn cmp_rows(&self, a: usize, b: usize) -> std::cmp::Ordering {
        for c in &self.cols {
            let o = c.key(a).cmp(&c.key(b));
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    }

    fn ensure_sorted(&mut self) {
        let sorted = (1..self.rows)
            .into_par_iter()
            .all(|i| self.cmp_rows(i - 1, i).is_le());
        if !sorted {
            let mut order: Vec<u32> = (0..self.rows as u32).collect();
            order.par_sort_by(|&a, &b| self.cmp_rows(a as usize, b as usize));
            self.order = Some(order);
        }
    }

    fn build_lead_starts(&mut self) {
        let IndexCol::Str { dict, codes, .. } = &self.cols[0] else {
            return;
        };
        let mut starts = vec![0u32; dict.len() + 1];
        for pos in 0..self.rows {
            starts[codes[self.row(pos)] as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        self.lead_starts = Some(starts);
    }

    #[inline]
    fn row(&self, pos: usize) -> usize {
        match &self.order {
            Some(o) => o[pos] as usize,
            None => pos,
        }
    }

    /// Where the manifest was read from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the manifest has no records.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The fields, in sort order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The name of the location column.
    pub fn location_column(&self) -> &str {
        &self.location_column
    }

    fn field_index(&self, name: &str) -> Result<usize> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| Error::UnknownField {
                field: name.to_string(),
                available: self
                    .fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Check and type a query: `[("gene_id", "GENE1"), ("tissue_id", "45")]`.
    ///
    /// Values are compared by the field's type: `"45"` and `"045"` both
    /// match an `int32` 45. A value that does not parse as its field's type
    /// is an [`Error::InvalidValue`]; an unknown field an [`Error::UnknownField`].
    pub fn prepare(&self, conditions: &[(&str, &str)]) -> Result<Query> {
        let mut conds: Vec<(usize, u64)> = Vec::with_capacity(conditions.len());
        let mut impossible = false;
        for (name, value) in conditions {
            let fi = self.field_index(name)?;
            let f = &self.fields[fi];
            let key = match &self.cols[fi] {
                IndexCol::Str { map, .. } => match map.get(*value) {
                    Some(&c) => c as u64,
                    None => {
                        impossible = true;
                        continue;
                    }
                },
                IndexCol::Num(_) => {
                    let v =
                        f.ty.parse_num(value.trim())
                            .ok_or_else(|| Error::InvalidValue {
                                field: f.name.clone(),
                                value: value.to_string(),
                                expected: match f.ty {
                                    FieldType::Int32 => "a 32-bit integer".into(),
                                    FieldType::Int64 => "a 64-bit integer".into(),
                                    FieldType::Date => "a date YYYY-MM-DD".into(),
                                    FieldType::String => "text".into(),
                                },
                            })?;
                    (v as u64) ^ (1 << 63)
                }
            };
            if let Some(&(_, k)) = conds.iter().find(|c| c.0 == fi) {
                if k != key {
                    impossible = true;
                }
                continue;
            }
            conds.push((fi, key));
        }
        if impossible {
            return Ok(Query { conds: None });
        }
        conds.sort_unstable();
        Ok(Query { conds: Some(conds) })
    }

    /// Narrow `[lo, hi)` (sorted positions, all equal on earlier fields) to field `fi` == `key`.
    #[inline]
    fn narrow(&self, fi: usize, key: u64, lo: usize, hi: usize) -> (usize, usize) {
        let col = &self.cols[fi];
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            if col.key(self.row(mid)) < key {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        let start = a;
        let mut b = hi;
        while a < b {
            let mid = a + (b - a) / 2;
            if col.key(self.row(mid)) <= key {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        (start, a)
    }

    fn secondary(&self, fi: usize) -> &HashMap<u64, Vec<u32>> {
        self.secondary[fi].get_or_init(|| {
            let col = &self.cols[fi];
            let mut m: HashMap<u64, Vec<u32>> = HashMap::new();
            for pos in 0..self.rows {
                m.entry(col.key(self.row(pos)))
                    .or_default()
                    .push(pos as u32);
            }
            m
        })
    }

    /// Sorted positions matching a prepared query.
    fn positions(&self, q: &Query) -> Positions<'_> {
        let Some(conds) = &q.conds else {
            return Positions::Range(0..0);
        };
        let (mut lo, mut hi) = (0, self.rows);
        let mut k = 0;
        if let (Some(starts), Some(&(0, code))) = (&self.lead_starts, conds.first()) {
            lo = starts[code as usize] as usize;
            hi = starts[code as usize + 1] as usize;
            k = 1;
        }
        while k < conds.len() && conds[k].0 == k {
            (lo, hi) = self.narrow(k, conds[k].1, lo, hi);
            k += 1;
        }
        let rest = &conds[k..];
        if rest.is_empty() || lo == hi {
            return Positions::Range(lo..hi);
        }
        let check = |pos: usize| {
            let r = self.row(pos);
            rest.iter().all(|&(fi, key)| self.cols[fi].key(r) == key)
        };
        if hi - lo <= 256 {
            return Positions::List((lo..hi).filter(|&p| check(p)).map(|p| p as u32).collect());
        }
        let (fi, key) = rest[0];
        let Some(list) = self.secondary(fi).get(&key) else {
            return Positions::Range(0..0);
        };
        let a = list.partition_point(|&p| (p as usize) < lo);
        let b = list.partition_point(|&p| (p as usize) < hi);
        let slice = &list[a..b];
        if rest.len() == 1 {
            Positions::Slice(slice)
        } else {
            Positions::List(
                slice
                    .iter()
                    .copied()
                    .filter(|&p| check(p as usize))
                    .collect(),
            )
        }
    }

    /// True when at least one record matches.
    pub fn exists(&self, conditions: &[(&str, &str)]) -> Result<bool> {
        let q = self.prepare(conditions)?;
        Ok(self.exists_prepared(&q))
    }

    /// [`Manifest::exists`] for a prepared query.
    #[inline]
    pub fn exists_prepared(&self, q: &Query) -> bool {
        !self.positions(q).is_empty()
    }

    /// The location of the first record matching (in sort order), if any.
    pub fn location(&self, conditions: &[(&str, &str)]) -> Result<Option<&str>> {
        let q = self.prepare(conditions)?;
        Ok(self.location_prepared(&q))
    }

    /// [`Manifest::location`] for a prepared query.
    #[inline]
    pub fn location_prepared(&self, q: &Query) -> Option<&str> {
        self.positions(q)
            .first()
            .map(|p| self.location_at(self.row(p)))
    }

    #[inline]
    fn location_at(&self, row: usize) -> &str {
        let chunk = self.starts.partition_point(|&s| s <= row) - 1;
        self.locations[chunk].value(row - self.starts[chunk])
    }

    /// Locations of every record matching.
    pub fn locations(&self, conditions: &[(&str, &str)]) -> Result<Vec<&str>> {
        let q = self.prepare(conditions)?;
        Ok(self
            .positions(&q)
            .iter()
            .map(|p| self.location_at(self.row(p)))
            .collect())
    }

    /// Number of records matching.
    pub fn count(&self, conditions: &[(&str, &str)]) -> Result<usize> {
        let q = self.prepare(conditions)?;
        Ok(self.positions(&q).len())
    }

    /// Every record matching any subset of fields, as an Arrow batch with
    /// the fields and the location column, in sort order.
    pub fn records(&self, conditions: &[(&str, &str)]) -> Result<RecordBatch> {
        let q = self.prepare(conditions)?;
        let rows: Vec<usize> = self.positions(&q).iter().map(|p| self.row(p)).collect();
        self.batch_of(&rows)
    }

    fn batch_of(&self, rows: &[usize]) -> Result<RecordBatch> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (f, c) in self.fields.iter().zip(&self.cols) {
            let (dt, arr): (DataType, ArrayRef) = match (c, f.ty) {
                (IndexCol::Str { dict, codes, .. }, _) => {
                    let keys = Int32Array::from_iter_values(rows.iter().map(|&r| codes[r] as i32));
                    let values = Arc::new(StringArray::from_iter_values(dict.iter().map(|s| &**s)))
                        as ArrayRef;
                    (
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                        Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values)?),
                    )
                }
                (IndexCol::Num(v), FieldType::Int32) => (
                    DataType::Int32,
                    Arc::new(Int32Array::from_iter_values(
                        rows.iter().map(|&r| v[r] as i32),
                    )),
                ),
                (IndexCol::Num(v), FieldType::Date) => (
                    DataType::Date32,
                    Arc::new(Date32Array::from_iter_values(
                        rows.iter().map(|&r| v[r] as i32),
                    )),
                ),
                (IndexCol::Num(v), _) => (
                    DataType::Int64,
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|&r| v[r]))),
                ),
            };
            fields.push(ArrowField::new(&f.name, dt, false));
            arrays.push(arr);
        }
        fields.push(ArrowField::new(
            &self.location_column,
            DataType::Utf8,
            false,
        ));
        arrays.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|&r| self.location_at(r)),
        )));
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
    }

    /// The distinct values of a field, sorted.
    pub fn unique(&self, field: &str) -> Result<Vec<Value>> {
        let fi = self.field_index(field)?;
        let ty = self.fields[fi].ty;
        Ok(match &self.cols[fi] {
            IndexCol::Str { dict, .. } => dict.iter().map(|s| Value::Str(s.to_string())).collect(),
            IndexCol::Num(_) => {
                let mut keys: Vec<u64> = if fi == 0 {
                    let mut out = Vec::new();
                    let mut pos = 0;
                    while pos < self.rows {
                        let k = self.cols[0].key(self.row(pos));
                        out.push(k);
                        pos = self.narrow(0, k, pos, self.rows).1;
                    }
                    out
                } else {
                    self.secondary(fi).keys().copied().collect()
                };
                keys.sort_unstable();
                keys.into_iter()
                    .map(|k| {
                        let v = (k ^ (1 << 63)) as i64;
                        match ty {
                            FieldType::Date => Value::Date(format_date(v as i32)),
                            _ => Value::Int(v),
                        }
                    })
                    .collect()
            }
        })
    }

    /// Download the first object matching into the local cache and return
    /// its local path. Locations that are plain paths are returned as they are.
    pub async fn fetch(
        &self,
        conditions: &[(&str, &str)],
        cache: &Cache,
        opts: &StoreOptions,
    ) -> Result<std::path::PathBuf> {
        let loc = self
            .location(conditions)?
            .ok_or_else(|| Error::NotFound {
                conditions: describe(conditions),
            })?
            .to_string();
        let obj = Location::open(&loc, opts).await?;
        Ok(cache.fetch(&obj).await?)
    }
}

/// `field=value, …` for messages.
pub fn describe(conditions: &[(&str, &str)]) -> String {
    if conditions.is_empty() {
        return "(no condition)".into();
    }
    conditions
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

enum Positions<'a> {
    Range(Range<usize>),
    Slice(&'a [u32]),
    List(Vec<u32>),
}

impl Positions<'_> {
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn len(&self) -> usize {
        match self {
            Positions::Range(r) => r.len(),
            Positions::Slice(s) => s.len(),
            Positions::List(l) => l.len(),
        }
    }
    fn first(&self) -> Option<usize> {
        match self {
            Positions::Range(r) => (!r.is_empty()).then_some(r.start),
            Positions::Slice(s) => s.first().map(|&p| p as usize),
            Positions::List(l) => l.first().map(|&p| p as usize),
        }
    }
    fn iter(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        match self {
            Positions::Range(r) => Box::new(r.clone()),
            Positions::Slice(s) => Box::new(s.iter().map(|&p| p as usize)),
            Positions::List(l) => Box::new(l.iter().map(|&p| p as usize)),
        }
    }
}

/// The index column of a string field (`arrays` hold no nulls).
fn build_str_col(arrays: &[&ArrayRef], rows: usize) -> Result<IndexCol> {
    let mut map: HashMap<Box<str>, u32> = HashMap::new();
    let mut dict: Vec<Box<str>> = Vec::new();
    let mut codes: Vec<u32> = Vec::with_capacity(rows);
    let intern = |s: &str, map: &mut HashMap<Box<str>, u32>, dict: &mut Vec<Box<str>>| -> u32 {
        if let Some(&c) = map.get(s) {
            return c;
        }
        let c = dict.len() as u32;
        dict.push(s.into());
        map.insert(s.into(), c);
        c
    };
    for a in arrays {
        match a.data_type() {
            DataType::Dictionary(_, _) => {
                // Any key type becomes Int32 (a no-op for tessera's own manifests).
                let as_i32 =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                let cast;
                let d: &DictionaryArray<Int32Type> = match a.as_any().downcast_ref() {
                    Some(d) => d,
                    None => {
                        cast = arrow::compute::cast(a, &as_i32)?;
                        cast.as_dictionary::<Int32Type>()
                    }
                };
                let values = arrow::compute::cast(d.values(), &DataType::Utf8)?;
                let remap: Vec<u32> = values
                    .as_string::<i32>()
                    .iter()
                    .map(|v| intern(v.unwrap_or(""), &mut map, &mut dict))
                    .collect();
                codes.extend(d.keys().values().iter().map(|&k| remap[k as usize]));
            }
            _ => {
                let s = arrow::compute::cast(a, &DataType::Utf8)?;
                for v in s.as_string::<i32>().iter() {
                    codes.push(intern(v.unwrap_or(""), &mut map, &mut dict));
                }
            }
        }
    }
    // Re-number codes by sorted value so code order is value order.
    let mut ranked: Vec<u32> = (0..dict.len() as u32).collect();
    ranked.sort_unstable_by(|&a, &b| dict[a as usize].cmp(&dict[b as usize]));
    let mut rank_of = vec![0u32; dict.len()];
    for (rank, &c) in ranked.iter().enumerate() {
        rank_of[c as usize] = rank as u32;
    }
    codes.par_iter_mut().for_each(|c| *c = rank_of[*c as usize]);
    let sorted: Vec<Box<str>> = ranked.iter().map(|&c| dict[c as usize].clone()).collect();
    for v in map.values_mut() {
        *v = rank_of[*v as usize];
    }
    Ok(IndexCol::Str {
        dict: sorted,
        map,
        codes,
    })
}

/// The index column of a numeric field (`arrays` hold no nulls).
fn build_num_col(arrays: &[&ArrayRef], rows: usize) -> Result<IndexCol> {
    let mut v = Vec::with_capacity(rows);
    for a in arrays {
        match a.data_type() {
            DataType::Int32 => v.extend(
                a.as_primitive::<Int32Type>()
                    .values()
                    .iter()
                    .map(|&x| x as i64),
            ),
            DataType::Date32 => v.extend(
                a.as_primitive::<arrow::datatypes::Date32Type>()
                    .values()
                    .iter()
                    .map(|&x| x as i64),
            ),
            DataType::Int64 => {
                v.extend_from_slice(a.as_primitive::<arrow::datatypes::Int64Type>().values())
            }
            _ => {
                let c = arrow::compute::cast(a, &DataType::Int64)?;
                v.extend_from_slice(c.as_primitive::<arrow::datatypes::Int64Type>().values());
            }
        }
    }
    Ok(IndexCol::Num(v))
}
