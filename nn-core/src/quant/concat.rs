//! Int8 concatenation along channels.

use super::{check_len, QuantError};

/// Concatenation of `[C_k, H, W]` tensors along channels into `output[sum C_k, H, W]`:
/// the parts one after another. TensorFlow Lite quantizes every part with the output's
/// scale and zero point, so the values are copied unchanged.
pub fn concat(parts: &[&[i8]], output: &mut [i8]) -> Result<(), QuantError> {
    let total = parts
        .iter()
        .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
        .ok_or(QuantError::Geometry { op: "concat", reason: "size overflows usize" })?;
    check_len("concat", "output", total, output.len())?;
    let mut start = 0;
    for part in parts {
        output[start..start + part.len()].copy_from_slice(part);
        start += part.len();
    }
    Ok(())
}
