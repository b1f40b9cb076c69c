//! The errors of loading and saving: what went wrong, in which file, for which tensor,
//! and what was expected and found.
use std::fmt;
use std::path::{Path, PathBuf};

use nn_safetensors::{convertible, position, Dtype, SafeTensorError};

/// Why a safetensors file could not be loaded into a model.
///
/// Every variant names the file when the bytes came from one, and the tensor when one
/// tensor is at fault. A failed load leaves the model's state unchanged.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading the file failed.
    Io {
        /// The file.
        file: Option<PathBuf>,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file: truncated, a corrupt header, offsets
    /// that do not cover the data.
    Format {
        /// The file.
        file: Option<PathBuf>,
        /// The safetensors parser's error.
        source: SafeTensorError,
    },
    /// The model has a tensor that the file lacks.
    MissingTensor {
        /// The file.
        file: Option<PathBuf>,
        /// The name looked up in the file (prefix included).
        name: String,
        /// The model tensor it would fill.
        model_name: String,
        /// The model tensor's shape.
        expected: Vec<usize>,
    },
    /// The file has a tensor that matches no model tensor (see
    /// [`LoadOptions::allow_unexpected`](super::LoadOptions::allow_unexpected)).
    UnexpectedTensor {
        /// The file.
        file: Option<PathBuf>,
        /// Its name in the file.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
        /// Its element type in the file.
        dtype: Dtype,
    },
    /// A tensor's shape in the file differs from the model's.
    ShapeMismatch {
        /// The file.
        file: Option<PathBuf>,
        /// Its name in the file.
        name: String,
        /// The model tensor it would fill.
        model_name: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A tensor's element type is not `F32` (and is not converted, see
    /// [`LoadOptions::convert_dtypes`](super::LoadOptions::convert_dtypes)).
    DtypeMismatch {
        /// The file.
        file: Option<PathBuf>,
        /// Its name in the file.
        name: String,
        /// The element type the model needs.
        expected: Dtype,
        /// The file's element type.
        found: Dtype,
    },
    /// A tensor holds NaN or an infinity (see
    /// [`LoadOptions::allow_non_finite`](super::LoadOptions::allow_non_finite)).
    NonFinite {
        /// The file.
        file: Option<PathBuf>,
        /// Its name in the file.
        name: String,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// The row-major index of the first non-finite element.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A checkpoint's metadata counter or optimizer-state tensor is missing or not of
    /// the expected form: the file was not written by [`Checkpoint`](super::Checkpoint).
    NotACheckpoint {
        /// The file.
        file: Option<PathBuf>,
        /// The metadata key or tensor name.
        key: String,
        /// What was expected there.
        expected: String,
        /// What was found, if anything.
        found: Option<String>,
    },
}

impl LoadError {
    /// The file the bytes came from, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            LoadError::Io { file, .. }
            | LoadError::Format { file, .. }
            | LoadError::MissingTensor { file, .. }
            | LoadError::UnexpectedTensor { file, .. }
            | LoadError::ShapeMismatch { file, .. }
            | LoadError::DtypeMismatch { file, .. }
            | LoadError::NonFinite { file, .. }
            | LoadError::NotACheckpoint { file, .. } => file.as_deref(),
        }
    }

    /// The name (in the file) of the tensor at fault, if one is.
    pub fn tensor(&self) -> Option<&str> {
        match self {
            LoadError::MissingTensor { name, .. }
            | LoadError::UnexpectedTensor { name, .. }
            | LoadError::ShapeMismatch { name, .. }
            | LoadError::DtypeMismatch { name, .. }
            | LoadError::NonFinite { name, .. } => Some(name),
            LoadError::Io { .. } | LoadError::Format { .. } | LoadError::NotACheckpoint { .. } => None,
        }
    }

    /// Records the file the bytes came from.
    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        match &mut self {
            LoadError::Io { file, .. }
            | LoadError::Format { file, .. }
            | LoadError::MissingTensor { file, .. }
            | LoadError::UnexpectedTensor { file, .. }
            | LoadError::ShapeMismatch { file, .. }
            | LoadError::DtypeMismatch { file, .. }
            | LoadError::NonFinite { file, .. }
            | LoadError::NotACheckpoint { file, .. } => *file = Some(path.to_path_buf()),
        }
        self
    }
}

