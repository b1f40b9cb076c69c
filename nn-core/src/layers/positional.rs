//! Positional encodings: `[T, D] -> [T, D]`, `y[t] = x[t] + pe[t]`.
//!
//! Attention is blind to order; adding a vector that depends on the position lets it
//! see where each token is.
//!
//! * [`PositionalEncoding`]: the fixed sinusoids of "Attention Is All You Need", no
//!   parameters: `pe[t, 2i] = sin(t / 10000^(2i / D))`,
//!   `pe[t, 2i + 1] = cos(t / 10000^(2i / D))`. The input is not rescaled (multiply
//!   embeddings by `sqrt(D)` before, if wanted).
//! * [`LearnedPositional`]: a trained table, parameter `weight [T, D]` (the layout of an
//!   `nn.Embedding(T, D)` indexed by position, as BERT's position embeddings), started
//!   from the standard normal distribution as `nn.Embedding`.
//!
//! Both are additions, so `dx = dy`; the learned table also gets `dweight[t] += dy[t]`
//! summed over the batch.
//!
//! ```
//! use nn_core::layers::PositionalEncoding;
//! use nn_core::{Layer, Shape};
//!
//! let pe = PositionalEncoding::<3, 4>::new();
//! let mut y = [0.0f32; 12];
//! pe.forward(nn_core::Weights::new(&[], &[]), &[0.0; 12], &mut y, &mut []);
//! assert_eq!(&y[..4], &[0.0, 1.0, 0.0, 1.0]); // position 0: sin 0, cos 0
//! assert!((y[4] - 1.0f32.sin()).abs() < 1e-6 && (y[5] - 1.0f32.cos()).abs() < 1e-6);
//! ```
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::Shape2;

/// Fixed sinusoidal position encodings added to a sequence `[T, D]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PositionalEncoding<const T: usize, const D: usize>;

impl<const T: usize, const D: usize> PositionalEncoding<T, D> {
    /// The layer.
    pub const fn new() -> Self {
        PositionalEncoding
    }
}

/// `pe[t, j]` of a model of width `width`.
pub fn sinusoid(t: usize, j: usize, width: usize) -> f32 {
    // 10000^(-2i / D) = exp(-(2i / D) ln 10000), computed in f64 for the angle.
    let pair = (j / 2 * 2) as f64;
    let angle = t as f64 * libm::exp(-pair / width as f64 * libm::log(10000.0));
    let value = if j.is_multiple_of(2) { libm::sin(angle) } else { libm::cos(angle) };
    value as f32
}

/// `y = x + pe` for every sample of `t * width` values; `pe` row by row, so each value
/// is computed once per call.
fn add_sinusoids(x: &[f32], y: &mut [f32], steps: usize, width: usize) {
    let len = steps * width;
    for t in 0..steps {
        for j in 0..width {
            let pe = sinusoid(t, j, width);
            let at = t * width + j;
            for (y, x) in y[at..].iter_mut().step_by(len).zip(x[at..].iter().step_by(len)) {
                *y = x + pe;
            }
        }
    }
}

impl<const T: usize, const D: usize> Layer for PositionalEncoding<T, D> {
    type Input = Shape2<T, D>;
    type Output = Shape2<T, D>;
    const PARAMS: usize = 0;
    const KIND: &'static str = "PositionalEncoding";

    fn init(&self, _params: &mut [f32], _buffers: &mut [f32], _rng: &mut Rng) {}

    fn forward(&self, _w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        add_sinusoids(x, &mut y[..x.len()], T, D);
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, buffers, scratch, .. } = cx;
        self.forward(Weights::new(params, buffers), x, y, scratch);
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, _cx: BackwardCtx<'_>) {
        if let Some(dx) = dx {
            dx[..x.len()].copy_from_slice(&dy[..x.len()]);
        }
    }
}

/// A learned position table `weight [T, D]` added to a sequence `[T, D]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LearnedPositional<const T: usize, const D: usize>;

impl<const T: usize, const D: usize> LearnedPositional<T, D> {
    /// The layer.
    pub const fn new() -> Self {
        LearnedPositional
    }
}

impl<const T: usize, const D: usize> Layer for LearnedPositional<T, D> {
    type Input = Shape2<T, D>;
    type Output = Shape2<T, D>;
    const PARAMS: usize = T * D;
    const KIND: &'static str = "LearnedPositional";
    const TENSORS: &'static crate::weights::TensorTree =
        &crate::weights::TensorTree::Leaf { name: "weight", shape: &[T, D], trainable: true };

    /// Standard normal, as `nn.Embedding`.
    fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
        params[..T * D].iter_mut().for_each(|v| *v = rng.normal());
    }

    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        let params = w.params;
        let table = &params[..T * D];
        for (y, x) in y.chunks_exact_mut(T * D).zip(x.chunks_exact(T * D)) {
            for ((y, &x), &p) in y.iter_mut().zip(x).zip(table) {
                *y = x + p;
            }
        }
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, buffers, scratch, .. } = cx;
        self.forward(Weights::new(params, buffers), x, y, scratch);
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { grads, .. } = cx;
        let n = x.len();
        for d in dy[..n].chunks_exact(T * D) {
            grads[..T * D].iter_mut().zip(d).for_each(|(g, &d)| *g += d);
        }
        if let Some(dx) = dx {
            dx[..n].copy_from_slice(&dy[..n]);
        }
    }
}
