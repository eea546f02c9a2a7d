//! Running a pack or a compaction: the settings both share, and the commit
//! loop through the journal (recover, plan, stage, commit, apply; start over
//! when another run committed first).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tessera_formats::FileFormat;
use tessera_store::Location;
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::journal::{Fault, InputRecord, Journal, OutputRecord, PackTarget, RunRecord};
use crate::naming;

/// Default size limit of output files: 256 MB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256_000_000;

/// A file within this fraction under the limit counts as full (it is not
/// rewritten to add a sliver of rows).
pub const FULL_FRACTION: f64 = 0.95;

/// How many times a run starts over when other runs keep committing first.
const ATTEMPTS: usize = 5;

/// Counters a caller can poll to show progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Input bytes to read (known once planned).
    pub bytes_total: AtomicU64,
    /// Input bytes read so far (compressed bytes for compressed inputs).
    pub bytes_read: AtomicU64,
    /// Rows read so far.
    pub rows: AtomicU64,
    /// Output files finished so far.
    pub files: AtomicU64,
}

impl Progress {
    /// Start counting a new attempt that reads `bytes_total` bytes.
    fn restart(&self, bytes_total: u64) {
        self.bytes_total.store(bytes_total, Ordering::Relaxed);
        self.bytes_read.store(0, Ordering::Relaxed);
        self.rows.store(0, Ordering::Relaxed);
        self.files.store(0, Ordering::Relaxed);
    }
}

/// The settings a pack and a compaction share: the table, its series of
/// files, and how a run writes them.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) output: Location,
    pub(crate) table: String,
    pub(crate) suffix: Option<String>,
    pub(crate) output_format: Option<FileFormat>,
    pub(crate) max_file_size: u64,
    pub(crate) partition: Vec<(String, String)>,
    pub(crate) row_group_bytes: Option<u64>,
    pub(crate) memory_budget: u64,
    pub(crate) single_writer: bool,
    pub(crate) progress: Arc<Progress>,
    pub(crate) fault: Fault,
}

impl Settings {
    pub(crate) fn new(output: Location, table: String) -> Settings {
        Settings {
            output,
            table,
            suffix: None,
            output_format: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            partition: Vec::new(),
            row_group_bytes: None,
            memory_budget: tessera_formats::spool::DEFAULT_MEMORY_BUDGET,
            single_writer: false,
            progress: Arc::default(),
            fault: Fault::default(),
        }
    }

    /// The table folder.
    pub(crate) fn table_dir(&self) -> Result<Location> {
        Ok(self.output.join(&self.table)?)
    }

    /// The static partition folders, relative to the table folder (empty,
    /// or ending in `/`).
    pub(crate) fn static_rel(&self) -> String {
        self.partition
            .iter()
            .map(|(k, v)| format!("{}/", naming::partition_dir(k, Some(v)).unwrap_or_default()))
            .collect()
    }

    /// Whether an existing file is under the limit (new rows go into it).
    pub(crate) fn partial(&self, size: u64) -> bool {
        (size as f64) < self.max_file_size as f64 * FULL_FRACTION
    }

