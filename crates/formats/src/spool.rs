//! Rows grouped by partition, in memory up to a budget and on local disk
//! beyond it: what lets a writer of many partitions keep one output file
//! open at a time whatever the order of its input.
//!
//! A [`Spool`] holds, per partition, the batches pushed for it. When the
//! caller finds the buffered bytes over its budget it calls
//! [`Spool::spill`], which writes every partition's buffered rows, one
//! Arrow IPC block per partition, to an unnamed temporary file (in
//! `TMPDIR`; the system removes it when the process ends, however it
//! ends). [`Spool::take`] gives a partition's rows back: its spilled blocks
//! in spill order, then what is still in memory, so rows keep their input
//! order within a partition.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use tessera_formats::spool::Spool;
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
//! let batch = |v: Vec<i64>| {
//!     RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(v))]).unwrap()
//! };
//! let mut spool = Spool::new(schema.clone());
//! let (a, b) = (spool.add_part(), spool.add_part());
//! spool.push(a, batch(vec![1, 2]));
//! spool.push(b, batch(vec![3]));
//! spool.spill(&[a, b]).unwrap();
//! spool.push(a, batch(vec![4]));
//! let rows: usize = spool.take(a).unwrap().iter().map(|b| b.num_rows()).sum();
//! assert_eq!(rows, 3);
//! assert_eq!(spool.buffered(), 0);
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

/// Default memory budget of a writer of many partitions (1 GiB).
pub const DEFAULT_MEMORY_BUDGET: u64 = 1024 * 1024 * 1024;

/// The share of a process's memory `budget` for rows kept in a spool. The
/// rest is the process itself (readers, runtime, open writers' row
/// groups): about 300 MB measured with the default settings.
pub fn buffer_share(budget: u64) -> usize {
    (budget.saturating_sub(300 << 20).max(budget / 4) * 2 / 5) as usize
}

/// The size at which, under `budget`, one partition's rows are better
/// written as they come (through an open writer of their own) than kept.
pub fn streaming_threshold(budget: u64) -> usize {
    (buffer_share(budget) / 8).clamp(1 << 20, 64 << 20)
}

/// A spill file, read back block by block.
type Spill = FileReader<BufReader<File>>;

#[derive(Default)]
struct Part {
    batches: Vec<RecordBatch>,
    bytes: usize,
    /// (spill, block) of each of this partition's spilled pieces.
    spilled: Vec<(usize, usize)>,
    spilled_bytes: usize,
}

/// A piece of a partition on disk (see [`Spool::take_pieces`]).
#[derive(Debug, Clone, Copy)]
pub struct Spilled(usize, usize);

/// A partition's rows taken out of a [`Spool`].
#[derive(Debug)]
pub struct Taken {
    /// Its pieces on disk, in input order (read with [`Spool::read`]).
    pub spilled: Vec<Spilled>,
    /// Then its batches that were still in memory.
    pub batches: Vec<RecordBatch>,
}

/// Rows grouped by partition, spilled to local disk on request. See the
/// module docs.
pub struct Spool {
    schema: SchemaRef,
    parts: Vec<Part>,
    buffered: usize,
    spills: Vec<Spill>,
    spilled: u64,
    peak: usize,
}

fn io(e: ArrowError) -> std::io::Error {
    match e {
        ArrowError::IoError(_, e) => e,
        e => std::io::Error::other(e),
    }
}

impl Spool {
    /// An empty spool of batches with `schema`.
    pub fn new(schema: SchemaRef) -> Spool {
        Spool {
            schema,
            parts: Vec::new(),
            buffered: 0,
            spills: Vec::new(),
            spilled: 0,
            peak: 0,
        }
    }

    /// A new partition; its number.
    pub fn add_part(&mut self) -> usize {
        self.parts.push(Part::default());
        self.parts.len() - 1
    }

    /// Keep `batch` for partition `part` (a number from [`Spool::add_part`]),
    /// counted as its Arrow buffers' bytes (a slice, its share of them).
    pub fn push(&mut self, part: usize, batch: RecordBatch) {
        let bytes = batch_bytes(&batch);
        self.push_counted(part, batch, bytes);
    }

