//! The global allocator of the `layers` tests: the system allocator, counting the
//! allocations and reallocations that the current thread makes inside
//! [`allocations`]. Counting per thread keeps the count exact while other tests of the
//! same binary run on other threads (the library spawns no threads without the
//! `threading` feature, so a step's allocations are all on the calling thread).
//!
//! Installed once, in `tests/layers/main.rs`: `#[global_allocator] static ALLOCATOR:
//! Counting = Counting;`.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The counting allocator.
pub struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    if ARMED.with(|a| a.get()) {
        COUNT.with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: delegates to the system allocator and only counts calls; the thread locals
// are `const`-initialised without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The number of allocations and reallocations `f` makes on this thread.
pub fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}
