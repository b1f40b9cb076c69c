//! Numeric test helpers shared by the kernel, gradient, loss and optimizer tests:
//! seeded random data, an independent `f64` reference for activations and dense
//! layers, central differences, and tolerance checks that name the worst element.
//!
//! Included with `#[path = "common/gradcheck.rs"] mod gradcheck;` (and by `nn-core`'s
//! kernel tests, `nn-core/src/kernels/tests/mod.rs`, inside the crate, where `nn_core`
//! names the crate itself); not every test binary uses every helper.
#![allow(dead_code)]

use nn_core::{Activation, Rng};

/// `n` floats uniform in `[low, high)`.
pub fn uniform(rng: &mut Rng, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform_in(low, high)).collect()
}

/// Widens to `f64`.
pub fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

/// `sum_i weights[i] * values[i]` in `f64`: a scalar loss with a known, random upstream
/// gradient `weights`.
pub fn weighted_sum(weights: &[f32], values: &[f32]) -> f64 {
    weights.iter().zip(values).map(|(&w, &v)| w as f64 * v as f64).sum()
}

/// The error function to about 1e-13: its Maclaurin series below 3, the continued
/// fraction of `erfc` above.
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 3.0 {
        // erf(a) = 2/sqrt(pi) * sum_n (-1)^n a^(2n+1) / (n! (2n+1))
        let (mut power, mut sum, mut n) = (a, a, 0.0);
        loop {
            n += 1.0;
            power *= -a * a / n;
            let term = power / (2.0 * n + 1.0);
            sum += term;
            if term.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / core::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + (2/2)/(a + (3/2)/(a + ...))))
        let mut fraction = a;
        for k in (1..=80).rev() {
            fraction = a + (k as f64 / 2.0) / fraction;
        }
        1.0 - (-a * a).exp() / core::f64::consts::PI.sqrt() / fraction
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// Every activation, with non-default slopes for the parameterised ones.
pub const ACTIVATIONS: [Activation; 10] = [
    Activation::Identity,
    Activation::Relu,
    Activation::Relu6,
    Activation::LeakyRelu(0.2),
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Gelu,
    Activation::Elu(1.5),
    Activation::Softmax,
    Activation::Abs,
];

/// `f(z)` in `f64`, written from the textbook definitions, for `rows` of `width`.
pub fn activate_f64(activation: Activation, z: &[f64], width: usize) -> Vec<f64> {
    let scalar = |z: f64| match activation {
        Activation::Identity | Activation::Softmax => z,
        Activation::Relu => z.max(0.0),
        Activation::Relu6 => z.clamp(0.0, 6.0),
        Activation::LeakyRelu(alpha) => {
            if z > 0.0 {
                z
            } else {
                alpha as f64 * z
            }
        }
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Tanh => z.tanh(),
        Activation::Gelu => 0.5 * z * (1.0 + erf(z / 2f64.sqrt())),
        Activation::Elu(alpha) => {
            if z > 0.0 {
                z
            } else {
                alpha as f64 * (z.exp() - 1.0)
            }
        }
        Activation::Abs => z.abs(),
    };
    if activation != Activation::Softmax {
        return z.iter().map(|&v| scalar(v)).collect();
    }
    let mut y = Vec::with_capacity(z.len());
    for row in z.chunks(width) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|&v| (v - max).exp()).sum();
        y.extend(row.iter().map(|&v| (v - max).exp() / sum));
    }
    y
}

/// Whether `activation`'s derivative jumps at 0 (ELU's unless `alpha` is 1; ReLU6's
/// also at 6), where a finite difference that straddles the jump is meaningless.
pub fn has_kink(activation: Activation) -> bool {
    matches!(
        activation,
        Activation::Relu | Activation::Relu6 | Activation::LeakyRelu(_) | Activation::Elu(_) | Activation::Abs
    )
}

