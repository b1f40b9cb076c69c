//! Integer token ids for networks whose first layer is an [`Embedding`].
//!
//! Inside a network every value is `f32`, so an `Embedding` reads its ids as floats.
//! This module is the typed door in: ids as `u32`, `usize`, `i64` (PyTorch's
//! `LongTensor`) or any [`TokenId`], checked against the vocabulary *before* they
//! reach the network. An id outside `[0, vocab)` is a [`TokenIdError`] naming the id
//! and where it stands (sample and step), never a silent zero row and never a panic.
//! Checked ids convert to `f32` exactly (the vocabulary of a network that takes ids
//! is at most 2²⁴, checked at compile time), so the outputs are those of the `f32`
//! path given the same ids.
//!
//! A network implements [`TokenInput`] when its first layer is an `Embedding`
//! (`network!` writes the impl). Then:
//! - [`Model::predict_ids`] runs a batch of id sequences (`nn.Embedding(LongTensor)`),
//! - [`Dataset::from_token_ids`] builds a training set that `Fit` trains from,
//! - [`encode_ids`] writes checked ids into a caller's `f32` buffer (no allocation:
//!   firmware).
//!
//! ```
//! use nn_core::prelude::*;
//! use nn_core::tokens::TokenIdError;
//!
//! network! {
//!     pub struct Tagger: [3] -> [3, 2] {
//!         embed: Embedding { vocab: 10, dim: 4 },
//!         out: SequenceDense { units: 2 },
//!     }
//! }
//! let model = Model::<Tagger>::new(1);
//! let y = model.predict_ids(&[7u32, 0, 9, 1, 2, 3]).unwrap(); // two samples
//! assert_eq!(y, model.predict(&[7.0, 0.0, 9.0, 1.0, 2.0, 3.0]).unwrap());
//! let err = model.predict_ids(&[7u32, 0, 9, 1, 12, 3]).unwrap_err();
//! assert_eq!(err, TokenIdError::OutOfRange { id: 12, sample: 1, step: 1, vocab: 10 });
//! assert_eq!(err.to_string(), "token id 12 at sample 1, step 1 is outside the vocabulary [0, 10)");
//! ```
//!
//! [`Embedding`]: crate::layers::Embedding
//! [`Model::predict_ids`]: crate::Model::predict_ids
//! [`Dataset::from_token_ids`]: crate::train::Dataset::from_token_ids
use core::fmt;

use crate::layer::Layer;
use crate::layers::Embedding;
use crate::model::BatchLenError;
use crate::shape::Shape;

/// A layer or network that reads token ids: its input is `Input::LEN` ids, each in
/// `[0, VOCAB)`. Implemented by [`Embedding`] and by every `network!` whose first
/// layer is an `Embedding`.
pub trait TokenInput: Layer {
    /// The number of tokens: valid ids are `0..VOCAB`.
    const VOCAB: usize;
}

/// The largest vocabulary whose ids are all exact as `f32` (2²⁴).
pub const MAX_VOCAB: usize = 1 << 24;

impl<const T: usize, const V: usize, const D: usize> TokenInput for Embedding<T, V, D> {
    const VOCAB: usize = V;
}

/// An integer type that token ids can be given as.
pub trait TokenId: Copy {
    /// The id as a signed number wide enough for every value of the type.
    fn value(self) -> i128;
}

macro_rules! token_id {
    ($($t:ty),*) => {$(
        impl TokenId for $t {
            #[inline]
            fn value(self) -> i128 {
                self as i128
            }
        }
    )*};
}
token_id!(u8, u16, u32, u64, usize, i32, i64);

/// Token ids that cannot be given to the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenIdError {
    /// The id at `step` of `sample` is negative or not below `vocab`.
    OutOfRange {
        /// The id as given.
        id: i128,
        /// The sample it is in (0 for a single sequence).
        sample: usize,
        /// Its position in the sample's sequence.
        step: usize,
        /// The vocabulary size: valid ids are `0..vocab`.
        vocab: usize,
    },
    /// The ids are not a whole number of sequences.
    BatchLen(BatchLenError),
}

