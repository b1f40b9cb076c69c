//! Int8 2-D convolution with groups (and so depthwise convolution, `groups ==
//! channels`, and 1-D convolution, height 1), per-output-channel requantization:
//!
//! ```text
//! acc[f, oy, ox] = b[f] + sum_{c, i, j} w[f, c, i, j] * (x[g * C/G + c, oy*sh + i*dh - ph, ox*sw + j*dw - pw] - zx)
//! y[f, oy, ox]   = clamp(requantize_f(acc) + zy)               (g = f / (F / G); taps outside the input skipped)
//! ```
//!
//! TensorFlow Lite's depthwise output channel `m + c * depth_multiplier` is filter `f`
//! of group `c` here, so its `[1, kh, kw, C * M]` filter is this kernel's
//! `[C * M, 1, kh, kw]`.

use super::dot::{self, Packed, PACK};
use super::fixed_point::Rounding;
use super::requantize::Requantizer;
use super::{channel_multipliers, check_len, checked_product, QuantError, QuantizedMultiplier};
use crate::kernels::conv::ConvGeometry;

/// The geometry and quantization of one int8 convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvParams {
    /// Input size, kernel, stride, padding before the first row and column, dilation,
    /// output size.
    pub geometry: ConvGeometry,
    /// The number of filters (output channels).
    pub filters: usize,
    /// Channel groups: each filter sees `channels / groups` input channels.
    pub groups: usize,
    /// Minus the input zero point.
    pub input_offset: i32,
    /// The output zero point.
    pub output_offset: i32,
    /// Lowest output.
    pub activation_min: i32,
    /// Highest output.
    pub activation_max: i32,
    /// The requantization rounding.
    pub rounding: Rounding,
}

/// One sample through an int8 convolution: `input[C, H, W]`, `filter[F, C / groups,
/// KH, KW]`, `bias[F]`, `multipliers[F]` (or one for all), `output[F, OH, OW]`.
pub fn conv2d(
    params: &ConvParams,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    multipliers: &[QuantizedMultiplier],
    output: &mut [i8],
) -> Result<(), QuantError> {
    conv2d_with(params, input, filter, bias, multipliers, output, GATHER)
}

/// Whether [`conv2d`] gathers patches where it can: on the Cortex-M4 and M7, where
/// `SMLAD` makes the shared patch pay; the plain per-row sums are faster on the
/// Cortex-M0 and RISC-V. Both give the same bits (tested below).
const GATHER: bool = cfg!(arm_dsp);

