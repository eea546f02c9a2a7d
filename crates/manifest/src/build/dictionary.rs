//! String dictionaries: each chunk numbers its string values in the order
//! they occur; merging gives each string field one sorted dictionary, and
//! each chunk a map from its codes to positions in it.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use hashbrown::HashMap;
use rayon::prelude::*;

use super::lines::{Chunk, Col, StrCol};
use super::par::{par_concat, par_fill};

/// One field over all chunks, in input order.
pub(super) enum MergedCol {
    /// Codes into `dict`, a sorted `StringArray`.
    Str { dict: ArrayRef, codes: Vec<u32> },
    /// Integers, or days since 1970 for dates.
    Num(Vec<i64>),
}

/// A string field's values over all chunks: sorted and unique, and for
/// each chunk the position in `sorted` of each of its codes.
pub(super) struct MergedDict<'a> {
    pub(super) sorted: Vec<&'a str>,
    pub(super) remaps: Vec<Vec<u32>>,
}

/// The merged dictionary of field `fi`; `None` for numeric fields.
pub(super) fn merge_dict<'a>(parsed: &[Chunk<'a>], fi: usize) -> Option<MergedDict<'a>> {
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
pub(super) fn merge_column(
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

/// A sorted dictionary as an Arrow string array.
pub(super) fn dict_array(sorted: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(sorted.iter()))
}
