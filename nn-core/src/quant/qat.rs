//! Quantization-aware training: fake quantization in the forward pass with
//! straight-through gradients, so that a network learns weights and activation ranges
//! that survive int8 (PyTorch's `torch.ao.quantization` QAT, TensorFlow's
//! `tfmot.quantization.keras.quantize_model`).
//!
//! - Activations: a [`FakeQuant`](crate::layers::FakeQuant) layer (`FakeQuant` in
//!   `network!`) quantizes and dequantizes its input per tensor, int8 asymmetric, with
//!   the range observed as an exponential moving average during training;
//!   `model.quantize(..)` then takes the activations it follows from those ranges
//!   rather than from the calibration set.
//! - Weights: [`Fit::fake_quantize_weights`](crate::train::Fit::fake_quantize_weights)
//!   trains float shadow weights while the forward and backward passes see them
//!   quantized int8 symmetric, per output channel or per tensor
//!   ([`WeightFakeQuant`]).
//!
//! The arithmetic is PyTorch's `fake_quantize_per_tensor_affine` and
//! `fake_quantize_per_channel_affine` on the CPU, to the bit
//! (`tests/golden/fake_quant.rs`, fixtures of group `fake_quant` from
//! `tools/fixtures/generate.py`):
//!
//! ```text
//! q    = clamp(nearbyint(x * (1 / scale)) + zero_point, qmin, qmax)   (ties to even)
//! y    = (q - zero_point) * scale
//! dy/dx = 1 where qmin <= nearbyint(x / scale) + zero_point <= qmax, else 0
//! ```
//!
//! The scales and zero points are TensorFlow Lite's, the ones post-training
//! quantization gives the same range ([`activation_quantization`], weights
//! `max|w| / 127` in `[-127, 127]`), so that the int8 network computes what training
//! saw. It rounds ties to even where the int8 quantizer rounds them away from zero;
//! the two differ only for a value exactly halfway between two steps.
//!
//! ```
//! use nn_core::quant::qat::{activation_quantization, fake_quantize};
//!
//! // The range [-1, 3] in int8: scale 4 / 255, zero point round(-128 + 63.75) = -64.
//! let (q, _) = activation_quantization(-1.0, 3.0);
//! assert_eq!(q.zero_point, -64);
//! let (mut y, mut mask) = ([0.0; 3], [0.0; 3]);
//! fake_quantize(&[0.5, 3.0, 5.0], q.scale, q.zero_point, (-128, 127), &mut y, Some(&mut mask));
//! assert_eq!(y[2], y[1]); // 5 saturates at the top of the range
//! assert_eq!(mask, [1.0, 1.0, 0.0]); // and passes no gradient
//! assert!((y[0] - 0.5).abs() <= q.scale / 2.0);
//! ```

use super::sequential::TensorQuantization;

/// The int8 range of activations: asymmetric, `[-128, 127]`.
pub const ACTIVATION_RANGE: (i32, i32) = (-128, 127);
/// The int8 range of weights: symmetric narrow range, `[-127, 127]`.
pub const WEIGHT_RANGE: (i32, i32) = (-127, 127);

/// The int8 asymmetric quantization of the real range `[min, max]` (widened to
/// contain 0), and its scale in `f64` (the stored `f32` scale, widened).
///
/// As TensorFlow Lite's `GetAsymmetricQuantizationParams`, in `f32`:
/// `scale = (max - min) / 255`, zero point `round(-128 - min / scale)` kept in
/// `[-128, 127]`. A range of zero width gets scale 1 and zero point -128.
pub fn activation_quantization(min: f32, max: f32) -> (TensorQuantization, f64) {
    let (qmin, qmax) = (-128.0f32, 127.0f32);
    let rmin = min.min(0.0);
    let rmax = max.max(0.0);
    let scale = (rmax - rmin) / (qmax - qmin);
    if !scale.is_finite() || scale == 0.0 {
        return (TensorQuantization { scale: 1.0, zero_point: -128 }, 1.0);
    }
    let zero_point_from_min = qmin - rmin / scale;
    let zero_point = if zero_point_from_min < qmin {
        -128
    } else if zero_point_from_min > qmax {
        127
    } else {
        libm::roundf(zero_point_from_min) as i32
    };
    (TensorQuantization { scale, zero_point }, scale as f64)
}

/// The symmetric int8 scale of weights whose largest magnitude is `bound`:
/// `bound / 127` (computed in `f64` and stored in `f32`, as the post-training
/// quantizer stores it), 1 for all-zero weights.
pub fn weight_scale(weights: &[f32]) -> f32 {
    let bound = weights.iter().fold(0.0f64, |b, &w| b.max((w as f64).abs()));
    if bound > 0.0 {
        (2.0 * bound / 254.0) as f32
    } else {
        1.0
    }
}

