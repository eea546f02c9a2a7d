//! Building a manifest: match every line of a listing against the template,
//! in parallel, then sort the records by the fields and encode them as one
//! Parquet file.
//!
//! * [`lines`] matches the lines of one chunk of the listing into columns;
//! * [`dictionary`] merges each string field's per-chunk dictionaries into
//!   one sorted dictionary;
//! * [`sort`] orders the rows by the fields (packed integer keys, sorted
//!   group by group by counting where it can) and finds duplicates;
//! * [`encode`] reads the sorted rows back out as Arrow arrays or Parquet;
//! * [`par`] fills one vector from many parts in parallel.
//!
//! This module holds the operations ([`BuildManifest`], [`WriteManifest`])
//! and the built manifest ([`BuiltManifest`]).

mod dictionary;
mod encode;
#[allow(unsafe_code)] // reads lines as `str` after checking a chunk's UTF-8 once
mod lines;
#[allow(unsafe_code)] // parallel tasks fill a vector's spare capacity in place
mod par;
mod sort;

use std::future::IntoFuture;

use arrow::array::ArrayRef;
use bytes::Bytes;
use futures::future::BoxFuture;
use rayon::prelude::*;
use tessera_store::{Location, PublishMode};

use crate::error::{Error, Result};
use crate::template::{Field, Template};
use crate::{ManifestMeta, DEFAULT_LOCATION_COLUMN};

use lines::Chunk;
use sort::KeyLayout;

/// Rows per Parquet row group in manifests tessera writes.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// How many skipped paths and duplicates are kept as examples.
const EXAMPLES: usize = 5;

/// What the listing is called in messages when it is not named.
const DEFAULT_LISTING_NAME: &str = "the listing";

/// What a build read, matched and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BuildSummary {
    /// Non-empty lines (paths) read.
    pub read: u64,
    /// Paths that matched the template (= rows written).
    pub matched: u64,
    /// Paths that did not match.
    pub skipped: u64,
    /// The first skipped paths, with their 1-based line numbers.
    pub skipped_examples: Vec<(u64, String)>,
    /// Rows whose field combination repeats that of an earlier row.
    pub duplicates: u64,
    /// The first repeated field combinations, as `field=value` lists.
    pub duplicate_examples: Vec<String>,
    /// Size of the written manifest in bytes (0 until written).
    pub bytes_written: u64,
}

/// Build a manifest from a listing (one key or URL per line): match every
/// line against the template, sort the records by the fields.
///
/// [`run`](BuildManifest::run) builds it in memory;
/// [`write_to`](BuildManifest::write_to) builds, encodes and publishes it.
/// See [`crate`] for an example.
#[derive(Clone, Debug)]
#[must_use = "a build does nothing until it is run or written"]
pub struct BuildManifest {
    template: Template,
    listing: Bytes,
    listing_name: String,
    location_column: String,
    strict: bool,
    row_group_rows: usize,
}

impl BuildManifest {
    /// A build of `listing` (one key or URL per line; blank lines are
    /// ignored, `\r\n` is accepted) with `template`.
    pub fn new(template: Template, listing: impl Into<Bytes>) -> Self {
        BuildManifest {
            template,
            listing: listing.into(),
            listing_name: DEFAULT_LISTING_NAME.to_string(),
            location_column: DEFAULT_LOCATION_COLUMN.to_string(),
            strict: false,
            row_group_rows: ROW_GROUP_ROWS,
        }
    }

    /// Name the listing in messages (a file name, say; default "the listing").
    pub fn with_listing_name(mut self, name: impl Into<String>) -> Self {
        self.listing_name = name.into();
        self
    }

    /// Name the column holding each object's location (default
    /// [`DEFAULT_LOCATION_COLUMN`]).
    pub fn with_location_column(mut self, name: impl Into<String>) -> Self {
        self.location_column = name.into();
        self
    }

