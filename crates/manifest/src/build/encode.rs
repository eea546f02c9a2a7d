//! The built manifest read back out of its sorted rows: as Arrow arrays,
//! and encoded as Parquet (the low-level column writers are in
//! [`crate::columns`]).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Date32Array, DictionaryArray, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Field as ArrowField, Int32Type, Int64Type, Schema, SchemaRef,
};
use bytes::Bytes;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use crate::columns::PAGE_ROWS;
use crate::error::{Error, Result};
use crate::template::FieldType;

use super::lines::{line_after, line_at};
use super::{BuiltManifest, Fields};

impl BuiltManifest {
    /// Encode as Parquet: row groups of the build's row group rows (see
    /// [`BuildManifest::with_row_group_rows`](super::BuildManifest::with_row_group_rows)), columns encoded in
    /// parallel and snappy-compressed (fields dictionary- or delta-encoded
    /// with minimum/maximum statistics per row group and a column index of
    /// page bounds, locations prefix-encoded), and the
    /// template in the file's key-value metadata.
    pub fn to_parquet(&self) -> Result<Vec<u8>> {
        let row_group_rows = self.row_group_rows;
        let schema: SchemaRef = self.schema();
        // Pages are written by `columns`; the writer's own settings only
        // name the file's metadata.
        let mut props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(
                crate::META_KEY.to_string(),
                serde_json::to_string(&self.meta).expect("manifest metadata serializes"),
            )]))
            .build();
        let url = "(manifest being built)".to_string();
        let perr = |e| Error::Parquet {
            url: url.clone(),
            source: e,
        };
        // Keep the Arrow schema in the file so readers get dictionary types back.
        parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let parquet_schema = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .map_err(perr)?;
        let mut out: Vec<u8> = Vec::new();
        let mut writer =
            SerializedFileWriter::new(&mut out, parquet_schema.root_schema_ptr(), Arc::new(props))
                .map_err(perr)?;
        let n = self.len();
        let ncols = schema.fields().len();
        let loc_idx = ncols - 1;
        let groups: Vec<(usize, usize)> = (0..n)
            .step_by(row_group_rows)
            .map(|s| (s, (s + row_group_rows).min(n)))
            .collect();
        let tasks: Vec<(usize, usize)> = (0..groups.len())
            .flat_map(|g| (0..ncols).map(move |c| (g, c)))
            .collect();
        let descrs: Vec<_> = (0..ncols)
            .map(|c| writer.schema_descr().column(c))
            .collect();
        // Each task encodes one column of one row group (see `columns`).
        let chunks: Vec<Result<(usize, usize, Bytes, ColumnCloseResult)>> = tasks
            .par_iter()
            .map(|&(g, c)| {
                let (s, e) = groups[g];
                let descr = descrs[c].clone();
                let (data, close) = if c == loc_idx {
                    crate::columns::write_chunk(descr, e - s, PAGE_ROWS, |i, prev| {
                        line_after(&self.text, self.start(s + i), prev)
                    })
                } else if self.defs[c].ty == FieldType::String {
                    let codes: Vec<i32> = self.values(c, s..e).map(|v| v as i32).collect();
                    crate::columns::write_dict_chunk(
                        descr,
                        self.dict(c).as_string::<i32>(),
                        &codes,
                        PAGE_ROWS,
                    )
                } else {
                    let values: Vec<i64> = self.values(c, s..e).collect();
                    crate::columns::write_int_chunk(descr, &values, PAGE_ROWS)
                }
                .map_err(perr)?;
                Ok((g, c, data, close))
            })
            .collect();
        let mut by_group: Vec<Vec<Option<(Bytes, ColumnCloseResult)>>> = (0..groups.len())
            .map(|_| (0..ncols).map(|_| None).collect())
            .collect();
        for r in chunks {
            let (g, c, data, close) = r?;
            by_group[g][c] = Some((data, close));
        }
        for group in by_group {
            let mut rg = writer.next_row_group().map_err(perr)?;
            for (data, close) in group.into_iter().flatten() {
                rg.append_column(&data, close).map_err(perr)?;
            }
            rg.close().map_err(perr)?;
        }
        writer.close().map_err(perr)?;
        Ok(out)
    }

    /// The schema of the manifest: the fields, then the location column.
    pub fn schema(&self) -> SchemaRef {
        let mut fields: Vec<ArrowField> = self
            .defs
            .iter()
            .map(|f| {
                let dt = match f.ty {
                    FieldType::String => {
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
                    }
                    FieldType::Int32 => DataType::Int32,
                    FieldType::Int64 => DataType::Int64,
                    FieldType::Date => DataType::Date32,
                };
                ArrowField::new(&f.name, dt, false)
            })
            .collect();
        fields.push(ArrowField::new(
            &self.meta.location_column,
            DataType::Utf8,
            false,
        ));
        Arc::new(Schema::new(fields))
    }

    /// Field `fi` of sorted row `j`: for string fields its position in
    /// [`BuiltManifest::dict`], for dates days since 1970.
    #[inline]
    pub(super) fn value(&self, fi: usize, j: usize) -> i64 {
        match &self.fields {
            Fields::Packed { layout, dicts } => {
                let w = layout.widths[fi];
                let v = (self.starts[j] >> (32 + layout.shift(fi))) & ((1u64 << w) - 1);
                if dicts[fi].is_some() {
                    v as i64
                } else {
                    (v as i64).wrapping_add(layout.mins[fi])
                }
            }
            Fields::Arrays(arrays) => {
                let a = &arrays[fi];
                match self.defs[fi].ty {
                    FieldType::String => i64::from(a.as_dictionary::<Int32Type>().keys().value(j)),
                    FieldType::Int32 => i64::from(a.as_primitive::<Int32Type>().value(j)),
                    FieldType::Int64 => a.as_primitive::<Int64Type>().value(j),
                    FieldType::Date => i64::from(a.as_primitive::<Date32Type>().value(j)),
                }
            }
        }
    }

    /// [`BuiltManifest::value`] of field `fi` for the sorted rows `rows`.
    fn values(
        &self,
        fi: usize,
        rows: std::ops::Range<usize>,
    ) -> Box<dyn Iterator<Item = i64> + '_> {
        match &self.fields {
            Fields::Packed { layout, dicts } => {
                let shift = 32 + layout.shift(fi);
                let mask = (1u64 << layout.widths[fi]) - 1;
                let lo = if dicts[fi].is_some() {
                    0
                } else {
                    layout.mins[fi]
                };
                Box::new(
                    self.starts[rows]
                        .iter()
                        .map(move |&p| (((p >> shift) & mask) as i64).wrapping_add(lo)),
                )
            }
            Fields::Arrays(_) => Box::new(rows.map(move |j| self.value(fi, j))),
        }
    }

    /// The sorted values of string field `fi` (a `StringArray`).
    pub(super) fn dict(&self, fi: usize) -> &ArrayRef {
        match &self.fields {
            Fields::Packed { dicts, .. } => {
                dicts[fi].as_ref().expect("string fields have a dictionary")
            }
            Fields::Arrays(arrays) => arrays[fi].as_dictionary::<Int32Type>().values(),
        }
    }

    /// The whole manifest as one Arrow batch, sorted by the fields.
    pub fn batch(&self) -> Result<RecordBatch> {
        let n = self.len();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.defs.len() + 1);
        for (fi, f) in self.defs.iter().enumerate() {
            cols.push(match &self.fields {
                Fields::Arrays(arrays) => arrays[fi].clone(),
                Fields::Packed { .. } => {
                    let dict = (f.ty == FieldType::String).then(|| self.dict(fi));
                    field_array(f.ty, dict, n, |j| self.value(fi, j))?
                }
            });
        }
        let total: usize = (0..self.len()).map(|j| self.location(j).len()).sum();
        if total > i32::MAX as usize {
            return Err(Error::Unsupported(format!(
                "{total} bytes of locations: more than an Arrow string array holds"
            )));
        }
        let mut offsets: Vec<i32> = Vec::with_capacity(self.len() + 1);
        let mut values: Vec<u8> = Vec::with_capacity(total);
        offsets.push(0);
        for j in 0..self.len() {
            values.extend_from_slice(self.location(j));
            offsets.push(values.len() as i32);
        }
        cols.push(Arc::new(StringArray::try_new(
            arrow::buffer::OffsetBuffer::new(offsets.into()),
            values.into(),
            None,
        )?));
        Ok(RecordBatch::try_new(self.schema(), cols)?)
    }

    /// Where the location of sorted row `j` starts in the paths text.
    #[inline]
    fn start(&self, j: usize) -> usize {
        if matches!(self.fields, Fields::Packed { .. }) {
            (self.starts[j] & u64::from(u32::MAX)) as usize
        } else {
            self.starts[j] as usize
        }
    }

    /// The location of sorted row `j`, as bytes of the paths text.
    fn location(&self, j: usize) -> &[u8] {
        line_at(&self.text, self.start(j))
    }
}

/// The Arrow array of a field whose `j`-th sorted value is `value(j)` (for
/// string fields, a position in `dict`, a `StringArray`).
pub(super) fn field_array(
    ty: FieldType,
    dict: Option<&ArrayRef>,
    n: usize,
    value: impl Fn(usize) -> i64 + Sync,
) -> Result<ArrayRef> {
    let ints = || -> Vec<i32> { (0..n).into_par_iter().map(|j| value(j) as i32).collect() };
    Ok(match (ty, dict) {
        (FieldType::String, Some(dict)) => {
            let keys = Int32Array::from(ints());
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, dict.clone())?)
        }
        (FieldType::Int32, _) => Arc::new(Int32Array::from(ints())),
        (FieldType::Date, _) => Arc::new(Date32Array::from(ints())),
        (FieldType::Int64, _) => Arc::new(Int64Array::from(
            (0..n).into_par_iter().map(&value).collect::<Vec<i64>>(),
        )),
        (FieldType::String, None) => unreachable!("string fields have a dictionary"),
    })
}
