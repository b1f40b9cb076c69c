//! Reading safetensors files, with the rules of nn-core: the run-time loader
//! (`nn_core::io::load_safetensors`) and the compile-time `nn_core::include_weights!`
//! parse with [`parse`] and decode with [`read_values`], so a file one accepts the other
//! accepts, and a file one refuses the other refuses for the same reason.
//!
//! The format: an 8-byte little-endian header length `n`, `n` bytes of JSON header
//! (`{"__metadata__": {..}, "name": {"dtype", "shape", "data_offsets"}, ..}`, padded
//! with spaces to a multiple of 8), then the tensors' bytes, row-major and
//! little-endian, each at `data_offsets` relative to the end of the header.
//!
//! ```
//! use nn_safetensors::{parse, read_values, Rules, ValueError};
//!
//! // A header naming one F32 tensor of shape [2], then its 8 bytes: 1.0 and NaN.
//! let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
//! let mut file = (header.len() as u64).to_le_bytes().to_vec();
//! file.extend_from_slice(header);
//! file.extend_from_slice(&1.0f32.to_le_bytes());
//! file.extend_from_slice(&f32::NAN.to_le_bytes());
//!
//! let parsed = parse(&file).unwrap();
//! let view = parsed.tensor("w").unwrap();
//! let mut values = [0.0; 2];
//! let refused = read_values(&view, Rules::default(), &mut values);
//! assert!(matches!(refused, Err(ValueError::NonFinite { index: 1, .. })));
//! let allowed = Rules { allow_non_finite: true, ..Rules::default() };
//! assert_eq!(read_values(&view, allowed, &mut values), Ok(()));
//! assert_eq!(values[0], 1.0);
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

pub use safetensors::tensor::Metadata;
pub use safetensors::{Dtype, SafeTensorError};

/// The largest header safetensors readers accept.
pub const MAX_HEADER_BYTES: usize = 100_000_000;
/// The size of the header-length prefix.
pub const LEN_BYTES: usize = 8;

/// A parsed file: its header and its data section, every offset checked.
pub struct Parsed<'a> {
    header: Metadata,
    /// The tensor names, sorted.
    names: Vec<String>,
    data: &'a [u8],
}

/// One tensor of a parsed file.
pub struct View<'a> {
    /// Its element type.
    pub dtype: Dtype,
    /// Its shape, outermost dimension first.
    pub shape: &'a [usize],
    /// Its bytes, little-endian, row-major.
    pub bytes: &'a [u8],
}

impl View<'_> {
    /// The number of elements, the product of the shape (1 for a scalar); `None` if
    /// it overflows `usize`.
    pub fn elements(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }
}

impl Parsed<'_> {
    /// The tensor names, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The tensor `name`, if the file has it.
    pub fn tensor(&self, name: &str) -> Option<View<'_>> {
        let info = self.header.info(name)?;
        let (start, end) = info.data_offsets;
        Some(View { dtype: info.dtype, shape: &info.shape, bytes: self.data.get(start..end)? })
    }

    /// The header's `__metadata__` map.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        match self.header.metadata() {
            Some(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => BTreeMap::new(),
        }
    }
}

/// Parses and validates a whole file held in memory.
///
/// The checks are those of `SafeTensors::read_metadata`, in checked arithmetic:
/// safetensors 0.8 adds the header length to the declared data length unchecked, so a
/// crafted header whose offsets sum to nearly `usize::MAX` panics there (in builds with
/// overflow checks) instead of failing. Here every input gives `Ok` or an error.
pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, SafeTensorError> {
    let prefix: [u8; LEN_BYTES] = match bytes.get(..LEN_BYTES).map(<[u8; LEN_BYTES]>::try_from) {
        Some(Ok(prefix)) => prefix,
        _ => return Err(SafeTensorError::HeaderTooSmall),
    };
    let n = usize::try_from(u64::from_le_bytes(prefix)).map_err(|_| SafeTensorError::HeaderTooLarge)?;
    if n > MAX_HEADER_BYTES {
        return Err(SafeTensorError::HeaderTooLarge);
    }
    let data_start = n.checked_add(LEN_BYTES).ok_or(SafeTensorError::InvalidHeaderLength)?;
    let header = bytes.get(LEN_BYTES..data_start).ok_or(SafeTensorError::InvalidHeaderLength)?;
    let header = core::str::from_utf8(header).map_err(SafeTensorError::InvalidHeader)?;
    // `Metadata`'s deserializer validates the offsets: contiguous from 0, each span the
    // size that the shape and dtype give, no overflow.
    let header: Metadata = serde_json::from_str(header).map_err(SafeTensorError::InvalidHeaderDeserialization)?;
    let data = bytes.get(data_start..).ok_or(SafeTensorError::InvalidHeaderLength)?;
    if header.data_len() != data.len() {
        return Err(SafeTensorError::MetadataIncompleteBuffer);
    }
    let mut names = header.offset_keys();
    names.sort();
    Ok(Parsed { header, names, data })
}

