//! `tessera pack`.

use std::fmt::Write as _;
use std::future::IntoFuture;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera_formats::{parse_schema, FileFormat};
use tessera_pack::{
    naming, Compact, CompactPlan, CompactReport, OutputRecord, Pack, PackPlan, PackReport,
    PackTarget, Progress,
};
use tessera_store::{format_size, parse_size, Location, StoreOptions};

use crate::cli::PackArgs;

/// The variable crash tests set to abort a pack at a point of the journal
/// protocol (honoured only by builds with tessera-pack's `fault-injection`
/// feature, such as the one `cargo test` runs).
const FAULT_VAR: &str = "TESSERA_FAULT";

pub async fn run(a: PackArgs, opts: &StoreOptions, quiet: bool) -> Result<i32> {
    let want = if a.compact { 2 } else { 3 };
    if a.args.len() != want {
        if a.compact {
            bail!(
                "--compact takes OUTPUT_BASE TABLE (got {} arguments)",
                a.args.len()
            );
        }
        bail!(
            "pack takes INPUT_BASE OUTPUT_BASE TABLE (got {} arguments; to rebalance a table use --compact OUTPUT_BASE TABLE)",
            a.args.len()
        );
    }
    let table = a.args[want - 1].clone();
    let output = Location::open(&a.args[want - 2], opts).await?;
    let max_file_size =
        parse_size(&a.max_file_size).map_err(|e| anyhow!("--max-file-size: {e}"))?;
    let show_progress = !quiet && !a.dry_run && std::io::stderr().is_terminal();
    if a.compact {
        if a.partition_by.is_some() || a.schema.is_some() || a.input_ext.is_some() || a.force {
            bail!("--compact rebalances existing files: --partition-by, --schema, --input-ext and --force do not apply");
        }
        let compact = compaction(&a, output, table, max_file_size)?;
        if a.dry_run {
            let plan = compact.plan().await.map_err(explain)?;
            print_compact_plan(&a, max_file_size, &plan)?;
        } else {
            let progress = compact.progress();
            let report = with_progress(progress, show_progress, compact)
                .await
                .map_err(explain)?;
            print_compacted(&a, &report)?;
        }
    } else {
        let input = Location::open(&a.args[0], opts).await?;
        let pack = packing(&a, input, output, table, max_file_size)?;
        if a.dry_run {
            let plan = pack.plan().await.map_err(explain)?;
            print_pack_plan(&a, max_file_size, &plan)?;
        } else {
            let progress = pack.progress();
            let report = with_progress(progress, show_progress, pack)
                .await
                .map_err(explain)?;
            print_packed(&a, &report)?;
        }
    }
    Ok(0)
}

fn packing(
    a: &PackArgs,
    input: Location,
    output: Location,
    table: String,
    max_file_size: u64,
) -> Result<Pack> {
    let mut p = Pack::new(input, output, table)
        .with_max_file_size(max_file_size)
        .with_force(a.force)
        .with_single_writer(a.single_writer);
    if let Some(s) = &a.suffix {
        p = p.with_suffix(s);
    }
    if let Some(c) = &a.partition_by {
        p = p.with_partition_by(c).with_memory_budget(
            parse_size(&a.memory).map_err(|e| anyhow::anyhow!("--memory: {e}"))?,
        );
    }
    if let Some(e) = &a.output_ext {
        p = p.with_output_format(FileFormat::from_extension(e).context("--output-ext")?);
    }
    if let Some(e) = &a.input_ext {
        p = p.with_input_format(FileFormat::from_extension(e).context("--input-ext")?);
    }
    for spec in &a.partition {
        let (k, v) = naming::parse_partition(spec).context("--partition")?;
        p = p.with_partition(k, v);
    }
    if let Some(f) = &a.schema {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the schema file {}", f.display()))?;
        p = p.with_schema(parse_schema(&text, &f.display().to_string())?);
    }
    if let Ok(point) = std::env::var(FAULT_VAR) {
        p = p.with_fault_point(point);
    }
    Ok(p)
}

fn compaction(
    a: &PackArgs,
    output: Location,
    table: String,
    max_file_size: u64,
) -> Result<Compact> {
    let mut c = Compact::new(output, table)
        .with_max_file_size(max_file_size)
        .with_single_writer(a.single_writer);
    if let Some(s) = &a.suffix {
        c = c.with_suffix(s);
    }
    if let Some(e) = &a.output_ext {
        c = c.with_output_format(FileFormat::from_extension(e).context("--output-ext")?);
    }
    for spec in &a.partition {
        let (k, v) = naming::parse_partition(spec).context("--partition")?;
        c = c.with_partition(k, v);
    }
    if let Ok(point) = std::env::var(FAULT_VAR) {
        c = c.with_fault_point(point);
    }
    Ok(c)
}

