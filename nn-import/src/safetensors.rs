//! Writing `state_dict` tensors as a safetensors file, with the `safetensors` crate
//! (the format's reference implementation): the layout Python's `save_file` writes,
//! tensors sorted by name.
use std::borrow::Cow;
use std::collections::HashMap;

use safetensors::tensor::{serialize, Dtype, View};

use crate::convert::Tensor;
use crate::error::ImportError;

/// One tensor as the crate sees it: `F32`, little-endian.
struct F32View<'a>(&'a Tensor);

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn data_len(&self) -> usize {
        4 * self.0.values.len()
    }
}

/// The bytes of a safetensors file holding `tensors` as `F32`.
pub fn to_bytes(tensors: &[Tensor]) -> Result<Vec<u8>, ImportError> {
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    serialize(tensors.iter().map(|t| (t.name.as_str(), F32View(t))), Some(metadata))
        .map_err(|e| ImportError::Weights(e.to_string()))
}
