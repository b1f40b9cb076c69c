//! Int8 softmax in gemmlowp fixed point, TensorFlow Lite's `Softmax` for int8 input
//! and int8 output (scale 1/256, zero point -128), row by row:
//!
//! ```text
//! d[c]   = requantize(x[c] - max(x), beta * sx * 2^26)     input differences in Q5.26
//! e[c]   = exp(d[c])  in Q0.31, for d[c] >= diff_min (else the output is -128)
//! sum    = sum of e[c] in Q12.19
//! y[c]   = clamp(round(e[c] / sum * 256) - 128)
//! ```

use super::fixed_point::{
    exp_on_negative_values, multiply_by_quantized_multiplier_greater_than_one, one_over_one_plus_x_for_x_in_0_1,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul, saturating_rounding_multiply_by_pot, Rounding,
};
use super::{check_len, QuantError, QuantizedMultiplier};

/// The quantization of one int8 softmax, from [`prepare::softmax_params`](super::prepare::softmax_params).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// The rescaling of input differences to Q5.26 (`beta * input_scale * 2^26`).
    pub input: QuantizedMultiplier,
    /// The most negative input difference that contributes.
    pub diff_min: i32,
    /// The requantization rounding.
    pub rounding: Rounding,
}

const SCALED_DIFF_INTEGER_BITS: u32 = 5;
const ACCUMULATION_INTEGER_BITS: u32 = 12;

/// Softmax over each row of `depth` values of `input`, into `output` (same length).
pub fn softmax(params: &SoftmaxParams, input: &[i8], depth: usize, output: &mut [i8]) -> Result<(), QuantError> {
    const OP: &str = "softmax";
    check_len(OP, "output", input.len(), output.len())?;
    if depth == 0 || !input.len().is_multiple_of(depth) {
        return Err(QuantError::Geometry { op: OP, reason: "the input is not whole rows of `depth` values" });
    }
    for (row, out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)) {
        softmax_row(params, row, out);
    }
    Ok(())
}

fn softmax_row(params: &SoftmaxParams, row: &[i8], out: &mut [i8]) {
    let max = row.iter().copied().max().unwrap_or(i8::MIN) as i32;
    let scaled_exp = |x: i8| -> Option<i32> {
        let diff = x as i32 - max;
        (diff >= params.diff_min).then(|| {
            let rescaled = multiply_by_quantized_multiplier_greater_than_one(
                diff,
                params.input.multiplier,
                params.input.shift,
                params.rounding,
            );
            exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
        })
    };
    let mut sum_of_exps = 0i32;
    for &x in row {
        if let Some(e) = scaled_exp(x) {
            // Q0.31 to Q12.19.
            sum_of_exps =
                sum_of_exps.wrapping_add(saturating_rounding_multiply_by_pot(e, -(ACCUMULATION_INTEGER_BITS as i32)));
        }
    }
    // GetReciprocal: sum = 2^bits_over_unit * (1 + fraction), 1 / (1 + fraction) in Q0.31.
    let headroom_plus_one = (sum_of_exps as u32).leading_zeros();
    let num_bits_over_unit = ACCUMULATION_INTEGER_BITS as i32 - headroom_plus_one as i32;
    let shifted_sum_minus_one = ((sum_of_exps as u32).wrapping_shl(headroom_plus_one)).wrapping_sub(1 << 31) as i32;
    let shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
    let exponent = (num_bits_over_unit + 31 - 8).clamp(0, 31) as u32;
    for (y, &x) in out.iter_mut().zip(row) {
        *y = match scaled_exp(x) {
            Some(e) => {
                let unsaturated =
                    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, e), exponent);
                unsaturated.wrapping_add(-128).clamp(-128, 127) as i8
            }
            None => i8::MIN,
        };
    }
}