/// `[32, 64]`, as PyTorch prints a shape.
pub(crate) struct Dims<'a>(pub &'a [usize]);

impl fmt::Display for Dims<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = self.file() {
            write!(f, "{}: ", file.display())?;
        }
        match self {
            LoadError::Io { source, .. } => write!(f, "cannot read the file: {source}"),
            LoadError::Format { source, .. } => write!(f, "not a valid safetensors file: {source}"),
            LoadError::MissingTensor { name, model_name, expected, .. } => {
                write!(f, "tensor `{name}` is missing from the file")?;
                if name != model_name {
                    write!(f, " (model tensor `{model_name}`")?;
                } else {
                    f.write_str(" (model")?;
                }
                write!(f, " shape {})", Dims(expected))
            }
            LoadError::UnexpectedTensor { name, shape, dtype, .. } => write!(
                f,
                "unexpected tensor `{name}` ({dtype} {}): the model has no tensor of that name \
                 (set `LoadOptions::allow_unexpected` to ignore it)",
                Dims(shape)
            ),
            LoadError::ShapeMismatch { name, model_name, expected, found, .. } => {
                write!(f, "tensor `{name}` has shape {}, expected {}", Dims(found), Dims(expected))?;
                if name != model_name {
                    write!(f, " (model tensor `{model_name}`)")?;
                }
                Ok(())
            }
            LoadError::DtypeMismatch { name, expected, found, .. } => {
                write!(f, "tensor `{name}` has dtype {found}, expected {expected}")?;
                if convertible(*found) {
                    write!(f, " (set `LoadOptions::convert_dtypes` to convert {found} to {expected})")?;
                }
                Ok(())
            }
            LoadError::NonFinite { name, shape, index, value, .. } => write!(
                f,
                "tensor `{name}` (shape {}) holds {value} at element {index} (index {}) \
                 (set `LoadOptions::allow_non_finite` to accept it)",
                Dims(shape),
                Dims(&position(shape, *index))
            ),
            LoadError::NotACheckpoint { key, expected, found: None, .. } => {
                write!(f, "not a checkpoint: `{key}` is missing, expected {expected}")
            }
            LoadError::NotACheckpoint { key, expected, found: Some(found), .. } => {
                write!(f, "not a checkpoint: `{key}` is {found}, expected {expected}")
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::Format { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a model or checkpoint could not be saved. A failed save to a file leaves any
/// previous file at that path intact.
#[derive(Debug)]
#[non_exhaustive]
pub enum SaveError {
    /// Writing failed (the disk is full, the directory is read-only, ...).
    Io {
        /// The file.
        file: Option<PathBuf>,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The JSON header would exceed the 100 MB that safetensors readers accept (the
    /// metadata is too large).
    HeaderTooLarge {
        /// The header's size in bytes.
        bytes: usize,
    },
    /// Two tensors have the same name: the layers of a hand-written network share a
    /// name, or a checkpoint tensor collides with a model tensor.
    DuplicateTensor {
        /// The name.
        name: String,
    },
    /// A checkpoint's free-form metadata uses a key starting with `__`, which is
    /// reserved for the checkpoint's own counters.
    ReservedMetadataKey {
        /// The key.
        key: String,
    },
}

impl SaveError {
    /// Records the file being written, unless one is recorded already.
    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        if let SaveError::Io { file: file @ None, .. } = &mut self {
            *file = Some(path.to_path_buf());
        }
        self
    }
}

impl From<std::io::Error> for SaveError {
    fn from(source: std::io::Error) -> Self {
        SaveError::Io { file: None, source }
    }
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::Io { file: Some(file), source } => {
                write!(f, "{}: cannot write the file: {source}", file.display())
            }
            SaveError::Io { file: None, source } => write!(f, "cannot write: {source}"),
            SaveError::HeaderTooLarge { bytes } => {
                write!(f, "the safetensors header would be {bytes} bytes, more than readers accept (100 MB)")
            }
            SaveError::DuplicateTensor { name } => write!(f, "two tensors are named `{name}`"),
            SaveError::ReservedMetadataKey { key } => {
                write!(f, "checkpoint metadata key `{key}` starts with `__`, which is reserved for the checkpoint")
            }
        }
    }
}

impl std::error::Error for SaveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SaveError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
