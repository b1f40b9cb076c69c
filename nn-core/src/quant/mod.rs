//! Integer-only int8 inference, bit-exact with TensorFlow Lite Micro's reference
//! kernels (and so with CMSIS-NN, which matches them).
//!
//! Tensors are int8 with a per-tensor affine quantization `real = scale * (q - zero_point)`;
//! weights are int8 symmetric, per output channel or per tensor; biases are int32 with
//! scale `input_scale * weight_scale`. Each operator is one small function over an
//! explicit parameter struct, as in TensorFlow Lite's
//! `kernels/internal/reference/integer_ops/`:
//!
//! | operator | function | TensorFlow Lite Micro |
//! | --- | --- | --- |
//! | Dense | [`fully_connected`] | `FullyConnected`, `FullyConnectedPerChannel` |
//! | Conv1d, Conv2d, depthwise (`groups`) | [`conv2d`] | `ConvPerChannel`, `DepthwiseConvPerChannel` |
//! | max and average pooling | [`max_pool2d`], [`average_pool2d`] | `MaxPool`, `AveragePool` |
//! | add | [`add`] | `Add` |
//! | softmax | [`softmax`] | `Softmax` (int8 in, int8 out) |
//! | concat, flatten, reshape | [`concat()`] and a plain copy | `Concatenation`, `Reshape` |
//!
//! A whole network is a list of [`sequential::Int8Layer`]s over borrowed constants,
//! checked by a `const fn`; `network::Quantize` (with `alloc`) quantizes a trained
//! `network!` model into one from its description (`model.quantize(..)`), or a graph
//! network with `add` and `concat` into a `network::QuantizedGraph`
//! (`model.quantize_graph(..)`); `quantize::quantize_sequential` takes f32 layers
//! listed by hand; `codegen` writes a list of int8 layers as Rust source for a firmware
//! to bake in.
//!
//! The fixed-point helpers they share are in [`fixed_point`]; the parameters come from
//! the real scales through [`prepare`], and the scales themselves from an f32 model and
//! a calibration set through `calibrate` (with `alloc`): the only code here that uses
//! floating point.
//! Activations are laid out as the rest of the library lays them out: `[channels,
//! height, width]` for one sample, filters `[filters, channels / groups, kh, kw]`.
//! The kernels and [`prepare`] allocate nothing (they run without `alloc`); only
//! `calibrate` does.
//!
//! ```
//! use nn_core::quant::{fully_connected, prepare, FullyConnectedParams, Rounding};
//!
//! // y = relu(W x + b) with W = [[1, 2]], input scale 0.5, weight scale 0.25,
//! // output scale 0.125: the real product 0.5 * 0.25 / 0.125 = 1.
//! let multiplier = prepare::channel_multiplier(0.5, 0.25, 0.125, Rounding::Double);
//! let params = FullyConnectedParams { input_offset: 0, filter_offset: 0, output_offset: 0,
//!     activation_min: 0, activation_max: 127, rounding: Rounding::Double };
//! let mut y = [0i8; 1];
//! fully_connected(&params, &[3, -4], &[1, 2], Some(&[1]), &[multiplier], &mut y).unwrap();
//! assert_eq!(y, [0]); // 3 - 8 + 1 = -4, clamped by the ReLU
//! ```

#[cfg(feature = "alloc")]
pub mod calibrate;
#[cfg(feature = "alloc")]
pub mod codegen;
pub mod fixed_point;
pub mod graph;
#[cfg(feature = "alloc")]
pub mod network;
pub mod prepare;
pub mod qat;
#[cfg(feature = "alloc")]
pub mod quantize;
pub mod sequential;

mod add;
mod concat;
mod conv;
mod dot;
mod fully_connected;
mod pool;
mod requantize;
mod softmax;

#[cfg(test)]
mod golden_tests;

/// The geometry of a convolution (input size, kernel, stride, padding, dilation and
/// output size), as [`ConvParams::geometry`] takes it.
pub use crate::kernels::conv::ConvGeometry;
/// The geometry of a pooling window, as [`PoolParams::geometry`] takes it.
pub use crate::kernels::pool::PoolGeometry;
pub use add::{add, AddParams};
pub use concat::concat;
pub use conv::{conv2d, ConvParams};
pub use fixed_point::Rounding;
pub use fully_connected::{fully_connected, FullyConnectedParams};
pub use pool::{average_pool2d, max_pool2d, PoolParams};
pub use prepare::{FusedActivation, QuantizedMultiplier};
pub use softmax::{softmax, SoftmaxParams};

