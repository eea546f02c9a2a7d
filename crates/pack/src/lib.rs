//! # tessera-pack
//!
//! Packs every file under `INPUT_BASE/TABLE/` — CSV, TSV, JSON Lines,
//! Parquet, gzip or zstd text — into evenly sized files of one format under
//! `OUTPUT_BASE/TABLE/`, named `{TABLE}_{N}.{EXT}` (or
//! `{TABLE}_{SUFFIX}_{N}.{EXT}`):
//!
//! * the latest file of the folder (highest `N`), if under the size limit,
//!   is rewritten holding its rows followed by new rows; then `N+1`, `N+2`, …
//!   each filled to the limit (within a few percent, measured on the written
//!   bytes);
//! * `--partition key=value` packs into one Hive partition folder,
//!   `--partition-by COLUMN` splits rows into one folder per value;
//! * [`Packer::compact`] rebalances an existing table;
//! * crash safety and exactly-once: see [`journal`] — a run killed at any
//!   instant and run again leaves every input row in the output exactly once,
//!   inputs already packed (same URL and ETag) are skipped, and readers never
//!   see a half-written file.
//!
//! Data streams through: memory holds a few MiB of text chunks per core and
//! one Parquet row group per open output file, whatever the input size.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tessera_pack::Packer;
//! use tessera_store::{Location, PublishMode, StoreOptions};
//!
//! let o = StoreOptions::default();
//! let land = Location::open("memory://pack-doc/land", &o).await?;
//! land.join("sales/jan.csv")?.publish("id,amount\n1,9.5\n2,3.0\n", PublishMode::Overwrite).await?;
//! let db = Location::open("memory://pack-doc/db", &o).await?;
//!
//! let report = Packer::new(land, db.clone(), "sales").max_file_size(1 << 20).execute().await?;
//! assert_eq!(report.rows, 2);
//! assert_eq!(report.outputs[0].path, "sales_0.snappy.parquet");
//! assert!(db.join("sales/sales_0.snappy.parquet")?.exists().await?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
pub mod journal;
pub mod naming;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use tessera_formats::{
    check_append, infer_schema, merge_inferred, nullable, open_sink, parquet_schema, read, Cast,
    FileWriter, Format, Layout, ReadOptions, WriteOptions,
};
use tessera_store::{Location, ObjectMeta};
use tokio::runtime::Handle;

pub use error::{Error, Result};
pub use journal::{InputRecord, OutputRecord, PackTarget, RunRecord};

use journal::Journal;

/// Default `--max-file-size`: 256 MB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256_000_000;

/// A file within this fraction under the limit counts as full (it is not
/// rewritten to add a sliver of rows).
pub const FULL_FRACTION: f64 = 0.95;

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

/// Packs a table. See the crate docs.
#[derive(Clone)]
pub struct Packer {
    input: Option<Location>,
    output: Location,
    table: String,
    suffix: Option<String>,
    output_format: Option<Format>,
    input_format: Option<Format>,
    max_file_size: u64,
    partition: Vec<(String, String)>,
    partition_by: Option<String>,
    schema: Option<Schema>,
    dry_run: bool,
    force: bool,
    single_writer: bool,
    row_group_bytes: Option<u64>,
    progress: Arc<Progress>,
}

/// An input file to pack.
#[derive(Debug, Clone)]
pub struct PlannedInput {
    /// The object.
    pub record: InputRecord,
    /// Its format.
    pub format: Format,
    /// Its key in the input store.
    pub path: tessera_store::ObjectPath,
}

/// An existing file of the output that the pack rewrites.
#[derive(Debug, Clone)]
pub struct Existing {
    /// Path relative to the table folder.
    pub path: String,
    /// Its number.
    pub n: u64,
    /// Its size.
    pub size: u64,
}

/// Files of one folder a compaction rewrites.
#[derive(Debug, Clone)]
pub struct CompactFolder {
    /// The folder, relative to the table folder (empty, or ending in `/`).
    pub rel: String,
    /// The number of the first file written.
    pub first_n: u64,
    /// The files read again (and replaced or removed).
    pub files: Vec<Existing>,
}

/// What a pack will do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The table folder.
    pub table_url: String,
    /// The output format.
    pub format: Format,
    /// Files to read, in order.
    pub inputs: Vec<PlannedInput>,
    /// Inputs skipped because a previous pack put them into the same target
    /// (same URL and ETag).
    pub already_packed: Vec<String>,
    /// Inputs packed now that earlier packs put into other targets: the URL
    /// and where it went before.
    pub packed_elsewhere: Vec<(String, PackTarget)>,
    /// Bytes of the inputs.
    pub input_bytes: u64,
    /// The folder written (relative to the table folder; empty for the table
    /// folder itself). With `--partition-by`, the folders below it depend on the data.
    pub folder: String,
    /// The existing file that will be rewritten with new rows appended.
    pub rewrite: Option<Existing>,
    /// Per folder, the existing files a compaction rewrites or removes, and
    /// the number its new files start from.
    pub compact: Vec<CompactFolder>,
    /// The number of the first new file.
    pub first_new: u64,
    /// The schema of the rows.
    pub schema: SchemaRef,
}

