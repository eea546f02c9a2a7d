//! Building a manifest: match every path against the template, in parallel,
//! then sort by the fields and write one Parquet file.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Date32Array, DictionaryArray, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Field as ArrowField, Int32Type, Int64Type, Schema, SchemaRef,
};
use bytes::Bytes;
use hashbrown::HashMap;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;
use tessera_store::{Location, PublishMode};

use crate::columns::PAGE_ROWS;
use crate::error::{Error, Result};
use crate::template::{FieldType, Template};
use crate::{ManifestMeta, DEFAULT_LOCATION_COLUMN};

/// Rows per Parquet row group in manifests tessera writes.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// How many skipped paths and duplicates are kept as examples.
const EXAMPLES: usize = 5;

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

/// Builds manifests from lists of paths. See [`crate`] for an example.
#[derive(Clone, Debug)]
pub struct ManifestBuilder {
    template: Template,
    location_column: String,
    strict: bool,
    row_group_rows: usize,
}

enum Col<'a> {
    Str(StrCol<'a>),
    Num(NumCol),
}

/// A numeric field of one chunk: 32-bit fields (`int32`, `date`) take
/// half the memory, which a build touches for every row.
enum NumCol {
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl NumCol {
    fn new(ty: FieldType, capacity: usize) -> NumCol {
        match ty {
            FieldType::Int64 => NumCol::I64(Vec::with_capacity(capacity)),
            _ => NumCol::I32(Vec::with_capacity(capacity)),
        }
    }

    /// Add a value parsed as the field's type (so it fits).
    #[inline]
    fn push(&mut self, v: i64) {
        match self {
            NumCol::I32(x) => x.push(v as i32),
            NumCol::I64(x) => x.push(v),
        }
    }

    /// Add the previous row's value again.
    #[inline]
    fn repeat(&mut self) {
        match self {
            NumCol::I32(x) => x.push(*x.last().expect("a previous row")),
            NumCol::I64(x) => x.push(*x.last().expect("a previous row")),
        }
    }

    #[inline]
    fn get(&self, r: usize) -> i64 {
        match self {
            NumCol::I32(x) => i64::from(x[r]),
            NumCol::I64(x) => x[r],
        }
    }

    fn len(&self) -> usize {
        match self {
            NumCol::I32(x) => x.len(),
            NumCol::I64(x) => x.len(),
        }
    }

    /// The smallest and largest value.
    fn range(&self) -> (i64, i64) {
        match self {
            NumCol::I32(x) => crate::columns::bounds(x.iter().map(|&v| i64::from(v))),
            NumCol::I64(x) => crate::columns::bounds(x.iter().copied()),
        }
    }
}

/// A string field of one chunk: its values and a code per row.
struct StrCol<'a> {
    map: HashMap<&'a str, u32>,
    dict: Vec<&'a str>,
    codes: Vec<u32>,
    /// The previous row's value and code: listings repeat a value on
    /// consecutive lines, and comparing is cheaper than hashing.
    last: Option<(&'a str, u32)>,
}

impl<'a> StrCol<'a> {
    #[inline]
    fn push(&mut self, v: &'a str) {
        let code = match self.last {
            Some((lv, lc)) if crate::template::eq_short(lv.as_bytes(), v.as_bytes()) => lc,
            _ => {
                let next = self.dict.len() as u32;
                let dict = &mut self.dict;
                let code = *self.map.entry(v).or_insert_with(|| {
                    dict.push(v);
                    next
                });
                self.last = Some((v, code));
                code
            }
        };
        self.codes.push(code);
    }

    /// Add the previous row's value again.
    #[inline]
    fn repeat(&mut self) {
        let code = *self.codes.last().expect("a previous row");
        self.codes.push(code);
    }
}

/// Add a matched row to the columns: for the fields marked in `fresh`, the
/// value captured from `line` (numbers were parsed while matching), for the
/// others the previous row's value again.
#[inline]
fn push_row<'a>(
    cols: &mut [Col<'a>],
    line: &'a str,
    caps: &crate::template::Captures,
    nums: &[i64],
    fresh: &[bool],
) {
    for (fi, col) in cols.iter_mut().enumerate() {
        match col {
            Col::Str(col) if fresh[fi] => col.push(&line[caps[fi].0..caps[fi].1]),
            Col::Str(col) => col.repeat(),
            Col::Num(vals) if fresh[fi] => vals.push(nums[fi]),
            Col::Num(vals) => vals.repeat(),
        }
    }
}

/// A matched line whose match the next line may reuse: where it starts,
/// its last slash and its leading blanks (both from `start`).
#[derive(Clone, Copy)]
struct Prev {
    start: usize,
    last: usize,
    lead: usize,
}

struct Chunk<'a> {
    /// Lines in the chunk (blank ones included), for line numbers.
    lines: u64,
    read: u64,
    skipped: u64,
    skipped_examples: Vec<(u64, String)>,
    /// Where the chunk starts in the text.
    base: usize,
    /// Where each matched line starts, from `base` (its end is found again
    /// when it is written: see [`line_at`]).
    starts: Vec<u32>,
    /// Line number (in the chunk) of a matched line starting more than
    /// 4 GiB into the chunk, if any (only after a line of gigabytes).
    too_far: Option<u64>,
    cols: Vec<Col<'a>>,
}

