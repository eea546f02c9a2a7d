//! Reads: [`Datasets::get`].

use std::fmt;
use std::future::IntoFuture;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use deltalake::datafusion::common::Column;
use deltalake::datafusion::logical_expr::{lit, Expr};
use deltalake::datafusion::physical_plan::{
    execute_stream, ExecutionPlan, SendableRecordBatchStream,
};
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::{DeltaTable, DeltaTableError};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::keys::{PartitionLayout, VERSION_COLUMN};
use crate::{not_a_table, Datasets};

/// A point in a dataset's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// A Delta version number (0 is the first commit).
    Version(u64),
    /// The table as it was at this time.
    Time(DateTime<Utc>),
}

impl FromStr for AsOf {
    type Err = Error;
    /// A version number, or a time as [`tessera_store::units::parse_time`]
    /// reads it: RFC 3339 (`2024-03-01T12:00:00Z`), `YYYY-MM-DD HH:MM:SS`
    /// (UTC) or `YYYY-MM-DD` (midnight UTC).
    fn from_str(s: &str) -> Result<AsOf> {
        let t = s.trim();
        if let Ok(v) = t.parse::<i64>() {
            return u64::try_from(v)
                .map(AsOf::Version)
                .map_err(|_| Error::InvalidOption {
                    option: "as of",
                    value: s.to_string(),
                    reason: "versions start at 0".into(),
                });
        }
        tessera_store::units::parse_time(t)
            .map(AsOf::Time)
            .map_err(|e| Error::InvalidOption {
                option: "as of",
                value: s.to_string(),
                reason: format!("not a version number or a time ({})", e.expected),
            })
    }
}

impl fmt::Display for AsOf {
    /// The text [`AsOf::from_str`] reads back: the version, or the time in RFC 3339.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsOf::Version(v) => write!(f, "{v}"),
            AsOf::Time(t) => f.write_str(&t.to_rfc3339()),
        }
    }
}

/// A read of a dataset: see [`Datasets::get`]. Awaiting it plans the read
/// and gives the [`Rows`] as a stream; [`Get::collect`] reads them all.
#[must_use = "a read does nothing until awaited"]
pub struct Get {
    ds: Datasets,
    name: String,
    version_key: Option<String>,
    last: bool,
    as_of: Option<AsOf>,
    filter: Option<String>,
    columns: Option<Vec<String>>,
}

/// What a read touched, known once its rows are consumed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadStats {
    /// The Delta version read.
    pub table_version: u64,
    /// Data files in that version.
    pub files_total: u64,
    /// Their bytes.
    pub bytes_total: u64,
    /// Files opened (the others were pruned by partition or statistics).
    pub files_read: u64,
    /// Bytes fetched from storage.
    pub bytes_read: u64,
    /// Rows returned.
    pub rows: u64,
}

/// The rows of a read, as a stream of batches.
pub struct Rows {
    name: String,
    schema: SchemaRef,
    plan: Arc<dyn ExecutionPlan>,
    stream: SendableRecordBatchStream,
    stats: ReadStats,
    as_of: Option<AsOf>,
}

impl Get {
    pub(crate) fn new(ds: Datasets, name: &str) -> Get {
        Get {
            ds,
            name: name.to_string(),
            version_key: None,
            last: false,
            as_of: None,
            filter: None,
            columns: None,
        }
    }

    /// Only the rows loaded with this version key (default: every row).
    pub fn with_version(mut self, key: impl Into<String>) -> Self {
        self.version_key = Some(key.into());
        self
    }

    /// Only the rows of the most recent load's version key (default: every row).
    pub fn with_last(mut self, yes: bool) -> Self {
        self.last = yes;
        self
    }

    /// The dataset as of an earlier version or time (default: the latest).
    pub fn with_as_of(mut self, at: AsOf) -> Self {
        self.as_of = Some(at);
        self
    }