/// Rounds to the nearest integer, ties to even (C's `nearbyint` in the default
/// rounding mode).
#[inline]
fn round_ties_even(v: f32) -> f32 {
    let r = libm::roundf(v);
    if (r - v).abs() == 0.5 && r % 2.0 != 0.0 {
        r - (r - v).signum()
    } else {
        r
    }
}

/// Fake quantization of `x` into `y` with one `scale` and `zero_point` over the integer
/// range `(qmin, qmax)`, as PyTorch's `fake_quantize_per_tensor_affine`; when `mask`
/// is given, writes the straight-through gradient's mask into it: 1 where the value
/// before clamping lies in the range, 0 where it saturated. `y` and `mask` hold at
/// least `x.len()` values.
pub fn fake_quantize(
    x: &[f32],
    scale: f32,
    zero_point: i32,
    (qmin, qmax): (i32, i32),
    y: &mut [f32],
    mask: Option<&mut [f32]>,
) {
    let inv_scale = 1.0f32 / scale;
    let (zero, lo, hi) = (zero_point as f32, qmin as f32, qmax as f32);
    let y = &mut y[..x.len()];
    for (y, &x) in y.iter_mut().zip(x) {
        let q = round_ties_even(x * inv_scale) + zero;
        *y = (q.clamp(lo, hi) - zero) * scale;
    }
    if let Some(mask) = mask {
        for (m, &x) in mask[..x.len()].iter_mut().zip(x) {
            let q = round_ties_even(x * inv_scale) + zero;
            *m = if (lo..=hi).contains(&q) { 1.0 } else { 0.0 };
        }
    }
}

/// Fake quantization of `x`, rows of `x.len() / scales.len()` values (a weight
/// `[outputs, ...]`), each with its own scale and zero point, as PyTorch's
/// `fake_quantize_per_channel_affine` along axis 0; `mask` as [`fake_quantize`].
/// Does nothing when `scales` is empty or its length differs from `zero_points`'.
pub fn fake_quantize_per_channel(
    x: &[f32],
    scales: &[f32],
    zero_points: &[i32],
    range: (i32, i32),
    y: &mut [f32],
    mut mask: Option<&mut [f32]>,
) {
    if scales.is_empty() || scales.len() != zero_points.len() {
        return;
    }
    let row = x.len() / scales.len();
    for (c, (&scale, &zero_point)) in scales.iter().zip(zero_points).enumerate() {
        let at = c * row..(c + 1) * row;
        let mask = mask.as_deref_mut().map(|m| &mut m[at.clone()]);
        fake_quantize(&x[at.clone()], scale, zero_point, range, &mut y[at], mask);
    }
}

/// The observed range of a tensor, `[min, max]`, moved towards each batch's as
/// PyTorch's `MovingAverageMinMaxObserver` (`averaging_constant` = `momentum`):
/// the first batch sets it, then `min += momentum * (batch_min - min)` and likewise
/// for `max`. A range of zero width (`[0, 0]`, the initial value) counts as nothing
/// observed yet. Non-finite values of the batch are ignored.
pub fn observe(range: &mut [f32; 2], batch: &[f32], momentum: f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in batch.iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return;
    }
    if range[0] == range[1] {
        *range = [lo, hi];
    } else {
        range[0] += momentum * (lo - range[0]);
        range[1] += momentum * (hi - range[1]);
    }
}

#[cfg(feature = "alloc")]
pub use weights::WeightFakeQuant;

#[cfg(feature = "alloc")]
mod weights {
    use alloc::vec::Vec;
    use core::ops::Range;

    use super::{fake_quantize, weight_scale, WEIGHT_RANGE};
    use crate::layer::Layer;
    use crate::quant::calibrate::WeightGranularity;

    /// Fake quantization of weight tensors for training: [`WeightFakeQuant::quantize`]
    /// replaces each tensor in the parameter array by its int8 symmetric
    /// quantize-dequantize (per output channel, a row of `[outputs, ...]`, or per
    /// tensor) and keeps the float values aside; [`WeightFakeQuant::restore`] puts
    /// them back. Between the two, the forward and backward passes see the quantized
    /// weights, and their gradients are applied to the float ones: the
    /// straight-through estimator, whose mask is 1 everywhere because a scale of
    /// `max|w| / 127` saturates no weight.
    #[derive(Clone, Debug, Default)]
    pub struct WeightFakeQuant {
        /// Each tensor's range in the parameter array and its row length.
        tensors: Vec<(Range<usize>, usize)>,
        granularity: WeightGranularity,
        /// The float weights while the quantized ones are in place.
        shadow: Vec<f32>,
        quantized: bool,
    }

