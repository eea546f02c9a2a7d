//! Packing files into evenly sized tables, and rebalancing a table.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tessera_formats::FileFormat;
use tessera_pack::{Compact, CompactPlan, CompactReport, OutputRecord, Pack, PackPlan, PackReport};
use tessera_store::Location;

use crate::arrow_io::schema_from_py;
use crate::errors::ResultExt;
use crate::runtime::block_on;
use crate::store::{opts, size_arg, PyStoreOptions};

fn format_arg(ext: &str) -> PyResult<FileFormat> {
    FileFormat::from_extension(ext).py()
}

fn partitions(partition: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(d) = partition {
        for (k, v) in d.iter() {
            let v = match v.extract::<String>() {
                Ok(s) => s,
                Err(_) => v.str()?.to_string(),
            };
            out.push((k.extract::<String>()?, v));
        }
    }
    Ok(out)
}

fn outputs<'py>(py: Python<'py>, outs: &[OutputRecord]) -> PyResult<Bound<'py, PyList>> {
    let l = PyList::empty(py);
    for o in outs {
        let d = PyDict::new(py);
        d.set_item("path", &o.path)?;
        d.set_item("rows", o.rows)?;
        d.set_item("bytes", o.bytes)?;
        d.set_item("replaces", o.replaces)?;
        l.append(d)?;
    }
    Ok(l)
}

fn pack_plan<'py>(py: Python<'py>, p: &PackPlan) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("table_url", &p.table_url)?;
    d.set_item("format", p.format.extension())?;
    d.set_item("target", p.target.to_string())?;
    let inputs: Vec<(String, u64)> = p
        .inputs
        .iter()
        .map(|i| (i.record.url.clone(), i.record.size))
        .collect();
    d.set_item("inputs", inputs)?;
    d.set_item("already_packed", &p.already_packed)?;
    let elsewhere: Vec<(String, String)> = p
        .packed_elsewhere
        .iter()
        .map(|(u, t)| (u.clone(), t.to_string()))
        .collect();
    d.set_item("packed_elsewhere", elsewhere)?;
    d.set_item("input_bytes", p.input_bytes)?;
    d.set_item("folder", &p.folder)?;
    d.set_item("rewrite", p.rewrite.as_ref().map(|f| f.path.clone()))?;
    d.set_item("first_new", p.first_new)?;
    d.set_item("columns", columns(&p.schema))?;
    Ok(d)
}

fn columns(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

fn pack_report<'py>(py: Python<'py>, r: &PackReport) -> PyResult<Bound<'py, PyDict>> {
    let d = pack_plan(py, &r.plan)?;
    d.set_item("seq", r.seq)?;
    d.set_item("rows", r.rows)?;
    d.set_item("outputs", outputs(py, &r.outputs)?)?;
    d.set_item("dry_run", false)?;
    Ok(d)
}

fn compact_plan<'py>(py: Python<'py>, p: &CompactPlan) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("table_url", &p.table_url)?;
    d.set_item("format", p.format.extension())?;
    let folders = PyList::empty(py);
    for f in &p.folders {
        let fd = PyDict::new(py);
        fd.set_item("folder", &f.rel)?;
        fd.set_item("first_new", f.first_n)?;
        let files: Vec<(String, u64)> = f.files.iter().map(|x| (x.path.clone(), x.size)).collect();
        fd.set_item("files", files)?;
        folders.append(fd)?;
    }
    d.set_item("folders", folders)?;
    d.set_item("input_bytes", p.input_bytes)?;
    d.set_item("columns", columns(&p.schema))?;
    Ok(d)
}

fn compact_report<'py>(py: Python<'py>, r: &CompactReport) -> PyResult<Bound<'py, PyDict>> {
    let d = compact_plan(py, &r.plan)?;
    d.set_item("seq", r.seq)?;
    d.set_item("rows", r.rows)?;
    d.set_item("outputs", outputs(py, &r.outputs)?)?;
    d.set_item("deleted", &r.deleted)?;
    d.set_item("dry_run", false)?;
    Ok(d)
}

/// Pack the files under `input_base/table/` into evenly sized files under
/// `output_base/table/`, exactly once per input (see the `pack` command).
#[pyfunction]
#[pyo3(signature = (input_base, output_base, table, *, suffix=None, output_format=None,
    input_format=None, max_file_size=None, partition=None, partition_by=None, schema=None,
    force=false, single_writer=false, row_group_bytes=None, dry_run=false, store=None,
    memory=None))]
