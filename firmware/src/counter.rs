//! Instructions retired, read before and after a piece of work.
//!
//! * RISC-V: the `minstret` CSR, which QEMU with `-icount` counts exactly.
//! * Arm: SysTick, a 24-bit down-counter of the core clock. Under `-icount shift=0`
//!   QEMU's core clock advances one nanosecond per instruction, so one tick is a fixed
//!   number of instructions (40 at the `mps2-an386`'s 25 MHz), measured at start-up on
//!   a loop of known length. A piece of work must take fewer than 2^24 ticks.

/// An instruction counter.
pub struct Counter {
    /// Instructions per count, times 1024 (1024 on RISC-V).
    scale: u64,
    /// Instructions of an empty measurement (the two reads themselves).
    overhead: u64,
}

/// Loop iterations of the calibration: 2 instructions each.
#[cfg(target_arch = "arm")]
const CALIBRATION_LOOPS: u32 = 1 << 20;

impl Counter {
    /// Starts the counter and measures its scale and overhead.
    pub fn new() -> Self {
        start();
        #[cfg(target_arch = "arm")]
        let scale = {
            let before = raw();
            spin(CALIBRATION_LOOPS);
            let ticks = elapsed(before, raw());
            (2 * u64::from(CALIBRATION_LOOPS) * 1024).div_ceil(ticks.max(1))
        };
        #[cfg(not(target_arch = "arm"))]
        let scale = 1024;
        let mut counter = Counter { scale, overhead: 0 };
        let before = counter.read();
        counter.overhead = counter.between(before, counter.read());
        counter
    }

    /// Instructions since start-up (in units of the counter's resolution).
    #[inline(never)]
    pub fn read(&self) -> Instant {
        Instant(raw())
    }

    /// Instructions from `before` to `after`, less the overhead of the two reads.
    pub fn between(&self, before: Instant, after: Instant) -> u64 {
        (elapsed(before.0, after.0) * self.scale / 1024).saturating_sub(self.overhead)
    }

    /// Instructions per count, times 1024.
    pub fn scale(&self) -> u64 {
        self.scale
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

/// A reading of the counter.
#[derive(Clone, Copy, Default)]
pub struct Instant(u64);

/// Counts from reading `before` to reading `after`.
#[inline(always)]
fn elapsed(before: u64, after: u64) -> u64 {
    #[cfg(target_arch = "arm")]
    {
        // SysTick counts down and wraps at 2^24.
        before.wrapping_sub(after) & 0x00ff_ffff
    }
    #[cfg(not(target_arch = "arm"))]
    {
        after.wrapping_sub(before)
    }
}

#[cfg(target_arch = "arm")]
fn start() {
    use cortex_m::peripheral::syst::SystClkSource;
    // SAFETY: nothing else in the firmware uses the core peripherals.
    let mut peripherals = unsafe { cortex_m::Peripherals::steal() };
    peripherals.SYST.set_clock_source(SystClkSource::Core);
    peripherals.SYST.set_reload(0x00ff_ffff);
    peripherals.SYST.clear_current();
    peripherals.SYST.enable_counter();
}

#[cfg(target_arch = "arm")]
#[inline(always)]
fn raw() -> u64 {
    u64::from(cortex_m::peripheral::SYST::get_current())
}

/// `loops` iterations of a two-instruction loop.
#[cfg(target_arch = "arm")]
#[inline(never)]
fn spin(loops: u32) {
    // SAFETY: a register count-down; no memory is touched.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) loops => _,
            options(nomem, nostack),
        );
    }
}

#[cfg(target_arch = "riscv32")]
fn start() {}

#[cfg(target_arch = "riscv32")]
#[inline(always)]
fn raw() -> u64 {
    riscv::register::minstret::read64()
}

#[cfg(not(any(target_arch = "arm", target_arch = "riscv32")))]
fn start() {}

#[cfg(not(any(target_arch = "arm", target_arch = "riscv32")))]
fn raw() -> u64 {
    0
}