impl Chunk<'_> {
    /// The current line matched; it starts `rel` bytes into the chunk.
    #[inline]
    fn record_match(&mut self, rel: usize) {
        let rel = u32::try_from(rel).unwrap_or_else(|_| {
            self.too_far.get_or_insert(self.lines);
            0
        });
        self.starts.push(rel);
    }

    /// The current line, `line`, did not match.
    fn record_skip(&mut self, line: &str) {
        self.skipped += 1;
        if self.skipped_examples.len() < EXAMPLES {
            self.skipped_examples.push((self.lines, line.to_string()));
        }
    }
}

/// A built, sorted manifest that has not been written yet.
pub struct BuiltManifest {
    /// The field values, sorted by the template fields (the location column
    /// is added by [`BuiltManifest::batch`] and [`BuiltManifest::to_parquet`]).
    fields: Fields,
    /// The template's fields.
    defs: Vec<crate::template::Field>,
    /// What was read and matched.
    pub summary: BuildSummary,
    meta: ManifestMeta,
    /// The paths text; locations are slices of it.
    text: Bytes,
    /// Where each row's line starts in the text, in sorted order: the low
    /// 32 bits of each value when the fields are `Fields::Packed` (above
    /// them: the sort key).
    starts: Vec<u64>,
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

/// Chunks of the paths text matched by one task are at most this long (and
/// a line break), so line starts within a chunk fit 32 bits.
const MAX_CHUNK: usize = 1 << 30;

impl ManifestBuilder {
    /// A builder for `template`, with location column `file_path`.
    pub fn new(template: Template) -> Self {
        ManifestBuilder {
            template,
            location_column: DEFAULT_LOCATION_COLUMN.to_string(),
            strict: false,
            row_group_rows: ROW_GROUP_ROWS,
        }
    }

    /// Name the column holding each object's location (default `file_path`).
    pub fn location_column(mut self, name: impl Into<String>) -> Self {
        self.location_column = name.into();
        self
    }

    /// Make any path that does not match the template an error.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Rows per Parquet row group (default [`ROW_GROUP_ROWS`]).
    pub fn row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows.max(1);
        self
    }

    /// The template.
    pub fn template(&self) -> &Template {
        &self.template
    }

    fn check_names(&self) -> Result<()> {
        if self.location_column.is_empty() {
            return Err(Error::InvalidInput(
                "the location column name is empty".into(),
            ));
        }
        if self
            .template
            .fields()
            .iter()
            .any(|f| f.name == self.location_column)
        {
            return Err(Error::InvalidInput(format!(
                "template field '{}' has the same name as the location column: rename one (--location-column)",
                self.location_column
            )));
        }
        Ok(())
    }

    /// Match every line of `text` (one key or URL per line) and build the
    /// sorted manifest in memory. Blank lines are ignored; `\r\n` is accepted.
    pub fn build(&self, text: impl Into<Bytes>) -> Result<BuiltManifest> {
        self.check_names()?;
        let bytes: Bytes = text.into();
        // Chunks end at line breaks, which are character boundaries: each
        // chunk checks its own UTF-8 (only when it is not plain ASCII).
        let chunks = split_chunks(&bytes, rayon::current_num_threads() * 4);
        let t0 = std::time::Instant::now();
        let parsed: Vec<std::result::Result<Chunk<'_>, usize>> = chunks
            .par_iter()
            .map(|&(s, e)| self.parse_chunk(&bytes, s, e))
            .collect();
        if let Some(at) = parsed.iter().filter_map(|c| c.as_ref().err()).min() {
            let line = memchr::memchr_iter(b'\n', &bytes[..*at]).count() + 1;
            return Err(Error::InvalidInput(format!(
                "line {line} of the paths is not valid UTF-8"
            )));
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
                return Err(Error::InvalidInput(format!(
                    "line {} follows lines of gigabytes: those are not object keys",
                    line_base + line
                )));
            }
            line_base += c.lines;
        }
        summary.matched = summary.read - summary.skipped;
        tracing::debug!("matched {} paths in {:?}", summary.read, t0.elapsed());

        if summary.matched == 0 {
            return Err(Error::EmptyMatch {
                template: self.template.to_string(),
                read: summary.read,
                examples: format_examples(&summary.skipped_examples),
            });
        }
        if self.strict && summary.skipped > 0 {
            return Err(Error::Skipped {
                template: self.template.to_string(),
                read: summary.read,
                count: summary.skipped,
                examples: format_examples(&summary.skipped_examples),
            });
        }

        let n = summary.matched as usize;
        if n > u32::MAX as usize {
            return Err(Error::InvalidInput(format!(
                "{n} paths matched: a manifest holds at most {} rows",
                u32::MAX
            )));
        }
        let fields = self.template.fields();
        // Per string field: one sorted dictionary for all chunks, and each
        // chunk's code → position in it.
        let dicts: Vec<Option<MergedDict<'_>>> = (0..fields.len())
            .map(|fi| merge_dict(&parsed, fi))
            .collect();
        tracing::debug!("merged dictionaries at {:?}", t0.elapsed());