/// What a reader accepts beyond finite `F32` values. The default is strict, the rule of
/// both `load_safetensors` (`LoadOptions::default()`) and `include_weights!`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Convert `F16` and `BF16` (exactly), `F64` (rounding to nearest), `I64` and `I32`
    /// (exact up to 2^24) to `f32`.
    pub convert_dtypes: bool,
    /// Accept NaN and infinities.
    pub allow_non_finite: bool,
}

/// Why [`read_values`] refused a tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueError {
    /// The element type is not `F32` and the rules do not convert it (or it cannot be
    /// converted, or the byte count does not match the output).
    Dtype {
        /// The tensor's element type.
        found: Dtype,
    },
    /// A value is NaN or infinite and the rules do not allow it.
    NonFinite {
        /// The row-major index of the first such element.
        index: usize,
        /// Its value.
        value: f32,
    },
}

/// The element types [`Rules::convert_dtypes`] converts.
pub fn convertible(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F64 | Dtype::I64 | Dtype::I32)
}

/// Decodes the tensor `view` into `out` (one `f32` per element), checking its element
/// type and, unless [`Rules::allow_non_finite`], that every value is finite.
pub fn read_values(view: &View<'_>, rules: Rules, out: &mut [f32]) -> Result<(), ValueError> {
    let convert = rules.convert_dtypes && convertible(view.dtype);
    if !(view.dtype == Dtype::F32 || convert) || !decode(view.dtype, view.bytes, out) {
        return Err(ValueError::Dtype { found: view.dtype });
    }
    if !rules.allow_non_finite {
        if let Some(index) = out.iter().position(|v| !v.is_finite()) {
            return Err(ValueError::NonFinite { index, value: out[index] });
        }
    }
    Ok(())
}

/// The multi-index `[i, j, ..]` of row-major element `index` of a tensor of `shape`.
pub fn position(shape: &[usize], mut index: usize) -> Vec<usize> {
    let mut at = vec![0; shape.len()];
    for (a, &d) in at.iter_mut().zip(shape).rev() {
        if d > 0 {
            *a = index % d;
            index /= d;
        }
    }
    at
}

/// Decodes little-endian `bytes` of `dtype` into `out`. `F32` is copied bit for bit;
/// `F16` and `BF16` widen exactly; `F64`, `I64` and `I32` round to the nearest `f32`
/// (integers are exact up to 2^24). Returns `false` for any other dtype or a length
/// that does not match.
fn decode(dtype: Dtype, bytes: &[u8], out: &mut [f32]) -> bool {
    fn each<const N: usize>(bytes: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32) -> bool {
        if Some(bytes.len()) != out.len().checked_mul(N) {
            return false;
        }
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(N)) {
            let mut a = [0u8; N];
            a.copy_from_slice(b);
            *o = f(a);
        }
        true
    }
    match dtype {
        Dtype::F32 => each(bytes, out, f32::from_le_bytes),
        Dtype::F64 => each(bytes, out, |b| f64::from_le_bytes(b) as f32),
        Dtype::I64 => each(bytes, out, |b| i64::from_le_bytes(b) as f32),
        Dtype::I32 => each(bytes, out, |b| i32::from_le_bytes(b) as f32),
        Dtype::BF16 => each(bytes, out, |b| f32::from_bits((u16::from_le_bytes(b) as u32) << 16)),
        Dtype::F16 => each(bytes, out, |b| f16_to_f32(u16::from_le_bytes(b))),
        _ => false,
    }
}

/// IEEE 754 binary16 to binary32, exact: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) >> 15) << 31;
    let exponent = ((h >> 10) & 0x1f) as u32;
    let mantissa = (h & 0x3ff) as u32;
    let bits = match exponent {
        // Zero and subnormals: mantissa * 2^-24.
        0 => {
            let magnitude = mantissa as f32 * (1.0 / 16_777_216.0);
            return f32::from_bits(sign | magnitude.to_bits());
        }
        // Infinities and NaNs keep their payload.
        0x1f => 0x7f80_0000 | (mantissa << 13),
        // Normal: rebias the exponent from 15 to 127.
        _ => ((exponent + 112) << 23) | (mantissa << 13),
    };
    f32::from_bits(sign | bits)
}
