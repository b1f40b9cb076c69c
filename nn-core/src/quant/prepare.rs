//! Preparation: the integer parameters of the int8 kernels, derived from the real
//! scales and zero points once, before inference, exactly as TensorFlow Lite Micro's
//! `Prepare` functions derive them (in `f64`, or in `f32` where it computes in `f32`).
//! This is the only place in [`quant`](super) that uses floating point.

use super::fixed_point::Rounding;

/// A real multiplier `multiplier * 2^(shift - 31)` in fixed point: the Q0.31
/// `multiplier` in `[2^30, 2^31)` (or 0 for a zero scale) and the power-of-two `shift`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuantizedMultiplier {
    /// The Q0.31 significand.
    pub multiplier: i32,
    /// The power of two: positive shifts left, negative right.
    pub shift: i32,
}

/// `QuantizeMultiplier`: the significand and exponent of `real`, `real = q * 2^shift`
/// with `q` in `[0.5, 1)` rounded to 31 bits (ties away from zero). Multipliers below
/// `2^-32` flush to zero; with single rounding, shifts above 30 saturate.
pub fn quantize_multiplier(real: f64, rounding: Rounding) -> QuantizedMultiplier {
    if real == 0.0 || !real.is_finite() {
        return QuantizedMultiplier::default();
    }
    let (fraction, mut shift) = libm::frexp(real);
    let mut q_fixed = libm::round(fraction * (1i64 << 31) as f64) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    if rounding == Rounding::Single && shift > 30 {
        shift = 30;
        q_fixed = (1i64 << 31) - 1;
    }
    QuantizedMultiplier { multiplier: q_fixed as i32, shift }
}

/// The activation fused into an int8 operator: it becomes the clamp range of the
/// output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FusedActivation {
    /// No clamp beyond the int8 range.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

/// `CalculateActivationRangeQuantized` for an int8 output with this scale and zero
/// point: `[max(-128, q(0)), 127]` for ReLU and `[max(-128, q(0)), min(127, q(6))]` for
/// ReLU6, with `q(x) = zero_point + round(x / scale)` in `f32`.
pub fn activation_range(activation: FusedActivation, scale: f32, zero_point: i32) -> (i32, i32) {
    let quantize = |x: f32| zero_point.saturating_add(libm::roundf(x / scale) as i32);
    match activation {
        FusedActivation::None => (-128, 127),
        FusedActivation::Relu => (quantize(0.0).max(-128), 127),
        FusedActivation::Relu6 => (quantize(0.0).max(-128), quantize(6.0).min(127)),
    }
}

/// The per-output-channel requantization of a convolution or a per-channel fully
/// connected layer: `input_scale * filter_scale / output_scale` in `f64`.
pub fn channel_multiplier(
    input_scale: f32,
    filter_scale: f32,
    output_scale: f32,
    rounding: Rounding,
) -> QuantizedMultiplier {
    quantize_multiplier(input_scale as f64 * filter_scale as f64 / output_scale as f64, rounding)
}

/// The requantization of a fully connected layer with one weight scale
/// (`GetQuantizedConvolutionMultipler`): the two scales are multiplied in `f32` first.
pub fn tensor_multiplier(
    input_scale: f32,
    filter_scale: f32,
    output_scale: f32,
    rounding: Rounding,
) -> QuantizedMultiplier {
    quantize_multiplier((input_scale * filter_scale) as f64 / output_scale as f64, rounding)
}

/// `PreprocessSoftmaxScaling` and `CalculateInputRadius` for an int8 softmax with
/// input differences in Q5.26: the multiplier of `beta * input_scale * 2^26` (capped
/// below `2^31`, or `2^30` with single rounding) and the most negative input
/// difference that still contributes.
pub fn softmax_params(beta: f32, input_scale: f32, rounding: Rounding) -> super::SoftmaxParams {
    const SCALED_DIFF_INTEGER_BITS: i32 = 5;
    let max_real = match rounding {
        Rounding::Double => ((1i64 << 31) - 1) as f64,
        Rounding::Single => ((1i64 << 30) - 1) as f64,
    };
    let real = (beta as f64 * input_scale as f64 * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64).min(max_real);
    let input = quantize_multiplier(real, rounding);
    // floor(31 * 2^26 / 2^shift), exact in integers for a shift in 0..=31.
    let radius =
        (((1i64 << SCALED_DIFF_INTEGER_BITS) - 1) << (31 - SCALED_DIFF_INTEGER_BITS)) >> input.shift.clamp(0, 62);
    super::SoftmaxParams { input, diff_min: -(radius as i32), rounding }
}

/// `CalculateOpDataAdd` for int8: both inputs are rescaled to `2 * max(scale1, scale2)`
/// after a left shift of 20 bits, summed, then rescaled to the output.
pub fn add_params(
    input1: (f32, i32),
    input2: (f32, i32),
    output: (f32, i32),
    activation: FusedActivation,
    rounding: Rounding,
) -> super::AddParams {
    const LEFT_SHIFT: i32 = 20;
    let twice_max_input_scale = 2.0 * input1.0.max(input2.0) as f64;
    let (activation_min, activation_max) = activation_range(activation, output.0, output.1);
    super::AddParams {
        input1_offset: -input1.1,
        input2_offset: -input2.1,
        output_offset: output.1,
        left_shift: LEFT_SHIFT,
        input1_multiplier: quantize_multiplier(input1.0 as f64 / twice_max_input_scale, rounding),
        input2_multiplier: quantize_multiplier(input2.0 as f64 / twice_max_input_scale, rounding),
        output_multiplier: quantize_multiplier(
            twice_max_input_scale / ((1i64 << LEFT_SHIFT) as f64 * output.0 as f64),
            rounding,
        ),
        activation_min,
        activation_max,
        rounding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_multiplier_splits_significand_and_exponent() {
        assert_eq!(quantize_multiplier(0.5, Rounding::Double), QuantizedMultiplier { multiplier: 1 << 30, shift: 0 });
        assert_eq!(quantize_multiplier(0.25, Rounding::Double), QuantizedMultiplier { multiplier: 1 << 30, shift: -1 });
        assert_eq!(quantize_multiplier(3.0, Rounding::Double), QuantizedMultiplier { multiplier: 3 << 29, shift: 2 });
        // 1 - 2^-40 rounds up to 2^31 and renormalizes.
        let nearly_one = 1.0 - libm::ldexp(1.0, -40);
        assert_eq!(
            quantize_multiplier(nearly_one, Rounding::Double),
            QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }
        );
        assert_eq!(quantize_multiplier(1e-12, Rounding::Double), QuantizedMultiplier::default());
        assert_eq!(quantize_multiplier(0.0, Rounding::Double), QuantizedMultiplier::default());
        assert_eq!(quantize_multiplier(1e10, Rounding::Double).shift, 34);
        assert_eq!(
            quantize_multiplier(1e10, Rounding::Single),
            QuantizedMultiplier { multiplier: i32::MAX, shift: 30 }
        );
    }

    #[test]
    fn relu_ranges_quantize_zero_and_six() {
        assert_eq!(activation_range(FusedActivation::Relu, 0.05, -10), (-10, 127));
        assert_eq!(activation_range(FusedActivation::Relu6, 0.05, -128), (-128, -8));
        assert_eq!(activation_range(FusedActivation::Relu6, 0.01, -20), (-20, 127));
        assert_eq!(activation_range(FusedActivation::None, 0.01, 3), (-128, 127));
    }
}