        let layout = KeyLayout::new(&parsed, &dicts);
        let packed = layout.total <= 32 && bytes.len() <= u32::MAX as usize;
        let (sorted, starts, dups): (Fields, Vec<u64>, Duplicates) = if packed {
            let (starts, dups) = packed_sort(&parsed, &dicts, &layout, n);
            let dicts = dicts
                .iter()
                .map(|d| d.as_ref().map(|d| dict_array(&d.sorted)))
                .collect();
            (Fields::Packed { layout, dicts }, starts, dups)
        } else {
            let columns: Vec<MergedCol> = (0..fields.len())
                .map(|fi| merge_column(&parsed, fi, dicts[fi].as_ref(), n))
                .collect();
            let perm = sort_permutation(&columns, &layout, n);
            let mut arrays = Vec::with_capacity(fields.len());
            for (f, col) in fields.iter().zip(&columns) {
                arrays.push(match col {
                    MergedCol::Str { dict, codes } => {
                        field_array(f.ty, Some(dict), n, |j| codes[perm[j] as usize] as i64)?
                    }
                    MergedCol::Num(v) => field_array(f.ty, None, n, |j| v[perm[j] as usize])?,
                });
            }
            let dups = Duplicates::find(n, |j| {
                let (a, b) = (perm[j] as usize, perm[j + 1] as usize);
                columns.iter().all(|c| match c {
                    MergedCol::Str { codes, .. } => codes[a] == codes[b],
                    MergedCol::Num(v) => v[a] == v[b],
                })
            });
            let parts: Vec<&[u32]> = parsed.iter().map(|c| c.starts.as_slice()).collect();
            let starts: Vec<u64> =
                par_concat(&parts, n, |p, &r| (parsed[p].base + r as usize) as u64);
            let starts = perm.par_iter().map(|&i| starts[i as usize]).collect();
            (Fields::Arrays(arrays), starts, dups)
        };
        drop(dicts);
        drop(parsed);
        tracing::debug!("sorted at {:?}", t0.elapsed());
        let meta = ManifestMeta {
            version: 1,
            template: self.template.to_string(),
            location_column: self.location_column.clone(),
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
        };
        built.summary.duplicates = dups.count;
        built.summary.duplicate_examples = dups.describe(&built);
        Ok(built)
    }

    /// Match the lines of `bytes[start..end]`, which ends at a line break
    /// or the end of the text. `Err` holds the position of the first byte
    /// that is not valid UTF-8.
    fn parse_chunk<'a>(
        &self,
        bytes: &'a [u8],
        start: usize,
        end: usize,
    ) -> std::result::Result<Chunk<'a>, usize> {
        let fields = self.template.fields();
        // Pre-size for the likely number of lines (about 64 bytes each).
        let guess = (end - start) / 48 + 16;
        let mut cols: Vec<Col<'a>> = fields
            .iter()
            .map(|f| match f.ty {
                FieldType::String => Col::Str(StrCol {
                    map: HashMap::new(),
                    dict: Vec::new(),
                    codes: Vec::with_capacity(guess),
                    last: None,
                }),
                ty => Col::Num(NumCol::new(ty, guess)),
            })
            .collect();
        let mut chunk = Chunk {
            lines: 0,
            read: 0,
            skipped: 0,
            skipped_examples: Vec::new(),
            base: start,
            starts: Vec::with_capacity(guess),
            too_far: None,
            cols: Vec::new(),
        };
        let mut caps = Vec::with_capacity(fields.len());
        let (mut segs, mut nums) = (Vec::new(), Vec::new());
        // The last matched line, when the next one can reuse its match (see
        // `Template::last_segment_decides`): a listing repeats everything
        // up to the last slash on consecutive lines.
        let reuse = self.template.last_segment_decides();
        let last_fields = self.template.last_segment_fields();
        let all_fields = vec![true; fields.len()];
        let mut prev: Option<Prev> = None;
        // The slashes of a line (relative to its start), when it is matched
        // in full.
        let mut slashes: Vec<usize> = Vec::with_capacity(32);
        // One line: bytes[line_start..nl], whose last slash is at
        // `line_start + last` if it has one.
        let mut take_line = |line_start: usize, nl: usize, last: Option<usize>| {
            chunk.lines += 1;
            let mut line_end = nl;
            if let (Some(p), Some(last)) = (prev, last) {
                if last == p.last
                    && crate::template::eq_short(
                        &bytes[line_start..=line_start + last],
                        &bytes[p.start..=p.start + last],
                    )
                {
                    // Same text up to the last slash as a line that matched:
                    // the same leading blanks, key and segments before the
                    // last, so only the last segment is matched, and the
                    // other fields repeat the previous row's values. (The
                    // slash is no blank: trimming stops before it.)
                    while line_end > line_start + last + 1
                        && bytes[line_end - 1].is_ascii_whitespace()
                    {
                        line_end -= 1;
                    }
                    let ls = line_start + p.lead;
                    // SAFETY: as for the lines below.
                    let line: &'a str =
                        unsafe { std::str::from_utf8_unchecked(&bytes[ls..line_end]) };
                    chunk.read += 1;
                    let seg = last + 1 - p.lead;
                    if self
                        .template
                        .match_last_segment(line, seg, line.len(), &mut caps, &mut nums)
                    {
                        push_row(&mut cols, line, &caps, &nums, &last_fields);
                        chunk.record_match(ls - start);
                    } else {
                        chunk.record_skip(line);
                    }
                    return;
                }
            }
            // Trim surrounding blanks, `\r` included (never slashes: those
            // stay inside).
            let mut ls = line_start;
            while ls < line_end && bytes[ls].is_ascii_whitespace() {
                ls += 1;
            }
            while line_end > ls && bytes[line_end - 1].is_ascii_whitespace() {
                line_end -= 1;
            }
            if ls == line_end {
                return;
            }
            slashes.clear();
            if last.is_some() {
                slashes.extend(memchr::memchr_iter(b'/', &bytes[ls..line_end]));
            }
            // SAFETY: the line is plain ASCII, or lies in a range that was
            // checked to be UTF-8 before its first non-ASCII byte was reached
            // (see the loop below); it starts after a line break or blanks
            // and ends before a line break or blanks, all ASCII.
            let line: &'a str = unsafe { std::str::from_utf8_unchecked(&bytes[ls..line_end]) };
            chunk.read += 1;
            let skip = crate::template::key_offset_in(line, &slashes);
            if self
                .template
                .match_span(line, skip, &slashes, &mut caps, &mut segs, &mut nums)
            {
                push_row(&mut cols, line, &caps, &nums, &all_fields);
                chunk.record_match(ls - start);
                // The next line may reuse this match. (Where the key starts
                // is decided by the text up to the last slash, or the key
                // starts right after it.)
                let lead = ls - line_start;
                prev = match slashes.last() {
                    Some(&l) if reuse => Some(Prev {
                        start: line_start,
                        last: l + lead,
                        lead,
                    }),
                    _ => None,
                };
            } else {
                chunk.record_skip(line);
            }
        };
        // Visit the line breaks of 64 bytes at a time, and note where the
        // last slash of each line is.
        let mut line_start = start;
        // The last slash of the current line in earlier blocks.
        let mut carried: Option<usize> = None;
        let mut checked = false;
        let mut base = start;
        while base < end {
            let blk = match bytes.get(base..base + 64) {
                Some(b) if base + 64 <= end => crate::scan::block(b.try_into().expect("64 bytes")),
                _ => crate::scan::partial_block(&bytes[base..end]),
            };
            if blk.high != 0 && !checked {
                // The first non-ASCII byte is at or after line_start (all
                // earlier lines were ASCII): check the rest of the chunk once.
                if let Err(e) = std::str::from_utf8(&bytes[line_start..end]) {
                    return Err(line_start + e.valid_up_to());
                }
                checked = true;
            }
            // The block's slashes not yet given to a line.
            let mut pending = blk.slash;
            let mut m = blk.nl;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                let mine = pending & ((1u64 << i) - 1);
                pending &= !mine;
                let last = match mine {
                    0 => carried,
                    _ => Some(base + 63 - mine.leading_zeros() as usize),
                };
                take_line(line_start, base + i, last.map(|l| l - line_start));
                carried = None;
                line_start = base + i + 1;
            }
            if pending != 0 {
                carried = Some(base + 63 - pending.leading_zeros() as usize);
            }
            base += 64;
        }
        if line_start < end {
            take_line(line_start, end, carried.map(|l| l - line_start));
        }
        chunk.cols = cols;
        Ok(chunk)
    }

    /// Build and publish the manifest to `out` atomically. Nothing is written
    /// when the build fails.
    pub async fn build_to(&self, text: Bytes, out: &Location) -> Result<BuildSummary> {
        let this = self.clone();
        let (data, mut summary) =
            tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, BuildSummary)> {
                let mut built = this.build(text)?;
                let t = std::time::Instant::now();
                let data = built.to_parquet(this.row_group_rows)?;
                tracing::debug!("encoded parquet in {:?}", t.elapsed());
                let summary = std::mem::take(&mut built.summary);
                // Releasing the paths text (often a mapped file of hundreds
                // of megabytes) and the rows takes a while: it happens while
                // the manifest is published.
                rayon::spawn(move || drop(built));
                Ok((data, summary))
            })
            .await
            .map_err(|e| Error::InvalidInput(format!("build task failed: {e}")))??;
        summary.bytes_written = data.len() as u64;
        out.publish(Bytes::from(data), PublishMode::Overwrite)
            .await?;
        Ok(summary)
    }
}

