//! Compaction: rebalance the files of an existing table (merge small files,
//! split oversized ones, close gaps in the numbering), through the same
//! journal as packing.

use std::collections::HashSet;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use futures::future::BoxFuture;
use tessera_formats::{infer_schema, parquet_schema, read, FileFormat, ReadOptions, RecordLayout};
use tessera_store::Location;
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::journal::{Fault, InputRecord, OutputRecord, PackTarget, RunRecord};
use crate::naming;
use crate::plan::{ExistingFile, Folder, INFER_BYTES};
use crate::run::{self, Committed, Operation, Progress, Settings, Staged, Staging, FULL_FRACTION};
use crate::writers::Writers;

/// Rebalances `OUTPUT/TABLE/`: in each folder of the table (or only the
/// partition folder given), the files from the first one off the size limit
/// on are read again and written anew from its number. Nothing happens until
/// it is awaited; [`Compact::plan`] shows what it would do.
#[derive(Clone)]
#[must_use = "a compaction does nothing until it is awaited"]
pub struct Compact {
    settings: Settings,
}

/// The files of one folder a compaction rewrites.
#[derive(Debug, Clone)]
pub struct CompactFolder {
    /// The folder, relative to the table folder (empty, or ending in `/`).
    pub rel: String,
    /// The number of the first file written.
    pub first_n: u64,
    /// The files read again (and replaced or removed).
    pub files: Vec<ExistingFile>,
}

/// What a compaction will do.
#[derive(Debug, Clone)]
pub struct CompactPlan {
    /// The table folder.
    pub table_url: String,
    /// The table's format.
    pub format: FileFormat,
    /// Per folder, the files rewritten or removed; empty when the table is
    /// balanced.
    pub folders: Vec<CompactFolder>,
    /// Bytes of the files read again.
    pub input_bytes: u64,
    /// The schema of the rows (of the first file read).
    pub schema: SchemaRef,
}

/// What a compaction did.
#[derive(Debug, Clone)]
pub struct CompactReport {
    /// The plan it followed.
    pub plan: CompactPlan,
    /// The journal sequence number of the run (`None`: balanced already, nothing written).
    pub seq: Option<u64>,
    /// Files written (paths relative to the table folder).
    pub outputs: Vec<OutputRecord>,
    /// Files removed (paths relative to the table folder).
    pub deleted: Vec<String>,
    /// Rows read.
    pub rows: u64,
}

impl Compact {
    /// Rebalance `output/TABLE/`.
    pub fn new(output: Location, table: impl Into<String>) -> Compact {
        Compact {
            settings: Settings::new(output, table.into()),
        }
    }

    /// Rebalance the series `{TABLE}_{SUFFIX}_{N}` (by default the files
    /// without a suffix).
    pub fn with_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.settings.suffix = Some(suffix.into());
        self
    }

    /// The format the table's files must have (by default that of the first
    /// file found; a file of another format is an error).
    pub fn with_output_format(mut self, format: FileFormat) -> Self {
        self.settings.output_format = Some(format);
        self
    }

    /// The size limit of the files in bytes (default
    /// [`DEFAULT_MAX_FILE_SIZE`](crate::DEFAULT_MAX_FILE_SIZE)).
    pub fn with_max_file_size(mut self, bytes: u64) -> Self {
        self.settings.max_file_size = bytes;
        self
    }

    /// Rebalance only the Hive partition folder `key=value` (call again to
    /// nest); by default every folder of the table.
    pub fn with_partition(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.partition.push((key.into(), value.into()));
        self
    }

    /// Allow stores that do not enforce conditional writes: the caller
    /// promises that no other run writes to this table at the same time.
    pub fn with_single_writer(mut self, single_writer: bool) -> Self {
        self.settings.single_writer = single_writer;
        self
    }

    /// Target compressed size of Parquet row groups (default 16 MiB).
    pub fn with_row_group_bytes(mut self, bytes: u64) -> Self {
        self.settings.row_group_bytes = Some(bytes);
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

    /// Counters to poll for progress while the compaction runs.
    pub fn progress(&self) -> Arc<Progress> {
        self.settings.progress.clone()
    }

    /// What the compaction would do, without writing anything.
    pub async fn plan(&self) -> Result<CompactPlan> {
        let this = self.clone();
        run::blocking(move |rt| run::plan_only(&this, rt)).await
    }

    /// Every folder of the series under `rel`: `rel` itself and its
    /// partition folders, recursively.
    fn all_folders(
        &self,
        table_dir: &Location,
        rel: &str,
        ext: &mut Option<String>,
        rt: &Handle,
    ) -> Result<Vec<Folder>> {
        let mut out = vec![self.settings.scan_folder(table_dir, rel, ext, rt)?];
        let loc = if rel.is_empty() {
            table_dir.clone()
        } else {
            table_dir.join(rel.trim_end_matches('/'))?
        };
        let (_, dirs) = rt.block_on(loc.list_dir())?;
        for d in dirs {
            let name = d.filename().unwrap_or_default().to_string();
            if naming::hidden(&name) || !name.contains('=') {
                continue;
            }
            out.extend(self.all_folders(table_dir, &format!("{rel}{name}/"), ext, rt)?);
        }
        Ok(out)
    }

    /// Files of a folder that a compaction rewrites: from the first file
    /// (other than the last) outside the size band, or the first gap in the
    /// numbering, to the end. `None`: the folder is balanced.
    fn misfits(&self, files: &[ExistingFile]) -> Option<(u64, Vec<ExistingFile>)> {
        let t = self.settings.max_file_size as f64;
        let start = files.iter().enumerate().position(|(i, f)| {
            let last = i + 1 == files.len();
            let off = !last && ((f.size as f64) < t * FULL_FRACTION || (f.size as f64) > t * 1.05);
            let over = last && (f.size as f64) > t * 1.05;
            let gap = i > 0 && f.n != files[i - 1].n + 1;
            off || over || gap
        })?;
        let first_n = if start == 0 {
            files[0].n
        } else {
            files[start - 1].n + 1
        };
        Some((first_n, files[start..].to_vec()))
    }
}

