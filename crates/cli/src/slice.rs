//! `tessera index`, `tessera slice` and `tessera slice get`.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tessera_slice::{
    pick_any_slice, sidecar, AnyIndex, Index, RecordFormat, RecordFormats, Registry, SliceFormat,
    Strategy,
};
use tessera_store::{format_size, parse_size, Location, PublishMode, StoreOptions};

use crate::cli::{IndexArgs, SliceArgs, SliceCommand, SliceGetArgs};
use crate::files::map_file;

async fn index_store(url: &Option<String>, opts: &StoreOptions) -> Result<Option<Location>> {
    Ok(match url {
        Some(u) => Some(Location::open(u, opts).await?),
        None => None,
    })
}

/// The library's error with the CLI's words for it: the flag that caused
/// it, or the command that fixes it (the library names neither).
fn explain(e: tessera_slice::Error, url: &str) -> anyhow::Error {
    use tessera_slice::Error as E;
    let advice = match &e {
        E::UnknownFormat { .. } => "give --format".to_string(),
        E::NoIndex { .. } => format!("cannot slice {url} before it is indexed (`tessera index {url}`)"),
        E::StaleIndex { .. } => format!(
            "the index of {url} is out of date; run `tessera index {url}` (then `tessera slice`) again"
        ),
        E::InvalidStrategy { strategy } => match strategy {
            Strategy::Bytes(_) => "--bytes",
            Strategy::Records(_) => "--records",
            Strategy::Grid { .. } => "--grid",
            _ => "--count",
        }
        .to_string(),
        E::NoSuchSlice { .. } => "--slice".to_string(),
        _ => return e.into(),
    };
    anyhow::Error::new(e).context(advice)
}

/// Whether the registry's format for `name` is one of the text formats
/// (which have their own options: `.fai`, `.gzi`, progress by bytes).
fn is_text(registry: &Registry, name: &str) -> bool {
    let text = RecordFormats;
    registry
        .format(name)
        .map(|(_, n)| text.names().contains(&n))
        .unwrap_or(false)
}