    /// Only rows matching this SQL predicate, e.g.
    /// `event_date >= '2024-03-01' AND user_id < 5000` (names that are not
    /// plain identifiers in double quotes).
    pub fn with_filter(mut self, predicate: impl Into<String>) -> Self {
        self.filter = Some(predicate.into());
        self
    }

    /// Only these columns, in this order (default: every data column;
    /// the version key and derived partition columns only when asked).
    pub fn with_columns(mut self, columns: Vec<String>) -> Self {
        self.columns = Some(columns);
        self
    }

    /// All the rows, in memory.
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        let mut rows = self.await?;
        let mut out = Vec::new();
        while let Some(b) = rows.next().await {
            out.push(b?);
        }
        Ok(out)
    }

    /// The dataset (at the chosen version or time, else its latest) as a
    /// DataFusion table, for SQL over several tables. Its object store is
    /// registered in `ctx`'s runtime, so the provider is usable from any
    /// context sharing that runtime. Version keys, filters and columns do
    /// not apply here: SQL selects with `WHERE`.
    pub async fn table_provider(
        self,
        ctx: &SessionContext,
    ) -> Result<Arc<dyn deltalake::datafusion::catalog::TableProvider>> {
        crate::name::check_name(&self.name)?;
        let table = self.open().await?;
        table
            .update_datafusion_session(&ctx.state())
            .map_err(|e| Error::delta(&self.name, e))?;
        table
            .table_provider()
            .with_session(Arc::new(ctx.state()))
            .await
            .map_err(|e| Error::query(&self.name, e))
    }

    async fn open(&self) -> Result<DeltaTable> {
        let Some(at) = self.as_of else {
            return self.ds.load(&self.name).await;
        };
        let latest = self.ds.load(&self.name).await?;
        let newest = latest.version().unwrap_or(0);
        let (_, builder) = self.ds.table_handle(&self.name)?;
        let no_such = |reason: String| Error::NoSuchVersion {
            name: self.name.clone(),
            as_of: at,
            reason,
        };
        let builder = match at {
            AsOf::Version(v) => {
                if v > newest {
                    return Err(no_such(format!("the latest is {newest}")));
                }
                builder.with_version(v)
            }
            AsOf::Time(t) => builder.with_timestamp(t),
        };
        builder.load().await.map_err(|e| match e {
            e if not_a_table(&e) => no_such(format!(
                "it is not in the table's log (the log keeps 30 days by default): {e}"
            )),
            DeltaTableError::InvalidVersion(_) | DeltaTableError::InvalidDateTimeString { .. } => {
                no_such(e.to_string())
            }
            e => {
                let s = e.to_string();
                if s.contains("before") || s.contains("earliest") || s.contains("timestamp") {
                    no_such(s)
                } else {
                    Error::delta(&self.name, e)
                }
            }
        })
    }

    /// Plan the read and start it.
    async fn start(self) -> Result<Rows> {
        crate::name::check_name(&self.name)?;
        if let (true, Some(k)) = (self.last, &self.version_key) {
            return Err(Error::InvalidOption {
                option: "version key",
                value: k.clone(),
                reason: "a read takes the rows of one version key or of the last load, not both"
                    .into(),
            });
        }
        let table = self.open().await?;
        let name = self.name.as_str();
        let snapshot = table.snapshot().map_err(|e| Error::delta(name, e))?;
        let mut stats = ReadStats {
            table_version: snapshot.version(),
            ..Default::default()
        };
        for f in snapshot.log_data().iter() {
            stats.files_total += 1;
            stats.bytes_total += f.size().max(0) as u64;
        }
        let layout = PartitionLayout::recorded(snapshot.metadata(), name)?.layout;
        let key = if self.last {
            Some(last_key(&table, name).await?)
        } else {
            self.version_key.clone()
        };

        // Plain strings, not views: what every writer and client expects.
        let config = SessionConfig::new().set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        );
        let ctx = SessionContext::new_with_config(config);
        table
            .update_datafusion_session(&ctx.state())
            .map_err(|e| Error::delta(name, e))?;
        // The scan takes its settings from the session: strings are decoded
        // as plain strings directly, not as views cast afterwards (a second
        // copy of every string, on the thread that hands batches out).
        let provider = table
            .table_provider()
            .with_session(Arc::new(ctx.state()))
            .await
            .map_err(|e| Error::query(name, e))?;
        let mut df = ctx
            .read_table(provider)
            .map_err(|e| Error::query(name, e))?;
        let table_schema = df.schema().as_arrow().clone();
        let has_key_column = table_schema.field_with_name(VERSION_COLUMN).is_ok();
        if let Some(k) = &key {
            if !has_key_column {
                return Err(Error::NoLoads {
                    name: name.to_string(),
                });
            }
            df = df
                .filter(Expr::Column(Column::new_unqualified(VERSION_COLUMN)).eq(lit(k.clone())))
                .map_err(|e| Error::query(name, e))?;
        }
        if let Some(f) = &self.filter {
            let invalid =
                |e: deltalake::datafusion::error::DataFusionError| Error::InvalidPredicate {
                    dataset: name.to_string(),
                    predicate: f.clone(),
                    reason: clean(&e.to_string()),
                };
            let e = df.parse_sql_expr(f).map_err(invalid)?;
            df = df.filter(e).map_err(invalid)?;
        }
        let derived = layout.derived_in(snapshot.metadata().partition_columns());
        let columns: Vec<String> = match &self.columns {
            Some(cols) => {
                for c in cols {
                    if table_schema.field_with_name(c).is_err() {
                        return Err(Error::NoSuchColumn {
                            dataset: name.to_string(),
                            column: c.clone(),
                            available: table_schema
                                .fields()
                                .iter()
                                .map(|f| f.name().clone())
                                .collect(),
                        });
                    }
                }
                cols.clone()
            }
            // The table's declared order (scans put partition columns last).
            None => snapshot
                .schema()
                .fields()
                .map(|f| f.name().clone())
                .filter(|n| n != VERSION_COLUMN && !derived.contains(n))
                .filter(|n| table_schema.field_with_name(n).is_ok())
                .collect(),
        };
        df = df
            .select(
                columns
                    .iter()
                    .map(|c| Expr::Column(Column::new_unqualified(c.clone())))
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| Error::query(name, e))?;
        let plan = df
            .create_physical_plan()
            .await
            .map_err(|e| Error::query(name, e))?;
        let stream =
            execute_stream(plan.clone(), ctx.task_ctx()).map_err(|e| Error::query(name, e))?;
        Ok(Rows {
            name: self.name.clone(),
            schema: plain_schema(&stream.schema()),
            plan,
            stream,
            stats,
            as_of: self.as_of,
        })
    }
}

