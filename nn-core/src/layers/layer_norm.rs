//! `LayerNorm`: normalisation over the last dimension, shape-preserving.
//!
//! PyTorch's `nn.LayerNorm(D, eps=1e-5)` for samples whose last dimension is `D`
//! (`[D]` vectors, `[T, D]` sequences): each row of `D` values is normalised with its
//! own mean and *biased* variance, then scaled and shifted:
//! `y = (x - mean) / sqrt(var + eps) * weight + bias`. Parameters `weight [D]` (starts
//! at 1) and `bias [D]` (starts at 0). Unlike batch norm, training and inference
//! compute the same thing, and samples do not interact.
//!
//! Backward, with `x^ = (x - mean) * r`, `r = 1 / sqrt(var + eps)` and `g = dy * weight`:
//! `dx = r (g - mean(g) - x^ mean(g x^))`, `dweight += sum dy x^`, `dbias += sum dy`.
//!
//! ```
//! use nn_core::layers::LayerNorm;
//! use nn_core::{Layer, Rng, Shape2};
//!
//! let norm = LayerNorm::<Shape2<2, 4>>::new(1e-5);
//! let mut params = [0.0; 8];
//! norm.init(&mut params, &mut [], &mut Rng::new(0)); // weight 1, bias 0
//! let mut y = [0.0f32; 8];
//! norm.forward(nn_core::Weights::new(&params, &[]), &[1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0], &mut y, &mut []);
//! let mean: f32 = y[..4].iter().sum::<f32>() / 4.0;
//! let var: f32 = y[..4].iter().map(|v| v * v).sum::<f32>() / 4.0;
//! assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4);
//! assert_eq!(&y[4..], &[0.0; 4]); // a constant row normalises to zeros
//! ```
use core::marker::PhantomData;

use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::Shape;

/// Layer normalisation over the last dimension of samples of shape `S`.
#[derive(Clone, Copy, Debug)]
pub struct LayerNorm<S> {
    /// Added to the variance before the square root.
    pub eps: f32,
    _shape: PhantomData<S>,
}

impl<S: Shape> LayerNorm<S> {
    /// PyTorch's default epsilon.
    pub const EPS: f32 = 1e-5;
    /// The normalised width: the last dimension.
    pub const WIDTH: usize = S::DIMS[S::DIMS.len() - 1];
    /// Rows per sample.
    const ROWS: usize = S::LEN / Self::WIDTH;

    /// Layer normalisation with this epsilon.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `eps` is not positive.
    pub const fn new(eps: f32) -> Self {
        assert!(eps > 0.0 && eps.is_finite(), "LayerNorm: eps must be positive");
        LayerNorm { eps, _shape: PhantomData }
    }
}

impl<S: Shape> Default for LayerNorm<S> {
    fn default() -> Self {
        Self::new(Self::EPS)
    }
}

/// Normalises each row of `width` values of `x` into `y` with `params = weight | bias`.
/// When `cache` is given, it receives `x^` (`x.len()` floats) then `r` per row.
pub(crate) fn forward(params: &[f32], eps: f32, width: usize, x: &[f32], y: &mut [f32], cache: Option<&mut [f32]>) {
    let (weight, bias) = params[..2 * width].split_at(width);
    let rows = x.len() / width;
    let (mut normed, mut rstd) = match cache {
        Some(c) => {
            let (n, r) = c.split_at_mut(rows * width);
            (Some(n), Some(&mut r[..rows]))
        }
        None => (None, None),
    };
    let inv_width = 1.0 / width as f32;
    for (row, (x, y)) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)).enumerate() {
        let mean = x.iter().sum::<f32>() * inv_width;
        let var = x.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() * inv_width;
        let r = 1.0 / libm::sqrtf(var + eps);
        for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(weight).zip(bias) {
            *y = (x - mean) * r * w + b;
        }
        if let Some(n) = normed.as_deref_mut() {
            for (n, &x) in n[row * width..(row + 1) * width].iter_mut().zip(x) {
                *n = (x - mean) * r;
            }
        }
        if let Some(rs) = rstd.as_deref_mut() {
            rs[row] = r;
        }
    }
}

/// Backward of [`forward`] in place: `d` holds `dL/dy` and receives `dL/dx`; the
/// parameter gradients are added into `grads = dweight | dbias`. `cache` is the one
/// `forward` filled for `d.len() / width` rows.
pub(crate) fn backward_in_place(params: &[f32], width: usize, cache: &[f32], d: &mut [f32], grads: &mut [f32]) {
    let weight = &params[..width];
    let (g_weight, g_bias) = grads[..2 * width].split_at_mut(width);
    let rows = d.len() / width;
    let (normed, rstd) = cache.split_at(rows * width);
    let inv_width = 1.0 / width as f32;
    for ((d, n), &r) in d.chunks_exact_mut(width).zip(normed.chunks_exact(width)).zip(rstd) {
        let (mut sum_g, mut sum_gn) = (0.0f32, 0.0f32);
        for ((((dy, &n), &w), gw), gb) in d.iter().zip(n).zip(weight).zip(g_weight.iter_mut()).zip(g_bias.iter_mut()) {
            *gw += dy * n;
            *gb += dy;
            let g = dy * w;
            sum_g += g;
            sum_gn += g * n;
        }
        let (mean_g, mean_gn) = (sum_g * inv_width, sum_gn * inv_width);
        for ((d, &n), &w) in d.iter_mut().zip(n).zip(weight) {
            *d = r * (*d * w - mean_g - n * mean_gn);
        }
    }
}

/// Weight 1 and bias 0, as PyTorch.
pub(crate) fn init(params: &mut [f32], width: usize) {
    let (weight, bias) = params[..2 * width].split_at_mut(width);
    weight.fill(1.0);
    bias.fill(0.0);
}

impl<S: Shape> Layer for LayerNorm<S> {
    type Input = S;
    type Output = S;
    const PARAMS: usize = 2 * Self::WIDTH;
    /// `x^` and `1 / sqrt(var + eps)` per row.
    const CACHE: usize = S::LEN + Self::ROWS;
    const KIND: &'static str = "LayerNorm";
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Pair {
        first: &crate::weights::TensorTree::Leaf { name: "weight", shape: &[Self::WIDTH], trainable: true },
        rest: if true {
            &crate::weights::TensorTree::Leaf { name: "bias", shape: &[Self::WIDTH], trainable: true }
        } else {
            &crate::weights::TensorTree::Empty
        },
    };

    fn init(&self, params: &mut [f32], _buffers: &mut [f32], _rng: &mut Rng) {
        init(params, Self::WIDTH);
    }

    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        let params = w.params;
        forward(params, self.eps, Self::WIDTH, x, y, None);
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, .. } = cx;
        let batch = x.len() / S::LEN;
        forward(params, self.eps, Self::WIDTH, x, y, Some(&mut cache[..batch * Self::CACHE]));
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, .. } = cx;
        let n = x.len();
        let batch = n / S::LEN;
        let cache = &cache[..batch * (S::LEN + Self::ROWS)];
        backward_in_place(params, Self::WIDTH, cache, &mut dy[..n], grads);
        if let Some(dx) = dx {
            dx[..n].copy_from_slice(&dy[..n]);
        }
    }
}
