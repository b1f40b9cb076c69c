//! Saving a model's parameters and buffers as a safetensors file.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::format::{self, Entry};
use super::{normalize_prefix, write_file_atomically, ModelTensor, SaveError};
use crate::layer::Layer;
use crate::model::Model;

/// How [`save_safetensors_with`] names the tensors and what it adds to the header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// Written before every tensor name: `Some("encoder.")` saves `fc1.weight` as
    /// `encoder.fc1.weight`, as if the model were the `encoder` of a bigger one. A
    /// missing trailing dot is added.
    pub prefix: Option<String>,
    /// Free-form string metadata, stored in the header's `__metadata__` (PyTorch
    /// files often carry `"format": "pt"`).
    pub metadata: BTreeMap<String, String>,
}

/// Saves every parameter and buffer of `model` to a safetensors file at `path`.
///
/// Names and shapes are PyTorch `state_dict` keys and layouts, the dtype is `F32`
/// little-endian, so `safetensors.torch.load_file` followed by
/// `module.load_state_dict` reads it. The file is replaced atomically: a crash while
/// saving leaves any previous file at `path` intact.
pub fn save_safetensors<L: Layer, P: AsRef<[f32]>>(
    model: &Model<L, P>,
    path: impl AsRef<Path>,
) -> Result<(), SaveError> {
    save_safetensors_with(model, path, &SaveOptions::default())
}

/// [`save_safetensors`] with a name prefix and metadata.
pub fn save_safetensors_with<L: Layer, P: AsRef<[f32]>>(
    model: &Model<L, P>,
    path: impl AsRef<Path>,
    options: &SaveOptions,
) -> Result<(), SaveError> {
    write_file_atomically(path.as_ref(), |w| write_safetensors(model, w, options))
}

/// The safetensors file of every parameter and buffer of `model`, in memory.
///
/// The bytes are deterministic: the same state gives the same file.
///
/// # Panics
///
/// If two tensors of the model share a name, which `network!` rules out (only a
/// hand-written layer can do it); [`to_safetensors_bytes_with`] reports it instead.
pub fn to_safetensors_bytes<L: Layer, P: AsRef<[f32]>>(model: &Model<L, P>) -> Vec<u8> {
    match to_safetensors_bytes_with(model, &SaveOptions::default()) {
        Ok(bytes) => bytes,
        Err(e) => panic!("cannot serialise the model: {e}"),
    }
}

/// [`to_safetensors_bytes`] with a name prefix and metadata.
pub fn to_safetensors_bytes_with<L: Layer, P: AsRef<[f32]>>(
    model: &Model<L, P>,
    options: &SaveOptions,
) -> Result<Vec<u8>, SaveError> {
    let mut bytes = Vec::with_capacity(4 * model.state().len() + 256);
    write_safetensors(model, &mut bytes, options)?;
    Ok(bytes)
}

/// Writes the safetensors file of `model` to `w`.
pub fn write_safetensors<L: Layer, P: AsRef<[f32]>>(
    model: &Model<L, P>,
    w: &mut dyn Write,
    options: &SaveOptions,
) -> Result<(), SaveError> {
    let prefix = normalize_prefix(options.prefix.as_deref());
    let mut entries = model_entries(model, &prefix);
    format::write(w, &mut entries, &options.metadata)
}

/// One entry per parameter and buffer tensor of `model`, named `prefix + name`.
pub(crate) fn model_entries<'a, L: Layer, P: AsRef<[f32]>>(model: &'a Model<L, P>, prefix: &str) -> Vec<Entry<'a>> {
    let state = model.state();
    ModelTensor::all(model)
        .into_iter()
        .map(|t| Entry { name: format!("{prefix}{}", t.name), data: &state[t.start..t.start + t.len], shape: t.shape })
        .collect()
}