impl IntoFuture for Get {
    type Output = Result<Rows>;
    type IntoFuture = BoxFuture<'static, Result<Rows>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.start())
    }
}

impl Rows {
    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The next batch, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<RecordBatch>> {
        let r = self.stream.next().await?;
        Some(match r.and_then(|b| plain_batch(&b, &self.schema)) {
            Ok(b) => {
                self.stats.rows += b.num_rows() as u64;
                Ok(b)
            }
            Err(e) => Err(self.read_error(e)),
        })
    }

    fn read_error(&self, e: deltalake::datafusion::error::DataFusionError) -> Error {
        let s = e.to_string();
        let missing =
            s.contains("not found") || s.contains("NotFound") || s.contains("No such file");
        match self.as_of {
            Some(_) if missing => Error::Vacuumed {
                name: self.name.clone(),
                version: self.stats.table_version,
                detail: clean(&s),
            },
            _ => Error::query(&self.name, e),
        }
    }

    /// What the read touched so far (complete once every batch was read).
    pub fn stats(&self) -> ReadStats {
        let mut s = self.stats.clone();
        let (files, bytes) = scan_metrics(self.plan.as_ref());
        s.files_read = files;
        s.bytes_read = bytes;
        s
    }

    /// The remaining batches as a stream of Arrow batches.
    pub fn into_stream(self) -> SendableRecordBatchStream {
        self.stream
    }
}