/// The line starting at `start` in the paths text, as it was matched: up
/// to its line break, without trailing blanks or `\r`.
fn line_at(text: &[u8], start: usize) -> &[u8] {
    line_after(text, start, &[]).0
}

/// [`line_at`], and the length of the prefix the line shares with `prev`
/// (another line): sorted locations share most of their bytes, and the
/// line break is only looked for after the shared part (`prev` has none).
#[inline]
fn line_after<'t>(text: &'t [u8], start: usize, prev: &[u8]) -> (&'t [u8], usize) {
    let rest = &text[start..];
    let p = crate::scan::common_prefix(prev, &rest[..prev.len().min(rest.len())]);
    let tail = &rest[p..];
    let mut end = p + crate::scan::find_newline(tail).unwrap_or(tail.len());
    while end > 0 && rest[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    (&rest[..end], p.min(end))
}

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

/// Split `text` into about `parts` ranges that end at line breaks.
fn split_chunks(bytes: &[u8], parts: usize) -> Vec<(usize, usize)> {
    let target = (bytes.len() / parts.max(1)).clamp(1 << 16, MAX_CHUNK);
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + target).min(bytes.len());
        if end < bytes.len() {
            end = memchr::memchr(b'\n', &bytes[end..])
                .map(|i| end + i + 1)
                .unwrap_or(bytes.len());
        }
        out.push((start, end));
        start = end;
    }
    out
}

enum MergedCol {
    Str { dict: ArrayRef, codes: Vec<u32> },
    Num(Vec<i64>),
}

/// A string field's values over all chunks: sorted and unique, and for
/// each chunk the position in `sorted` of each of its codes.
struct MergedDict<'a> {
    sorted: Vec<&'a str>,
    remaps: Vec<Vec<u32>>,
}

