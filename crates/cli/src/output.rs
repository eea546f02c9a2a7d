//! Writing results: record batches as table / JSON / CSV, and progress spinners.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use indicatif::{ProgressBar, ProgressStyle};
use tessera_formats::{ResultEncoder, ResultFormat};

use crate::cli::OutputFormat;

/// Dictionary columns become plain strings so every writer accepts them.
fn plain(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if let DataType::Dictionary(_, v) = f.data_type() {
            cols.push(arrow::compute::cast(c, v)?);
            fields.push(Field::new(f.name(), (**v).clone(), f.is_nullable()));
        } else {
            cols.push(c.clone());
            fields.push((**f).clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Print a batch to `out` in `format`.
pub fn write_batch(out: &mut dyn Write, batch: &RecordBatch, format: OutputFormat) -> Result<()> {
    let batch = plain(batch)?;
    match format {
        OutputFormat::Table => {
            writeln!(
                out,
                "{}",
                arrow::util::pretty::pretty_format_batches(&[batch])?
            )?;
        }
        OutputFormat::Csv => {
            let mut w = ResultEncoder::new(ResultFormat::Csv, batch.schema(), Vec::new())?;
            w.write(&batch)?;
            out.write_all(&w.finish()?)?;
        }
        OutputFormat::Json => {
            // The CLI has always left null values out of its JSON.
            let mut w = ResultEncoder::new(ResultFormat::Json, batch.schema(), Vec::new())?
                .with_explicit_nulls(false);
            w.write(&batch)?;
            out.write_all(&w.finish()?)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// A spinner on stderr when it is a terminal, hidden otherwise.
pub fn spinner(msg: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {human_pos} [{elapsed}, {per_sec}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}