/// The `f64` reference of a dense layer: `z = x W^T + b` (`weight` `[outputs, inputs]`),
/// returning `(z, f(z))` for the batch `x.len() / inputs`.
pub fn dense_f64(
    x: &[f64],
    weight: &[f64],
    bias: Option<&[f64]>,
    activation: Activation,
    inputs: usize,
    outputs: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut z = Vec::with_capacity(x.len() / inputs * outputs);
    for row in x.chunks(inputs) {
        for o in 0..outputs {
            let dot: f64 = row.iter().zip(&weight[o * inputs..(o + 1) * inputs]).map(|(a, b)| a * b).sum();
            z.push(dot + bias.map_or(0.0, |b| b[o]));
        }
    }
    let y = activate_f64(activation, &z, outputs);
    (z, y)
}

/// Central differences of `f` at `x`:
/// `(f(x + h e_i) - f(x - h e_i)) / ((x_i + h) - (x_i - h))`, the denominator being the
/// step actually taken in `f32`. `f` also returns a pattern (the sides of every kink);
/// where the two sides' patterns differ the difference straddles a kink and the entry
/// is `None`.
pub fn central_differences_f32(x: &[f32], h: f32, mut f: impl FnMut(&[f32]) -> (f64, Vec<bool>)) -> Vec<Option<f64>> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + h;
            let (plus, plus_pattern) = f(&probe);
            let up = probe[i];
            probe[i] = x[i] - h;
            let (minus, minus_pattern) = f(&probe);
            let down = probe[i];
            probe[i] = x[i];
            (plus_pattern == minus_pattern).then(|| (plus - minus) / (up as f64 - down as f64))
        })
        .collect()
}

/// Central differences of an `f64` function, with the kink patterns of
/// [`central_differences_f32`].
pub fn central_differences_f64(x: &[f64], h: f64, mut f: impl FnMut(&[f64]) -> (f64, Vec<bool>)) -> Vec<Option<f64>> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + h;
            let (plus, plus_pattern) = f(&probe);
            probe[i] = x[i] - h;
            let (minus, minus_pattern) = f(&probe);
            probe[i] = x[i];
            (plus_pattern == minus_pattern).then(|| (plus - minus) / (2.0 * h))
        })
        .collect()
}

/// A tolerance: `|actual - expected| <= abs + rel * max(|actual|, |expected|)`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// The absolute part.
    pub abs: f64,
    /// The relative part.
    pub rel: f64,
}

/// Asserts `actual[i]` is within `tol` of `expected[i]` wherever `expected[i]` is
/// `Some`, and that at most `max_skipped` entries are `None`. Reports the worst element.
pub fn assert_close_where(what: &str, actual: &[f32], expected: &[Option<f64>], tol: Tolerance, max_skipped: usize) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let skipped = expected.iter().filter(|e| e.is_none()).count();
    assert!(skipped <= max_skipped, "{what}: {skipped} of {} entries straddle a kink", expected.len());
    // (index, error as a multiple of the tolerance); NaN counts as infinitely wrong.
    let mut worst = (0, 0.0f64);
    for (i, (&a, e)) in actual.iter().zip(expected).enumerate() {
        let Some(e) = *e else { continue };
        let a = a as f64;
        let excess = (a - e).abs() / (tol.abs + tol.rel * a.abs().max(e.abs()));
        let excess = if excess.is_nan() { f64::INFINITY } else { excess };
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    let (i, excess) = worst;
    assert!(
        excess <= 1.0,
        "{what}: element {i} is {} but expected {:?} ({excess:.2}x the tolerance {tol:?})",
        actual[i],
        expected[i],
    );
}

/// Asserts `actual[i]` is within `tol` of `expected[i]` for every `i`.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f64], tol: Tolerance) {
    let expected: Vec<Option<f64>> = expected.iter().copied().map(Some).collect();
    assert_close_where(what, actual, &expected, tol, 0);
}