    /// Make any line that does not match the template an error
    /// ([`Error::InvalidRecord`]) instead of a skipped line.
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Rows per Parquet row group (default [`ROW_GROUP_ROWS`]).
    pub fn with_row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows.max(1);
        self
    }

    /// Build, encode and publish the manifest to `out` atomically, on the
    /// caller's runtime (the CPU-bound work runs on a blocking thread).
    /// Nothing is written when the build fails.
    pub fn write_to(self, out: &Location) -> WriteManifest {
        WriteManifest {
            build: self,
            out: out.clone(),
        }
    }

    fn check_names(&self) -> Result<()> {
        if self.location_column.is_empty() {
            return Err(Error::InvalidName {
                name: String::new(),
                rule: "the location column needs a name".into(),
            });
        }
        if self
            .template
            .fields()
            .iter()
            .any(|f| f.name == self.location_column)
        {
            return Err(Error::InvalidName {
                name: self.location_column.clone(),
                rule: "a template field has the same name as the location column: rename one"
                    .into(),
            });
        }
        Ok(())
    }

    /// Match every line and build the sorted manifest in memory.
    pub fn run(self) -> Result<BuiltManifest> {
        self.check_names()?;
        let BuildManifest {
            template,
            listing: bytes,
            listing_name,
            location_column,
            strict,
            row_group_rows,
        } = self;
        // Chunks end at line breaks, which are character boundaries: each
        // chunk checks its own UTF-8 (only when it is not plain ASCII).
        let chunks = lines::split_chunks(&bytes, rayon::current_num_threads() * 4);
        let t0 = std::time::Instant::now();
        let parsed: Vec<std::result::Result<Chunk<'_>, usize>> = chunks
            .par_iter()
            .map(|&(s, e)| lines::parse_chunk(&template, &bytes, s, e))
            .collect();
        if let Some(at) = parsed.iter().filter_map(|c| c.as_ref().err()).min() {
            let line = memchr::memchr_iter(b'\n', &bytes[..*at]).count() as u64 + 1;
            return Err(Error::InvalidRecord {
                object: listing_name,
                line,
                message: "not valid UTF-8".into(),
            });
        }
        let parsed: Vec<Chunk<'_>> = parsed.into_iter().filter_map(|c| c.ok()).collect();

        // Line numbers: each chunk counted its own lines; make them global.
        let mut summary = BuildSummary::default();
        let mut line_base = 0u64;
        for c in &parsed {
            summary.read += c.read;
            summary.skipped += c.skipped;
            for (l, p) in &c.skipped_examples {
                if summary.skipped_examples.len() < EXAMPLES {
                    summary.skipped_examples.push((line_base + l, p.clone()));
                }
            }
            if let Some(line) = c.too_far {
                return Err(Error::InvalidRecord {
                    object: listing_name,
                    line: line_base + line,
                    message: "follows lines of gigabytes: those are not object keys".into(),
                });
            }
            line_base += c.lines;
        }
        summary.matched = summary.read - summary.skipped;
        tracing::debug!("matched {} paths in {:?}", summary.read, t0.elapsed());

        if summary.matched == 0 {
            return Err(Error::EmptyMatch {
                template: template.to_string(),
                read: summary.read,
                examples: format_examples(&summary.skipped_examples),
            });
        }
        if strict && summary.skipped > 0 {
            return Err(Error::InvalidRecord {
                object: listing_name,
                line: summary.skipped_examples[0].0,
                message: format!(
                    "does not match the template '{template}'; {} of {} paths did not match{}",
                    summary.skipped,
                    summary.read,
                    format_examples(&summary.skipped_examples)
                ),
            });
        }

        let n = summary.matched as usize;
        if n > u32::MAX as usize {
            return Err(Error::Unsupported(format!(
                "{n} paths matched: a manifest holds at most {} rows",
                u32::MAX
            )));
        }
        let fields = template.fields();
        // Per string field: one sorted dictionary for all chunks, and each
        // chunk's code → position in it.
        let dicts: Vec<Option<dictionary::MergedDict<'_>>> = (0..fields.len())
            .map(|fi| dictionary::merge_dict(&parsed, fi))
            .collect();
        tracing::debug!("merged dictionaries at {:?}", t0.elapsed());

        let layout = KeyLayout::new(&parsed, &dicts);
        let packed = layout.total <= 32 && bytes.len() <= u32::MAX as usize;
        let (sorted, starts, dups) = if packed {
            let (starts, dups) = sort::packed_sort(&parsed, &dicts, &layout, n);
            let dicts = dicts
                .iter()
                .map(|d| d.as_ref().map(|d| dictionary::dict_array(&d.sorted)))
                .collect();
            (Fields::Packed { layout, dicts }, starts, dups)
        } else {
            sort::sort_arrays(&parsed, &dicts, &layout, fields, n)?
        };
        drop(dicts);
        drop(parsed);
        tracing::debug!("sorted at {:?}", t0.elapsed());
        let meta = ManifestMeta {
            version: 1,
            template: template.to_string(),
            location_column,
            fields: fields
                .iter()
                .map(|f| (f.name.clone(), f.ty.name().to_string()))
                .collect(),
        };
        let mut built = BuiltManifest {
            fields: sorted,
            defs: fields.to_vec(),
            summary,
            meta,
            text: bytes,
            starts,
            row_group_rows,
        };
        built.summary.duplicates = dups.count;
        built.summary.duplicate_examples = dups.describe(&built);
        Ok(built)
    }
}

