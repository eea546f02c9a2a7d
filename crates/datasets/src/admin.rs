//! Listing, history, removal, vacuum and compaction.

use std::future::IntoFuture;
use std::num::NonZeroU64;

use chrono::{DateTime, Utc};
use deltalake::operations::vacuum::VacuumMode;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tessera_store::Location;

use crate::error::{Error, Result};
use crate::put::{commit_info, is_table};
use crate::{name, Datasets, DEFAULT_TARGET_SIZE};

/// One dataset, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetInfo {
    /// Its name.
    pub name: String,
    /// The latest Delta version.
    pub version: u64,
    /// Live data files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Rows, from the files' statistics (`None` when a file has none).
    pub rows: Option<u64>,
    /// Partition columns, outermost first.
    pub partition_columns: Vec<String>,
}

/// One commit of a dataset's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// The Delta version.
    pub version: u64,
    /// When it was committed.
    pub time: Option<DateTime<Utc>>,
    /// What it did: `put`, `put (keep-last)`, `compact`, `vacuum start`,
    /// `vacuum end`, `record layout` (the layout of a dataset written by
    /// an earlier release recorded in its configuration), or the Delta operation
    /// name for other writers.
    pub operation: String,
    /// The version key of a load.
    pub version_key: Option<String>,
    /// Rows added.
    pub rows: Option<u64>,
    /// Files added.
    pub files_added: Option<u64>,
    /// Files removed.
    pub files_removed: Option<u64>,
}

/// What `remove` deleted.
#[derive(Debug, Clone, Serialize)]
pub struct RemoveReport {
    /// The dataset.
    pub name: String,
    /// Objects deleted.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// What a vacuum deleted (or would delete, on a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct VacuumReport {
    /// The dataset.
    pub name: String,
    /// Whether anything was deleted.
    pub dry_run: bool,
    /// The files deleted (or to delete), relative to the dataset folder.
    pub files: Vec<String>,
}

/// What a compaction did.
#[derive(Debug, Clone, Serialize)]
pub struct CompactReport {
    /// The dataset.
    pub name: String,
    /// Files written.
    pub files_added: u64,
    /// Small files replaced.
    pub files_removed: u64,
    /// Partitions that were rewritten.
    pub partitions: u64,
    /// The Delta version committed (unchanged when nothing needed compacting).
    pub table_version: u64,
}

impl Datasets {
    /// Every dataset whose name starts with `prefix` (all when empty), by name.
    pub async fn list(&self, prefix: &str) -> Result<Vec<DatasetInfo>> {
        let names = self.names(prefix).await?;
        let infos = futures::stream::iter(
            names
                .into_iter()
                .map(|n| async move { self.info(&n).await }),
        )
        .buffered(8)
        .try_collect::<Vec<_>>()
        .await?;
        Ok(infos)
    }

