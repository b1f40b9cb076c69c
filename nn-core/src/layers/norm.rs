//! Batch normalisation: `BatchNorm1d` and `BatchNorm2d`, as PyTorch.
//!
//! | layer | input = output | normalised over | parameters | buffers |
//! |---|---|---|---|---|
//! | `BatchNorm1d<Shape1<C>>` | `[C]` | the batch | `weight [C]`, `bias [C]` | see below |
//! | `BatchNorm1d<Shape2<C, L>>` | `[C, L]` | the batch and `L` | as above | |
//! | `BatchNorm2d<C, H, W>` | `[C, H, W]` | the batch, `H` and `W` | as above | |
//!
//! Each channel `c` is normalised and then scaled and shifted:
//! `y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c`.
//!
//! * Training (`forward_train`) uses the statistics of the batch: the mean and the
//!   *biased* variance (divided by `n`, the number of values per channel) normalise,
//!   and the running statistics move towards the batch's with the *unbiased* variance
//!   (divided by `n - 1`): `running = (1 - momentum) * running + momentum * batch`;
//!   `num_batches_tracked` counts the steps. (With `n = 1`, where PyTorch refuses to
//!   train, the variance is 0 and the running variance moves towards 0.)
//! * Inference (`forward`) uses the running statistics.
//! * In evaluation mode, PyTorch's `module.eval()` with gradients enabled, a training
//!   forward uses the running statistics as well and leaves them unchanged; its
//!   backward treats them as constants: `dx = dy * weight / sqrt(running_var + eps)`,
//!   `d_weight += sum(dy * xhat)`, `d_bias += sum(dy)` with
//!   `xhat = (x - running_mean) / sqrt(running_var + eps)`. A batch norm is in
//!   evaluation mode when the model is (`Model::eval`, which sets
//!   [`TrainCtx::training`] to false for the training forwards, `Fit`'s included), or
//!   always when declared so ([`BatchNorm::inference`], or `inference: true` in
//!   `network!`: a batch norm frozen for good inside a network being fine-tuned,
//!   whatever the model's mode; `Model::train` does not bring it back to training).
//!
//! The running statistics are buffers, not parameters: they live in the model's buffer
//! array as `running_mean [C]`, `running_var [C]` and `num_batches_tracked` (a scalar,
//! stored as an `f32`), PyTorch's `state_dict` names, and optimizers never see them.
//! Defaults are PyTorch's: momentum 0.1, eps 1e-5.
//!
//! ```
//! use nn_core::layers::BatchNorm2d;
//! use nn_core::{Layer, Rng};
//!
//! type Norm = BatchNorm2d<1, 1, 2>;
//! const NORM: Norm = BatchNorm2d::new(0.1, 1e-5);
//! let (mut params, mut buffers) = (vec![0.0; Norm::PARAMS], vec![0.0; Norm::BUFFERS]);
//! NORM.init(&mut params, &mut buffers, &mut Rng::new(0)); // weight 1, bias 0, var 1
//! let x = [1.0, 3.0, 5.0, 7.0]; // two samples of [1, 1, 2]: mean 4, variance 5
//! let (mut y, mut cache) = ([0.0; 4], vec![0.0; 2 * Norm::CACHE]);
//! NORM.forward_train(&x, &mut y, nn_core::TrainCtx { params: &params, buffers: &mut buffers, cache: &mut cache, scratch: &mut [], rng: &mut Rng::new(0), training: true });
//! assert!((y[0] + 3.0 / (5.0f32 + 1e-5).sqrt()).abs() < 1e-6);
//! assert!((buffers[0] - 0.4).abs() < 1e-6); // running_mean = 0.9 * 0 + 0.1 * 4
//! assert!((buffers[1] - (0.9 + 0.1 * 20.0 / 3.0)).abs() < 1e-6); // unbiased variance 20/3
//! assert_eq!(buffers[2], 1.0); // num_batches_tracked
//! ```
use core::marker::PhantomData;

use crate::kernels::maths::sqrt;
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::{Shape, Shape3};

/// Batch normalisation of samples of shape `S`, over the batch and every dimension but
/// the first (the channels). Use the aliases [`BatchNorm1d`] and [`BatchNorm2d`].
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm<S> {
    momentum: f32,
    eps: f32,
    inference: bool,
    _shape: PhantomData<S>,
}

/// Batch normalisation of vectors `[C]` or signals `[C, L]`, as PyTorch's
/// `nn.BatchNorm1d(C)`.
pub type BatchNorm1d<S> = BatchNorm<S>;
/// Batch normalisation of images `[C, H, W]`, as PyTorch's `nn.BatchNorm2d(C)`.
pub type BatchNorm2d<const C: usize, const H: usize, const W: usize> = BatchNorm<Shape3<C, H, W>>;

