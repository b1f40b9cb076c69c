//! The rules of post-training quantization, following TensorFlow Lite's int8
//! specification as its converter applies it (applied to whole networks by
//! [`quantize_sequential`], and to a stack of Dense layers by [`quantize_dense_stack`]):
//!
//! - weights int8 symmetric per output channel (or, on request, per tensor):
//!   `scale = max|w| / 127`, values in `[-127, 127]`;
//! - biases int32 with scale `input_scale * weight_scale`;
//! - activations int8 asymmetric per tensor, from the minimum and maximum each tensor
//!   reaches over a calibration set (widened to contain 0): `scale = (max - min) / 255`,
//!   zero point `-128 - min / scale` rounded and kept in `[-128, 127]`, in `f32`.
//!
//! Weight scales are derived in `f64` and stored in `f32`; the integer weights and
//! biases are rounded against the `f64` scales (ties away from zero). On the
//! converter's own models this reproduces its weights, biases, weight scales and the
//! input's scale and zero point exactly, and every other scale within a unit in the
//! last place (`tests/fixtures/int8/model_digits_mlp*`, and `model_cnn_batch_norm` with
//! its batch norm folded by [`fold_batch_norm`](super::quantize::fold_batch_norm)).
//! Quantization is preparation: it uses floating point and allocates; the result runs
//! with the integer kernels alone.

use alloc::vec;
use alloc::vec::Vec;

use super::fixed_point::Rounding;
use super::prepare::FusedActivation;
// Defined in `qat`, where the `FakeQuant` layer reaches it without `alloc`.
pub use super::qat::activation_quantization;
pub use super::quantize::quantize_sequential;
use super::quantize::{FloatLayer, QuantizedLayer};
pub use super::sequential::TensorQuantization;
use super::{check_len, fully_connected, FullyConnectedParams, QuantError, QuantizedMultiplier};

/// An f32 Dense layer to quantize: `weight[outputs, inputs]` (PyTorch's `Linear`
/// layout), `bias[outputs]`, and the activation fused after it.
#[derive(Clone, Copy, Debug)]
pub struct FloatDense<'a> {
    /// The weights, row `o` holding output `o`'s.
    pub weight: &'a [f32],
    /// The biases.
    pub bias: &'a [f32],
    /// The number of inputs.
    pub inputs: usize,
    /// The number of outputs.
    pub outputs: usize,
    /// The activation applied to the outputs.
    pub activation: FusedActivation,
}

/// The running minimum and maximum of one tensor over a calibration set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinMax {
    /// The smallest value seen.
    pub min: f32,
    /// The largest value seen.
    pub max: f32,
}

impl Default for MinMax {
    fn default() -> Self {
        MinMax { min: f32::INFINITY, max: f32::NEG_INFINITY }
    }
}

impl MinMax {
    /// Widens the range to cover `values`.
    pub fn update(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// The int8 asymmetric quantization of this range, as [`activation_quantization`].
    pub fn quantization(&self) -> TensorQuantization {
        activation_quantization(self.min, self.max).0
    }
}

/// Whether weights get one scale per output channel (the specification's default for
/// convolutions and the converter's for Dense) or one for the whole tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightGranularity {
    /// One scale per output channel (row of `[outputs, inputs]`).
    #[default]
    PerChannel,
    /// One scale for the tensor.
    PerTensor,
}

/// Quantizes `weight[outputs, ...]` symmetrically (narrow range, `[-127, 127]`) into
/// `q`, one scale per output channel or one in all: writes the `f32` scales into
/// `scales` (`outputs` of them, or 1) and returns them in `f64`.
pub fn quantize_weights(
    weight: &[f32],
    outputs: usize,
    granularity: WeightGranularity,
    q: &mut [i8],
    scales: &mut [f32],
) -> Result<Vec<f64>, QuantError> {
    const OP: &str = "quantize_weights";
    check_len(OP, "quantized weights", weight.len(), q.len())?;
    if outputs == 0 || !weight.len().is_multiple_of(outputs) {
        return Err(QuantError::Geometry { op: OP, reason: "the weights are not whole rows of `outputs`" });
    }
    let groups = match granularity {
        WeightGranularity::PerChannel => outputs,
        WeightGranularity::PerTensor => 1,
    };
    check_len(OP, "scales", groups, scales.len())?;
    let len = weight.len() / groups;
    let mut exact = vec![0.0f64; groups];
    for g in 0..groups {
        let values = &weight[g * len..(g + 1) * len];
        let mut range = MinMax::default();
        range.update(values);
        let bound = (range.min as f64).abs().max((range.max as f64).abs());
        // Symmetric narrow range: [-bound, bound] onto [-127, 127].
        let scale = if bound > 0.0 { 2.0 * bound / 254.0 } else { 1.0 };
        exact[g] = scale;
        scales[g] = scale as f32;
        for (qv, &w) in q[g * len..(g + 1) * len].iter_mut().zip(values) {
            *qv = libm::round(w as f64 / scale).clamp(-127.0, 127.0) as i8;
        }
    }
    Ok(exact)
}

