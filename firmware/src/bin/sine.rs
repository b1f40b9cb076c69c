//! The TinyML "hello world" on a microcontroller: the `Sine` model (dense 16 ReLU,
//! dense 16 ReLU, dense 1; weights baked in from `weights/sine.safetensors`, written by
//! `cargo run --release --example firmware_sine`) at 16 points of `[0, 2 pi)`, each
//! within 0.05 of the sine, with the host build's digest.
//!
//! It prints, through semihosting, its part's line, the instructions and stack of one
//! inference and `result pass` or `result fail`, then exits with status 0 or 1. Its
//! flash and RAM are what `tools/firmware-report` compares with MicroFlow's and
//! TensorFlow Lite Micro's figures for the same model.
#![no_std]
#![no_main]

use nn_core::Network;
use nn_firmware::counter::{Counter, Instant};
use nn_firmware::{stack, BOARD};
use semihosting::println;

#[path = "../../../no-std-check/src/checks.rs"]
#[allow(dead_code)]
mod checks;
#[path = "../../../no-std-check/src/nets.rs"]
#[allow(dead_code)]
mod nets;
#[path = "../../../no-std-check/src/samples.rs"]
#[allow(dead_code)]
mod samples;

use checks::{Part, Probe, Work, EXPECTED};
use nets::Sine;

static SINE_WEIGHTS: [f32; Sine::STATE_LEN] = nn_core::include_weights!(Sine, "weights/sine.safetensors");

/// Counts instructions and stack around every inference.
struct Measure {
    counter: Counter,
    started: Instant,
    frame: usize,
    runs: u64,
    instructions: u64,
    stack: usize,
}

impl Probe for Measure {
    fn begin(&mut self, _: Work) {
        self.frame = stack::paint();
        self.started = self.counter.read();
    }

    fn end(&mut self, _: Work) {
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
    let mut measure =
        Measure { counter: Counter::new(), started: Instant::default(), frame: 0, runs: 0, instructions: 0, stack: 0 };
    let outcome = checks::sine(&SINE_WEIGHTS, &mut measure);
    let lowest = stack::lowest_written();
    let expected = EXPECTED[Part::ALL.len() - 1];
    println!(
        "part sine check {} digest {:016x} host {:016x}",
        if outcome.ok { "ok" } else { "FAILED" },
        outcome.digest.0,
        expected.0
    );
    let bound = Sine::STACK_BOUND_BYTES;
    println!(
        "work SineInference runs {} instructions {} stack {} bound {bound}",
        measure.runs,
        measure.instructions / measure.runs.max(1),
        measure.stack
    );
    println!("board {BOARD} stack high-water {} bytes", high - lowest);
    let passed = outcome.passed() && measure.stack <= bound && 2 * bound <= 3 * measure.stack;
    println!("result {}", if passed { "pass" } else { "fail" });
    nn_firmware::exit(passed)
}
