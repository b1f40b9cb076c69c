//! Post-training quantization of a stack of f32 Dense layers, following TensorFlow
//! Lite's int8 specification as its converter applies it:
//!
//! - weights int8 symmetric per output channel: `scale = max|w| / 127`, values in
//!   `[-127, 127]`;
//! - biases int32 with scale `input_scale * weight_scale`;
//! - activations int8 asymmetric per tensor, from the minimum and maximum each tensor
//!   reaches over a calibration set (widened to contain 0): `scale = (max - min) / 255`,
//!   zero point `-128 - min / scale` rounded and kept in `[-128, 127]`.
//!
//! Scales are derived in `f64` and stored in `f32`, as the converter stores them; the
//! integer weights and biases are rounded against the `f64` scales (ties away from
//! zero), as the converter rounds them. Quantization is preparation: it uses floating
//! point and allocates; the result runs with the integer kernels alone.

use alloc::vec;
use alloc::vec::Vec;

use super::fixed_point::Rounding;
use super::prepare::{activation_range, channel_multiplier, FusedActivation};
use super::{check_len, checked_product, fully_connected, FullyConnectedParams, QuantError, QuantizedMultiplier};

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

/// A per-tensor int8 quantization `real = scale * (q - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorQuantization {
    /// The scale, as stored (`f32`).
    pub scale: f32,
    /// The zero point, in `[-128, 127]`.
    pub zero_point: i32,
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

/// The int8 asymmetric quantization of the real range `[min, max]` (widened to
/// contain 0), and its scale in `f64` before it is stored in `f32`.
pub fn activation_quantization(min: f32, max: f32) -> (TensorQuantization, f64) {
    let (qmin, qmax) = (-128.0f64, 127.0f64);
    let rmin = (min as f64).min(0.0);
    let rmax = (max as f64).max(0.0);
    if !(rmax - rmin).is_finite() || (rmax - rmin).abs() < f64::EPSILON {
        return (TensorQuantization { scale: 1.0, zero_point: -128 }, 1.0);
    }
    let scale = (rmax - rmin) / (qmax - qmin);
    // The zero point from whichever end adds the smaller terms.
    let from_min = qmin - rmin / scale;
    let from_max = qmax - rmax / scale;
    let error_min = qmin.abs() + (rmin / scale).abs();
    let error_max = qmax.abs() + (rmax / scale).abs();
    let zero_point = if error_min < error_max { from_min } else { from_max };
    let zero_point = if zero_point < qmin {
        -128
    } else if zero_point > qmax {
        127
    } else {
        libm::round(zero_point) as i32
    };
    (TensorQuantization { scale: scale as f32, zero_point }, scale)
}

/// Quantizes `weight[outputs, inputs]` symmetrically per output channel into `q`,
/// writing each channel's scale (`f32`) into `scales`; returns the `f64` scales.
pub fn quantize_weights_per_channel(
    weight: &[f32],
    outputs: usize,
    q: &mut [i8],
    scales: &mut [f32],
) -> Result<Vec<f64>, QuantError> {
    const OP: &str = "quantize_weights_per_channel";
    check_len(OP, "quantized weights", weight.len(), q.len())?;
    check_len(OP, "scales", outputs, scales.len())?;
    if outputs == 0 || !weight.len().is_multiple_of(outputs) {
        return Err(QuantError::Geometry { op: OP, reason: "the weights are not whole rows of `outputs`" });
    }
    let inputs = weight.len() / outputs;
    let mut exact = vec![0.0f64; outputs];
    for o in 0..outputs {
        let row = &weight[o * inputs..(o + 1) * inputs];
        let mut range = MinMax::default();
        range.update(row);
        let bound = (range.min as f64).abs().max((range.max as f64).abs());
        // Symmetric narrow range: [-bound, bound] onto [-127, 127].
        let scale = if bound > 0.0 { 2.0 * bound / 254.0 } else { 1.0 };
        exact[o] = scale;
        scales[o] = scale as f32;
        for (qv, &w) in q[o * inputs..(o + 1) * inputs].iter_mut().zip(row) {
            *qv = libm::round(w as f64 / scale).clamp(-127.0, 127.0) as i8;
        }
    }
    Ok(exact)
}

/// Quantizes `bias` to int32 with scale `input_scale * weight_scale[o]`.
pub fn quantize_bias(bias: &[f32], input_scale: f64, weight_scales: &[f64], q: &mut [i32]) -> Result<(), QuantError> {
    check_len("quantize_bias", "weight scales", bias.len(), weight_scales.len())?;
    check_len("quantize_bias", "quantized bias", bias.len(), q.len())?;
    for ((qv, &b), &ws) in q.iter_mut().zip(bias).zip(weight_scales) {
        let scale = input_scale * ws;
        *qv =
            if scale > 0.0 { libm::round(b as f64 / scale).clamp(i32::MIN as f64, i32::MAX as f64) as i32 } else { 0 };
    }
    Ok(())
}

