//! `tessera put`, `tessera get`, `tessera datasets …`.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use arrow::array::RecordBatch;
use tessera_datasets::{AsOf, Datasets, DateKey, Error as DatasetsError, IdKey, PartitionLayout};
use tessera_formats::{
    open_sink, CountingWriter, FileFormat, FileWriter, RecordLayout, ResultEncoder, ResultFormat,
    Sink, WriteOptions,
};
use tessera_store::units::parse_duration;
use tessera_store::{format_size, parse_size, Location, StoreOptions};

use crate::cli::{DatasetsCommand, GetArgs, PutArgs, StoreArgs};

async fn open(s: &StoreArgs, opts: &StoreOptions) -> Result<Datasets> {
    Ok(Datasets::open(&s.store, opts)
        .await?
        .with_namespace(&s.namespace)?
        .with_single_writer(s.single_writer))
}

/// A library error in the command line's words: the flag it concerns
/// (`keys`: the partition keys the command was given).
fn with_flags(e: DatasetsError, keys: &PartitionLayout) -> anyhow::Error {
    use DatasetsError as E;
    let flag = match &e {
        E::UnsafeStore { .. } => {
            return anyhow::anyhow!(
                "{e}; if only one process writes to these datasets at a time, pass --single-writer"
            )
        }
        E::InvalidPredicate { .. } => "--where",
        E::InvalidOption {
            option: "version key",
            ..
        } => "--version",
        E::UnknownFormat { .. } => "--format",
        E::NoSuchColumn { column, .. } | E::InvalidKeyColumn { column, .. } => {
            if keys.date.as_ref().is_some_and(|k| &k.column == column) {
                "--date-key"
            } else if keys.id.as_ref().is_some_and(|k| &k.column == column) {
                "--id-key"
            } else {
                "--columns"
            }
        }
        _ => return e.into(),
    };
    anyhow::Error::new(e).context(flag)
}

