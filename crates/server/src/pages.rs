//! Paging through Parquet files without reading them whole.
//!
//! A file's footer (with its page index when it has one) is read once and
//! kept, keyed by URL and checked against the object's ETag at most every
//! `refresh_interval`. A page of rows `[offset, offset + n)` touches only
//! the row groups that hold it, and inside them a row selection skips the
//! pages before and after, so page 50,000 costs about what page 0 costs.
//! Files that fit a memory budget are decoded once into Arrow batches and
//! kept, so a page of a hot file is a zero-copy slice: no I/O and no
//! decompression per request (a page of a pyarrow-written file, whose pages
//! hold about 1 MB each, would otherwise cost a page decompression per
//! column).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use tessera_store::Location;

use crate::error::{ApiError, ApiResult};

/// A Parquet file whose footer is in memory.
pub struct ParquetFile {
    loc: Location,
    etag: Option<String>,
    size: u64,
    meta: ArrowReaderMetadata,
    decoded: Option<Decoded>,
    checked_ms: AtomicU64,
}

/// A whole file as Arrow batches, with the first row number of each.
struct Decoded {
    batches: Vec<RecordBatch>,
    starts: Vec<u64>,
    bytes: u64,
}

impl Decoded {
    fn rows(
        &self,
        offset: u64,
        limit: u64,
        columns: Option<&[usize]>,
    ) -> ApiResult<Vec<RecordBatch>> {
        let end = offset.saturating_add(limit);
        let mut i = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let mut out = Vec::new();
        while i < self.batches.len() && self.starts[i] < end {
            let b = &self.batches[i];
            let start = self.starts[i];
            let from = offset.max(start) - start;
            let to = (end.min(start + b.num_rows() as u64)).saturating_sub(start);
            if to > from {
                let s = b.slice(from as usize, (to - from) as usize);
                out.push(match columns {
                    Some(c) => s
                        .project(c)
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                    None => s,
                });
            }
            i += 1;
        }
        Ok(out)
    }
}

impl ParquetFile {
    /// The Arrow schema of the file.
    pub fn schema(&self) -> &SchemaRef {
        self.meta.schema()
    }

    /// Rows in the file, from its footer.
    pub fn num_rows(&self) -> u64 {
        self.meta.metadata().file_metadata().num_rows().max(0) as u64
    }

    /// Size of the object.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Read rows `[offset, offset + limit)` in file order, optionally only
    /// some columns (indices into [`schema`](Self::schema), in that order).
    pub async fn read_rows(
        &self,
        offset: u64,
        limit: u64,
        columns: Option<&[usize]>,
    ) -> ApiResult<Vec<RecordBatch>> {
        let md = self.meta.metadata();
        let mut groups = Vec::new();
        let mut selectors = Vec::new();
        let mut start = 0u64;
        let want_end = offset.saturating_add(limit);
        for (i, rg) in md.row_groups().iter().enumerate() {
            let n = rg.num_rows().max(0) as u64;
            let end = start + n;
            if end > offset && start < want_end {
                groups.push(i);
                let s = offset.saturating_sub(start);
                let e = end.min(want_end) - start;
                if s > 0 {
                    selectors.push(RowSelector::skip(s as usize));
                }
                selectors.push(RowSelector::select((e - s) as usize));
                if n > e {
                    selectors.push(RowSelector::skip((n - e) as usize));
                }
            }
            start = end;
            if start >= want_end {
                break;
            }
        }
        if groups.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        if let Some(d) = &self.decoded {
            return d.rows(offset, limit, columns);
        }
        let mask = columns
            .map(|c| ProjectionMask::roots(md.file_metadata().schema_descr(), c.iter().copied()));
        let batch = limit.min(65_536) as usize;
        let err = |e: ParquetError| ApiError::Store(format!("cannot read {}: {e}", self.loc.url()));
        let mut b = ParquetRecordBatchStreamBuilder::new_with_metadata(
            LocationReader::new(&self.loc),
            self.meta.clone(),
        )
        .with_row_groups(groups)
        .with_row_selection(RowSelection::from(selectors))
        .with_batch_size(batch);
        if let Some(m) = mask {
            b = b.with_projection(m);
        }
        let batches: Vec<RecordBatch> = b.build().map_err(err)?.try_collect().await.map_err(err)?;
        // A projection mask reads columns in file order; give the asked order.
        match columns {
            None => Ok(batches),
            Some(c) => {
                let mut sorted = c.to_vec();
                sorted.sort_unstable();
                let order: Vec<usize> = c
                    .iter()
                    .map(|i| sorted.binary_search(i).expect("from the same list"))
                    .collect();
                batches
                    .iter()
                    .map(|b| {
                        b.project(&order)
                            .map_err(|e| ApiError::Internal(e.to_string()))
                    })
                    .collect()
            }
        }
    }
}