    pub(crate) fn validate(&self) -> Result<()> {
        naming::check_name("table name", &self.table)?;
        if let Some(s) = &self.suffix {
            naming::check_name("suffix", s)?;
        }
        if self.max_file_size < 1024 {
            return Err(Error::InvalidOption {
                option: "max_file_size",
                message: format!("{} bytes is too small: at least 1KiB", self.max_file_size),
            });
        }
        for (k, v) in &self.partition {
            naming::check_partition(k, v)?;
        }
        if let Some(f) = self.output_format {
            if !f.writable() {
                return Err(Error::InvalidOption {
                    option: "output_format",
                    message: format!(
                        "cannot write {f}: output formats are csv, tsv, jsonl, parquet, snappy.parquet, zstd.parquet, gzip.parquet, uncompressed.parquet"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Where a run stages its files.
pub(crate) struct Staging<'a> {
    pub(crate) table_dir: &'a Location,
    pub(crate) journal: &'a Journal,
    pub(crate) run: &'a str,
    pub(crate) rt: &'a Handle,
}

/// What a run wrote under staging.
pub(crate) struct Staged {
    pub(crate) outputs: Vec<OutputRecord>,
    pub(crate) deletes: Vec<String>,
    pub(crate) rows: u64,
}

/// A committed run.
pub(crate) struct Committed {
    pub(crate) seq: u64,
    pub(crate) staged: Staged,
}

/// A journaled operation: a pack or a compaction.
pub(crate) trait Operation {
    /// What it will do.
    type Plan;
    /// The `kind` of its run records.
    const KIND: &'static str;

    fn settings(&self) -> &Settings;
    /// Check the settings (before anything is read).
    fn validate(&self) -> Result<()>;
    /// Plan against the committed runs.
    fn plan(&self, runs: &[RunRecord], rt: &Handle) -> Result<Self::Plan>;
    /// Whether the plan writes anything.
    fn has_work(plan: &Self::Plan) -> bool;
    /// The bytes the plan reads.
    fn input_bytes(plan: &Self::Plan) -> u64;
    /// The inputs the plan consumes (recorded in the journal).
    fn consumed(plan: &Self::Plan) -> Vec<InputRecord>;
    /// Where the plan puts its rows (recorded for packs).
    fn target(&self) -> Option<PackTarget>;
    /// Write every output file of the run under staging.
    fn write(&self, plan: &Self::Plan, staging: &Staging) -> Result<Staged>;
}

/// Plan without writing anything.
pub(crate) fn plan_only<O: Operation>(op: &O, rt: &Handle) -> Result<O::Plan> {
    op.validate()?;
    let journal = Journal::new(op.settings().table_dir()?, Fault::default());
    let runs: Vec<RunRecord> = rt
        .block_on(journal.runs())?
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    op.plan(&runs, rt)
}

/// Run an operation: recover interrupted runs, plan, stage, commit, apply;
/// start over from the new state when another run commits first.
pub(crate) fn execute<O: Operation>(op: &O, rt: &Handle) -> Result<(O::Plan, Option<Committed>)> {
    op.validate()?;
    let settings = op.settings();
    let table_dir = settings.table_dir()?;
    if !settings.single_writer && !rt.block_on(table_dir.capabilities())?.conditional_create {
        return Err(Error::UnsafeStore {
            url: table_dir.url(),
        });
    }
    let journal = Journal::new(table_dir.clone(), settings.fault.clone());
    for attempt in 0..ATTEMPTS {
        let runs = rt.block_on(journal.recover())?;
        let plan = op.plan(&runs, rt)?;
        if !O::has_work(&plan) {
            return Ok((plan, None));
        }
        settings.progress.restart(O::input_bytes(&plan));
        let run = uuid::Uuid::new_v4().simple().to_string();
        rt.block_on(journal.claim(&run))?;
        let staging = Staging {
            table_dir: &table_dir,
            journal: &journal,
            run: &run,
            rt,
        };
        let staged = match op.write(&plan, &staging) {
            Ok(s) => s,
            Err(e) => {
                let _ = rt.block_on(journal.remove_staging(&run));
                return Err(e);
            }
        };
        journal.fault("after-stage");
        let rec = RunRecord {
            tessera_pack: 1,
            seq: Journal::next_seq(&runs),
            run: run.clone(),
            kind: O::KIND.to_string(),
            committed: chrono::Utc::now().to_rfc3339(),
            inputs: O::consumed(&plan),
            target: op.target(),
            outputs: staged.outputs.clone(),
            deletes: staged.deletes.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        match rt.block_on(journal.commit(&rec)) {
            Ok(()) => {
                rt.block_on(journal.apply(&rec))?;
                return Ok((
                    plan,
                    Some(Committed {
                        seq: rec.seq,
                        staged,
                    }),
                ));
            }
            Err(Error::Conflict { .. }) => {
                tracing::warn!(attempt, "another run committed first; starting over");
                let _ = rt.block_on(journal.remove_staging(&run));
            }
            Err(e) => {
                // The commit's outcome is unknown (a request that failed may
                // still have landed): keep the staged files, so that a
                // committed record can always be applied by the next run.
                // Unused staging folders are removed by a later run's cleanup.
                return Err(e);
            }
        }
    }
    Err(Error::Conflict {
        table: table_dir.url(),
    })
}

/// Run blocking work (planning, reading, encoding) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce(&Handle) -> Result<T> + Send + 'static,
) -> Result<T> {
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || work(&rt))
        .await
        .map_err(|e| Error::Internal(format!("the pack task failed: {e}")))?
}
