//! Post-training quantization of a sequential f32 network of Dense, Conv2d (with
//! groups, and with a batch norm folded in by [`fold_batch_norm`]), max and average
//! pooling layers, each with its fused ReLU or ReLU6: the calibration set runs through
//! the f32 layers to find the range of every Dense and Conv2d output, then weights,
//! biases and activations are quantized by the rules of [`calibrate`](super::calibrate)
//! (TensorFlow Lite's int8 specification). Pooling keeps its input's quantization, as
//! the specification requires; a flatten is implicit (a Dense layer reads `[C, H, W]`
//! in that order).
//!
//! The result, [`QuantizedSequential`], owns its constants; [`QuantizedSequential::layers`]
//! borrows them as [`Int8Layer`]s for [`Int8Sequential`], and
//! [`QuantizedSequential::rust_source`] writes them as a Rust module of `static`s that
//! a firmware bakes in (checked at compile time).

use alloc::vec;
use alloc::vec::Vec;

use super::calibrate::{
    activation_quantization, percentile_range, quantize_bias, quantize_weights, MinMax, QuantizeOptions,
    RangeEstimator, WeightGranularity,
};
use super::prepare::{activation_range, channel_multiplier, tensor_multiplier, FusedActivation};
use super::sequential::{Int8Layer, Int8Sequential, TensorQuantization};
use super::{
    check_len, checked_product, ConvParams, FullyConnectedParams, PoolParams, QuantError, QuantizedMultiplier,
};
use crate::kernels::conv::{self, ConvGeometry};
use crate::kernels::pool::{self, PoolGeometry};

/// An f32 convolution to quantize: `weight[filters, channels / groups, kh, kw]`,
/// `bias[filters]`, over `[channels, height, width]` samples.
#[derive(Clone, Copy, Debug)]
pub struct FloatConv2d<'a> {
    /// The weights.
    pub weight: &'a [f32],
    /// The biases.
    pub bias: &'a [f32],
    /// Input size, kernel, stride, padding, dilation and output size.
    pub geometry: ConvGeometry,
    /// Output channels.
    pub filters: usize,
    /// Channel groups (1 for a plain convolution, `channels` for a depthwise one).
    pub groups: usize,
    /// The activation applied to the outputs.
    pub activation: FusedActivation,
}

