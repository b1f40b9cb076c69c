//! Loading a safetensors file into a model's state: match names (with prefixes), check
//! shapes, dtypes and values, then commit all tensors at once.
use std::collections::BTreeMap;
use std::path::Path;

use nn_safetensors::{read_values, Dtype, Rules, ValueError, View};

use super::format::{self, Parsed};
use super::{normalize_prefix, LoadError, ModelTensor, RESERVED};
use crate::layer::Layer;
use crate::model::Model;

/// How [`load_safetensors`] matches the file's tensors to the model's.
///
/// The default is strict: every model tensor must be in the file under its own name,
/// every file tensor must belong to the model, every value must be finite and stored
/// as `F32`.
///
/// Names are PyTorch `state_dict` keys. A model tensor `name` is looked up in the file
/// as `prefix + name`; with a `target_prefix`, only the model tensors under it are
/// loaded, and `target_prefix + rest` is looked up as `prefix + rest`. A prefix is a
/// dotted module path: `"encoder"` and `"encoder."` mean the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Load only the file's tensors under this prefix, with the prefix stripped:
    /// `Some("encoder.")` loads the file's `encoder.fc1.weight` into the model's
    /// `fc1.weight` (the model is the encoder). The file's other tensors are ignored.
    pub prefix: Option<String>,
    /// Load only the model's tensors under this prefix: `Some("encoder.")` loads the
    /// file's `fc1.weight` into the model's `encoder.fc1.weight` (the file holds an
    /// encoder, the model contains one). The model's other tensors are left unchanged.
    pub target_prefix: Option<String>,
    /// Ignore file tensors (under `prefix`) that match no model tensor, instead of
    /// failing with [`LoadError::UnexpectedTensor`].
    pub allow_unexpected: bool,
    /// Leave model tensors that the file lacks unchanged, instead of failing with
    /// [`LoadError::MissingTensor`].
    pub allow_missing: bool,
    /// Accept NaN and infinities, instead of failing with [`LoadError::NonFinite`].
    pub allow_non_finite: bool,
    /// Convert `F16` and `BF16` (exactly), `F64` (rounding to nearest), `I64` and `I32`
    /// (exact up to 2^24) to `f32`, instead of failing with
    /// [`LoadError::DtypeMismatch`]. PyTorch stores batch norm's
    /// `num_batches_tracked` as an `I64` scalar, which the model keeps as an `f32`.
    pub convert_dtypes: bool,
}

/// What a successful load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The model tensors that were filled, in `state_dict` order.
    pub loaded: Vec<String>,
    /// The model tensors the file lacks, left unchanged (only with
    /// [`LoadOptions::allow_missing`]).
    pub missing: Vec<String>,
    /// The file tensors that match no model tensor, ignored (only with
    /// [`LoadOptions::allow_unexpected`]).
    pub unexpected: Vec<String>,
    /// The file's free-form metadata (the header's `__metadata__`).
    pub metadata: BTreeMap<String, String>,
}

/// Loads the tensors of the safetensors file at `path` into `model`.
///
/// All or nothing: on any error the model's state is unchanged. See [`LoadOptions`]
/// for partial loading by name prefix, and the [module documentation](super) for an
/// example.
pub fn load_safetensors<L: Layer, P: AsRef<[f32]> + AsMut<[f32]>>(
    model: &mut Model<L, P>,
    path: impl AsRef<Path>,
    options: &LoadOptions,
) -> Result<LoadReport, LoadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { file: None, source }.in_file(path))?;
    from_safetensors_bytes(model, &bytes, options).map_err(|e| e.in_file(path))
}

/// Loads the tensors of a safetensors file held in memory into `model`.
///
/// All or nothing, as [`load_safetensors`].
pub fn from_safetensors_bytes<L: Layer, P: AsRef<[f32]> + AsMut<[f32]>>(
    model: &mut Model<L, P>,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<LoadReport, LoadError> {
    let tensors = ModelTensor::all(model);
    let parsed = parse(bytes)?;
    let staged = stage(&tensors, &parsed, options, &mut |_| Ok(()))?;
    Ok(staged.commit(model.state_mut()))
}

/// Parses a file, mapping the format error.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed<'_>, LoadError> {
    format::parse(bytes).map_err(|source| LoadError::Format { file: None, source })
}

