//! Fixed-point arithmetic of TensorFlow Lite Micro's integer kernels (gemmlowp's
//! `fixedpoint.h` and TensorFlow Lite's `common.h`): the multiply-high, the rounding
//! shifts and the requantization of an `i32` accumulator by a multiplier `m` and a
//! shift `s`, which approximates `x * m * 2^(s - 31)`.
//!
//! Two roundings exist, and they disagree on values that land near a half:
//!
//! ```text
//! Double (default build):   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << max(s, 0), m), max(-s, 0))
//! Single (TFLITE_SINGLE_ROUNDING): (x * m + 2^(30 - s)) >> (31 - s)
//! ```
//!
//! Double rounding rounds twice: ties up at bit 31, then ties away from zero at the
//! final shift; single rounding rounds the exact product once, ties up. They differ,
//! for example, on every negative exact half.
//! Everything here is integer arithmetic.

/// Which requantization rounding the kernels use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// gemmlowp's double rounding, TensorFlow Lite Micro's default build.
    #[default]
    Double,
    /// One round-half-up of the exact product, as in builds with
    /// `TFLITE_SINGLE_ROUNDING=1` (CMSIS-NN's choice on some cores).
    Single,
}

/// `round(a * b / 2^31)` with ties toward positive infinity, saturating the one overflowing case
/// `i32::MIN * i32::MIN` to `i32::MAX` (ARM's `VQRDMULH`).
#[inline]
pub const fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    // The reference adds `2^30` to a non-negative product and `1 - 2^30` to a negative
    // one, then divides by `2^31` truncating toward zero; both are `floor((a * b +
    // 2^30) / 2^31)`, an arithmetic shift (no division: one `SMULL`, an add with carry
    // and a funnel shift on a Cortex-M, CMSIS-NN's `arm_nn_doubling_high_mult_no_sat`).
    // The result fits in i32 since |a * b| < 2^62 once the saturated case is excluded.
    ((a as i64 * b as i64 + (1 << 30)) >> 31) as i32
}

/// `x / 2^exponent` rounded to nearest, ties away from zero (a rounding arithmetic
/// right shift). `exponent` is clamped to `0..=31`.
#[inline]
pub const fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    let exponent = if exponent > 31 { 31 } else { exponent };
    // 32-bit: a 64-bit shift by a variable costs several instructions on a Cortex-M.
    let mask = (1u32 << exponent).wrapping_sub(1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + if x < 0 { 1 } else { 0 };
    (x >> exponent) + if remainder > threshold { 1 } else { 0 }
}

/// `x * 2^exponent` for `exponent` in `-31..=31`: a saturating left shift when
/// positive, [`rounding_divide_by_pot`] when negative.
#[inline]
pub const fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent > 0 {
        let exponent = if exponent > 31 { 31 } else { exponent };
        let threshold = ((1u32 << (31 - exponent)) - 1) as i32;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    } else {
        rounding_divide_by_pot(x, exponent.unsigned_abs())
    }
}

/// `x * multiplier * 2^(shift - 31)`, rounded as `rounding` says: the requantization
/// of TensorFlow Lite's `MultiplyByQuantizedMultiplier`.
///
/// `multiplier` is a Q0.31 value in `[2^30, 2^31)` (or 0) and `shift` lies in `-31..=30`,
/// as [`quantize_multiplier`](super::prepare::quantize_multiplier) returns them. Intermediate
/// overflow wraps as in the reference kernels, which are compiled without overflow
/// checks; the result is whatever they return.
#[inline]
pub const fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32, rounding: Rounding) -> i32 {
    let shift = if shift < -31 {
        -31
    } else if shift > 30 {
        30
    } else {
        shift
    };
    match rounding {
        Rounding::Double => {
            let left = if shift > 0 { shift as u32 } else { 0 };
            let right = if shift > 0 { 0 } else { shift.unsigned_abs() };
            rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x.wrapping_shl(left), multiplier), right)
        }
        Rounding::Single => {
            let total_shift = (31 - shift) as u32;
            let round = 1i64 << (total_shift - 1);
            ((x as i64 * multiplier as i64 + round) >> total_shift) as i32
        }
    }
}

