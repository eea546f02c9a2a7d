//! The pack journal under `OUTPUT_BASE/TABLE/_tessera/`.
//!
//! ```text
//! _tessera/staging/<run>/owner.json          who is writing this run
//! _tessera/staging/<run>/<dir/>name.tmp      output files being written
//! _tessera/runs/<seq>.json                   a committed run (the commit point)
//! _tessera/runs/<seq>.done                   its files are in place
//! ```
//!
//! A run writes every output file under its staging folder first (readers
//! never look there, and the `.tmp` ending keeps `**/*.parquet` globs out).
//! It then publishes `runs/<seq>.json` with create-if-absent: the record lists
//! the inputs it consumed (URL and ETag), the staged files and their final
//! names, and files to delete. That write is the commit: before it, nothing
//! visible changed and the inputs count as not packed; after it, the run is
//! applied — each staged file renamed over its final name (an atomic rename
//! on disk; a server-side copy on object stores, so a final file appears
//! whole), deletions done, then `<seq>.done` written and staging removed.
//! Every pack and compaction first applies committed runs without a `.done`
//! (renaming again is harmless), so a run killed at any instant either never
//! happened or completes. Two packs committing at once both try to create the
//! same `<seq>.json`; the loser starts over from the new state.

use serde::{Deserialize, Serialize};
use tessera_store::{Location, PublishMode};

use crate::error::{Error, Result};

/// An input a run consumed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputRecord {
    /// URL of the input object.
    pub url: String,
    /// Its ETag when packed (a changed object is new input).
    pub etag: Option<String>,
    /// Its size in bytes.
    pub size: u64,
}

impl InputRecord {
    /// Identity of the object version.
    pub fn key(&self) -> String {
        format!(
            "{}\u{0}{}",
            self.url,
            self.etag
                .clone()
                .unwrap_or_else(|| format!("size:{}", self.size))
        )
    }
}

/// Where a pack run put its rows: the static partition folders and the
/// column rows were split by. The memory of packed inputs is kept per target:
/// an input already packed into the same target is skipped, an input packed
/// into another one is packed again (into this one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct PackTarget {
    /// `(key, value)` partition folders, outermost first.
    #[serde(default)]
    pub partition: Vec<(String, String)>,
    /// The column whose values name the partition folders.
    #[serde(default)]
    pub partition_by: Option<String>,
}

impl std::fmt::Display for PackTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.partition.is_empty() {
            let p: Vec<String> = self
                .partition
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("partition {}", p.join("/")));
        }
        if let Some(c) = &self.partition_by {
            parts.push(format!("partitions by column '{c}'"));
        }
        if parts.is_empty() {
            f.write_str("the table folder")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// An output file of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputRecord {
    /// Staged object, relative to the table folder.
    pub staged: String,
    /// Final object, relative to the table folder.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Whether it replaces an existing file.
    pub replaces: bool,
}

/// A committed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Format version of this record.
    pub tessera_pack: u32,
    /// Sequence number (the record's name).
    pub seq: u64,
    /// Run id (the staging folder's name).
    pub run: String,
    /// `pack` or `compact`.
    pub kind: String,
    /// When it committed (RFC 3339).
    pub committed: String,
    /// Inputs consumed.
    pub inputs: Vec<InputRecord>,
    /// Where the inputs were packed (pack runs). Records written before
    /// targets were recorded have none: their inputs count as packed into
    /// every target, as they did when they were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PackTarget>,
    /// Files written.
    pub outputs: Vec<OutputRecord>,
    /// Files removed (relative to the table folder).
    pub deletes: Vec<String>,
    /// tessera version.
    pub version: String,
}

/// The journal of one table folder.
pub(crate) struct Journal {
    table: Location,
    fault: Fault,
}

fn record_name(seq: u64) -> String {
    format!("{seq:010}")
}

impl Journal {
    /// The journal of the table folder `table`; `fault` is where a crash
    /// test aborts.
    pub(crate) fn new(table: Location, fault: Fault) -> Journal {
        Journal { table, fault }
    }

    /// Abort here if a crash test chose this point.
    pub(crate) fn fault(&self, point: &str) {
        self.fault.hit(point);
    }

    fn at(&self, rel: &str) -> Result<Location> {
        Ok(self.table.join(rel)?)
    }

    /// The staging location of `rel` for `run`.
    pub(crate) fn staged(&self, run: &str, rel: &str) -> Result<(String, Location)> {
        let r = format!("_tessera/staging/{run}/{rel}.tmp");
        Ok((r.clone(), self.at(&r)?))
    }

