//! The digits CNN of `examples/16_import_onnx.rs`, trained in PyTorch and imported
//! from ONNX by `nn-import` (the generated `examples/imported/digit_cnn.rs`, its
//! weights `examples/data/onnx_digits.safetensors` baked in with `include_weights!`),
//! on 16 test images against the logits onnxruntime computed from the same `.onnx`
//! file (`src/onnx_digits_samples.rs`, from `tools/onnx/firmware_samples.py`).
//!
//! Every logit must be within `1e-4 |e| + 1e-5` of onnxruntime's `e` and every most
//! likely digit the same. It prints, through semihosting, the largest difference, the
//! instructions and stack of one inference and `result pass` or `result fail`, then
//! exits with status 0 or 1. On the micro:bit (16 KiB of RAM) the inference's 27 KiB
//! of stack do not fit: it says so and runs nothing.
#![no_std]
#![no_main]

use nn_core::{Layer, Model, Network, Tensor};
use nn_firmware::counter::Counter;
use nn_firmware::{stack, BOARD};
use semihosting::println;

#[path = "../../../examples/imported/digit_cnn.rs"]
mod digit_cnn;
#[path = "../onnx_digits_samples.rs"]
mod samples;

use digit_cnn::DigitCnn;

static WEIGHTS: [f32; DigitCnn::STATE_LEN] =
    nn_core::include_weights!(DigitCnn, "../examples/data/onnx_digits.safetensors");

/// One inference in a frame of its own (so that the stack painted below the caller's
/// frame holds all of it), on a copy of the input.
#[inline(never)]
fn infer(model: &Model<DigitCnn, &[f32]>, x: &Tensor<<DigitCnn as Layer>::Input>) -> [f32; 10] {
    let x = core::hint::black_box(*x);
    let y = model.predict_one(&x);
    let mut logits = [0.0; 10];
    logits.copy_from_slice(y.as_slice());
    logits
}

/// Whether this board has the RAM for one inference (`DigitCnn::STACK_BOUND_BYTES`).
const FITS: bool = !cfg!(board = "microbit");

fn argmax(values: &[f32]) -> usize {
    (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best })
}

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let (_, high) = stack::bounds();
    if !FITS {
        println!("part onnx_digits skipped (RAM: {} bytes of stack)", DigitCnn::STACK_BOUND_BYTES);
        println!("result pass");
        nn_firmware::exit(true)
    }
    let model = Model::from_static(DigitCnn, &WEIGHTS);
    let counter = Counter::new();
    let (mut within, mut same_digit, mut worst) = (true, true, 0.0f32);
    let (mut instructions, mut stack_used) = (0u64, 0usize);
    for (pixels, expected) in samples::IMAGES.iter().zip(&samples::LOGITS) {
        let Some(x) = Tensor::from_slice(pixels) else { nn_firmware::exit(false) };
        let frame = stack::paint();
        let started = counter.read();
        let logits = infer(&model, &x);
        instructions += counter.between(started, counter.read());
        stack_used = stack_used.max(frame.saturating_sub(stack::lowest_written()));
        for (&a, &e) in logits.iter().zip(expected) {
            let diff = (a - e).abs();
            worst = worst.max(diff);
            within &= diff <= 1e-4 * e.abs() + 1e-5;
        }
        same_digit &= argmax(&logits) == argmax(expected);
    }
    let runs = samples::IMAGES.len() as u64;
    println!(
        "part onnx_digits check {} images {runs} max_abs_diff {worst:e} argmax {}",
        if within && same_digit { "ok" } else { "FAILED" },
        if same_digit { "same" } else { "differs" }
    );
    let bound = DigitCnn::STACK_BOUND_BYTES;
    println!(
        "work OnnxDigitsInference runs {runs} instructions {} stack {stack_used} bound {bound}",
        instructions / runs
    );
    println!("board {BOARD} stack high-water {} bytes", high - stack::lowest_written());
    let passed = within && same_digit && stack_used <= bound;
    println!("result {}", if passed { "pass" } else { "fail" });
    nn_firmware::exit(passed)
}
