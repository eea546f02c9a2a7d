//! The pack operation: its builder, its report, and the loop that reads the
//! inputs into the writers.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use futures::future::BoxFuture;
use tessera_formats::{read, Cast, FileFormat, ReadOptions};
use tessera_store::Location;
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::journal::{Fault, InputRecord, OutputRecord, PackTarget, RunRecord};
use crate::naming;
use crate::plan::PackPlan;
use crate::run::{self, Committed, Operation, Progress, Settings, Staged, Staging};
use crate::writers::Writers;

/// Packs every file under `INPUT/TABLE/` into `OUTPUT/TABLE/`. See the crate
/// docs. Nothing happens until it is awaited; [`Pack::plan`] shows what it
/// would do.
#[derive(Clone)]
#[must_use = "a pack does nothing until it is awaited"]
pub struct Pack {
    pub(crate) settings: Settings,
    pub(crate) input: Location,
    pub(crate) input_format: Option<FileFormat>,
    pub(crate) partition_by: Option<String>,
    pub(crate) schema: Option<Schema>,
    pub(crate) force: bool,
}

/// What a pack did.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// The plan it followed.
    pub plan: PackPlan,
    /// The journal sequence number of the run (`None`: nothing to pack, nothing written).
    pub seq: Option<u64>,
    /// Files written (paths relative to the table folder).
    pub outputs: Vec<OutputRecord>,
    /// Rows read from the inputs.
    pub rows: u64,
}

impl Pack {
    /// Pack `input/TABLE/` into `output/TABLE/`.
    pub fn new(input: Location, output: Location, table: impl Into<String>) -> Pack {
        Pack {
            settings: Settings::new(output, table.into()),
            input,
            input_format: None,
            partition_by: None,
            schema: None,
            force: false,
        }
    }

    /// Name files `{TABLE}_{SUFFIX}_{N}` (a series of its own beside the
    /// files without a suffix).
    pub fn with_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.settings.suffix = Some(suffix.into());
        self
    }

    /// The output format (default `snappy.parquet`).
    pub fn with_output_format(mut self, format: FileFormat) -> Self {
        self.settings.output_format = Some(format);
        self
    }

    /// Read only inputs of this format (by default every input is read, and
    /// inputs of several formats are an error).
    pub fn with_input_format(mut self, format: FileFormat) -> Self {
        self.input_format = Some(format);
        self
    }

    /// The size limit of output files in bytes (default
    /// [`DEFAULT_MAX_FILE_SIZE`](crate::DEFAULT_MAX_FILE_SIZE)).
    pub fn with_max_file_size(mut self, bytes: u64) -> Self {
        self.settings.max_file_size = bytes;
        self
    }

    /// Write into the Hive partition folder `key=value` (call again to nest).
    pub fn with_partition(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.partition.push((key.into(), value.into()));
        self
    }

    /// Split rows into one partition folder per value of `column` (the
    /// column moves into the folder name).
    pub fn with_partition_by(mut self, column: impl Into<String>) -> Self {
        self.partition_by = Some(column.into());
        self
    }

    /// Cast the columns it names to these declared types.
    pub fn with_schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Pack inputs again even if a previous pack put them into the same target.
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Allow stores that do not enforce conditional writes: the caller
    /// promises that no other run writes to this table at the same time.
    pub fn with_single_writer(mut self, single_writer: bool) -> Self {
        self.settings.single_writer = single_writer;
        self
    }

    /// Target compressed size of Parquet row groups (default 16 MiB; 8 MiB
    /// with a split by column, where each partition holds one open).
    pub fn with_row_group_bytes(mut self, bytes: u64) -> Self {
        self.settings.row_group_bytes = Some(bytes);
        self
    }

    /// The memory a split by column may use, in bytes (default 1 GiB):
    /// rows wait grouped by folder in memory up to a share of it and on
    /// local disk beyond, and each folder's files are written in turn, so
    /// memory does not grow with the number of folders. At least 4 MiB.
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        self.settings.memory_budget = bytes.max(4 << 20);
        self
    }

    /// Crash testing: abort the process at `point` (`after-stage`,
    /// `after-commit`, `mid-apply`, `mid-cleanup`), as a kill would there.
    /// Does nothing unless tessera-pack is built with the `fault-injection`
    /// feature.
    pub fn with_fault_point(mut self, point: impl Into<String>) -> Self {
        self.settings.fault = Fault::at(point.into());
        self
    }

    /// Counters to poll for progress while the pack runs.
    pub fn progress(&self) -> Arc<Progress> {
        self.settings.progress.clone()
    }

    /// What the pack would do, without writing anything.
    pub async fn plan(&self) -> Result<PackPlan> {
        let this = self.clone();
        run::blocking(move |rt| run::plan_only(&this, rt)).await
    }

    /// Where this pack puts its rows.
    pub(crate) fn target(&self) -> PackTarget {
        PackTarget {
            partition: self.settings.partition.clone(),
            partition_by: self.partition_by.clone(),
        }
    }
}

