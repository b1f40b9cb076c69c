//! Training checkpoints: the model, the optimizer's state and the loop's counters in
//! one safetensors file, replaced atomically.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::format::{self, Entry};
use super::load::{decode, parse, stage, unexpected, LoadOptions};
use super::save::model_entries;
use super::{write_file_atomically, LoadError, ModelTensor, SaveError, RESERVED};
use crate::layer::Layer;
use crate::model::Model;

/// The tensor holding the optimizer's per-parameter state.
const OPTIMIZER_STATE: &str = "__optimizer.state";
/// Metadata: the optimizer's step count.
const OPTIMIZER_STEP: &str = "__optimizer.step";
/// Metadata: the epoch.
const EPOCH: &str = "__checkpoint.epoch";
/// Metadata: the seed word.
const SEED: &str = "__checkpoint.seed";
/// Metadata: marks the file as a checkpoint, with its layout version.
const FORMAT: &str = "__checkpoint.format";
const FORMAT_VERSION: &str = "nn-core.checkpoint.1";

/// Everything besides the model that resumes training: the optimizer's state and
/// step count, the epoch, a seed word and free-form metadata.
///
/// [`Checkpoint::save`] writes it with the model's parameters and buffers into one
/// safetensors file, replaced atomically. Layout:
///
/// | entry | where |
/// |---|---|
/// | every parameter and buffer | tensors named as the `state_dict` keys, `F32` |
/// | optimizer state (`S`) | tensor `__optimizer.state`, `F32`, shape `[len]` |
/// | optimizer step count | metadata `__optimizer.step` (decimal) |
/// | epoch, seed | metadata `__checkpoint.epoch`, `__checkpoint.seed` (decimal) |
/// | layout version | metadata `__checkpoint.format` = `nn-core.checkpoint.1` |
/// | `metadata` | metadata, keys as given (a key may not start with `__`) |
///
/// The file is also a plain model file: [`load_safetensors`](super::load_safetensors)
/// reads its parameters and ignores the `__` entries, and PyTorch's `load_file` reads
/// every tensor.
///
/// `S` is the storage of the optimizer state: save from a borrowed slice
/// (`Checkpoint<&[f32]>`, as [`OptimizerState::state`](crate::train::OptimizerState::state)
/// gives it); loading returns an owned `Checkpoint<Vec<f32>>`.
///
/// ```
/// use std::collections::BTreeMap;
/// use nn_core::io::Checkpoint;
/// use nn_core::prelude::*;
///
/// network! {
///     /// A tiny regressor.
///     pub struct Line: [2] -> [1] {
///         fc: Dense { units: 1 },
///     }
/// }
///
/// # let dir = std::env::temp_dir().join(format!("nn-core-doc-ckpt-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("line.ckpt.safetensors");
/// let mut model = Model::<Line>::new(1);
/// let mut optimizer = OptimizerState::new(Adam::new(0.01));
/// optimizer.step(model.params_mut(), &[0.5, -0.5, 1.0]);
///
/// Checkpoint {
///     epoch: 1,
///     optimizer_step: optimizer.steps(),
///     optimizer_state: optimizer.state(),
///     seed: 42,
///     metadata: BTreeMap::from([("note".to_string(), "warm-up done".to_string())]),
/// }
/// .save(&model, &path)?;
///
/// // Resume: a fresh model and optimizer take the saved state.
/// let mut resumed = Model::<Line>::zeros();
/// let checkpoint = Checkpoint::load(&mut resumed, &path)?;
/// let mut resumed_optimizer = OptimizerState::new(Adam::new(0.01));
/// resumed_optimizer.restore(checkpoint.optimizer_step, &checkpoint.optimizer_state, Line::PARAMS)?;
/// assert_eq!(resumed.state(), model.state());
/// assert_eq!(resumed_optimizer.state(), optimizer.state());
/// assert_eq!((checkpoint.epoch, checkpoint.seed), (1, 42));
/// assert_eq!(checkpoint.metadata["note"], "warm-up done");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint<S = Vec<f32>> {
    /// The number of completed epochs.
    pub epoch: u64,
    /// The optimizer's step count (Adam's bias correction needs it).
    pub optimizer_step: u64,
    /// The optimizer's per-parameter state (velocities, moment estimates).
    pub optimizer_state: S,
    /// A seed word for the random stream that resumes training (shuffling, dropout).
    pub seed: u64,
    /// Free-form metadata (keys may not start with `__`).
    pub metadata: BTreeMap<String, String>,
}

impl<S: AsRef<[f32]>> Checkpoint<S> {
    /// Saves `model` and this checkpoint to `path`, atomically: the new file replaces
    /// the old only once it is completely written and synced to disk, so a crash while
    /// saving never destroys the previous checkpoint.
    pub fn save<L: Layer, P: AsRef<[f32]>>(
        &self,
        model: &Model<L, P>,
        path: impl AsRef<Path>,
    ) -> Result<(), SaveError> {
        write_file_atomically(path.as_ref(), |w| self.write(model, w))
    }

