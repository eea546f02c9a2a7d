//! Loads: [`Datasets::put`].

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitProperties, TableReference, TransactionError,
};
use deltalake::kernel::{Action, MetadataExt as _, StructType};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};
use futures::future::BoxFuture;
use futures::StreamExt;
use serde::Serialize;
use tessera_formats::{
    conform, infer_schema, lossless, merge_inferred, read, Cast, FileFormat, ReadOptions,
};
use tessera_store::Location;
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::keys::{DateKey, IdKey, PartitionLayout, VERSION_COLUMN};
use crate::partition::{Partitioning, RowContext};
use crate::stream::{batch_channel, Sink};
use crate::write::PartitionedWriter;
use crate::{Datasets, DEFAULT_TARGET_SIZE};

/// Longest accepted version key.
const MAX_KEY: usize = 256;
/// Attempts for a load whose commit keeps conflicting (each after the
/// Delta writer's own retries).
const ATTEMPTS: u32 = 8;

/// A load into a dataset: see [`Datasets::put`]. Give the input with
/// [`Put::with_batches`] or [`Put::with_files`], then `.await` it.
///
/// The first load into a dataset creates it and fixes its partition keys;
/// later loads reuse them without being told (asking for other keys is an
/// error). Each load adds the rows under its version key; new columns are
/// added to the dataset, a column whose type changes is refused.
#[must_use = "a load does nothing until awaited"]
pub struct Put {
    ds: Datasets,
    name: String,
    layout: PartitionLayout,
    version: String,
    keep_last: bool,
    target_size: u64,
    memory_budget: u64,
    input_format: Option<FileFormat>,
    sources: Option<Vec<String>>,
    input: Input,
    rows_read: Arc<AtomicU64>,
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
    /// Bytes of rows (as Arrow) spilled to local disk because the load's
    /// rows outgrew its share of the memory budget before they could be
    /// written (0 for most loads).
    pub spilled_bytes: u64,
}

enum Input {
    Files(Vec<Location>),
    Batches(Vec<RecordBatch>),
}

/// The input with each file's format.
#[derive(Clone)]
enum Resolved {
    Files(Vec<(Location, FileFormat)>),
    Batches(Vec<RecordBatch>),
}

/// What every attempt of one load writes.
struct Load {
    input: Resolved,
    /// The version key.
    key: String,
    /// Source names for the commit.
    sources: Vec<String>,
    /// Where the input leaves its error.
    rt: Handle,
}

/// The shape of one attempt's write.
struct Shape {
    partitioning: Partitioning,
    /// Data columns read from the input (the table's types where it has them).
    data: SchemaRef,
    /// Every column written, in table order.
    write: SchemaRef,
    new_columns: Vec<String>,
    /// The table's layout is recorded only in its description (earlier releases).
    migrate: bool,
}

