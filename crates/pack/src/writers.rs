//! The writers of a run: per folder of the table, the open output file, the
//! number of the next one and the partial latest file to rewrite first.
//! Rows pushed into a folder fill its open file to the size limit; a full
//! file is finished under staging and the rows that did not fit go on into
//! the next.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use tessera_formats::spool::{buffer_share, group_rows, streaming_threshold, Spool};
use tessera_formats::{
    conform, open_sink, parquet_schema, read, Cast, FileFormat, FileWriter, ReadOptions,
    RecordLayout, WriteOptions,
};

/// Folders written as their rows come (with an open file each) while the
/// input is read; the others wait in the spool.
const STREAMING_FOLDERS: usize = 4;

use crate::error::{Error, Result};
use crate::journal::OutputRecord;
use crate::naming;
use crate::plan::ExistingFile;
use crate::run::{Settings, Staging};

/// An output file being written.
struct Open {
    writer: FileWriter,
    name: String,
    staged: String,
    replaces: bool,
}

/// One folder of the table being written.
struct Folder {
    next_n: u64,
    /// The partial latest file, rewritten first when rows arrive.
    pending: Option<ExistingFile>,
    current: Option<Open>,
}

pub(crate) struct Writers<'a> {
    settings: &'a Settings,
    partition_by: Option<&'a str>,
    staging: &'a Staging<'a>,
    wopts: WriteOptions,
    file_schema: SchemaRef,
    /// By folder relative to the table folder (empty, or ending in `/`).
    folders: HashMap<String, Folder>,
    /// Folders in the order rows first reached them.
    order: Vec<String>,
    /// Existing files that new files may replace (compaction).
    replaceable: HashSet<String>,
    outputs: Vec<OutputRecord>,
    /// With a split by column: rows waiting for their folder, so that only
    /// a few files are open at once however many folders the rows go to.
    spool: Option<Spool>,
    /// Spool partition of each waiting folder, and back.
    spooled: HashMap<String, usize>,
    spooled_rels: Vec<String>,
    /// Folders written as their rows come.
    streaming: HashSet<String>,
}