/// Quantizes `bias` to int32 with scale `input_scale * weight_scales[o]` (or the one
/// weight scale for all).
pub fn quantize_bias(bias: &[f32], input_scale: f64, weight_scales: &[f64], q: &mut [i32]) -> Result<(), QuantError> {
    if weight_scales.len() != 1 {
        check_len("quantize_bias", "weight scales", bias.len(), weight_scales.len())?;
    }
    check_len("quantize_bias", "quantized bias", bias.len(), q.len())?;
    for (o, (qv, &b)) in q.iter_mut().zip(bias).enumerate() {
        let scale = input_scale * weight_scales[if weight_scales.len() == 1 { 0 } else { o }];
        *qv =
            if scale > 0.0 { libm::round(b as f64 / scale).clamp(i32::MIN as f64, i32::MAX as f64) as i32 } else { 0 };
    }
    Ok(())
}

/// How activation ranges are taken from the calibration set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum RangeEstimator {
    /// The smallest and largest value seen (the converter's choice).
    #[default]
    MinMax,
    /// The values at this percentile (in `(50, 100]`) from each end, nearest rank:
    /// outliers beyond it saturate instead of stretching the scale.
    Percentile(f32),
}

/// The choices of [`quantize_dense_stack`] and [`quantize_sequential`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QuantizeOptions {
    /// Weight scales per output channel or per tensor.
    pub weights: WeightGranularity,
    /// Activation ranges from the extremes or from a percentile.
    pub activations: RangeEstimator,
    /// The requantization rounding of the kernels.
    pub rounding: Rounding,
}

/// The range from the `percentile`-th smallest to the `percentile`-th largest of
/// `values` (nearest rank), sorting `values`. `MinMax::default()` when empty.
pub fn percentile_range(values: &mut [f32], percentile: f32) -> MinMax {
    if values.is_empty() {
        return MinMax::default();
    }
    values.sort_unstable_by(f32::total_cmp);
    let n = values.len();
    // percentile * n / 100 rather than (percentile / 100) * n: 99 * 100 / 100 is exact.
    let rank = (libm::ceil(percentile.clamp(50.0, 100.0) as f64 * n as f64 / 100.0) as usize).clamp(1, n);
    MinMax { min: values[n - rank], max: values[rank - 1] }
}

/// One quantized Dense layer, ready for [`fully_connected`].
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedDense {
    /// int8 weights `[outputs, inputs]`.
    pub weight: Vec<i8>,
    /// int32 biases.
    pub bias: Vec<i32>,
    /// Each output channel's weight scale, or one for all.
    pub weight_scales: Vec<f32>,
    /// The input's quantization.
    pub input: TensorQuantization,
    /// The output's quantization.
    pub output: TensorQuantization,
    /// Each output channel's requantization, or one for all.
    pub multipliers: Vec<QuantizedMultiplier>,
    /// Offsets and the fused activation's clamp.
    pub params: FullyConnectedParams,
}

impl QuantizedDense {
    /// One sample through the layer, in integers only.
    pub fn forward(&self, input: &[i8], output: &mut [i8]) -> Result<(), QuantError> {
        fully_connected(&self.params, input, &self.weight, Some(&self.bias), &self.multipliers, output)
    }
}

