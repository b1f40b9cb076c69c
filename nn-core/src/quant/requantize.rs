//! The requantization of every output of [`fully_connected`](super::fully_connected)
//! and [`conv2d`](super::conv2d): `clamp(multiply_by_quantized_multiplier(acc, m) +
//! output_offset)` to the activation range and int8, with the layer's constants
//! prepared once per call ([`Requantizer::new`]) rather than once per output.
//!
//! With double rounding (TensorFlow Lite Micro's default) and multipliers as
//! [`quantize_multiplier`](super::prepare::quantize_multiplier) makes them (any but
//! `i32::MIN`, shifts in `-31..=30`) each output takes the form of CMSIS-NN's
//! `arm_nn_requantize`: a left shift, one 32x32->64 multiply-add (`SMLAL` on a
//! Cortex-M3/M4/M7) whose high word is the rounding doubling high multiply, then the
//! rounding right shift as a mask, a compare and an add; no saturation test, since a
//! multiplier of `i32::MIN`, the one case that saturates, is excluded. Every
//! other case (single rounding, other multipliers) takes the reference functions of
//! [`fixed_point`](super::fixed_point). Both give the same bits (tested below).

use super::fixed_point::{multiply_by_quantized_multiplier, Rounding};
use super::QuantizedMultiplier;

/// One layer's requantization: output offset, clamp, rounding.
#[derive(Clone, Copy, Debug)]
pub(super) struct Requantizer {
    output_offset: i32,
    /// The activation range intersected with int8 (see [`Requantizer::new`]).
    low: i32,
    high: i32,
    rounding: Rounding,
    /// Double rounding, no multiplier `i32::MIN` and every shift in `-31..=30`.
    fast: bool,
}

impl Requantizer {
    /// The requantization of a layer with these constants and multipliers.
    pub(super) fn new(
        rounding: Rounding,
        output_offset: i32,
        min: i32,
        max: i32,
        multipliers: &[QuantizedMultiplier],
    ) -> Self {
        // The prepared form is exact for every multiplier but `i32::MIN` (the one that
        // saturates) and every shift the reference does not clamp.
        let prepared = |m: &QuantizedMultiplier| m.multiplier != i32::MIN && (-31..=30).contains(&m.shift);
        Requantizer {
            output_offset,
            // `v.max(min).min(max).clamp(-128, 127)` is `v.max(low).min(high)` with both
            // bounds clamped to int8, whatever `min` and `max` are (`min > max`
            // included: both give `max` clamped).
            low: min.clamp(-128, 127),
            high: max.clamp(-128, 127),
            rounding,
            fast: rounding == Rounding::Double && multipliers.iter().all(prepared),
        }
    }

    /// The int8 output of accumulator `acc` (bias included) under multiplier `m`.
    #[inline(always)]
    pub(super) fn apply(&self, acc: i32, m: QuantizedMultiplier) -> i8 {
        let scaled = if self.fast {
            double_rounding(acc, m.multiplier, m.shift)
        } else {
            multiply_by_quantized_multiplier(acc, m.multiplier, m.shift, self.rounding)
        };
        scaled.wrapping_add(self.output_offset).max(self.low).min(self.high) as i8
    }
}

/// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc << left, multiplier),
/// right)` for `multiplier != i32::MIN` and `shift` in `-31..=30`.
#[inline(always)]
fn double_rounding(acc: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.max(0) as u32;
    let right = (-shift).max(0) as u32;
    // floor((a * m + 2^30) / 2^31): the doubling high multiply, whose only saturating
    // case (both operands i32::MIN) the multiplier excludes.
    let high = ((acc.wrapping_shl(left) as i64 * multiplier as i64 + (1 << 30)) >> 31) as i32;
    // Rounding right shift, ties away from zero: the floor plus one when the remainder
    // exceeds half (half minus one for non-negative values).
    let mask = (1u32 << right).wrapping_sub(1) as i32;
    let threshold = (mask >> 1) + ((high as u32) >> 31) as i32;
    (high >> right) + ((high & mask) > threshold) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::clamp_to_i8;

    /// The prepared form equals the reference on exact halves, extremes and a sweep of
    /// accumulators, multipliers and shifts, for both roundings and odd clamps.
    #[test]
    fn prepared_requantization_equals_the_reference() {
        let mut seed = 0x9e37_79b9_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut accs = alloc::vec![0, 1, -1, 2, -2, 3, -3, i32::MAX, i32::MIN, i32::MAX - 1, i32::MIN + 1];
        // Exact halves after the shift: odd multiples of 2^(r-1).
        for r in 1..=31u32 {
            accs.extend([1i32 << (r - 1), -(1i32 << (r - 1)), 3i32.wrapping_shl(r - 1), -3i32.wrapping_shl(r - 1)]);
        }
        accs.extend((0..400).map(|_| next() as i32));
        accs.extend((0..400).map(|_| (next() as i32) >> 12));
        let mut multipliers = alloc::vec![0, 1 << 30, i32::MAX, (1 << 30) + 1, 1_518_500_250];
        multipliers.extend((0..20).map(|_| (1 << 30) | (next() >> 2) as i32));
        for rounding in [Rounding::Double, Rounding::Single] {
            for (min, max) in [(-128, 127), (0, 127), (-128, -100), (-300, 300), (20, 10)] {
                for &multiplier in &multipliers {
                    for shift in -31..=30 {
                        let m = QuantizedMultiplier { multiplier, shift };
                        let r = Requantizer::new(rounding, -7, min, max, &[m]);
                        assert_eq!(r.fast, rounding == Rounding::Double);
                        for &acc in &accs {
                            let reference = multiply_by_quantized_multiplier(acc, multiplier, shift, rounding);
                            let expected = clamp_to_i8(reference.wrapping_add(-7), min, max);
                            assert_eq!(r.apply(acc, m), expected, "{acc} {multiplier} {shift} {rounding:?}");
                        }
                    }
                }
            }
        }
        // A multiplier outside the canonical range takes the reference path.
        let odd = QuantizedMultiplier { multiplier: i32::MIN, shift: 0 };
        let r = Requantizer::new(Rounding::Double, 0, -128, 127, &[odd]);
        assert!(!r.fast);
        assert_eq!(r.apply(i32::MIN, odd), 127);
    }
}