    /// Mark a staging folder as ours (so a later run can tell a dead one from a live one).
    pub(crate) async fn claim(&self, run: &str) -> Result<()> {
        let owner = serde_json::json!({
            "host": hostname(),
            "pid": std::process::id(),
            "started": chrono::Utc::now().to_rfc3339(),
        });
        self.at(&format!("_tessera/staging/{run}/owner.json"))?
            .publish(owner.to_string(), PublishMode::Overwrite)
            .await?;
        Ok(())
    }

    /// Every committed run, by sequence number, and whether it is applied.
    pub(crate) async fn runs(&self) -> Result<Vec<(RunRecord, bool)>> {
        let dir = self.at("_tessera/runs")?;
        let (objs, _) = dir.list_dir().await?;
        let mut done = std::collections::HashSet::new();
        let mut recs = Vec::new();
        for o in &objs {
            let name = o.location.filename().unwrap_or_default().to_string();
            if let Some(s) = name.strip_suffix(".done") {
                done.insert(s.to_string());
            } else if name.ends_with(".json") {
                recs.push(name);
            }
        }
        let mut out = Vec::new();
        for name in recs {
            let loc = dir.join(&name)?;
            let bytes = loc.read().await?;
            let rec: RunRecord = serde_json::from_slice(&bytes).map_err(|e| Error::Journal {
                url: loc.url(),
                message: format!("unreadable run record: {e}"),
            })?;
            let applied = done.contains(name.trim_end_matches(".json"));
            out.push((rec, applied));
        }
        out.sort_by_key(|(r, _)| r.seq);
        Ok(out)
    }

