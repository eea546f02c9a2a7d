//! Path templates: `**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl`.
//!
//! A template is matched against an object key, segment by segment (`/`
//! separates segments):
//!
//! * literal text matches itself (`{{` and `}}` stand for literal braces);
//! * `{name}` or `{name:type}` captures a non-empty part of one segment;
//!   types are `string` (default), `int32`, `int64` and `date` (`YYYY-MM-DD`);
//!   a part that does not parse as the type does not match;
//! * `*` matches any text inside one segment;
//! * `**`, alone in a segment, matches any number of segments (also none).
//!
//! Two captures (or a capture and `*`) must be separated by literal text, so
//! a match is never ambiguous about where one field ends.

use std::collections::HashSet;
use std::fmt;

use crate::error::{Error, Result};

/// The type of a template field, and of its manifest column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// UTF-8 text (dictionary-encoded in the manifest).
    String,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// Calendar date, written `YYYY-MM-DD`.
    Date,
}

impl FieldType {
    /// The name used in templates.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int32 => "int32",
            FieldType::Int64 => "int64",
            FieldType::Date => "date",
        }
    }

    /// Parse a type name as written in a template.
    pub fn from_name(s: &str) -> Option<FieldType> {
        Some(match s {
            "string" | "str" => FieldType::String,
            "int32" | "int" => FieldType::Int32,
            "int64" | "long" => FieldType::Int64,
            "date" => FieldType::Date,
            _ => return None,
        })
    }

    /// Parse a value of this type. Integers and dates are returned as `i64`
    /// (dates as days since 1970-01-01); `None` when the text is not a value
    /// of the type.
    #[inline]
    pub fn parse_num(self, s: &str) -> Option<i64> {
        match self {
            FieldType::String => None,
            FieldType::Int32 => parse_i32(s).map(i64::from),
            FieldType::Int64 => s.parse::<i64>().ok(),
            FieldType::Date => parse_date_days(s).map(i64::from),
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const EPOCH_DAYS_CE: i32 = 719_163;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (the value a `date` field
/// holds); `None` when `s` is not such a date.
///
/// ```
/// use tessera_manifest::parse_date_days;
/// assert_eq!(parse_date_days("1970-01-02"), Some(1));
/// assert_eq!(parse_date_days("2024-02-30"), None);
/// ```
pub fn parse_date_days(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    // The shape is checked before parsing (cheap, and most text that is no
    // date fails it). A date ends in a digit, so there are no trailing
    // blanks for `parse_date` to trim (leading ones the date parser skips
    // either way): the result is that of parsing `s` exactly.
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !b[9].is_ascii_digit() {
        return None;
    }
    let d = tessera_store::units::parse_date(s)?;
    use chrono::Datelike;
    Some(d.num_days_from_ce() - EPOCH_DAYS_CE)
}

/// `YYYY-MM-DD` of a day count since 1970-01-01.
pub fn format_date(days: i32) -> String {
    chrono::NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_CE)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

/// A named, typed field of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Column name.
    pub name: String,
    /// Column type.
    pub ty: FieldType,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Field(usize),
    Star,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Deep,
    Parts(Vec<Part>, Shape),
}

/// A segment's parts in the forms most templates use, matched without
/// searching (see [`Shape::of`]).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// The segment is exactly this text.
    Exact(String),
    /// `prefix`, then a field (`Some`, non-empty) or `*` (`None`), then
    /// `suffix`, which ends the segment.
    Wrapped {
        prefix: String,
        field: Option<usize>,
        suffix: String,
    },
    /// Anything else: matched part by part.
    General,
}

impl Shape {
    fn of(parts: &[Part]) -> Shape {
        let lit = |p: Option<&Part>| match p {
            Some(Part::Lit(l)) => Some(l.clone()),
            _ => None,
        };
        let (prefix, rest) = match lit(parts.first()) {
            Some(l) => (l, &parts[1..]),
            None => (String::new(), parts),
        };
        match rest {
            [] => Shape::Exact(prefix),
            [open, tail @ ..] if tail.len() <= 1 => {
                let field = match open {
                    Part::Field(f) => Some(*f),
                    Part::Star => None,
                    Part::Lit(_) => return Shape::General,
                };
                let suffix = match tail.first() {
                    None => String::new(),
                    p => match lit(p) {
                        Some(l) => l,
                        None => return Shape::General,
                    },
                };
                Shape::Wrapped {
                    prefix,
                    field,
                    suffix,
                }
            }
            _ => Shape::General,
        }
    }
}

/// A parsed template (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    fields: Vec<Field>,
    segs: Vec<Seg>,
    /// `Some(k)` when the template is `**/` followed by k segments without
    /// another `**`: only the last k segments of a key need to be looked at.
    tail_only: Option<usize>,
}