/// Quantizes a stack of Dense layers from `calibration`, `samples` inputs of
/// `layers[0].inputs` values one after another: [`quantize_sequential`] of Dense
/// layers, each returned with its input's and output's quantization.
pub fn quantize_dense_stack(
    layers: &[FloatDense<'_>],
    calibration: &[f32],
    options: &QuantizeOptions,
) -> Result<Vec<QuantizedDense>, QuantError> {
    let float: Vec<FloatLayer<'_>> = layers.iter().map(|&d| FloatLayer::Dense(d)).collect();
    let network = quantize_sequential(&float, calibration, options)?;
    let mut input = network.input;
    let mut quantized = Vec::with_capacity(layers.len());
    for layer in network.layers {
        if let QuantizedLayer::Dense { params, weight, bias, weight_scales, multipliers, output } = layer {
            quantized.push(QuantizedDense { weight, bias, weight_scales, input, output, multipliers, params });
            input = output;
        }
    }
    Ok(quantized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_zero_point_comes_from_the_minimum() {
        // scale 2/255 in f32; -128 + 127.5 = -0.5, rounded away from zero.
        let (q, exact) = activation_quantization(-1.0, 1.0);
        assert_eq!(q, TensorQuantization { scale: 2.0f32 / 255.0, zero_point: -1 });
        assert_eq!(exact, (2.0f32 / 255.0) as f64);
        // A ReLU output [0, 6]: zero at -128. A range without 0 is widened to it.
        assert_eq!(activation_quantization(0.0, 6.0).0.zero_point, -128);
        assert_eq!(activation_quantization(2.0, 6.0).0, activation_quantization(0.0, 6.0).0);
        assert_eq!(activation_quantization(-3.0, -1.0).0.zero_point, 127);
        assert_eq!(MinMax::default().quantization(), TensorQuantization { scale: 1.0, zero_point: -128 });
    }

    #[test]
    fn quantize_rounds_half_away_from_zero_and_saturates() {
        let q = TensorQuantization { scale: 0.5, zero_point: -10 };
        // 1.25 / 0.5 = 2.5 -> 3; -1.25 / 0.5 = -2.5 -> -3.
        assert_eq!(q.quantize(1.25), -7);
        assert_eq!(q.quantize(-1.25), -13);
        assert_eq!(q.quantize(1000.0), 127);
        assert_eq!(q.quantize(-1000.0), -128);
        assert_eq!(q.quantize(f32::NAN), -10);
        assert_eq!(q.dequantize(-7), 1.5);
        assert_eq!(q.dequantize(-128), -59.0);
    }

    #[test]
    fn weights_round_against_their_channel_or_tensor_maximum() {
        let w = [0.5, -1.0, 0.25, 2.0, 0.0, -0.01];
        let (mut q, mut scales) = ([0i8; 6], [0.0f32; 2]);
        let exact = quantize_weights(&w, 2, WeightGranularity::PerChannel, &mut q, &mut scales).unwrap();
        assert_eq!(exact, [1.0 / 127.0, 2.0 / 127.0]);
        // 0.25 * 127 = 31.75 -> 32; -0.01 * 63.5 = -0.635 -> -1.
        assert_eq!(q, [64, -127, 32, 127, 0, -1]);
        let mut b = [0i32; 2];
        quantize_bias(&[0.5, -0.5], 0.5, &exact, &mut b).unwrap();
        assert_eq!(b, [127, -64]); // 0.5 / (0.5 / 127); -0.5 / (1 / 127) = -63.5 -> -64
        assert!(quantize_weights(&w, 4, WeightGranularity::PerChannel, &mut q, &mut [0.0; 4]).is_err());
        // One scale for the tensor: 2 / 127; 0.25 * 63.5 = 15.875 -> 16.
        let mut scale = [0.0f32];
        let exact = quantize_weights(&w, 2, WeightGranularity::PerTensor, &mut q, &mut scale).unwrap();
        assert_eq!(exact, [2.0 / 127.0]);
        assert_eq!(q, [32, -64, 16, 127, 0, -1]);
    }
}

#[cfg(test)]
mod percentile_tests {
    use super::*;

    #[test]
    fn percentile_takes_the_nearest_rank_from_each_end() {
        // 1..=100 shuffled: the 99th percentile is 99 from the top and 2 from the bottom.
        let mut values: Vec<f32> = (1..=100).map(|i| ((i * 37) % 100 + 1) as f32).collect();
        assert_eq!(percentile_range(&mut values, 99.0), MinMax { min: 2.0, max: 99.0 });
        assert_eq!(percentile_range(&mut values, 100.0), MinMax { min: 1.0, max: 100.0 });
        // ceil(0.9 * 5) = 5: the extremes of five values.
        assert_eq!(percentile_range(&mut [5.0, -3.0, 0.0, 1.0, 2.0], 90.0), MinMax { min: -3.0, max: 5.0 });
        assert_eq!(percentile_range(&mut [], 99.0), MinMax::default());
    }

    #[test]
    fn a_percentile_range_ignores_an_outlier_of_the_calibration_set() {
        // One Dense unit y = x; 99 inputs in [0, 0.99] and one at 100.
        let weight = [1.0f32];
        let layer =
            FloatDense { weight: &weight, bias: &[0.0], inputs: 1, outputs: 1, activation: FusedActivation::None };
        let mut calibration: Vec<f32> = (0..99).map(|i| i as f32 / 100.0).collect();
        calibration.push(100.0);
        let min_max = quantize_dense_stack(&[layer], &calibration, &QuantizeOptions::default()).unwrap();
        assert_eq!(min_max[0].input.scale, 100.0f32 / 255.0);
        let options = QuantizeOptions { activations: RangeEstimator::Percentile(99.0), ..QuantizeOptions::default() };
        let clipped = quantize_dense_stack(&[layer], &calibration, &options).unwrap();
        // The 99th value from the top is 0.98.
        assert_eq!(clipped[0].input.scale, 0.98f32 / 255.0);
        assert_eq!(clipped[0].input.zero_point, -128);
    }
}