    /// Commit: publish the record with create-if-absent. `Conflict` if
    /// another run took this sequence number first.
    pub(crate) async fn commit(&self, rec: &RunRecord) -> Result<()> {
        let loc = self.at(&format!("_tessera/runs/{}.json", record_name(rec.seq)))?;
        let body = serde_json::to_vec_pretty(rec)
            .map_err(|e| Error::Internal(format!("cannot encode run record {}: {e}", rec.seq)))?;
        match loc.publish(body.clone(), PublishMode::CreateNew).await {
            Ok(_) => Ok(()),
            Err(tessera_store::Error::AlreadyExists { .. })
            | Err(tessera_store::Error::Precondition { .. }) => {
                // A retried request whose first attempt landed finds its own
                // record there: that is a commit, not a conflict (the record
                // names this run's own staging folder, so no other writer's
                // record is byte for byte the same).
                match loc.read().await {
                    Ok(existing) if existing[..] == body[..] => Ok(()),
                    Ok(_) => Err(Error::Conflict {
                        table: self.table.url(),
                    }),
                    // Whose record it is cannot be told now: an error that
                    // keeps this run's staged files (see the runner).
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Put a committed run's files in place (idempotent), then mark it done.
    pub(crate) async fn apply(&self, rec: &RunRecord) -> Result<()> {
        self.fault("after-commit");
        for (i, o) in rec.outputs.iter().enumerate() {
            if i == 1 {
                self.fault("mid-apply");
            }
            let staged = self.at(&o.staged)?;
            let fin = self.at(&o.path)?;
            match staged.rename_to(&fin).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {
                    // Renamed before an interruption? Then the final file is there.
                    let meta = fin.head().await.map_err(|_| Error::Journal {
                        url: staged.url(),
                        message: format!(
                            "run {} cannot be completed: its staged file and {} are both missing",
                            rec.seq,
                            fin.url()
                        ),
                    })?;
                    if meta.size != o.bytes {
                        return Err(Error::Journal {
                            url: fin.url(),
                            message: format!(
                                "run {} cannot be completed: staged file missing and {} has {} bytes, not {}",
                                rec.seq,
                                fin.url(),
                                meta.size,
                                o.bytes
                            ),
                        });
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        for d in &rec.deletes {
            self.at(d)?.delete().await?;
        }
        self.at(&format!("_tessera/runs/{}.done", record_name(rec.seq)))?
            .publish(Vec::<u8>::new(), PublishMode::Overwrite)
            .await?;
        self.remove_staging(&rec.run).await
    }

    /// Delete a run's staging folder. The owner record goes last: a removal
    /// killed half-way must leave a folder that the next run still knows to
    /// be abandoned (without its owner it would be kept for a day).
    pub(crate) async fn remove_staging(&self, run: &str) -> Result<()> {
        let dir = self.at(&format!("_tessera/staging/{run}"))?;
        let owner_record = self.at(&format!("_tessera/staging/{run}/owner.json"))?;
        let (owner, files): (Vec<_>, Vec<_>) = dir
            .list_all(4)
            .await?
            .into_iter()
            .partition(|o| &o.location == owner_record.path());
        for (i, o) in files.into_iter().chain(owner).enumerate() {
            dir.with_path(o.location).delete().await?;
            if i == 0 {
                self.fault("mid-cleanup");
            }
        }
        Ok(())
    }

    /// Apply committed runs that were interrupted, and remove the staging of
    /// runs that died before committing (owned by a dead process of this
    /// host, or older than a day). Returns the committed runs.
    pub(crate) async fn recover(&self) -> Result<Vec<RunRecord>> {
        let runs = self.runs().await?;
        let mut committed = std::collections::HashSet::new();
        for (rec, applied) in &runs {
            committed.insert(rec.run.clone());
            if !applied {
                tracing::info!(seq = rec.seq, "completing an interrupted pack run");
                self.apply(rec).await?;
            }
        }
        let staging = self.at("_tessera/staging")?;
        let (_, dirs) = staging.list_dir().await?;
        for d in dirs {
            let run = d.filename().unwrap_or_default().to_string();
            if committed.contains(&run) {
                self.remove_staging(&run).await?;
                continue;
            }
            if self.abandoned(&run).await? {
                tracing::info!(run, "removing the staging of an interrupted pack");
                self.remove_staging(&run).await?;
            }
        }
        Ok(runs.into_iter().map(|(r, _)| r).collect())
    }

    async fn abandoned(&self, run: &str) -> Result<bool> {
        let owner = self.at(&format!("_tessera/staging/{run}/owner.json"))?;
        let Ok(bytes) = owner.read().await else {
            // No owner record: a run killed before it wrote one, or a
            // foreign folder; judge by age.
            return Ok(older_than_a_day(&self.at(&format!("_tessera/staging/{run}"))?).await);
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let host = hostname();
        let same_host = host.is_some() && v["host"].as_str() == host.as_deref();
        let pid = v["pid"].as_u64().unwrap_or(0);
        if same_host && pid != 0 && !pid_alive(pid) {
            return Ok(true);
        }
        let started = v["started"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        Ok(started.is_some_and(|t| {
            chrono::Utc::now().signed_duration_since(t) > chrono::Duration::days(1)
        }))
    }

    /// The next sequence number.
    pub(crate) fn next_seq(runs: &[RunRecord]) -> u64 {
        runs.iter().map(|r| r.seq + 1).max().unwrap_or(0)
    }
}

async fn older_than_a_day(dir: &Location) -> bool {
    match dir.list_all(4).await {
        Ok(objs) => objs.iter().all(|o| {
            chrono::Utc::now().signed_duration_since(o.last_modified) > chrono::Duration::days(1)
        }),
        Err(_) => false,
    }
}

/// Crash testing: where to abort the process, as a kill would. Compiled in
/// only with the `fault-injection` feature; without it nothing ever aborts.
///
/// The points: `after-stage` (files staged, nothing committed),
/// `after-commit` (committed, nothing applied), `mid-apply` (after the
/// first file is in place), `mid-cleanup` (after the first file of a
/// staging folder is deleted).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fault {
    #[cfg(feature = "fault-injection")]
    point: Option<String>,
}

impl Fault {
    /// Abort at `point`.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn at(point: String) -> Fault {
        Fault { point: Some(point) }
    }

    /// Abort at `point`: without the `fault-injection` feature, never.
    #[cfg(not(feature = "fault-injection"))]
    pub(crate) fn at(_point: String) -> Fault {
        Fault {}
    }

    /// Abort the process if this is the chosen point.
    pub(crate) fn hit(&self, point: &str) {
        #[cfg(feature = "fault-injection")]
        if self.point.as_deref() == Some(point) {
            eprintln!("fault injection: aborting at {point}");
            std::process::abort();
        }
        #[cfg(not(feature = "fault-injection"))]
        let _ = point;
    }
}

/// The host a run's owner record names: the kernel's host name (on Linux,
/// of this UTS namespace, which is what makes the process ids of the same
/// host comparable), or `None` where it cannot be read.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn pid_alive(pid: u64) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true // cannot tell: rely on age
    }
}
