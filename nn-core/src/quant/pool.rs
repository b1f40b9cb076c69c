//! Int8 max and average pooling over `[C, H, W]` planes.
//!
//! Windows are clipped to the input (padding is neither a maximum nor counted in the
//! average). The average divides the window's sum by the number of inputs it covers,
//! rounding half away from zero: `(sum ± n / 2) / n`. TensorFlow Lite requires pooling
//! outputs to keep the input's scale and zero point, so nothing is requantized.

use super::{check_len, checked_product, clamp_to_i8, QuantError};
use crate::kernels::pool::PoolGeometry;

/// The geometry and output clamp of one int8 pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Plane size, window, stride, padding before the first row and column, output size.
    pub geometry: PoolGeometry,
    /// Lowest output (from a fused activation).
    pub activation_min: i32,
    /// Highest output.
    pub activation_max: i32,
}

fn check(op: &'static str, params: &PoolParams, input: &[i8], output: &[i8]) -> Result<usize, QuantError> {
    let g = &params.geometry;
    if g.stride.contains(&0) {
        return Err(QuantError::Geometry { op, reason: "stride must be at least 1" });
    }
    let plane = checked_product(op, &[g.height, g.width])?;
    if plane == 0 {
        return Err(QuantError::Geometry { op, reason: "empty input plane" });
    }
    let channels = input.len() / plane;
    check_len(op, "input", checked_product(op, &[channels, plane])?, input.len())?;
    check_len(op, "output", checked_product(op, &[channels, g.out_height, g.out_width])?, output.len())?;
    Ok(channels)
}

/// Int8 max pooling of `input[C, H, W]` into `output[C, OH, OW]`.
pub fn max_pool2d(params: &PoolParams, input: &[i8], output: &mut [i8]) -> Result<(), QuantError> {
    let channels = check("max_pool2d", params, input, output)?;
    let g = &params.geometry;
    let (plane, out_plane) = (g.height * g.width, g.out_height * g.out_width);
    for c in 0..channels {
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                let (rows, cols) = g.window(oy, ox);
                let mut max = i8::MIN;
                for y in rows {
                    for x in cols.clone() {
                        max = max.max(input[c * plane + y * g.width + x]);
                    }
                }
                output[c * out_plane + oy * g.out_width + ox] =
                    clamp_to_i8(max as i32, params.activation_min, params.activation_max);
            }
        }
    }
    Ok(())
}

/// Int8 average pooling of `input[C, H, W]` into `output[C, OH, OW]`. A window that
/// covers no input is a geometry error.
pub fn average_pool2d(params: &PoolParams, input: &[i8], output: &mut [i8]) -> Result<(), QuantError> {
    const OP: &str = "average_pool2d";
    let channels = check(OP, params, input, output)?;
    let g = &params.geometry;
    let (plane, out_plane) = (g.height * g.width, g.out_height * g.out_width);
    for c in 0..channels {
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                let (rows, cols) = g.window(oy, ox);
                let count = (rows.len() * cols.len()) as i32;
                if count == 0 {
                    return Err(QuantError::Geometry { op: OP, reason: "a pooling window covers no input" });
                }
                let mut sum = 0i32;
                for y in rows {
                    for x in cols.clone() {
                        sum += input[c * plane + y * g.width + x] as i32;
                    }
                }
                // Division truncates toward zero, so this rounds half away from zero.
                let average = if sum > 0 { (sum + count / 2) / count } else { (sum - count / 2) / count };
                output[c * out_plane + oy * g.out_width + ox] =
                    clamp_to_i8(average, params.activation_min, params.activation_max);
            }
        }
    }
    Ok(())
}