/// One f32 layer of a sequential network to quantize.
#[derive(Clone, Copy, Debug)]
pub enum FloatLayer<'a> {
    /// A Dense layer (its input flattened).
    Dense(super::calibrate::FloatDense<'a>),
    /// A convolution.
    Conv2d(FloatConv2d<'a>),
    /// Max pooling of `channels` planes.
    MaxPool2d {
        /// The pooling of one plane.
        geometry: PoolGeometry,
        /// Planes.
        channels: usize,
    },
    /// Average pooling of `channels` planes (without padding: TensorFlow Lite divides
    /// by the inputs a window covers, this library's f32 layer by the window's size).
    AveragePool2d {
        /// The pooling of one plane.
        geometry: PoolGeometry,
        /// Planes.
        channels: usize,
    },
}

/// Folds an inference-mode batch norm after a convolution (or Dense layer) into its
/// weights and biases, as TensorFlow Lite's converter does before quantizing:
/// `s = gamma / sqrt(var + eps)`, `w'[f] = w[f] * s[f]`, `b'[f] = (b[f] - mean[f]) * s[f] + beta[f]`.
/// `weight` holds whole rows of `bias.len()` output channels.
pub fn fold_batch_norm(
    weight: &mut [f32],
    bias: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> Result<(), QuantError> {
    const OP: &str = "fold_batch_norm";
    let channels = bias.len();
    for (operand, v) in [("gamma", gamma), ("beta", beta), ("running_mean", mean), ("running_var", var)] {
        check_len(OP, operand, channels, v.len())?;
    }
    if channels == 0 || !weight.len().is_multiple_of(channels) {
        return Err(QuantError::Geometry { op: OP, reason: "the weights are not whole rows of the channels" });
    }
    let row = weight.len() / channels;
    for f in 0..channels {
        let s = gamma[f] / libm::sqrtf(var[f] + eps);
        weight[f * row..(f + 1) * row].iter_mut().for_each(|w| *w *= s);
        bias[f] = (bias[f] - mean[f]) * s + beta[f];
    }
    Ok(())
}

/// One quantized layer, owning its constants.
#[derive(Clone, Debug, PartialEq)]
pub enum QuantizedLayer {
    /// A Dense layer.
    Dense {
        /// Offsets and clamp.
        params: FullyConnectedParams,
        /// int8 weights `[outputs, inputs]`.
        weight: Vec<i8>,
        /// int32 biases.
        bias: Vec<i32>,
        /// The weight scales (one per output, or one).
        weight_scales: Vec<f32>,
        /// The requantization (one per output, or one).
        multipliers: Vec<QuantizedMultiplier>,
        /// The output's quantization.
        output: TensorQuantization,
    },
    /// A convolution.
    Conv2d {
        /// Geometry, groups, offsets and clamp.
        params: ConvParams,
        /// int8 weights `[filters, channels / groups, kh, kw]`.
        weight: Vec<i8>,
        /// int32 biases.
        bias: Vec<i32>,
        /// The weight scales (one per filter, or one).
        weight_scales: Vec<f32>,
        /// The requantization (one per filter, or one).
        multipliers: Vec<QuantizedMultiplier>,
        /// The output's quantization.
        output: TensorQuantization,
    },
    /// Max pooling.
    MaxPool2d {
        /// Geometry and clamp.
        params: PoolParams,
        /// Planes.
        channels: usize,
    },
    /// Average pooling.
    AveragePool2d {
        /// Geometry and clamp.
        params: PoolParams,
        /// Planes.
        channels: usize,
    },
}

impl QuantizedLayer {
    /// The layer over borrowed constants.
    pub fn layer(&self) -> Int8Layer<'_> {
        match self {
            QuantizedLayer::Dense { params, weight, bias, multipliers, .. } => Int8Layer::Dense {
                params: *params,
                inputs: weight.len() / bias.len().max(1),
                outputs: bias.len(),
                weight,
                bias,
                multipliers,
            },
            QuantizedLayer::Conv2d { params, weight, bias, multipliers, .. } => {
                Int8Layer::Conv2d { params: *params, weight, bias, multipliers }
            }
            QuantizedLayer::MaxPool2d { params, channels } => {
                Int8Layer::MaxPool2d { params: *params, channels: *channels }
            }
            QuantizedLayer::AveragePool2d { params, channels } => {
                Int8Layer::AveragePool2d { params: *params, channels: *channels }
            }
        }
    }

    /// The weight scales of a Dense or Conv2d layer (empty for pooling).
    pub fn weight_scales(&self) -> &[f32] {
        match self {
            QuantizedLayer::Dense { weight_scales, .. } | QuantizedLayer::Conv2d { weight_scales, .. } => weight_scales,
            _ => &[],
        }
    }
}

/// A quantized sequential network, owning its constants.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedSequential {
    /// The input's quantization.
    pub input: TensorQuantization,
    /// The layers.
    pub layers: Vec<QuantizedLayer>,
}

impl QuantizedSequential {
    /// The layers over borrowed constants, for [`Int8Sequential`].
    pub fn layers(&self) -> Vec<Int8Layer<'_>> {
        self.layers.iter().map(QuantizedLayer::layer).collect()
    }

    /// The quantization of every layer's output (a pooling keeps its input's).
    pub fn outputs(&self) -> Vec<TensorQuantization> {
        let mut current = self.input;
        self.layers
            .iter()
            .map(|layer| {
                if let QuantizedLayer::Dense { output, .. } | QuantizedLayer::Conv2d { output, .. } = layer {
                    current = *output;
                }
                current
            })
            .collect()
    }

    /// The last layer's output quantization.
    pub fn output(&self) -> TensorQuantization {
        self.outputs().last().copied().unwrap_or(self.input)
    }

    /// One int8 sample through the network (allocating its two activation buffers).
    pub fn forward(&self, input: &[i8]) -> Result<Vec<i8>, QuantError> {
        let layers = self.layers();
        let network = Int8Sequential { input: self.input, output: self.output(), layers: &layers };
        let len = network.activation_len();
        let (mut a, mut b) = (vec![0i8; len], vec![0i8; len]);
        Ok(network.forward(input, &mut a, &mut b)?.to_vec())
    }

    /// Quantizes a real sample with the input's quantization and runs it.
    pub fn forward_real(&self, input: &[f32]) -> Result<Vec<i8>, QuantError> {
        let q: Vec<i8> = input.iter().map(|&v| self.input.quantize(v)).collect();
        self.forward(&q)
    }

    /// Bytes of the constants, as [`Int8Sequential::param_bytes`] counts them.
    pub fn param_bytes(&self) -> usize {
        let layers = self.layers();
        Int8Sequential { input: self.input, output: self.output(), layers: &layers }.param_bytes()
    }
}