impl Put {
    pub(crate) fn new(ds: Datasets, name: &str) -> Put {
        Put {
            ds,
            name: name.to_string(),
            layout: PartitionLayout::default(),
            version: "NOW".into(),
            keep_last: false,
            target_size: DEFAULT_TARGET_SIZE,
            memory_budget: crate::write::DEFAULT_MEMORY_BUDGET,
            input_format: None,
            sources: None,
            input: Input::Batches(Vec::new()),
            rows_read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Load these in-memory batches (replaces input given before).
    pub fn with_batches(mut self, batches: Vec<RecordBatch>) -> Self {
        self.input = Input::Batches(batches);
        self
    }

    /// Load these files, in order (replaces input given before): CSV, TSV,
    /// JSON Lines or Parquet, text gzip- or zstd-compressed, the format
    /// told by each name unless given with [`Put::with_input_format`].
    pub fn with_files(mut self, files: Vec<Location>) -> Self {
        self.input = Input::Files(files);
        self
    }

    /// Partition by the date of a column (see [`crate::keys`]); a new
    /// dataset only, or the key it already has.
    pub fn with_date_key(mut self, key: DateKey) -> Self {
        self.layout.date = Some(key);
        self
    }

    /// Partition by ranges of an integer column (see [`crate::keys`]); a
    /// new dataset only, or the key it already has.
    pub fn with_id_key(mut self, key: IdKey) -> Self {
        self.layout.id = Some(key);
        self
    }

    /// The load's version key; `NOW` (the default) is the UTC time.
    pub fn with_version(mut self, key: impl Into<String>) -> Self {
        self.version = key.into();
        self
    }

    /// Replace all earlier data (earlier versions stay reachable by time
    /// travel until vacuumed); default: append.
    pub fn with_keep_last(mut self, yes: bool) -> Self {
        self.keep_last = yes;
        self
    }

    /// Target size of the data files in bytes (default 128 MB).
    pub fn with_target_size(mut self, bytes: u64) -> Self {
        self.target_size = bytes.max(1);
        self
    }

    /// The memory a load may use, in bytes (default
    /// [`DEFAULT_MEMORY_BUDGET`](crate::DEFAULT_MEMORY_BUDGET), 1 GiB): rows
    /// are grouped by partition in memory up to a share of it and spilled
    /// to local disk beyond, so a load's peak memory does not grow with the
    /// number of partitions it writes. Budgets under 4 MiB are raised to 4 MiB.
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes.max(4 << 20);
        self
    }

    /// The format of every input file (default: told by each file's name).
    pub fn with_input_format(mut self, format: FileFormat) -> Self {
        self.input_format = Some(format);
        self
    }

    /// Source names recorded in the commit (default: the input URLs).
    pub fn with_sources(mut self, names: Vec<String>) -> Self {
        self.sources = Some(names);
        self
    }

    /// A counter of the rows read so far, for progress reports: take it
    /// before awaiting the load.
    pub fn rows_read(&self) -> Arc<AtomicU64> {
        self.rows_read.clone()
    }

    fn version_key(&self) -> Result<String> {
        let k = self.version.trim();
        if k.eq_ignore_ascii_case("NOW") {
            return Ok(chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string());
        }
        if k.is_empty() || k.len() > MAX_KEY || k.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidOption {
                option: "version key",
                value: self.version.escape_debug().to_string(),
                reason: format!("a version key is 1 to {MAX_KEY} printable characters"),
            });
        }
        Ok(k.to_string())
    }

    /// Each input file with its format.
    fn resolve_input(&self) -> Result<Resolved> {
        match &self.input {
            Input::Batches(b) => Ok(Resolved::Batches(b.clone())),
            Input::Files(files) => files
                .iter()
                .map(|f| {
                    let format = match self.input_format {
                        Some(format) => format,
                        None => {
                            FileFormat::from_name(&f.url()).ok_or_else(|| Error::UnknownFormat {
                                object: f.url(),
                                formats: FileFormat::names().to_string(),
                            })?
                        }
                    };
                    Ok((f.clone(), format))
                })
                .collect::<Result<Vec<_>>>()
                .map(Resolved::Files),
        }
    }

    async fn run(self) -> Result<PutReport> {
        crate::name::check_name(&self.name)?;
        self.layout.check()?;
        let key = self.version_key()?;
        let input = self.resolve_input()?;
        let empty = || Error::EmptyInput {
            dataset: self.name.clone(),
        };
        if matches!(&input, Resolved::Files(f) if f.is_empty()) {
            return Err(empty());
        }
        self.ds.check_writable().await?;
        self.check_nesting().await?;
        let rt = Handle::current();
        // What each input holds: (url, schema, is text).
        let inferred: Vec<(String, Schema, bool)> = match &input {
            Resolved::Batches(b) => b
                .first()
                .map(|b| ("(batches)".to_string(), b.schema().as_ref().clone(), false))
                .into_iter()
                .collect(),
            Resolved::Files(files) => {
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
                .map_err(|e| Error::internal(format!("schema inference failed: {e}")))??
            }
        };
        if inferred.is_empty() {
            return Err(empty());
        }
        let sources = self.sources.clone().unwrap_or_else(|| match &input {
            Resolved::Files(f) => f.iter().map(|(l, _)| l.url()).collect(),
            Resolved::Batches(_) => Vec::new(),
        });
        let load = Load {
            input,
            key,
            sources,
            rt,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let table = self.ds.try_load(&self.name).await?;
            let shape = self.shape(table.as_ref(), &inferred)?;
            let created = table.is_none();
            let written = self.write_once(table, &shape, &load).await?;
            let e = match written {
                Ok(Written {
                    version,
                    rows,
                    files,
                    spilled,
                }) => {
                    return Ok(PutReport {
                        name: self.name.clone(),
                        version_key: load.key,
                        table_version: version,
                        rows,
                        files,
                        created,
                        keep_last: self.keep_last,
                        new_columns: if created {
                            Vec::new()
                        } else {
                            shape.new_columns
                        },
                        partition_columns: shape.partitioning.partition_columns(),
                        attempts: attempt,
                        spilled_bytes: spilled,
                    });
                }
                Err(e) => e,
            };
            if retryable(&e) && attempt < ATTEMPTS {
                tracing::debug!(attempt, "commit conflict on '{}': {e}", self.name);
                tokio::time::sleep(backoff(attempt)).await;
            } else if created
                && attempt < ATTEMPTS
                && self.ds.try_load(&self.name).await.ok().flatten().is_some()
            {
                // Another writer created the dataset first: append to it.
                tracing::debug!("'{}' was created concurrently: {e}", self.name);
            } else if retryable(&e) {
                return Err(Error::TooManyConflicts {
                    name: self.name.clone(),
                    attempts: attempt,
                });
            } else {
                return Err(Error::delta(&self.name, e));
            }
            self.rows_read.store(0, Ordering::Relaxed);
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
        let dataset = self.name.as_str();
        let Some(table) = table else {
            // A new dataset: the inputs' columns in Delta-compatible types,
            // the derived partition columns, the version key.
            let merged = merge_inferred(inferred.iter().map(|(_, s, _)| s));
            let data = Arc::new(Schema::new(
                merged
                    .fields()
                    .iter()
                    .map(|f| delta_field(f, dataset))
                    .collect::<Result<Vec<_>>>()?,
            ));
            if data.field_with_name(VERSION_COLUMN).is_ok() {
                return Err(reserved_version_column(dataset));
            }
            let partitioning = Partitioning::new(&self.layout, &data, dataset)?;
            let mut fields: Vec<FieldRef> = data.fields().iter().cloned().collect();
            fields.extend(partitioning.derived_fields().into_iter().map(Arc::new));
            fields.push(Arc::new(Field::new(VERSION_COLUMN, DataType::Utf8, true)));
            return Ok(Shape {
                partitioning,
                data,
                write: Arc::new(Schema::new(fields)),
                new_columns: Vec::new(),
                migrate: false,
            });
        };
        let snapshot = table.snapshot().map_err(|e| Error::delta(dataset, e))?;
        let metadata = snapshot.metadata();
        let recorded = PartitionLayout::recorded(metadata, dataset)?;
        let partition_columns: Vec<String> = metadata.partition_columns().to_vec();
        let layout = if self.layout.is_empty() {
            recorded.layout.clone()
        } else if recorded.layout != self.layout
            // A table partitioned by another tool records no keys: the
            // requested keys are checked against its partition columns below.
            && (!recorded.layout.is_empty() || partition_columns.is_empty())
        {
            return Err(Error::LayoutMismatch {
                dataset: dataset.to_string(),
                table: recorded.layout.to_string(),
                requested: self.layout.to_string(),
            });
        } else {
            self.layout.clone()
        };
        let partitioning = Partitioning::of_table(&layout, &partition_columns, dataset)?;
        let table_schema: SchemaRef = snapshot.snapshot().arrow_schema();
        // Data columns: the table's, minus what tessera derives.
        let derived_names = partitioning.derived_names();
        let data_table = data_part(&table_schema, &derived_names);
        for (url, s, text) in inferred {
            for f in s.fields() {
                if f.name() == VERSION_COLUMN {
                    return Err(reserved_version_column(dataset));
                }
                if let Ok(t) = data_table.field_with_name(f.name()) {
                    let text_untyped =
                        *text && matches!(f.data_type(), DataType::Utf8 | DataType::Null);
                    if !text_untyped && !lossless(f.data_type(), t.data_type()) {
                        return Err(Error::SchemaMismatch {
                            dataset: dataset.to_string(),
                            object: url.clone(),
                            column: f.name().clone(),
                            expected: t.data_type().to_string(),
                            found: f.data_type().to_string(),
                        });
                    }
                } else if derived_names.contains(f.name()) {
                    return Err(Error::ReservedColumn {
                        dataset: dataset.to_string(),
                        column: f.name().clone(),
                        reason: format!(
                            "in {url} is the partition column tessera derives from a key"
                        ),
                    });
                }
            }
        }
        // Columns new to the dataset, in order of first appearance.
        let merged = merge_inferred(inferred.iter().map(|(_, s, _)| s));
        let mut new_fields = Vec::new();
        for f in merged.fields() {
            if data_table.field_with_name(f.name()).is_err()
                && table_schema.field_with_name(f.name()).is_err()
            {
                new_fields.push(delta_field(f, dataset)?);
            }
        }
        let mut data_fields: Vec<FieldRef> = data_table.fields().iter().cloned().collect();
        data_fields.extend(new_fields.iter().cloned());
        let data = Arc::new(Schema::new(data_fields));
        // Keys must exist and be usable in the table's types.
        partitioning.check_data(&data, dataset)?;
        let mut write: Vec<FieldRef> = table_schema.fields().iter().cloned().collect();
        write.extend(new_fields.iter().cloned());
        if table_schema.field_with_name(VERSION_COLUMN).is_err() {
            write.push(Arc::new(Field::new(VERSION_COLUMN, DataType::Utf8, true)));
        }
        Ok(Shape {
            partitioning,
            data,
            write: Arc::new(Schema::new(write)),
            new_columns: new_fields.iter().map(|f| f.name().clone()).collect(),
            migrate: recorded.needs_migration,
        })
    }

    /// One attempt: our own errors fail the load at once (outer `Result`),
    /// Delta's are for the caller to retry or report (inner).
    async fn write_once(
        &self,
        table: Option<DeltaTable>,
        shape: &Shape,
        load: &Load,
    ) -> Result<std::result::Result<Written, DeltaTableError>> {
        let layout = shape.partitioning.layout();
        let table = match table {
            Some(t) if shape.migrate => {
                // Record the layout of an earlier release's table where this
                // release keeps it.
                let migrated = t
                    .set_tbl_properties()
                    .with_properties(layout.configuration().into_iter().collect())
                    .with_raise_if_not_exists(false)
                    .with_commit_properties(
                        commit_info("record layout", None).with_max_retries(100),
                    )
                    .await;
                match migrated {
                    Ok(t) => Some(t),
                    Err(e) => return Ok(Err(e)),
                }
            }
            other => other,
        };
        let log_store = match &table {
            Some(t) => t.log_store(),
            None => {
                let (loc, builder) = self.ds.table_handle(&self.name)?;
                if let Some(p) = loc.local_path() {
                    std::fs::create_dir_all(&p)
                        .map_err(|e| tessera_store::Error::io("cannot create", &p, e))?;
                }
                builder
                    .build()
                    .map_err(|e| Error::delta(&self.name, e))?
                    .log_store()
            }
        };
        let producer = Producer {
            input: load.input.clone(),
            data: shape.data.clone(),
            write: shape.write.clone(),
            partitioning: shape.partitioning.clone(),
            key: load.key.clone(),
            rt: load.rt.clone(),
            rows: self.rows_read.clone(),
            derived: shape.partitioning.derived_names(),
        };
        let mut batches = batch_channel(move |sink| producer.run(sink))?;
        let partition_columns = shape.partitioning.partition_columns();
        let mut writer = match PartitionedWriter::try_new(
            log_store.object_store(None),
            &shape.write,
            &partition_columns,
            crate::files::writer_properties(&shape.write),
            self.target_size,
            self.memory_budget,
        ) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        while let Some(batch) = batches.next().await? {
            if let Err(e) = writer.write(&batch).await {
                return Ok(Err(e));
            }
        }
        let (peak, rows, spilled) = (writer.peak_buffered(), writer.rows, writer.spilled());
        let adds = match writer.finish().await {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        tracing::debug!(
            files = adds.len(),
            rows,
            peak_buffered = peak,
            spilled,
            "data files of '{}' written",
            self.name
        );
        let files = adds.len() as u64;
        let info = serde_json::json!({
            "versionKey": load.key,
            "keepLast": self.keep_last,
            "sources": load.sources,
        });
        let mode = if self.keep_last {
            SaveMode::Overwrite
        } else {
            SaveMode::Append
        };
        let schema: StructType = match shape.write.as_ref().try_into_kernel() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e.into())),
        };
        let adds = adds.into_iter().map(Action::Add);
        let Some(table) = table else {
            let metrics = serde_json::json!({
                "num_added_rows": rows,
                "num_added_files": files,
                "num_removed_files": 0,
            });
            let created = CreateBuilder::new()
                .with_log_store(log_store)
                .with_columns(schema.fields().cloned())
                .with_partition_columns(partition_columns)
                .with_configuration(
                    layout
                        .configuration()
                        .into_iter()
                        .map(|(k, v)| (k, Some(v))),
                )
                .with_raise_if_key_not_exists(false)
                .with_table_name(self.name.clone())
                .with_comment("tessera dataset")
                .with_commit_properties(
                    commit_properties("put", info, metrics).with_max_retries(100),
                )
                .with_actions(adds)
                .await;
            return Ok(created.map(|t| Written {
                version: t.version().unwrap_or(0),
                rows,
                files,
                spilled,
            }));
        };
        let snapshot = match table.snapshot() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let mut actions: Vec<Action> = Vec::new();
        let table_schema = snapshot.snapshot().arrow_schema();
        if table_schema.fields().len() != shape.write.fields().len() {
            // New columns (or the version key column of a table another
            // tool made): the table's schema grows.
            match snapshot.metadata().clone().with_schema(&schema) {
                Ok(m) => actions.push(Action::Metadata(m)),
                Err(e) => return Ok(Err(e.into())),
            }
        }
        let mut removed = 0u64;
        if self.keep_last {
            let mut views = snapshot.snapshot().file_views(log_store.as_ref(), None);
            while let Some(v) = views.next().await {
                match v {
                    Ok(v) => {
                        actions.push(Action::Remove(v.remove_action(true)));
                        removed += 1;
                    }
                    Err(e) => return Ok(Err(e)),
                }
            }
        }
        actions.extend(adds);
        let metrics = serde_json::json!({
            "num_added_rows": rows,
            "num_added_files": files,
            "num_removed_files": removed,
        });
        let operation = DeltaOperation::Write {
            mode,
            partition_by: (!partition_columns.is_empty()).then_some(partition_columns),
            predicate: None,
        };
        let committed =
            CommitBuilder::from(commit_properties("put", info, metrics).with_max_retries(100))
                .with_actions(actions)
                .build(Some(snapshot as &dyn TableReference), log_store, operation)
                .await;
        Ok(committed.map(|c| Written {
            version: c.version(),
            rows,
            files,
            spilled,
        }))
    }
}

