//! The safetensors format: an 8-byte little-endian header length `n`, `n` bytes of JSON
//! header (`{"__metadata__": {..}, "name": {"dtype", "shape", "data_offsets"}, ..}`,
//! padded with spaces to a multiple of 8), then the tensors' bytes, row-major and
//! little-endian, each at `data_offsets` relative to the end of the header.
//!
//! Writing is here; reading is `nn-safetensors`'s, which `include_weights!` shares.
use std::collections::BTreeMap;
use std::io::Write;

pub(crate) use nn_safetensors::{parse, Parsed};
use nn_safetensors::{LEN_BYTES, MAX_HEADER_BYTES};

use super::SaveError;

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
