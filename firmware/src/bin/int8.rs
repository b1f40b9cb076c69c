//! The int8 digits classifiers on a microcontroller: the MLP and CNN of
//! `no-std-check/src/nets.rs` quantized by `cargo run --release --example firmware_int8`,
//! their int8 constants baked in as `static`s (`no-std-check/weights/digits_*_int8.rs`,
//! checked at compile time), run in integers only on the sample images
//! (`no-std-check/src/int8_digits.rs`, shared with the host checks).
//!
//! It prints, through semihosting, one line per network (its check, its digest and the
//! host build's: the same bits), the instructions and stack of one inference of each
//! with the stack bound (`Int8Sequential::stack_bound_bytes`), the int8 constants'
//! bytes against the f32 state's, and `result pass` or `result fail` (fail also if the
//! stack exceeds the bound or the bound is more than 1.5 times the stack); then exits
//! with status 0 or 1. The digits binary measures the f32 networks
//! the same way; `tools/firmware-report` puts the two side by side.
#![no_std]
#![no_main]

use nn_core::Network;
use nn_firmware::counter::{Counter, Instant};
use nn_firmware::{stack, BOARD};
use semihosting::println;

#[path = "../../../no-std-check/src/int8_digits.rs"]
#[allow(dead_code)]
mod int8_digits;
#[path = "../../../no-std-check/src/nets.rs"]
#[allow(dead_code)]
mod nets;
#[path = "../../../no-std-check/src/samples.rs"]
mod samples;

use int8_digits::{cnn, mlp, Int8Probe};
use nets::{DigitsCnn, DigitsMlp};

/// Counts instructions and stack around every inference.
struct Measure {
    counter: Counter,
    started: Instant,
    frame: usize,
    runs: u64,
    instructions: u64,
    stack: usize,
}

impl Measure {
    fn new() -> Self {
        Measure { counter: Counter::new(), started: Instant::default(), frame: 0, runs: 0, instructions: 0, stack: 0 }
    }
}

impl Int8Probe for Measure {
    fn begin(&mut self) {
        self.frame = stack::paint();
        self.started = self.counter.read();
    }

    fn end(&mut self) {
        let ended = self.counter.read();
        self.runs += 1;
        self.instructions += self.counter.between(self.started, ended);
        self.stack = self.stack.max(self.frame.saturating_sub(stack::lowest_written()));
    }
}

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let (_, high) = stack::bounds();
    println!("board {BOARD}");
    let mut passed = true;
    for (network, work, int8_bytes, f32_bytes) in [
        (&mlp::MODEL, "Int8MlpInference", mlp::PARAM_BYTES, DigitsMlp::PARAM_BYTES),
        (&cnn::MODEL, "Int8CnnInference", cnn::PARAM_BYTES, DigitsCnn::PARAM_BYTES),
    ] {
        let mut measure = Measure::new();
        let name = if work == "Int8MlpInference" { "int8-mlp" } else { "int8-cnn" };
        let outcome = int8_digits::check(name, network, &mut measure);
        println!(
            "part {} check {} digest {:016x} host {:016x}",
            outcome.name,
            if outcome.ran && outcome.correct == samples::SAMPLES.len() { "ok" } else { "FAILED" },
            outcome.digest,
            outcome.expected()
        );
        let bound = network.stack_bound_bytes();
        println!(
            "work {work} runs {} instructions {} stack {} bound {bound} bytes {int8_bytes} f32 {f32_bytes}",
            measure.runs,
            measure.instructions / measure.runs.max(1),
            measure.stack
        );
        // The stack bound holds, and is tight: at most 1.5 times the use.
        passed &= outcome.passed() && measure.stack <= bound && 2 * bound <= 3 * measure.stack;
    }
    println!("stack high-water {} bytes", high - stack::lowest_written());
    println!("result {}", if passed { "pass" } else { "fail" });
    nn_firmware::exit(passed)
}
