//! Finding line breaks and slashes in a paths text 64 bytes at a time.
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
        // SAFETY: SSE2 is part of the x86_64 baseline; each unaligned load
        // reads 16 of the 64 bytes `bytes` refers to.
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
        fn partial_blocks_pad_with_zeros(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = [0u8; 64];
            buf[..bytes.len()].copy_from_slice(&bytes);
            prop_assert_eq!(partial_block(&bytes), portable(&buf));
        }
    }
}