    impl WeightFakeQuant {
        /// Fake quantization of the tensors at `tensors` (ranges of the parameter
        /// array with the length of their rows: one output channel).
        pub fn new(tensors: Vec<(Range<usize>, usize)>, granularity: WeightGranularity) -> Self {
            WeightFakeQuant { tensors, granularity, shadow: Vec::new(), quantized: false }
        }

        /// Fake quantization of every weight tensor of `layer`: its parameters of two or
        /// more dimensions (Dense weights and convolution filters, not biases), as
        /// `model.quantize` quantizes them.
        pub fn of_weights<L: Layer>(layer: &L, granularity: WeightGranularity) -> Self {
            let mut tensors = Vec::new();
            layer.visit_tensors(None, 0, 0, &mut |t| {
                if t.trainable && t.shape.len() >= 2 {
                    tensors.push((t.offset..t.offset + t.len, t.len / t.shape[0].max(1)));
                }
            });
            Self::new(tensors, granularity)
        }

        /// The tensors quantized, as given to [`WeightFakeQuant::new`].
        pub fn tensors(&self) -> &[(Range<usize>, usize)] {
            &self.tensors
        }

        /// Keeps the float weights and writes their fake quantization in their place.
        /// Ranges beyond `params` are skipped.
        pub fn quantize(&mut self, params: &mut [f32]) {
            if self.quantized {
                return;
            }
            self.shadow.clear();
            for (range, row) in &self.tensors {
                let Some(w) = params.get_mut(range.clone()) else { continue };
                self.shadow.extend_from_slice(w);
                let row = match self.granularity {
                    WeightGranularity::PerChannel => (*row).max(1),
                    WeightGranularity::PerTensor => w.len().max(1),
                };
                for chunk in w.chunks_mut(row) {
                    let scale = weight_scale(chunk);
                    let float: Vec<f32> = chunk.to_vec();
                    fake_quantize(&float, scale, 0, WEIGHT_RANGE, chunk, None);
                }
            }
            self.quantized = true;
        }

        /// Puts the float weights kept by [`WeightFakeQuant::quantize`] back.
        pub fn restore(&mut self, params: &mut [f32]) {
            if !self.quantized {
                return;
            }
            let mut at = 0;
            for (range, _) in &self.tensors {
                let Some(w) = params.get_mut(range.clone()) else { continue };
                w.copy_from_slice(&self.shadow[at..at + w.len()]);
                at += w.len();
            }
            self.quantized = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_round_to_even() {
        let cases = [(0.5, 0.0), (1.5, 2.0), (2.5, 2.0), (-0.5, -0.0), (-1.5, -2.0), (-2.5, -2.0), (2.4, 2.0)];
        for (v, r) in cases {
            assert_eq!(round_ties_even(v), r, "{v}");
        }
    }

    #[test]
    fn the_first_batch_sets_the_range_then_it_moves_by_the_momentum() {
        let mut range = [0.0, 0.0];
        observe(&mut range, &[1.0, -2.0, 3.0], 0.5);
        assert_eq!(range, [-2.0, 3.0]);
        observe(&mut range, &[0.0, 5.0], 0.5);
        assert_eq!(range, [-1.0, 4.0]);
        observe(&mut range, &[f32::NAN], 0.5);
        assert_eq!(range, [-1.0, 4.0]);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn weights_are_quantized_per_row_then_restored() {
        use crate::quant::calibrate::WeightGranularity;
        // Two tensors: [2, 2] at 0..4 and [1, 3] at 5..8; params[4] is a bias.
        let float = [1.0, 0.3, -0.02, 0.5, 9.0, 0.1, 0.2, -0.4];
        let mut params = float;
        let mut fq = WeightFakeQuant::new(vec![(0..4, 2), (5..8, 3)], WeightGranularity::PerChannel);
        fq.quantize(&mut params);
        let step = |bound: f32| (2.0 * bound as f64 / 254.0) as f32;
        assert_eq!(params[0], 127.0 * step(1.0));
        assert_eq!(params[1], 38.0 * step(1.0)); // 0.3 * 127 = 38.1
        assert_eq!(params[2], -5.0 * step(0.5)); // 0.02 * 254 = 5.08
        assert_eq!(params[4], 9.0);
        assert_eq!(params[7], -127.0 * step(0.4));
        fq.restore(&mut params);
        assert_eq!(params, float);
    }
}
