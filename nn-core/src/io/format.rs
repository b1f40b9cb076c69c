//! The safetensors format: an 8-byte little-endian header length `n`, `n` bytes of JSON
//! header (`{"__metadata__": {..}, "name": {"dtype", "shape", "data_offsets"}, ..}`,
//! padded with spaces to a multiple of 8), then the tensors' bytes, row-major and
//! little-endian, each at `data_offsets` relative to the end of the header.
use std::collections::BTreeMap;
use std::io::Write;

use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensorError};

use super::SaveError;

/// The largest header safetensors readers accept.
const MAX_HEADER_BYTES: usize = 100_000_000;
/// The size of the header-length prefix.
const LEN_BYTES: usize = 8;

/// One tensor to write: its name in the file, its PyTorch shape and its values.
pub(crate) struct Entry<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: &'a [f32],
}

/// Writes `entries` and `metadata` as a safetensors file.
///
/// The layout is the `safetensors` crate's (and so Python's `save_file`'s): tensors
/// sorted by name, data in the same order, the header's keys in the same order, the
/// header padded with spaces to 8 bytes. Unlike the crate, the metadata keys are
/// sorted, so the same model always gives the same bytes.
pub(crate) fn write(
    w: &mut dyn Write,
    entries: &mut [Entry<'_>],
    metadata: &BTreeMap<String, String>,
) -> Result<(), SaveError> {
    let header = header(entries, metadata)?;
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(&header)?;
    // Converted in blocks: the bytes of a large tensor are never all in memory twice.
    let mut block = Vec::with_capacity(4 * 4096);
    for entry in entries.iter() {
        for chunk in entry.data.chunks(4096) {
            block.clear();
            chunk.iter().for_each(|v| block.extend_from_slice(&v.to_le_bytes()));
            w.write_all(&block)?;
        }
    }
    Ok(())
}

/// The padded JSON header; sorts `entries` by name.
fn header(entries: &mut [Entry<'_>], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>, SaveError> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = entries.windows(2).find(|pair| pair[0].name == pair[1].name) {
        return Err(SaveError::DuplicateTensor { name: pair[0].name.clone() });
    }
    let mut json = String::from("{");
    if !metadata.is_empty() {
        json.push_str("\"__metadata__\":{");
        for (i, (key, value)) in metadata.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            push_json_string(&mut json, key);
            json.push(':');
            push_json_string(&mut json, value);
        }
        json.push('}');
    }
    let mut offset = 0;
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 || !metadata.is_empty() {
            json.push(',');
        }
        push_json_string(&mut json, &entry.name);
        json.push_str(":{\"dtype\":\"F32\",\"shape\":[");
        for (j, d) in entry.shape.iter().enumerate() {
            if j > 0 {
                json.push(',');
            }
            json.push_str(&d.to_string());
        }
        let end = offset + 4 * entry.data.len();
        json.push_str(&format!("],\"data_offsets\":[{offset},{end}]}}"));
        offset = end;
    }
    json.push('}');
    let mut bytes = json.into_bytes();
    bytes.resize(bytes.len().next_multiple_of(LEN_BYTES), b' ');
    if bytes.len() > MAX_HEADER_BYTES {
        return Err(SaveError::HeaderTooLarge { bytes: bytes.len() });
    }
    Ok(bytes)
}

/// Appends `s` as a JSON string literal, escaped.
fn push_json_string(json: &mut String, s: &str) {
    // Serialising a `str` cannot fail.
    json.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// A parsed file: its header and its data section, every offset checked.
pub(crate) struct Parsed<'a> {
    header: Metadata,
    /// The tensor names, sorted.
    names: Vec<String>,
    data: &'a [u8],
}

/// One tensor of a parsed file.
pub(crate) struct View<'a> {
    pub dtype: Dtype,
    pub shape: &'a [usize],
    pub bytes: &'a [u8],
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
/// overflow checks) instead of failing.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed<'_>, SafeTensorError> {
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
    let data = &bytes[data_start..];
    if header.data_len() != data.len() {
        return Err(SafeTensorError::MetadataIncompleteBuffer);
    }
    let mut names = header.offset_keys();
    names.sort();
    Ok(Parsed { header, names, data })
}

/// Decodes little-endian `bytes` of `dtype` into `out`. `F32` is copied bit for bit;
/// `F16` and `BF16` widen exactly; `F64`, `I64` and `I32` round to the nearest `f32`
/// (integers are exact up to 2^24). Returns `false` for any other dtype or a length
/// that does not match.
pub(crate) fn decode(dtype: Dtype, bytes: &[u8], out: &mut [f32]) -> bool {
    fn each<const N: usize>(bytes: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32) -> bool {
        if bytes.len() != N * out.len() {
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
