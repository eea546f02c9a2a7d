//! Arrow data between Python and Rust, through the Arrow PyCapsule
//! interface (`__arrow_c_stream__`, `__arrow_c_array__`): no copy.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use pyo3::prelude::*;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PyRecordBatchReader, PySchema, PyTable};

use crate::errors::arrow_err;

/// Batches as a `pyarrow.Table`.
pub fn table_to_py<'py>(
    py: Python<'py>,
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
) -> PyResult<Bound<'py, PyAny>> {
    PyTable::try_new(batches, schema)?.into_pyarrow(py)
}

/// A reader as a `pyarrow.RecordBatchReader`.
pub fn reader_to_py<'py>(
    py: Python<'py>,
    reader: Box<dyn RecordBatchReader + Send>,
) -> PyResult<Bound<'py, PyAny>> {
    PyRecordBatchReader::new(reader).into_pyarrow(py)
}

/// Every batch of an Arrow object (anything with `__arrow_c_stream__` or
/// `__arrow_c_array__`), read with the GIL released.
pub fn batches_from_py(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let any: AnyRecordBatch = data.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "expected Arrow data (a pyarrow Table, RecordBatch or RecordBatchReader, a pandas \
             DataFrame, or an object with __arrow_c_stream__), not {}",
            data.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let reader = any.into_reader()?;
    py.detach(move || {
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(arrow_err)?;
        Ok((schema, batches))
    })
}

/// A `pyarrow.Schema` (or any `__arrow_c_schema__` object) as Arrow's.
pub fn schema_from_py(schema: &Bound<'_, PyAny>) -> PyResult<SchemaRef> {
    let s: PySchema = schema.extract()?;
    Ok(s.into_inner())
}
