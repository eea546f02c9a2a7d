//! Writing results: record batches as table / JSON / CSV, and progress spinners.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::Format;

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
pub fn write_batch(out: &mut dyn Write, batch: &RecordBatch, format: Format) -> Result<()> {
    let batch = plain(batch)?;
    match format {
        Format::Table => {
            writeln!(
                out,
                "{}",
                arrow::util::pretty::pretty_format_batches(&[batch])?
            )?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            w.write(&batch)?;
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut *out);
            w.write(&batch)?;
            w.finish()?;
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
