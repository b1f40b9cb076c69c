//! The stack bound of batch-1 inference (`Network::STACK_BOUND_BYTES`) holds: each
//! network's `predict_one` runs on a thread of its own, over stack memory painted
//! with a pattern first; the deepest byte the call overwrote gives its real use.
use std::hint::black_box;

use nn_core::prelude::*;

#[path = "../../no-std-check/src/nets.rs"]
#[allow(dead_code)]
mod nets;
use nets::{DigitsCnn, DigitsMlp};

network! {
    /// A 784-512-512-10 MLP: 7.2 KiB of activations.
    pub struct WideMlp: [784] -> [10] {
        fc1: Dense { units: 512, activation: Relu },
        fc2: Dense { units: 512, activation: Relu },
        logits: Dense { units: 10 },
    }

    /// The CNN of `05_cnn_digits`.
    pub struct ExampleCnn: [1, 8, 8] -> [10] {
        conv1: Conv2d { filters: 16, kernel: 3, padding: Same },
        bn1: BatchNorm2d,
        relu1: Relu,
        conv2: Conv2d { filters: 32, kernel: 3, padding: Same },
        relu2: Relu,
        pool: MaxPool2d { size: 2 },
        flat: Flatten,
        fc1: Dense { units: 64, activation: Relu },
        logits: Dense { units: 10 },
    }

    /// A GRU classifier over 16 steps.
    pub struct Recurrent: [16, 8] -> [4] {
        gru: Gru { units: 32 },
        out: Dense { units: 4, activation: Softmax },
    }

    /// A Transformer encoder layer.
    pub struct Attention: [8, 16] -> [8, 16] {
        enc: TransformerEncoderLayer { heads: 2, ff: 32 },
    }
}

/// Bytes painted below the probe's frame.
const PAINTED: usize = 768 * 1024;
const PATTERN: u8 = 0xA5;

/// The address of a local of a frame called from the caller: everything below it is
/// free once this returns.
#[inline(never)]
fn stack_top() -> usize {
    let marker = 0u8;
    black_box(&marker) as *const u8 as usize
}

#[inline(never)]
fn predict<N: Network>(model: &Model<N>, x: &Tensor<N::Input>) -> f32 {
    let y = model.predict_one(black_box(x));
    y.iter().sum()
}

/// The bytes of stack `predict_one` of `N` overwrote.
fn measured<N: Network + Send>() -> usize {
    std::thread::Builder::new()
        .stack_size(4 * 1024 * 1024)
        .spawn(|| {
            let model = Model::<N>::new(3);
            let mut x = Box::new(Tensor::<N::Input>::zeros());
            for (i, v) in x.iter_mut().enumerate() {
                *v = (i % 7) as f32 * 0.25 % 1.0;
            }
            let top = stack_top();
            let low = top - PAINTED;
            // SAFETY: [low, top - 256) lies in this thread's 4 MiB stack below every live
            // frame (the probe that returned `top` is gone); nothing else uses it.
            unsafe { std::ptr::write_bytes(low as *mut u8, PATTERN, PAINTED - 256) };
            black_box(predict(&model, &x));
            // SAFETY: the same region, read back as bytes.
            let painted = unsafe { std::slice::from_raw_parts(low as *const u8, PAINTED - 256) };
            let untouched = painted.iter().take_while(|&&b| b == PATTERN).count();
            assert!(untouched > 0, "the call used the whole painted region");
            top - (low + untouched)
        })
        .unwrap()
        .join()
        .unwrap()
}

fn check<N: Network + Send>() -> usize {
    let used = measured::<N>();
    println!(
        "{}: stack used {used} bytes, bound {} (activations {}, parameters {})",
        N::NAME,
        N::STACK_BOUND_BYTES,
        N::PEAK_ACTIVATION_BYTES,
        N::PARAM_BYTES
    );
    assert!(used <= N::STACK_BOUND_BYTES, "{}: used {used} > bound {}", N::NAME, N::STACK_BOUND_BYTES);
    // The measurement sees the zeroed scratch and output arrays (the input is on
    // the heap here).
    let arrays = (N::VALUE_SCRATCH + <N::Output as Shape>::LEN) * 4;
    assert!(used >= arrays, "{}: used {used} < {arrays}, the arrays on the stack", N::NAME);
    used
}

#[test]
fn predict_one_stays_within_the_stack_bound() {
    check::<DigitsMlp>();
    check::<DigitsCnn>();
    check::<WideMlp>();
    check::<ExampleCnn>();
    check::<Recurrent>();
    check::<Attention>();
}