fn merge_dict<'a>(parsed: &[Chunk<'a>], fi: usize) -> Option<MergedDict<'a>> {
    let Col::Str(_) = &parsed.first()?.cols[fi] else {
        return None;
    };
    let mut uniq: HashMap<&str, u32> = HashMap::new();
    for c in parsed {
        if let Col::Str(StrCol { dict, .. }) = &c.cols[fi] {
            for v in dict {
                uniq.entry(*v).or_insert(0);
            }
        }
    }
    let mut sorted: Vec<&str> = uniq.keys().copied().collect();
    sorted.par_sort_unstable();
    for (rank, v) in sorted.iter().enumerate() {
        uniq.insert(*v, rank as u32);
    }
    let remaps = parsed
        .iter()
        .map(|c| match &c.cols[fi] {
            Col::Str(StrCol { dict, .. }) => dict.iter().map(|v| uniq[v]).collect(),
            Col::Num(_) => Vec::new(),
        })
        .collect();
    Some(MergedDict { sorted, remaps })
}

/// One column over all chunks (string fields as codes into `dict`).
fn merge_column(
    parsed: &[Chunk<'_>],
    fi: usize,
    dict: Option<&MergedDict<'_>>,
    n: usize,
) -> MergedCol {
    match dict {
        None => {
            let lens: Vec<usize> = parsed
                .iter()
                .map(|c| match &c.cols[fi] {
                    Col::Num(x) => x.len(),
                    Col::Str(_) => 0,
                })
                .collect();
            assert_eq!(lens.iter().sum::<usize>(), n);
            MergedCol::Num(par_fill(&lens, |p, r| match &parsed[p].cols[fi] {
                Col::Num(x) => x.get(r),
                Col::Str(_) => unreachable!("a numeric field in every chunk"),
            }))
        }
        Some(d) => {
            let parts: Vec<&[u32]> = parsed
                .iter()
                .map(|c| match &c.cols[fi] {
                    Col::Str(StrCol { codes, .. }) => codes.as_slice(),
                    Col::Num(_) => &[],
                })
                .collect();
            let codes = par_concat(&parts, n, |part, &l| d.remaps[part][l as usize]);
            MergedCol::Str {
                dict: dict_array(&d.sorted),
                codes,
            }
        }
    }
}

/// How the fields pack into one integer sort key: per field, the bits it
/// takes and the value subtracted first (string fields: their codes).
struct KeyLayout {
    widths: Vec<u32>,
    mins: Vec<i64>,
    total: u32,
}

impl KeyLayout {
    fn new(parsed: &[Chunk<'_>], dicts: &[Option<MergedDict<'_>>]) -> KeyLayout {
        let mut widths = Vec::with_capacity(dicts.len());
        let mut mins = Vec::with_capacity(dicts.len());
        for (fi, d) in dicts.iter().enumerate() {
            match d {
                Some(d) => {
                    mins.push(0i64);
                    widths.push(bits_for(d.sorted.len().saturating_sub(1) as u64));
                }
                None => {
                    let (lo, hi) = parsed
                        .par_iter()
                        .map(|c| match &c.cols[fi] {
                            Col::Num(v) => v.range(),
                            Col::Str(_) => (i64::MAX, i64::MIN),
                        })
                        .reduce(
                            || (i64::MAX, i64::MIN),
                            |(a, b), (c, d)| (a.min(c), b.max(d)),
                        );
                    mins.push(lo);
                    widths.push(bits_for(hi.wrapping_sub(lo) as u64));
                }
            }
        }
        let total = widths.iter().sum();
        KeyLayout {
            widths,
            mins,
            total,
        }
    }

    /// Bits below field `fi` in the key.
    fn shift(&self, fi: usize) -> u32 {
        self.widths[fi + 1..].iter().sum()
    }
}

/// Sort when all fields fit 32 bits: each row becomes one `u64`, its key
/// above its line's start, so sorting plain integers sorts the rows (equal
/// keys keep input order) and the sorted keys hold every field value
/// ([`BuiltManifest`] reads them out as needed). Returns the sorted keys
/// and the rows that repeat their predecessor's fields.
fn packed_sort(
    parsed: &[Chunk<'_>],
    dicts: &[Option<MergedDict<'_>>],
    layout: &KeyLayout,
    n: usize,
) -> (Vec<u64>, Duplicates) {
    // Below the key, the line's start: it orders equal keys by input
    // position and finds the location again (the text is under 4 GiB).
    let lens: Vec<usize> = parsed.iter().map(|c| c.starts.len()).collect();
    let mut packed: Vec<u64> = par_fill(&lens, |ci, r| {
        let mut k = 0u64;
        for (fi, col) in parsed[ci].cols.iter().enumerate() {
            let v = match col {
                Col::Str(s) => {
                    let d = dicts[fi].as_ref().expect("string fields have a dictionary");
                    u64::from(d.remaps[ci][s.codes[r] as usize])
                }
                Col::Num(v) => v.get(r).wrapping_sub(layout.mins[fi]) as u64,
            };
            k = (k << layout.widths[fi]) | v;
        }
        (k << 32) | (parsed[ci].base as u64 + u64::from(parsed[ci].starts[r]))
    });
    debug_assert_eq!(packed.len(), n);
    tracing::debug!("packed {n} sort keys");
    if !packed.par_windows(2).all(|w| w[0] <= w[1]) {
        // Listings usually arrive sorted by the leading field (a path
        // segment) but not by the rest (numbers sort as text in listings):
        // then only the groups of equal leading field need sorting.
        let lead_shift = 32 + layout.shift(0);
        let lead = |p: u64| if lead_shift >= 64 { 0 } else { p >> lead_shift };
        if packed.par_windows(2).all(|w| lead(w[0]) <= lead(w[1])) {
            // Within a group the keys differ in the other fields' bits only:
            // few of them (a file number, say) are sorted by counting.
            let rest = layout.shift(0);
            packed
                .par_chunk_by_mut(|&a, &b| lead(a) == lead(b))
                .for_each_init(
                    || (Vec::new(), Vec::new()),
                    |(scratch, counts), g| sort_group(g, rest, scratch, counts),
                );
        } else {
            packed.par_sort_unstable();
        }
    }
    let dups = Duplicates::find(n, |j| packed[j] >> 32 == packed[j + 1] >> 32);
    (packed, dups)
}

/// Sort `keys`, packed keys (fields above the line's start) whose fields
/// differ in their low `bits` bits only, and whose starts ascend (the input
/// order). When the group is large for the number of values those bits can
/// take, a counting sort on them, which is stable: equal fields keep their
/// starts in order, so the result is the full keys in order.
fn sort_group(keys: &mut [u64], bits: u32, scratch: &mut Vec<u64>, counts: &mut Vec<u32>) {
    if keys.len() < 32 || bits > 16 || (1usize << bits) > 2 * keys.len() {
        keys.sort_unstable();
        return;
    }
    let mask = (1u64 << bits) - 1;
    let value = |k: u64| ((k >> 32) & mask) as usize;
    counts.clear();
    counts.resize(1 << bits, 0);
    for &k in keys.iter() {
        counts[value(k)] += 1;
    }
    let mut at = 0;
    for c in counts.iter_mut() {
        let n = *c;
        *c = at;
        at += n;
    }
    scratch.clear();
    scratch.resize(keys.len(), 0);
    for &k in keys.iter() {
        let slot = &mut counts[value(k)];
        scratch[*slot as usize] = k;
        *slot += 1;
    }
    keys.copy_from_slice(scratch);
}

/// A sorted dictionary as an Arrow string array.
fn dict_array(sorted: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(sorted.iter()))
}

/// The Arrow array of a field whose `j`-th sorted value is `value(j)` (for
/// string fields, a position in `dict`, a `StringArray`).
fn field_array(
    ty: FieldType,
    dict: Option<&ArrayRef>,
    n: usize,
    value: impl Fn(usize) -> i64 + Sync,
) -> Result<ArrayRef> {
    let ints = || -> Vec<i32> { (0..n).into_par_iter().map(|j| value(j) as i32).collect() };
    Ok(match (ty, dict) {
        (FieldType::String, Some(dict)) => {
            let keys = Int32Array::from(ints());
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, dict.clone())?)
        }
        (FieldType::Int32, _) => Arc::new(Int32Array::from(ints())),
        (FieldType::Date, _) => Arc::new(Date32Array::from(ints())),
        (FieldType::Int64, _) => Arc::new(Int64Array::from(
            (0..n).into_par_iter().map(&value).collect::<Vec<i64>>(),
        )),
        (FieldType::String, None) => unreachable!("string fields have a dictionary"),
    })
}