    /// Names of the datasets whose name starts with `prefix`, sorted.
    pub async fn names(&self, prefix: &str) -> Result<Vec<String>> {
        name::check_prefix(prefix)?;
        let root = self.root()?;
        // Start at the deepest complete folder of the prefix.
        let start_rel = match prefix.rfind('/') {
            Some(i) => prefix[..i].to_string(),
            None => String::new(),
        };
        let start = if start_rel.is_empty() {
            root.clone()
        } else {
            root.join(&start_rel)?
        };
        let mut out = Vec::new();
        let mut todo: Vec<(Location, String)> = vec![(start, start_rel)];
        while let Some((dir, rel)) = todo.pop() {
            if !rel.is_empty() && is_table(&dir).await? {
                if rel.starts_with(prefix) {
                    out.push(rel);
                }
                continue;
            }
            if rel.split('/').count() > 32 {
                continue;
            }
            let (_, dirs) = dir.list_dir().await?;
            for d in dirs {
                let seg = d.filename().unwrap_or("").to_string();
                if name::check_name(&seg).is_err() {
                    continue;
                }
                let child_rel = if rel.is_empty() {
                    seg.clone()
                } else {
                    format!("{rel}/{seg}")
                };
                // Only descend where a match is still possible.
                let p = prefix.trim_end_matches('/');
                if child_rel.starts_with(p) || p.starts_with(&child_rel) {
                    todo.push((dir.join(&seg)?, child_rel));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Size and shape of one dataset.
    pub async fn info(&self, name: &str) -> Result<DatasetInfo> {
        let table = self.load(name).await?;
        let snap = table.snapshot().map_err(|e| Error::delta(name, e))?;
        let (mut files, mut bytes, mut rows) = (0u64, 0u64, Some(0u64));
        for f in snap.log_data().iter() {
            files += 1;
            bytes += f.size().max(0) as u64;
            let n = f
                .stats()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v.get("numRecords").and_then(|n| n.as_u64()));
            rows = match (rows, n) {
                (Some(r), Some(n)) => Some(r + n),
                _ => None,
            };
        }
        Ok(DatasetInfo {
            name: name.to_string(),
            version: snap.version(),
            files,
            bytes,
            rows,
            partition_columns: snap.metadata().partition_columns().to_vec(),
        })
    }

    /// Delete a dataset: its log first (so readers stop seeing it at once),
    /// then its data files.
    pub async fn remove(&self, name: &str) -> Result<RemoveReport> {
        let loc = self.location(name)?;
        self.check_writable().await?;
        if !is_table(&loc).await? {
            return Err(Error::NotFound {
                name: name.to_string(),
                url: loc.url(),
            });
        }
        let mut log = loc.join("_delta_log")?.list_all(8).await?;
        // Oldest first: a partly deleted log is unreadable, never an older table.
        log.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
        let data: Vec<_> = loc
            .list_all(8)
            .await?
            .into_iter()
            .filter(|m| !m.location.as_ref().contains("/_delta_log/"))
            .collect();
        let (mut objects, mut bytes) = (0u64, 0u64);
        for m in &log {
            loc.with_path(m.location.clone()).delete().await?;
            objects += 1;
            bytes += m.size;
        }
        let results: Vec<Result<u64>> = futures::stream::iter(data.into_iter().map(|m| {
            let l = loc.with_path(m.location.clone());
            async move {
                l.delete().await?;
                Ok(m.size)
            }
        }))
        .buffer_unordered(16)
        .collect()
        .await;
        for r in results {
            bytes += r?;
            objects += 1;
        }
        Ok(RemoveReport {
            name: name.to_string(),
            objects,
            bytes,
        })
    }
}

/// A read of a dataset's history: see [`Datasets::history`]. Awaiting it
/// gives the commits, newest first.
#[must_use = "a history read does nothing until awaited"]
pub struct History {
    ds: Datasets,
    name: String,
    limit: Option<usize>,
}

impl History {
    pub(crate) fn new(ds: Datasets, name: &str) -> History {
        History {
            ds,
            name: name.to_string(),
            limit: None,
        }
    }

    /// At most this many commits, the newest (default: all).
    pub fn with_limit(mut self, commits: usize) -> Self {
        self.limit = Some(commits);
        self
    }

    async fn run(self) -> Result<Vec<HistoryEntry>> {
        let (name, limit) = (self.name.as_str(), self.limit);
        let table = self.ds.load(name).await?;
        let latest = table.version().unwrap_or(0);
        let infos: Vec<_> = table
            .history(limit)
            .try_collect()
            .await
            .map_err(|e| Error::delta(name, e))?;
        Ok(infos
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let tessera = c.info.get("tessera");
                let metrics = c.info.get("operationMetrics");
                let num = |keys: &[&str]| {
                    keys.iter().find_map(|k| {
                        metrics.and_then(|m| m.get(*k)).and_then(|v| {
                            v.as_u64()
                                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        })
                    })
                };
                let op = c.operation.clone().unwrap_or_default();
                let operation = match tessera
                    .and_then(|t| t.get("operation"))
                    .and_then(|o| o.as_str())
                {
                    Some("put")
                        if tessera
                            .and_then(|t| t.get("keepLast"))
                            .and_then(|k| k.as_bool())
                            == Some(true) =>
                    {
                        "put (keep-last)".to_string()
                    }
                    Some(o) => o.to_string(),
                    None => op.to_lowercase(),
                };
                HistoryEntry {
                    version: latest.saturating_sub(i as u64),
                    time: c.timestamp.and_then(DateTime::<Utc>::from_timestamp_millis),
                    operation,
                    version_key: tessera
                        .and_then(|t| t.get("versionKey"))
                        .and_then(|k| k.as_str())
                        .map(str::to_string),
                    rows: num(&["num_added_rows", "numOutputRows"]),
                    files_added: num(&["num_added_files", "numFilesAdded", "numAddedFiles"]),
                    files_removed: num(&[
                        "num_removed_files",
                        "numFilesRemoved",
                        "numRemovedFiles",
                        "numDeletedFiles",
                    ]),
                }
            })
            .collect())
    }
}

impl IntoFuture for History {
    type Output = Result<Vec<HistoryEntry>>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A vacuum: see [`Datasets::vacuum`].
#[must_use = "a vacuum does nothing until awaited"]
pub struct Vacuum {
    ds: Datasets,
    name: String,
    retain: chrono::Duration,
    dry_run: bool,
}

impl Vacuum {
    pub(crate) fn new(ds: Datasets, name: &str) -> Vacuum {
        Vacuum {
            ds,
            name: name.to_string(),
            retain: chrono::Duration::days(7),
            dry_run: false,
        }
    }

