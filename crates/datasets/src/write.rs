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
//!   when the process ends, however it ends; [`tessera_formats::spool`]);
//! - at the end each remaining partition is written whole (its spilled
//!   pieces, then what is in memory) through one writer that is closed
//!   before the next partitions open: at most two at a time.
//!
//! Each partition still gets files near the target size where its data
//! allows, whatever the order of the input. The files are then committed in
//! one Delta commit ([`commit`]), so a load is all or nothing as before.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
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
use tessera_formats::spool::{buffer_share, group_rows, streaming_threshold, Spool};
use tokio::task::JoinSet;

pub use tessera_formats::spool::DEFAULT_MEMORY_BUDGET;

/// Partitions written through a writer of their own while the input is read.
const STREAMING_WRITERS: usize = 4;

/// Partitions written at once at the end of a load.
const FINAL_WRITERS: usize = 2;

/// One partition of the load.
struct Part {
    values: IndexMap<String, Scalar>,
    /// `column=value/…`, the order partitions are written in.
    path: String,
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
    spool: Spool,
    budget: u64,
    streaming: usize,
    props: WriterProperties,
    target: Option<NonZeroU64>,
    indexed: DataSkippingNumIndexedCols,
    adds: Vec<Add>,
    /// Rows written.
    pub(crate) rows: u64,
}

fn internal(msg: impl Into<String>) -> DeltaTableError {
    DeltaTableError::Generic(msg.into())
}

fn arrow_err(e: arrow::error::ArrowError) -> DeltaTableError {
    DeltaTableError::Arrow { source: e }
}

fn spill_err(e: std::io::Error) -> DeltaTableError {
    internal(format!("spilling the load's rows to local disk: {e}"))
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
            spool: Spool::new(file_schema.clone()),
            file_schema,
            partition_idx,
            partition_names: partition_columns.to_vec(),
            data_idx,
            converter,
            ids: HashMap::new(),
            parts: Vec::new(),
            budget,
            streaming: 0,
            props,
            target: NonZeroU64::new(target),
            indexed: DataSkippingNumIndexedCols::NumColumns(32),
            adds: Vec::new(),
            rows: 0,
        })
    }

    /// Largest the buffered rows grew to, in bytes.
    pub(crate) fn peak_buffered(&self) -> usize {
        self.spool.peak()
    }

    /// Bytes of rows spilled to local disk.
    pub(crate) fn spilled(&self) -> u64 {
        self.spool.spilled()
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
        let id = self.spool.add_part();
        self.parts.push(Part {
            values,
            path: path.join("/"),
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
        let data_bytes = data.get_array_memory_size();
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
                group_rows(&data, &part_of_row).map_err(arrow_err)?
            }
        };
        let threshold = streaming_threshold(self.budget);
        // What the batch holds allocated, shared among its groups by rows.
        let allocated = data_bytes.max(1);
        for (id, rows) in groups {
            if let Some(w) = self.parts[id].writer.as_mut() {
                w.write(&rows).await?;
                continue;
            }
            let bytes = allocated * rows.num_rows() / n;
            self.spool.push_counted(id, rows, bytes);
            if self.spool.part_bytes(id) >= threshold && self.streaming < STREAMING_WRITERS {
                let mut w = self.new_writer(id)?;
                let taken = self.spool.take_pieces(id);
                for piece in taken.spilled {
                    w.write(&self.spool.read(piece).map_err(spill_err)?).await?;
                }
                for b in &taken.batches {
                    w.write(b).await?;
                }
                self.parts[id].writer = Some(w);
                self.streaming += 1;
            }
        }
        if self.spool.buffered() > buffer_share(self.budget) {
            let order = self.order();
            self.spool.spill(&order).map_err(spill_err)?;
            tracing::debug!(
                spilled = self.spool.spilled(),
                "load rows spilled to local disk"
            );
        }
        Ok(())
    }

    /// Partition numbers in path order.
    fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.parts.len()).collect();
        order.sort_by(|&a, &b| self.parts[a].path.cmp(&self.parts[b].path));
        order
    }

    fn new_writer(&self, id: usize) -> DeltaResult<PartitionWriter> {
        let config = PartitionWriterConfig::try_new(
            self.file_schema.clone(),
            self.parts[id].values.clone(),
            Some(self.props.clone()),
            self.target,
            None,
            None,
            None,
        )?;
        PartitionWriter::try_with_config(self.store.clone(), config, self.indexed, None)
    }

    /// Write what is left and close every writer: the files written.
    pub(crate) async fn finish(mut self) -> DeltaResult<Vec<Add>> {
        let mut running: JoinSet<DeltaResult<Vec<Add>>> = JoinSet::new();
        let whole = buffer_share(self.budget) / 4;
        for id in self.order() {
            while running.len() >= FINAL_WRITERS {
                self.join_one(&mut running).await?;
            }
            let mut w = match self.parts[id].writer.take() {
                Some(w) => w,
                None => self.new_writer(id)?,
            };
            let small = self.spool.part_spilled(id) <= whole;
            let taken = self.spool.take_pieces(id);
            if small {
                // Small enough to hand to a task whole.
                let mut batches = Vec::with_capacity(taken.spilled.len() + taken.batches.len());
                for piece in taken.spilled {
                    batches.push(self.spool.read(piece).map_err(spill_err)?);
                }
                batches.extend(taken.batches);
                running.spawn(async move {
                    for b in &batches {
                        w.write(b).await?;
                    }
                    w.close().await
                });
            } else {
                for piece in taken.spilled {
                    w.write(&self.spool.read(piece).map_err(spill_err)?).await?;
                }
                for b in &taken.batches {
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