impl<S: Shape> BatchNorm<S> {
    /// PyTorch's default momentum.
    pub const MOMENTUM: f32 = 0.1;
    /// PyTorch's default epsilon.
    pub const EPS: f32 = 1e-5;
    const CHANNELS: usize = S::DIMS[0];
    const SPATIAL: usize = S::LEN / S::DIMS[0];

    /// Batch normalisation with this momentum of the running statistics and this
    /// epsilon added to the variance.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `momentum` is not in `[0, 1]` or `eps` is
    /// not positive.
    pub const fn new(momentum: f32, eps: f32) -> Self {
        assert!(momentum >= 0.0 && momentum <= 1.0, "BatchNorm: the momentum must be in [0, 1]");
        assert!(eps > 0.0 && eps.is_finite(), "BatchNorm: eps must be positive");
        BatchNorm { momentum, eps, inference: false, _shape: PhantomData }
    }

    /// The same batch norm in inference mode for good: training forwards normalise
    /// with the running statistics and leave them unchanged, and backward
    /// differentiates that (PyTorch's `eval()` mode, for a frozen batch norm in a
    /// network being trained), whatever the model's mode. For a run-time switch of the
    /// whole model, see `Model::eval` and `Model::train`.
    pub const fn inference(self) -> Self {
        BatchNorm { inference: true, ..self }
    }

    /// Whether this batch norm is in inference mode (see [`BatchNorm::inference`]).
    pub const fn is_inference(&self) -> bool {
        self.inference
    }

    /// The momentum of the running statistics.
    pub const fn momentum(&self) -> f32 {
        self.momentum
    }

    /// The epsilon added to the variance.
    pub const fn eps(&self) -> f32 {
        self.eps
    }
}

impl<S: Shape> Default for BatchNorm<S> {
    fn default() -> Self {
        Self::new(Self::MOMENTUM, Self::EPS)
    }
}

impl<S: Shape> Layer for BatchNorm<S> {
    type Input = S;
    type Output = S;
    /// `weight [C]`, then `bias [C]`.
    const PARAMS: usize = 2 * Self::CHANNELS;
    /// `running_mean [C]`, `running_var [C]`, `num_batches_tracked`.
    const BUFFERS: usize = 2 * Self::CHANNELS + 1;
    /// Inference followed by a ReLU layer runs as one pass ([`inference_relu_in_place`]).
    const RELU_IN_PLACE: bool = true;
    /// The mean and `1 / sqrt(var + eps)` of every channel, and whether they are the
    /// running statistics' (evaluation mode: `1`) or the batch's (`0`), stored once per
    /// batch in the first sample's share.
    const CACHE: usize = 2 * Self::CHANNELS + 1;
    const KIND: &'static str = if S::DIMS.len() == 3 { "BatchNorm2d" } else { "BatchNorm1d" };
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Pair {
        first: &crate::weights::TensorTree::Leaf { name: "weight", shape: &[Self::CHANNELS], trainable: true },
        rest: &crate::weights::TensorTree::Pair {
            first: &crate::weights::TensorTree::Leaf { name: "bias", shape: &[Self::CHANNELS], trainable: true },
            rest: &crate::weights::TensorTree::Pair {
                first: &crate::weights::TensorTree::Leaf {
                    name: "running_mean",
                    shape: &[Self::CHANNELS],
                    trainable: false,
                },
                rest: &crate::weights::TensorTree::Pair {
                    first: &crate::weights::TensorTree::Leaf {
                        name: "running_var",
                        shape: &[Self::CHANNELS],
                        trainable: false,
                    },
                    rest: &crate::weights::TensorTree::Leaf {
                        name: "num_batches_tracked",
                        shape: &[],
                        trainable: false,
                    },
                },
            },
        },
    };

    fn init(&self, params: &mut [f32], buffers: &mut [f32], _rng: &mut Rng) {
        let c = Self::CHANNELS;
        params[..c].fill(1.0);
        params[c..2 * c].fill(0.0);
        buffers[..c].fill(0.0);
        buffers[c..2 * c].fill(1.0);
        buffers[2 * c] = 0.0;
    }

