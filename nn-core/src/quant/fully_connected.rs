//! Int8 fully connected (Dense): `y[o] = clamp(requantize(sum_i w[o, i] * (x[i] - zx) + b[o]) + zy)`.

use super::dot::{self, Packed, PACK};
use super::fixed_point::Rounding;
use super::requantize::Requantizer;
use super::{channel_multipliers, check_len, checked_product, QuantError, QuantizedMultiplier};

/// Outputs whose sums are kept at a time while the input is packed in pieces.
pub(super) const BLOCK: usize = 32;

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
/// With symmetric weights (the specification's case) the input plus its offset is
/// packed once per 128 inputs and every row of weights runs over it two at a time
/// (`SMLAD` on the Cortex-M4 and M7, see `dot.rs`); the same bits as the plain sums.
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
    let p = params;
    let requantizer = Requantizer::new(p.rounding, p.output_offset, p.activation_min, p.activation_max, multipliers);
    let bias = |o: usize| bias.map_or(0, |b| b[o]);
    let requantize = |o: usize, sum: i32| requantizer.apply(bias(o).wrapping_add(sum), multiplier(o));
    if params.filter_offset != 0 || !dot::offset_fits(params.input_offset) {
        // Offsets outside the specification's: the plain sums.
        for (o, y) in output.iter_mut().enumerate() {
            let row = &filter[o * inputs..(o + 1) * inputs];
            let sum = row.iter().zip(input).fold(0i32, |sum, (&w, &x)| {
                sum.wrapping_add((w as i32 + params.filter_offset).wrapping_mul(x as i32 + params.input_offset))
            });
            *y = requantize(o, sum);
        }
        return Ok(());
    }
    let mut packed = Packed::new();
    if (1..=PACK).contains(&inputs) {
        // The input packed once; each pair of rows summed from its biases and
        // requantized at once.
        packed.pack(input, params.input_offset);
        let mut pairs = output.chunks_exact_mut(2);
        let mut rows = filter.chunks_exact(2 * inputs);
        let mut o = 0;
        for (y, w) in (&mut pairs).zip(&mut rows) {
            let (w0, w1) = w.split_at(inputs);
            let [a, b] = dot::dot2([bias(o), bias(o + 1)], [w0, w1], &packed);
            y[0] = requantizer.apply(a, multiplier(o));
            y[1] = requantizer.apply(b, multiplier(o + 1));
            o += 2;
        }
        if let [y] = pairs.into_remainder() {
            *y = requantizer.apply(dot::dot(bias(o), rows.remainder(), &packed), multiplier(o));
        }
        return Ok(());
    }
    let mut sums = [0i32; BLOCK];
    for o0 in (0..outputs).step_by(BLOCK) {
        let sums = &mut sums[..BLOCK.min(outputs - o0)];
        sums.fill(0);
        for i0 in (0..inputs).step_by(PACK) {
            let n = PACK.min(inputs - i0);
            packed.pack(&input[i0..i0 + n], params.input_offset);
            let row = |o: usize| &filter[o * inputs + i0..o * inputs + i0 + n];
            let mut pairs = sums.chunks_exact_mut(2);
            let mut o = o0;
            for pair in &mut pairs {
                let [a, b] = dot::dot2([pair[0], pair[1]], [row(o), row(o + 1)], &packed);
                (pair[0], pair[1]) = (a, b);
                o += 2;
            }
            if let [last] = pairs.into_remainder() {
                *last = dot::dot(*last, row(o), &packed);
            }
        }
        for (k, (y, &sum)) in output[o0..o0 + sums.len()].iter_mut().zip(sums.iter()).enumerate() {
            *y = requantize(o0 + k, sum);
        }
    }
    Ok(())
}