#[allow(clippy::too_many_arguments)]
pub fn pack<'py>(
    py: Python<'py>,
    input_base: &str,
    output_base: &str,
    table: String,
    suffix: Option<String>,
    output_format: Option<String>,
    input_format: Option<String>,
    max_file_size: Option<Bound<'py, PyAny>>,
    partition: Option<Bound<'py, PyDict>>,
    partition_by: Option<String>,
    schema: Option<Bound<'py, PyAny>>,
    force: bool,
    single_writer: bool,
    row_group_bytes: Option<Bound<'py, PyAny>>,
    dry_run: bool,
    store: Option<PyRef<'py, PyStoreOptions>>,
    memory: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let o = opts(store.as_deref());
    let memory = memory.map(|v| size_arg(&v, "memory")).transpose()?;
    let max = max_file_size
        .map(|v| size_arg(&v, "max_file_size"))
        .transpose()?;
    let rg = row_group_bytes
        .map(|v| size_arg(&v, "row_group_bytes"))
        .transpose()?;
    let out_fmt = output_format.as_deref().map(format_arg).transpose()?;
    let in_fmt = input_format.as_deref().map(format_arg).transpose()?;
    let parts = partitions(partition.as_ref())?;
    let schema = schema.map(|s| schema_from_py(&s)).transpose()?;
    let (input_base, output_base) = (input_base.to_string(), output_base.to_string());
    let run = async move {
        let input = Location::open(&input_base, &o).await.py()?;
        let output = Location::open(&output_base, &o).await.py()?;
        let mut p = Pack::new(input, output, table)
            .with_force(force)
            .with_single_writer(single_writer);
        if let Some(s) = suffix {
            p = p.with_suffix(s);
        }
        if let Some(f) = out_fmt {
            p = p.with_output_format(f);
        }
        if let Some(f) = in_fmt {
            p = p.with_input_format(f);
        }
        if let Some(m) = max {
            p = p.with_max_file_size(m);
        }
        if let Some(r) = rg {
            p = p.with_row_group_bytes(r);
        }
        for (k, v) in parts {
            p = p.with_partition(k, v);
        }
        if let Some(c) = partition_by {
            p = p.with_partition_by(c);
        }
        if let Some(m) = memory {
            p = p.with_memory_budget(m);
        }
        if let Some(s) = schema {
            p = p.with_schema(Arc::unwrap_or_clone(s));
        }
        if dry_run {
            Ok(Err(p.plan().await.py()?))
        } else {
            Ok(Ok(p.await.py()?))
        }
    };
    match block_on(py, run)? {
        Ok(report) => pack_report(py, &report),
        Err(plan) => {
            let d = pack_plan(py, &plan)?;
            d.set_item("dry_run", true)?;
            Ok(d)
        }
    }
}

/// Rebalance the files of `output_base/table/` (one folder or every
/// partition folder) into evenly sized files.
#[pyfunction]
#[pyo3(signature = (output_base, table, *, suffix=None, output_format=None, max_file_size=None,
    partition=None, single_writer=false, row_group_bytes=None, dry_run=false, store=None))]
#[allow(clippy::too_many_arguments)]
pub fn compact<'py>(
    py: Python<'py>,
    output_base: &str,
    table: String,
    suffix: Option<String>,
    output_format: Option<String>,
    max_file_size: Option<Bound<'py, PyAny>>,
    partition: Option<Bound<'py, PyDict>>,
    single_writer: bool,
    row_group_bytes: Option<Bound<'py, PyAny>>,
    dry_run: bool,
    store: Option<PyRef<'py, PyStoreOptions>>,
) -> PyResult<Bound<'py, PyDict>> {
    let o = opts(store.as_deref());
    let max = max_file_size
        .map(|v| size_arg(&v, "max_file_size"))
        .transpose()?;
    let rg = row_group_bytes
        .map(|v| size_arg(&v, "row_group_bytes"))
        .transpose()?;
    let out_fmt = output_format.as_deref().map(format_arg).transpose()?;
    let parts = partitions(partition.as_ref())?;
    let output_base = output_base.to_string();
    let run = async move {
        let output = Location::open(&output_base, &o).await.py()?;
        let mut c = Compact::new(output, table).with_single_writer(single_writer);
        if let Some(s) = suffix {
            c = c.with_suffix(s);
        }
        if let Some(f) = out_fmt {
            c = c.with_output_format(f);
        }
        if let Some(m) = max {
            c = c.with_max_file_size(m);
        }
        if let Some(r) = rg {
            c = c.with_row_group_bytes(r);
        }
        for (k, v) in parts {
            c = c.with_partition(k, v);
        }
        if dry_run {
            Ok(Err(c.plan().await.py()?))
        } else {
            Ok(Ok(c.await.py()?))
        }
    };
    match block_on(py, run)? {
        Ok(report) => compact_report(py, &report),
        Err(plan) => {
            let d = compact_plan(py, &plan)?;
            d.set_item("dry_run", true)?;
            Ok(d)
        }
    }
}
