//! `Dropout`: inverted dropout, shape-preserving.
//!
//! In a training forward (`forward_train`) in training mode each value is zeroed with
//! probability `rate` and the survivors are scaled by `1 / (1 - rate)`, so the expected
//! output equals the input; in inference (`forward`) and in a training forward in
//! evaluation mode ([`TrainCtx::training`] false, `Model::eval`) the layer is the
//! identity, and its gradient passes through unchanged.
use core::marker::PhantomData;

use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::Shape;

/// Inverted dropout on samples of shape `S`.
#[derive(Clone, Copy, Debug)]
pub struct Dropout<S> {
    /// The probability of dropping each value, in `[0, 1)`.
    pub rate: f32,
    _shape: PhantomData<S>,
}

impl<S> Dropout<S> {
    /// Dropout with the given rate (`network!` checks `0 <= rate < 1`).
    pub const fn new(rate: f32) -> Self {
        Dropout { rate, _shape: PhantomData }
    }
}

impl<S: Shape> Layer for Dropout<S> {
    type Input = S;
    type Output = S;
    const PARAMS: usize = 0;
    /// The mask: `0` or `1 / (1 - rate)` per value (`1` in evaluation mode).
    const CACHE: usize = S::LEN;
    const KIND: &'static str = "Dropout";
    /// The identity in inference.
    const INFERENCE_IDENTITY: bool = true;

    fn init(&self, _params: &mut [f32], _buffers: &mut [f32], _rng: &mut Rng) {}

    fn forward(&self, _w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        y[..x.len()].copy_from_slice(x);
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { cache, rng, training, .. } = cx;
        if !training {
            cache[..x.len()].fill(1.0);
            y[..x.len()].copy_from_slice(x);
            return;
        }
        let keep = 1.0 - self.rate;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        for ((y, m), &x) in y.iter_mut().zip(cache.iter_mut()).zip(x) {
            *m = if rng.uniform() < keep { scale } else { 0.0 };
            *y = x * *m;
        }
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { cache, .. } = cx;
        if let Some(dx) = dx {
            for ((dx, &d), &m) in dx[..x.len()].iter_mut().zip(dy.iter()).zip(cache) {
                *dx = d * m;
            }
        }
    }
}