/// [`conv2d`], gathering patches (where the geometry allows) if `gather`.
fn conv2d_with(
    params: &ConvParams,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    multipliers: &[QuantizedMultiplier],
    output: &mut [i8],
    gather: bool,
) -> Result<(), QuantError> {
    const OP: &str = "conv2d";
    let g = &params.geometry;
    let (filters, groups) = (params.filters, params.groups);
    if groups == 0 || !g.channels.is_multiple_of(groups) || !filters.is_multiple_of(groups) {
        return Err(QuantError::Geometry { op: OP, reason: "channels and filters must be multiples of groups" });
    }
    if g.stride.contains(&0) || g.dilation.contains(&0) {
        return Err(QuantError::Geometry { op: OP, reason: "stride and dilation must be at least 1" });
    }
    let group_channels = g.channels / groups;
    let filters_per_group = filters / groups;
    let [kh, kw] = g.kernel;
    check_len(OP, "input", checked_product(OP, &[g.channels, g.height, g.width])?, input.len())?;
    check_len(OP, "filter", checked_product(OP, &[filters, group_channels, kh, kw])?, filter.len())?;
    check_len(OP, "output", checked_product(OP, &[filters, g.out_height, g.out_width])?, output.len())?;
    let multiplier = channel_multipliers(OP, filters, bias, multipliers)?;
    let p = params;
    let requantizer = Requantizer::new(p.rounding, p.output_offset, p.activation_min, p.activation_max, multipliers);
    let bias = |f: usize| bias.map_or(0, |b| b[f]);
    let requantize = |f: usize, acc: i32| requantizer.apply(acc.wrapping_add(bias(f)), multiplier(f));
    let plane = g.height * g.width;
    let out_plane = g.out_height * g.out_width;
    let patch = group_channels * kh * kw;
    let ([sh, sw], [dh, dw], [ph, pw]) = (g.stride, g.dilation, g.padding);
    // Several filters per group see the same patch of input: the patches of as many
    // positions as the buffer holds are gathered once per group (plus the input
    // offset, zeros for the taps outside the input, which the sums skip), then every
    // pair of filters of the group runs over them (`SMLAD` on the Cortex-M4 and M7, see
    // `dot.rs`), their weights, biases and multipliers fetched once per block.
    // (Compiled only where `conv2d` gathers, and for the test below: the per-row sums
    // of the other targets keep the code they had without it.)
    if cfg!(any(arm_dsp, test))
        && gather
        && filters_per_group >= 2
        && (1..=PACK).contains(&patch)
        && dot::offset_fits(params.input_offset)
    {
        let stride = 4 * Packed::groups_for(patch);
        let block = PACK / stride;
        let mut packed = Packed::new();
        for group in 0..groups {
            let channels = &input[group * group_channels * plane..(group + 1) * group_channels * plane];
            let group_filters = group * filters_per_group..(group + 1) * filters_per_group;
            let mut first = 0;
            while first < out_plane {
                let count = block.min(out_plane - first);
                let values = packed.patches(count, patch);
                for (k, position) in (first..first + count).enumerate() {
                    let (oy, ox) = (position / g.out_width, position % g.out_width);
                    let (i0, i1) = taps(oy, sh, dh, ph, kh, g.height);
                    let (j0, j1) = taps(ox, sw, dw, pw, kw, g.width);
                    let to = &mut values[k * stride..k * stride + patch];
                    if i1 - i0 < kh || j1 - j0 < kw {
                        to.fill(0);
                    }
                    // No column inside the input: no row either.
                    if j0 >= j1 {
                        continue;
                    }
                    let x0 = ox * sw + j0 * dw - pw;
                    for c in 0..group_channels {
                        let channel = &channels[c * plane..(c + 1) * plane];
                        for i in i0..i1 {
                            let y = oy * sh + i * dh - ph;
                            let row = &channel[y * g.width + x0..(y + 1) * g.width];
                            let to = &mut to[(c * kh + i) * kw + j0..(c * kh + i) * kw + j1];
                            if dw == 1 {
                                gather_row(to, row.iter(), params.input_offset);
                            } else {
                                gather_row(to, row.iter().step_by(dw), params.input_offset);
                            }
                        }
                    }
                }
                packed.interleave_patches(patch);
                let weights = |f: usize| &filter[f * patch..(f + 1) * patch];
                let mut f = group_filters.start;
                while f + 1 < group_filters.end {
                    let (w, b) = ([weights(f), weights(f + 1)], [bias(f), bias(f + 1)]);
                    let (m0, m1) = (multiplier(f), multiplier(f + 1));
                    let (y0, y1) = output[f * out_plane..(f + 2) * out_plane].split_at_mut(out_plane);
                    let outputs = y0[first..first + count].iter_mut().zip(&mut y1[first..first + count]);
                    for (k, (y0, y1)) in outputs.enumerate() {
                        let [a0, a1] = dot::dot2_window(b, w, packed.patch(k, patch));
                        *y0 = requantizer.apply(a0, m0);
                        *y1 = requantizer.apply(a1, m1);
                    }
                    f += 2;
                }
                if f < group_filters.end {
                    let (w, b, m) = (weights(f), bias(f), multiplier(f));
                    for (k, y) in output[f * out_plane + first..f * out_plane + first + count].iter_mut().enumerate() {
                        *y = requantizer.apply(dot::dot_window(b, w, packed.patch(k, patch)), m);
                    }
                }
                first += count;
            }
        }
        return Ok(());
    }
    // Position by position, over the taps that land inside the input (rows i0..i1,
    // columns j0..j1 of the kernel): no per-tap test. The i32 sums wrap, so their
    // order does not change the result.
    for oy in 0..g.out_height {
        let (i0, i1) = taps(oy, sh, dh, ph, kh, g.height);
        for ox in 0..g.out_width {
            let (j0, j1) = taps(ox, sw, dw, pw, kw, g.width);
            // No column inside the input: no row either. Otherwise the first tap's column.
            let rows = if j0 < j1 { i0..i1 } else { 0..0 };
            let x0 = if j0 < j1 { ox * sw + j0 * dw - pw } else { 0 };
            let position = oy * g.out_width + ox;
            for group in 0..groups {
                let channels = &input[group * group_channels * plane..(group + 1) * group_channels * plane];
                let group_filters = group * filters_per_group..(group + 1) * filters_per_group;
                for f in group_filters {
                    let weights = &filter[f * patch..(f + 1) * patch];
                    let mut acc = 0i32;
                    for c in 0..group_channels {
                        let channel = &channels[c * plane..(c + 1) * plane];
                        let kernel = &weights[c * kh * kw..(c + 1) * kh * kw];
                        for i in rows.clone() {
                            let y = oy * sh + i * dh - ph;
                            let w = &kernel[i * kw + j0..i * kw + j1];
                            let row = &channel[y * g.width + x0..(y + 1) * g.width];
                            acc = if dw == 1 {
                                dot(acc, w, row.iter(), params.input_offset)
                            } else {
                                dot(acc, w, row.iter().step_by(dw), params.input_offset)
                            };
                        }
                    }
                    output[f * out_plane + position] = requantize(f, acc);
                }
            }
        }
    }
    Ok(())
}