    /// Keep files needed by versions younger than this (default 7 days).
    /// Files of in-flight writes younger than this are kept too, so a short
    /// retention while others write can delete their uncommitted files.
    pub fn with_retain(mut self, d: std::time::Duration) -> Self {
        self.retain = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        self
    }

    /// Only report what would be deleted (default: delete).
    pub fn with_dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }

    /// Delete data files that no version younger than the retention needs,
    /// and files no version references at all (from failed writes).
    async fn run(self) -> Result<VacuumReport> {
        if !self.dry_run {
            self.ds.check_writable().await?;
        }
        let table = self.ds.load(&self.name).await?;
        let (_, m) = table
            .vacuum()
            .with_retention_period(self.retain)
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Full)
            .with_dry_run(self.dry_run)
            .with_commit_properties(commit_info("vacuum", None))
            .await
            .map_err(|e| Error::delta(&self.name, e))?;
        let mut files = m.files_deleted;
        let (loc, _) = self.ds.table_handle(&self.name)?;
        if let Some(dir) = loc.local_path() {
            // Files a killed local write left half-written: the local store
            // writes `NAME#N` beside its target and renames it when done, and
            // its listings never show such files, so Delta's vacuum cannot.
            let cutoff = std::time::SystemTime::now()
                .checked_sub(self.retain.to_std().unwrap_or_default())
                .unwrap_or(std::time::UNIX_EPOCH);
            let mut found = Vec::new();
            staged_leftovers(&dir, &dir, cutoff, &mut found);
            for (path, rel) in found {
                if !self.dry_run {
                    if let Err(e) = std::fs::remove_file(&path) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            return Err(tessera_store::Error::io("cannot delete", &path, e).into());
                        }
                    }
                }
                files.push(rel);
            }
        }
        Ok(VacuumReport {
            name: self.name,
            dry_run: m.dry_run,
            files,
        })
    }
}

