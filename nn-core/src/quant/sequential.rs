//! An int8 network as a list of layers over borrowed constants: what
//! [`calibrate::quantize_sequential`](super::calibrate::quantize_sequential) produces
//! (borrowed from its result) and what a generated module bakes into flash as
//! `static`s (see [`QuantizedSequential::rust_source`](super::quantize::QuantizedSequential::rust_source)).
//!
//! A sample runs through the layers one after another, ping-ponging between two
//! buffers of [`Int8Sequential::activation_len`] bytes: integers only, no allocation.
//! [`Int8Sequential::validate`] is a `const fn`, so a baked network checks its shapes,
//! zero points, clamps and multipliers at compile time:
//!
//! ```
//! use nn_core::quant::sequential::{Int8Layer, Int8Sequential, TensorQuantization};
//! use nn_core::quant::{FullyConnectedParams, QuantizedMultiplier, Rounding};
//!
//! static WEIGHT: [i8; 4] = [1, 2, 2, -1];
//! static MODEL: Int8Sequential<'static> = Int8Sequential {
//!     input: TensorQuantization { scale: 0.5, zero_point: 0 },
//!     output: TensorQuantization { scale: 0.125, zero_point: 0 },
//!     layers: &[Int8Layer::Dense {
//!         params: FullyConnectedParams { input_offset: 0, filter_offset: 0, output_offset: 0,
//!             activation_min: -128, activation_max: 127, rounding: Rounding::Double },
//!         inputs: 2,
//!         outputs: 2,
//!         weight: &WEIGHT,
//!         bias: &[1, 0],
//!         // 0.5 * 0.25 / 0.125 = 1 = 2^30 * 2^(1 - 31)
//!         multipliers: &[QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }],
//!     }],
//! };
//! const _: () = if let Err(e) = MODEL.validate() { panic!("{}", e) };
//!
//! let (mut a, mut b) = ([0i8; MODEL.activation_len()], [0i8; MODEL.activation_len()]);
//! assert_eq!(MODEL.forward(&[3, -4], &mut a, &mut b).unwrap(), &[-4, 10]);
//! ```
//!
//! Three weights for a 2x2 layer do not build ("evaluation panicked: int8 layer: the
//! weights do not match the layer's shape"), nor does an output zero point of 200:
//!
//! ```compile_fail,E0080
//! # use nn_core::quant::sequential::{Int8Layer, Int8Sequential, TensorQuantization};
//! # use nn_core::quant::{FullyConnectedParams, QuantizedMultiplier, Rounding};
//! static WEIGHT: [i8; 3] = [1, 2, 2];
//! static MODEL: Int8Sequential<'static> = Int8Sequential {
//!     input: TensorQuantization { scale: 0.5, zero_point: 0 },
//!     output: TensorQuantization { scale: 0.125, zero_point: 0 },
//!     layers: &[Int8Layer::Dense {
//!         params: FullyConnectedParams { input_offset: 0, filter_offset: 0, output_offset: 0,
//!             activation_min: -128, activation_max: 127, rounding: Rounding::Double },
//!         inputs: 2, outputs: 2, weight: &WEIGHT, bias: &[1, 0],
//!         multipliers: &[QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }],
//!     }],
//! };
//! const _: () = if let Err(e) = MODEL.validate() { panic!("{}", e) };
//! ```
//!
//! ```compile_fail,E0080
//! # use nn_core::quant::sequential::{Int8Layer, Int8Sequential, TensorQuantization};
//! # use nn_core::quant::{FullyConnectedParams, QuantizedMultiplier, Rounding};
//! static MODEL: Int8Sequential<'static> = Int8Sequential {
//!     input: TensorQuantization { scale: 0.5, zero_point: 0 },
//!     output: TensorQuantization { scale: 0.125, zero_point: 200 },
//!     layers: &[Int8Layer::Dense {
//!         params: FullyConnectedParams { input_offset: 0, filter_offset: 0, output_offset: 0,
//!             activation_min: -128, activation_max: 127, rounding: Rounding::Double },
//!         inputs: 2, outputs: 2, weight: &[1, 2, 2, -1], bias: &[1, 0],
//!         multipliers: &[QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }],
//!     }],
//! };
//! const _: () = if let Err(e) = MODEL.validate() { panic!("{}", e) };
//! ```

use super::{
    average_pool2d, check_len, conv2d, fully_connected, max_pool2d, ConvParams, FullyConnectedParams, PoolParams,
    QuantError, QuantizedMultiplier,
};

