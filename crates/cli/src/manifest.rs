//! `tessera manifest build` and `tessera manifest query`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use tessera_manifest::key_offset;
use tessera_manifest::Error as ManifestError;
use tessera_manifest::{describe, BuildManifest, BuildSummary, OpenManifest, Template};
use tessera_store::{format_size, Cache, Location, StoreOptions};

use crate::cli::{BuildArgs, OutputFormat, QueryArgs};
use crate::files::map_file;
use crate::output::{spinner, write_batch};

/// Read the build source: stdin, a paths file, or a listing of a prefix
/// (one URL per line); and what to call it in messages.
async fn read_source(source: &str, opts: &StoreOptions) -> Result<(Bytes, String)> {
    if source == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read paths from stdin")?;
        return Ok((buf.into(), "stdin".into()));
    }
    let loc = Location::open(source, opts).await?;
    if let Some(p) = loc.local_path() {
        if p.is_file() {
            // Large local listings are mapped, not copied.
            let text = map_file(&p).with_context(|| format!("cannot read {}", p.display()))?;
            return Ok((text, p.display().to_string()));
        }
    }
    let pb = spinner("listing", false);
    let read = tessera_manifest::read_listing(&loc).await;
    pb.finish_and_clear();
    match read {
        Err(ManifestError::Store(e)) if e.is_not_found() => {
            bail!("paths file or folder not found: {}", loc.url())
        }
        other => Ok(other?),
    }
}

pub fn print_summary(s: &BuildSummary, out_url: &str) {
    eprintln!(
        "manifest {out_url}: {} paths read, {} matched, {} skipped, {} duplicate field combinations, {}",
        s.read,
        s.matched,
        s.skipped,
        s.duplicates,
        format_size(s.bytes_written)
    );
    if !s.skipped_examples.is_empty() {
        eprintln!("  skipped (first {}):", s.skipped_examples.len());
        for (line, p) in &s.skipped_examples {
            eprintln!("    line {line}: {p}");
        }
    }
    if !s.duplicate_examples.is_empty() {
        eprintln!("  duplicates (first {}):", s.duplicate_examples.len());
        for d in &s.duplicate_examples {
            eprintln!("    {d}");
        }
    }
}

pub async fn build(args: BuildArgs, opts: &StoreOptions, quiet: bool) -> Result<i32> {
    let template = Template::parse(&args.template)?;
    let out = Location::open(&args.output, opts).await?;
    let t = std::time::Instant::now();
    let (text, name) = read_source(&args.source, opts).await?;
    tracing::debug!("read {} bytes of paths in {:?}", text.len(), t.elapsed());
    let build = BuildManifest::new(template, text)
        .with_listing_name(name)
        .with_strict(args.strict)
        .with_location_column(args.location_column);
    let pb = spinner("matching paths", false);
    let summary = build.write_to(&out).await;
    pb.finish_and_clear();
    let summary = summary.map_err(|e| with_flags(e, args.strict))?;
    tracing::debug!("built and published in {:?}", t.elapsed());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !quiet {
        print_summary(&summary, &out.url());
    }
    Ok(0)
}

/// A build error, with the flags that lead to it named.
fn with_flags(e: ManifestError, strict: bool) -> anyhow::Error {
    let hint = match &e {
        ManifestError::InvalidRecord { .. } if strict => {
            "--strict: every line must be a path matching the template"
        }
        ManifestError::InvalidName { .. } => {
            "rename the template field or choose another --location-column"
        }
        _ => return e.into(),
    };
    anyhow::Error::new(e).context(format!("cannot build the manifest ({hint})"))
}

fn parse_conditions(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|c| match c.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => bail!("--where '{c}' is not FIELD=VALUE"),
        })
        .collect()
}

/// A local file name for a downloaded object that cannot escape `dir`.
fn download_target(dir: &Path, location: &str) -> PathBuf {
    let mut p = dir.to_path_buf();
    for seg in location[key_offset(location)..].split('/') {
        let clean: String = seg
            .chars()
            .map(|c| {
                if c.is_control() || c == '\\' || c == ':' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        if clean.is_empty() || clean == "." || clean == ".." {
            continue;
        }
        p.push(clean);
    }
    p
}

pub async fn query(args: QueryArgs, opts: &StoreOptions) -> Result<i32> {
    let conds = parse_conditions(&args.conditions)?;
    let conds: Vec<(&str, &str)> = conds
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let loc = Location::open(&args.manifest, opts).await?;
    let mut open = OpenManifest::new(&loc);
    if let Some(column) = &args.location_column {
        open = open.with_location_column(column);
    }
    let m = open.await.map_err(|e| match e {
        ManifestError::MissingColumn { ref column, .. }
            if args.location_column.as_ref() == Some(column) =>
        {
            anyhow::Error::new(e).context("--location-column names no column of the manifest")
        }
        e => e.into(),
    })?;
    let mut out = std::io::stdout().lock();
    if args.exists {
        writeln!(out, "{}", m.exists(&conds)?)?;
    } else if args.count {
        writeln!(out, "{}", m.count(&conds)?)?;
    } else if args.paths {
        for p in m.locations(&conds)? {
            writeln!(out, "{p}")?;
        }
    } else if let Some(field) = &args.unique {
        if !conds.is_empty() {
            bail!("--unique lists values over the whole manifest; drop the --where conditions");
        }
        let values = m.unique(field)?;
        match args.format {
            OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(&values)?)?,
            OutputFormat::Csv => {
                writeln!(out, "{field}")?;
                for v in values {
                    writeln!(out, "{v}")?;
                }
            }
            OutputFormat::Table => {
                for v in values {
                    writeln!(out, "{v}")?;
                }
            }
        }
    } else if let Some(dir) = &args.download {
        let locations = m.locations(&conds)?;
        if locations.is_empty() {
            bail!("no record matches {}", describe(&conds));
        }
        let cache = Cache::from_env()?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for l in locations {
            let obj = Location::open(l, opts).await?;
            let cached = cache.fetch(&obj).await?;
            let target = download_target(dir, l);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::copy(&cached, &target)
                .with_context(|| format!("cannot copy to {}", target.display()))?;
            writeln!(out, "{}", target.display())?;
        }
    } else {
        let batch = m.records(&conds)?;
        write_batch(&mut out, &batch, args.format)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_targets_stay_inside() {
        let d = Path::new("/tmp/dl");
        assert_eq!(
            download_target(d, "s3://b/a/../../x.tl"),
            PathBuf::from("/tmp/dl/a/x.tl")
        );
        assert_eq!(
            download_target(d, "/abs/p.tl"),
            PathBuf::from("/tmp/dl/abs/p.tl")
        );
        assert!(download_target(d, "../../etc/passwd").starts_with(d));
    }

    #[test]
    fn conditions_need_equals() {
        assert!(parse_conditions(&["a".into()]).is_err());
        assert!(parse_conditions(&["=v".into()]).is_err());
        assert_eq!(
            parse_conditions(&["a=b=c".into()]).unwrap(),
            vec![("a".into(), "b=c".into())]
        );
    }
}