impl IntoFuture for Pack {
    type Output = Result<PackReport>;
    type IntoFuture = BoxFuture<'static, Result<PackReport>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (plan, committed) = run::blocking(move |rt| run::execute(&self, rt)).await?;
            Ok(match committed {
                Some(Committed { seq, staged }) => PackReport {
                    plan,
                    seq: Some(seq),
                    outputs: staged.outputs,
                    rows: staged.rows,
                },
                None => PackReport {
                    plan,
                    seq: None,
                    outputs: Vec::new(),
                    rows: 0,
                },
            })
        })
    }
}

impl Operation for Pack {
    type Plan = PackPlan;
    const KIND: &'static str = "pack";

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn validate(&self) -> Result<()> {
        self.settings.validate()?;
        if let Some(c) = &self.partition_by {
            naming::check_key(c)?;
            if self.settings.partition.iter().any(|(k, _)| k == c) {
                return Err(Error::InvalidOption {
                    option: "partition_by",
                    message: format!("column '{c}' is also a static partition key"),
                });
            }
        }
        Ok(())
    }

    fn plan(&self, runs: &[RunRecord], rt: &Handle) -> Result<PackPlan> {
        self.plan_with(runs, rt)
    }

    fn has_work(plan: &PackPlan) -> bool {
        !plan.inputs.is_empty()
    }

    fn input_bytes(plan: &PackPlan) -> u64 {
        plan.input_bytes
    }

    fn consumed(plan: &PackPlan) -> Vec<InputRecord> {
        plan.inputs.iter().map(|i| i.record.clone()).collect()
    }

    fn target(&self) -> Option<PackTarget> {
        Some(Pack::target(self))
    }

    fn write(&self, plan: &PackPlan, staging: &Staging) -> Result<Staged> {
        let progress = &self.settings.progress;
        let bytes_read = Arc::new(AtomicU64::new(0));
        let ropts = ReadOptions::new(staging.rt.clone())
            .with_cast(if self.schema.is_some() {
                Cast::Declared
            } else {
                Cast::Lossless
            })
            .with_bytes_read(bytes_read.clone());
        // Split by column, the column lives in the folder names, not the files.
        let file_schema: SchemaRef = match &self.partition_by {
            Some(c) => Arc::new(Schema::new(
                plan.schema
                    .fields()
                    .iter()
                    .filter(|f| f.name() != c)
                    .cloned()
                    .collect::<Vec<_>>(),
            )),
            None => plan.schema.clone(),
        };
        let mut w = Writers::new(
            &self.settings,
            self.partition_by.as_deref(),
            staging,
            plan.format,
            file_schema,
        );
        if self.partition_by.is_none() {
            w.add_folder(
                &self.settings.static_rel(),
                plan.first_new,
                plan.rewrite.clone(),
            );
        }
        let mut rows = 0u64;
        for i in &plan.inputs {
            for b in read(&self.input_at(i), i.format, plan.schema.clone(), &ropts)? {
                let b = b?;
                rows += b.num_rows() as u64;
                progress.rows.store(rows, Ordering::Relaxed);
                progress
                    .bytes_read
                    .store(bytes_read.load(Ordering::Relaxed), Ordering::Relaxed);
                w.route(&b)?;
            }
            progress
                .bytes_read
                .store(bytes_read.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        Ok(Staged {
            outputs: w.finish()?,
            deletes: Vec::new(),
            rows,
        })
    }
}