/// Build a manifest and publish it to a location: [`BuildManifest::write_to`].
/// Awaiting it gives the [`BuildSummary`], with the bytes written.
#[must_use = "a manifest is written only when the operation is awaited"]
pub struct WriteManifest {
    build: BuildManifest,
    out: Location,
}

impl IntoFuture for WriteManifest {
    type Output = Result<BuildSummary>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let WriteManifest { build, out } = self;
        Box::pin(async move {
            let (data, mut summary) =
                tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, BuildSummary)> {
                    let mut built = build.run()?;
                    let t = std::time::Instant::now();
                    let data = built.to_parquet()?;
                    tracing::debug!("encoded parquet in {:?}", t.elapsed());
                    let summary = std::mem::take(&mut built.summary);
                    // Releasing the paths text (often a mapped file of
                    // hundreds of megabytes) and the rows takes a while: it
                    // happens while the manifest is published.
                    rayon::spawn(move || drop(built));
                    Ok((data, summary))
                })
                .await
                .map_err(|e| Error::Internal(format!("the build task failed: {e}")))??;
            summary.bytes_written = data.len() as u64;
            out.publish(Bytes::from(data), PublishMode::Overwrite)
                .await?;
            Ok(summary)
        })
    }
}

/// A built, sorted manifest that has not been written yet.
pub struct BuiltManifest {
    /// The field values, sorted by the template fields (the location column
    /// is added by [`BuiltManifest::batch`] and [`BuiltManifest::to_parquet`]).
    fields: Fields,
    /// The template's fields.
    defs: Vec<Field>,
    /// What was read and matched.
    pub summary: BuildSummary,
    meta: ManifestMeta,
    /// The paths text; locations are slices of it.
    text: Bytes,
    /// Where each row's line starts in the text, in sorted order: the low
    /// 32 bits of each value when the fields are `Fields::Packed` (above
    /// them: the sort key).
    starts: Vec<u64>,
    /// Rows per Parquet row group.
    row_group_rows: usize,
}

/// The sorted field values of a built manifest.
enum Fields {
    /// Read out of the sorted keys (`BuiltManifest::starts`) when needed,
    /// with each string field's dictionary (a `StringArray`).
    Packed {
        layout: KeyLayout,
        dicts: Vec<Option<ArrayRef>>,
    },
    /// One array per field.
    Arrays(Vec<ArrayRef>),
}

impl BuiltManifest {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when there are no records (never, for a successful build).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The manifest description stored in the file.
    pub fn meta(&self) -> &ManifestMeta {
        &self.meta
    }
}

/// The skipped lines, for messages.
fn format_examples(ex: &[(u64, String)]) -> String {
    if ex.is_empty() {
        return String::new();
    }
    let mut s = String::from("; paths that did not match:");
    for (l, p) in ex {
        s.push_str(&format!("\n  line {l}: {p}"));
    }
    s
}