/// The requantization of a value known to be scaled down (`shift <= 0`):
/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`. With double rounding it is
/// [`multiply_by_quantized_multiplier`] without the left shift; with single rounding
/// it is the same function.
#[inline]
pub const fn multiply_by_quantized_multiplier_smaller_than_one(
    x: i32,
    multiplier: i32,
    shift: i32,
    rounding: Rounding,
) -> i32 {
    match rounding {
        Rounding::Double => {
            let right = if shift > 0 { 0 } else { shift.unsigned_abs() };
            rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), right)
        }
        Rounding::Single => multiply_by_quantized_multiplier(x, multiplier, shift, rounding),
    }
}

/// The requantization of a value known to be scaled up (`shift >= 0`):
/// `MultiplyByQuantizedMultiplierGreaterThanOne`, used by softmax on its input
/// differences. With double rounding it is a left shift then the multiply-high; with
/// single rounding, [`multiply_by_quantized_multiplier`].
#[inline]
pub const fn multiply_by_quantized_multiplier_greater_than_one(
    x: i32,
    multiplier: i32,
    shift: i32,
    rounding: Rounding,
) -> i32 {
    match rounding {
        Rounding::Double => {
            let left = if shift > 0 { shift as u32 } else { 0 };
            saturating_rounding_doubling_high_mul(x.wrapping_shl(left), multiplier)
        }
        Rounding::Single => multiply_by_quantized_multiplier(x, multiplier, shift, rounding),
    }
}

/// `(a + b) / 2` rounded to nearest, ties away from zero (`VRHADD`).
#[inline]
const fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// A raw Q-format product: [`saturating_rounding_doubling_high_mul`].
#[inline]
const fn mul(a: i32, b: i32) -> i32 {
    saturating_rounding_doubling_high_mul(a, b)
}

/// `exp(a)` for `a` in `[-1/4, 0)`, both Q0.31: a fourth-order Taylor expansion
/// around `-1/8`.
const fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    // exp(-1/8) and 1/3 in Q0.31.
    const CONSTANT_TERM: i32 = 1_895_147_668;
    const ONE_THIRD: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28);
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let x4_over_24_plus_x3_over_6_plus_x2_over_2 =
        saturating_rounding_multiply_by_pot(mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), -1);
    CONSTANT_TERM.wrapping_add(mul(CONSTANT_TERM, x.wrapping_add(x4_over_24_plus_x3_over_6_plus_x2_over_2)))
}

/// `exp(a)` for `a <= 0` given in Q(`integer_bits`).(31 - `integer_bits`), returned in
/// Q0.31: gemmlowp's `exp_on_negative_values`, which splits `a` into a multiple of 1/4
/// (a product of tabulated `exp(-2^k)`) and a remainder in `[-1/4, 0)`.
/// `integer_bits` is clamped to `0..=29` (softmax uses 5).
pub const fn exp_on_negative_values(a: i32, integer_bits: u32) -> i32 {
    let integer_bits = if integer_bits > 29 { 29 } else { integer_bits };
    let fractional_bits = 31 - integer_bits;
    let one_quarter = 1i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_rounding_multiply_by_pot(
        a_mod_quarter_minus_one_quarter,
        integer_bits as i32,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^k) in Q0.31 for k = -2..=4.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    let mut k = 0;
    while k < BARREL.len() {
        let (exponent, multiplier) = BARREL[k];
        if integer_bits as i32 > exponent {
            let bit = (fractional_bits as i32 + exponent) as u32;
            if remainder & (1 << bit) != 0 {
                result = mul(result, multiplier);
            }
        }
        k += 1;
    }
    if integer_bits > 5 {
        let clamp = -(1i32 << (36 - integer_bits));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        i32::MAX
    } else {
        result
    }
}

/// `1 / (1 + a)` for `a` in `[0, 1)`, both Q0.31: three Newton-Raphson steps from
/// `48/17 - 32/17 * d`, gemmlowp's `one_over_one_plus_x_for_x_in_0_1`.
pub const fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    // 48/17 and -32/17 in Q2.29; one in Q2.29.
    const CONSTANT_48_OVER_17: i32 = 1_515_870_810;
    const CONSTANT_NEG_32_OVER_17: i32 = -1_010_580_540;
    const ONE_Q2: i32 = 1 << 29;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    let mut x = CONSTANT_48_OVER_17.wrapping_add(mul(half_denominator, CONSTANT_NEG_32_OVER_17));
    let mut step = 0;
    while step < 3 {
        let half_denominator_times_x = mul(half_denominator, x);
        let one_minus_half_denominator_times_x = ONE_Q2.wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(saturating_rounding_multiply_by_pot(mul(x, one_minus_half_denominator_times_x), 2));
        step += 1;
    }
    // x / 2 reinterpreted from Q2.29 as Q1.30, rescaled to Q0.31.
    saturating_rounding_multiply_by_pot(x, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_high_mul_rounds_ties_up_and_saturates() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        // 3 * 2^30 / 2^31 = 1.5 -> 2; -1.5 -> -1.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
    }

    #[test]
    fn rounding_divide_by_pot_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-4, 2), -1);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(6, 2), 2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    #[test]
    fn double_and_single_rounding_differ_on_a_negative_half() {
        // -2 * 0.5 * 2^-1 = -0.5: the high multiply is exact (-1), the shift rounds
        // the tie away from zero; the single rounding rounds it up.
        assert_eq!(multiply_by_quantized_multiplier(-2, 1 << 30, -1, Rounding::Double), -1);
        assert_eq!(multiply_by_quantized_multiplier(-2, 1 << 30, -1, Rounding::Single), 0);
        assert_eq!(multiply_by_quantized_multiplier(2, 1 << 30, -1, Rounding::Double), 1);
        assert_eq!(multiply_by_quantized_multiplier(2, 1 << 30, -1, Rounding::Single), 1);
        assert_eq!(multiply_by_quantized_multiplier(3, 1 << 30, -2, Rounding::Double), 1);
        assert_eq!(multiply_by_quantized_multiplier(3, 1 << 30, -2, Rounding::Single), 0);
        // 3 * 0.5 * 2^-2 = 0.375: the high multiply rounds 1.5 up to 2, the shift then
        // sees the tie 0.5 and rounds it to 1 (double rounding); once rounded, 0.
    }

    #[test]
    fn exp_of_zero_is_one_and_of_minus_one_is_e_inverse() {
        assert_eq!(exp_on_negative_values(0, 5), i32::MAX);
        // exp(-1) * 2^31 = 790015084.1; the polynomial and the products of tabulated
        // exp(-1/4) and exp(-1/2) stay within 1e-6 of it.
        let minus_one_q5 = -(1 << 26);
        let e = exp_on_negative_values(minus_one_q5, 5);
        assert!((e - 790_015_084).abs() <= 2_000, "{e}");
        // exp(-1/8) is the expansion's centre: its constant term exactly.
        assert_eq!(exp_on_negative_values(-(1 << 23), 5), 1_895_147_668);
    }

    #[test]
    fn one_over_one_plus_x_of_one_half_is_two_thirds() {
        let two_thirds = one_over_one_plus_x_for_x_in_0_1(1 << 30);
        assert!((two_thirds - 1_431_655_765).abs() <= 4, "{two_thirds}");
    }
}