/// Under `dir` (the table folder `root`, `_delta_log` aside): files named
/// `NAME#N` (a local write's staging name) last modified before `cutoff`,
/// with their paths relative to `root`.
fn staged_leftovers(
    root: &std::path::Path,
    dir: &std::path::Path,
    cutoff: std::time::SystemTime,
    out: &mut Vec<(std::path::PathBuf, String)>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        if meta.is_dir() {
            if dir == root && name == "_delta_log" {
                continue;
            }
            staged_leftovers(root, &path, cutoff, out);
        } else if is_staging_name(&name) && meta.modified().is_ok_and(|t| t < cutoff) {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((path, rel));
        }
    }
}

/// `NAME#N` with N decimal digits.
fn is_staging_name(name: &str) -> bool {
    match name.rsplit_once('#') {
        Some((stem, n)) => {
            !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

impl IntoFuture for Vacuum {
    type Output = Result<VacuumReport>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A compaction: see [`Datasets::compact`].
#[must_use = "a compaction does nothing until awaited"]
pub struct Compact {
    ds: Datasets,
    name: String,
    target: NonZeroU64,
}

impl Compact {
    pub(crate) fn new(ds: Datasets, name: &str) -> Compact {
        Compact {
            ds,
            name: name.to_string(),
            target: NonZeroU64::new(DEFAULT_TARGET_SIZE).unwrap_or(NonZeroU64::MIN),
        }
    }

    /// Target file size in bytes (default 128 MB).
    pub fn with_target_size(mut self, bytes: u64) -> Self {
        self.target = NonZeroU64::new(bytes).unwrap_or(NonZeroU64::MIN);
        self
    }

    /// Bin-pack small files of each partition into files of the target size.
    async fn run(self) -> Result<CompactReport> {
        self.ds.check_writable().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let table = self.ds.load(&self.name).await?;
            let before = table.version().unwrap_or(0);
            let schema = table
                .snapshot()
                .map_err(|e| Error::delta(&self.name, e))?
                .snapshot()
                .arrow_schema();
            let props = crate::files::writer_properties(&schema);
            let r = table
                .optimize()
                .with_target_size(self.target)
                .with_writer_properties(props)
                .with_commit_properties(commit_info("compact", None).with_max_retries(100))
                .await;
            match r {
                Ok((t, m)) => {
                    return Ok(CompactReport {
                        name: self.name,
                        files_added: m.num_files_added,
                        files_removed: m.num_files_removed,
                        partitions: m.partitions_optimized,
                        table_version: t.version().unwrap_or(before),
                    })
                }
                Err(e) if crate::put::retryable(&e) && attempt < 8 => {
                    tokio::time::sleep(crate::put::backoff(attempt)).await;
                }
                Err(e) => return Err(Error::delta(&self.name, e)),
            }
        }
    }
}

impl IntoFuture for Compact {
    type Output = Result<CompactReport>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_name_hash_digits() {
        assert!(is_staging_name("part-1.parquet#1"));
        assert!(is_staging_name("x#123"));
        for n in ["part-1.parquet", "x#", "#1", "x#1a", "a#b#", "x#-1"] {
            assert!(!is_staging_name(n), "{n}");
        }
    }

    #[test]
    fn leftovers_are_found_below_the_table_but_not_in_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("_delta_log")).unwrap();
        std::fs::create_dir_all(root.join("d=2024-01-01")).unwrap();
        for f in [
            "_delta_log/00000.json#1",
            "d=2024-01-01/part-1.parquet#2",
            "d=2024-01-01/part-1.parquet",
            "part-2.parquet#7",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let mut found = Vec::new();
        staged_leftovers(root, root, later, &mut found);
        let mut rel: Vec<String> = found.into_iter().map(|(_, r)| r).collect();
        rel.sort();
        assert_eq!(rel, ["d=2024-01-01/part-1.parquet#2", "part-2.parquet#7"]);
        // Younger than the cutoff: kept.
        let mut found = Vec::new();
        staged_leftovers(root, root, std::time::UNIX_EPOCH, &mut found);
        assert!(found.is_empty());
    }
}
