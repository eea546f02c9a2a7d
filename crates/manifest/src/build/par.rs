//! Filling one vector from many parts in parallel, each part written in
//! place by its own task (no per-part vectors to concatenate afterwards).

use rayon::prelude::*;

/// Concatenate `parts` (holding `n` items in all) through `f(part, item)`,
/// each part written to its place in the output by its own task.
pub(super) fn par_concat<T: Sync, U: Send>(
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
pub(super) fn par_fill<U: Send>(lens: &[usize], f: impl Fn(usize, usize) -> U + Sync) -> Vec<U> {
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
    // SAFETY: the destinations are consecutive slices of the first `n` slots of the spare capacity
    // (`lens` long each, and `n` is their sum), and every task wrote every slot of its slice before
    // `for_each` returned; if `f` panics, the panic leaves through `for_each` and this line is
    // never reached (the written items leak, nothing reads unwritten ones). A destination that
    // skipped a slot, or slices that did not start at slot 0 and tile `..n`, would break this.
    unsafe { out.set_len(n) };
    out
}