pub async fn index(args: IndexArgs, opts: &StoreOptions, quiet: bool) -> Result<i32> {
    let object = Location::open(&args.url, opts).await?;
    let registry = Registry::builtin();
    let name = match &args.format {
        Some(f) => Some(
            registry
                .format(f)
                .map_err(|e| anyhow::anyhow!("--format: {e}"))?
                .1,
        ),
        None => registry.detect(object.path().as_ref()),
    };
    if let Some(name) = name.filter(|n| !is_text(&registry, n)) {
        return index_other(&registry, name, &object, &args, opts, quiet).await;
    }
    if args.spatial {
        bail!("--spatial applies to LAS and LAZ point clouds");
    }
    let mut build = Index::build(&object).with_header(!args.no_header);
    if let Some(f) = &args.format {
        let format = f
            .parse::<RecordFormat>()
            .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
        build = build.with_format(format);
    }
    if let Some(s) = &args.spacing {
        match parse_size(s).map_err(|e| anyhow::anyhow!("--spacing: {e}"))? {
            0 => bail!("--spacing must be at least 1 byte"),
            n => build = build.with_spacing(n),
        }
    }
    let store = index_store(&args.index_store, opts).await?;
    let pb = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let size = object.head().await.map(|m| m.size).unwrap_or(0);
        let pb = ProgressBar::new(size);
        pb.set_style(
            ProgressStyle::with_template(
                "indexing {bytes}/{total_bytes} [{elapsed}, {bytes_per_sec}, ETA {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    };
    let pb2 = pb.clone();
    let (index, stats) = build
        .with_progress(move |n| pb2.set_position(n))
        .await
        .map_err(|e| explain(e, &args.url))?;
    pb.finish_and_clear();
    // Check the sidecars can be written before publishing anything.
    let fai = if args.fai {
        Some(index.fai().context("--fai")?)
    } else {
        None
    };
    let gzi = if args.gzi {
        Some(index.gzi().context("--gzi")?)
    } else {
        None
    };
    let at = Index::location_for(&object, store.as_ref())?;
    index.save(&at).await?;
    let mut extra = String::new();
    if let Some(fai) = fai {
        let loc = fai_location(&object, store.as_ref())?;
        loc.publish(fai, PublishMode::Overwrite).await?;
        extra.push_str(&format!("\n  .fai  {}", loc.url()));
    }
    if let Some(gzi) = gzi {
        let loc = sidecar(&object, store.as_ref(), ".gzi")?;
        loc.publish(gzi, PublishMode::Overwrite).await?;
        extra.push_str(&format!("\n  .gzi  {}", loc.url()));
    }
    if !quiet {
        let mbps = stats.bytes as f64 / 1e6 / stats.seconds.max(1e-9);
        eprintln!(
            "indexed {} ({}, {}): {} records, {} uncompressed, {} checkpoints in {:.2} s ({mbps:.0} MB/s)\n  index {}{extra}",
            object.url(),
            index.format,
            index.compression.name(),
            index.records,
            format_size(index.data_size),
            index.checkpoints.len(),
            stats.seconds,
            at.url(),
        );
    }
    Ok(0)
}

/// Index a format other than the text ones, through the registry.
async fn index_other(
    registry: &Registry,
    name: &str,
    object: &Location,
    args: &IndexArgs,
    opts: &StoreOptions,
    quiet: bool,
) -> Result<i32> {
    if args.fai || args.gzi || args.no_header || args.spacing.is_some() {
        bail!("--fai, --gzi, --no-header and --spacing apply to text formats, not to {name}");
    }
    if args.spatial && !matches!(name, "las" | "laz") {
        bail!("--spatial applies to LAS and LAZ (COPC and COG plans know where their nodes and tiles lie)");
    }
    let started = std::time::Instant::now();
    let index = registry
        .index(object)
        .with_format(name)
        .with_spatial(args.spatial)
        .await
        .map_err(|e| explain(e, &args.url))?;
    let store = index_store(&args.index_store, opts).await?;
    let at = AnyIndex::location_for(object, store.as_ref())?;
    index.save(&at).await?;
    if !quiet {
        eprintln!(
            "indexed {} ({}): {} records of a {} object in {:.2} s\n  index {}",
            object.url(),
            index.format,
            index.records,
            format_size(index.size),
            started.elapsed().as_secs_f64(),
            at.url(),
        );
    }
    Ok(0)
}

/// samtools looks for `KEY.fai` beside the FASTA.
fn fai_location(object: &Location, store: Option<&Location>) -> Result<Location> {
    Ok(sidecar(object, store, ".fai")?)
}

/// The strategy the flags name (all but --interval).
fn plan_strategy(args: &SliceArgs) -> Result<Strategy> {
    Ok(
        match (
            args.count,
            &args.bytes,
            args.records,
            &args.grid,
            args.level,
        ) {
            (n, None, None, None, Some(level)) => Strategy::Level {
                level,
                count: n.unwrap_or(1),
            },
            (Some(n), None, None, None, None) => Strategy::Count(n),
            (None, Some(b), None, None, None) => {
                Strategy::Bytes(parse_size(b).map_err(|e| anyhow::anyhow!("--bytes: {e}"))?)
            }
            (None, None, Some(n), None, None) => Strategy::Records(n),
            (None, None, None, Some(g), None) => {
                let parsed = g
                    .split_once(['x', 'X'])
                    .and_then(|(c, r)| Some((c.trim().parse().ok()?, r.trim().parse().ok()?)));
                let Some((columns, rows)) = parsed else {
                    bail!("--grid: `{g}` is not COLSxROWS (e.g. 4x4)");
                };
                Strategy::Grid { columns, rows }
            }
            _ => {
                bail!("give one of --count N, --bytes SIZE, --records N, --grid COLSxROWS, --level L or --interval DURATION")
            }
        },
    )
}

pub async fn run(args: SliceArgs, opts: &StoreOptions, quiet: bool) -> Result<i32> {
    if let Some(SliceCommand::Get(get)) = args.command {
        return fetch(get, opts, quiet).await;
    }
    let strategy = match &args.interval {
        Some(d) => Strategy::Interval(
            tessera_store::units::parse_duration(d)
                .map_err(|e| anyhow::anyhow!("--interval: {e}"))?,
        ),
        None => plan_strategy(&args)?,
    };
    let url = args.url.context("give the object to slice")?;
    let object = Location::open(&url, opts).await?;
    let store = index_store(&args.index_store, opts).await?;
    let registry = Registry::builtin();
    let index = registry
        .open_index(&object, store.as_ref())
        .await
        .map_err(|e| explain(e, &url))?;
    let slices = registry
        .plan(&index, strategy)
        .map_err(|e| explain(e, &url))?;
    // Compact: a plan of many slices is read whole by every worker.
    let json = serde_json::to_vec(&slices)?;
    match &args.output {
        Some(path) => {
            write_atomic(path, &json)?;
            if !quiet {
                let n = slices.len();
                let records: u64 = slices.iter().map(|s| s.record_count).sum();
                eprintln!(
                    "{n} slice{} of {} ({records} records) → {}",
                    if n == 1 { "" } else { "s" },
                    object.url(),
                    path.display()
                );
            }
        }
        None => write_stdout(&json)?,
    }
    Ok(0)
}

async fn fetch(args: SliceGetArgs, opts: &StoreOptions, quiet: bool) -> Result<i32> {
    let (json, name) = if args.slices == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the slices from stdin")?;
        (buf.into(), "stdin".to_string())
    } else if args.slices.contains("://") {
        let loc = Location::open(&args.slices, opts).await?;
        (loc.read().await?, loc.url())
    } else {
        // Mapped, not copied: a 64-slice gzip plan is 2 MB (every slice
        // carries its 32 KiB window) and a worker needs one descriptor.
        let p = Path::new(&args.slices);
        let data = map_file(p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("slices file {} does not exist", p.display())
            } else {
                anyhow::anyhow!("cannot read {}: {e}", p.display())
            }
        })?;
        (data, p.display().to_string())
    };
    let slice = pick_any_slice(&json, &name, args.slice).map_err(|e| explain(e, &name))?;
    let registry = Registry::builtin();
    let fetch = registry.fetch_from_url(&slice, opts);
    let (format, _) = registry.format(&slice.format)?;
    if let (true, Some(dir)) = (format.archive(), &args.output) {
        // A dataset of several files: -o names the folder they go into.
        let written = fetch
            .write_into(dir)
            .await
            .map_err(|e| explain(e, &slice.url))?;
        if !quiet {
            for f in written {
                eprintln!("{}", f.display());
            }
        }
        return Ok(0);
    }
    match &args.output {
        Some(path) => {
            let tmp = path.with_extension("tessera-tmp");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            if let Err(e) = fetch.write_to(&mut w).await {
                let _ = std::fs::remove_file(&tmp);
                return Err(explain(e, &slice.url));
            }
            drop(w);
            if let Err(e) = std::fs::rename(&tmp, path) {
                let _ = std::fs::remove_file(&tmp);
                return Err(
                    anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
                );
            }
        }
        None => {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
            match fetch.write_to(&mut w).await {
                Ok(_) => {}
                Err(tessera_slice::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(explain(e, &slice.url)),
            }
        }
    }
    Ok(0)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tessera-tmp");
    std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn write_stdout(data: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(data).and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    Ok(())
}
