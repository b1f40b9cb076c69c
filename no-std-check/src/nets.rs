//! The networks of the firmware checks, shared (through `#[path]`) by `no-std-check`,
//! `nn-capi`, `firmware/`, the examples `firmware_digits` and `firmware_sine` that
//! train them and the tests that compare them. The digits classifiers read the 8x8 UCI
//! digits scaled to `[0, 1]` (pixel value / 16) and give 10 logits; `Sine` is the
//! TinyML "hello world" model.
use nn_core::prelude::*;

network! {
    /// A small MLP: 64 pixels, 32 ReLU units, 10 logits.
    pub struct DigitsMlp: [64] -> [10] {
        hidden: Dense { units: 32, activation: Relu },
        logits: Dense { units: 10 },
    }

    /// A small CNN: 8 filters of 3x3, batch norm, ReLU, 2x2 max pooling, 10 logits.
    pub struct DigitsCnn: [1, 8, 8] -> [10] {
        conv: Conv2d { filters: 8, kernel: 3, padding: Same },
        bn: BatchNorm2d,
        relu: Relu,
        pool: MaxPool2d { size: 2 } => [8, 4, 4],
        flat: Flatten,
        logits: Dense { units: 10 },
    }
}

network! {
    /// The first example of TensorFlow Lite Micro and MicroFlow: `sin(x)` for `x` in
    /// `[0, 2 pi]`, by two layers of 16 ReLU units.
    pub struct Sine: [1] -> [1] {
        fc1: Dense { units: 16, activation: Relu },
        fc2: Dense { units: 16, activation: Relu },
        out: Dense { units: 1 },
    }
}

/// The index of the largest of `scores` (the first one on ties).
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}