    /// Keep `batch` for partition `part`, counted as `bytes`: for slices of
    /// one batch (as [`group_rows`] makes), their share of what the batch
    /// holds allocated, which is what stays in memory while any of them does.
    pub fn push_counted(&mut self, part: usize, batch: RecordBatch, bytes: usize) {
        let p = &mut self.parts[part];
        p.bytes += bytes;
        p.batches.push(batch);
        self.buffered += bytes;
        self.peak = self.peak.max(self.buffered);
    }

    /// Bytes kept in memory.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The most bytes kept in memory at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Bytes spilled to disk so far.
    pub fn spilled(&self) -> u64 {
        self.spilled
    }

    /// Bytes of partition `part`, in memory and on disk.
    pub fn part_bytes(&self, part: usize) -> usize {
        let p = &self.parts[part];
        p.bytes + p.spilled_bytes
    }

    /// Bytes of partition `part` on disk.
    pub fn part_spilled(&self, part: usize) -> usize {
        self.parts[part].spilled_bytes
    }

    /// Write the buffered rows of every partition to a new spill file, the
    /// partitions in `order` (those missing from it are written after, in
    /// number order), each as one block.
    pub fn spill(&mut self, order: &[usize]) -> std::io::Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let file = tempfile::tempfile()?;
        let back = file.try_clone()?;
        let spill = self.spills.len();
        let mut w = FileWriter::try_new(BufWriter::new(file), &self.schema).map_err(io)?;
        let mut listed = vec![false; self.parts.len()];
        let rest: Vec<usize> = {
            for &p in order {
                listed[p] = true;
            }
            (0..self.parts.len()).filter(|&p| !listed[p]).collect()
        };
        let mut block = 0;
        for &id in order.iter().chain(&rest) {
            let part = &mut self.parts[id];
            if part.batches.is_empty() {
                continue;
            }
            let one = concat_batches(&self.schema, &part.batches).map_err(io)?;
            w.write(&one).map_err(io)?;
            part.spilled.push((spill, block));
            part.spilled_bytes += part.bytes;
            block += 1;
            part.batches.clear();
            part.bytes = 0;
        }
        w.finish().map_err(io)?;
        drop(w);
        self.spills
            .push(FileReader::try_new(BufReader::new(back), None).map_err(io)?);
        self.spilled += self.buffered as u64;
        self.buffered = 0;
        Ok(())
    }

    /// Partition `part`'s rows, taken out of the spool (it is left empty):
    /// its spilled pieces, to read back one at a time with
    /// [`Spool::read`], then its batches still in memory. In that order
    /// they are the rows in input order.
    pub fn take_pieces(&mut self, part: usize) -> Taken {
        let p = std::mem::take(&mut self.parts[part]);
        self.buffered -= p.bytes;
        Taken {
            spilled: p.spilled.into_iter().map(|(s, b)| Spilled(s, b)).collect(),
            batches: p.batches,
        }
    }

    /// Read a spilled piece back.
    pub fn read(&mut self, piece: Spilled) -> std::io::Result<RecordBatch> {
        let Spilled(spill, block) = piece;
        let r = &mut self.spills[spill];
        r.set_index(block).map_err(io)?;
        match r.next() {
            Some(b) => b.map_err(io),
            None => Err(std::io::Error::other(format!(
                "block {block} of spill file {spill} is missing"
            ))),
        }
    }

    /// The rows of partition `part`, read back whole, in input order,
    /// leaving the partition empty.
    pub fn take(&mut self, part: usize) -> std::io::Result<Vec<RecordBatch>> {
        let taken = self.take_pieces(part);
        let mut out = Vec::with_capacity(taken.spilled.len() + taken.batches.len());
        for piece in taken.spilled {
            out.push(self.read(piece)?);
        }
        out.extend(taken.batches);
        Ok(out)
    }
}

/// The Arrow buffer bytes of `batch`, its share when it is a slice.
fn batch_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

