//! Safetensors model files and training checkpoints (feature `std`).
//!
//! A model is saved as one [safetensors](https://huggingface.co/docs/safetensors) file:
//! every parameter and buffer, named by its PyTorch `state_dict` key (`fc1.weight`),
//! in PyTorch's layout (a dense weight is `[out, in]`), `F32` little-endian. PyTorch
//! reads it with `safetensors.torch.load_file` and `Module.load_state_dict`, and a file
//! that `safetensors.torch.save_file(module.state_dict(), ..)` wrote for the equivalent
//! module loads here.
//!
//! ```
//! use nn_core::io::{from_safetensors_bytes, to_safetensors_bytes, LoadOptions};
//! use nn_core::prelude::*;
//!
//! network! {
//!     /// 4 -> 8 -> 3.
//!     pub struct Tiny: [4] -> [3] {
//!         fc1: Dense { units: 8, activation: Relu },
//!         fc2: Dense { units: 3 },
//!     }
//! }
//!
//! let model = Model::<Tiny>::new(7);
//! let bytes = to_safetensors_bytes(&model);
//!
//! let mut copy = Model::<Tiny>::zeros();
//! let report = from_safetensors_bytes(&mut copy, &bytes, &LoadOptions::default())?;
//! assert_eq!(report.loaded, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
//! assert_eq!(copy.state(), model.state());
//! # Ok::<(), nn_core::io::LoadError>(())
//! ```
//!
//! [`save_safetensors`] and [`load_safetensors`] do the same with a file;
//! [`save_safetensors_with`] adds a name prefix and `__metadata__` strings.
//!
//! # Loading is checked, and all or nothing
//!
//! A load either fills every selected tensor or changes nothing and returns a
//! [`LoadError`] that names the file, the tensor, and what was expected and found:
//!
//! | problem | error | unless |
//! |---|---|---|
//! | a model tensor is not in the file | [`MissingTensor`](LoadError::MissingTensor) | [`allow_missing`](LoadOptions::allow_missing) |
//! | a file tensor is not in the model | [`UnexpectedTensor`](LoadError::UnexpectedTensor) | [`allow_unexpected`](LoadOptions::allow_unexpected) |
//! | shapes differ | [`ShapeMismatch`](LoadError::ShapeMismatch) | |
//! | the dtype is not `F32` | [`DtypeMismatch`](LoadError::DtypeMismatch) | [`convert_dtypes`](LoadOptions::convert_dtypes) (`F16`, `BF16`, `F64`, `I64`, `I32`) |
//! | a value is NaN or infinite | [`NonFinite`](LoadError::NonFinite) (first bad index) | [`allow_non_finite`](LoadOptions::allow_non_finite) |
//! | truncated or corrupt bytes | [`Format`](LoadError::Format) (the safetensors error) | |
//! | the file cannot be read | [`Io`](LoadError::Io) | |
//!
//! Tensors whose names start with `__` belong to a [`Checkpoint`] (optimizer state), not
//! to the model: a plain load ignores them, so a checkpoint file is also a model file.
//!
//! The header is parsed with the `safetensors` crate's own types and checks, but in
//! checked arithmetic: safetensors 0.8 panics (in builds with overflow checks) on a
//! header whose offsets sum to nearly `usize::MAX`, and a loader must reject any bytes,
//! not crash on them. [`include_weights!`](crate::include_weights) reads files with the
//! same parser and the same default rules (the `nn-safetensors` crate): `F32` only, every
//! value finite.
//!
//! # Transfer learning: loading by name prefix
//!
//! A network used as a layer of another keeps its tensors under the layer's name
//! (`encoder.fc1.weight`). [`LoadOptions::prefix`] loads such a sub-tree of a file into
//! a model that *is* the sub-network; [`LoadOptions::target_prefix`] loads a file of the
//! sub-network into the sub-tree of a model that *contains* it. Tensors outside the
//! prefixes are left alone.
//!
//! ```
//! use nn_core::io::{from_safetensors_bytes, to_safetensors_bytes, LoadOptions};
//! use nn_core::prelude::*;
//!
//! network! {
//!     /// 8 -> 4 features.
//!     pub struct Encoder: [8] -> [4] {
//!         fc1: Dense { units: 6, activation: Relu },
//!         fc2: Dense { units: 4, activation: Tanh },
//!     }
//!
//!     /// Features, then 3 classes.
//!     pub struct Classifier: [8] -> [3] {
//!         encoder: Encoder,
//!         head: Dense { units: 3 },
//!     }
//! }
//!
//! // A trained classifier's encoder starts a new encoder: file `encoder.fc1.weight`
//! // fills model `fc1.weight`, and `head.*` is ignored.
//! let classifier = Model::<Classifier>::new(1);
//! let mut encoder = Model::<Encoder>::zeros();
//! let from_encoder = LoadOptions { prefix: Some("encoder.".into()), ..Default::default() };
//! from_safetensors_bytes(&mut encoder, &to_safetensors_bytes(&classifier), &from_encoder)?;
//! assert_eq!(encoder.state(), &classifier.state()[..Encoder::PARAMS]);
//!
//! // And back: an encoder's file fills the `encoder.` sub-tree of a new classifier,
//! // whose head keeps its own initialisation.
//! let mut fresh = Model::<Classifier>::new(2);
//! let head = fresh.state()[Encoder::PARAMS..].to_vec();
//! let into_encoder = LoadOptions { target_prefix: Some("encoder.".into()), ..Default::default() };
//! let report = from_safetensors_bytes(&mut fresh, &to_safetensors_bytes(&encoder), &into_encoder)?;
//! assert_eq!(report.loaded.len(), 4);
//! assert_eq!(&fresh.state()[..Encoder::PARAMS], encoder.state());
//! assert_eq!(&fresh.state()[Encoder::PARAMS..], &head[..]);
//! # Ok::<(), nn_core::io::LoadError>(())
//! ```
//!
//! # Checkpoints
//!
//! A [`Checkpoint`] adds the optimizer's state and the training loop's counters to the
//! model's tensors, in the same single file, replaced atomically by
//! [`write_file_atomically`] so that a crash while saving never loses the previous
//! checkpoint.
mod atomic;
mod checkpoint;
mod error;
mod format;
mod load;
mod save;