/// The first rule of the f32 convolution kernel that `g` breaks (as
/// [`ConvGeometry::check`] states them), so that calibration refuses it instead of
/// panicking.
fn conv_geometry_error(g: &ConvGeometry) -> Option<&'static str> {
    if [g.channels, g.height, g.width, g.out_height, g.out_width].contains(&0) {
        return Some("a convolution size is 0");
    }
    for (axis, (input, output)) in [(g.height, g.out_height), (g.width, g.out_width)].into_iter().enumerate() {
        let (kernel, stride, dilation, padding) = (g.kernel[axis], g.stride[axis], g.dilation[axis], g.padding[axis]);
        if kernel == 0 || stride == 0 || dilation == 0 {
            return Some("a convolution kernel, stride or dilation is 0");
        }
        let reach = (output - 1).checked_mul(stride).and_then(|r| r.checked_add((kernel - 1).checked_mul(dilation)?));
        let end =
            input.checked_add(padding).filter(|e| e.checked_add(padding).is_some_and(|v| v <= isize::MAX as usize));
        let (Some(reach), Some(end)) = (reach.and_then(|r| r.checked_add(1)), end) else {
            return Some("a convolution size overflows");
        };
        if reach > end + padding + 1 || end - end.min(reach) >= stride.max(dilation) {
            return Some("a convolution's output size does not follow from its input, kernel, stride and padding");
        }
    }
    None
}

/// The first rule of pooling that `g` breaks: every size and stride at least 1, every
/// window overlapping the input.
fn pool_geometry_error(g: &PoolGeometry) -> Option<&'static str> {
    if [g.height, g.width, g.out_height, g.out_width, g.size[0], g.size[1], g.stride[0], g.stride[1]].contains(&0) {
        return Some("a pooling size or stride is 0");
    }
    for (input, output, stride, padding) in
        [(g.height, g.out_height, g.stride[0], g.padding[0]), (g.width, g.out_width, g.stride[1], g.padding[1])]
    {
        match (output - 1).checked_mul(stride) {
            Some(start) if start < input + padding && padding < input => {}
            _ => return Some("a pooling window lies outside the input"),
        }
    }
    None
}

/// The f32 forward of one layer on one sample (after the checks of
/// [`quantize_sequential`]).
pub(super) fn float_forward(layer: &FloatLayer<'_>, x: &[f32]) -> Vec<f32> {
    let activate = |activation: FusedActivation, v: &mut [f32]| match activation {
        FusedActivation::None => {}
        FusedActivation::Relu => v.iter_mut().for_each(|z| *z = z.max(0.0)),
        FusedActivation::Relu6 => v.iter_mut().for_each(|z| *z = z.clamp(0.0, 6.0)),
    };
    match layer {
        FloatLayer::Dense(d) => {
            let mut y: Vec<f32> = (0..d.outputs)
                .map(|o| {
                    let row = &d.weight[o * d.inputs..(o + 1) * d.inputs];
                    row.iter().zip(x).fold(d.bias[o], |acc, (w, v)| acc + w * v)
                })
                .collect();
            activate(d.activation, &mut y);
            y
        }
        FloatLayer::Conv2d(c) => {
            // One convolution per group, on its slices of channels and filters.
            let g = &c.geometry;
            let group = ConvGeometry { channels: g.channels / c.groups, ..*g };
            let (filters, plane, out_plane) = (c.filters / c.groups, g.height * g.width, g.out_height * g.out_width);
            let patch = group.channels * g.kernel[0] * g.kernel[1];
            let mut y = vec![0.0f32; c.filters * out_plane];
            let mut scratch = vec![0.0f32; conv::scratch_len(patch, out_plane)];
            for k in 0..c.groups {
                conv::forward(
                    &group,
                    filters,
                    &x[k * group.channels * plane..(k + 1) * group.channels * plane],
                    &c.weight[k * filters * patch..(k + 1) * filters * patch],
                    Some(&c.bias[k * filters..(k + 1) * filters]),
                    &mut y[k * filters * out_plane..(k + 1) * filters * out_plane],
                    &mut scratch,
                );
            }
            activate(c.activation, &mut y);
            y
        }
        FloatLayer::MaxPool2d { geometry, channels } | FloatLayer::AveragePool2d { geometry, channels } => {
            let mut y = vec![0.0f32; channels * geometry.out_height * geometry.out_width];
            if matches!(layer, FloatLayer::MaxPool2d { .. }) {
                pool::max_forward(geometry, x, &mut y);
            } else {
                pool::avg_forward(geometry, x, &mut y);
            }
            y
        }
    }
}

