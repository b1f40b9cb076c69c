//! Writing `state_dict` tensors as a safetensors file: an 8-byte little-endian
//! header length, a JSON header naming each tensor's dtype, shape and byte range,
//! then the `F32` values.
use std::fmt::Write;

use crate::convert::Tensor;

/// The bytes of a safetensors file holding `tensors` as `F32`, in their order.
pub fn to_bytes(tensors: &[Tensor]) -> Vec<u8> {
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    let mut offset = 0usize;
    for t in tensors {
        let end = offset + 4 * t.values.len();
        let shape = t.shape.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let _ = write!(
            header,
            ",{}:{{\"dtype\":\"F32\",\"shape\":[{shape}],\"data_offsets\":[{offset},{end}]}}",
            json(&t.name)
        );
        offset = end;
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for t in tensors {
        for v in &t.values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

/// A JSON string literal.
fn json(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
