//! `tessera ls`.

use std::io::Write;

use anyhow::{Context, Result};
use tessera_store::{Location, StoreOptions};

use crate::cli::LsArgs;

pub async fn run(args: LsArgs, opts: &StoreOptions) -> Result<i32> {
    let loc = Location::open(&args.url, opts).await?;
    let pb = crate::output::spinner("listing", false);
    let objects = loc.list_all(args.concurrency).await?;
    pb.finish_and_clear();
    let mut buf: Vec<u8> = Vec::with_capacity(objects.len() * 64);
    for o in &objects {
        buf.extend_from_slice(loc.url_of(&o.location).as_bytes());
        if args.long {
            write!(buf, "\t{}\t{}", o.size, o.last_modified.to_rfc3339())?;
        }
        buf.push(b'\n');
    }
    match &args.output {
        Some(path) => {
            let tmp = path.with_extension("tessera-tmp");
            std::fs::write(&tmp, &buf)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!("wrote {} URLs to {}", objects.len(), path.display());
            eprintln!(
                "{} objects listed under {} → {}",
                objects.len(),
                loc.url(),
                path.display()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(&buf).and_then(|_| out.flush()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e.into());
                }
            }
        }
    }
    Ok(0)
}