/// One quantized Dense layer, ready for [`fully_connected`].
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedDense {
    /// int8 weights `[outputs, inputs]`.
    pub weight: Vec<i8>,
    /// int32 biases.
    pub bias: Vec<i32>,
    /// Each output channel's weight scale.
    pub weight_scales: Vec<f32>,
    /// The input's quantization.
    pub input: TensorQuantization,
    /// The output's quantization.
    pub output: TensorQuantization,
    /// Each output channel's requantization.
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
/// `layers[0].inputs` values one after another: runs the f32 stack over them to find
/// each activation's range, then quantizes weights, biases and activations.
pub fn quantize_dense_stack(
    layers: &[FloatDense<'_>],
    calibration: &[f32],
    rounding: Rounding,
) -> Result<Vec<QuantizedDense>, QuantError> {
    const OP: &str = "quantize_dense_stack";
    let first = layers.first().ok_or(QuantError::Geometry { op: OP, reason: "no layers" })?;
    for (l, layer) in layers.iter().enumerate() {
        check_len(OP, "weight", checked_product(OP, &[layer.outputs, layer.inputs])?, layer.weight.len())?;
        check_len(OP, "bias", layer.outputs, layer.bias.len())?;
        if l > 0 {
            check_len(OP, "inputs", layers[l - 1].outputs, layer.inputs)?;
        }
    }
    if first.inputs == 0 || calibration.is_empty() || !calibration.len().is_multiple_of(first.inputs) {
        return Err(QuantError::Geometry { op: OP, reason: "the calibration set is not whole samples" });
    }
    // Ranges: ranges[0] the input, ranges[l + 1] layer l's output.
    let mut ranges = vec![MinMax::default(); layers.len() + 1];
    for sample in calibration.chunks_exact(first.inputs) {
        ranges[0].update(sample);
        let mut x = sample.to_vec();
        for (l, layer) in layers.iter().enumerate() {
            let y: Vec<f32> = (0..layer.outputs)
                .map(|o| {
                    let row = &layer.weight[o * layer.inputs..(o + 1) * layer.inputs];
                    let z = row.iter().zip(&x).fold(layer.bias[o], |acc, (w, v)| acc + w * v);
                    match layer.activation {
                        FusedActivation::None => z,
                        FusedActivation::Relu => z.max(0.0),
                        FusedActivation::Relu6 => z.clamp(0.0, 6.0),
                    }
                })
                .collect();
            ranges[l + 1].update(&y);
            x = y;
        }
    }
    let mut quantized = Vec::with_capacity(layers.len());
    for (l, layer) in layers.iter().enumerate() {
        let (input, input_scale) = activation_quantization(ranges[l].min, ranges[l].max);
        let (output, _) = activation_quantization(ranges[l + 1].min, ranges[l + 1].max);
        let mut weight = vec![0i8; layer.weight.len()];
        let mut weight_scales = vec![0.0f32; layer.outputs];
        let exact = quantize_weights_per_channel(layer.weight, layer.outputs, &mut weight, &mut weight_scales)?;
        let mut bias = vec![0i32; layer.outputs];
        quantize_bias(layer.bias, input_scale, &exact, &mut bias)?;
        let multipliers =
            weight_scales.iter().map(|&s| channel_multiplier(input.scale, s, output.scale, rounding)).collect();
        let (activation_min, activation_max) = activation_range(layer.activation, output.scale, output.zero_point);
        let params = FullyConnectedParams {
            input_offset: -input.zero_point,
            filter_offset: 0,
            output_offset: output.zero_point,
            activation_min,
            activation_max,
            rounding,
        };
        quantized.push(QuantizedDense { weight, bias, weight_scales, input, output, multipliers, params });
    }
    Ok(quantized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_range_takes_the_zero_point_from_the_max_end() {
        // scale 2/255; from the max end 127 - 127.5 = -0.5, rounded away from zero.
        let (q, exact) = activation_quantization(-1.0, 1.0);
        assert_eq!(exact, 2.0 / 255.0);
        assert_eq!(q, TensorQuantization { scale: (2.0f64 / 255.0) as f32, zero_point: -1 });
        // A ReLU output [0, 6]: zero at -128. A range without 0 is widened to it.
        assert_eq!(activation_quantization(0.0, 6.0).0.zero_point, -128);
        assert_eq!(activation_quantization(2.0, 6.0).0, activation_quantization(0.0, 6.0).0);
        assert_eq!(activation_quantization(-3.0, -1.0).0.zero_point, 127);
        assert_eq!(MinMax::default().quantization(), TensorQuantization { scale: 1.0, zero_point: -128 });
    }

    #[test]
    fn weights_round_per_channel_against_their_own_maximum() {
        let w = [0.5, -1.0, 0.25, 2.0, 0.0, -0.01];
        let (mut q, mut scales) = ([0i8; 6], [0.0f32; 2]);
        let exact = quantize_weights_per_channel(&w, 2, &mut q, &mut scales).unwrap();
        assert_eq!(exact, [1.0 / 127.0, 2.0 / 127.0]);
        // 0.25 * 127 = 31.75 -> 32; -0.01 * 63.5 = -0.635 -> -1.
        assert_eq!(q, [64, -127, 32, 127, 0, -1]);
        let mut b = [0i32; 2];
        quantize_bias(&[0.5, -0.5], 0.5, &exact, &mut b).unwrap();
        assert_eq!(b, [127, -64]); // 0.5 / (0.5 / 127); -0.5 / (1 / 127) = -63.5 -> -64
        assert!(quantize_weights_per_channel(&w, 4, &mut q, &mut [0.0; 4]).is_err());
    }
}
