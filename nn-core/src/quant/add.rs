//! Int8 elementwise add of two tensors with their own scales, requantized to the
//! output's:
//!
//! ```text
//! a' = requantize((a - za) << 20, sa / 2max)    b' = requantize((b - zb) << 20, sb / 2max)
//! y  = clamp(requantize(a' + b', 2max / (2^20 so)) + zo)          (2max = 2 * max(sa, sb))
//! ```

use super::fixed_point::{multiply_by_quantized_multiplier_smaller_than_one, Rounding};
use super::{check_len, clamp_to_i8, QuantError, QuantizedMultiplier};

/// The quantization of one int8 add, from [`prepare::add_params`](super::prepare::add_params).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddParams {
    /// Minus the first input's zero point.
    pub input1_offset: i32,
    /// Minus the second input's zero point.
    pub input2_offset: i32,
    /// The output zero point.
    pub output_offset: i32,
    /// The headroom shift applied to both inputs (20 for int8).
    pub left_shift: i32,
    /// The first input's rescaling to `2 * max(scale1, scale2)`.
    pub input1_multiplier: QuantizedMultiplier,
    /// The second input's rescaling.
    pub input2_multiplier: QuantizedMultiplier,
    /// The sum's rescaling to the output scale.
    pub output_multiplier: QuantizedMultiplier,
    /// Lowest output.
    pub activation_min: i32,
    /// Highest output.
    pub activation_max: i32,
    /// The requantization rounding.
    pub rounding: Rounding,
}

/// `output[i] = input1[i] + input2[i]` in real terms, for tensors of the same shape.
pub fn add(params: &AddParams, input1: &[i8], input2: &[i8], output: &mut [i8]) -> Result<(), QuantError> {
    check_len("add", "input2", input1.len(), input2.len())?;
    check_len("add", "output", input1.len(), output.len())?;
    let shift = params.left_shift.clamp(0, 31) as u32;
    let rescale = |value: i32, m: QuantizedMultiplier| {
        multiply_by_quantized_multiplier_smaller_than_one(value, m.multiplier, m.shift, params.rounding)
    };
    for ((y, &a), &b) in output.iter_mut().zip(input1).zip(input2) {
        let a = rescale((a as i32 + params.input1_offset).wrapping_shl(shift), params.input1_multiplier);
        let b = rescale((b as i32 + params.input2_offset).wrapping_shl(shift), params.input2_multiplier);
        let sum = rescale(a.wrapping_add(b), params.output_multiplier).wrapping_add(params.output_offset);
        *y = clamp_to_i8(sum, params.activation_min, params.activation_max);
    }
    Ok(())
}
