//! One layer run on its own: the arrays its contexts borrow, sized for a batch, so
//! that a test that trains a layer and then runs its backward writes
//!
//! ```text
//! let mut s = Standalone::of(&layer, batch, seed);
//! layer.forward_train(&x, &mut y, s.train(&params));
//! layer.backward(&x, &y, &mut dy, Some(&mut dx), s.backward(&params));
//! // s.grads, s.cache, s.buffers
//! ```
//!
//! instead of two struct literals. The cache and scratch start as NaN, so a read of
//! a value the layer did not write shows in the results; buffers and gradients start
//! at zero (set `grads` or `buffers` before a pass to start elsewhere).
#![allow(dead_code)]

use nn_core::layer::Frozen;
use nn_core::{BackwardCtx, Layer, Rng, TrainCtx};

/// The arrays of a layer's training forward and backward for `batch` samples.
pub struct Standalone {
    /// `L::BUFFERS` floats (batch-norm statistics), zero.
    pub buffers: Vec<f32>,
    /// `batch * L::CACHE` floats, NaN until a training forward writes them.
    pub cache: Vec<f32>,
    /// `batch * L::SCRATCH` floats, NaN.
    pub scratch: Vec<f32>,
    /// `L::PARAMS` floats that the backward adds into, zero.
    pub grads: Vec<f32>,
    /// The random source of the training forward (dropout).
    pub rng: Rng,
    /// Training mode (`true`, the default) or evaluation mode.
    pub training: bool,
}

impl Standalone {
    /// The arrays of `L` for `batch` samples, the random source seeded with `seed`.
    pub fn new<L: Layer>(batch: usize, seed: u64) -> Self {
        Self::sized(L::PARAMS, L::BUFFERS, batch * L::CACHE, batch * L::SCRATCH, seed)
    }

    /// The arrays of a layer that is not a `Layer` (cross-attention, with two inputs),
    /// by length: `params` gradients, `buffers`, and the whole batch's `cache` and `scratch`.
    pub fn sized(params: usize, buffers: usize, cache: usize, scratch: usize, seed: u64) -> Self {
        Standalone {
            buffers: vec![0.0; buffers],
            cache: vec![f32::NAN; cache],
            scratch: vec![f32::NAN; scratch],
            grads: vec![0.0; params],
            rng: Rng::new(seed),
            training: true,
        }
    }

    /// [`Standalone::new`] for the type of `layer`.
    pub fn of<L: Layer>(_layer: &L, batch: usize, seed: u64) -> Self {
        Self::new::<L>(batch, seed)
    }

    /// The context of `Layer::forward_train` with `params`.
    pub fn train<'a>(&'a mut self, params: &'a [f32]) -> TrainCtx<'a> {
        TrainCtx {
            params,
            buffers: &mut self.buffers,
            cache: &mut self.cache,
            scratch: &mut self.scratch,
            rng: &mut self.rng,
            training: self.training,
        }
    }

    /// The context of `Layer::backward` with `params`, nothing frozen.
    pub fn backward<'a>(&'a mut self, params: &'a [f32]) -> BackwardCtx<'a> {
        self.backward_frozen(params, Frozen::NONE)
    }

    /// The context of `Layer::backward` with `params` and the `frozen` set.
    pub fn backward_frozen<'a>(&'a mut self, params: &'a [f32], frozen: Frozen<'a>) -> BackwardCtx<'a> {
        BackwardCtx { params, cache: &self.cache, grads: &mut self.grads, frozen, scratch: &mut self.scratch }
    }
}