/// Concatenate `parts` (holding `n` items in all) through `f(part, item)`,
/// each part written to its place in the output by its own task.
fn par_concat<T: Sync, U: Send>(
    parts: &[&[T]],
    n: usize,
    f: impl Fn(usize, &T) -> U + Sync,
) -> Vec<U> {
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    assert_eq!(lens.iter().sum::<usize>(), n);
    par_fill(&lens, |p, i| f(p, &parts[p][i]))
}

/// A vector of parts of `lens[p]` items each, item `i` of part `p` being
/// `f(p, i)`; each part is filled by its own task.
fn par_fill<U: Send>(lens: &[usize], f: impl Fn(usize, usize) -> U + Sync) -> Vec<U> {
    let n = lens.iter().sum();
    let mut out: Vec<U> = Vec::with_capacity(n);
    let mut dests: Vec<&mut [std::mem::MaybeUninit<U>]> = Vec::with_capacity(lens.len());
    let mut rest = &mut out.spare_capacity_mut()[..n];
    for &len in lens {
        let (d, r) = rest.split_at_mut(len);
        dests.push(d);
        rest = r;
    }
    dests.into_par_iter().enumerate().for_each(|(p, dest)| {
        for (i, d) in dest.iter_mut().enumerate() {
            d.write(f(p, i));
        }
    });
    // SAFETY: the destinations cover the first `n` slots exactly (they are
    // `lens` long, and `n` is their sum) and every slot was written.
    unsafe { out.set_len(n) };
    out
}

fn bits_for(range: u64) -> u32 {
    64 - range.leading_zeros()
}

