//! `tessera pack`.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera_formats::{parse_schema, Format};
use tessera_pack::{naming, PackReport, Packer};
use tessera_store::{format_size, parse_size, Location, StoreOptions};

use crate::cli::PackArgs;

pub async fn run(a: PackArgs, opts: &StoreOptions, quiet: bool) -> Result<i32> {
    let packer = packer(&a, opts).await?;
    let progress = packer.progress();
    let bar = if !quiet && !a.dry_run && std::io::stderr().is_terminal() {
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} read  {bytes_per_sec}  ETA {eta}  {msg}",
            )
            .expect("valid template"),
        );
        Some(pb)
    } else {
        None
    };
    let ticker = bar.clone().map(|pb| {
        let p = progress.clone();
        tokio::spawn(async move {
            loop {
                let total = p.bytes_total.load(Ordering::Relaxed);
                if total > 0 {
                    pb.set_length(total);
                }
                pb.set_position(p.bytes_read.load(Ordering::Relaxed));
                pb.set_message(format!(
                    "{} rows, {} files written",
                    p.rows.load(Ordering::Relaxed),
                    p.files.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        })
    });
    let result = packer.execute().await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let report = result?;
    print_report(&a, &packer, &report)?;
    Ok(0)
}

async fn packer(a: &PackArgs, opts: &StoreOptions) -> Result<Packer> {
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
    let mut p = if a.compact {
        if a.partition_by.is_some() || a.schema.is_some() || a.input_ext.is_some() || a.force {
            bail!("--compact rebalances existing files: --partition-by, --schema, --input-ext and --force do not apply");
        }
        Packer::compact(output, &table)
    } else {
        let input = Location::open(&a.args[0], opts).await?;
        Packer::new(input, output, &table)
    };
    let size = parse_size(&a.max_file_size).map_err(|e| anyhow::anyhow!("--max-file-size: {e}"))?;
    p = p
        .max_file_size(size)
        .suffix(a.suffix.clone())
        .partition_by(a.partition_by.clone())
        .dry_run(a.dry_run)
        .force(a.force)
        .single_writer(a.single_writer);
    if let Some(e) = &a.output_ext {
        p = p.output_format(Format::from_extension(e).context("--output-ext")?);
    }
    if let Some(e) = &a.input_ext {
        p = p.input_format(Some(Format::from_extension(e).context("--input-ext")?));
    }
    for spec in &a.partition {
        let (k, v) = naming::parse_partition(spec)?;
        p = p.partition(&k, &v);
    }
    if let Some(f) = &a.schema {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the schema file {}", f.display()))?;
        p = p.schema(Some(parse_schema(&text, &f.display().to_string())?));
    }
    Ok(p)
}

fn print_report(a: &PackArgs, packer: &Packer, r: &PackReport) -> Result<()> {
    if a.json {
        let v = serde_json::json!({
            "table": r.plan.table_url,
            "dry_run": a.dry_run,
            "seq": r.seq,
            "inputs": r.plan.inputs.iter().map(|i| &i.record.url).collect::<Vec<_>>(),
            "already_packed": r.plan.already_packed,
            "packed_elsewhere": r.plan.packed_elsewhere.iter().map(|(url, t)| serde_json::json!({
                "url": url, "target": t.to_string(),
            })).collect::<Vec<_>>(),
            "rows": r.rows,
            "outputs": r.outputs.iter().map(|o| serde_json::json!({
                "path": o.path, "rows": o.rows, "bytes": o.bytes, "rewritten": o.replaces,
            })).collect::<Vec<_>>(),
            "deleted": r.deleted,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if a.dry_run {
        print!("{}", r.plan.describe(packer));
        println!("(dry run: nothing written)");
        return Ok(());
    }
    if r.seq.is_none() {
        if a.compact {
            println!("{}: already balanced, nothing to do", r.plan.table_url);
        } else {
            println!(
                "nothing to pack: all {} input file(s) were packed into {} before (--force packs them again)",
                r.plan.already_packed.len(),
                packer.target()
            );
        }
        return Ok(());
    }
    let bytes: u64 = r.outputs.iter().map(|o| o.bytes).sum();
    if a.compact {
        println!(
            "compacted {}: {} rows into {} file(s), {} ({} removed)",
            r.plan.table_url,
            r.rows,
            r.outputs.len(),
            format_size(bytes),
            r.deleted.len()
        );
    } else {
        println!(
            "packed {} rows from {} file(s) into {}: {} file(s), {}{}",
            r.rows,
            r.plan.inputs.len(),
            r.plan.table_url,
            r.outputs.len(),
            format_size(bytes),
            if r.plan.already_packed.is_empty() {
                String::new()
            } else {
                format!(" ({} already packed, skipped)", r.plan.already_packed.len())
            }
        );
    }
    for (url, t) in &r.plan.packed_elsewhere {
        println!(
            "  note: {url} was packed into {t} before; packed into {} too",
            packer.target()
        );
    }
    for o in &r.outputs {
        println!(
            "  {}{}  {}  {} rows",
            o.path,
            if o.replaces { " (rewritten)" } else { "" },
            format_size(o.bytes),
            o.rows
        );
    }
    for d in &r.deleted {
        println!("  {d} (removed)");
    }
    Ok(())
}
