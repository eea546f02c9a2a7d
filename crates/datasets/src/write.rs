//! Writing a load's data files within a memory budget, and committing them.
//!
//! deltalake's own writer keeps one Parquet writer open per partition until
//! a load ends, and each open writer holds its encoders' buffers (a
//! `DELTA_BINARY_PACKED` encoder alone reserves 1 MiB): a load of 3 M rows
//! into 10,000 ID ranges peaked at 5.3 GB, 41 times its input. Here a load
//! never has more than a few writers open:
//!
//! - rows are grouped by partition as they arrive and kept in memory, as
//!   Arrow, up to a share of the budget;
//! - a partition that grows large gets a writer of its own while the input
//!   is read (at most [`STREAMING_WRITERS`] at once), so a load into a few
//!   large partitions streams as it always did;
//! - when the buffered rows outgrow their share, they are spilled, grouped
//!   by partition, to an unnamed local Arrow IPC file (removed by the system
//!   when the process ends, however it ends);
//! - at the end each remaining partition is written whole (its spilled
//!   pieces, then what is in memory) through one writer that is closed
//!   before the next partitions open: at most two at a time.
//!
//! Each partition still gets files near the target size where its data
//! allows, whatever the order of the input. The files are then committed in
//! one Delta commit ([`commit`]), so a load is all or nothing as before.

use std::collections::HashMap;
use std::fs::File;
use std::num::NonZeroU64;
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::row::{RowConverter, SortField};
use delta_kernel::expressions::Scalar;
use delta_kernel::table_properties::DataSkippingNumIndexedCols;
use deltalake::kernel::scalars::ScalarExt;
use deltalake::kernel::Add;
use deltalake::logstore::ObjectStoreRef;
use deltalake::operations::write::writer::{PartitionWriter, PartitionWriterConfig};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::{DeltaResult, DeltaTableError};
use indexmap::IndexMap;
use tokio::task::JoinSet;

/// Default memory budget of a load: its peak resident memory stays near or
/// under this, whatever the number of partitions.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1024 * 1024 * 1024;

/// Partitions written through a writer of their own while the input is read.
const STREAMING_WRITERS: usize = 4;

/// Partitions written at once at the end of a load.
const FINAL_WRITERS: usize = 2;

/// The shares of the budget: rows buffered in memory, and the size at
/// which one partition's buffered rows earn it a streaming writer.
fn buffer_share(budget: u64) -> usize {
    // The rest of the budget is the process itself (readers, runtime,
    // open writers' row groups): about 250 MB measured with the default
    // settings.
    (budget.saturating_sub(300 << 20).max(budget / 4) / 2) as usize
}

fn streaming_threshold(budget: u64) -> usize {
    (buffer_share(budget) / 8).clamp(1 << 20, 64 << 20)
}

/// A spill file, read back block by block.
type Spill = FileReader<std::io::BufReader<File>>;

/// One partition of the load.
struct Part {
    values: IndexMap<String, Scalar>,
    /// `column=value/…`, the order partitions are written in.
    path: String,
    batches: Vec<RecordBatch>,
    /// Approximate bytes of `batches`.
    bytes: usize,
    /// Rows of this partition in each spill: (spill, block).
    spilled: Vec<(usize, usize)>,
    spilled_bytes: usize,
    writer: Option<PartitionWriter>,
}

/// Writes the batches of one load (in the write schema, partition columns
/// included) into data files under `store`, one partition at a time.
pub(crate) struct PartitionedWriter {
    store: ObjectStoreRef,
    file_schema: SchemaRef,
    partition_idx: Vec<usize>,
    partition_names: Vec<String>,
    data_idx: Vec<usize>,
    converter: Option<RowConverter>,
    ids: HashMap<Box<[u8]>, usize>,
    parts: Vec<Part>,
    buffered: usize,
    budget: u64,
    spills: Vec<Spill>,
    streaming: usize,
    props: WriterProperties,
    target: Option<NonZeroU64>,
    indexed: DataSkippingNumIndexedCols,
    adds: Vec<Add>,
    /// Rows written.
    pub(crate) rows: u64,
    /// Largest the buffered rows grew to, in bytes (for tests and logs).
    pub(crate) peak_buffered: usize,
    /// Bytes of rows spilled to local disk.
    pub(crate) spilled: u64,
}

