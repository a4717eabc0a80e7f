//! A counting global allocator, for the tests that prove a steady state allocates nothing.
//!
//! A test binary installs it once:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;
//! ```
//!
//! and compares [`thread_allocations`] (this thread's count, for code that runs on the test's
//! own thread) or [`process_allocations`] (every thread's, for a pipeline of stage threads)
//! before and after the part that must not allocate. Both counters only grow. Frees are not
//! counted: a steady state that frees must have allocated first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

static PROCESS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting every allocation and reallocation per thread and per process.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

#[inline]
fn note() {
    // `try_with`: the allocator is also called while a thread's locals are being torn down.
    let _ = THREAD.try_with(|c| c.set(c.get() + 1));
    PROCESS.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`. Counting touches only a
// const-initialised thread-local `Cell` and an atomic, neither of which allocates or re-enters
// the allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller upholds `alloc`'s contract for `layout`, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is `System`, with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` and `layout` come from this allocator (`System`); the caller
        // guarantees `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by the calling thread so far (when [`CountingAlloc`] is the global
/// allocator; zero otherwise).
pub fn thread_allocations() -> u64 {
    THREAD.try_with(Cell::get).unwrap_or(0)
}

/// Allocations made by every thread of the process so far.
pub fn process_allocations() -> u64 {
    PROCESS.load(Ordering::Relaxed)
}