impl<'a> Writers<'a> {
    /// Writers of `format` files holding `file_schema`; with `partition_by`,
    /// rows are routed to one folder per value of that column.
    pub(crate) fn new(
        settings: &'a Settings,
        partition_by: Option<&'a str>,
        staging: &'a Staging<'a>,
        format: FileFormat,
        file_schema: SchemaRef,
    ) -> Writers<'a> {
        let row_group_bytes = settings
            .row_group_bytes
            .unwrap_or(if partition_by.is_some() {
                8 << 20
            } else {
                16 << 20
            });
        let wopts = WriteOptions::new(format)
            .with_target_size(settings.max_file_size)
            .with_row_group_bytes(row_group_bytes);
        Writers {
            settings,
            partition_by,
            staging,
            wopts,
            file_schema,
            folders: HashMap::new(),
            order: Vec::new(),
            replaceable: HashSet::new(),
            outputs: Vec::new(),
            spool: None,
            spooled: HashMap::new(),
            spooled_rels: Vec::new(),
            streaming: HashSet::new(),
        }
    }

    /// Write into folder `rel` from file number `next_n`, rewriting `pending`
    /// (the partial latest file) first.
    pub(crate) fn add_folder(&mut self, rel: &str, next_n: u64, pending: Option<ExistingFile>) {
        self.folders.insert(
            rel.to_string(),
            Folder {
                next_n,
                pending,
                current: None,
            },
        );
        self.order.push(rel.to_string());
    }

    /// Let new files replace these existing ones (paths relative to the
    /// table folder).
    pub(crate) fn replace(&mut self, paths: impl IntoIterator<Item = String>) {
        self.replaceable.extend(paths);
    }

    /// The files finished so far.
    pub(crate) fn outputs(&self) -> &[OutputRecord] {
        &self.outputs
    }

    /// Finish every folder; the files written.
    pub(crate) fn finish(mut self) -> Result<Vec<OutputRecord>> {
        if let Some(mut spool) = self.spool.take() {
            // The waiting folders one at a time: each is written whole and
            // closed before the next opens.
            for id in spool_order(&self.spooled_rels) {
                let rel = self.spooled_rels[id].clone();
                let taken = spool.take_pieces(id);
                for piece in taken.spilled {
                    let b = spool.read(piece).map_err(spill_error)?;
                    self.push(&rel, b)?;
                }
                for b in taken.batches {
                    self.push(&rel, b)?;
                }
                self.drain(&rel)?;
            }
        }
        for rel in std::mem::take(&mut self.order) {
            self.drain(&rel)?;
        }
        Ok(self.outputs)
    }

    /// Send rows to their folder.
    pub(crate) fn route(&mut self, b: &RecordBatch) -> Result<()> {
        let base = self.settings.static_rel();
        let Some(col) = self.partition_by else {
            return self.push(&base, b.clone());
        };
        let idx = b.schema().index_of(col).map_err(|_| Error::NoSuchColumn {
            column: col.to_string(),
            columns: b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        })?;
        let values = arrow::compute::cast(b.column(idx), &DataType::Utf8).map_err(|e| {
            Error::Unsupported(format!(
                "partitioning by '{col}': its values cannot name folders: {e}"
            ))
        })?;
        let values = values
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| {
                Error::Internal(format!("values of '{col}' cast to text are not strings"))
            })?;
        // One group number per row, groups in order of first appearance.
        let mut values_of: Vec<Option<String>> = Vec::new();
        let mut index: HashMap<Option<&str>, usize> = HashMap::new();
        let mut group_of_row = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            let v = if values.is_null(i) {
                None
            } else {
                Some(values.value(i))
            };
            let g = *index.entry(v).or_insert_with(|| {
                values_of.push(v.map(str::to_string));
                values_of.len() - 1
            });
            group_of_row.push(g);
        }
        let mut without = b.clone();
        without.remove_column(idx);
        let allocated = without.get_array_memory_size();
        let groups = group_rows(&without, &group_of_row)
            .map_err(|e| Error::Internal(format!("splitting rows by '{col}': {e}")))?;
        for (g, sub) in groups {
            let rel = format!(
                "{base}{}/",
                naming::partition_dir(col, values_of[g].as_deref())?
            );
            // The groups are slices of one batch: their share of it.
            let bytes = allocated * sub.num_rows() / b.num_rows().max(1);
            self.wait_or_push(&rel, sub, bytes)?;
        }
        let budget = self.settings.memory_budget;
        if let Some(spool) = self.spool.as_mut() {
            if spool.buffered() > buffer_share(budget) {
                let order = spool_order(&self.spooled_rels);
                spool.spill(&order).map_err(spill_error)?;
            }
        }
        Ok(())
    }

    /// Rows of folder `rel` (with a split by column): into the folder's
    /// open file if it is written as its rows come, else into the spool;
    /// a folder whose waiting rows grow large starts being written.
    fn wait_or_push(&mut self, rel: &str, sub: RecordBatch, bytes: usize) -> Result<()> {
        if self.streaming.contains(rel) {
            return self.push(rel, sub);
        }
        let budget = self.settings.memory_budget;
        let spool = self.spool.get_or_insert_with(|| Spool::new(sub.schema()));
        let id = match self.spooled.get(rel) {
            Some(&id) => id,
            None => {
                let id = spool.add_part();
                self.spooled.insert(rel.to_string(), id);
                self.spooled_rels.push(rel.to_string());
                id
            }
        };
        spool.push_counted(id, sub, bytes);
        if spool.part_bytes(id) < streaming_threshold(budget)
            || self.streaming.len() >= STREAMING_FOLDERS
        {
            return Ok(());
        }
        let taken = spool.take_pieces(id);
        let mut batches = Vec::with_capacity(taken.spilled.len() + taken.batches.len());
        for piece in taken.spilled {
            batches.push(spool.read(piece).map_err(spill_error)?);
        }
        batches.extend(taken.batches);
        self.streaming.insert(rel.to_string());
        for b in batches {
            self.push(rel, b)?;
        }
        Ok(())
    }

    /// The folder `rel`; one seen for the first time is numbered after its files.
    fn folder(&mut self, rel: &str) -> Result<&mut Folder> {
        if !self.folders.contains_key(rel) {
            let mut ext = Some(self.wopts.format().extension().to_string());
            let found = self.settings.scan_folder(
                self.staging.table_dir,
                rel,
                &mut ext,
                self.staging.rt,
            )?;
            let latest = found.files.last().cloned();
            let pending = latest.clone().filter(|f| self.settings.partial(f.size));
            self.add_folder(rel, latest.map(|l| l.n + 1).unwrap_or(0), pending);
        }
        self.folders
            .get_mut(rel)
            .ok_or_else(|| Error::Internal(format!("folder {rel} vanished")))
    }

    /// Write rows into folder `rel`.
    pub(crate) fn push(&mut self, rel: &str, batch: RecordBatch) -> Result<()> {
        let mut queue = VecDeque::from([batch]);
        // The partial latest file goes first: its rows, then the new ones.
        if let Some(p) = self.folder(rel)?.pending.take() {
            let existing = self.read_existing(&p)?;
            let name = p.path.rsplit('/').next().unwrap_or(&p.path).to_string();
            let w = self.open(rel, name, true)?;
            self.folder(rel)?.current = Some(w);
            for b in existing.into_iter().rev() {
                queue.push_front(b);
            }
        }
        while let Some(b) = queue.pop_front() {
            if b.num_rows() == 0 {
                continue;
            }
            if self.folder(rel)?.current.is_none() {
                let f = self.folder(rel)?;
                let n = f.next_n;
                f.next_n += 1;
                let name = naming::file_name(
                    &self.settings.table,
                    self.settings.suffix.as_deref(),
                    n,
                    self.wopts.format().extension(),
                );
                let exists = self.replaceable.contains(&format!("{rel}{name}"));
                let w = self.open(rel, name, exists)?;
                self.folder(rel)?.current = Some(w);
            }
            let file_schema = self.file_schema.clone();
            let open = self
                .folder(rel)?
                .current
                .as_mut()
                .ok_or_else(|| Error::Internal(format!("no open file in {rel}")))?;
            let b = conform(&b, &file_schema, Cast::Lossless, &open.name)?;
            let n = open.writer.write(&b)?;
            if n < b.num_rows() {
                queue.push_front(b.slice(n, b.num_rows() - n));
            }
            if open.writer.is_full() {
                for l in self.close(rel)?.into_iter().rev() {
                    queue.push_front(l);
                }
            } else if n < b.num_rows() {
                return Err(Error::Internal(
                    "the writer took no rows but is not full".into(),
                ));
            }
        }
        Ok(())
    }

    /// The rows of an existing file of the table.
    fn read_existing(&self, f: &ExistingFile) -> Result<Vec<RecordBatch>> {
        let loc = self.staging.table_dir.join(&f.path)?;
        let schema = match self.wopts.format().layout {
            RecordLayout::Parquet => Arc::new(parquet_schema(&loc, self.staging.rt)?),
            _ => self.file_schema.clone(),
        };
        let ropts = ReadOptions::new(self.staging.rt.clone());
        read(&loc, self.wopts.format(), schema, &ropts)?
            .map(|b| b.map_err(Error::from))
            .collect()
    }

    fn open(&mut self, rel: &str, name: String, replaces: bool) -> Result<Open> {
        let (staged, loc) = self
            .staging
            .journal
            .staged(self.staging.run, &format!("{rel}{name}"))?;
        let sink = open_sink(&loc, self.staging.rt)?;
        let writer = FileWriter::create(
            sink,
            self.file_schema.clone(),
            &self.wopts,
            &format!("{}/{rel}{name}", self.staging.table_dir.url()),
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
    pub(crate) fn drain(&mut self, rel: &str) -> Result<()> {
        let mut before = usize::MAX;
        loop {
            let left = self.close(rel)?;
            let n: usize = left.iter().map(|b| b.num_rows()).sum();
            if n == 0 {
                return Ok(());
            }
            if n >= before {
                return Err(Error::Internal(format!("{n} rows fit in no file of {rel}")));
            }
            before = n;
            for b in left {
                self.push(rel, b)?;
            }
        }
    }

    /// Finish the open file of a folder; returns rows that did not fit.
    fn close(&mut self, rel: &str) -> Result<Vec<RecordBatch>> {
        let Some(open) = self.folders.get_mut(rel).and_then(|f| f.current.take()) else {
            return Ok(vec![]);
        };
        let done = open.writer.finish()?;
        self.outputs.push(OutputRecord {
            staged: open.staged,
            path: format!("{rel}{}", open.name),
            rows: done.rows,
            bytes: done.bytes,
            replaces: open.replaces,
        });
        self.settings.progress.files.fetch_add(1, Ordering::Relaxed);
        Ok(done.leftover)
    }
}

fn spill_error(e: std::io::Error) -> Error {
    Error::Internal(format!("spilling rows to local disk: {e}"))
}

/// The spool's folders (numbered by first appearance) in path order.
fn spool_order(rels: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rels.len()).collect();
    order.sort_by(|&a, &b| rels[a].cmp(&rels[b]));
    order
}
