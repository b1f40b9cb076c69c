//! Stack high-water marks by painting: the free stack below the current frame is
//! filled with a pattern, and after a piece of work the lowest word that no longer
//! holds it is the deepest the stack went.

/// The pattern painted.
const PATTERN: u32 = 0xA5A5_A5A5;

/// Bytes left unpainted just below the painting frame (its own callees).
const GUARD: usize = 256;

#[cfg(target_arch = "arm")]
extern "C" {
    /// The lowest address of the stack (cortex-m-rt: the end of `.bss`).
    static _stack_end: u32;
    /// The initial stack pointer, its highest address.
    static _stack_start: u32;
}

#[cfg(target_arch = "riscv32")]
extern "C" {
    /// The lowest address of the stack (riscv-rt: the end of the heap).
    static __estack: u32;
    /// The initial stack pointer, its highest address.
    static _stack_start: u32;
}

/// The stack's lowest and highest addresses.
pub fn bounds() -> (usize, usize) {
    // Linker symbols: only their addresses are taken.
    #[cfg(target_arch = "arm")]
    {
        (core::ptr::addr_of!(_stack_end) as usize, core::ptr::addr_of!(_stack_start) as usize)
    }
    #[cfg(target_arch = "riscv32")]
    {
        (core::ptr::addr_of!(__estack) as usize, core::ptr::addr_of!(_stack_start) as usize)
    }
    #[cfg(not(any(target_arch = "arm", target_arch = "riscv32")))]
    (0, 0)
}

/// The address of a local of this function's frame: every frame of the caller's
/// callees lies below the caller's.
#[inline(never)]
pub fn pointer() -> usize {
    let marker = 0u32;
    core::hint::black_box(&marker) as *const u32 as usize
}

/// Paints the free stack, from its lowest address to just below this call's frame;
/// returns the address of this call's frame.
#[inline(never)]
pub fn paint() -> usize {
    let (low, _) = bounds();
    let top = pointer();
    let mut at = low;
    while at + 4 <= top.saturating_sub(GUARD) {
        // SAFETY: `[low, top - GUARD)` is stack below every live frame (no interrupt
        // handler runs in this firmware), word-aligned (the linker aligns `low`).
        unsafe { core::ptr::write_volatile(at as *mut u32, PATTERN) };
        at += 4;
    }
    top
}

/// The lowest address written since the last [`paint`].
#[inline(never)]
pub fn lowest_written() -> usize {
    let (low, high) = bounds();
    let mut at = low;
    // SAFETY: the stack's words, read back; the scan stops at the first written one,
    // below this frame.
    while at < high && unsafe { core::ptr::read_volatile(at as *const u32) } == PATTERN {
        at += 4;
    }
    at
}