/// A per-tensor int8 quantization `real = scale * (q - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorQuantization {
    /// The scale, as stored (`f32`).
    pub scale: f32,
    /// The zero point, in `[-128, 127]`.
    pub zero_point: i32,
}

impl TensorQuantization {
    /// The int8 value nearest `real`: `round(real / scale) + zero_point` (ties away
    /// from zero), saturated to `[-128, 127]`, as TensorFlow Lite's `Quantize`. This is
    /// the float boundary of an int8 network (its input), not part of its inference.
    pub fn quantize(&self, real: f32) -> i8 {
        let q = libm::roundf(real / self.scale) as i32;
        q.saturating_add(self.zero_point).clamp(-128, 127) as i8
    }

    /// The real value `scale * (q - zero_point)` of the int8 value `q`.
    pub fn dequantize(&self, q: i8) -> f32 {
        self.scale * (q as i32 - self.zero_point) as f32
    }
}

/// One int8 layer over borrowed constants. Activations are `[channels, height, width]`
/// for one sample; a Dense layer reads them flattened in that order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Int8Layer<'a> {
    /// [`fully_connected`]: `weight[outputs, inputs]`, `bias[outputs]`, one multiplier
    /// per output or one for all.
    Dense {
        /// Offsets and clamp.
        params: FullyConnectedParams,
        /// Inputs per sample.
        inputs: usize,
        /// Outputs per sample.
        outputs: usize,
        /// int8 weights.
        weight: &'a [i8],
        /// int32 biases.
        bias: &'a [i32],
        /// Requantization per output, or one.
        multipliers: &'a [QuantizedMultiplier],
    },
    /// [`conv2d`]: `weight[filters, channels / groups, kh, kw]`, `bias[filters]`.
    Conv2d {
        /// Geometry, groups, offsets and clamp.
        params: ConvParams,
        /// int8 weights.
        weight: &'a [i8],
        /// int32 biases.
        bias: &'a [i32],
        /// Requantization per filter, or one.
        multipliers: &'a [QuantizedMultiplier],
    },
    /// [`max_pool2d`] of `channels` planes (the output keeps the input's quantization).
    MaxPool2d {
        /// Geometry and clamp.
        params: PoolParams,
        /// Planes pooled.
        channels: usize,
    },
    /// [`average_pool2d`] of `channels` planes (the output keeps the input's quantization).
    AveragePool2d {
        /// Geometry and clamp.
        params: PoolParams,
        /// Planes pooled.
        channels: usize,
    },
}

/// `a * b * c`, or `None` on overflow, in a `const fn`.
const fn product3(a: usize, b: usize, c: usize) -> Option<usize> {
    match a.checked_mul(b) {
        Some(ab) => ab.checked_mul(c),
        None => None,
    }
}

/// Whether `scale` is positive and finite (not NaN).
const fn positive_scale(scale: f32) -> bool {
    scale > 0.0 && scale.is_finite()
}

/// Whether `[min, max]` is a clamp inside int8.
const fn valid_clamp(min: i32, max: i32) -> bool {
    -128 <= min && min <= max && max <= 127
}

/// Whether every multiplier is 0 or a Q0.31 significand in `[2^30, 2^31)` with a shift
/// in `[-31, 30]`, as [`prepare::quantize_multiplier`](super::prepare::quantize_multiplier) makes them.
const fn valid_multipliers(multipliers: &[QuantizedMultiplier]) -> bool {
    let mut i = 0;
    while i < multipliers.len() {
        let m = multipliers[i];
        let significand = m.multiplier == 0 || m.multiplier >= 1 << 30;
        if !significand || m.shift < -31 || m.shift > 30 {
            return false;
        }
        i += 1;
    }
    true
}

