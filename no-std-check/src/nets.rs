//! The digits classifiers of the firmware checks, shared (through `#[path]`) by
//! `no-std-check`, `nn-capi`, the example `firmware_digits` that trains them and the
//! tests that compare them. Inputs are the 8x8 UCI digits scaled to `[0, 1]` (pixel
//! value / 16); outputs are 10 logits.
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
