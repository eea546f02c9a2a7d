//! Finding line breaks and slashes in a paths text 64 bytes at a time,
//! and the byte comparisons the location column repeats for every row.
//!
//! A manifest build looks at every byte of its input three ways: where lines
//! end, where key segments end, and whether the text is plain ASCII (then it
//! needs no UTF-8 validation). [`Blocks`] answers all three for a 64-byte
//! block with a few vector instructions, as bit masks; the build then visits
//! only the set bits.

/// Bit masks of one 64-byte block: bit `i` describes byte `i`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Block {
    /// Bytes that are `\n`.
    pub nl: u64,
    /// Bytes that are `/`.
    pub slash: u64,
    /// Bytes that are not ASCII (high bit set).
    pub high: u64,
}

/// The masks of `bytes[..64]`.
#[inline]
pub(crate) fn block(bytes: &[u8; 64]) -> Block {
    #[cfg(target_arch = "x86_64")]
    {
        sse2::block(bytes)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        portable(bytes)
    }
}

/// Byte-by-byte masks: the reference the vector version is tested against,
/// and the version for targets without one.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn portable(bytes: &[u8; 64]) -> Block {
    let mut b = Block::default();
    for (i, &c) in bytes.iter().enumerate() {
        b.nl |= u64::from(c == b'\n') << i;
        b.slash |= u64::from(c == b'/') << i;
        b.high |= u64::from(c >= 0x80) << i;
    }
    b
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };

    use super::Block;

    #[inline]
    pub(super) fn block(bytes: &[u8; 64]) -> Block {
        let mut b = Block::default();
        // SAFETY: the intrinsics need SSE2, which every x86_64 CPU has
        // (this module is compiled for x86_64 only). Each unaligned load
        // reads `bytes[16 * k..16 * k + 16]` for k < 4, inside the 64 bytes
        // `bytes` refers to (its type fixes the length). Taking a slice of
        // unknown length, or a fifth load, would read out of bounds.
        unsafe {
            let nl = _mm_set1_epi8(b'\n' as i8);
            let slash = _mm_set1_epi8(b'/' as i8);
            for k in 0..4 {
                let v = _mm_loadu_si128(bytes.as_ptr().add(16 * k) as *const __m128i);
                let shift = 16 * k;
                b.nl |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u16) << shift;
                b.slash |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, slash)) as u16) << shift;
                b.high |= u64::from(_mm_movemask_epi8(v) as u16) << shift;
            }
        }
        b
    }
}

/// The masks of `bytes` (at most 64 bytes), as if padded with zero bytes.
#[inline]
pub(crate) fn partial_block(bytes: &[u8]) -> Block {
    let mut buf = [0u8; 64];
    buf[..bytes.len()].copy_from_slice(bytes);
    block(&buf)
}

/// Length of the common prefix of `a` and `b`: 16 bytes at a time, then 8,
/// then one. Sorted locations share most of their bytes with the row
/// before, and the manifest writes only the rest.
#[inline]
pub(crate) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    while i + 16 <= n {
        use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8};
        // SAFETY: the intrinsics need SSE2, which every x86_64 CPU has
        // (this loop is compiled for x86_64 only). The loop runs while
        // `i + 16 <= n`, `n` being the length of the shorter slice, so both
        // unaligned loads read 16 bytes inside `a` and `b`. A bound other
        // than the shorter length would read out of bounds.
        let same = unsafe {
            let x = _mm_loadu_si128(a.as_ptr().add(i) as *const __m128i);
            let y = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
            _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) as u32
        };
        if same != 0xffff {
            return i + same.trailing_ones() as usize;
        }
        i += 16;
    }
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let diff = x ^ y;
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Position of the first `\n` in `text`. Looked for eight bytes at a time
/// first: after a location's shared prefix, its line break is a few bytes
/// away.
#[inline]
pub(crate) fn find_newline(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const NLS: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut i = 0;
    while i + 8 <= text.len() && i < 32 {
        let x = u64::from_le_bytes(text[i..i + 8].try_into().expect("8 bytes")) ^ NLS;
        // The lowest byte that is zero (a line break) sets the lowest bit;
        // bits above it may be wrong, those below it are not.
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    memchr::memchr(b'\n', &text[i..]).map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn vector_masks_agree_with_bytes(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'/'), Just(b'\n'), Just(0x80u8), Just(0xffu8), any::<u8>()],
                64,
            )
        ) {
            let b: &[u8; 64] = bytes.as_slice().try_into().unwrap();
            prop_assert_eq!(block(b), portable(b));
        }

        #[test]
        fn common_prefix_agrees_with_bytes(
            a in proptest::collection::vec(prop_oneof![Just(b'a'), any::<u8>()], 0..80),
            b in proptest::collection::vec(prop_oneof![Just(b'a'), any::<u8>()], 0..80),
            shared in 0usize..80,
        ) {
            // `b` starts with up to `shared` bytes of `a`.
            let k = shared.min(a.len());
            let b: Vec<u8> = a[..k].iter().chain(&b).copied().collect();
            let want = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            prop_assert_eq!(common_prefix(&a, &b), want);
        }

        #[test]
        fn newline_search_agrees_with_bytes(
            text in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(0x0bu8), Just(0x8au8), any::<u8>()],
                0..100,
            ),
            clean in 0usize..100,
        ) {
            // Often no line break for a while, so every search stage is used.
            let text: Vec<u8> = text
                .iter()
                .enumerate()
                .map(|(i, &c)| if i < clean && c == b'\n' { b'x' } else { c })
                .collect();
            prop_assert_eq!(find_newline(&text), text.iter().position(|&c| c == b'\n'));
        }

        #[test]
        fn partial_blocks_pad_with_zeros(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = [0u8; 64];
            buf[..bytes.len()].copy_from_slice(&bytes);
            prop_assert_eq!(partial_block(&bytes), portable(&buf));
        }
    }
}