/// Values per sample in and out of `layer`, after checking its constants and geometry.
pub(super) fn checked_sizes(layer: &FloatLayer<'_>) -> Result<(usize, usize), QuantError> {
    const OP: &str = "quantize_sequential";
    match layer {
        FloatLayer::Dense(d) => {
            check_len(OP, "Dense weight", checked_product(OP, &[d.outputs, d.inputs])?, d.weight.len())?;
            check_len(OP, "Dense bias", d.outputs, d.bias.len())?;
            Ok((d.inputs, d.outputs))
        }
        FloatLayer::Conv2d(c) => {
            let g = &c.geometry;
            if let Some(reason) = conv_geometry_error(g) {
                return Err(QuantError::Geometry { op: OP, reason });
            }
            if c.groups == 0 || !g.channels.is_multiple_of(c.groups) || !c.filters.is_multiple_of(c.groups) {
                return Err(QuantError::Geometry {
                    op: OP,
                    reason: "channels and filters must be multiples of groups",
                });
            }
            let weights = checked_product(OP, &[c.filters, g.channels / c.groups, g.kernel[0], g.kernel[1]])?;
            check_len(OP, "Conv2d weight", weights, c.weight.len())?;
            check_len(OP, "Conv2d bias", c.filters, c.bias.len())?;
            Ok((
                checked_product(OP, &[g.channels, g.height, g.width])?,
                checked_product(OP, &[c.filters, g.out_height, g.out_width])?,
            ))
        }
        FloatLayer::MaxPool2d { geometry: g, channels } | FloatLayer::AveragePool2d { geometry: g, channels } => {
            if let Some(reason) = pool_geometry_error(g) {
                return Err(QuantError::Geometry { op: OP, reason });
            }
            if matches!(layer, FloatLayer::AveragePool2d { .. }) && g.padding != [0, 0] {
                return Err(QuantError::Geometry {
                    op: OP,
                    reason: "int8 average pooling divides by the inputs a window covers: no padding",
                });
            }
            Ok((
                checked_product(OP, &[*channels, g.height, g.width])?,
                checked_product(OP, &[*channels, g.out_height, g.out_width])?,
            ))
        }
    }
}