fn internal(msg: impl Into<String>) -> DeltaTableError {
    DeltaTableError::Generic(msg.into())
}

fn arrow_err(e: arrow::error::ArrowError) -> DeltaTableError {
    DeltaTableError::Arrow { source: e }
}

impl PartitionedWriter {
    /// A writer of batches with `schema`, partitioned by `partition_columns`.
    pub(crate) fn try_new(
        store: ObjectStoreRef,
        schema: &Schema,
        partition_columns: &[String],
        props: WriterProperties,
        target: u64,
        budget: u64,
    ) -> DeltaResult<Self> {
        let mut partition_idx = Vec::new();
        for c in partition_columns {
            partition_idx.push(
                schema
                    .index_of(c)
                    .map_err(|_| internal(format!("partition column '{c}' is not in the load")))?,
            );
        }
        let data_idx: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !partition_idx.contains(i))
            .collect();
        let file_schema = Arc::new(schema.project(&data_idx).map_err(arrow_err)?);
        let converter = if partition_idx.is_empty() {
            None
        } else {
            Some(
                RowConverter::new(
                    partition_idx
                        .iter()
                        .map(|&i| SortField::new(schema.field(i).data_type().clone()))
                        .collect(),
                )
                .map_err(arrow_err)?,
            )
        };
        Ok(PartitionedWriter {
            store,
            file_schema,
            partition_idx,
            partition_names: partition_columns.to_vec(),
            data_idx,
            converter,
            ids: HashMap::new(),
            parts: Vec::new(),
            buffered: 0,
            budget,
            spills: Vec::new(),
            streaming: 0,
            props,
            target: NonZeroU64::new(target),
            indexed: DataSkippingNumIndexedCols::NumColumns(32),
            adds: Vec::new(),
            rows: 0,
            peak_buffered: 0,
            spilled: 0,
        })
    }

    fn part_of(&mut self, batch: &RecordBatch, row: usize, key: &[u8]) -> DeltaResult<usize> {
        if let Some(&id) = self.ids.get(key) {
            return Ok(id);
        }
        let mut values = IndexMap::new();
        let mut path = Vec::new();
        for (name, &i) in self.partition_names.iter().zip(&self.partition_idx) {
            let v = Scalar::from_array(batch.column(i).as_ref(), row).ok_or_else(|| {
                internal(format!(
                    "the partition column '{name}' holds a value Delta cannot store"
                ))
            })?;
            path.push(format!(
                "{name}={}",
                if v.is_null() {
                    String::new()
                } else {
                    v.serialize()
                }
            ));
            values.insert(name.clone(), v);
        }
        let id = self.parts.len();
        self.parts.push(Part {
            values,
            path: path.join("/"),
            batches: Vec::new(),
            bytes: 0,
            spilled: Vec::new(),
            spilled_bytes: 0,
            writer: None,
        });
        self.ids.insert(key.into(), id);
        Ok(id)
    }

    /// Take one batch of the load.
    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> DeltaResult<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.rows += n as u64;
        let data = batch.project(&self.data_idx).map_err(arrow_err)?;
        let total = data.get_array_memory_size();
        // Which partition each row belongs to.
        let groups: Vec<(usize, RecordBatch)> = match &self.converter {
            None => {
                if self.parts.is_empty() {
                    self.part_of(batch, 0, &[])?;
                }
                vec![(0, data)]
            }
            Some(conv) => {
                let cols: Vec<_> = self
                    .partition_idx
                    .iter()
                    .map(|&i| batch.column(i).clone())
                    .collect();
                let rows = conv.convert_columns(&cols).map_err(arrow_err)?;
                let mut part_of_row = Vec::with_capacity(n);
                let mut last: Option<(usize, usize)> = None; // (row, part)
                for i in 0..n {
                    let id = match last {
                        Some((r, id)) if rows.row(r) == rows.row(i) => id,
                        _ => self.part_of(batch, i, rows.row(i).as_ref())?,
                    };
                    last = Some((i, id));
                    part_of_row.push(id);
                }
                group_rows(&data, &part_of_row)?
            }
        };
        for (id, rows) in groups {
            let bytes = total * rows.num_rows() / n;
            let threshold = streaming_threshold(self.budget);
            let part = &mut self.parts[id];
            if let Some(w) = part.writer.as_mut() {
                w.write(&rows).await?;
                continue;
            }
            part.batches.push(rows);
            part.bytes += bytes;
            self.buffered += bytes;
            if part.bytes >= threshold && self.streaming < STREAMING_WRITERS {
                let mut w = new_writer(
                    &self.store,
                    &self.file_schema,
                    part,
                    &self.props,
                    self.target,
                    self.indexed,
                )?;
                // What was spilled earlier goes in first.
                for b in read_spilled(&mut self.spills, &part.spilled)? {
                    w.write(&b).await?;
                }
                part.spilled.clear();
                for b in std::mem::take(&mut part.batches) {
                    w.write(&b).await?;
                }
                self.buffered -= part.bytes;
                part.bytes = 0;
                part.writer = Some(w);
                self.streaming += 1;
            }
        }
        self.peak_buffered = self.peak_buffered.max(self.buffered);
        if self.buffered > buffer_share(self.budget) {
            self.spill()?;
        }
        Ok(())
    }

    /// Move every buffered row to a new spill file, grouped by partition.
    fn spill(&mut self) -> DeltaResult<()> {
        let file = tempfile::tempfile().map_err(|e| internal(format!("cannot spill: {e}")))?;
        let reader = file
            .try_clone()
            .map_err(|e| internal(format!("cannot spill: {e}")))?;
        let spill = self.spills.len();
        let mut w = FileWriter::try_new(std::io::BufWriter::new(file), &self.file_schema)
            .map_err(arrow_err)?;
        let mut order: Vec<usize> = (0..self.parts.len())
            .filter(|&i| !self.parts[i].batches.is_empty())
            .collect();
        order.sort_by(|&a, &b| self.parts[a].path.cmp(&self.parts[b].path));
        for (block, id) in order.into_iter().enumerate() {
            let part = &mut self.parts[id];
            let one = concat_batches(&self.file_schema, &part.batches).map_err(arrow_err)?;
            w.write(&one).map_err(arrow_err)?;
            part.spilled.push((spill, block));
            part.spilled_bytes += part.bytes;
            part.batches.clear();
            part.bytes = 0;
        }
        w.finish().map_err(arrow_err)?;
        drop(w);
        let reader =
            FileReader::try_new(std::io::BufReader::new(reader), None).map_err(arrow_err)?;
        tracing::debug!(
            spill,
            bytes = self.buffered,
            "load rows spilled to local disk"
        );
        self.spills.push(reader);
        self.spilled += self.buffered as u64;
        self.buffered = 0;
        Ok(())
    }

    /// Write what is left and close every writer: the files written.
    pub(crate) async fn finish(mut self) -> DeltaResult<Vec<Add>> {
        let mut order: Vec<usize> = (0..self.parts.len()).collect();
        order.sort_by(|&a, &b| self.parts[a].path.cmp(&self.parts[b].path));
        let parts = std::mem::take(&mut self.parts);
        let mut parts: Vec<Option<Part>> = parts.into_iter().map(Some).collect();
        let mut running: JoinSet<DeltaResult<Vec<Add>>> = JoinSet::new();
        let whole = buffer_share(self.budget) / 4;
        for id in order {
            let Some(mut part) = parts[id].take() else {
                continue;
            };
            while running.len() >= FINAL_WRITERS {
                self.join_one(&mut running).await?;
            }
            let mut w = match part.writer.take() {
                Some(w) => w,
                None => new_writer(
                    &self.store,
                    &self.file_schema,
                    &part,
                    &self.props,
                    self.target,
                    self.indexed,
                )?,
            };
            if part.spilled_bytes <= whole {
                // Small enough to hand to a task whole.
                let mut batches = read_spilled(&mut self.spills, &part.spilled)?;
                batches.append(&mut part.batches);
                running.spawn(async move {
                    for b in &batches {
                        w.write(b).await?;
                    }
                    w.close().await
                });
            } else {
                for &(spill, block) in &part.spilled {
                    for b in read_spilled(&mut self.spills, &[(spill, block)])? {
                        w.write(&b).await?;
                    }
                }
                for b in &part.batches {
                    w.write(b).await?;
                }
                self.adds.extend(w.close().await?);
            }
        }
        while !running.is_empty() {
            self.join_one(&mut running).await?;
        }
        Ok(self.adds)
    }

    async fn join_one(&mut self, running: &mut JoinSet<DeltaResult<Vec<Add>>>) -> DeltaResult<()> {
        match running.join_next().await {
            Some(Ok(adds)) => {
                self.adds.extend(adds?);
                Ok(())
            }
            Some(Err(e)) => Err(internal(format!("a data file writer failed: {e}"))),
            None => Ok(()),
        }
    }
}