/// Run `op`, drawing a progress bar on stderr from its counters if `show`.
async fn with_progress<F: IntoFuture>(progress: Arc<Progress>, show: bool, op: F) -> F::Output {
    if !show {
        return op.await;
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} read  {bytes_per_sec}  ETA {eta}  {msg}",
        )
        .expect("valid template"),
    );
    let ticker = {
        let pb = pb.clone();
        tokio::spawn(async move {
            loop {
                let total = progress.bytes_total.load(Ordering::Relaxed);
                if total > 0 {
                    pb.set_length(total);
                }
                pb.set_position(progress.bytes_read.load(Ordering::Relaxed));
                pb.set_message(format!(
                    "{} rows, {} files written",
                    progress.rows.load(Ordering::Relaxed),
                    progress.files.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        })
    };
    let result = op.await;
    ticker.abort();
    pb.finish_and_clear();
    result
}

/// The flag that sets a library option.
fn flag(option: &str) -> &str {
    match option {
        "max_file_size" => "--max-file-size",
        "output_format" => "--output-ext",
        "input_format" => "--input-ext",
        "partition_by" => "--partition-by",
        "suffix" => "--suffix",
        "schema" => "--schema",
        other => other,
    }
}

/// A library error in the words of the command line: the flags that set
/// what is wrong, and the flags that would fix it.
fn explain(e: tessera_pack::Error) -> anyhow::Error {
    use tessera_pack::Error as E;
    match &e {
        E::InvalidOption { option, message } => anyhow!("{}: {message}", flag(option)),
        E::InvalidName { what: "suffix", .. } => anyhow!("--suffix: {e}"),
        E::NoSuchColumn { .. } => anyhow!("--partition-by: {e}"),
        E::UnknownInputFormat { url, expected } => anyhow!(
            "{url}: unknown file format (expected {expected}); choose the files to read with --input-ext"
        ),
        E::MixedInputs { url, formats } => anyhow!(
            "the input folder {url} mixes formats ({}); choose one with --input-ext",
            formats.join(", ")
        ),
        E::InputOverlapsOutput { input, output } => anyhow!(
            "the input folder {input} and the output folder {output} overlap; to rebalance a table in place use --compact"
        ),
        E::FormatMismatch { found, .. } => {
            anyhow!("{e} (choose --output-ext {found} or another folder)")
        }
        E::UnsafeStore { .. } => anyhow!(
            "{e}; if only one pack writes to this table at a time, pass --single-writer"
        ),
        _ => e.into(),
    }
}

/// What `--json` prints: the same shape for packs, compactions and dry runs.
#[derive(Default)]
struct Summary<'a> {
    table: &'a str,
    seq: Option<u64>,
    inputs: Vec<&'a str>,
    already_packed: &'a [String],
    packed_elsewhere: &'a [(String, PackTarget)],
    rows: u64,
    outputs: &'a [OutputRecord],
    deleted: &'a [String],
}

impl<'a> Summary<'a> {
    fn planned(plan: &'a PackPlan) -> Summary<'a> {
        Summary {
            table: &plan.table_url,
            inputs: plan.inputs.iter().map(|i| i.record.url.as_str()).collect(),
            already_packed: &plan.already_packed,
            packed_elsewhere: &plan.packed_elsewhere,
            ..Summary::default()
        }
    }

    fn print(&self, dry_run: bool) -> Result<()> {
        let v = serde_json::json!({
            "table": self.table,
            "dry_run": dry_run,
            "seq": self.seq,
            "inputs": self.inputs,
            "already_packed": self.already_packed,
            "packed_elsewhere": self.packed_elsewhere.iter().map(|(url, t)| serde_json::json!({
                "url": url, "target": t.to_string(),
            })).collect::<Vec<_>>(),
            "rows": self.rows,
            "outputs": self.outputs.iter().map(|o| serde_json::json!({
                "path": o.path, "rows": o.rows, "bytes": o.bytes, "rewritten": o.replaces,
            })).collect::<Vec<_>>(),
            "deleted": self.deleted,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        Ok(())
    }
}

fn print_pack_plan(a: &PackArgs, max_file_size: u64, plan: &PackPlan) -> Result<()> {
    if a.json {
        return Summary::planned(plan).print(true);
    }
    print!("{}", describe_pack(a, max_file_size, plan));
    println!("(dry run: nothing written)");
    Ok(())
}

fn print_compact_plan(a: &PackArgs, max_file_size: u64, plan: &CompactPlan) -> Result<()> {
    if a.json {
        let summary = Summary {
            table: &plan.table_url,
            ..Summary::default()
        };
        return summary.print(true);
    }
    print!("{}", describe_compact(a, max_file_size, plan));
    println!("(dry run: nothing written)");
    Ok(())
}

/// What `--dry-run` prints for a pack.
fn describe_pack(a: &PackArgs, max_file_size: u64, plan: &PackPlan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "table folder: {}", plan.table_url);
    if !plan.folder.is_empty() {
        let _ = writeln!(s, "partition folder: {}", plan.folder);
    }
    if let Some(c) = &plan.target.partition_by {
        let _ = writeln!(s, "partitions: one folder per value of column '{c}'");
    }
    let _ = writeln!(
        s,
        "inputs: {} file(s), {} ({} already packed, skipped)",
        plan.inputs.len(),
        format_size(plan.input_bytes),
        plan.already_packed.len()
    );
    for i in &plan.inputs {
        let _ = writeln!(
            s,
            "  {} ({}, {})",
            i.record.url,
            i.format,
            format_size(i.record.size)
        );
    }
    for (url, t) in &plan.packed_elsewhere {
        let _ = writeln!(
            s,
            "note: {url} was packed into {t} before; it is packed into {} too",
            plan.target
        );
    }
    if let Some(r) = &plan.rewrite {
        let _ = writeln!(
            s,
            "rewrite: {} ({}, under the {} limit: new rows are appended to it)",
            r.path,
            format_size(r.size),
            format_size(max_file_size)
        );
    }
    let same = plan
        .inputs
        .iter()
        .all(|i| i.format.layout == plan.format.layout);
    let bytes = plan.input_bytes + plan.rewrite.as_ref().map(|r| r.size).unwrap_or(0);
    let estimate = if same && plan.target.partition_by.is_none() {
        files_estimate(bytes, max_file_size)
    } else {
        String::new()
    };
    let first = naming::file_name(
        table(a),
        a.suffix.as_deref(),
        plan.first_new,
        plan.format.extension(),
    );
    let _ = writeln!(s, "create: {first} onward as {}{estimate}", plan.format);
    let _ = writeln!(s, "columns: {}", columns(&plan.schema));
    s
}

/// What `--dry-run` prints for a compaction.
fn describe_compact(a: &PackArgs, max_file_size: u64, plan: &CompactPlan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "table folder: {}", plan.table_url);
    let Some(first) = plan.folders.first() else {
        let _ = writeln!(s, "already balanced: nothing to rewrite");
        return s;
    };
    for f in &plan.folders {
        for c in &f.files {
            let _ = writeln!(s, "rewrite: {} ({})", c.path, format_size(c.size));
        }
    }
    let name = naming::file_name(
        table(a),
        a.suffix.as_deref(),
        first.first_n,
        plan.format.extension(),
    );
    let _ = writeln!(
        s,
        "create: {}{name} onward as {}{}",
        first.rel,
        plan.format,
        files_estimate(plan.input_bytes, max_file_size)
    );
    let _ = writeln!(s, "columns: {}", columns(&plan.schema));
    s
}

/// The table name argument.
fn table(a: &PackArgs) -> &str {
    a.args.last().map(String::as_str).unwrap_or_default()
}

fn files_estimate(bytes: u64, max_file_size: u64) -> String {
    format!(
        ", about {} file(s) of {}",
        bytes.div_ceil(max_file_size).max(1),
        format_size(max_file_size)
    )
}

fn columns(schema: &arrow::datatypes::Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_packed(a: &PackArgs, r: &PackReport) -> Result<()> {
    let plan = &r.plan;
    if a.json {
        let summary = Summary {
            seq: r.seq,
            rows: r.rows,
            outputs: &r.outputs,
            ..Summary::planned(plan)
        };
        return summary.print(false);
    }
    if r.seq.is_none() {
        println!(
            "nothing to pack: all {} input file(s) were packed into {} before (--force packs them again)",
            plan.already_packed.len(),
            plan.target
        );
        return Ok(());
    }
    println!(
        "packed {} rows from {} file(s) into {}: {} file(s), {}{}",
        r.rows,
        plan.inputs.len(),
        plan.table_url,
        r.outputs.len(),
        format_size(r.outputs.iter().map(|o| o.bytes).sum()),
        if plan.already_packed.is_empty() {
            String::new()
        } else {
            format!(" ({} already packed, skipped)", plan.already_packed.len())
        }
    );
    for (url, t) in &plan.packed_elsewhere {
        println!(
            "  note: {url} was packed into {t} before; packed into {} too",
            plan.target
        );
    }
    print_outputs(&r.outputs);
    Ok(())
}

fn print_compacted(a: &PackArgs, r: &CompactReport) -> Result<()> {
    let plan = &r.plan;
    if a.json {
        let summary = Summary {
            table: &plan.table_url,
            seq: r.seq,
            rows: r.rows,
            outputs: &r.outputs,
            deleted: &r.deleted,
            ..Summary::default()
        };
        return summary.print(false);
    }
    if r.seq.is_none() {
        println!("{}: already balanced, nothing to do", plan.table_url);
        return Ok(());
    }
    println!(
        "compacted {}: {} rows into {} file(s), {} ({} removed)",
        plan.table_url,
        r.rows,
        r.outputs.len(),
        format_size(r.outputs.iter().map(|o| o.bytes).sum()),
        r.deleted.len()
    );
    print_outputs(&r.outputs);
    for d in &r.deleted {
        println!("  {d} (removed)");
    }
    Ok(())
}

fn print_outputs(outputs: &[OutputRecord]) {
    for o in outputs {
        println!(
            "  {}{}  {}  {} rows",
            o.path,
            if o.replaces { " (rewritten)" } else { "" },
            format_size(o.bytes),
            o.rows
        );
    }
}
