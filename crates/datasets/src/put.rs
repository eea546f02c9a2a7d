//! Loads: `tessera put`.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::transaction::{CommitProperties, TransactionError};
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use serde::Serialize;
use tessera_formats::{
    conform, infer_schema, lossless, merge_inferred, read, Cast, Format, ReadOptions,
};
use tessera_store::Location;
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::keys::{DateKey, IdKey, Layout, RowContext, VERSION_COLUMN};
use crate::stream::{streaming_plan, Sink};
use crate::{Datasets, DEFAULT_TARGET_SIZE};

/// Longest accepted version key.
const MAX_KEY: usize = 256;
/// Attempts for a load whose commit keeps conflicting (each after the
/// Delta writer's own retries).
const ATTEMPTS: u32 = 8;

/// A load into a dataset: see [`Datasets::put`].
#[must_use = "a load does nothing until executed"]
pub struct Put<'a> {
    ds: &'a Datasets,
    name: String,
    layout: Layout,
    version: String,
    keep_last: bool,
    target_size: u64,
    format: Option<Format>,
    sources: Option<Vec<String>>,
    rows_read: Arc<AtomicU64>,
    /// The input's own error, kept whole: delta-rs flattens the errors of
    /// its input plan to strings on some paths.
    failure: Arc<std::sync::Mutex<Option<Error>>>,
}

/// What a load did.
#[derive(Debug, Clone, Serialize)]
pub struct PutReport {
    /// The dataset.
    pub name: String,
    /// The load's version key.
    pub version_key: String,
    /// The Delta version the load committed.
    pub table_version: u64,
    /// Rows loaded.
    pub rows: u64,
    /// Data files written.
    pub files: u64,
    /// Whether the load created the dataset.
    pub created: bool,
    /// Whether the load replaced all earlier data.
    pub keep_last: bool,
    /// Columns the load added to the dataset's schema.
    pub new_columns: Vec<String>,
    /// The partition columns, outermost first.
    pub partition_columns: Vec<String>,
    /// Commit attempts (more than 1 when other writers got in first).
    pub attempts: u32,
}

#[derive(Clone)]
enum Input {
    Files(Vec<(Location, Format)>),
    Batches(Vec<RecordBatch>),
}

/// The shape of one attempt's write.
struct Shape {
    layout: Layout,
    /// Data columns read from the input (the table's types where it has them).
    data: SchemaRef,
    /// Every column written, in table order.
    write: SchemaRef,
    partition_columns: Vec<String>,
    new_columns: Vec<String>,
}