impl Plan {
    /// A human description of the plan (what `--dry-run` prints).
    pub fn describe(&self, packer: &Packer) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "table folder: {}", self.table_url);
        if !self.folder.is_empty() {
            let _ = writeln!(s, "partition folder: {}", self.folder);
        }
        if let Some(c) = &packer.partition_by {
            let _ = writeln!(s, "partitions: one folder per value of column '{c}'");
        }
        if self.compact.is_empty() || !self.inputs.is_empty() {
            let _ = writeln!(
                s,
                "inputs: {} file(s), {} ({} already packed, skipped)",
                self.inputs.len(),
                tessera_store::format_size(self.input_bytes),
                self.already_packed.len()
            );
            for i in &self.inputs {
                let _ = writeln!(
                    s,
                    "  {} ({}, {})",
                    i.record.url,
                    i.format,
                    tessera_store::format_size(i.record.size)
                );
            }
            for (url, t) in &self.packed_elsewhere {
                let _ = writeln!(
                    s,
                    "note: {url} was packed into {t} before; it is packed into {} too",
                    packer.target()
                );
            }
        }
        for f in &self.compact {
            for c in &f.files {
                let _ = writeln!(
                    s,
                    "rewrite: {} ({})",
                    c.path,
                    tessera_store::format_size(c.size)
                );
            }
        }
        if let Some(r) = &self.rewrite {
            let _ = writeln!(
                s,
                "rewrite: {} ({}, under the {} limit: new rows are appended to it)",
                r.path,
                tessera_store::format_size(r.size),
                tessera_store::format_size(packer.max_file_size)
            );
        }
        let same = self
            .inputs
            .iter()
            .all(|i| i.format.layout == self.format.layout);
        let bytes = self.input_bytes
            + self.rewrite.as_ref().map(|r| r.size).unwrap_or(0)
            + self
                .compact
                .iter()
                .flat_map(|f| f.files.iter().map(|c| c.size))
                .sum::<u64>();
        let est = if same && packer.partition_by.is_none() {
            format!(
                ", about {} file(s) of {}",
                bytes.div_ceil(packer.max_file_size).max(1),
                tessera_store::format_size(packer.max_file_size)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "create: {} onward as {}{est}",
            naming::file_name(
                &packer.table,
                packer.suffix.as_deref(),
                self.first_new,
                self.format.extension()
            ),
            self.format
        );
        let _ = writeln!(
            s,
            "columns: {}",
            self.schema
                .fields()
                .iter()
                .map(|f| format!("{} {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        s
    }
}

/// What a pack did.
#[derive(Debug)]
pub struct PackReport {
    /// The plan it followed.
    pub plan: Plan,
    /// The journal sequence number of the run (None: nothing written).
    pub seq: Option<u64>,
    /// Files written (paths relative to the table folder).
    pub outputs: Vec<OutputRecord>,
    /// Files removed (compaction).
    pub deleted: Vec<String>,
    /// Rows read from the inputs.
    pub rows: u64,
}

impl PackReport {
    /// A report of a run that wrote nothing (dry run, nothing to do).
    fn unchanged(plan: Plan) -> PackReport {
        PackReport {
            plan,
            seq: None,
            outputs: vec![],
            deleted: vec![],
            rows: 0,
        }
    }
}

struct Folder {
    /// Relative to the table folder, with a trailing `/` (or empty).
    rel: String,
    /// Files of the series, by number.
    files: Vec<Existing>,
}

impl Packer {
    /// Pack `input/TABLE/` into `output/TABLE/`.
    pub fn new(input: Location, output: Location, table: &str) -> Packer {
        Packer {
            input: Some(input),
            output,
            table: table.to_string(),
            suffix: None,
            output_format: None,
            input_format: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            partition: Vec::new(),
            partition_by: None,
            schema: None,
            dry_run: false,
            force: false,
            single_writer: false,
            row_group_bytes: None,
            progress: Arc::default(),
        }
    }

    /// Rebalance `output/TABLE/` (the folder of `--partition`, or every
    /// folder of the table): merge small files, split oversized ones.
    pub fn compact(output: Location, table: &str) -> Packer {
        let mut p = Packer::new(output.clone(), output, table);
        p.input = None;
        p
    }

    /// Name files `{TABLE}_{SUFFIX}_{N}`.
    pub fn suffix(mut self, s: Option<String>) -> Self {
        self.suffix = s;
        self
    }
    /// The output format (default `snappy.parquet`).
    pub fn output_format(mut self, f: Format) -> Self {
        self.output_format = Some(f);
        self
    }
    /// Read only inputs of this format.
    pub fn input_format(mut self, f: Option<Format>) -> Self {
        self.input_format = f;
        self
    }
    /// The size limit of output files.
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }
    /// Write into the Hive partition `key=value` (repeatable: nested).
    pub fn partition(mut self, key: &str, value: &str) -> Self {
        self.partition.push((key.to_string(), value.to_string()));
        self
    }
    /// Split rows into one partition folder per value of `column`.
    pub fn partition_by(mut self, column: Option<String>) -> Self {
        self.partition_by = column;
        self
    }
    /// Cast columns to these declared types.
    pub fn schema(mut self, s: Option<Schema>) -> Self {
        self.schema = s;
        self
    }
    /// Plan only.
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }
    /// Pack inputs again even if a previous pack consumed them.
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }
    /// Allow packing on stores that do not enforce conditional writes
    /// (the caller promises no concurrent pack into this table).
    pub fn single_writer(mut self, yes: bool) -> Self {
        self.single_writer = yes;
        self
    }
    /// Target compressed size of Parquet row groups (default 16 MiB, 8 MiB
    /// with a split by column, where each partition holds one open).
    pub fn row_group_bytes(mut self, bytes: Option<u64>) -> Self {
        self.row_group_bytes = bytes;
        self
    }
    /// Counters to poll for progress.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Where this pack puts its rows (the key of the packed-inputs memory).
    pub fn target(&self) -> PackTarget {
        PackTarget {
            partition: self.partition.clone(),
            partition_by: self.partition_by.clone(),
        }
    }

    fn input_at(&self, i: &PlannedInput) -> Location {
        self.input
            .as_ref()
            .expect("inputs come from an input folder")
            .with_path(i.path.clone())
    }

    fn table_dir(&self) -> Result<Location> {
        Ok(self.output.join(&self.table)?)
    }

    fn static_rel(&self) -> String {
        self.partition
            .iter()
            .map(|(k, v)| format!("{}/", naming::partition_dir(k, Some(v)).unwrap_or_default()))
            .collect()
    }

    fn validate(&self) -> Result<()> {
        naming::check_name("table name", &self.table)?;
        if let Some(s) = &self.suffix {
            naming::check_name("suffix", s)?;
        }
        if self.max_file_size < 1024 {
            return Err(Error::InvalidInput(format!(
                "--max-file-size {} is too small: at least 1KiB",
                self.max_file_size
            )));
        }
        for (k, v) in &self.partition {
            naming::parse_partition(&format!("{k}={v}"))?;
        }
        if let Some(c) = &self.partition_by {
            naming::check_key(c)?;
            if self.partition.iter().any(|(k, _)| k == c) {
                return Err(Error::InvalidInput(format!(
                    "column '{c}' is both in --partition and --partition-by"
                )));
            }
        }
        if let Some(f) = self.output_format {
            if !f.writable() {
                return Err(Error::InvalidInput(format!(
                    "cannot write {f}: output formats are csv, tsv, jsonl, parquet, snappy.parquet, zstd.parquet, gzip.parquet, uncompressed.parquet"
                )));
            }
        }
        Ok(())
    }

    /// Plan without writing anything (what `--dry-run` shows).
    pub async fn plan(&self) -> Result<Plan> {
        let this = self.clone();
        let rt = Handle::current();
        tokio::task::spawn_blocking(move || {
            this.validate()?;
            let journal = Journal::new(this.table_dir()?);
            let runs: Vec<RunRecord> = rt
                .block_on(journal.runs())?
                .into_iter()
                .map(|(r, _)| r)
                .collect();
            this.plan_blocking(&runs, &rt)
        })
        .await
        .expect("the planning task does not panic")
    }

    /// Run the pack (or compaction, or just the plan with `dry_run`).
    pub async fn execute(&self) -> Result<PackReport> {
        let this = self.clone();
        let rt = Handle::current();
        tokio::task::spawn_blocking(move || this.execute_blocking(&rt))
            .await
            .expect("the pack task does not panic")
    }

    fn execute_blocking(&self, rt: &Handle) -> Result<PackReport> {
        self.validate()?;
        let table_dir = self.table_dir()?;
        if self.dry_run {
            let runs: Vec<RunRecord> = rt
                .block_on(Journal::new(table_dir.clone()).runs())?
                .into_iter()
                .map(|(r, _)| r)
                .collect();
            let plan = self.plan_blocking(&runs, rt)?;
            return Ok(PackReport::unchanged(plan));
        }
        if !self.single_writer && !rt.block_on(table_dir.capabilities())?.conditional_create {
            return Err(Error::UnsafeStore {
                url: table_dir.url(),
            });
        }
        let journal = Journal::new(table_dir.clone());
        for attempt in 0..5 {
            let runs = rt.block_on(journal.recover())?;
            let plan = self.plan_blocking(&runs, rt)?;
            if plan.inputs.is_empty() && plan.compact.is_empty() {
                return Ok(PackReport::unchanged(plan));
            }
            let run = uuid::Uuid::new_v4().simple().to_string();
            rt.block_on(journal.claim(&run))?;
            let written = self.write_run(&plan, &journal, &run, rt);
            let (outputs, deletes, rows) = match written {
                Ok(w) => w,
                Err(e) => {
                    let _ = rt.block_on(journal.remove_staging(&run));
                    return Err(e);
                }
            };
            journal::fault("after-stage");
            let rec = RunRecord {
                tessera_pack: 1,
                seq: Journal::next_seq(&runs),
                run: run.clone(),
                kind: if self.input.is_some() {
                    "pack"
                } else {
                    "compact"
                }
                .to_string(),
                committed: chrono::Utc::now().to_rfc3339(),
                inputs: plan.inputs.iter().map(|i| i.record.clone()).collect(),
                target: self.input.is_some().then(|| self.target()),
                outputs: outputs.clone(),
                deletes: deletes.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            };
            match rt.block_on(journal.commit(&rec)) {
                Ok(()) => {
                    rt.block_on(journal.apply(&rec))?;
                    return Ok(PackReport {
                        plan,
                        seq: Some(rec.seq),
                        outputs,
                        deleted: deletes,
                        rows,
                    });
                }
                Err(Error::Conflict { .. }) => {
                    tracing::warn!(attempt, "another pack committed first; starting over");
                    let _ = rt.block_on(journal.remove_staging(&run));
                    self.progress.bytes_read.store(0, Ordering::Relaxed);
                    self.progress.rows.store(0, Ordering::Relaxed);
                    self.progress.files.store(0, Ordering::Relaxed);
                }
                Err(e) => {
                    let _ = rt.block_on(journal.remove_staging(&run));
                    return Err(e);
                }
            }
        }
        Err(Error::Conflict {
            table: table_dir.url(),
        })
    }

    /// List a folder of the table: the files of this series, checked.
    fn scan_folder(
        &self,
        table_dir: &Location,
        rel: &str,
        ext: &mut Option<String>,
        rt: &Handle,
    ) -> Result<Folder> {
        let loc = if rel.is_empty() {
            table_dir.clone()
        } else {
            table_dir.join(rel.trim_end_matches('/'))?
        };
        let (objs, _) = rt.block_on(loc.list_dir())?;
        let mut files = Vec::new();
        for o in objs {
            let name = o.location.filename().unwrap_or_default().to_string();
            if naming::hidden(&name) {
                continue;
            }
            let url = loc.url_of(&o.location);
            let parsed = naming::parse(&self.table, &name).map_err(|why| Error::OutputFolder {
                url: url.clone(),
                message: format!(
                    "this file breaks the naming convention {}_[SUFFIX_]N.EXT of the table folder: {why}; move it away",
                    self.table
                ),
            })?;
            match ext {
                Some(e) if *e != parsed.ext => {
                    return Err(Error::OutputFolder {
                        url,
                        message: format!(
                            "an existing {} file, but this pack writes {e}: a table folder holds one format (choose --output-ext {} or another folder)",
                            parsed.ext, parsed.ext
                        ),
                    })
                }
                Some(_) => {}
                None => *ext = Some(parsed.ext.clone()),
            }
            if parsed.suffix == self.suffix {
                files.push(Existing {
                    path: format!("{rel}{name}"),
                    n: parsed.n,
                    size: o.size,
                });
            }
        }
        files.sort_by_key(|f| f.n);
        Ok(Folder {
            rel: rel.to_string(),
            files,
        })
    }

    fn partial(&self, f: &Existing) -> bool {
        (f.size as f64) < self.max_file_size as f64 * FULL_FRACTION
    }

    fn plan_blocking(&self, runs: &[RunRecord], rt: &Handle) -> Result<Plan> {
        let table_dir = self.table_dir()?;
        match &self.input {
            Some(input) => self.plan_pack(input, &table_dir, runs, rt),
            None => self.plan_compact(&table_dir, rt),
        }
    }

    fn plan_pack(
        &self,
        input: &Location,
        table_dir: &Location,
        runs: &[RunRecord],
        rt: &Handle,
    ) -> Result<Plan> {
        let in_dir = input.join(&self.table)?;
        let (a, b) = (
            format!("{}/", in_dir.url()),
            format!("{}/", table_dir.url()),
        );
        if a.starts_with(&b) || b.starts_with(&a) {
            return Err(Error::InvalidInput(format!(
                "the input folder {} and the output folder {} overlap; to rebalance a table in place use --compact",
                in_dir.url(),
                table_dir.url()
            )));
        }
        let format = self
            .output_format
            .unwrap_or(Format::from_extension("snappy.parquet")?);
        let objs: Vec<ObjectMeta> = rt.block_on(in_dir.list_all(16))?;
        let base_len = in_dir.path().as_ref().len();
        let mut inputs = Vec::new();
        let mut layouts: HashMap<Layout, String> = HashMap::new();
        for o in objs {
            let key = o.location.as_ref();
            let rel = key.get(base_len..).unwrap_or("").trim_start_matches('/');
            if rel.split('/').any(naming::hidden) {
                continue;
            }
            let url = in_dir.url_of(&o.location);
            let name = o.location.filename().unwrap_or_default();
            let f = Format::from_name(name);
            match (self.input_format, f) {
                (Some(sel), Some(f)) if sel.extension() == f.extension() => {}
                (Some(_), _) => continue,
                (None, None) => {
                    return Err(Error::InvalidInput(format!(
                        "{url}: unknown file format (expected {}); choose the files to read with --input-ext",
                        Format::names()
                    )))
                }
                (None, Some(_)) => {}
            }
            let f = f.expect("checked above");
            layouts.entry(f.layout).or_insert_with(|| url.clone());
            inputs.push(PlannedInput {
                record: InputRecord {
                    url,
                    etag: o.e_tag.clone(),
                    size: o.size,
                },
                format: f,
                path: o.location.clone(),
            });
        }
        if layouts.len() > 1 {
            let mut v: Vec<String> = inputs
                .iter()
                .map(|i| i.format.extension().to_string())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            v.sort();
            return Err(Error::MixedInputs {
                url: in_dir.url(),
                formats: v.join(", "),
            });
        }
        if inputs.is_empty() {
            return Err(Error::NoInput { url: in_dir.url() });
        }
        // The packed-inputs memory is kept per target: packing the same
        // inputs into another partition is not a re-run.
        let here = self.target();
        let mut consumed: HashSet<String> = HashSet::new();
        let mut elsewhere: HashMap<String, PackTarget> = HashMap::new();
        for r in runs {
            for i in &r.inputs {
                match &r.target {
                    Some(t) if *t != here => {
                        elsewhere.entry(i.key()).or_insert_with(|| t.clone());
                    }
                    _ => {
                        consumed.insert(i.key());
                    }
                }
            }
        }
        let mut already_packed = Vec::new();
        if !self.force {
            inputs.retain(|i| {
                let done = consumed.contains(&i.record.key());
                if done {
                    already_packed.push(i.record.url.clone());
                }
                !done
            });
        }
        let packed_elsewhere: Vec<(String, PackTarget)> = inputs
            .iter()
            .filter_map(|i| {
                elsewhere
                    .get(&i.record.key())
                    .map(|t| (i.record.url.clone(), t.clone()))
            })
            .collect();
        let rel = self.static_rel();
        let mut ext = Some(format.extension().to_string());
        let folder = self.scan_folder(table_dir, &rel, &mut ext, rt)?;
        let latest = folder.files.last().cloned();
        let rewrite = latest.clone().filter(|f| self.partial(f));
        let first_new = match (&latest, &rewrite) {
            (Some(l), None) => l.n + 1,
            (Some(l), Some(_)) => l.n + 1,
            (None, _) => 0,
        };
        let schema = self.table_schema(&inputs, table_dir, latest.as_ref(), format, rt)?;
        let input_bytes = inputs.iter().map(|i| i.record.size).sum();
        Ok(Plan {
            table_url: table_dir.url(),
            format,
            inputs,
            already_packed,
            packed_elsewhere,
            input_bytes,
            folder: folder.rel,
            rewrite,
            compact: vec![],
            first_new,
            schema,
        })
    }

    /// The schema of the rows: declared, else the existing table's, else
    /// inferred from the inputs. Conflicts with the existing file are errors
    /// naming the columns.
    fn table_schema(
        &self,
        inputs: &[PlannedInput],
        table_dir: &Location,
        latest: Option<&Existing>,
        format: Format,
        rt: &Handle,
    ) -> Result<SchemaRef> {
        let inferred: Vec<(String, Schema)> = std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .chunks(inputs.len().div_ceil(8).max(1))
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|i| {
                                let loc = self.input_at(i);
                                let s = infer_schema(&loc, i.format, 1 << 20, rt)?;
                                Ok(s.map(|s| (i.record.url.clone(), s)))
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.extend(
                    h.join()
                        .expect("inference does not panic")?
                        .into_iter()
                        .flatten(),
                );
            }
            Ok::<_, Error>(all)
        })?;
        let existing: Option<Schema> = match latest {
            Some(l) => {
                let loc = table_dir.join(&l.path)?;
                infer_schema(&loc, format, 1 << 20, rt)?
            }
            None => None,
        };
        let mut schema: Schema = if let Some(declared) = &self.schema {
            // Declared columns take their declared types; the others are inferred.
            let mut all: Vec<&Schema> = existing.iter().collect();
            all.extend(inferred.iter().map(|(_, s)| s));
            let merged = nullable(&merge_inferred(all));
            let mut fields: Vec<arrow::datatypes::FieldRef> = merged
                .fields()
                .iter()
                .map(|f| match declared.field_with_name(f.name()) {
                    Ok(d) => Arc::new(d.clone()),
                    Err(_) => f.clone(),
                })
                .collect();
            for d in declared.fields() {
                if merged.field_with_name(d.name()).is_err() {
                    fields.push(d.clone());
                }
            }
            Schema::new(fields)
        } else if let (Some(e), Layout::Parquet) = (&existing, format.layout) {
            for (url, s) in &inferred {
                let text = Format::from_name(url).is_some_and(|f| f.is_text());
                let typed = Schema::new(
                    s.fields()
                        .iter()
                        .filter(|f| {
                            !(text && matches!(f.data_type(), DataType::Utf8 | DataType::Null))
                        })
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                check_append(e, &typed, url)?;
            }
            e.clone()
        } else {
            let mut all: Vec<&Schema> = existing.iter().collect();
            all.extend(inferred.iter().map(|(_, s)| s));
            nullable(&merge_inferred(all)).as_ref().clone()
        };
        if let Some(c) = &self.partition_by {
            if schema.field_with_name(c).is_err() && !inferred.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "--partition-by '{c}': no such column (columns: {})",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if schema.fields().is_empty() {
            // Only empty inputs: nothing to learn; any schema will do.
            schema = Schema::empty();
        }
        Ok(Arc::new(schema))
    }

    fn plan_compact(&self, table_dir: &Location, rt: &Handle) -> Result<Plan> {
        let mut ext: Option<String> = self.output_format.map(|f| f.extension().to_string());
        let folders = if self.partition.is_empty() {
            self.all_folders(table_dir, "", &mut ext, rt)?
        } else {
            vec![self.scan_folder(table_dir, &self.static_rel(), &mut ext, rt)?]
        };
        let Some(ext) = ext else {
            return Err(Error::NoInput {
                url: table_dir.url(),
            });
        };
        let format = Format::from_extension(&ext)?;
        let mut compact = Vec::new();
        for f in &folders {
            if let Some((first_n, files)) = self.compact_files(&f.files) {
                compact.push(CompactFolder {
                    rel: f.rel.clone(),
                    first_n,
                    files,
                });
            }
        }
        let schema = match compact.first().map(|f| &f.files[0]) {
            Some(c) => {
                let loc = table_dir.join(&c.path)?;
                Arc::new(infer_schema(&loc, format, 1 << 20, rt)?.unwrap_or_else(Schema::empty))
            }
            None => Arc::new(Schema::empty()),
        };
        let first_new = compact.first().map(|c| c.first_n).unwrap_or(0);
        Ok(Plan {
            table_url: table_dir.url(),
            format,
            inputs: vec![],
            already_packed: vec![],
            packed_elsewhere: vec![],
            input_bytes: compact
                .iter()
                .flat_map(|f| f.files.iter().map(|c| c.size))
                .sum(),
            folder: String::new(),
            rewrite: None,
            compact,
            first_new,
            schema,
        })
    }

    /// Files of a folder that a compaction rewrites: from the first file
    /// (other than the last) outside the size band, or the first gap in the
    /// numbering, to the end.
    fn compact_files(&self, files: &[Existing]) -> Option<(u64, Vec<Existing>)> {
        let t = self.max_file_size as f64;
        let start = files.iter().enumerate().position(|(i, f)| {
            let last = i + 1 == files.len();
            let off = !last && ((f.size as f64) < t * FULL_FRACTION || (f.size as f64) > t * 1.05);
            let over = last && (f.size as f64) > t * 1.05;
            let gap = i > 0 && f.n != files[i - 1].n + 1;
            off || over || gap
        });
        let i = start?;
        let first_n = if i == 0 {
            files[0].n
        } else {
            files[i - 1].n + 1
        };
        Some((first_n, files[i..].to_vec()))
    }

    fn all_folders(
        &self,
        table_dir: &Location,
        rel: &str,
        ext: &mut Option<String>,
        rt: &Handle,
    ) -> Result<Vec<Folder>> {
        let mut out = vec![self.scan_folder(table_dir, rel, ext, rt)?];
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

    /// Write every output file of the run under staging.
    fn write_run(
        &self,
        plan: &Plan,
        journal: &Journal,
        run: &str,
        rt: &Handle,
    ) -> Result<(Vec<OutputRecord>, Vec<String>, u64)> {
        let table_dir = self.table_dir()?;
        let cast = if self.schema.is_some() {
            Cast::Declared
        } else {
            Cast::Lossless
        };
        let mut ropts = ReadOptions::new(rt.clone());
        ropts.cast = cast;
        let bytes_read = Arc::new(AtomicU64::new(0));
        ropts.bytes_read = Some(bytes_read.clone());
        let mut wopts = WriteOptions::new(plan.format).with_target_size(Some(self.max_file_size));
        wopts.row_group_bytes = self
            .row_group_bytes
            .unwrap_or(if self.partition_by.is_some() {
                8 << 20
            } else {
                16 << 20
            });
        self.progress
            .bytes_total
            .store(plan.input_bytes, Ordering::Relaxed);
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
        let mut w = Writers {
            packer: self,
            table_dir: &table_dir,
            journal,
            run,
            rt,
            wopts,
            file_schema,
            targets: HashMap::new(),
            order: Vec::new(),
            existing: HashSet::new(),
            outputs: Vec::new(),
            progress: &self.progress,
        };
        let mut rows = 0u64;
        let mut deletes = Vec::new();
        if self.input.is_some() {
            if self.partition_by.is_none() {
                let rel = self.static_rel();
                w.targets.insert(
                    rel.clone(),
                    Target {
                        rel: rel.clone(),
                        next_n: plan.first_new,
                        pending: plan.rewrite.clone(),
                        current: None,
                    },
                );
                w.order.push(rel);
            }
            for i in &plan.inputs {
                let loc = self.input_at(i);
                for b in read(&loc, i.format, plan.schema.clone(), &ropts)? {
                    let b = b?;
                    rows += b.num_rows() as u64;
                    self.progress.rows.store(rows, Ordering::Relaxed);
                    self.progress
                        .bytes_read
                        .store(bytes_read.load(Ordering::Relaxed), Ordering::Relaxed);
                    w.route(&b)?;
                }
                self.progress
                    .bytes_read
                    .store(bytes_read.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        } else {
            // Compaction: per folder, re-read the files from the first
            // misfit on and write them again from its number.
            for folder in &plan.compact {
                let (rel, files) = (folder.rel.clone(), &folder.files);
                w.existing.extend(files.iter().map(|f| f.path.clone()));
                w.targets.insert(
                    rel.clone(),
                    Target {
                        rel: rel.clone(),
                        next_n: folder.first_n,
                        pending: None,
                        current: None,
                    },
                );
                w.order.push(rel.clone());
                for f in files {
                    let loc = table_dir.join(&f.path)?;
                    let schema = match plan.format.layout {
                        Layout::Parquet => Arc::new(parquet_schema(&loc, rt)?),
                        _ => plan.schema.clone(),
                    };
                    for b in read(&loc, plan.format, schema, &ropts)? {
                        let b = b?;
                        rows += b.num_rows() as u64;
                        w.push(&rel, b)?;
                    }
                }
                w.drain(&rel)?;
                let written: HashSet<&str> = w.outputs.iter().map(|o| o.path.as_str()).collect();
                deletes.extend(
                    files
                        .iter()
                        .filter(|f| !written.contains(f.path.as_str()))
                        .map(|f| f.path.clone()),
                );
            }
        }
        let order = w.order.clone();
        for rel in order {
            w.drain(&rel)?;
        }
        Ok((w.outputs, deletes, rows))
    }
}

struct Open {
    writer: FileWriter,
    name: String,
    staged: String,
    replaces: bool,
}

struct Target {
    rel: String,
    next_n: u64,
    /// The partial latest file, rewritten first when rows arrive.
    pending: Option<Existing>,
    current: Option<Open>,
}

struct Writers<'a> {
    packer: &'a Packer,
    table_dir: &'a Location,
    journal: &'a Journal,
    run: &'a str,
    rt: &'a Handle,
    wopts: WriteOptions,
    file_schema: SchemaRef,
    targets: HashMap<String, Target>,
    order: Vec<String>,
    /// Existing files that new files may replace (compaction).
    existing: HashSet<String>,
    outputs: Vec<OutputRecord>,
    progress: &'a Progress,
}

impl Writers<'_> {
    /// Send rows to their folder.
    fn route(&mut self, b: &RecordBatch) -> Result<()> {
        let base = self.packer.static_rel();
        let Some(col) = &self.packer.partition_by else {
            return self.push(&base, b.clone());
        };
        let idx = b
            .schema()
            .index_of(col)
            .map_err(|_| Error::InvalidInput(format!("--partition-by '{col}': no such column")))?;
        let values = arrow::compute::cast(b.column(idx), &DataType::Utf8).map_err(|e| {
            Error::InvalidInput(format!(
                "--partition-by '{col}': cannot turn values into folder names: {e}"
            ))
        })?;
        let values = values
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("cast to Utf8 gives strings");
        let mut groups: Vec<(Option<String>, Vec<u32>)> = Vec::new();
        let mut index: HashMap<Option<&str>, usize> = HashMap::new();
        for i in 0..values.len() {
            let v = if values.is_null(i) {
                None
            } else {
                Some(values.value(i))
            };
            let g = *index.entry(v).or_insert_with(|| {
                groups.push((v.map(str::to_string), Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i as u32);
        }
        let mut without = b.clone();
        without.remove_column(idx);
        for (v, rows) in groups {
            let sub = if rows.len() == b.num_rows() {
                without.clone()
            } else {
                arrow::compute::take_record_batch(&without, &UInt32Array::from(rows))
                    .map_err(|e| Error::InvalidInput(format!("splitting rows by '{col}': {e}")))?
            };
            let rel = format!("{base}{}/", naming::partition_dir(col, v.as_deref())?);
            self.push(&rel, sub)?;
        }
        Ok(())
    }

    fn target(&mut self, rel: &str) -> Result<&mut Target> {
        if !self.targets.contains_key(rel) {
            // A partition folder seen for the first time: number after its files.
            let mut ext = Some(self.wopts.format.extension().to_string());
            let folder = self
                .packer
                .scan_folder(self.table_dir, rel, &mut ext, self.rt)?;
            let latest = folder.files.last().cloned();
            let pending = latest.clone().filter(|f| self.packer.partial(f));
            self.targets.insert(
                rel.to_string(),
                Target {
                    rel: rel.to_string(),
                    next_n: latest.map(|l| l.n + 1).unwrap_or(0),
                    pending,
                    current: None,
                },
            );
            self.order.push(rel.to_string());
        }
        Ok(self.targets.get_mut(rel).expect("inserted above"))
    }

    fn push(&mut self, rel: &str, batch: RecordBatch) -> Result<()> {
        let mut queue = std::collections::VecDeque::from([batch]);
        // The partial latest file goes first: its rows, then the new ones.
        if let Some(p) = self.target(rel)?.pending.take() {
            let loc = self.table_dir.join(&p.path)?;
            let schema = match self.wopts.format.layout {
                Layout::Parquet => Arc::new(parquet_schema(&loc, self.rt)?),
                _ => self.file_schema.clone(),
            };
            let mut existing = Vec::new();
            let ropts = ReadOptions::new(self.rt.clone());
            for b in read(&loc, self.wopts.format, schema, &ropts)? {
                existing.push(b?);
            }
            let name = p.path.rsplit('/').next().unwrap_or(&p.path).to_string();
            let w = self.open(rel, name, true)?;
            self.target(rel)?.current = Some(w);
            for b in existing.into_iter().rev() {
                queue.push_front(b);
            }
        }
        while let Some(b) = queue.pop_front() {
            if b.num_rows() == 0 {
                continue;
            }
            if self.target(rel)?.current.is_none() {
                let t = self.target(rel)?;
                let n = t.next_n;
                t.next_n += 1;
                let name = naming::file_name(
                    &self.packer.table,
                    self.packer.suffix.as_deref(),
                    n,
                    self.wopts.format.extension(),
                );
                let exists = self.existing.contains(&format!("{rel}{name}"));
                let w = self.open(rel, name, exists)?;
                self.target(rel)?.current = Some(w);
            }
            let file_schema = self.file_schema.clone();
            let t = self.target(rel)?;
            let open = t.current.as_mut().expect("opened above");
            let b = tessera_formats::conform(&b, &file_schema, Cast::Lossless, &open.name)?;
            let n = open.writer.write(&b)?;
            if n < b.num_rows() {
                queue.push_front(b.slice(n, b.num_rows() - n));
            }
            if open.writer.is_full() {
                for l in self.close(rel)?.into_iter().rev() {
                    queue.push_front(l);
                }
            } else if n < b.num_rows() {
                return Err(Error::InvalidInput(
                    "internal error: the writer took no rows but is not full".into(),
                ));
            }
        }
        Ok(())
    }

    fn open(&mut self, rel: &str, name: String, replaces: bool) -> Result<Open> {
        let (staged, loc) = self.journal.staged(self.run, &format!("{rel}{name}"))?;
        let sink = open_sink(&loc, self.rt)?;
        let writer = FileWriter::create(
            sink,
            self.file_schema.clone(),
            &self.wopts,
            &format!("{}{rel}{name}", self.table_dir.url() + "/"),
        )?;
        Ok(Open {
            writer,
            name,
            staged,
            replaces,
        })
    }

    /// Finish the open file of a folder and every file its leftover rows
    /// need. (Closing the last file can give back rows that did not fit in
    /// it; dropping them lost the tail of the input.)
    fn drain(&mut self, rel: &str) -> Result<()> {
        let mut before = usize::MAX;
        loop {
            let left = self.close(rel)?;
            let n: usize = left.iter().map(|b| b.num_rows()).sum();
            if n == 0 {
                return Ok(());
            }
            if n >= before {
                return Err(Error::InvalidInput(format!(
                    "internal error: {n} rows fit in no file of {rel}"
                )));
            }
            before = n;
            for b in left {
                self.push(rel, b)?;
            }
        }
    }

    /// Finish the open file of a folder; returns rows that did not fit.
    fn close(&mut self, rel: &str) -> Result<Vec<RecordBatch>> {
        let Some(t) = self.targets.get_mut(rel) else {
            return Ok(vec![]);
        };
        let Some(open) = t.current.take() else {
            return Ok(vec![]);
        };
        let done = open.writer.finish()?;
        self.outputs.push(OutputRecord {
            staged: open.staged,
            path: format!("{}{}", t.rel, open.name),
            rows: done.rows,
            bytes: done.bytes,
            replaces: open.replaces,
        });
        self.progress.files.fetch_add(1, Ordering::Relaxed);
        Ok(done.leftover)
    }
}
