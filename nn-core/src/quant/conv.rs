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

use super::fixed_point::{multiply_by_quantized_multiplier, Rounding};
use super::{channel_multipliers, check_len, checked_product, clamp_to_i8, QuantError, QuantizedMultiplier};
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
    let plane = g.height * g.width;
    let out_plane = g.out_height * g.out_width;
    for f in 0..filters {
        let first_channel = (f / filters_per_group) * group_channels;
        let weights = &filter[f * group_channels * kh * kw..(f + 1) * group_channels * kh * kw];
        let m = multiplier(f);
        let b = bias.map_or(0, |b| b[f]);
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                let mut acc = 0i32;
                for i in 0..kh {
                    let Some(y) = tap(oy, i, g.stride[0], g.dilation[0], g.padding[0], g.height) else { continue };
                    for j in 0..kw {
                        let Some(x) = tap(ox, j, g.stride[1], g.dilation[1], g.padding[1], g.width) else { continue };
                        for c in 0..group_channels {
                            let v = input[(first_channel + c) * plane + y * g.width + x] as i32 + params.input_offset;
                            let w = weights[(c * kh + i) * kw + j] as i32;
                            acc = acc.wrapping_add(w.wrapping_mul(v));
                        }
                    }
                }
                let scaled =
                    multiply_by_quantized_multiplier(acc.wrapping_add(b), m.multiplier, m.shift, params.rounding)
                        .wrapping_add(params.output_offset);
                output[f * out_plane + oy * g.out_width + ox] =
                    clamp_to_i8(scaled, params.activation_min, params.activation_max);
            }
        }
    }
    Ok(())
}

/// The input index `o * stride + k * dilation - padding` if it lies in `0..size`.
#[inline]
fn tap(o: usize, k: usize, stride: usize, dilation: usize, padding: usize, size: usize) -> Option<usize> {
    let index = o.checked_mul(stride)?.checked_add(k.checked_mul(dilation)?)?.checked_sub(padding)?;
    (index < size).then_some(index)
}