impl<'a> Put<'a> {
    pub(crate) fn new(ds: &'a Datasets, name: &str) -> Put<'a> {
        Put {
            ds,
            name: name.to_string(),
            layout: Layout::default(),
            version: "NOW".into(),
            keep_last: false,
            target_size: DEFAULT_TARGET_SIZE,
            format: None,
            sources: None,
            rows_read: Arc::new(AtomicU64::new(0)),
            failure: Default::default(),
        }
    }

    /// Partition by the date of a column (see [`crate::keys`]).
    pub fn date_key(mut self, key: DateKey) -> Self {
        self.layout.date = Some(key);
        self
    }

    /// Partition by ranges of an integer column (see [`crate::keys`]).
    pub fn id_key(mut self, key: IdKey) -> Self {
        self.layout.id = Some(key);
        self
    }

    /// The load's version key; `NOW` (the default) is the UTC time.
    pub fn version(mut self, key: &str) -> Self {
        self.version = key.to_string();
        self
    }

    /// Replace all earlier data (earlier versions stay reachable by time
    /// travel until vacuumed).
    pub fn keep_last(mut self, yes: bool) -> Self {
        self.keep_last = yes;
        self
    }

    /// Target size of the data files (default 128 MB).
    pub fn target_size(mut self, bytes: u64) -> Self {
        self.target_size = bytes.max(1);
        self
    }

    /// The format of input files whose names do not tell it.
    pub fn input_format(mut self, f: Option<Format>) -> Self {
        self.format = f;
        self
    }

    /// Source names recorded in the commit (default: the input URLs).
    pub fn sources(mut self, names: Vec<String>) -> Self {
        self.sources = Some(names);
        self
    }

    /// A counter of the rows read so far, for progress reports.
    pub fn rows_read(&self) -> Arc<AtomicU64> {
        self.rows_read.clone()
    }

    /// Load in-memory batches.
    pub async fn execute(self, batches: Vec<RecordBatch>) -> Result<PutReport> {
        self.run(Input::Batches(batches)).await
    }

    /// Load files (CSV, TSV, JSON Lines, Parquet; gzip/zstd text), in order.
    pub async fn execute_files(self, files: &[Location]) -> Result<PutReport> {
        let mut inputs = Vec::with_capacity(files.len());
        for f in files {
            let format = match self.format {
                Some(f) => f,
                None => Format::from_name(&f.url()).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "{}: cannot tell the format from the name; give it with --format ({})",
                        f.url(),
                        Format::names()
                    ))
                })?,
            };
            inputs.push((f.clone(), format));
        }
        if inputs.is_empty() {
            return Err(Error::InvalidInput("no input files".into()));
        }
        self.run(Input::Files(inputs)).await
    }

    fn version_key(&self) -> Result<String> {
        let k = self.version.trim();
        if k.eq_ignore_ascii_case("NOW") {
            return Ok(chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string());
        }
        if k.is_empty() || k.len() > MAX_KEY || k.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidInput(format!(
                "--version {:?}: a version key is 1 to {MAX_KEY} printable characters",
                self.version
            )));
        }
        Ok(k.to_string())
    }

    async fn run(self, input: Input) -> Result<PutReport> {
        crate::name::check_name(&self.name)?;
        let key = self.version_key()?;
        self.ds.check_writable().await?;
        self.check_nesting().await?;
        let rt = Handle::current();
        // What each input holds: (url, schema, is text).
        let inferred: Vec<(String, Schema, bool)> = match &input {
            Input::Batches(b) => b
                .first()
                .map(|b| ("(batches)".to_string(), b.schema().as_ref().clone(), false))
                .into_iter()
                .collect(),
            Input::Files(files) => {
                let files = files.clone();
                let rt2 = rt.clone();
                tokio::task::spawn_blocking(move || {
                    files
                        .iter()
                        .filter_map(|(loc, f)| {
                            infer_schema(loc, *f, 1 << 20, &rt2)
                                .map(|s| s.map(|s| (loc.url(), s, f.is_text())))
                                .transpose()
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()
                })
                .await
                .expect("schema inference does not panic")?
            }
        };
        if inferred.is_empty() {
            return Err(Error::InvalidInput(format!(
                "nothing to load into '{}': the input is empty",
                self.name
            )));
        }
        let sources = self.sources.clone().unwrap_or_else(|| match &input {
            Input::Files(f) => f.iter().map(|(l, _)| l.url()).collect(),
            Input::Batches(_) => Vec::new(),
        });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let table = self.ds.try_load(&self.name).await?;
            let shape = self.shape(table.as_ref(), &inferred)?;
            let created = table.is_none();
            match self
                .write_once(table, &shape, &input, &key, &sources, &rt)
                .await
            {
                Ok(table) => {
                    let (rows, files) = write_metrics(&table).await;
                    return Ok(PutReport {
                        name: self.name.clone(),
                        version_key: key,
                        table_version: table.version().unwrap_or(0),
                        rows,
                        files,
                        created,
                        keep_last: self.keep_last,
                        new_columns: if created {
                            Vec::new()
                        } else {
                            shape.new_columns
                        },
                        partition_columns: shape.partition_columns,
                        attempts: attempt,
                    });
                }
                Err(e) if retryable(&e) && attempt < ATTEMPTS => {
                    tracing::debug!(attempt, "commit conflict on '{}': {e}", self.name);
                    tokio::time::sleep(backoff(attempt)).await;
                    self.rows_read.store(0, Ordering::Relaxed);
                }
                Err(e)
                    if created
                        && attempt < ATTEMPTS
                        && self.ds.try_load(&self.name).await.ok().flatten().is_some() =>
                {
                    // Another writer created the dataset first: append to it.
                    tracing::debug!("'{}' was created concurrently: {e}", self.name);
                }
                Err(e) if retryable(&e) => {
                    return Err(Error::TooManyConflicts {
                        name: self.name.clone(),
                        attempts: attempt,
                    })
                }
                Err(e) => {
                    let ours = self.failure.lock().ok().and_then(|mut f| f.take());
                    return Err(ours.unwrap_or_else(|| Error::delta(&self.name, e)));
                }
            }
        }
    }

    /// A dataset may not live inside another one, nor hold one: vacuum of
    /// the outer table would delete the inner one's files.
    async fn check_nesting(&self) -> Result<()> {
        let root = self.ds.root()?;
        let segs: Vec<&str> = self.name.split('/').collect();
        for i in 1..segs.len() {
            let outer = segs[..i].join("/");
            if is_table(&root.join(&outer)?).await? {
                return Err(Error::Conflict {
                    name: self.name.clone(),
                    message: format!(
                        "'{outer}' is a dataset; a dataset cannot live inside another one"
                    ),
                });
            }
        }
        let me = root.join(&self.name)?;
        if !is_table(&me).await? {
            let (_, dirs) = me.list_dir().await?;
            if dirs.iter().any(|d| {
                let last = d.filename().unwrap_or("");
                !last.starts_with('_') && !last.contains('=')
            }) {
                return Err(Error::Conflict {
                    name: self.name.clone(),
                    message: format!(
                        "{} holds other datasets; a dataset cannot contain another one",
                        me.url()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Work out the columns of this load against the table (if any).
    fn shape(
        &self,
        table: Option<&DeltaTable>,
        inferred: &[(String, Schema, bool)],
    ) -> Result<Shape> {
        let Some(table) = table else {
            // A new dataset: the inputs' columns in Delta-compatible types,
            // the derived partition columns, the version key.
            let merged = merge_inferred(inferred.iter().map(|(_, s, _)| s));
            let data = Arc::new(Schema::new(
                merged
                    .fields()
                    .iter()
                    .map(|f| delta_field(f, &self.name))
                    .collect::<Result<Vec<_>>>()?,
            ));
            if data.field_with_name(VERSION_COLUMN).is_ok() {
                return Err(Error::InvalidInput(format!(
                    "the data has a column named '{VERSION_COLUMN}', which tessera uses for version keys; rename it"
                )));
            }
            let derived = self.layout.derived_fields(&data)?;
            let mut fields: Vec<FieldRef> = data.fields().iter().cloned().collect();
            fields.extend(derived.into_iter().map(Arc::new));
            fields.push(Arc::new(Field::new(VERSION_COLUMN, DataType::Utf8, true)));
            return Ok(Shape {
                partition_columns: self.layout.partition_columns(&data),
                layout: self.layout.clone(),
                data,
                write: Arc::new(Schema::new(fields)),
                new_columns: Vec::new(),
            });
        };
        let snapshot = table.snapshot().map_err(|e| Error::delta(&self.name, e))?;
        let metadata = snapshot.metadata();
        let recorded = Layout::of_table(metadata)?;
        let layout = if self.layout.is_empty() {
            recorded.clone()
        } else if recorded != self.layout
            // A table partitioned by another tool records no keys: the
            // requested keys are checked against its partition columns below.
            && (!recorded.is_empty() || metadata.partition_columns().is_empty())
        {
            return Err(Error::InvalidInput(format!(
                "dataset '{}' is partitioned by {}; this load asks for {}",
                self.name,
                describe_layout(&recorded),
                describe_layout(&self.layout)
            )));
        } else {
            self.layout.clone()
        };
        let table_schema: SchemaRef = snapshot.snapshot().arrow_schema();
        let partition_columns: Vec<String> = metadata.partition_columns().to_vec();
        // Data columns: the table's, minus what tessera derives.
        let derived_names = layout.derived_names(&table_schema);
        let data_table = data_part(&table_schema, &derived_names);
        let mut problems = Vec::new();
        for (url, s, text) in inferred {
            for f in s.fields() {
                if f.name() == VERSION_COLUMN {
                    problems.push(format!(
                        "{url}: column '{VERSION_COLUMN}' is reserved for version keys"
                    ));
                    continue;
                }
                if let Ok(t) = data_table.field_with_name(f.name()) {
                    let text_untyped =
                        *text && matches!(f.data_type(), DataType::Utf8 | DataType::Null);
                    if !text_untyped && !lossless(f.data_type(), t.data_type()) {
                        problems.push(format!(
                            "column '{}' is {} in {url} but {} in the dataset",
                            f.name(),
                            f.data_type(),
                            t.data_type()
                        ));
                    }
                } else if derived_names.contains(f.name()) {
                    problems.push(format!(
                        "{url}: column '{}' is the partition column tessera derives; rename it",
                        f.name()
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Schema {
                name: self.name.clone(),
                message: format!(
                    "the load does not fit the dataset's schema: {}",
                    problems.join("; ")
                ),
            });
        }
        // Columns new to the dataset, in order of first appearance.
        let merged = merge_inferred(inferred.iter().map(|(_, s, _)| s));
        let mut new_fields = Vec::new();
        for f in merged.fields() {
            if data_table.field_with_name(f.name()).is_err()
                && table_schema.field_with_name(f.name()).is_err()
            {
                new_fields.push(delta_field(f, &self.name)?);
            }
        }
        let mut data_fields: Vec<FieldRef> = data_table.fields().iter().cloned().collect();
        data_fields.extend(new_fields.iter().cloned());
        let data = Arc::new(Schema::new(data_fields));
        // Keys must exist and be usable in the table's types.
        let derived = layout.derived_fields(&data)?;
        let want: Vec<String> = layout.partition_columns(&data);
        if want != partition_columns {
            return Err(Error::InvalidInput(format!(
                "dataset '{}' has partition columns [{}] but this load would write [{}]",
                self.name,
                partition_columns.join(", "),
                want.join(", ")
            )));
        }
        let mut write: Vec<FieldRef> = table_schema.fields().iter().cloned().collect();
        for f in derived {
            if table_schema.field_with_name(f.name()).is_err() {
                write.push(Arc::new(f));
            }
        }
        write.extend(new_fields.iter().cloned());
        if table_schema.field_with_name(VERSION_COLUMN).is_err() {
            write.push(Arc::new(Field::new(VERSION_COLUMN, DataType::Utf8, true)));
        }
        Ok(Shape {
            layout,
            data,
            write: Arc::new(Schema::new(write)),
            partition_columns,
            new_columns: new_fields.iter().map(|f| f.name().clone()).collect(),
        })
    }

    async fn write_once(
        &self,
        table: Option<DeltaTable>,
        shape: &Shape,
        input: &Input,
        key: &str,
        sources: &[String],
        rt: &Handle,
    ) -> std::result::Result<DeltaTable, DeltaTableError> {
        let exists = table.is_some();
        let table = match table {
            Some(t) => t,
            None => {
                let generic = |e: Error| DeltaTableError::Generic(e.to_string());
                let (loc, builder) = self.ds.table_handle(&self.name).map_err(generic)?;
                if let Some(p) = loc.local_path() {
                    std::fs::create_dir_all(&p)
                        .map_err(|e| DeltaTableError::Generic(format!("{}: {e}", p.display())))?;
                }
                builder.build()?
            }
        };
        let producer = Producer {
            input: input.clone(),
            data: shape.data.clone(),
            write: shape.write.clone(),
            layout: shape.layout.clone(),
            key: key.to_string(),
            rt: rt.clone(),
            rows: self.rows_read.clone(),
            derived: shape.layout.derived_names(&shape.data),
        };
        let failure = self.failure.clone();
        let plan = streaming_plan(shape.write.clone(), move |sink| {
            producer.run(sink).map_err(|e| {
                // Keep the typed error; the engine gets a copy of its message.
                let copy = Error::InvalidInput(e.to_string());
                if let Ok(mut f) = failure.lock() {
                    *f = Some(e);
                }
                copy
            })
        })
        .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        let info = serde_json::json!({
            "operation": "put",
            "versionKey": key,
            "keepLast": self.keep_last,
            "sources": sources,
            "tesseraVersion": env!("CARGO_PKG_VERSION"),
        });
        let props = crate::files::writer_properties(&shape.write);
        let mut w = table
            .write(Vec::new())
            .with_input_plan(plan)
            .with_save_mode(if self.keep_last {
                SaveMode::Overwrite
            } else {
                SaveMode::Append
            })
            .with_target_file_size(NonZeroU64::new(self.target_size))
            .with_writer_properties(props)
            .with_commit_properties(
                CommitProperties::default()
                    .with_metadata([("tessera".to_string(), info)])
                    .with_max_retries(100),
            );
        if !exists {
            w = w
                .with_partition_columns(shape.partition_columns.clone())
                .with_description(shape.layout.description())
                .with_table_name(self.name.clone());
        } else if !shape.new_columns.is_empty() {
            w = w.with_schema_mode(SchemaMode::Merge);
        }
        w.await
    }
}

/// Reads the inputs and sends batches of the write schema.
struct Producer {
    input: Input,
    data: SchemaRef,
    write: SchemaRef,
    layout: Layout,
    key: String,
    rt: Handle,
    rows: Arc<AtomicU64>,
    /// Names of the derived partition columns, in [`Layout::derive`] order.
    derived: Vec<String>,
}

impl Producer {
    fn run(self, sink: &mut Sink) -> Result<()> {
        match &self.input {
            Input::Batches(batches) => {
                let mut row = 0u64;
                for b in batches {
                    let b = conform(b, &self.data, Cast::Declared, "(batches)")?;
                    let n = b.num_rows() as u64;
                    let out = self.assemble(&b, "(batches)", row)?;
                    row += n;
                    self.rows.fetch_add(n, Ordering::Relaxed);
                    if !sink.send(out) {
                        return Ok(());
                    }
                }
            }
            Input::Files(files) => {
                let mut ropts = ReadOptions::new(self.rt.clone());
                ropts.cast = Cast::Declared;
                for (loc, format) in files {
                    let url = loc.url();
                    let mut row = 0u64;
                    for b in read(loc, *format, self.data.clone(), &ropts)? {
                        let b = b?;
                        let n = b.num_rows() as u64;
                        let out = self.assemble(&b, &url, row)?;
                        row += n;
                        self.rows.fetch_add(n, Ordering::Relaxed);
                        if !sink.send(out) {
                            return Ok(());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Data columns + derived partition columns + version key, in the
    /// write schema's order.
    fn assemble(&self, b: &RecordBatch, source: &str, first_row: u64) -> Result<RecordBatch> {
        let derived = self.layout.derive(b, &RowContext { source, first_row })?;
        let n = b.num_rows();
        let version: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            self.key.as_str(),
            n,
        )));
        let cols = self
            .write
            .fields()
            .iter()
            .map(|f| {
                if f.name() == VERSION_COLUMN {
                    return version.clone();
                }
                if let Some(i) = self.derived.iter().position(|d| d == f.name()) {
                    return derived[i].clone();
                }
                match b.column_by_name(f.name()) {
                    Some(c) => c.clone(),
                    None => new_null_array(f.data_type(), n),
                }
            })
            .collect::<Vec<_>>();
        let cols = cols
            .into_iter()
            .zip(self.write.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    arrow::compute::cast(&c, f.data_type()).map_err(|e| Error::Data {
                        context: source.to_string(),
                        message: format!("column '{}': {e}", f.name()),
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(self.write.clone(), cols).map_err(|e| Error::Data {
            context: source.to_string(),
            message: e.to_string(),
        })
    }
}

/// The table's columns minus tessera's own.
fn data_part(table: &Schema, derived: &[String]) -> Schema {
    Schema::new(
        table
            .fields()
            .iter()
            .filter(|f| f.name() != VERSION_COLUMN && !derived.contains(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    )
}

fn describe_layout(l: &Layout) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &l.date {
        parts.push(format!("--date-key {d}"));
    }
    if let Some(i) = &l.id {
        parts.push(format!("--id-key {i}"));
    }
    if parts.is_empty() {
        "nothing (no partitions)".into()
    } else {
        parts.join(" ")
    }
}

/// A column in a type Delta Lake stores, or an error naming it.
fn delta_field(f: &FieldRef, dataset: &str) -> Result<FieldRef> {
    let t = delta_type(f.data_type()).ok_or_else(|| Error::Schema {
        name: dataset.to_string(),
        message: format!(
            "column '{}' has type {}, which Delta Lake cannot store; convert it to text, a number or a timestamp first",
            f.name(),
            f.data_type()
        ),
    })?;
    Ok(Arc::new(Field::new(f.name(), t, true)))
}

fn delta_type(t: &DataType) -> Option<DataType> {
    use DataType::*;
    Some(match t {
        Null | Utf8 | LargeUtf8 | Utf8View => Utf8,
        Boolean | Int8 | Int16 | Int32 | Int64 | Float32 | Float64 | Date32 => t.clone(),
        UInt8 => Int16,
        UInt16 => Int32,
        UInt32 | UInt64 => Int64,
        Float16 => Float32,
        Date64 => Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Timestamp(_, _) => Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => Binary,
        Decimal128(p, s) if *p <= 38 => Decimal128(*p, *s),
        Dictionary(_, v) => return delta_type(v),
        List(f) | LargeList(f) | ListView(f) | LargeListView(f) | FixedSizeList(f, _) => List(
            Arc::new(Field::new(f.name(), delta_type(f.data_type())?, true)),
        ),
        Struct(fs) => Struct(
            fs.iter()
                .map(|f| {
                    Some(Arc::new(Field::new(
                        f.name(),
                        delta_type(f.data_type())?,
                        true,
                    )))
                })
                .collect::<Option<Vec<_>>>()?
                .into(),
        ),
        _ => return None,
    })
}

/// Is this a commit race worth another attempt?
pub(crate) fn retryable(e: &DeltaTableError) -> bool {
    match e {
        DeltaTableError::VersionAlreadyExists(_) => true,
        DeltaTableError::Transaction { source } => matches!(
            source,
            TransactionError::VersionAlreadyExists(_)
                | TransactionError::CommitConflict(_)
                | TransactionError::MaxCommitAttempts(_)
        ),
        _ => false,
    }
}

/// Sleep before attempt `n + 1`: exponential, capped, with jitter.
pub(crate) fn backoff(n: u32) -> Duration {
    let base = 50u64 << n.min(6);
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    Duration::from_millis((base + jitter).min(3_000))
}

/// Whether `loc` holds a Delta table (a non-empty `_delta_log/`).
pub(crate) async fn is_table(loc: &Location) -> Result<bool> {
    let (objs, dirs) = loc.join("_delta_log")?.list_dir().await?;
    Ok(!objs.is_empty() || !dirs.is_empty())
}

/// Rows and files the last commit of `table` added (from its metrics).
async fn write_metrics(table: &DeltaTable) -> (u64, u64) {
    let infos: Vec<_> = match table.history(Some(1)).try_collect().await {
        Ok(v) => v,
        Err(_) => return (0, 0),
    };
    let m = infos
        .first()
        .and_then(|i| i.info.get("operationMetrics"))
        .cloned()
        .unwrap_or_default();
    let get = |k: &str| m.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    (get("num_added_rows"), get("num_added_files"))
}