/// Why an int8 kernel refused its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// A buffer has the wrong number of elements for the operator's geometry.
    Length {
        /// The operator.
        op: &'static str,
        /// Which operand (`"input"`, `"filter"`, `"bias"`, `"multipliers"`, `"output"`).
        operand: &'static str,
        /// The length the geometry implies.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// The geometry itself is impossible (a zero stride, channels not divisible by the
    /// groups, a pooling window that covers no input, an overflowing size).
    Geometry {
        /// The operator.
        op: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl core::fmt::Display for QuantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            QuantError::Length { op, operand, expected, found } => {
                write!(f, "int8 {op}: {operand} has {found} elements, expected {expected}")
            }
            QuantError::Geometry { op, reason } => write!(f, "int8 {op}: {reason}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for QuantError {}

/// Checks that `operand` of `op` has `expected` elements.
fn check_len(op: &'static str, operand: &'static str, expected: usize, found: usize) -> Result<(), QuantError> {
    if expected == found {
        Ok(())
    } else {
        Err(QuantError::Length { op, operand, expected, found })
    }
}

/// `a * b * ...` or a geometry error naming `op` on overflow.
fn checked_product(op: &'static str, factors: &[usize]) -> Result<usize, QuantError> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or(QuantError::Geometry { op, reason: "size overflows usize" })
}

/// Checks the per-output-channel operands of `op` (a bias per channel, and one
/// multiplier for all channels or one per channel) and returns the multiplier of each
/// channel: `multipliers[0]` for per-tensor weights, `multipliers[channel]` otherwise.
fn channel_multipliers<'m>(
    op: &'static str,
    channels: usize,
    bias: Option<&[i32]>,
    multipliers: &'m [QuantizedMultiplier],
) -> Result<impl Fn(usize) -> QuantizedMultiplier + 'm, QuantError> {
    if let Some(bias) = bias {
        check_len(op, "bias", channels, bias.len())?;
    }
    let per_tensor = multipliers.len() == 1;
    if !per_tensor {
        check_len(op, "multipliers", channels, multipliers.len())?;
    }
    Ok(move |channel: usize| multipliers[if per_tensor { 0 } else { channel }])
}

/// Clamps a requantized value to `[min, max]` and to int8.
#[inline]
fn clamp_to_i8(value: i32, min: i32, max: i32) -> i8 {
    value.max(min).min(max).clamp(-128, 127) as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::ConvGeometry;
    use crate::kernels::pool::PoolGeometry;

    const FC: FullyConnectedParams = FullyConnectedParams {
        input_offset: 0,
        filter_offset: 0,
        output_offset: 0,
        activation_min: -128,
        activation_max: 127,
        rounding: Rounding::Double,
    };
    const ONE: QuantizedMultiplier = QuantizedMultiplier { multiplier: 1 << 30, shift: 1 };

    #[test]
    fn wrong_lengths_are_typed_errors_naming_the_operand() {
        let mut y = [0i8; 2];
        assert_eq!(
            fully_connected(&FC, &[1, 2, 3], &[0; 5], None, &[ONE], &mut y),
            Err(QuantError::Length { op: "fully_connected", operand: "filter", expected: 6, found: 5 })
        );
        assert_eq!(
            fully_connected(&FC, &[1, 2, 3], &[0; 6], Some(&[0; 3]), &[ONE], &mut y),
            Err(QuantError::Length { op: "fully_connected", operand: "bias", expected: 2, found: 3 })
        );
        assert_eq!(
            add(
                &prepare::add_params((1.0, 0), (1.0, 0), (1.0, 0), FusedActivation::None, Rounding::Double),
                &[0; 2],
                &[0; 3],
                &mut y
            ),
            Err(QuantError::Length { op: "add", operand: "input2", expected: 2, found: 3 })
        );
        let softmax_params = prepare::softmax_params(1.0, 0.1, Rounding::Double);
        assert!(matches!(softmax(&softmax_params, &[0; 2], 3, &mut y), Err(QuantError::Geometry { .. })));
        assert!(matches!(concat(&[&[1], &[2, 3]], &mut y), Err(QuantError::Length { .. })));
    }

    #[test]
    fn impossible_geometries_are_errors_not_panics() {
        let geometry = ConvGeometry {
            channels: 3,
            height: 2,
            width: 2,
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            out_height: 2,
            out_width: 2,
        };
        let params = ConvParams {
            geometry,
            filters: 4,
            groups: 2,
            input_offset: 0,
            output_offset: 0,
            activation_min: -128,
            activation_max: 127,
            rounding: Rounding::Double,
        };
        let mut y = [0i8; 16];
        assert!(matches!(conv2d(&params, &[0; 12], &[0; 6], None, &[ONE], &mut y), Err(QuantError::Geometry { .. })));
        let params = ConvParams { groups: 1, geometry: ConvGeometry { stride: [0, 1], ..geometry }, ..params };
        assert!(matches!(conv2d(&params, &[0; 12], &[0; 12], None, &[ONE], &mut y), Err(QuantError::Geometry { .. })));
        // A window that starts past the input covers nothing.
        let pool = PoolParams {
            geometry: PoolGeometry {
                height: 2,
                width: 2,
                size: [1, 1],
                stride: [3, 3],
                padding: [0, 0],
                out_height: 2,
                out_width: 2,
            },
            activation_min: -128,
            activation_max: 127,
        };
        let mut y = [0i8; 4];
        assert!(matches!(average_pool2d(&pool, &[1, 2, 3, 4], &mut y), Err(QuantError::Geometry { .. })));
        // Max pooling of the same windows yields the int8 minimum where a window is empty.
        max_pool2d(&pool, &[1, 2, 3, 4], &mut y).unwrap();
        assert_eq!(y, [1, -128, -128, -128]);
    }
}