/// The rows of `data` grouped by their partition, each group one batch.
fn group_rows(data: &RecordBatch, part_of_row: &[usize]) -> DeltaResult<Vec<(usize, RecordBatch)>> {
    let first = part_of_row[0];
    if part_of_row.iter().all(|&p| p == first) {
        return Ok(vec![(first, data.clone())]);
    }
    // A counting sort of the row numbers by partition.
    let mut order: Vec<usize> = Vec::new();
    let mut count: HashMap<usize, u32> = HashMap::new();
    for &p in part_of_row {
        let c = count.entry(p).or_insert(0);
        if *c == 0 {
            order.push(p);
        }
        *c += 1;
    }
    let mut start: HashMap<usize, u32> = HashMap::with_capacity(order.len());
    let mut at = 0u32;
    for &p in &order {
        start.insert(p, at);
        at += count[&p];
    }
    let mut next = start.clone();
    let mut idx = vec![0u32; part_of_row.len()];
    for (row, p) in part_of_row.iter().enumerate() {
        let slot = next.get_mut(p).expect("every partition was counted");
        idx[*slot as usize] = row as u32;
        *slot += 1;
    }
    let taken = take_record_batch(data, &UInt32Array::from(idx)).map_err(arrow_err)?;
    Ok(order
        .into_iter()
        .map(|p| (p, taken.slice(start[&p] as usize, count[&p] as usize)))
        .collect())
}

fn new_writer(
    store: &ObjectStoreRef,
    schema: &SchemaRef,
    part: &Part,
    props: &WriterProperties,
    target: Option<NonZeroU64>,
    indexed: DataSkippingNumIndexedCols,
) -> DeltaResult<PartitionWriter> {
    let config = PartitionWriterConfig::try_new(
        schema.clone(),
        part.values.clone(),
        Some(props.clone()),
        target,
        None,
        None,
        None,
    )?;
    PartitionWriter::try_with_config(store.clone(), config, indexed, None)
}

/// The spilled blocks `at` ((spill, block) pairs), read back.
fn read_spilled(spills: &mut [Spill], at: &[(usize, usize)]) -> DeltaResult<Vec<RecordBatch>> {
    let mut out = Vec::with_capacity(at.len());
    for &(spill, block) in at {
        let r = &mut spills[spill];
        r.set_index(block).map_err(arrow_err)?;
        match r.next() {
            Some(b) => out.push(b.map_err(arrow_err)?),
            None => return Err(internal("a spilled block is missing")),
        }
    }
    Ok(out)
}