/// Where each field was found in a key: byte ranges, in field order.
pub type Captures = Vec<(usize, usize)>;

/// Reusable working space for [`Template::match_key_into`]; after a match
/// it also holds the parsed value of each numeric field.
#[derive(Debug, Default)]
pub struct MatchScratch {
    segs: Vec<(usize, usize)>,
    nums: Vec<i64>,
    slashes: Vec<usize>,
}

impl MatchScratch {
    /// The value of numeric field `field` (integers, or days since 1970 for
    /// dates) parsed during the last successful match; 0 for string fields.
    pub fn num(&self, field: usize) -> i64 {
        self.nums.get(field).copied().unwrap_or(0)
    }
}

fn template_error(template: &str, pos: usize, message: impl Into<String>) -> Error {
    Error::InvalidTemplate {
        template: template.to_string(),
        position: template[..pos.min(template.len())].chars().count() + 1,
        message: message.into(),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// Parse a template. Errors give the 1-based character position.
    ///
    /// ```
    /// use tessera_manifest::{Template, FieldType};
    /// let t = Template::parse("**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl").unwrap();
    /// assert_eq!(t.fields()[1].ty, FieldType::Int32);
    /// let caps = t.match_key("data/v1/ad/GENE1/model_tissue_45.tl").unwrap();
    /// assert_eq!(caps, vec![(11, 16), (30, 32)]);
    /// assert!(Template::parse("{a:float}").is_err());
    /// ```
    pub fn parse(source: &str) -> Result<Template> {
        if source.trim().is_empty() {
            return Err(template_error(source, 0, "the template is empty"));
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut segs = Vec::new();
        let mut parts: Vec<Part> = Vec::new();
        let bytes = source.as_bytes();
        // A leading slash does not open an empty segment (as in keys: see
        // `match_span`), so `/{a}` is `{a}`.
        let mut i = usize::from(bytes.first() == Some(&b'/'));
        let mut seg_start = i;
        let mut lit = String::new();
        let flush_lit = |lit: &mut String, parts: &mut Vec<Part>| {
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(lit)));
            }
        };
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'/' => {
                    flush_lit(&mut lit, &mut parts);
                    segs.push(Self::finish_segment(
                        source,
                        seg_start,
                        std::mem::take(&mut parts),
                    )?);
                    seg_start = i + 1;
                    i += 1;
                }
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    lit.push('{');
                    i += 2;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    lit.push('}');
                    i += 2;
                }
                b'}' => {
                    return Err(template_error(
                        source,
                        i,
                        "'}' without a matching '{' (write '}}' for a literal brace)",
                    ));
                }
                b'{' => {
                    let close = source[i + 1..]
                        .find(['}', '{', '/'])
                        .map(|j| i + 1 + j)
                        .filter(|&j| bytes[j] == b'}')
                        .ok_or_else(|| {
                            template_error(
                                source,
                                i,
                                "'{' is never closed by '}' (write '{{' for a literal brace)",
                            )
                        })?;
                    let inner = &source[i + 1..close];
                    let (name, ty) = match inner.split_once(':') {
                        Some((n, t)) => {
                            let ty = FieldType::from_name(t.trim()).ok_or_else(|| {
                                template_error(
                                    source,
                                    i + 1 + n.len() + 1,
                                    format!("unknown type '{t}' for field '{n}': use string, int32, int64 or date"),
                                )
                            })?;
                            (n.trim(), ty)
                        }
                        None => (inner.trim(), FieldType::String),
                    };
                    if !valid_name(name) {
                        return Err(template_error(
                            source,
                            i + 1,
                            format!("'{name}' is not a field name: use letters, digits and '_', starting with a letter or '_'"),
                        ));
                    }
                    if fields.iter().any(|f| f.name == name) {
                        return Err(template_error(
                            source,
                            i + 1,
                            format!("field '{name}' appears twice"),
                        ));
                    }
                    flush_lit(&mut lit, &mut parts);
                    if matches!(parts.last(), Some(Part::Field(_) | Part::Star)) {
                        return Err(template_error(
                            source,
                            i,
                            format!("field '{name}' directly follows another field or '*': separate them with literal text"),
                        ));
                    }
                    parts.push(Part::Field(fields.len()));
                    fields.push(Field {
                        name: name.to_string(),
                        ty,
                    });
                    i = close + 1;
                }
                b'*' => {
                    flush_lit(&mut lit, &mut parts);
                    if bytes.get(i + 1) == Some(&b'*') {
                        let seg_end = source[i..].find('/').map(|j| i + j).unwrap_or(source.len());
                        if i != seg_start || seg_end != i + 2 {
                            return Err(template_error(
                                source,
                                i,
                                "'**' must be a whole path segment, as in 'a/**/b'",
                            ));
                        }
                        parts.push(Part::Star);
                        parts.push(Part::Star); // marker, turned into Seg::Deep below
                        i += 2;
                    } else {
                        if matches!(parts.last(), Some(Part::Field(_) | Part::Star)) {
                            return Err(template_error(source, i, "'*' directly follows a field or '*': separate them with literal text"));
                        }
                        parts.push(Part::Star);
                        i += 1;
                    }
                }
                _ => {
                    let ch = source[i..].chars().next().unwrap_or('?');
                    lit.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        flush_lit(&mut lit, &mut parts);
        segs.push(Self::finish_segment(source, seg_start, parts)?);
        if fields.is_empty() {
            return Err(template_error(
                source,
                0,
                "the template has no {field}: name at least one part of the path to extract",
            ));
        }
        let tail_only = match segs.split_first() {
            Some((Seg::Deep, rest))
                if !rest.is_empty() && !rest.iter().any(|s| matches!(s, Seg::Deep)) =>
            {
                Some(rest.len())
            }
            _ => None,
        };
        Ok(Template {
            source: source.to_string(),
            fields,
            segs,
            tail_only,
        })
    }

    fn finish_segment(source: &str, start: usize, parts: Vec<Part>) -> Result<Seg> {
        if parts == [Part::Star, Part::Star] {
            return Ok(Seg::Deep);
        }
        if parts.is_empty() && start > 0 && start < source.len() {
            return Err(template_error(source, start, "empty path segment ('//')"));
        }
        let shape = Shape::of(&parts);
        Ok(Seg::Parts(parts, shape))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The fields, in template order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Match a key; `Some` with the byte range of each field on success.
    pub fn match_key(&self, key: &str) -> Option<Captures> {
        let mut caps = Vec::new();
        let mut scratch = MatchScratch::default();
        self.match_key_into(key, &mut caps, &mut scratch)
            .then_some(caps)
    }

    /// [`Template::match_key`] without allocating: `caps` receives the field
    /// ranges, `scratch` the parsed numeric values ([`MatchScratch::num`]);
    /// both are reused across calls.
    #[inline]
    pub fn match_key_into(
        &self,
        key: &str,
        caps: &mut Captures,
        scratch: &mut MatchScratch,
    ) -> bool {
        self.match_from(key, 0, caps, scratch)
    }

    /// Like [`Template::match_key`] for a line that may be a full URL
    /// (`s3://bucket/key`): the scheme and bucket are skipped; ranges refer to `line`.
    pub fn match_line(&self, line: &str) -> Option<Captures> {
        let mut caps = Vec::new();
        let mut scratch = MatchScratch::default();
        self.match_line_into(line, &mut caps, &mut scratch)
            .then_some(caps)
    }

    /// [`Template::match_line`] without allocating (see [`Template::match_key_into`]).
    #[inline]
    pub fn match_line_into(
        &self,
        line: &str,
        caps: &mut Captures,
        scratch: &mut MatchScratch,
    ) -> bool {
        self.match_from(line, key_offset(line), caps, scratch)
    }

    /// Match the key `text[key_start..]`, finding its slashes first.
    fn match_from(
        &self,
        text: &str,
        key_start: usize,
        caps: &mut Captures,
        scratch: &mut MatchScratch,
    ) -> bool {
        let MatchScratch {
            segs,
            nums,
            slashes,
        } = scratch;
        slashes.clear();
        slashes.extend(
            memchr::memchr_iter(b'/', &text.as_bytes()[key_start..]).map(|p| key_start + p),
        );
        self.match_span(text, key_start, slashes, caps, segs, nums)
    }

    /// Match the key `text[key_start..]` whose slashes (positions in `text`,
    /// ascending) are `slashes`; slashes before `key_start` are ignored.
    /// Ranges in `caps` are positions in `text`. The building block of
    /// manifest builds, which find the slashes of many lines at once.
    #[inline]
    pub(crate) fn match_span(
        &self,
        text: &str,
        key_start: usize,
        slashes: &[usize],
        caps: &mut Captures,
        segs: &mut Vec<(usize, usize)>,
        nums: &mut Vec<i64>,
    ) -> bool {
        // A successful match sets every field (each appears once in the
        // template), so values left from an earlier key are never read.
        if caps.len() != self.fields.len() {
            caps.clear();
            caps.resize(self.fields.len(), (0, 0));
            nums.clear();
            nums.resize(self.fields.len(), 0);
        }
        let end = text.len();
        // A leading slash does not open an empty segment.
        let seg_start = key_start + usize::from(text.as_bytes().get(key_start) == Some(&b'/'));
        // Few slashes precede the key (a URL's `scheme://bucket/`): skip
        // them one by one rather than by binary search.
        let first = slashes
            .iter()
            .position(|&p| p >= seg_start)
            .unwrap_or(slashes.len());
        let sl = &slashes[first..];
        if let Some(k) = self.tail_only {
            // Only the last k segments matter: match them from the right.
            let mut e = end;
            for (i, seg) in self.segs[1..].iter().rev().enumerate() {
                let Seg::Parts(parts, shape) = seg else {
                    unreachable!("tail_only templates have one leading `**`")
                };
                let s = match sl.len().checked_sub(i + 1) {
                    Some(j) => sl[j] + 1,
                    None if i + 1 == k && i == sl.len() => seg_start,
                    None => return false,
                };
                if !self.match_seg(text, parts, shape, s, e, caps, nums) {
                    return false;
                }
                e = s.saturating_sub(1);
            }
            return true;
        }
        segs.clear();
        let mut s = seg_start;
        for &p in sl {
            segs.push((s, p));
            s = p + 1;
        }
        segs.push((s, end));
        self.match_segs(text, &self.segs, segs, caps, nums, &mut None)
    }

    /// Whether a key's match is decided by its last segment once the rest
    /// of the key is known to equal a key that matched: true for templates
    /// without `**`, or with one leading `**` (see [`Template::match_span`]).
    /// Listings repeat all but the last segment on consecutive lines.
    pub(crate) fn last_segment_decides(&self) -> bool {
        self.tail_only.is_some() || !self.segs.iter().any(|s| matches!(s, Seg::Deep))
    }

    /// Per field, whether it lies in the template's last segment.
    pub(crate) fn last_segment_fields(&self) -> Vec<bool> {
        let mut out = vec![false; self.fields.len()];
        if let Some(Seg::Parts(parts, _)) = self.segs.last() {
            for p in parts {
                if let Part::Field(fi) = p {
                    out[*fi] = true;
                }
            }
        }
        out
    }

    /// Match `text[s..e]` as the template's last segment only: the rest of
    /// a key whose other segments equal those of a key that matched (see
    /// [`Template::last_segment_decides`]). Sets the captures and numbers
    /// of the last segment's fields.
    #[inline]
    pub(crate) fn match_last_segment(
        &self,
        text: &str,
        s: usize,
        e: usize,
        caps: &mut Captures,
        nums: &mut [i64],
    ) -> bool {
        match self.segs.last() {
            Some(Seg::Parts(parts, shape)) => self.match_seg(text, parts, shape, s, e, caps, nums),
            _ => false,
        }
    }

    /// Match the key segments `ksegs` against the template segments
    /// `tsegs`. `failed`, once a second `**` is met, remembers the suffix
    /// pairs (by length) that cannot match: whether they match does not
    /// depend on the captures made before them, and without it a template
    /// with several `**` takes time exponential in their number.
    fn match_segs(
        &self,
        key: &str,
        tsegs: &[Seg],
        ksegs: &[(usize, usize)],
        caps: &mut Captures,
        nums: &mut [i64],
        failed: &mut Option<HashSet<(usize, usize)>>,
    ) -> bool {
        let id = (tsegs.len(), ksegs.len());
        if failed.as_ref().is_some_and(|f| f.contains(&id)) {
            return false;
        }
        let ok = match tsegs.split_first() {
            None => ksegs.is_empty(),
            Some((Seg::Deep, rest)) => {
                if rest.is_empty() {
                    return true;
                }
                // Fast path: no further `**`, the rest must match the last segments.
                if !rest.iter().any(|s| matches!(s, Seg::Deep)) {
                    if ksegs.len() < rest.len() {
                        return false;
                    }
                    let tail = &ksegs[ksegs.len() - rest.len()..];
                    return self.match_segs(key, rest, tail, caps, nums, failed);
                }
                failed.get_or_insert_with(HashSet::new);
                (0..=ksegs.len())
                    .any(|skip| self.match_segs(key, rest, &ksegs[skip..], caps, nums, failed))
            }
            Some((Seg::Parts(parts, shape), rest)) => match ksegs.split_first() {
                None => false,
                Some((&(s, e), krest)) => {
                    self.match_seg(key, parts, shape, s, e, caps, nums)
                        && self.match_segs(key, rest, krest, caps, nums, failed)
                }
            },
        };
        if !ok {
            if let Some(f) = failed {
                f.insert(id);
            }
        }
        ok
    }

    /// Match one segment, `key[s..e]`.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn match_seg(
        &self,
        key: &str,
        parts: &[Part],
        shape: &Shape,
        s: usize,
        e: usize,
        caps: &mut Captures,
        nums: &mut [i64],
    ) -> bool {
        let text = &key.as_bytes()[s..e];
        match shape {
            Shape::Exact(l) => eq_short(text, l.as_bytes()),
            Shape::Wrapped {
                prefix,
                field,
                suffix,
            } => {
                let (p, x) = (prefix.len(), suffix.len());
                let min = p + x + usize::from(field.is_some());
                if text.len() < min
                    || !eq_short(&text[..p], prefix.as_bytes())
                    || !eq_short(&text[text.len() - x..], suffix.as_bytes())
                {
                    return false;
                }
                match *field {
                    Some(fi) => self.capture(key, fi, s + p, e - x, caps, nums),
                    None => true,
                }
            }
            Shape::General => self.match_parts(key, parts, s, e, caps, nums),
        }
    }

    /// Take `key[fs..fe]` as field `fi`: non-empty, and parsed when the
    /// field is numeric.
    #[inline]
    fn capture(
        &self,
        key: &str,
        fi: usize,
        fs: usize,
        fe: usize,
        caps: &mut Captures,
        nums: &mut [i64],
    ) -> bool {
        if fe == fs {
            return false;
        }
        let ty = self.fields[fi].ty;
        if ty != FieldType::String {
            match ty.parse_num(&key[fs..fe]) {
                Some(n) => nums[fi] = n,
                None => return false,
            }
        }
        caps[fi] = (fs, fe);
        true
    }

    fn match_parts(
        &self,
        key: &str,
        parts: &[Part],
        s: usize,
        e: usize,
        caps: &mut Captures,
        nums: &mut [i64],
    ) -> bool {
        // Bytes, not `str`: every position here is a character boundary
        // (after ASCII `/` or a literal), and slicing `str` checks it again.
        let text = &key.as_bytes()[s..e];
        match parts.split_first() {
            None => text.is_empty(),
            Some((Part::Lit(l), rest)) => {
                starts_with(text, l.as_bytes())
                    && self.match_parts(key, rest, s + l.len(), e, caps, nums)
            }
            Some((open @ (Part::Field(_) | Part::Star), rest)) => {
                let accept =
                    |caps: &mut Captures, nums: &mut [i64], fs: usize, fe: usize| -> bool {
                        match open {
                            Part::Field(fi) => self.capture(key, *fi, fs, fe, caps, nums),
                            _ => true,
                        }
                    };
                match rest.split_first() {
                    None => accept(caps, nums, s, e),
                    Some((Part::Lit(l), after)) => {
                        // Try every occurrence of the following literal, leftmost first.
                        let min = usize::from(matches!(open, Part::Field(_)));
                        let mut from = s + min;
                        while from <= e {
                            let Some(pos) = find_lit(&key.as_bytes()[from..e], l.as_bytes()) else {
                                return false;
                            };
                            let at = from + pos;
                            if accept(caps, nums, s, at)
                                && self.match_parts(key, after, at + l.len(), e, caps, nums)
                            {
                                return true;
                            }
                            from = at + 1;
                            while from <= e && !key.is_char_boundary(from) {
                                from += 1;
                            }
                        }
                        false
                    }
                    Some(_) => false, // rejected at parse time
                }
            }
        }
    }

    /// Build a key from field values (in field order). `*` renders as `x`
    /// and `**` as nothing (the segment is dropped). Used to test that
    /// rendering and matching are inverse.
    pub fn render(&self, values: &[&str]) -> String {
        let mut out: Vec<String> = Vec::new();
        for seg in &self.segs {
            match seg {
                Seg::Deep => {}
                Seg::Parts(parts, _) => {
                    let mut s = String::new();
                    for p in parts {
                        match p {
                            Part::Lit(l) => s.push_str(l),
                            Part::Field(i) => s.push_str(values[*i]),
                            Part::Star => s.push('x'),
                        }
                    }
                    out.push(s);
                }
            }
        }
        out.join("/")
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Equality of short byte strings without a call to `memcmp` (keys are
/// matched piece by piece, and the pieces are a few bytes long).
#[inline]
pub(crate) fn eq_short(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if n >= 8 {
        let word =
            |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
        let mut i = 0;
        while i + 8 <= n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        // The last, overlapping word covers the tail.
        return word(a, n - 8) == word(b, n - 8);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

#[inline]
fn starts_with(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && eq_short(&text[..prefix.len()], prefix)
}

/// First occurrence of a (short) literal in a (short) segment.
#[inline]
fn find_lit(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last = hay.len().checked_sub(needle.len())?;
    let mut from = 0;
    while from <= last {
        let i = from + hay[from..=last].iter().position(|&b| b == first)?;
        if eq_short(&hay[i + 1..i + needle.len()], rest) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// `s.parse::<i32>()` for the common case of a few ASCII digits (with an
/// optional sign), falling back to the standard parser otherwise.
#[inline]
fn parse_i32(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 9 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0i32, |n, &d| n * 10 + i32::from(d - b'0')));
    }
    s.parse().ok()
}

/// Byte offset where the key starts in a line: after `scheme://authority/`
/// for URLs, 0 for plain keys and paths.
#[inline]
pub fn key_offset(line: &str) -> usize {
    key_offset_with(line, |after| {
        memchr::memchr(b'/', &line.as_bytes()[after..]).map(|j| after + j)
    })
}

/// [`key_offset`] for a line whose slash positions are known (ascending).
#[inline]
pub(crate) fn key_offset_in(line: &str, slashes: &[usize]) -> usize {
    key_offset_with(line, |after| slashes.iter().copied().find(|&p| p >= after))
}

/// [`key_offset`], with `slash_from(i)` giving the first `/` at or after `i`.
#[inline]
fn key_offset_with(line: &str, slash_from: impl FnOnce(usize) -> Option<usize>) -> usize {
    let b = line.as_bytes();
    // A scheme is 1..=16 ASCII letters, digits or '+', followed by "://".
    let Some(colon) = b
        .iter()
        .take(17)
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'+'))
    else {
        return 0;
    };
    if colon == 0 || !starts_with(&b[colon..], b"://") {
        return 0;
    }
    let after = colon + 3;
    if line[..colon].eq_ignore_ascii_case("file") {
        return after;
    }
    match slash_from(after) {
        Some(p) => p + 1,
        None => line.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by fuzzing: a template's leading slash opened an empty segment,
    /// which no key has (a key's leading slash does not), so `/{a}` matched
    /// only keys starting with `//`.
    #[test]
    fn a_leading_slash_opens_no_segment() {
        let t = Template::parse("/data/{x}").unwrap();
        assert_eq!(t.match_key("data/1"), Some(vec![(5, 6)]));
        assert_eq!(t.match_key("/data/1"), Some(vec![(6, 7)]));
        assert_eq!(t.match_key("//}"), None);
        assert_eq!(t.render(&["1"]), "data/1");
        assert_eq!(Template::parse("/{a}").unwrap().match_key("//}"), None);
    }

    /// Several `**`: the first takes as few segments as it can, and a key
    /// with many segments against many `**` matches (or not) at once (found
    /// by fuzzing: the search was exponential in the number of `**`).
    #[test]
    fn several_deep_wildcards() {
        let t = Template::parse("**/a/**/b/{x}").unwrap();
        let key = "q/a/a/r/b/b/1";
        assert_eq!(t.match_key(key), Some(vec![(12, 13)]));
        assert_eq!(t.match_key("q/a/r/s/1"), None);
        let many = ["**"; 40].join("/") + "/z/{x:int32}";
        let t = Template::parse(&many).unwrap();
        let deep = ["y"; 60].join("/");
        assert_eq!(t.match_key(&format!("{deep}/z/7")), Some(vec![(122, 123)]));
        assert_eq!(t.match_key(&format!("{deep}/z/q")), None);
        assert_eq!(t.match_key(&deep), None);
    }

    proptest! {
        /// A segment matched through its shape gives the same answer, the
        /// same capture and the same number as matching it part by part.
        #[test]
        fn shapes_agree_with_part_by_part_matching(
            seg in prop_oneof![
                Just("{f:int32}"), Just("a{f}"), Just("{f}.tl"), Just("a.{f:int64}.a"), Just("a{f}a"),
                Just("*"), Just("a*"), Just("*.tl"), Just("a*a"), Just("ab"), Just("{f:date}"),
            ],
            tokens in proptest::collection::vec(
                prop_oneof![Just("a"), Just(".tl"), Just("1"), Just("."), Just("-"), Just("2020-01-15"), Just("é")],
                0..4,
            ),
        ) {
            let text = tokens.concat();
            let t = Template::parse(&format!("{seg}/x{{g}}")).unwrap();
            let Seg::Parts(parts, shape) = &t.segs[0] else { unreachable!() };
            prop_assert!(!matches!(shape, Shape::General), "{seg} has a shape");
            let n = t.fields.len();
            let (mut c1, mut n1) = (vec![(0, 0); n], vec![0; n]);
            let (mut c2, mut n2) = (vec![(0, 0); n], vec![0; n]);
            let a = t.match_seg(&text, parts, shape, 0, text.len(), &mut c1, &mut n1);
            let b = t.match_parts(&text, parts, 0, text.len(), &mut c2, &mut n2);
            prop_assert_eq!(a, b, "{} on {:?}", seg, text);
            if a {
                prop_assert_eq!(c1, c2);
                prop_assert_eq!(n1, n2);
            }
        }
    }

    #[test]
    fn fast_int_parse_agrees_with_std() {
        for t in [
            "0",
            "7",
            "007",
            "123456789",
            "999999999",
            "1234567890",
            "2147483647",
            "2147483648",
            "-1",
            "+5",
            "",
            "-",
            "12a",
            " 1",
            "1 ",
            "٣",
            "-2147483648",
            "-2147483649",
        ] {
            assert_eq!(parse_i32(t), t.parse::<i32>().ok(), "{t:?}");
        }
    }

    #[test]
    fn short_equality_and_search() {
        for (a, b) in [
            ("", ""),
            ("a", "a"),
            ("abcdefgh", "abcdefgh"),
            ("abcdefghijk", "abcdefghijk"),
        ] {
            assert!(eq_short(a.as_bytes(), b.as_bytes()));
        }
        for (a, b) in [
            ("a", ""),
            ("a", "b"),
            ("abcdefgh", "abcdefgX"),
            ("abcdefghijk", "abcdefghijX"),
            ("Xbcdefghijk", "abcdefghijk"),
        ] {
            assert!(!eq_short(a.as_bytes(), b.as_bytes()));
        }
        assert_eq!(find_lit(b"model_tissue_12.tl", b".tl"), Some(15));
        assert_eq!(find_lit(b"a.t.tl", b".tl"), Some(3));
        assert_eq!(find_lit(b".t", b".tl"), None);
        assert_eq!(find_lit(b"", b"x"), None);
    }

    fn err_pos(t: &str) -> (usize, String) {
        match Template::parse(t).unwrap_err() {
            Error::InvalidTemplate {
                position, message, ..
            } => (position, message),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn parse_errors_have_positions() {
        let (p, m) = err_pos("a/{gene:float}.tl");
        assert_eq!(p, 9, "points at the type");
        assert!(m.contains("unknown type 'float'"), "{m}");
        let (p, m) = err_pos("a/{gene.tl");
        assert_eq!(p, 3);
        assert!(m.contains("never closed"), "{m}");
        let (p, m) = err_pos("a/gene}.tl");
        assert_eq!(p, 7);
        assert!(m.contains("without a matching"), "{m}");
        let (p, m) = err_pos("{a}/{a}");
        assert_eq!(p, 6);
        assert!(m.contains("appears twice"), "{m}");
        assert!(err_pos("{a}{b}").1.contains("separate"));
        assert!(err_pos("x/**y/{a}").1.contains("whole path segment"));
        assert!(err_pos("no/fields").1.contains("no {field}"));
        assert!(err_pos("{1abc}").1.contains("not a field name"));
        assert!(err_pos("").1.contains("empty"));
    }

    #[test]
    fn matches_reference_layout() {
        let t = Template::parse("**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl").unwrap();
        let line = "s3://bucket/root/v1/ad/GENE123/model_tissue_45.tl";
        let c = t.match_line(line).unwrap();
        assert_eq!(&line[c[0].0..c[0].1], "GENE123");
        assert_eq!(&line[c[1].0..c[1].1], "45");
        assert!(t
            .match_line("s3://b/v1/ad/GENE1/model_tissue_abc.tl")
            .is_none());
        assert!(t
            .match_line("s3://b/v1/ad/GENE1/model_tissue_4.txt")
            .is_none());
        assert!(t.match_line("v1/ad/GENE1/model_tissue_4.tl").is_some());
        assert!(t.match_line("v1/ad//model_tissue_4.tl").is_none());
    }

    #[test]
    fn literal_search_backtracks() {
        let t = Template::parse("{a}_{b:int32}.x").unwrap();
        let k = "foo_bar_12.x";
        let c = t.match_key(k).unwrap();
        assert_eq!(&k[c[0].0..c[0].1], "foo_bar");
        assert_eq!(&k[c[1].0..c[1].1], "12");
    }

    #[test]
    fn star_and_deep() {
        let t = Template::parse("data/*/{d:date}/**/{name}.csv").unwrap();
        let k = "data/anything/2024-02-29/x/y/report.csv";
        let c = t.match_key(k).unwrap();
        assert_eq!(&k[c[0].0..c[0].1], "2024-02-29");
        assert_eq!(&k[c[1].0..c[1].1], "report");
        assert!(
            t.match_key("data/a/2023-02-29/r.csv").is_none(),
            "invalid date"
        );
        assert!(
            t.match_key("data/a/2024-02-28/r.csv").is_some(),
            "** matches zero segments"
        );
    }

    #[test]
    fn literal_braces() {
        let t = Template::parse("{{x}}/{a}").unwrap();
        assert!(t.match_key("{x}/v").is_some());
    }

    #[test]
    fn key_offsets() {
        assert_eq!(key_offset("s3://b/k/x"), 7);
        assert_eq!(key_offset("file:///a/b"), 7);
        assert_eq!(key_offset("plain/path"), 0);
        assert_eq!(key_offset("a:b/c"), 0);
        assert_eq!(key_offset("gs://bucket"), 11);
        assert_eq!(find_lit(b"abcabd", b"abd"), Some(3));
        assert_eq!(find_lit(b"ab", b"abc"), None);
        assert_eq!(find_lit(b"xx.tl", b".tl"), Some(2));
    }

    #[test]
    fn tail_only_needs_enough_segments() {
        let t = Template::parse("**/ad/{g}/m_{t:int32}.tl").unwrap();
        assert!(t.match_key("ad/G/m_1.tl").is_some());
        assert!(t.match_key("/ad/G/m_1.tl").is_some());
        assert!(t.match_key("G/m_1.tl").is_none());
        assert!(t.match_key("x/y/ad/G/m_1.tl").is_some());
        assert!(
            t.match_line("s3://ad/G/m_1.tl").is_none(),
            "the bucket is not part of the key"
        );
    }

    #[test]
    fn dates_round_trip() {
        for s in ["1970-01-01", "2024-02-29", "1900-12-31", "2100-06-15"] {
            assert_eq!(format_date(parse_date_days(s).unwrap()), s);
        }
        assert_eq!(parse_date_days("1970-01-02"), Some(1));
        assert!(parse_date_days("2024-13-01").is_none());
        assert!(parse_date_days("24-1-1").is_none());
    }
}
