//! Ordering the rows by the fields: the fields are packed into one integer
//! key per row where they fit (sorted group by group by counting when the
//! listing is already ordered by the leading field), and compared column by
//! column where they do not; and finding the rows that repeat their
//! predecessor's fields.

use arrow::array::AsArray;
use rayon::prelude::*;

use crate::error::Result;
use crate::template::{Field, FieldType};

use super::dictionary::{merge_column, MergedCol, MergedDict};
use super::encode::field_array;
use super::lines::{Chunk, Col};
use super::par::{par_concat, par_fill};
use super::{BuiltManifest, Fields, EXAMPLES};

/// How the fields pack into one integer sort key: per field, the bits it
/// takes and the value subtracted first (string fields: their codes).
pub(super) struct KeyLayout {
    pub(super) widths: Vec<u32>,
    pub(super) mins: Vec<i64>,
    /// The bits of all fields.
    pub(super) total: u32,
}

impl KeyLayout {
    pub(super) fn new(parsed: &[Chunk<'_>], dicts: &[Option<MergedDict<'_>>]) -> KeyLayout {
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
    pub(super) fn shift(&self, fi: usize) -> u32 {
        self.widths[fi + 1..].iter().sum()
    }
}

/// Sort when all fields fit 32 bits: each row becomes one `u64`, its key
/// above its line's start, so sorting plain integers sorts the rows (equal
/// keys keep input order) and the sorted keys hold every field value
/// ([`BuiltManifest`] reads them out as needed). Returns the sorted keys
/// and the rows that repeat their predecessor's fields.
pub(super) fn packed_sort(
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
pub(super) struct Duplicates {
    /// How many.
    pub(super) count: u64,
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
    pub(super) fn describe(&self, built: &BuiltManifest) -> Vec<String> {
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

/// Sort when the fields do not fit the packed sort: merge each field's
/// chunks into one column, sort a permutation of the rows, and build one
/// Arrow array per field in sorted order. Returns the fields, where each
/// sorted row's line starts in the text, and the duplicates.
pub(super) fn sort_arrays(
    parsed: &[Chunk<'_>],
    dicts: &[Option<MergedDict<'_>>],
    layout: &KeyLayout,
    fields: &[Field],
    n: usize,
) -> Result<(Fields, Vec<u64>, Duplicates)> {
    let columns: Vec<MergedCol> = (0..fields.len())
        .map(|fi| merge_column(parsed, fi, dicts[fi].as_ref(), n))
        .collect();
    let perm = sort_permutation(&columns, layout, n);
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
    let starts: Vec<u64> = par_concat(&parts, n, |p, &r| (parsed[p].base + r as usize) as u64);
    let starts = perm.par_iter().map(|&i| starts[i as usize]).collect();
    Ok((Fields::Arrays(arrays), starts, dups))
}
