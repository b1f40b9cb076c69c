//! Board support of the firmware checks: an instruction counter, stack painting and
//! the exit status, over `cortex-m-rt` (Cortex-M4F on `mps2-an386`, Cortex-M0 on
//! `microbit`) or `riscv-rt` (rv32imc on `virt`), with output and exit through
//! semihosting. Instruction counts are exact under QEMU's `-icount shift=0`.
#![no_std]

pub mod counter;
pub mod stack;

/// The board this firmware is built for.
pub const BOARD: &str = if cfg!(board = "mps2-an386") {
    "mps2-an386"
} else if cfg!(board = "microbit") {
    "microbit"
} else if cfg!(board = "virt") {
    "virt"
} else {
    "host"
};

/// Ends the run: exit status 0 (`passed`) or 1, reported to QEMU through semihosting.
pub fn exit(passed: bool) -> ! {
    semihosting::process::exit(if passed { 0 } else { 1 })
}