impl IntoFuture for Compact {
    type Output = Result<CompactReport>;
    type IntoFuture = BoxFuture<'static, Result<CompactReport>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (plan, committed) = run::blocking(move |rt| run::execute(&self, rt)).await?;
            Ok(match committed {
                Some(Committed { seq, staged }) => CompactReport {
                    plan,
                    seq: Some(seq),
                    outputs: staged.outputs,
                    deleted: staged.deletes,
                    rows: staged.rows,
                },
                None => CompactReport {
                    plan,
                    seq: None,
                    outputs: Vec::new(),
                    deleted: Vec::new(),
                    rows: 0,
                },
            })
        })
    }
}

impl Operation for Compact {
    type Plan = CompactPlan;
    const KIND: &'static str = "compact";

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn validate(&self) -> Result<()> {
        self.settings.validate()
    }

    fn plan(&self, _runs: &[RunRecord], rt: &Handle) -> Result<CompactPlan> {
        let s = &self.settings;
        let table_dir = s.table_dir()?;
        let mut ext: Option<String> = s.output_format.map(|f| f.extension().to_string());
        let found = if s.partition.is_empty() {
            self.all_folders(&table_dir, "", &mut ext, rt)?
        } else {
            vec![s.scan_folder(&table_dir, &s.static_rel(), &mut ext, rt)?]
        };
        let Some(ext) = ext else {
            return Err(Error::NoInput {
                url: table_dir.url(),
            });
        };
        let format = FileFormat::from_extension(&ext)?;
        let folders: Vec<CompactFolder> = found
            .iter()
            .filter_map(|f| {
                self.misfits(&f.files)
                    .map(|(first_n, files)| CompactFolder {
                        rel: f.rel.clone(),
                        first_n,
                        files,
                    })
            })
            .collect();
        let schema = match folders.first().and_then(|f| f.files.first()) {
            Some(c) => {
                let loc = table_dir.join(&c.path)?;
                infer_schema(&loc, format, INFER_BYTES, rt)?.unwrap_or_else(Schema::empty)
            }
            None => Schema::empty(),
        };
        Ok(CompactPlan {
            table_url: table_dir.url(),
            format,
            input_bytes: folders
                .iter()
                .flat_map(|f| f.files.iter().map(|c| c.size))
                .sum(),
            folders,
            schema: Arc::new(schema),
        })
    }

    fn has_work(plan: &CompactPlan) -> bool {
        !plan.folders.is_empty()
    }

    fn input_bytes(plan: &CompactPlan) -> u64 {
        plan.input_bytes
    }

    fn consumed(_plan: &CompactPlan) -> Vec<InputRecord> {
        Vec::new()
    }

    fn target(&self) -> Option<PackTarget> {
        None
    }

    /// Per folder, re-read the files from the first misfit on and write
    /// them again from its number; files not written over are deleted.
    fn write(&self, plan: &CompactPlan, staging: &Staging) -> Result<Staged> {
        let progress = &self.settings.progress;
        let bytes_read = Arc::new(AtomicU64::new(0));
        let ropts = ReadOptions::new(staging.rt.clone()).with_bytes_read(bytes_read.clone());
        let mut w = Writers::new(
            &self.settings,
            None,
            staging,
            plan.format,
            plan.schema.clone(),
        );
        let mut rows = 0u64;
        let mut deletes = Vec::new();
        for folder in &plan.folders {
            w.replace(folder.files.iter().map(|f| f.path.clone()));
            w.add_folder(&folder.rel, folder.first_n, None);
            for f in &folder.files {
                let loc = staging.table_dir.join(&f.path)?;
                let schema = match plan.format.layout {
                    RecordLayout::Parquet => Arc::new(parquet_schema(&loc, staging.rt)?),
                    _ => plan.schema.clone(),
                };
                for b in read(&loc, plan.format, schema, &ropts)? {
                    let b = b?;
                    rows += b.num_rows() as u64;
                    progress.rows.store(rows, Ordering::Relaxed);
                    progress
                        .bytes_read
                        .store(bytes_read.load(Ordering::Relaxed), Ordering::Relaxed);
                    w.push(&folder.rel, b)?;
                }
            }
            w.drain(&folder.rel)?;
            let written: HashSet<&str> = w.outputs().iter().map(|o| o.path.as_str()).collect();
            deletes.extend(
                folder
                    .files
                    .iter()
                    .filter(|f| !written.contains(f.path.as_str()))
                    .map(|f| f.path.clone()),
            );
        }
        Ok(Staged {
            outputs: w.finish()?,
            deletes,
            rows,
        })
    }
}