    /// The checkpoint file of `model` and this checkpoint, in memory.
    pub fn to_bytes<L: Layer, P: AsRef<[f32]>>(&self, model: &Model<L, P>) -> Result<Vec<u8>, SaveError> {
        let mut bytes = Vec::new();
        self.write(model, &mut bytes)?;
        Ok(bytes)
    }

    /// Writes the checkpoint file of `model` and this checkpoint to `w`.
    pub fn write<L: Layer, P: AsRef<[f32]>>(&self, model: &Model<L, P>, w: &mut dyn Write) -> Result<(), SaveError> {
        if let Some(key) = self.metadata.keys().find(|k| k.starts_with(RESERVED)) {
            return Err(SaveError::ReservedMetadataKey { key: key.clone() });
        }
        let mut metadata = self.metadata.clone();
        metadata.insert(FORMAT.into(), FORMAT_VERSION.into());
        metadata.insert(EPOCH.into(), self.epoch.to_string());
        metadata.insert(SEED.into(), self.seed.to_string());
        metadata.insert(OPTIMIZER_STEP.into(), self.optimizer_step.to_string());
        let state = self.optimizer_state.as_ref();
        let mut entries = model_entries(model, "");
        entries.push(Entry { name: OPTIMIZER_STATE.into(), shape: vec![state.len()], data: state });
        format::write(w, &mut entries, &metadata)
    }
}

impl Checkpoint<Vec<f32>> {
    /// Loads a checkpoint file into `model` and returns the rest of the checkpoint.
    ///
    /// The optimizer state is returned as saved: give it to
    /// [`OptimizerState::restore`](crate::train::OptimizerState::restore), which
    /// checks its length against the optimizer and the model's parameters.
    ///
    /// Strict, as [`load_safetensors`](super::load_safetensors) with the default
    /// [`LoadOptions`], and all or nothing: on any error the model is unchanged.
    pub fn load<L: Layer, P: AsRef<[f32]> + AsMut<[f32]>>(
        model: &mut Model<L, P>,
        path: impl AsRef<Path>,
    ) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io { file: None, source }.in_file(path))?;
        Self::from_bytes(model, &bytes).map_err(|e| e.in_file(path))
    }

    /// [`Checkpoint::load`] from a file held in memory.
    pub fn from_bytes<L: Layer, P: AsRef<[f32]> + AsMut<[f32]>>(
        model: &mut Model<L, P>,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        let parsed = parse(bytes)?;
        let mut metadata = parsed.metadata();
        match metadata.get(FORMAT) {
            Some(v) if v == FORMAT_VERSION => {}
            found => {
                return Err(LoadError::NotACheckpoint {
                    file: None,
                    key: FORMAT.into(),
                    expected: format!("`{FORMAT_VERSION}`"),
                    found: found.map(|v| format!("`{v}`")),
                })
            }
        }
        // As `to_string` writes them: decimal digits, no sign, no leading zero.
        let counter = |key: &str| -> Result<u64, LoadError> {
            let value = metadata.get(key);
            value.and_then(|v| v.parse().ok().filter(|n: &u64| n.to_string() == *v)).ok_or_else(|| {
                LoadError::NotACheckpoint {
                    file: None,
                    key: key.into(),
                    expected: "an unsigned integer".into(),
                    found: value.map(|v| format!("`{v}`")),
                }
            })
        };
        let epoch = counter(EPOCH)?;
        let seed = counter(SEED)?;
        let optimizer_step = counter(OPTIMIZER_STEP)?;

        let options = LoadOptions::default();
        let Some(view) = parsed.tensor(OPTIMIZER_STATE) else {
            return Err(LoadError::NotACheckpoint {
                file: None,
                key: OPTIMIZER_STATE.into(),
                expected: "a tensor of one dimension".into(),
                found: None,
            });
        };
        let [len] = *view.shape else {
            return Err(LoadError::NotACheckpoint {
                file: None,
                key: OPTIMIZER_STATE.into(),
                expected: "a tensor of one dimension".into(),
                found: Some(format!("of shape {}", super::error::Dims(view.shape))),
            });
        };
        let mut optimizer_state = vec![0.0; len];
        decode(OPTIMIZER_STATE, view.dtype, view.shape, view.bytes, &mut optimizer_state, &options)?;

        let tensors = ModelTensor::all(model);
        let staged = stage(&tensors, &parsed, &options, &mut |name| {
            if name == OPTIMIZER_STATE {
                return Ok(());
            }
            Err(unexpected(&parsed, name))
        })?;
        staged.commit(model.state_mut());

        metadata.retain(|k, _| !k.starts_with(RESERVED));
        Ok(Checkpoint { epoch, optimizer_step, optimizer_state, seed, metadata })
    }
}