/// Quantizes a sequential f32 network from `calibration`, samples of the first layer's
/// input size one after another: runs the f32 layers over them to find the range of
/// the input and of every Dense and Conv2d output (after its fused activation), then
/// quantizes weights, biases and activations as `options` say.
pub fn quantize_sequential(
    layers: &[FloatLayer<'_>],
    calibration: &[f32],
    options: &QuantizeOptions,
) -> Result<QuantizedSequential, QuantError> {
    const OP: &str = "quantize_sequential";
    let activations = options.activations;
    if layers.is_empty() {
        return Err(QuantError::Geometry { op: OP, reason: "no layers" });
    }
    let mut sizes = Vec::with_capacity(layers.len());
    for layer in layers {
        let (inputs, outputs) = checked_sizes(layer)?;
        if let Some(&(_, previous)) = sizes.last() {
            check_len(OP, "layer input", previous, inputs)?;
        }
        sizes.push((inputs, outputs));
    }
    let input_len = sizes[0].0;
    if input_len == 0 || calibration.is_empty() || !calibration.len().is_multiple_of(input_len) {
        return Err(QuantError::Geometry { op: OP, reason: "the calibration set is not whole samples" });
    }
    // ranges[0] the input, ranges[l + 1] layer l's output (pooling's left unused); with
    // a percentile, every value of each tensor is kept until the end.
    let mut ranges = vec![MinMax::default(); layers.len() + 1];
    let keep = matches!(activations, RangeEstimator::Percentile(_));
    let mut seen: Vec<Vec<f32>> = vec![Vec::new(); if keep { layers.len() + 1 } else { 0 }];
    for sample in calibration.chunks_exact(input_len) {
        ranges[0].update(sample);
        if keep {
            seen[0].extend_from_slice(sample);
        }
        let mut x = sample.to_vec();
        for (l, layer) in layers.iter().enumerate() {
            x = float_forward(layer, &x);
            ranges[l + 1].update(&x);
            if keep {
                seen[l + 1].extend_from_slice(&x);
            }
        }
    }
    if let RangeEstimator::Percentile(percentile) = activations {
        for (range, values) in ranges.iter_mut().zip(&mut seen) {
            *range = percentile_range(values, percentile);
        }
    }

    let (input, _) = activation_quantization(ranges[0].min, ranges[0].max);
    let mut current = input;
    let mut quantized = Vec::with_capacity(layers.len());
    for (l, layer) in layers.iter().enumerate() {
        let output = match layer {
            FloatLayer::MaxPool2d { .. } | FloatLayer::AveragePool2d { .. } => current,
            _ => activation_quantization(ranges[l + 1].min, ranges[l + 1].max).0,
        };
        quantized.push(quantize_layer(layer, current, output, options)?);
        current = output;
    }
    Ok(QuantizedSequential { input, layers: quantized })
}

/// Quantizes one f32 layer that reads `input` and writes `output` (a pooling's output
/// is its input's quantization): weights per channel or per tensor, biases with scale
/// `input_scale * weight_scale`, the multipliers and the fused activation's clamp.
pub(super) fn quantize_layer(
    layer: &FloatLayer<'_>,
    input: TensorQuantization,
    output: TensorQuantization,
    options: &QuantizeOptions,
) -> Result<QuantizedLayer, QuantError> {
    let QuantizeOptions { weights: granularity, rounding, .. } = *options;
    let (weight, bias, outputs, activation) = match layer {
        FloatLayer::Dense(d) => (d.weight, d.bias, d.outputs, d.activation),
        FloatLayer::Conv2d(c) => (c.weight, c.bias, c.filters, c.activation),
        FloatLayer::MaxPool2d { geometry, channels } | FloatLayer::AveragePool2d { geometry, channels } => {
            let params = PoolParams { geometry: *geometry, activation_min: -128, activation_max: 127 };
            let channels = *channels;
            return Ok(if matches!(layer, FloatLayer::MaxPool2d { .. }) {
                QuantizedLayer::MaxPool2d { params, channels }
            } else {
                QuantizedLayer::AveragePool2d { params, channels }
            });
        }
    };
    let mut q = vec![0i8; weight.len()];
    let mut weight_scales = vec![0.0f32; if granularity == WeightGranularity::PerChannel { outputs } else { 1 }];
    let exact = quantize_weights(weight, outputs, granularity, &mut q, &mut weight_scales)?;
    let mut qb = vec![0i32; outputs];
    quantize_bias(bias, input.scale as f64, &exact, &mut qb)?;
    // TensorFlow Lite Micro multiplies a fully connected layer's per-tensor weight
    // scale by the input scale in f32 first; every other product in f64.
    let multipliers = match (granularity, layer) {
        (WeightGranularity::PerTensor, FloatLayer::Dense(_)) => {
            vec![tensor_multiplier(input.scale, weight_scales[0], output.scale, rounding)]
        }
        _ => weight_scales.iter().map(|&s| channel_multiplier(input.scale, s, output.scale, rounding)).collect(),
    };
    let (activation_min, activation_max) = activation_range(activation, output.scale, output.zero_point);
    Ok(match layer {
        FloatLayer::Conv2d(c) => QuantizedLayer::Conv2d {
            params: ConvParams {
                geometry: c.geometry,
                filters: c.filters,
                groups: c.groups,
                input_offset: -input.zero_point,
                output_offset: output.zero_point,
                activation_min,
                activation_max,
                rounding,
            },
            weight: q,
            bias: qb,
            weight_scales,
            multipliers,
            output,
        },
        _ => QuantizedLayer::Dense {
            params: FullyConnectedParams {
                input_offset: -input.zero_point,
                filter_offset: 0,
                output_offset: output.zero_point,
                activation_min,
                activation_max,
                rounding,
            },
            weight: q,
            bias: qb,
            weight_scales,
            multipliers,
            output,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::calibrate::FloatDense;

    #[test]
    fn batch_norm_folds_into_each_filter() {
        // Two filters of two weights; s = gamma / sqrt(var + eps) = 2 and 0.5.
        let (mut w, mut b) = ([1.0f32, -2.0, 4.0, 8.0], [1.0f32, 0.0]);
        fold_batch_norm(&mut w, &mut b, &[1.0, 1.0], &[0.5, -1.0], &[3.0, 2.0], &[0.25, 4.0], 0.0).unwrap();
        assert_eq!(w, [2.0, -4.0, 2.0, 4.0]);
        // (1 - 3) * 2 + 0.5 and (0 - 2) * 0.5 - 1.
        assert_eq!(b, [-3.5, -2.0]);
        assert!(matches!(
            fold_batch_norm(&mut w, &mut b, &[1.0], &[0.0; 2], &[0.0; 2], &[1.0; 2], 1e-5),
            Err(QuantError::Length { operand: "gamma", .. })
        ));
    }

    #[test]
    fn impossible_layers_are_typed_errors_not_panics() {
        let options = QuantizeOptions::default();
        let geometry = ConvGeometry {
            channels: 1,
            height: 4,
            width: 4,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            out_height: 4, // 4 - 3 + 1 = 2
            out_width: 2,
        };
        let weight = [0.0f32; 9];
        let conv = FloatConv2d {
            weight: &weight,
            bias: &[0.0],
            geometry,
            filters: 1,
            groups: 1,
            activation: FusedActivation::None,
        };
        let error = quantize_sequential(&[FloatLayer::Conv2d(conv)], &[0.0; 16], &options).unwrap_err();
        assert!(matches!(error, QuantError::Geometry { .. }), "{error}");
        let conv = FloatConv2d { geometry: ConvGeometry { out_height: 2, ..geometry }, groups: 2, ..conv };
        assert!(quantize_sequential(&[FloatLayer::Conv2d(conv)], &[0.0; 16], &options).is_err());
        // A Dense layer after a convolution must read what it writes.
        let conv = FloatConv2d { groups: 1, ..conv };
        let dense =
            FloatDense { weight: &[0.0; 3], bias: &[0.0], inputs: 3, outputs: 1, activation: FusedActivation::None };
        let error = quantize_sequential(&[FloatLayer::Conv2d(conv), FloatLayer::Dense(dense)], &[0.0; 16], &options);
        assert!(matches!(error, Err(QuantError::Length { operand: "layer input", expected: 4, found: 3, .. })));
        let pool = PoolGeometry {
            height: 4,
            width: 4,
            size: [2, 2],
            stride: [0, 2],
            padding: [0, 0],
            out_height: 2,
            out_width: 2,
        };
        let error = quantize_sequential(&[FloatLayer::MaxPool2d { geometry: pool, channels: 1 }], &[0.0; 16], &options);
        assert!(matches!(error, Err(QuantError::Geometry { .. })));
        // Calibration samples must be whole.
        assert!(quantize_sequential(&[FloatLayer::Dense(dense)], &[0.0; 4], &options).is_err());
    }

    #[test]
    fn a_grouped_convolution_runs_each_group_on_its_channels() {
        // Two 1x1 groups over two channels: filter 0 doubles channel 0, filter 1 negates
        // channel 1; the calibration set is one 1x2 sample, so the output range is its own.
        let geometry = ConvGeometry {
            channels: 2,
            height: 1,
            width: 2,
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            out_height: 1,
            out_width: 2,
        };
        let conv = FloatConv2d {
            weight: &[2.0, -1.0],
            bias: &[0.0, 0.0],
            geometry,
            filters: 2,
            groups: 2,
            activation: FusedActivation::None,
        };
        let y = float_forward(&FloatLayer::Conv2d(conv), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(y, [2.0, 4.0, -3.0, -4.0]);
    }
}