/// Row order sorted by the fields (stable: equal rows keep input order),
/// for fields that do not fit the packed sort.
fn sort_permutation(cols: &[MergedCol], layout: &KeyLayout, n: usize) -> Vec<u32> {
    if layout.total <= 64 {
        let keys: Vec<u64> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut k = 0u64;
                for ((c, &w), &lo) in cols.iter().zip(&layout.widths).zip(&layout.mins) {
                    let v = match c {
                        MergedCol::Str { codes, .. } => codes[i] as u64,
                        MergedCol::Num(v) => v[i].wrapping_sub(lo) as u64,
                    };
                    k = if w == 64 { v } else { (k << w) | v };
                }
                k
            })
            .collect();
        let mut perm: Vec<u32> = (0..n as u32).collect();
        if !keys.par_windows(2).all(|w| w[0] <= w[1]) {
            perm.par_sort_unstable_by_key(|&i| (keys[i as usize], i));
        }
        return perm;
    }
    let cmp = |a: u32, b: u32| {
        for c in cols {
            let o = match c {
                MergedCol::Str { codes, .. } => codes[a as usize].cmp(&codes[b as usize]),
                MergedCol::Num(v) => v[a as usize].cmp(&v[b as usize]),
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        a.cmp(&b)
    };
    let mut perm: Vec<u32> = (0..n as u32).collect();
    if !perm
        .windows(2)
        .all(|w| cmp(w[0], w[1]) != std::cmp::Ordering::Greater)
    {
        perm.par_sort_unstable_by(|&a, &b| cmp(a, b));
    }
    perm
}

/// Sorted rows that repeat the fields of the row before them.
struct Duplicates {
    count: u64,
    /// The first few such rows' predecessors (sorted positions).
    first: Vec<usize>,
}

impl Duplicates {
    /// Among `n` sorted rows, where `same(j)` tells whether rows `j` and
    /// `j + 1` hold the same fields.
    fn find(n: usize, same: impl Fn(usize) -> bool + Sync) -> Duplicates {
        let pairs = n.saturating_sub(1);
        let count = (0..pairs).into_par_iter().filter(|&j| same(j)).count() as u64;
        // Enough positions for EXAMPLES different combinations, usually.
        let first = if count == 0 {
            Vec::new()
        } else {
            (0..pairs).filter(|&j| same(j)).take(EXAMPLES * 4).collect()
        };
        Duplicates { count, first }
    }

    /// The first repeated combinations as `field=value` lists.
    fn describe(&self, built: &BuiltManifest) -> Vec<String> {
        let mut examples: Vec<String> = Vec::new();
        for &j in &self.first {
            if examples.len() >= EXAMPLES {
                break;
            }
            let desc: Vec<String> = built
                .defs
                .iter()
                .enumerate()
                .map(|(fi, f)| {
                    let v = built.value(fi, j);
                    let v = match f.ty {
                        FieldType::String => built
                            .dict(fi)
                            .as_string::<i32>()
                            .value(v as usize)
                            .to_string(),
                        FieldType::Date => crate::template::format_date(v as i32),
                        FieldType::Int32 | FieldType::Int64 => v.to_string(),
                    };
                    format!("{}={v}", f.name)
                })
                .collect();
            let d = desc.join(", ");
            if examples.last() != Some(&d) {
                examples.push(d);
            }
        }
        examples
    }
}

impl BuiltManifest {
    /// Encode as Parquet: row groups of `row_group_rows`, columns encoded in
    /// parallel and snappy-compressed (fields dictionary- or delta-encoded
    /// with minimum/maximum statistics per row group and a column index of
    /// page bounds, locations prefix-encoded), and the
    /// template in the file's key-value metadata.
    pub fn to_parquet(&self, row_group_rows: usize) -> Result<Vec<u8>> {
        let row_group_rows = row_group_rows.max(1);
        let schema: SchemaRef = self.schema();
        // Pages are written by `columns`; the writer's own settings only
        // name the file's metadata.
        let mut props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(
                crate::META_KEY.to_string(),
                serde_json::to_string(&self.meta).expect("manifest metadata serializes"),
            )]))
            .build();
        let url = "(manifest being built)".to_string();
        let perr = |e| Error::Parquet {
            url: url.clone(),
            source: e,
        };
        // Keep the Arrow schema in the file so readers get dictionary types back.
        parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let parquet_schema = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .map_err(perr)?;
        let mut out: Vec<u8> = Vec::new();
        let mut writer =
            SerializedFileWriter::new(&mut out, parquet_schema.root_schema_ptr(), Arc::new(props))
                .map_err(perr)?;
        let n = self.len();
        let ncols = schema.fields().len();
        let loc_idx = ncols - 1;
        let groups: Vec<(usize, usize)> = (0..n)
            .step_by(row_group_rows)
            .map(|s| (s, (s + row_group_rows).min(n)))
            .collect();
        let tasks: Vec<(usize, usize)> = (0..groups.len())
            .flat_map(|g| (0..ncols).map(move |c| (g, c)))
            .collect();
        let descrs: Vec<_> = (0..ncols)
            .map(|c| writer.schema_descr().column(c))
            .collect();
        // Each task encodes one column of one row group (see `columns`).
        let chunks: Vec<Result<(usize, usize, Bytes, ColumnCloseResult)>> = tasks
            .par_iter()
            .map(|&(g, c)| {
                let (s, e) = groups[g];
                let descr = descrs[c].clone();
                let (data, close) = if c == loc_idx {
                    crate::columns::write_chunk(descr, e - s, PAGE_ROWS, |i, prev| {
                        line_after(&self.text, self.start(s + i), prev)
                    })
                } else if self.defs[c].ty == FieldType::String {
                    let codes: Vec<i32> = self.values(c, s..e).map(|v| v as i32).collect();
                    crate::columns::write_dict_chunk(
                        descr,
                        self.dict(c).as_string::<i32>(),
                        &codes,
                        PAGE_ROWS,
                    )
                } else {
                    let values: Vec<i64> = self.values(c, s..e).collect();
                    crate::columns::write_int_chunk(descr, &values, PAGE_ROWS)
                }
                .map_err(perr)?;
                Ok((g, c, data, close))
            })
            .collect();
        let mut by_group: Vec<Vec<Option<(Bytes, ColumnCloseResult)>>> = (0..groups.len())
            .map(|_| (0..ncols).map(|_| None).collect())
            .collect();
        for r in chunks {
            let (g, c, data, close) = r?;
            by_group[g][c] = Some((data, close));
        }
        for group in by_group {
            let mut rg = writer.next_row_group().map_err(perr)?;
            for (data, close) in group.into_iter().flatten() {
                rg.append_column(&data, close).map_err(perr)?;
            }
            rg.close().map_err(perr)?;
        }
        writer.close().map_err(perr)?;
        Ok(out)
    }

    /// The schema of the manifest: the fields, then the location column.
    pub fn schema(&self) -> SchemaRef {
        let mut fields: Vec<ArrowField> = self
            .defs
            .iter()
            .map(|f| {
                let dt = match f.ty {
                    FieldType::String => {
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
                    }
                    FieldType::Int32 => DataType::Int32,
                    FieldType::Int64 => DataType::Int64,
                    FieldType::Date => DataType::Date32,
                };
                ArrowField::new(&f.name, dt, false)
            })
            .collect();
        fields.push(ArrowField::new(
            &self.meta.location_column,
            DataType::Utf8,
            false,
        ));
        Arc::new(Schema::new(fields))
    }

    /// Field `fi` of sorted row `j`: for string fields its position in
    /// [`BuiltManifest::dict`], for dates days since 1970.
    #[inline]
    fn value(&self, fi: usize, j: usize) -> i64 {
        match &self.fields {
            Fields::Packed { layout, dicts } => {
                let w = layout.widths[fi];
                let v = (self.starts[j] >> (32 + layout.shift(fi))) & ((1u64 << w) - 1);
                if dicts[fi].is_some() {
                    v as i64
                } else {
                    (v as i64).wrapping_add(layout.mins[fi])
                }
            }
            Fields::Arrays(arrays) => {
                let a = &arrays[fi];
                match self.defs[fi].ty {
                    FieldType::String => i64::from(a.as_dictionary::<Int32Type>().keys().value(j)),
                    FieldType::Int32 => i64::from(a.as_primitive::<Int32Type>().value(j)),
                    FieldType::Int64 => a.as_primitive::<Int64Type>().value(j),
                    FieldType::Date => i64::from(a.as_primitive::<Date32Type>().value(j)),
                }
            }
        }
    }

    /// [`BuiltManifest::value`] of field `fi` for the sorted rows `rows`.
    fn values(
        &self,
        fi: usize,
        rows: std::ops::Range<usize>,
    ) -> Box<dyn Iterator<Item = i64> + '_> {
        match &self.fields {
            Fields::Packed { layout, dicts } => {
                let shift = 32 + layout.shift(fi);
                let mask = (1u64 << layout.widths[fi]) - 1;
                let lo = if dicts[fi].is_some() {
                    0
                } else {
                    layout.mins[fi]
                };
                Box::new(
                    self.starts[rows]
                        .iter()
                        .map(move |&p| (((p >> shift) & mask) as i64).wrapping_add(lo)),
                )
            }
            Fields::Arrays(_) => Box::new(rows.map(move |j| self.value(fi, j))),
        }
    }

    /// The sorted values of string field `fi` (a `StringArray`).
    fn dict(&self, fi: usize) -> &ArrayRef {
        match &self.fields {
            Fields::Packed { dicts, .. } => {
                dicts[fi].as_ref().expect("string fields have a dictionary")
            }
            Fields::Arrays(arrays) => arrays[fi].as_dictionary::<Int32Type>().values(),
        }
    }

    /// The whole manifest as one Arrow batch, sorted by the fields.
    pub fn batch(&self) -> Result<RecordBatch> {
        let n = self.len();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.defs.len() + 1);
        for (fi, f) in self.defs.iter().enumerate() {
            cols.push(match &self.fields {
                Fields::Arrays(arrays) => arrays[fi].clone(),
                Fields::Packed { .. } => {
                    let dict = (f.ty == FieldType::String).then(|| self.dict(fi));
                    field_array(f.ty, dict, n, |j| self.value(fi, j))?
                }
            });
        }
        let total: usize = (0..self.len()).map(|j| self.location(j).len()).sum();
        if total > i32::MAX as usize {
            return Err(Error::InvalidInput(format!(
                "{total} bytes of locations: more than an Arrow string array holds"
            )));
        }
        let mut offsets: Vec<i32> = Vec::with_capacity(self.len() + 1);
        let mut values: Vec<u8> = Vec::with_capacity(total);
        offsets.push(0);
        for j in 0..self.len() {
            values.extend_from_slice(self.location(j));
            offsets.push(values.len() as i32);
        }
        cols.push(Arc::new(StringArray::try_new(
            arrow::buffer::OffsetBuffer::new(offsets.into()),
            values.into(),
            None,
        )?));
        Ok(RecordBatch::try_new(self.schema(), cols)?)
    }

    /// Where the location of sorted row `j` starts in the paths text.
    #[inline]
    fn start(&self, j: usize) -> usize {
        if matches!(self.fields, Fields::Packed { .. }) {
            (self.starts[j] & u64::from(u32::MAX)) as usize
        } else {
            self.starts[j] as usize
        }
    }

    /// The location of sorted row `j`, as bytes of the paths text.
    fn location(&self, j: usize) -> &[u8] {
        line_at(&self.text, self.start(j))
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_newlines() {
        let text = "a\nbb\nccc\n".repeat(50_000);
        let ch = split_chunks(text.as_bytes(), 7);
        assert!(ch.len() > 1);
        assert_eq!(ch[0].0, 0);
        assert_eq!(ch.last().unwrap().1, text.len());
        for w in ch.windows(2) {
            assert_eq!(w[0].1, w[1].0);
            assert_eq!(text.as_bytes()[w[0].1 - 1], b'\n');
        }
    }
}
