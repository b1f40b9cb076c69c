//! The firmware checks on a microcontroller: the digits MLP and CNN with baked weights
//! on the test images, the GRU and LSTM taggers streamed step by step, and (where the
//! RAM holds its 60 KiB of stack arrays: not the micro:bit's 16 KiB) the MLP trained
//! for 20 Adam steps (`no-std-check/src/checks.rs`, shared with the host checks).
//!
//! It prints, through semihosting, one line per part (its check, its digest and the
//! host build's), one per unit of work (instructions and stack), the stack's
//! high-water mark, and `result pass` or `result fail`; then exits with status 0 when
//! every part passed with the host's digest, 1 otherwise (a panic exits with 101).
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
mod nets;
#[path = "../../../no-std-check/src/samples.rs"]
mod samples;

use checks::{Outcome, Part, Probe, Work, EXPECTED};
use nets::{DigitsCnn, DigitsMlp};

static MLP_WEIGHTS: [f32; DigitsMlp::STATE_LEN] =
    nn_core::include_weights!(DigitsMlp, "../no-std-check/weights/digits_mlp.safetensors");
static CNN_WEIGHTS: [f32; DigitsCnn::STATE_LEN] =
    nn_core::include_weights!(DigitsCnn, "../no-std-check/weights/digits_cnn.safetensors");

/// Whether this board has the RAM for the training check.
const TRAINS: bool = !cfg!(board = "microbit");

/// The units of work measured, in the order reported.
const WORKS: [Work; 5] = [Work::MlpInference, Work::CnnInference, Work::GruStep, Work::LstmStep, Work::TrainingStep];

/// Totals of one kind of work.
#[derive(Clone, Copy, Default)]
struct Totals {
    count: u64,
    instructions: u64,
    /// The most stack below the frame that called `begin`.
    stack: usize,
}

/// Counts instructions and stack around every unit of work.
struct Measure {
    counter: Counter,
    totals: [Totals; 5],
    started: Instant,
    frame: usize,
    lowest: usize,
}

impl Measure {
    fn slot(work: Work) -> usize {
        WORKS.iter().position(|&w| w == work).unwrap_or(0)
    }
}

impl Probe for Measure {
    fn begin(&mut self, _: Work) {
        self.frame = stack::paint();
        self.started = self.counter.read();
    }

    fn end(&mut self, work: Work) {
        let ended = self.counter.read();
        let lowest = stack::lowest_written();
        let totals = &mut self.totals[Self::slot(work)];
        totals.count += 1;
        totals.instructions += self.counter.between(self.started, ended);
        totals.stack = totals.stack.max(self.frame.saturating_sub(lowest));
        self.lowest = self.lowest.min(lowest);
    }
}

/// The stack bound of the network a unit of work runs, where it has one.
fn bound(work: Work) -> Option<usize> {
    match work {
        Work::MlpInference => Some(DigitsMlp::STACK_BOUND_BYTES),
        Work::CnnInference => Some(DigitsCnn::STACK_BOUND_BYTES),
        _ => None,
    }
}

/// Instructions of the two kernels alone, on the first layers' weights: the MLP's
/// dense layer (64 inputs, 32 ReLU units: 2,048 multiply-adds) and the CNN's
/// convolution (8 filters of 3x3 over 8x8 with padding: 4,608), each on the first image.
fn kernels(counter: &Counter) {
    use nn_core::activation::Activation;
    use nn_core::kernels::{conv, dense};
    let x = &samples::SAMPLES[0].0;
    let mut y = [0.0f32; 8 * 64];
    let before = counter.read();
    dense::forward_one::<64>(x, &MLP_WEIGHTS[..2048], Some(&MLP_WEIGHTS[2048..2080]), Activation::Relu, 32, &mut y);
    let dense = counter.between(before, counter.read());
    println!("kernel dense macs 2048 instructions {dense}");
    let g = conv::ConvGeometry {
        channels: 1,
        height: 8,
        width: 8,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        out_height: 8,
        out_width: 8,
    };
    let mut scratch = [0.0f32; conv::scratch_len(9, 64)];
    let before = counter.read();
    conv::forward(&g, 8, x, &CNN_WEIGHTS[..72], Some(&CNN_WEIGHTS[72..80]), &mut y, &mut scratch);
    let conv = counter.between(before, counter.read());
    println!("kernel conv macs 4608 instructions {conv}");
    let before = counter.read();
    conv::im2col(&g, x, 0, 64, &mut scratch);
    let im2col = counter.between(before, counter.read());
    println!("kernel im2col instructions {im2col}");
}

fn report(outcome: &Outcome) -> bool {
    let expected = Part::ALL.iter().position(|&p| p == outcome.part).map_or(0, |i| EXPECTED[i].0);
    println!(
        "part {} check {} digest {:016x} host {:016x}",
        outcome.part.name(),
        if outcome.ok { "ok" } else { "FAILED" },
        outcome.digest.0,
        expected
    );
    outcome.passed()
}

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let (low, high) = stack::bounds();
    println!("board {BOARD} stack {} bytes", high - low);
    let counter = Counter::new();
    println!("counter {} instructions per count / 1024", counter.scale());
    let mut measure =
        Measure { counter, totals: [Totals::default(); 5], started: Instant::default(), frame: 0, lowest: high };
    let mut passed = report(&checks::mlp(&MLP_WEIGHTS, &mut measure));
    passed &= report(&checks::cnn(&CNN_WEIGHTS, &mut measure));
    passed &= report(&checks::gru(&mut measure));
    passed &= report(&checks::lstm(&mut measure));
    if TRAINS {
        passed &= report(&checks::training(&mut measure));
    } else {
        println!("part training skipped (RAM)");
    }
    for (work, totals) in WORKS.iter().zip(&measure.totals) {
        if totals.count == 0 {
            continue;
        }
        let bound = bound(*work).map_or(0, |b| b);
        println!(
            "work {:?} runs {} instructions {} stack {} bound {}",
            work,
            totals.count,
            totals.instructions / totals.count,
            totals.stack,
            bound
        );
        // The bound holds, and is tight: at most 1.5 times the use.
        passed &= bound == 0 || (totals.stack <= bound && 2 * bound <= 3 * totals.stack);
    }
    kernels(&measure.counter);
    println!("stack high-water {} of {} bytes", high - measure.lowest, high - low);
    println!("result {}", if passed { "pass" } else { "fail" });
    nn_firmware::exit(passed)
}