/// `to[k] = x[k] + input_offset` (an offset that [`dot::offset_fits`]).
#[inline(always)]
fn gather_row<'a>(to: &mut [i16], x: impl Iterator<Item = &'a i8>, input_offset: i32) {
    for (t, &x) in to.iter_mut().zip(x) {
        *t = (x as i32 + input_offset) as i16;
    }
}

/// `acc + sum_k w[k] * (x[k] + input_offset)`, wrapping, over the shorter of the two.
#[inline(always)]
fn dot<'a>(acc: i32, w: &[i8], x: impl Iterator<Item = &'a i8>, input_offset: i32) -> i32 {
    w.iter().zip(x).fold(acc, |acc, (&w, &v)| acc.wrapping_add((w as i32).wrapping_mul(v as i32 + input_offset)))
}

/// The kernel taps `k0..k1` whose input index `o * stride + k * dilation - padding`
/// lies in `0..size` (an empty range if none does, or if the index overflows).
#[inline]
fn taps(o: usize, stride: usize, dilation: usize, padding: usize, kernel: usize, size: usize) -> (usize, usize) {
    let Some(base) = o.checked_mul(stride) else { return (0, 0) };
    let first = if padding > base { (padding - base).div_ceil(dilation) } else { 0 };
    // Positions base + k * dilation below size + padding.
    let limit = size.saturating_add(padding);
    let end = if limit > base { (limit - base).div_ceil(dilation) } else { 0 };
    let (first, end) = (first.min(kernel), end.min(kernel));
    // The last tap's index must be computable: (end - 1) * dilation fits.
    if first >= end || (end - 1).checked_mul(dilation).and_then(|r| r.checked_add(base)).is_none() {
        return (0, 0);
    }
    (first, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gathered patches and the per-row sums give the same bits, over strides,
    /// dilations, paddings, groups, odd patch lengths and extreme offsets.
    #[test]
    fn gathered_patches_equal_the_row_sums() {
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        // (channels, groups, filters, size, kernel, stride, dilation, padding)
        let cases = [
            (1, 1, 8, [8, 8], [3, 3], [1, 1], [1, 1], [1, 1]),
            (4, 2, 6, [7, 5], [3, 2], [2, 1], [1, 2], [2, 0]),
            (3, 1, 5, [6, 9], [1, 5], [1, 3], [2, 1], [0, 3]),
            (6, 3, 6, [5, 5], [2, 2], [1, 1], [3, 3], [1, 2]),
            (4, 4, 8, [4, 6], [3, 3], [2, 2], [1, 1], [1, 1]),
            (70, 1, 3, [2, 2], [1, 1], [1, 1], [1, 1], [0, 0]),
        ];
        for (channels, groups, filters, [height, width], kernel, stride, dilation, padding) in cases {
            let out = |size: usize, k: usize, s: usize, d: usize, p: usize| (size + 2 * p - (k - 1) * d - 1) / s + 1;
            let geometry = ConvGeometry {
                channels,
                height,
                width,
                kernel,
                stride,
                padding,
                dilation,
                out_height: out(height, kernel[0], stride[0], dilation[0], padding[0]),
                out_width: out(width, kernel[1], stride[1], dilation[1], padding[1]),
            };
            let input: Vec<i8> = (0..channels * height * width).map(|_| next() as i8).collect();
            let filter: Vec<i8> =
                (0..filters * channels / groups * kernel[0] * kernel[1]).map(|_| next() as i8).collect();
            let bias: Vec<i32> = (0..filters).map(|_| next() as i32 >> 12).collect();
            let multipliers: Vec<QuantizedMultiplier> = (0..filters)
                .map(|_| QuantizedMultiplier {
                    multiplier: (1 << 30) + (next() >> 2) as i32,
                    shift: -((next() % 12) as i32),
                })
                .collect();
            for (input_offset, rounding) in
                [(128, Rounding::Double), (-127, Rounding::Single), (32_640, Rounding::Double)]
            {
                let params = ConvParams {
                    geometry,
                    filters,
                    groups,
                    input_offset,
                    output_offset: -3,
                    activation_min: -128,
                    activation_max: 127,
                    rounding,
                };
                let len = filters * geometry.out_height * geometry.out_width;
                let (mut gathered, mut rows) = (vec![0i8; len], vec![0i8; len]);
                conv2d_with(&params, &input, &filter, Some(&bias), &multipliers, &mut gathered, true).unwrap();
                conv2d_with(&params, &input, &filter, Some(&bias), &multipliers, &mut rows, false).unwrap();
                assert_eq!(gathered, rows, "channels {channels}, groups {groups}, offset {input_offset}");
                assert!(rows.iter().any(|&y| y != rows[0]), "a case whose outputs all agree tests little");
            }
        }
    }
}