/// What one attempt committed.
struct Written {
    version: u64,
    rows: u64,
    files: u64,
    spilled: u64,
}

/// Commit properties of a load: tessera's own entry and Delta's operation
/// metrics (as deltalake's writer records them).
fn commit_properties(
    operation: &str,
    mut fields: serde_json::Value,
    metrics: serde_json::Value,
) -> CommitProperties {
    fields["operation"] = operation.into();
    fields["tesseraVersion"] = env!("CARGO_PKG_VERSION").into();
    CommitProperties::default().with_metadata([
        ("tessera".to_string(), fields),
        ("operationMetrics".to_string(), metrics),
    ])
}

impl IntoFuture for Put {
    type Output = Result<PutReport>;
    type IntoFuture = BoxFuture<'static, Result<PutReport>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Commit properties of a tessera operation: `tessera` app metadata with
/// the operation, its own `fields` and the tessera version.
pub(crate) fn commit_info(operation: &str, fields: Option<serde_json::Value>) -> CommitProperties {
    let mut info = fields.unwrap_or_else(|| serde_json::json!({}));
    info["operation"] = operation.into();
    info["tesseraVersion"] = env!("CARGO_PKG_VERSION").into();
    CommitProperties::default().with_metadata([("tessera".to_string(), info)])
}

fn reserved_version_column(dataset: &str) -> Error {
    Error::ReservedColumn {
        dataset: dataset.to_string(),
        column: VERSION_COLUMN.to_string(),
        reason: "is the column tessera keeps version keys in".into(),
    }
}

/// Reads the inputs and sends batches of the write schema.
struct Producer {
    input: Resolved,
    data: SchemaRef,
    write: SchemaRef,
    partitioning: Partitioning,
    key: String,
    rt: Handle,
    rows: Arc<AtomicU64>,
    /// Names of the derived partition columns, in [`Partitioning::derive`] order.
    derived: Vec<String>,
}

impl Producer {
    fn run(self, sink: &mut Sink) -> Result<()> {
        match &self.input {
            Resolved::Batches(batches) => {
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
            Resolved::Files(files) => {
                let ropts = ReadOptions::new(self.rt.clone()).with_cast(Cast::Declared);
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
        let derived = self
            .partitioning
            .derive(b, &RowContext { source, first_row })?;
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
                    arrow::compute::cast(&c, f.data_type()).map_err(|e| Error::InvalidRecord {
                        object: source.to_string(),
                        row: None,
                        column: f.name().clone(),
                        reason: e.to_string(),
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(self.write.clone(), cols).map_err(|e| {
            Error::internal(format!(
                "{source}: a batch does not fit the load's write schema: {e}"
            ))
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

/// A column in a type Delta Lake stores, or an error naming it.
fn delta_field(f: &FieldRef, dataset: &str) -> Result<FieldRef> {
    let t = delta_type(f.data_type()).ok_or_else(|| Error::UnsupportedType {
        dataset: dataset.to_string(),
        column: f.name().clone(),
        data_type: f.data_type().to_string(),
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
