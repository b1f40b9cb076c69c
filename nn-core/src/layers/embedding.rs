//! `Embedding`: token ids `[T]` -> vectors `[T, D]`, a lookup in `weight [V, D]`.
//!
//! PyTorch's `nn.Embedding(num_embeddings=V, embedding_dim=D)`: parameter `weight`,
//! initialised from the standard normal distribution. Token ids are stored as `f32`
//! (so that a token sequence is an ordinary input tensor) and truncated toward zero.
//! An id outside `[0, V)` (negative, too large, NaN) selects a zero row and receives
//! no gradient: the layer never panics on bad data. The input gets no gradient (ids
//! are not differentiable; `dx` is zeroed).
//!
//! To give a network integer ids (`u32`, `usize`, `i64` as PyTorch's `LongTensor`)
//! and have an id out of range reported as an error rather than read as a zero row,
//! use [`tokens`](crate::tokens): `Model::predict_ids`, `Dataset::from_token_ids`
//! and `encode_ids` check every id against the vocabulary.
//!
//! ```
//! use nn_core::layers::Embedding;
//! use nn_core::{Layer, Rng};
//!
//! let embed = Embedding::<3, 10, 4>::new();
//! let mut weight = vec![0.0; Embedding::<3, 10, 4>::PARAMS];
//! embed.init(&mut weight, &mut [], &mut Rng::new(1));
//! let mut y = [0.0f32; 3 * 4];
//! embed.forward(nn_core::Weights::new(&weight, &[]), &[7.0, 0.0, 99.0], &mut y, &mut []);
//! assert_eq!(&y[..4], &weight[7 * 4..8 * 4]); // row 7
//! assert_eq!(&y[8..], &[0.0; 4]); // id 99 is out of range: zeros
//! ```
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::{Shape1, Shape2};

/// A lookup table of `V` vectors of width `D`, applied to `T` token ids.
#[derive(Clone, Copy, Debug, Default)]
pub struct Embedding<const T: usize, const V: usize, const D: usize>;

impl<const T: usize, const V: usize, const D: usize> Embedding<T, V, D> {
    /// The layer.
    pub const fn new() -> Self {
        Embedding
    }
}

/// The row of token `id`, if it is in `[0, vocab)`: ids are truncated toward zero.
#[inline]
pub fn token_row(id: f32, vocab: usize) -> Option<usize> {
    if id >= 0.0 && id < vocab as f32 {
        Some((id as usize).min(vocab - 1))
    } else {
        None
    }
}

/// Looks up every id of `ids` in `weight [vocab, dim]`, writing `dim` floats each.
#[inline]
pub(crate) fn lookup(weight: &[f32], vocab: usize, dim: usize, ids: &[f32], y: &mut [f32]) {
    for (&id, row) in ids.iter().zip(y.chunks_exact_mut(dim)) {
        match token_row(id, vocab) {
            Some(r) => row.copy_from_slice(&weight[r * dim..(r + 1) * dim]),
            None => row.fill(0.0),
        }
    }
}

impl<const T: usize, const V: usize, const D: usize> Layer for Embedding<T, V, D> {
    type Input = Shape1<T>;
    type Output = Shape2<T, D>;
    const PARAMS: usize = V * D;
    const KIND: &'static str = "Embedding";
    const TENSORS: &'static crate::weights::TensorTree =
        &crate::weights::TensorTree::Leaf { name: "weight", shape: &[V, D], trainable: true };

    /// Standard normal, as PyTorch.
    fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
        params[..V * D].iter_mut().for_each(|v| *v = rng.normal());
    }

    #[inline]
    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        let params = w.params;
        lookup(params, V, D, x, y);
    }

    #[inline]
    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, .. } = cx;
        lookup(params, V, D, x, y);
    }

    /// `dW[id] += dy[t]` for every valid id.
    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { grads, .. } = cx;
        for (&id, g) in x.iter().zip(dy.chunks_exact(D)) {
            if let Some(r) = token_row(id, V) {
                grads[r * D..(r + 1) * D].iter_mut().zip(g).for_each(|(w, g)| *w += g);
            }
        }
        if let Some(dx) = dx {
            dx[..x.len()].fill(0.0);
        }
    }
}