    #[inline]
    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        let (params, buffers) = (w.params, w.buffers);
        inference(Self::CHANNELS, Self::SPATIAL, self.eps, params, buffers, x, y);
    }

    #[inline]
    fn relu_in_place(&self, w: Weights<'_>, buf: &mut [f32]) {
        inference_relu_in_place(Self::CHANNELS, Self::SPATIAL, self.eps, w.params, w.buffers, buf);
    }

    #[inline]
    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, buffers, cache, training, .. } = cx;
        let running = self.inference || !training;
        if running {
            inference(Self::CHANNELS, Self::SPATIAL, self.eps, params, buffers, x, y);
            running_cache(Self::CHANNELS, self.eps, buffers, cache);
        } else {
            train(Self::CHANNELS, Self::SPATIAL, self.eps, self.momentum, params, buffers, x, y, cache);
        }
        if let Some(flag) = cache.get_mut(2 * Self::CHANNELS) {
            *flag = if running { 1.0 } else { 0.0 };
        }
    }

    #[inline]
    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, .. } = cx;
        let running = cache.get(2 * Self::CHANNELS).is_some_and(|&flag| flag != 0.0);
        backward(Self::CHANNELS, Self::SPATIAL, running, params, x, cache, dy, dx, grads);
    }
}

/// The values of channel `c` in every sample of a batch: `batch` runs of `spatial`.
#[inline]
fn channel(x: &[f32], channels: usize, spatial: usize, c: usize) -> impl Iterator<Item = &[f32]> {
    x.chunks_exact(channels * spatial).map(move |sample| &sample[c * spatial..(c + 1) * spatial])
}

/// Applies `y = x * scale + shift` to channel `c` of every sample.
#[inline(always)]
fn affine(channels: usize, spatial: usize, c: usize, scale: f32, shift: f32, x: &[f32], y: &mut [f32]) {
    let len = channels * spatial;
    for (xs, ys) in x.chunks_exact(len).zip(y.chunks_exact_mut(len)) {
        let range = c * spatial..(c + 1) * spatial;
        for (y, &x) in ys[range.clone()].iter_mut().zip(&xs[range]) {
            *y = x * scale + shift;
        }
    }
}

/// Inference: normalises with the running statistics (compiled for eight lanes where
/// the CPU has AVX2: the same multiplications and additions, rounded the same).
fn inference(channels: usize, spatial: usize, eps: f32, params: &[f32], buffers: &[f32], x: &[f32], y: &mut [f32]) {
    #[inline(always)]
    fn portable(channels: usize, spatial: usize, eps: f32, params: &[f32], buffers: &[f32], x: &[f32], y: &mut [f32]) {
        let (gamma, beta) = params.split_at(channels);
        let (mean, var) = buffers.split_at(channels);
        for c in 0..channels {
            let scale = gamma[c] / sqrt(var[c] + eps);
            affine(channels, spatial, c, scale, beta[c] - mean[c] * scale, x, y);
        }
    }
    /// [`portable`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(
        channels: usize,
        spatial: usize,
        eps: f32,
        params: &[f32],
        buffers: &[f32],
        x: &[f32],
        y: &mut [f32],
    ) {
        portable(channels, spatial, eps, params, buffers, x, y)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2(channels, spatial, eps, params, buffers, x, y) };
    }
    portable(channels, spatial, eps, params, buffers, x, y)
}

/// [`inference`] over `buf` in place, each value then through a ReLU (`v > 0 ? v : 0`,
/// NaN to 0): a batch norm and the ReLU layer after it in one pass, the same operations
/// as the two layers' (compiled for eight lanes where the CPU has AVX2, as [`inference`]).
fn inference_relu_in_place(
    channels: usize,
    spatial: usize,
    eps: f32,
    params: &[f32],
    buffers: &[f32],
    buf: &mut [f32],
) {
    #[inline(always)]
    fn portable(channels: usize, spatial: usize, eps: f32, params: &[f32], buffers: &[f32], buf: &mut [f32]) {
        let (gamma, beta) = params.split_at(channels);
        let (mean, var) = buffers.split_at(channels);
        let len = channels * spatial;
        for c in 0..channels {
            let scale = gamma[c] / sqrt(var[c] + eps);
            let shift = beta[c] - mean[c] * scale;
            for sample in buf.chunks_exact_mut(len) {
                for v in &mut sample[c * spatial..(c + 1) * spatial] {
                    let z = *v * scale + shift;
                    *v = if z > 0.0 { z } else { 0.0 };
                }
            }
        }
    }
    /// [`portable`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(channels: usize, spatial: usize, eps: f32, params: &[f32], buffers: &[f32], buf: &mut [f32]) {
        portable(channels, spatial, eps, params, buffers, buf)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2(channels, spatial, eps, params, buffers, buf) };
    }
    portable(channels, spatial, eps, params, buffers, buf)
}