pub async fn put(a: PutArgs, opts: &StoreOptions, quiet: bool) -> Result<i32> {
    let ds = open(&a.store, opts).await?;
    let format = a
        .format
        .as_deref()
        .map(|f| FileFormat::from_extension(f).context("--format"))
        .transpose()?;
    let target = parse_size(&a.target_size).map_err(|e| anyhow::anyhow!("--target-size: {e}"))?;
    let memory = parse_size(&a.memory).map_err(|e| anyhow::anyhow!("--memory: {e}"))?;
    // Standard input is spooled to a temporary file: inference needs a
    // sample, and a retried commit needs to read the data again.
    let mut _spool = None;
    let mut files = Vec::new();
    let mut sources = Vec::new();
    for f in &a.files {
        if f == "-" {
            let Some(fmt) = format else {
                bail!("reading stdin needs --format (csv, tsv, jsonl, parquet, csv.gz, ...)");
            };
            if _spool.is_some() {
                bail!("'-' (stdin) can be given once");
            }
            let mut tmp = tempfile::Builder::new()
                .prefix("tessera-stdin-")
                .suffix(&format!(".{}", fmt.extension()))
                .tempfile()
                .context("cannot create a temporary file for stdin")?;
            let mut buf = vec![0u8; 1 << 20];
            let mut stdin = std::io::stdin().lock();
            loop {
                let n = stdin.read(&mut buf).context("reading stdin")?;
                if n == 0 {
                    break;
                }
                tmp.write_all(&buf[..n]).context("spooling stdin")?;
            }
            tmp.flush()?;
            files.push(Location::local(tmp.path())?);
            sources.push("(stdin)".to_string());
            _spool = Some(tmp);
        } else {
            let loc = Location::open(f, opts).await?;
            sources.push(loc.url());
            files.push(loc);
        }
    }
    let keys = PartitionLayout {
        date: a
            .date_key
            .as_deref()
            .map(str::parse::<DateKey>)
            .transpose()
            .context("--date-key")?,
        id: a
            .id_key
            .as_deref()
            .map(str::parse::<IdKey>)
            .transpose()
            .context("--id-key")?,
    };
    let mut p = ds
        .put(&a.name)
        .with_files(files)
        .with_version(&a.version_key)
        .with_keep_last(a.keep_last)
        .with_target_size(target)
        .with_memory_budget(memory)
        .with_sources(sources);
    if let Some(f) = format {
        p = p.with_input_format(f);
    }
    if let Some(k) = &keys.date {
        p = p.with_date_key(k.clone());
    }
    if let Some(k) = &keys.id {
        p = p.with_id_key(k.clone());
    }
    let rows = p.rows_read();
    let spinner = crate::output::spinner("rows loaded", quiet);
    let ticker = (!spinner.is_hidden()).then(|| {
        let pb = spinner.clone();
        tokio::spawn(async move {
            loop {
                pb.set_position(rows.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        })
    });
    let result = p.await.map_err(|e| with_flags(e, &keys));
    if let Some(t) = ticker {
        t.abort();
    }
    spinner.finish_and_clear();
    let r = result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if !quiet {
        println!(
            "{} {} rows into '{}' as version key {} (Delta version {}, {} file(s){}{})",
            if r.keep_last {
                "replaced with"
            } else {
                "loaded"
            },
            r.rows,
            r.name,
            r.version_key,
            r.table_version,
            r.files,
            if r.created { ", new dataset" } else { "" },
            if r.new_columns.is_empty() {
                String::new()
            } else {
                format!(", new columns: {}", r.new_columns.join(", "))
            },
        );
    }
    Ok(0)
}

/// Standard output as a sink for the file writers.
struct Stdout(std::io::BufWriter<std::io::Stdout>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Sink for Stdout {
    fn finish(mut self: Box<Self>) -> tessera_formats::Result<()> {
        self.0.flush().map_err(|e| tessera_formats::Error::Io {
            object: "(stdout)".into(),
            source: e,
        })
    }
}

pub async fn get(a: GetArgs, opts: &StoreOptions, verbose: u8) -> Result<i32> {
    let ds = open(&a.store, opts).await?;
    let mut g = ds.get(&a.name).with_last(a.last);
    if let Some(k) = &a.version_key {
        g = g.with_version(k);
    }
    if let Some(at) = &a.as_of {
        g = g.with_as_of(at.parse::<AsOf>().context("--as-of")?);
    }
    if let Some(f) = &a.filter {
        g = g.with_filter(f);
    }
    if let Some(c) = &a.columns {
        g = g.with_columns(c.iter().map(|s| s.trim().to_string()).collect());
    }
    // Where the rows go: checked before reading anything.
    let arrow_ipc = |name: &str| {
        let n = name.to_ascii_lowercase();
        n == "arrow" || n == "arrows" || n.ends_with(".arrow") || n.ends_with(".arrows")
    };
    let (format, out) = match &a.output {
        Some(o) => {
            let loc = Location::open(o, opts).await?;
            let f = if arrow_ipc(&loc.url()) {
                None
            } else {
                Some(FileFormat::from_name(&loc.url()).with_context(|| {
                    format!("-o {o}: the extension does not name a format (csv, tsv, jsonl, parquet, arrow)")
                })?)
            };
            (f, Some(loc))
        }
        None if arrow_ipc(&a.format) => (None, None),
        None => {
            let f = FileFormat::from_extension(&a.format).context("--format")?;
            if f.layout == RecordLayout::Parquet || f.codec != tessera_formats::Codec::None {
                bail!("stdout takes csv, tsv, jsonl or arrow; write {f} with -o FILE");
            }
            (Some(f), None)
        }
    };
    if let Some(f) = format {
        if !f.writable() {
            bail!("tessera does not write {f} files (write csv, tsv, jsonl, parquet or arrow)");
        }
    }
    let mut rows = g
        .await
        .map_err(|e| with_flags(e, &PartitionLayout::default()))?;
    let schema = rows.schema().clone();
    let rt = tokio::runtime::Handle::current();
    // The writer runs on its own thread (file and upload writes block).
    let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(4);
    let out2 = out.clone();
    let writer = std::thread::spawn(move || -> Result<u64> {
        let (sink, url, tmp): (
            Box<dyn Sink>,
            String,
            Option<(std::path::PathBuf, std::path::PathBuf)>,
        ) = match &out2 {
            None => (
                Box::new(Stdout(std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::io::stdout(),
                ))),
                "(stdout)".into(),
                None,
            ),
            Some(loc) => match loc.local_path() {
                // A local file appears whole: written aside, then renamed.
                Some(p) => {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let t = p.with_file_name(format!(".{name}.tessera-{}.tmp", std::process::id()));
                    let tloc = Location::local(&t)?;
                    (open_sink(&tloc, &rt)?, loc.url(), Some((t, p)))
                }
                None => (open_sink(loc, &rt)?, loc.url(), None),
            },
        };
        let done: Result<u64> = match format {
            Some(format) => (|| {
                let mut w = FileWriter::create(sink, schema, &WriteOptions::new(format), &url)?;
                for b in rx {
                    w.write(&b)?;
                }
                Ok(w.finish()?.bytes)
            })(),
            None => (|| {
                let out = CountingWriter::new(sink);
                let mut w = ResultEncoder::new(ResultFormat::Arrow, schema, out)?;
                for b in rx {
                    w.write(&b)?;
                }
                let out = w.finish()?;
                let n = out.bytes();
                out.into_inner().finish()?;
                Ok(n)
            })(),
        };
        match (done, tmp) {
            (Ok(n), Some((t, p))) => {
                std::fs::rename(&t, &p)
                    .with_context(|| format!("cannot move the output into {}", p.display()))?;
                Ok(n)
            }
            (Ok(n), None) => Ok(n),
            (Err(e), tmp) => {
                if let Some((t, _)) = tmp {
                    let _ = std::fs::remove_file(t);
                }
                Err(e)
            }
        }
    });
    let mut failed = None;
    while let Some(b) = rows.next().await {
        match b {
            Ok(b) => {
                if tx.send(b).is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the output writer panicked"))?;
    if let Some(e) = failed {
        if let Some(loc) = &out {
            if loc.local_path().is_none() {
                let _ = loc.delete().await;
            }
        }
        return Err(e.into());
    }
    let bytes = written?;
    let st = rows.stats();
    if verbose > 0 || out.is_some() {
        let to = out
            .as_ref()
            .map(|l| format!(" to {} ({})", l.url(), format_size(bytes)))
            .unwrap_or_default();
        eprintln!(
            "{} rows of '{}' (Delta version {}){to}; read {} of {} file(s), {} of {}",
            st.rows,
            a.name,
            st.table_version,
            st.files_read,
            st.files_total,
            format_size(st.bytes_read),
            format_size(st.bytes_total),
        );
    }
    Ok(0)
}

pub async fn admin(c: DatasetsCommand, opts: &StoreOptions) -> Result<i32> {
    match c {
        DatasetsCommand::List(a) => {
            let ds = open(&a.store, opts).await?;
            let list = ds.list(&a.prefix).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!(
                    "no datasets{} in namespace '{}' of {}",
                    if a.prefix.is_empty() {
                        String::new()
                    } else {
                        format!(" under '{}'", a.prefix)
                    },
                    ds.namespace(),
                    a.store.store
                );
            } else {
                let w = list.iter().map(|d| d.name.len()).max().unwrap_or(4).max(4);
                println!(
                    "{:w$}  {:>7}  {:>6}  {:>10}  {:>12}  PARTITIONS",
                    "NAME", "VERSION", "FILES", "SIZE", "ROWS"
                );
                for d in &list {
                    println!(
                        "{:w$}  {:>7}  {:>6}  {:>10}  {:>12}  {}",
                        d.name,
                        d.version,
                        d.files,
                        format_size(d.bytes),
                        d.rows.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
                        d.partition_columns.join("/")
                    );
                }
            }
        }
        DatasetsCommand::History(a) => {
            let ds = open(&a.store, opts).await?;
            let mut h = ds.history(&a.name);
            if let Some(n) = a.limit {
                h = h.with_limit(n);
            }
            let h = h.await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&h)?);
            } else {
                println!(
                    "{:>7}  {:24}  {:16}  {:>10}  VERSION KEY",
                    "VERSION", "TIME (UTC)", "OPERATION", "ROWS"
                );
                for e in &h {
                    println!(
                        "{:>7}  {:24}  {:16}  {:>10}  {}",
                        e.version,
                        e.time
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                            .unwrap_or_default(),
                        e.operation,
                        e.rows.map(|r| r.to_string()).unwrap_or_default(),
                        e.version_key.as_deref().unwrap_or("")
                    );
                }
            }
        }
        DatasetsCommand::Rm(a) => {
            if !a.yes {
                bail!(
                    "this deletes '{}' and every version of it; run again with --yes to do it",
                    a.name
                );
            }
            let ds = open(&a.store, opts).await?;
            let r = ds
                .remove(&a.name)
                .await
                .map_err(|e| with_flags(e, &PartitionLayout::default()))?;
            println!(
                "removed '{}': {} object(s), {}",
                r.name,
                r.objects,
                format_size(r.bytes)
            );
        }
        DatasetsCommand::Vacuum(a) => {
            let ds = open(&a.store, opts).await?;
            let retain = parse_duration(&a.retain).context("--retain")?;
            let r = ds
                .vacuum(&a.name)
                .with_retain(retain)
                .with_dry_run(a.dry_run)
                .await
                .map_err(|e| with_flags(e, &PartitionLayout::default()))?;
            for f in &r.files {
                println!("{f}");
            }
            eprintln!(
                "{} {} file(s) of '{}' that no version younger than {} needs",
                if r.dry_run { "would delete" } else { "deleted" },
                r.files.len(),
                r.name,
                a.retain
            );
        }
        DatasetsCommand::Compact(a) => {
            let ds = open(&a.store, opts).await?;
            let target =
                parse_size(&a.target_size).map_err(|e| anyhow::anyhow!("--target-size: {e}"))?;
            let r = ds
                .compact(&a.name)
                .with_target_size(target)
                .await
                .map_err(|e| with_flags(e, &PartitionLayout::default()))?;
            if r.files_removed == 0 {
                println!("'{}': nothing to compact", r.name);
            } else {
                println!(
                    "compacted '{}': {} file(s) merged into {} in {} partition(s) (Delta version {})",
                    r.name, r.files_removed, r.files_added, r.partitions, r.table_version
                );
            }
        }
    }
    Ok(0)
}
