//! A global allocator wrapper that asks Linux to back large allocations with
//! transparent huge pages.
//!
//! A manifest build over ten million paths touches gigabytes of fresh
//! memory. On virtual machines each 4 KiB page fault costs microseconds, so
//! faulting the memory in can take longer than the work itself. For every
//! allocation of 4 MiB or more, the wrapper calls `madvise(MADV_HUGEPAGE)`
//! before the memory is touched, so the kernel faults it in 2 MiB at a time
//! (when transparent huge pages are in `madvise` or `always` mode; otherwise
//! the advice is ignored and nothing changes).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

/// Allocations at least this large are advised to use huge pages.
const HUGE: usize = 4 << 20;

/// Whether large allocations are advised to use huge pages.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Read `TESSERA_HUGEPAGES` (`0`, `off` or `never` turn the advice off);
/// called once at start, before any large allocation. Where the kernel
/// compacts memory to find huge pages on demand (`defrag` = `madvise`), a
/// fresh process can spend longer waiting for them than it saves.
pub fn configure() {
    if let Ok(v) = std::env::var("TESSERA_HUGEPAGES") {
        let off = matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "never" | "false" | "no"
        );
        ENABLED.store(!off, Ordering::Relaxed);
    }
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Wraps an allocator; see the module documentation.
pub struct HugePages<A>(pub A);

#[cfg(target_os = "linux")]
fn advise(ptr: *mut u8, size: usize) {
    const PAGE: usize = 2 << 20;
    let start = (ptr as usize).div_ceil(PAGE) * PAGE;
    let end = (ptr as usize + size) / PAGE * PAGE;
    if end > start {
        // SAFETY: `start..end` is rounded inwards to whole 2 MiB pages of the `size` bytes at
        // `ptr`, which the wrapped allocator just returned to us, so the advice only concerns
        // memory we own. MADV_HUGEPAGE changes how the kernel backs those pages and never their
        // contents or validity (unlike MADV_DONTNEED or MADV_FREE, which would discard data and
        // must never be used here). Rounding outwards would advise a neighbour's memory.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_ptr: *mut u8, _size: usize) {}

// SAFETY: every call is forwarded to the wrapped allocator unchanged, with the caller's arguments,
// and its result is returned unchanged; the only addition is advice about how to back memory that
// was just allocated, which allocates nothing itself (an allocation here would recurse into the
// allocator). `GlobalAlloc`'s contract therefore holds exactly as far as it holds for `A`.
unsafe impl<A: GlobalAlloc> GlobalAlloc for HugePages<A> {
    // SAFETY: callers uphold `GlobalAlloc::alloc`'s contract, which is passed on
    // to the wrapped allocator unchanged (see the `unsafe impl` above).
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract
        // (non-zero size) for `layout`, which is passed on as it is.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() && layout.size() >= HUGE && enabled() {
            advise(p, layout.size());
        }
        p
    }

    // SAFETY: callers uphold `GlobalAlloc::alloc_zeroed`'s contract, which is passed on
    // to the wrapped allocator unchanged (see the `unsafe impl` above).
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`: the caller's contract for `layout` is
        // passed on unchanged.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() && layout.size() >= HUGE && enabled() {
            advise(p, layout.size());
        }
        p
    }

    // SAFETY: callers uphold `GlobalAlloc::dealloc`'s contract, which is passed on
    // to the wrapped allocator unchanged (see the `unsafe impl` above).
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's
        // contract), and this allocator got every block from `self.0`, so
        // `self.0` is the allocator that must free it.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    // SAFETY: callers uphold `GlobalAlloc::realloc`'s contract, which is passed on
    // to the wrapped allocator unchanged (see the `unsafe impl` above).
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`, `ptr` and `layout` describe a block of
        // `self.0`; the caller guarantees `new_size` is valid for `layout`'s
        // alignment.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() && new_size >= HUGE && enabled() {
            advise(p, new_size);
        }
        p
    }
}