/// Training forward: normalises with the batch statistics (accumulated in `f64`),
/// updates the running statistics and keeps the mean and `1 / sqrt(var + eps)` of every
/// channel in `cache`.
#[allow(clippy::too_many_arguments)]
fn train(
    channels: usize,
    spatial: usize,
    eps: f32,
    momentum: f32,
    params: &[f32],
    buffers: &mut [f32],
    x: &[f32],
    y: &mut [f32],
    cache: &mut [f32],
) {
    let n = x.len() / channels;
    let (gamma, beta) = params.split_at(channels);
    let (running_mean, rest) = buffers.split_at_mut(channels);
    let (running_var, tracked) = rest.split_at_mut(channels);
    let (cache_mean, cache_inv_std) = cache[..2 * channels].split_at_mut(channels);
    for c in 0..channels {
        let sum: f64 = channel(x, channels, spatial, c).flatten().map(|&v| v as f64).sum();
        let mean = sum / n as f64;
        let squares: f64 =
            channel(x, channels, spatial, c).flatten().map(|&v| (v as f64 - mean) * (v as f64 - mean)).sum();
        let var = squares / n as f64;
        let inv_std = 1.0 / libm::sqrt(var + eps as f64);
        cache_mean[c] = mean as f32;
        cache_inv_std[c] = inv_std as f32;
        let scale = gamma[c] as f64 * inv_std;
        affine(channels, spatial, c, scale as f32, (beta[c] as f64 - mean * scale) as f32, x, y);
        let unbiased = squares / (n.max(2) - 1) as f64;
        let m = momentum as f64;
        running_mean[c] = ((1.0 - m) * running_mean[c] as f64 + m * mean) as f32;
        running_var[c] = ((1.0 - m) * running_var[c] as f64 + m * unbiased) as f32;
    }
    tracked[0] += 1.0;
}

/// The running mean and `1 / sqrt(running_var + eps)` of every channel, kept in
/// `cache` by a training forward in inference mode for [`backward`].
fn running_cache(channels: usize, eps: f32, buffers: &[f32], cache: &mut [f32]) {
    let (mean, var) = buffers.split_at(channels);
    let (cache_mean, cache_inv_std) = cache[..2 * channels].split_at_mut(channels);
    for c in 0..channels {
        cache_mean[c] = mean[c];
        cache_inv_std[c] = 1.0 / libm::sqrtf(var[c] + eps);
    }
}

/// Backward of [`train`]: with `xhat = (x - mean) * inv_std`,
/// `d_weight += sum(dy * xhat)`, `d_bias += sum(dy)` and
/// `dx = weight * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat))`; in inference
/// mode (`running`: the mean and `inv_std` are the running statistics', constants),
/// `dx = weight * inv_std * dy`.
#[allow(clippy::too_many_arguments)]
fn backward(
    channels: usize,
    spatial: usize,
    running: bool,
    params: &[f32],
    x: &[f32],
    cache: &[f32],
    dy: &[f32],
    mut dx: Option<&mut [f32]>,
    grads: &mut [f32],
) {
    let n = (x.len() / channels) as f64;
    let gamma = &params[..channels];
    let (d_gamma, d_beta) = grads.split_at_mut(channels);
    let (cache_mean, cache_inv_std) = cache[..2 * channels].split_at(channels);
    for c in 0..channels {
        let (mean, inv_std) = (cache_mean[c], cache_inv_std[c]);
        let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
        for (xs, ds) in channel(x, channels, spatial, c).zip(channel(dy, channels, spatial, c)) {
            for (&x, &d) in xs.iter().zip(ds) {
                sum_dy += d as f64;
                sum_dy_xhat += (d * (x - mean) * inv_std) as f64;
            }
        }
        d_gamma[c] += sum_dy_xhat as f32;
        d_beta[c] += sum_dy as f32;
        if let Some(dx) = dx.as_deref_mut() {
            let scale = gamma[c] * inv_std;
            let (mean_dy, mean_dy_xhat) =
                if running { (0.0, 0.0) } else { ((sum_dy / n) as f32, (sum_dy_xhat / n) as f32) };
            let len = channels * spatial;
            for ((xs, ds), dxs) in x.chunks_exact(len).zip(dy.chunks_exact(len)).zip(dx.chunks_exact_mut(len)) {
                let range = c * spatial..(c + 1) * spatial;
                for ((dx, &x), &d) in dxs[range.clone()].iter_mut().zip(&xs[range.clone()]).zip(&ds[range]) {
                    let xhat = (x - mean) * inv_std;
                    *dx = scale * (d - mean_dy - xhat * mean_dy_xhat);
                }
            }
        }
    }
}