/// The cache of open Parquet files.
pub struct ParquetFiles {
    files: Mutex<HashMap<String, Arc<ParquetFile>>>,
    refresh: Duration,
    budget: u64,
    used: AtomicU64,
    epoch: Instant,
    /// Loads run one at a time, so that a burst of requests for a cold
    /// file decodes it once.
    loading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ParquetFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFiles")
            .field("used", &self.used.load(Ordering::Relaxed))
            .finish()
    }
}

impl ParquetFiles {
    /// A cache that re-checks ETags every `refresh` and keeps files decoded
    /// in memory when they take at most `budget / 2` bytes, `budget` in all.
    pub fn new(refresh: Duration, budget: u64) -> ParquetFiles {
        ParquetFiles {
            files: Mutex::new(HashMap::new()),
            refresh,
            budget,
            used: AtomicU64::new(0),
            epoch: Instant::now(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Open a file: from the cache when fresh, else its footer is read.
    /// A missing object is `NotFound`.
    pub async fn open(&self, loc: &Location) -> ApiResult<Arc<ParquetFile>> {
        let key = loc.url();
        let cached = self.files.lock().unwrap().get(&key).cloned();
        if let Some(f) = &cached {
            let age = self
                .now_ms()
                .saturating_sub(f.checked_ms.load(Ordering::Relaxed));
            if age < self.refresh.as_millis() as u64 {
                return Ok(f.clone());
            }
        }
        let head = loc.head().await.map_err(|e| match e {
            tessera_store::Error::NotFound { .. } => {
                ApiError::NotFound(format!("no such file: {}", loc.url()))
            }
            e => ApiError::from(e),
        });
        let head = match head {
            Ok(h) => h,
            Err(e) => {
                if matches!(e, ApiError::NotFound(_)) {
                    self.forget(&key);
                }
                return Err(e);
            }
        };
        if let Some(f) = cached {
            if f.etag == head.e_tag && f.size == head.size {
                f.checked_ms.store(self.now_ms(), Ordering::Relaxed);
                return Ok(f);
            }
        }
        let _loading = self.loading.lock().await;
        // Another request may have loaded this version meanwhile.
        if let Some(f) = self.files.lock().unwrap().get(&key) {
            if f.etag == head.e_tag && f.size == head.size && head.e_tag.is_some() {
                return Ok(f.clone());
            }
        }
        let size = head.size;
        let mut reader = LocationReader::new(loc);
        let bad = |e: ParquetError| {
            ApiError::BadRequest(format!("{} is not a readable Parquet file: {e}", loc.url()))
        };
        let metadata = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .load_and_finish(&mut reader, size)
            .await
            .map_err(bad)?;
        let meta = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
            .map_err(bad)?;
        let md = meta.metadata();
        let estimate: u64 = md
            .row_groups()
            .iter()
            .map(|rg| rg.total_byte_size().max(0) as u64)
            .sum();
        let decoded = if estimate <= self.budget / 2
            && self.used.load(Ordering::Relaxed) + estimate <= self.budget
        {
            let data = loc.read().await?;
            let m = meta.clone();
            let url = loc.url();
            let d = tokio::task::spawn_blocking(move || decode(data, m, &url))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))??;
            self.used.fetch_add(d.bytes, Ordering::Relaxed);
            Some(d)
        } else {
            None
        };
        let file = Arc::new(ParquetFile {
            loc: loc.clone(),
            etag: head.e_tag,
            size,
            meta,
            decoded,
            checked_ms: AtomicU64::new(self.now_ms()),
        });
        if let Some(old) = self.files.lock().unwrap().insert(key, file.clone()) {
            if let Some(d) = &old.decoded {
                self.used.fetch_sub(d.bytes, Ordering::Relaxed);
            }
        }
        Ok(file)
    }

    fn forget(&self, key: &str) {
        if let Some(old) = self.files.lock().unwrap().remove(key) {
            if let Some(d) = &old.decoded {
                self.used.fetch_sub(d.bytes, Ordering::Relaxed);
            }
        }
    }
}

fn decode(data: Bytes, meta: ArrowReaderMetadata, url: &str) -> ApiResult<Decoded> {
    let err = |e: &dyn std::fmt::Display| ApiError::Store(format!("cannot read {url}: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(data, meta)
        .with_batch_size(65_536)
        .build()
        .map_err(|e| err(&e))?;
    let mut d = Decoded {
        batches: Vec::new(),
        starts: Vec::new(),
        bytes: 0,
    };
    let mut row = 0u64;
    for b in reader {
        let b = b.map_err(|e| err(&e))?;
        d.starts.push(row);
        row += b.num_rows() as u64;
        d.bytes += b.get_array_memory_size() as u64;
        d.batches.push(b);
    }
    Ok(d)
}

/// An [`AsyncFileReader`] over a tessera [`Location`].
#[derive(Clone)]
pub(crate) struct LocationReader {
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
}

impl LocationReader {
    pub(crate) fn new(loc: &Location) -> LocationReader {
        LocationReader {
            store: loc.store().clone(),
            path: loc.path().clone(),
        }
    }
}

fn pq_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for LocationReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(pq_err)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(pq_err)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.store.head(&self.path).await.map_err(pq_err)?.size;
            let md = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(md))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use proptest::prelude::*;

    /// `n` rows `0..n` in row groups of `group` rows and pages of `page`.
    fn file(n: i64, group: usize, page: usize, page_index: bool) -> Bytes {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("twice", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(Int64Array::from_iter(
                    (0..n).map(|i| (i % 5 != 0).then_some(i * 2)),
                )),
            ],
        )
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(group))
            .set_data_page_row_count_limit(page)
            .set_write_batch_size(page)
            .set_statistics_enabled(if page_index {
                parquet::file::properties::EnabledStatistics::Page
            } else {
                parquet::file::properties::EnabledStatistics::None
            })
            .build();
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out.into()
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// A page is exactly rows [offset, min(offset + limit, n)), in file
        /// order, whatever the row-group and page layout, cached in memory
        /// or read by ranges.
        #[test]
        fn a_page_is_exactly_its_rows(
            n in 1i64..3000,
            group in 1usize..700,
            page in 1usize..300,
            page_index in any::<bool>(),
            in_memory in any::<bool>(),
            offset in 0u64..3200,
            limit in 1u64..900,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let loc = Location::open(
                    &format!("memory://pages-{}/f.parquet", rand::random::<u64>()),
                    &Default::default(),
                )
                .await
                .unwrap();
                loc.write(file(n, group, page, page_index)).await.unwrap();
                let budget = if in_memory { 1 << 30 } else { 0 };
                let files = ParquetFiles::new(Duration::from_secs(60), budget);
                let f = files.open(&loc).await.unwrap();
                prop_assert_eq!(f.num_rows(), n as u64);
                let got = ids(&f.read_rows(offset, limit, None).await.unwrap());
                let want: Vec<i64> = (offset as i64..(offset + limit).min(n as u64) as i64).collect();
                prop_assert_eq!(got, want);
                // Columns come in the asked order, whichever path reads them.
                let cols = f.read_rows(offset, limit, Some(&[1, 0])).await.unwrap();
                prop_assert!(cols.iter().all(|b| b.num_columns() == 2 && b.schema().field(0).name() == "twice"));
                prop_assert_eq!(cols.iter().map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec()).collect::<Vec<_>>().concat(), ids(&f.read_rows(offset, limit, None).await.unwrap()));
                Ok(())
            })?;
        }
    }

    #[tokio::test]
    async fn a_changed_object_is_read_again_and_a_missing_one_is_404() {
        let loc = Location::open("memory://pages-etag/f.parquet", &Default::default())
            .await
            .unwrap();
        loc.write(file(10, 4, 2, true)).await.unwrap();
        let files = ParquetFiles::new(Duration::ZERO, 1 << 20);
        assert_eq!(files.open(&loc).await.unwrap().num_rows(), 10);
        loc.write(file(25, 4, 2, true)).await.unwrap();
        assert_eq!(files.open(&loc).await.unwrap().num_rows(), 25);
        loc.write(Bytes::from_static(b"not parquet at all"))
            .await
            .unwrap();
        assert!(matches!(
            files.open(&loc).await,
            Err(ApiError::BadRequest(_))
        ));
        loc.delete().await.unwrap();
        assert!(matches!(files.open(&loc).await, Err(ApiError::NotFound(_))));
    }
}