pub use atomic::write_file_atomically;
pub use checkpoint::Checkpoint;
pub use error::{LoadError, SaveError};
pub use load::{from_safetensors_bytes, load_safetensors, LoadOptions, LoadReport};
pub use nn_safetensors::{Dtype, SafeTensorError};
pub use save::{
    save_safetensors, save_safetensors_with, to_safetensors_bytes, to_safetensors_bytes_with, write_safetensors,
    SaveOptions,
};

use crate::layer::Layer;
use crate::model::Model;

/// Names starting with this belong to a checkpoint, not to the model.
const RESERVED: &str = "__";

/// One parameter or buffer tensor of a model: its `state_dict` key, PyTorch shape and
/// place in the model's flat state (parameters, then buffers).
pub(crate) struct ModelTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub start: usize,
    pub len: usize,
}

impl ModelTensor {
    /// Every tensor of `model`, in `state_dict` order.
    pub fn all<L: Layer, P: AsRef<[f32]>>(model: &Model<L, P>) -> Vec<Self> {
        let mut all = Vec::new();
        model.visit_tensors(&mut |t| {
            all.push(ModelTensor {
                name: t.path.to_string(),
                shape: t.shape.to_vec(),
                // A buffer's offset counts from the start of the buffers.
                start: if t.trainable { t.offset } else { L::PARAMS + t.offset },
                len: t.len,
            })
        });
        all
    }
}

/// A dotted module path with its trailing dot (`""` for none).
fn normalize_prefix(prefix: Option<&str>) -> String {
    match prefix {
        None | Some("") => String::new(),
        Some(p) if p.ends_with('.') => p.to_string(),
        Some(p) => format!("{p}."),
    }
}