/// The schema with string and binary views as plain strings and binaries,
/// the types every writer and client handles.
fn plain_schema(s: &SchemaRef) -> SchemaRef {
    if !s.fields().iter().any(|f| is_view(f.data_type())) {
        return s.clone();
    }
    Arc::new(Schema::new_with_metadata(
        s.fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8View => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8)),
                DataType::BinaryView => {
                    Arc::new(f.as_ref().clone().with_data_type(DataType::Binary))
                }
                _ => f.clone(),
            })
            .collect::<Vec<_>>(),
        s.metadata().clone(),
    ))
}

fn is_view(t: &DataType) -> bool {
    matches!(t, DataType::Utf8View | DataType::BinaryView)
}

fn plain_batch(
    b: &RecordBatch,
    schema: &SchemaRef,
) -> std::result::Result<RecordBatch, deltalake::datafusion::error::DataFusionError> {
    if b.schema().as_ref() == schema.as_ref() {
        return Ok(b.clone());
    }
    let cols = b
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// Files opened and bytes scanned by every scan in `plan`.
fn scan_metrics(plan: &dyn ExecutionPlan) -> (u64, u64) {
    let (mut files, mut bytes) = (0u64, 0u64);
    if let Some(m) = plan.metrics() {
        files += m
            .sum_by_name("files_opened")
            .map(|v| v.as_usize())
            .unwrap_or(0) as u64;
        bytes += m
            .sum_by_name("bytes_scanned")
            .map(|v| v.as_usize())
            .unwrap_or(0) as u64;
    }
    for c in plan.children() {
        let (f, b) = scan_metrics(c.as_ref());
        files += f;
        bytes += b;
    }
    (files, bytes)
}

/// The version key of the most recent `put` in `table`'s history.
pub(crate) async fn last_key(table: &DeltaTable, name: &str) -> Result<String> {
    // Most tables' last commit is a put: look at a few first.
    for limit in [Some(8), None] {
        let infos: Vec<_> = table
            .history(limit)
            .try_collect()
            .await
            .map_err(|e| Error::delta(name, e))?;
        for i in &infos {
            if let Some(t) = i.info.get("tessera") {
                if t.get("operation").and_then(|o| o.as_str()) == Some("put") {
                    if let Some(k) = t.get("versionKey").and_then(|k| k.as_str()) {
                        return Ok(k.to_string());
                    }
                }
            }
        }
        if limit.is_some_and(|l| infos.len() < l) {
            break;
        }
    }
    Err(Error::NoLoads {
        name: name.to_string(),
    })
}

/// DataFusion messages carry their internal prefixes; keep the useful part.
pub(crate) fn clean(s: &str) -> String {
    s.replace("Error during planning: ", "")
        .replace("Schema error: ", "")
        .replace("SQL error: ", "")
        .replace("External error: ", "")
        .replace("ParserError(", "(")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_parses_versions_and_times() {
        assert_eq!("3".parse::<AsOf>().unwrap(), AsOf::Version(3));
        assert!("-1".parse::<AsOf>().is_err());
        let t = "2024-03-01T12:00:00Z".parse::<AsOf>().unwrap();
        let u = "2024-03-01 12:00:00".parse::<AsOf>().unwrap();
        assert_eq!(t, u);
        assert!(matches!(
            "2024-03-01".parse::<AsOf>().unwrap(),
            AsOf::Time(_)
        ));
        assert!(matches!(
            "yesterday".parse::<AsOf>().unwrap_err(),
            Error::InvalidOption {
                option: "as of",
                ..
            }
        ));
        for at in [AsOf::Version(7), t] {
            assert_eq!(at.to_string().parse::<AsOf>().unwrap(), at);
        }
    }
}
