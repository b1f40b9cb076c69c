//! Int8 fully connected (Dense): `y[o] = clamp(requantize(sum_i w[o, i] * (x[i] - zx) + b[o]) + zy)`.

use super::fixed_point::{multiply_by_quantized_multiplier, Rounding};
use super::{channel_multipliers, check_len, checked_product, clamp_to_i8, QuantError, QuantizedMultiplier};

/// The quantization of one int8 fully connected layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FullyConnectedParams {
    /// Minus the input zero point.
    pub input_offset: i32,
    /// Minus the weight zero point (0 for symmetric weights, the specification's case).
    pub filter_offset: i32,
    /// The output zero point.
    pub output_offset: i32,
    /// Lowest output (from the fused activation, see [`prepare::activation_range`](super::prepare::activation_range)).
    pub activation_min: i32,
    /// Highest output.
    pub activation_max: i32,
    /// The requantization rounding.
    pub rounding: Rounding,
}

/// One sample through an int8 fully connected layer: `input[in]`, `filter[out, in]`
/// (PyTorch's `Linear` layout), `bias[out]`, `multipliers` one per output (per-channel
/// weights) or one for all (per-tensor), `output[out]`.
///
/// The accumulator is `i32` and wraps on overflow, as the reference kernel's does.
pub fn fully_connected(
    params: &FullyConnectedParams,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    multipliers: &[QuantizedMultiplier],
    output: &mut [i8],
) -> Result<(), QuantError> {
    const OP: &str = "fully_connected";
    let (inputs, outputs) = (input.len(), output.len());
    check_len(OP, "filter", checked_product(OP, &[outputs, inputs])?, filter.len())?;
    let multiplier = channel_multipliers(OP, outputs, bias, multipliers)?;
    for (o, y) in output.iter_mut().enumerate() {
        let row = &filter[o * inputs..(o + 1) * inputs];
        let mut acc = bias.map_or(0, |b| b[o]);
        let mut sum = 0i32;
        for (&w, &x) in row.iter().zip(input) {
            sum = sum.wrapping_add((w as i32 + params.filter_offset).wrapping_mul(x as i32 + params.input_offset));
        }
        acc = acc.wrapping_add(sum);
        let m = multiplier(o);
        let scaled = multiply_by_quantized_multiplier(acc, m.multiplier, m.shift, params.rounding)
            .wrapping_add(params.output_offset);
        *y = clamp_to_i8(scaled, params.activation_min, params.activation_max);
    }
    Ok(())
}
