//! Matching the lines of one chunk of a listing against the template,
//! 64 bytes at a time, into per-chunk columns; and finding a matched line
//! again in the listing.
//!
//! A chunk's lines are read as `str` without a second UTF-8 check: the
//! chunk is checked once, from the first non-ASCII byte on (see
//! [`parse_chunk`]).

use hashbrown::HashMap;

use crate::template::{Captures, FieldType, Template};

use super::EXAMPLES;

/// One field's values in one chunk.
pub(super) enum Col<'a> {
    Str(StrCol<'a>),
    Num(NumCol),
}

/// A numeric field of one chunk: 32-bit fields (`int32`, `date`) take
/// half the memory, which a build touches for every row.
pub(super) enum NumCol {
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
    pub(super) fn get(&self, r: usize) -> i64 {
        match self {
            NumCol::I32(x) => i64::from(x[r]),
            NumCol::I64(x) => x[r],
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            NumCol::I32(x) => x.len(),
            NumCol::I64(x) => x.len(),
        }
    }

    /// The smallest and largest value.
    pub(super) fn range(&self) -> (i64, i64) {
        match self {
            NumCol::I32(x) => crate::columns::bounds(x.iter().map(|&v| i64::from(v))),
            NumCol::I64(x) => crate::columns::bounds(x.iter().copied()),
        }
    }
}

/// A string field of one chunk: its values and a code per row.
pub(super) struct StrCol<'a> {
    map: HashMap<&'a str, u32>,
    /// The distinct values, in the order they first occur.
    pub(super) dict: Vec<&'a str>,
    /// Per row, the position of its value in `dict`.
    pub(super) codes: Vec<u32>,
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
    caps: &Captures,
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

/// The matched lines of one chunk of the listing, column by column.
pub(super) struct Chunk<'a> {
    /// Lines in the chunk (blank ones included), for line numbers.
    pub(super) lines: u64,
    /// Non-blank lines.
    pub(super) read: u64,
    /// Lines that did not match.
    pub(super) skipped: u64,
    /// The first lines that did not match, with their line numbers in
    /// the chunk.
    pub(super) skipped_examples: Vec<(u64, String)>,
    /// Where the chunk starts in the text.
    pub(super) base: usize,
    /// Where each matched line starts, from `base` (its end is found again
    /// when it is written: see [`line_at`]).
    pub(super) starts: Vec<u32>,
    /// Line number (in the chunk) of a matched line starting more than
    /// 4 GiB into the chunk, if any (only after a line of gigabytes).
    pub(super) too_far: Option<u64>,
    /// One column per template field.
    pub(super) cols: Vec<Col<'a>>,
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

/// Chunks of the paths text matched by one task are at most this long (and
/// a line break), so line starts within a chunk fit 32 bits.
const MAX_CHUNK: usize = 1 << 30;

/// Match the lines of `bytes[start..end]`, which ends at a line break
/// or the end of the text. `Err` holds the position of the first byte
/// that is not valid UTF-8.
pub(super) fn parse_chunk<'a>(
    template: &Template,
    bytes: &'a [u8],
    start: usize,
    end: usize,
) -> std::result::Result<Chunk<'a>, usize> {
    let fields = template.fields();
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
    let reuse = template.last_segment_decides();
    let last_fields = template.last_segment_fields();
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
                while line_end > line_start + last + 1 && bytes[line_end - 1].is_ascii_whitespace()
                {
                    line_end -= 1;
                }
                let ls = line_start + p.lead;
                // The line's bytes are valid UTF-8 for the reasons given at the other
                // `from_utf8_unchecked` below. `ls` follows the leading ASCII blanks this line
                // shares with the previous one (equal up to the slash, which comes after them).
                // SAFETY: valid UTF-8 with ends on character boundaries: `ls` as said above, and
                // `line_end` is the line break, the chunk's end, or follows a kept byte before
                // trailing ASCII blanks. Reusing `p.lead` for a line that does not share the
                // previous line's text up to `last` would break this.
                let line: &'a str = unsafe { std::str::from_utf8_unchecked(&bytes[ls..line_end]) };
                chunk.read += 1;
                let seg = last + 1 - p.lead;
                if template.match_last_segment(line, seg, line.len(), &mut caps, &mut nums) {
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
        // Why the line is valid UTF-8: every line of the chunk before the first block with a
        // non-ASCII byte is plain ASCII, and when that block is reached (before any of its line
        // breaks is visited), the rest of the chunk from the start of the current line on is
        // checked to be UTF-8 in the loop below; a line is only taken after its blocks were visited.
        // SAFETY: valid UTF-8 (above), and its ends are character boundaries: it starts at the
        // chunk's start (after a line break, see `split_chunks`) or after a line break, past ASCII
        // blanks, and ends at a line break, the chunk's end, or before ASCII blanks. Taking a line
        // before its blocks' masks are checked, or trimming non-ASCII characters, would break this.
        let line: &'a str = unsafe { std::str::from_utf8_unchecked(&bytes[ls..line_end]) };
        chunk.read += 1;
        let skip = crate::template::key_offset_in(line, &slashes);
        if template.match_span(line, skip, &slashes, &mut caps, &mut segs, &mut nums) {
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

/// The line starting at `start` in the paths text, as it was matched: up
/// to its line break, without trailing blanks or `\r`.
pub(super) fn line_at(text: &[u8], start: usize) -> &[u8] {
    line_after(text, start, &[]).0
}

/// [`line_at`], and the length of the prefix the line shares with `prev`
/// (another line): sorted locations share most of their bytes, and the
/// line break is only looked for after the shared part (`prev` has none).
#[inline]
pub(super) fn line_after<'t>(text: &'t [u8], start: usize, prev: &[u8]) -> (&'t [u8], usize) {
    let rest = &text[start..];
    let p = crate::scan::common_prefix(prev, &rest[..prev.len().min(rest.len())]);
    let tail = &rest[p..];
    let mut end = p + crate::scan::find_newline(tail).unwrap_or(tail.len());
    while end > 0 && rest[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    (&rest[..end], p.min(end))
}

/// Split `text` into about `parts` ranges that end at line breaks.
pub(super) fn split_chunks(bytes: &[u8], parts: usize) -> Vec<(usize, usize)> {
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