impl fmt::Display for TokenIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenIdError::OutOfRange { id, sample, step, vocab } => {
                write!(f, "token id {id} at sample {sample}, step {step} is outside the vocabulary [0, {vocab})")
            }
            TokenIdError::BatchLen(e) => write!(f, "token ids: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TokenIdError {}

impl From<BatchLenError> for TokenIdError {
    fn from(e: BatchLenError) -> Self {
        TokenIdError::BatchLen(e)
    }
}

/// Checks `ids` (a whole number of sequences of `L`'s input length) against `L`'s
/// vocabulary and writes them as floats into `out` (the same length): the network's
/// input. Returns the number of sequences. Nothing is written past a bad id's
/// position; `out` must hold `ids.len()` floats (else [`TokenIdError::BatchLen`]).
///
/// ```
/// use nn_core::layers::Embedding;
/// use nn_core::tokens::{encode_ids, TokenIdError};
///
/// let mut x = [0.0f32; 4];
/// assert_eq!(encode_ids::<Embedding<2, 5, 3>, _>(&[4usize, 0, 1, 2], &mut x), Ok(2));
/// assert_eq!(x, [4.0, 0.0, 1.0, 2.0]);
/// let err = encode_ids::<Embedding<2, 5, 3>, _>(&[4i64, 0, -1, 2], &mut x);
/// assert_eq!(err, Err(TokenIdError::OutOfRange { id: -1, sample: 1, step: 0, vocab: 5 }));
/// ```
pub fn encode_ids<L: TokenInput, I: TokenId>(ids: &[I], out: &mut [f32]) -> Result<usize, TokenIdError> {
    const { assert!(L::VOCAB <= MAX_VOCAB, "a vocabulary above 2^24 ids cannot be read exactly as f32") };
    let steps = <L::Input as Shape>::LEN;
    let batch = BatchLenError::samples(steps, ids.len())?;
    if out.len() != ids.len() {
        return Err(BatchLenError { sample: steps, found: out.len() }.into());
    }
    for (position, (&id, x)) in ids.iter().zip(out.iter_mut()).enumerate() {
        let id = id.value();
        if id < 0 || id >= L::VOCAB as i128 {
            return Err(TokenIdError::OutOfRange {
                id,
                sample: position / steps,
                step: position % steps,
                vocab: L::VOCAB,
            });
        }
        // Exact: `id < VOCAB <= 2^24`.
        *x = id as f32;
    }
    Ok(batch)
}

/// [`encode_ids`] into a new vector.
#[cfg(feature = "alloc")]
pub fn ids_to_input<L: TokenInput, I: TokenId>(ids: &[I]) -> Result<alloc::vec::Vec<f32>, TokenIdError> {
    let mut x = alloc::vec![0.0; ids.len()];
    encode_ids::<L, I>(ids, &mut x)?;
    Ok(x)
}

#[cfg(feature = "alloc")]
impl<L: TokenInput, P: AsRef<[f32]>> crate::Model<L, P> {
    /// Batch inference on token ids: the outputs of the sequences in `ids` (a whole
    /// number of the network's input length), each id checked against the
    /// vocabulary. The same outputs as [`Model::predict`](crate::Model::predict) on
    /// the ids as floats; see [`tokens`](crate::tokens).
    pub fn predict_ids<I: TokenId>(&self, ids: &[I]) -> Result<alloc::vec::Vec<f32>, TokenIdError> {
        let x = ids_to_input::<L, I>(ids)?;
        let batch = x.len() / <L::Input as Shape>::LEN;
        let mut y = alloc::vec![0.0; batch * <L::Output as Shape>::LEN];
        let mut scratch = alloc::vec![0.0; batch * L::SCRATCH];
        self.forward_slices(&x, &mut y, &mut scratch);
        Ok(y)
    }
}

/// Why [`Dataset::from_token_ids`](crate::train::Dataset::from_token_ids) refused its
/// arrays.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenDatasetError {
    /// An id is out of range, or the ids are not whole sequences.
    Ids(TokenIdError),
    /// The targets do not match the sequences.
    Dataset(crate::train::DatasetError),
}

#[cfg(feature = "alloc")]
impl fmt::Display for TokenDatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenDatasetError::Ids(e) => e.fmt(f),
            TokenDatasetError::Dataset(e) => e.fmt(f),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TokenDatasetError {}

#[cfg(feature = "alloc")]
impl crate::train::Dataset {
    /// A data set of token-id sequences for the network `L` (whose first layer is an
    /// `Embedding`), with `target_len` targets per sequence: the ids are checked
    /// against `L`'s vocabulary, so that training never sees an id the table has no
    /// row for. `Fit` trains from it as from any data set.
    ///
    /// ```
    /// use nn_core::prelude::*;
    /// use nn_core::tokens::{TokenDatasetError, TokenIdError};
    ///
    /// network! {
    ///     pub struct Bag: [2] -> [1] {
    ///         embed: Embedding { vocab: 4, dim: 3 },
    ///         flat: Flatten,
    ///         out: Dense { units: 1 },
    ///     }
    /// }
    /// let data = Dataset::from_token_ids::<Bag, u32>(&[0, 1, 3, 2], vec![1.0, 0.0], 1).unwrap();
    /// assert_eq!((data.len(), data.input(1)), (2, &[3.0, 2.0][..]));
    /// let err = Dataset::from_token_ids::<Bag, u32>(&[0, 1, 3, 4], vec![1.0, 0.0], 1);
    /// assert_eq!(err, Err(TokenDatasetError::Ids(TokenIdError::OutOfRange { id: 4, sample: 1, step: 1, vocab: 4 })));
    /// ```
    pub fn from_token_ids<L: TokenInput, I: TokenId>(
        ids: &[I],
        targets: alloc::vec::Vec<f32>,
        target_len: usize,
    ) -> Result<Self, TokenDatasetError> {
        let inputs = ids_to_input::<L, I>(ids).map_err(TokenDatasetError::Ids)?;
        Self::new(inputs, <L::Input as Shape>::LEN, targets, target_len).map_err(TokenDatasetError::Dataset)
    }
}