/// The rows of `batch` grouped by `group_of_row` (one group number per row),
/// each group one batch, groups in order of first appearance.
pub fn group_rows(
    batch: &RecordBatch,
    group_of_row: &[usize],
) -> Result<Vec<(usize, RecordBatch)>, ArrowError> {
    let Some(&first) = group_of_row.first() else {
        return Ok(Vec::new());
    };
    if group_of_row.iter().all(|&g| g == first) {
        return Ok(vec![(first, batch.clone())]);
    }
    // A counting sort of the row numbers by group.
    let mut order: Vec<usize> = Vec::new();
    let mut count: HashMap<usize, u32> = HashMap::new();
    for &g in group_of_row {
        let c = count.entry(g).or_insert(0);
        if *c == 0 {
            order.push(g);
        }
        *c += 1;
    }
    let mut start: HashMap<usize, u32> = HashMap::with_capacity(order.len());
    let mut at = 0u32;
    for &g in &order {
        start.insert(g, at);
        at += count[&g];
    }
    let mut next = start.clone();
    let mut idx = vec![0u32; group_of_row.len()];
    for (row, g) in group_of_row.iter().enumerate() {
        if let Some(slot) = next.get_mut(g) {
            idx[*slot as usize] = row as u32;
            *slot += 1;
        }
    }
    let taken = take_record_batch(batch, &UInt32Array::from(idx))?;
    Ok(order
        .into_iter()
        .map(|g| (g, taken.slice(start[&g] as usize, count[&g] as usize)))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use proptest::prelude::*;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]))
    }

    fn batch(ids: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from_iter(
                    ids.iter().map(|i| (i % 3 != 0).then(|| format!("v{i}"))),
                )),
            ],
        )
        .unwrap()
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    proptest! {
        /// Whatever the grouping and wherever the spills fall, each
        /// partition gets back exactly its rows, in input order, and
        /// nothing stays buffered.
        #[test]
        fn every_row_comes_back_once_in_order(
            rows in proptest::collection::vec((0usize..7, 1usize..40), 1..60),
            spill_every in 1usize..9,
        ) {
            let mut spool = Spool::new(schema());
            let parts: Vec<usize> = (0..7).map(|_| spool.add_part()).collect();
            let mut want: Vec<Vec<i64>> = vec![Vec::new(); 7];
            let mut next = 0i64;
            for (i, (part, n)) in rows.iter().enumerate() {
                let v: Vec<i64> = (next..next + *n as i64).collect();
                next += *n as i64;
                // Mixed rows, grouped like a writer does.
                let groups: Vec<usize> = v.iter().map(|x| (*part + (*x as usize % 2)) % 7).collect();
                for (g, b) in group_rows(&batch(&v), &groups).unwrap() {
                    want[g].extend(ids(std::slice::from_ref(&b)));
                    spool.push(parts[g], b);
                }
                if i % spill_every == 0 {
                    let order: Vec<usize> = parts.iter().rev().copied().collect();
                    spool.spill(&order).unwrap();
                }
            }
            for (g, p) in parts.iter().enumerate() {
                let got = spool.take(*p).unwrap();
                prop_assert_eq!(ids(&got), want[g].clone());
                if let Some(b) = got.first() {
                    prop_assert_eq!(b.schema(), schema());
                }
            }
            prop_assert_eq!(spool.buffered(), 0);
        }
    }

    #[test]
    fn slices_count_their_share_of_a_batch() {
        let b = batch(&(0..10_000).collect::<Vec<_>>());
        let whole = batch_bytes(&b);
        let part = batch_bytes(&b.slice(0, 1_000));
        assert!(part * 5 < whole, "{part} of {whole}");
        assert!(part > 0);
    }

    #[test]
    fn groups_keep_row_order_and_first_appearance() {
        let b = batch(&[10, 11, 12, 13, 14]);
        let g = group_rows(&b, &[2, 0, 2, 1, 0]).unwrap();
        let got: Vec<(usize, Vec<i64>)> = g
            .iter()
            .map(|(k, b)| (*k, ids(std::slice::from_ref(b))))
            .collect();
        assert_eq!(
            got,
            vec![(2, vec![10, 12]), (0, vec![11, 14]), (1, vec![13])]
        );
        assert!(group_rows(&b.slice(0, 0), &[]).unwrap().is_empty());
    }
}