impl Int8Layer<'_> {
    /// Values per sample in, or `None` if the geometry overflows.
    pub const fn input_len(&self) -> Option<usize> {
        match self {
            Int8Layer::Dense { inputs, .. } => Some(*inputs),
            Int8Layer::Conv2d { params, .. } => {
                product3(params.geometry.channels, params.geometry.height, params.geometry.width)
            }
            Int8Layer::MaxPool2d { params, channels } | Int8Layer::AveragePool2d { params, channels } => {
                product3(*channels, params.geometry.height, params.geometry.width)
            }
        }
    }

    /// Values per sample out, or `None` if the geometry overflows.
    pub const fn output_len(&self) -> Option<usize> {
        match self {
            Int8Layer::Dense { outputs, .. } => Some(*outputs),
            Int8Layer::Conv2d { params, .. } => {
                product3(params.filters, params.geometry.out_height, params.geometry.out_width)
            }
            Int8Layer::MaxPool2d { params, channels } | Int8Layer::AveragePool2d { params, channels } => {
                product3(*channels, params.geometry.out_height, params.geometry.out_width)
            }
        }
    }

    /// Bytes of the layer's constants: 1 a weight, 4 a bias, 8 a multiplier
    /// (significand and shift).
    pub const fn param_bytes(&self) -> usize {
        match self {
            Int8Layer::Dense { weight, bias, multipliers, .. }
            | Int8Layer::Conv2d { weight, bias, multipliers, .. } => {
                weight.len() + 4 * bias.len() + 8 * multipliers.len()
            }
            Int8Layer::MaxPool2d { .. } | Int8Layer::AveragePool2d { .. } => 0,
        }
    }

    /// Checks the layer's constants against its geometry; the message names what is wrong.
    pub const fn validate(&self) -> Result<(), &'static str> {
        let (weights, expected_weights, outputs, bias, multipliers) = match self {
            Int8Layer::Dense { params, inputs, outputs, weight, bias, multipliers } => {
                if params.filter_offset != 0 {
                    return Err("int8 Dense: weights must be symmetric (filter_offset 0)");
                }
                if params.input_offset < -127
                    || params.input_offset > 128
                    || params.output_offset < -128
                    || params.output_offset > 127
                {
                    return Err("int8 Dense: a zero point is outside [-128, 127]");
                }
                if !valid_clamp(params.activation_min, params.activation_max) {
                    return Err("int8 Dense: the activation clamp is not inside [-128, 127]");
                }
                (weight.len(), inputs.checked_mul(*outputs), *outputs, bias.len(), multipliers)
            }
            Int8Layer::Conv2d { params, weight, bias, multipliers } => {
                let g = &params.geometry;
                if params.groups == 0 || g.channels % params.groups != 0 || params.filters % params.groups != 0 {
                    return Err("int8 Conv2d: channels and filters must be multiples of groups");
                }
                if g.stride[0] == 0 || g.stride[1] == 0 || g.dilation[0] == 0 || g.dilation[1] == 0 {
                    return Err("int8 Conv2d: stride and dilation must be at least 1");
                }
                if params.input_offset < -127
                    || params.input_offset > 128
                    || params.output_offset < -128
                    || params.output_offset > 127
                {
                    return Err("int8 Conv2d: a zero point is outside [-128, 127]");
                }
                if !valid_clamp(params.activation_min, params.activation_max) {
                    return Err("int8 Conv2d: the activation clamp is not inside [-128, 127]");
                }
                let per_filter = product3(g.channels / params.groups, g.kernel[0], g.kernel[1]);
                let expected = match per_filter {
                    Some(n) => n.checked_mul(params.filters),
                    None => None,
                };
                (weight.len(), expected, params.filters, bias.len(), multipliers)
            }
            Int8Layer::MaxPool2d { params, .. } | Int8Layer::AveragePool2d { params, .. } => {
                if params.geometry.stride[0] == 0 || params.geometry.stride[1] == 0 {
                    return Err("int8 pooling: stride must be at least 1");
                }
                if !valid_clamp(params.activation_min, params.activation_max) {
                    return Err("int8 pooling: the activation clamp is not inside [-128, 127]");
                }
                return Ok(());
            }
        };
        match expected_weights {
            Some(n) if n == weights => {}
            _ => return Err("int8 layer: the weights do not match the layer's shape"),
        }
        if bias != outputs {
            return Err("int8 layer: there must be one bias per output channel");
        }
        if multipliers.len() != 1 && multipliers.len() != outputs {
            return Err("int8 layer: there must be one multiplier, or one per output channel");
        }
        if !valid_multipliers(multipliers) {
            return Err(
                "int8 layer: a multiplier is not a Q0.31 significand in [2^30, 2^31) with a shift in [-31, 30]",
            );
        }
        Ok(())
    }

    /// One sample through the layer.
    pub fn forward(&self, input: &[i8], output: &mut [i8]) -> Result<(), QuantError> {
        match self {
            Int8Layer::Dense { params, weight, bias, multipliers, .. } => {
                fully_connected(params, input, weight, Some(bias), multipliers, output)
            }
            Int8Layer::Conv2d { params, weight, bias, multipliers } => {
                conv2d(params, input, weight, Some(bias), multipliers, output)
            }
            Int8Layer::MaxPool2d { params, .. } => max_pool2d(params, input, output),
            Int8Layer::AveragePool2d { params, .. } => average_pool2d(params, input, output),
        }
    }
}

