//! Reads: `tessera get`.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use deltalake::datafusion::common::Column;
use deltalake::datafusion::logical_expr::{lit, Expr};
use deltalake::datafusion::physical_plan::{
    execute_stream, ExecutionPlan, SendableRecordBatchStream,
};
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::{DeltaTable, DeltaTableError};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::keys::{Layout, VERSION_COLUMN};
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
    /// A version number, or a time: RFC 3339 (`2024-03-01T12:00:00Z`),
    /// `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (midnight UTC).
    fn from_str(s: &str) -> Result<AsOf> {
        let s = s.trim();
        if let Ok(v) = s.parse::<i64>() {
            if v < 0 {
                return Err(Error::InvalidInput(format!(
                    "--as-of {s}: versions start at 0"
                )));
            }
            return Ok(AsOf::Version(v as u64));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(AsOf::Time(t.with_timezone(&Utc)));
        }
        for f in [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S%.f",
        ] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                return Ok(AsOf::Time(t.and_utc()));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(AsOf::Time(
                d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
            ));
        }
        Err(Error::InvalidInput(format!(
            "--as-of '{s}': expected a version number or a time (2024-03-01T12:00:00Z, 2024-03-01 12:00:00, 2024-03-01)"
        )))
    }
}

/// A read of a dataset: see [`Datasets::get`].
#[must_use = "a read does nothing until executed"]
pub struct Get<'a> {
    ds: &'a Datasets,
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

impl<'a> Get<'a> {
    pub(crate) fn new(ds: &'a Datasets, name: &str) -> Get<'a> {
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

    /// Only the rows loaded with this version key.
    pub fn version(mut self, key: &str) -> Self {
        self.version_key = Some(key.to_string());
        self
    }

    /// Only the rows of the most recent load's version key.
    pub fn last(mut self) -> Self {
        self.last = true;
        self
    }

    /// The dataset as of an earlier version or time.
    pub fn as_of(mut self, at: AsOf) -> Self {
        self.as_of = Some(at);
        self
    }

    /// Only rows matching this SQL predicate, e.g.
    /// `event_date >= '2024-03-01' AND user_id < 5000`.
    pub fn filter(mut self, predicate: &str) -> Self {
        self.filter = Some(predicate.to_string());
        self
    }

    /// Only these columns, in this order (default: every data column;
    /// the version key and derived partition columns only when asked).
    pub fn columns(mut self, cols: Vec<String>) -> Self {
        self.columns = Some(cols);
        self
    }

    /// All the rows, in memory.
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        let mut rows = self.execute().await?;
        let mut out = Vec::new();
        while let Some(b) = rows.next().await {
            out.push(b?);
        }
        Ok(out)
    }

    /// The dataset (at the chosen `as_of`, else its latest version) as a
    /// DataFusion table, for SQL over several tables. Its object store is
    /// registered in `ctx`'s runtime, so the provider is usable from any
    /// context sharing that runtime. Version keys and filters do not apply
    /// here: SQL selects with `WHERE`.
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
        let builder = match at {
            AsOf::Version(v) => {
                if v > newest {
                    return Err(Error::NoSuchVersion {
                        name: self.name.clone(),
                        message: format!("there is no version {v}; the latest is {newest}"),
                    });
                }
                builder.with_version(v)
            }
            AsOf::Time(t) => builder.with_timestamp(t),
        };
        builder.load().await.map_err(|e| match e {
            e if not_a_table(&e) => Error::NoSuchVersion {
                name: self.name.clone(),
                message: format!(
                    "{at:?} is not in the table's log (the log keeps 30 days by default): {e}"
                ),
            },
            DeltaTableError::InvalidVersion(_) | DeltaTableError::InvalidDateTimeString { .. } => {
                Error::NoSuchVersion {
                    name: self.name.clone(),
                    message: format!("{at:?}: {e}"),
                }
            }
            e => {
                let s = e.to_string();
                if s.contains("before") || s.contains("earliest") || s.contains("timestamp") {
                    Error::NoSuchVersion {
                        name: self.name.clone(),
                        message: format!("no version as of {at:?}: {e}"),
                    }
                } else {
                    Error::delta(&self.name, e)
                }
            }
        })
    }

    /// Plan the read and start it.
    pub async fn execute(self) -> Result<Rows> {
        crate::name::check_name(&self.name)?;
        if self.last && self.version_key.is_some() {
            return Err(Error::InvalidInput(
                "--last and --version both choose a load; give one".into(),
            ));
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
        let layout = Layout::of_table(snapshot.metadata())?;
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
                return Err(Error::InvalidInput(format!(
                    "dataset '{name}' has no version keys (it was not written by tessera put)"
                )));
            }
            df = df
                .filter(Expr::Column(Column::new_unqualified(VERSION_COLUMN)).eq(lit(k.clone())))
                .map_err(|e| Error::query(name, e))?;
        }
        if let Some(f) = &self.filter {
            let e = df.parse_sql_expr(f).map_err(|e| {
                Error::InvalidInput(format!("--where '{f}': {}", clean(&e.to_string())))
            })?;
            df = df.filter(e).map_err(|e| {
                Error::InvalidInput(format!("--where '{f}': {}", clean(&e.to_string())))
            })?;
        }
        let derived = layout.derived_names(&table_schema);
        let columns: Vec<String> = match &self.columns {
            Some(cols) => {
                for c in cols {
                    if table_schema.field_with_name(c).is_err() {
                        return Err(Error::InvalidInput(format!(
                            "--columns: dataset '{name}' has no column '{c}' (columns: {})",
                            table_schema
                                .fields()
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
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
        assert!("yesterday".parse::<AsOf>().is_err());
    }
}