/// Everything checked, the new values decoded, the model not yet touched.
pub(crate) struct Staged {
    /// `(state range start, values)` per loaded tensor.
    values: Vec<(usize, Vec<f32>)>,
    report: LoadReport,
}

impl Staged {
    /// Writes the staged values into `state`. Cannot fail: every check is done.
    pub(crate) fn commit(self, state: &mut [f32]) -> LoadReport {
        for (start, values) in self.values {
            state[start..start + values.len()].copy_from_slice(&values);
        }
        self.report
    }
}

/// Matches the file's tensors to `tensors` (the model's, with their places in its
/// state) and decodes them, checking every name, shape, dtype and value. File
/// tensors in the reserved `__` namespace are passed to `reserved` (a checkpoint
/// reads its own; a plain load ignores them).
pub(crate) fn stage(
    tensors: &[ModelTensor],
    parsed: &Parsed<'_>,
    options: &LoadOptions,
    reserved: &mut dyn FnMut(&str) -> Result<(), LoadError>,
) -> Result<Staged, LoadError> {
    let prefix = normalize_prefix(options.prefix.as_deref());
    let target = normalize_prefix(options.target_prefix.as_deref());
    let mut report = LoadReport { metadata: parsed.metadata(), ..LoadReport::default() };
    let mut values = Vec::new();
    let mut matched = Vec::new();

    for tensor in tensors {
        let Some(rest) = tensor.name.strip_prefix(target.as_str()) else {
            continue;
        };
        let name = format!("{prefix}{rest}");
        let Some(view) = parsed.tensor(&name) else {
            if options.allow_missing {
                report.missing.push(tensor.name.clone());
                continue;
            }
            return Err(LoadError::MissingTensor {
                file: None,
                name,
                model_name: tensor.name.clone(),
                expected: tensor.shape.clone(),
            });
        };
        if view.shape != tensor.shape.as_slice() {
            return Err(LoadError::ShapeMismatch {
                file: None,
                name,
                model_name: tensor.name.clone(),
                expected: tensor.shape.clone(),
                found: view.shape.to_vec(),
            });
        }
        let mut out = vec![0.0; tensor.len];
        decode(&name, view.dtype, view.shape, view.bytes, &mut out, options)?;
        values.push((tensor.start, out));
        report.loaded.push(tensor.name.clone());
        matched.push(name);
    }

    matched.sort();
    for name in parsed.names() {
        if name.starts_with(RESERVED) {
            reserved(name)?;
            continue;
        }
        if !name.starts_with(prefix.as_str()) || matched.binary_search(name).is_ok() {
            continue;
        }
        if !options.allow_unexpected {
            return Err(unexpected(parsed, name));
        }
        report.unexpected.push(name.clone());
    }
    Ok(Staged { values, report })
}

/// The error for the file's tensor `name`, which matches no model tensor.
pub(crate) fn unexpected(parsed: &Parsed<'_>, name: &str) -> LoadError {
    let view = parsed.tensor(name);
    LoadError::UnexpectedTensor {
        file: None,
        name: name.to_string(),
        shape: view.as_ref().map(|v| v.shape.to_vec()).unwrap_or_default(),
        dtype: view.map_or(Dtype::F32, |v| v.dtype),
    }
}

/// Decodes the tensor `name` into `out` (whose length its shape gives), checking its
/// dtype and, unless allowed, that every value is finite.
pub(crate) fn decode(
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    bytes: &[u8],
    out: &mut [f32],
    options: &LoadOptions,
) -> Result<(), LoadError> {
    let view = View { dtype, shape, bytes };
    let rules = Rules { convert_dtypes: options.convert_dtypes, allow_non_finite: options.allow_non_finite };
    read_values(&view, rules, out).map_err(|e| match e {
        ValueError::Dtype { found } => {
            LoadError::DtypeMismatch { file: None, name: name.to_string(), expected: Dtype::F32, found }
        }
        ValueError::NonFinite { index, value } => {
            LoadError::NonFinite { file: None, name: name.to_string(), shape: shape.to_vec(), index, value }
        }
    })
}