/// An int8 network: the input's quantization (to quantize a real sample), the layers,
/// and the output's quantization (to read the result as reals).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Int8Sequential<'a> {
    /// The input's quantization.
    pub input: TensorQuantization,
    /// The last layer's output quantization.
    pub output: TensorQuantization,
    /// The layers, in order.
    pub layers: &'a [Int8Layer<'a>],
}

impl Int8Sequential<'_> {
    /// Checks every layer ([`Int8Layer::validate`]), that each layer reads as many
    /// values as the one before writes, and that the zero points are int8. A `const fn`:
    /// `const _: () = if let Err(e) = MODEL.validate() { panic!("{}", e) };` fails the
    /// build of a network that could not run.
    pub const fn validate(&self) -> Result<(), &'static str> {
        if self.layers.is_empty() {
            return Err("int8 network: no layers");
        }
        if self.input.zero_point < -128 || self.input.zero_point > 127 {
            return Err("int8 network: the input zero point is outside [-128, 127]");
        }
        if self.output.zero_point < -128 || self.output.zero_point > 127 {
            return Err("int8 network: the output zero point is outside [-128, 127]");
        }
        if !positive_scale(self.input.scale) || !positive_scale(self.output.scale) {
            return Err("int8 network: a scale is not positive");
        }
        let mut i = 0;
        while i < self.layers.len() {
            let layer = &self.layers[i];
            if let Err(e) = layer.validate() {
                return Err(e);
            }
            let (Some(_), Some(_)) = (layer.input_len(), layer.output_len()) else {
                return Err("int8 network: a layer's size overflows usize");
            };
            if i > 0 {
                let (Some(previous), Some(this)) = (self.layers[i - 1].output_len(), layer.input_len()) else {
                    return Err("int8 network: a layer's size overflows usize");
                };
                if previous != this {
                    return Err(
                        "int8 network: a layer reads a different number of values than the layer before writes",
                    );
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Values per input sample (0 without layers or on overflow).
    pub const fn input_len(&self) -> usize {
        match self.layers.first() {
            Some(layer) => match layer.input_len() {
                Some(n) => n,
                None => 0,
            },
            None => 0,
        }
    }

    /// Values per output sample (0 without layers or on overflow).
    pub const fn output_len(&self) -> usize {
        match self.layers.last() {
            Some(layer) => match layer.output_len() {
                Some(n) => n,
                None => 0,
            },
            None => 0,
        }
    }

    /// The largest layer output: each of the two buffers of [`forward`](Self::forward)
    /// holds this many bytes.
    pub const fn activation_len(&self) -> usize {
        let mut longest = 0;
        let mut i = 0;
        while i < self.layers.len() {
            if let Some(n) = self.layers[i].output_len() {
                if n > longest {
                    longest = n;
                }
            }
            i += 1;
        }
        longest
    }

    /// Bytes of every layer's constants ([`Int8Layer::param_bytes`]) and of the input's
    /// and output's quantization (8 each).
    pub const fn param_bytes(&self) -> usize {
        let mut bytes = 16;
        let mut i = 0;
        while i < self.layers.len() {
            bytes += self.layers[i].param_bytes();
            i += 1;
        }
        bytes
    }

    /// The most stack [`forward`](Self::forward) takes below its caller's frame (the
    /// two activation buffers are the caller's): [`INT8_STACK_BOUND_BYTES`], whatever
    /// the layers, since every int8 kernel keeps fixed-size scratch.
    pub const fn stack_bound_bytes(&self) -> usize {
        INT8_STACK_BOUND_BYTES
    }

    /// One int8 sample through every layer, in integers only: the layers write
    /// alternately into `a` and `b` (each at least [`activation_len`](Self::activation_len)),
    /// and the returned slice of one of them is the output.
    pub fn forward<'b>(&self, input: &[i8], a: &'b mut [i8], b: &'b mut [i8]) -> Result<&'b [i8], QuantError> {
        const OP: &str = "int8 network";
        let needed = self.activation_len();
        for (operand, buffer) in [("buffer a", &*a), ("buffer b", &*b)] {
            if buffer.len() < needed {
                return Err(QuantError::Length { op: OP, operand, expected: needed, found: buffer.len() });
            }
        }
        let Some((first, rest)) = self.layers.split_first() else {
            return Err(QuantError::Geometry { op: OP, reason: "no layers" });
        };
        check_len(OP, "input", self.input_len(), input.len())?;
        let (mut src, mut dst) = (a, b);
        let mut len = first.output_len().unwrap_or(0);
        first.forward(input, &mut src[..len])?;
        for layer in rest {
            let n = layer.output_len().unwrap_or(0);
            layer.forward(&src[..len], &mut dst[..n])?;
            core::mem::swap(&mut src, &mut dst);
            len = n;
        }
        Ok(&src[..len])
    }
}

/// The int8 kernels' fixed scratch: the packed inputs of the Dense and convolution
/// products (`dot.rs`) and the Dense block's sums.
const INT8_SCRATCH_BYTES: usize =
    core::mem::size_of::<super::dot::Packed>() + super::fully_connected::BLOCK * core::mem::size_of::<i32>();

/// The stack bound of int8 inference ([`Int8Sequential::stack_bound_bytes`]): the
/// kernels' scratch plus their frames and the network's (loop state, slices, saved
/// registers). Measured by painting in the `int8` firmware (`tools/firmware-run`,
/// release builds at `opt-level` 3), the digits MLP and CNN used at most 704 bytes on
/// the rv32imc, 876 on the Cortex-M0 and 824 on the Cortex-M4F: 600 bytes of frames on
/// 32-bit Arm and 400 on 32-bit RISC-V cover them (4 KiB on other targets, not
/// measured). The firmware fails if the bound is exceeded or is more than 1.5 times the
/// use.
pub const INT8_STACK_BOUND_BYTES: usize = INT8_SCRATCH_BYTES
    + if cfg!(target_arch = "arm") {
        600
    } else if cfg!(target_arch = "riscv32") {
        400
    } else {
        4096
    };

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Rounding;

    const ONE: QuantizedMultiplier = QuantizedMultiplier { multiplier: 1 << 30, shift: 1 };
    const FC: FullyConnectedParams = FullyConnectedParams {
        input_offset: 0,
        filter_offset: 0,
        output_offset: 0,
        activation_min: -128,
        activation_max: 127,
        rounding: Rounding::Double,
    };
    const Q: TensorQuantization = TensorQuantization { scale: 1.0, zero_point: 0 };

    fn dense<'a>(inputs: usize, outputs: usize, weight: &'a [i8], bias: &'a [i32]) -> Int8Layer<'a> {
        Int8Layer::Dense { params: FC, inputs, outputs, weight, bias, multipliers: &[ONE] }
    }

    #[test]
    fn validate_names_the_broken_rule() {
        let (w6, w3, b3, b2) = ([1i8; 6], [1i8; 3], [0i32; 3], [0i32; 2]);
        // 2 -> 3 -> 1: chains.
        let good = [dense(2, 3, &w6, &b3), dense(3, 1, &w3, &[0])];
        let network = Int8Sequential { input: Q, output: Q, layers: &good };
        assert_eq!(network.validate(), Ok(()));
        assert_eq!((network.input_len(), network.output_len(), network.activation_len()), (2, 1, 3));
        assert_eq!(network.param_bytes(), 16 + (6 + 12 + 8) + (3 + 4 + 8));
        // The second layer reads 2 values where the first writes 3.
        let broken = [dense(2, 3, &w6, &b3), dense(2, 1, &[1, 1], &[0])];
        let network = Int8Sequential { input: Q, output: Q, layers: &broken };
        assert!(network.validate().unwrap_err().contains("different number of values"));
        let wrong_bias = [dense(2, 3, &w6, &b2)];
        let network = Int8Sequential { input: Q, output: Q, layers: &wrong_bias };
        assert!(network.validate().unwrap_err().contains("one bias per output"));
        let network =
            Int8Sequential { input: Q, output: TensorQuantization { scale: f32::NAN, zero_point: 0 }, layers: &good };
        assert!(network.validate().unwrap_err().contains("scale"));
        let network = Int8Sequential { input: Q, output: Q, layers: &[] };
        assert!(network.validate().is_err());
    }

    #[test]
    fn forward_ping_pongs_and_refuses_short_buffers() {
        // x -> [x0 + x1, x0 - x1, 2 x0] -> their sum + 5 = 4 x0 + 5, every multiplier 1.
        let w1 = [1i8, 1, 1, -1, 2, 0];
        let layers = [dense(2, 3, &w1, &[0, 0, 0]), dense(3, 1, &[1, 1, 1], &[5])];
        let network = Int8Sequential { input: Q, output: Q, layers: &layers };
        let (mut a, mut b) = ([0i8; 3], [0i8; 3]);
        assert_eq!(network.forward(&[4, 2], &mut a, &mut b).unwrap(), &[6 + 2 + 8 + 5]);
        let mut short = [0i8; 2];
        assert_eq!(
            network.forward(&[4, 2], &mut short, &mut b),
            Err(QuantError::Length { op: "int8 network", operand: "buffer a", expected: 3, found: 2 })
        );
        assert!(matches!(network.forward(&[4], &mut a, &mut b), Err(QuantError::Length { operand: "input", .. })));
    }
}
