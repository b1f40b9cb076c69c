//! The Transformer encoder: `FeedForward`, `TransformerEncoderLayer` and a stack of
//! them, `TransformerEncoder`; all `[T, D] -> [T, D]`.
//!
//! These are PyTorch's modules with `batch_first=True`, parameter for parameter:
//!
//! | layer | PyTorch | parameters (`state_dict` order) |
//! |---|---|---|
//! | `FeedForward<T, D, F>` | `linear2(dropout(act(linear1(x))))` | `linear1.weight [F, D]`, `linear1.bias`, `linear2.weight [D, F]`, `linear2.bias` |
//! | `TransformerEncoderLayer<T, D, H, F>` | `nn.TransformerEncoderLayer(D, H, F, dropout, activation, norm_first=...)` | `self_attn.in_proj_weight [3D, D]`, `self_attn.in_proj_bias`, `self_attn.out_proj.weight`, `self_attn.out_proj.bias`, then those of `FeedForward`, `norm1.weight`, `norm1.bias`, `norm2.weight`, `norm2.bias` |
//! | `TransformerEncoder<T, D, H, F, N>` | `nn.TransformerEncoder(layer, N)` (no final norm) | `layers.0.…` to `layers.{N-1}.…` |
//!
//! One encoder layer, with `sa` the self-attention ([`super::MultiHeadAttention`]),
//! `ff` the feed-forward block and `norm1`, `norm2` [`super::LayerNorm`]s:
//!
//! * post-norm (`norm_first: false`, PyTorch's default):
//!   `h = norm1(x + sa(x))`, `y = norm2(h + ff(h))`;
//! * pre-norm (`norm_first: true`): `h = x + sa(norm1(x))`, `y = h + ff(norm2(h))`.
//!
//! The residual additions are inside the layer: both operands are `[T, D]` by
//! construction (attention and the feed-forward block map `[T, D]` to `[T, D]`), so
//! they need no shape check of their own. Dropout (training only, PyTorch's default
//! 0.1) acts where PyTorch's does: on the attention weights, after the activation of
//! the feed-forward block, and on each block's output before its residual addition
//! (`dropout1`, `dropout2`). The key padding mask and the attention weights of one
//! sample are available as on [`super::MultiHeadAttention`].
//!
//! ```
//! use nn_core::layers::{TransformerEncoder, TransformerEncoderLayer};
//! use nn_core::{Activation, Layer, Rng};
//!
//! // 2 layers over sequences of 4 steps of width 8, 2 heads, feed-forward width 16.
//! type Encoder = TransformerEncoder<4, 8, 2, 16, 2>;
//! const ENCODER: Encoder = TransformerEncoder::new(TransformerEncoderLayer::new(true, Activation::Gelu, 0.0));
//! let mut params = vec![0.0; Encoder::PARAMS];
//! ENCODER.init(&mut params, &mut [], &mut Rng::new(0));
//! let x = vec![0.1; 4 * 8];
//! let (mut y, mut scratch) = (vec![0.0; 4 * 8], vec![0.0; Encoder::SCRATCH]);
//! ENCODER.forward(nn_core::Weights::new(&params, &[]), &x, &mut y, &mut scratch);
//! assert!(y.iter().all(|v| v.is_finite()));
//! let mut names = Vec::new();
//! ENCODER.visit_tensors(None, 0, 0, &mut |t| names.push(t.path.to_string()));
//! assert_eq!(names[0], "layers.0.self_attn.in_proj_weight");
//! assert_eq!(names.last().unwrap(), "layers.1.norm2.bias");
//! ```
use super::attention::{init_attention, MultiHeadAttention};
use super::dense::Dense;
use super::layer_norm;
use crate::activation::Activation;
use crate::kernels::attention::{attention_params, Attention};
use crate::kernels::dense;
use crate::layer::{BackwardCtx, Frozen, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::Shape2;

/// Draws an inverted-dropout mask (`0` or `1 / (1 - rate)`) into `mask` and multiplies
/// `values` by it. A `rate` of 0 leaves both alone and draws nothing: the backward
/// passes read the mask only when the rate is positive. Without `rng` (evaluation
/// mode) the mask is all ones and `values` stay as they are.
fn drop_values(rate: f32, mask: &mut [f32], values: &mut [f32], rng: Option<&mut Rng>) {
    if rate <= 0.0 {
        return;
    }
    let Some(rng) = rng else {
        mask.fill(1.0);
        return;
    };
    let keep = 1.0 - rate;
    let scale = 1.0 / keep;
    for (m, v) in mask.iter_mut().zip(values.iter_mut()) {
        *m = if rng.uniform() < keep { scale } else { 0.0 };
        *v *= *m;
    }
}

/// `a += b`.
fn add_into(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
}

/// `dst = src * mask`, elementwise.
fn mask_into(dst: &mut [f32], src: &[f32], mask: &[f32]) {
    dst.iter_mut().zip(src).zip(mask).for_each(|((d, &s), &m)| *d = s * m);
}

/// Splits `slice` into consecutive parts of these lengths.
fn split_parts<const K: usize>(mut slice: &[f32], lengths: [usize; K]) -> [&[f32]; K] {
    lengths.map(|len| {
        let (part, rest) = slice.split_at(len);
        slice = rest;
        part
    })
}

/// [`split_parts`] of a mutable slice.
fn split_parts_mut<const K: usize>(mut slice: &mut [f32], lengths: [usize; K]) -> [&mut [f32]; K] {
    lengths.map(|len| {
        let (part, rest) = core::mem::take(&mut slice).split_at_mut(len);
        slice = rest;
        part
    })
}

/// The range of part `i` of consecutive parts of `len` floats each.
fn nth_part(i: usize, len: usize) -> core::ops::Range<usize> {
    i * len..(i + 1) * len
}

/// `nn.Linear`'s default initialisation: `U(-1/sqrt(in), 1/sqrt(in))` for the weight
/// `[out, in]` and the bias.
fn init_linear(params: &mut [f32], inputs: usize, outputs: usize, rng: &mut Rng) {
    let limit = 1.0 / libm::sqrtf(inputs as f32);
    params[..outputs * inputs + outputs].iter_mut().for_each(|v| *v = rng.uniform_in(-limit, limit));
}

/// The position-wise feed-forward block `[T, D] -> [T, D]`:
/// `y = linear2(dropout(activation(linear1(x))))` with a hidden width `F`, applied to
/// every position alike.
#[derive(Clone, Copy, Debug)]
pub struct FeedForward<const T: usize, const D: usize, const F: usize> {
    /// The activation of the hidden layer (elementwise: ReLU and GELU are usual).
    pub activation: Activation,
    /// The dropout probability after the activation (training only).
    pub dropout: f32,
}

impl<const T: usize, const D: usize, const F: usize> FeedForward<T, D, F> {
    /// The block with this activation and dropout.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `dropout` is not in `[0, 1)`.
    pub const fn new(activation: Activation, dropout: f32) -> Self {
        assert!(dropout >= 0.0 && dropout < 1.0, "FeedForward: dropout must be in [0, 1)");
        FeedForward { activation, dropout }
    }

    fn split(params: &[f32]) -> (&[f32], &[f32], &[f32], &[f32]) {
        let (w1, rest) = params.split_at(F * D);
        let (b1, rest) = rest.split_at(F);
        let (w2, rest) = rest.split_at(D * F);
        (w1, b1, w2, &rest[..D])
    }
}

impl<const T: usize, const D: usize, const F: usize> Layer for FeedForward<T, D, F> {
    type Input = Shape2<T, D>;
    type Output = Shape2<T, D>;
    const PARAMS: usize = 2 * F * D + F + D;
    /// The hidden pre-activations (not written for ReLU), activations and dropout mask.
    const CACHE: usize = 3 * T * F;
    const SCRATCH: usize = 2 * T * F;
    const KIND: &'static str = "FeedForward";
    /// Each linear layer's tensors are those of a [`Dense`] (`nn.Linear`'s layout).
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Pair {
        first: &crate::weights::TensorTree::Scope { name: "linear1", inner: <Dense<D, F> as Layer>::TENSORS },
        rest: &crate::weights::TensorTree::Scope { name: "linear2", inner: <Dense<F, D> as Layer>::TENSORS },
    };

    /// As `nn.Linear`: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weights and biases.
    fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
        let (first, second) = params.split_at_mut(F * D + F);
        init_linear(first, D, F, rng);
        init_linear(second, F, D, rng);
    }

    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let params = w.params;
        let (w1, b1, w2, b2) = Self::split(params);
        let hidden = &mut scratch[..x.len() / D * F];
        dense::forward(x, w1, Some(b1), self.activation, D, F, hidden, None);
        dense::forward(hidden, w2, Some(b2), Activation::Identity, F, D, y, None);
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, scratch, rng, training, .. } = cx;
        let (w1, b1, w2, b2) = Self::split(params);
        let n = x.len() / D * F;
        let (pre, rest) = cache.split_at_mut(n);
        let (act, rest) = rest.split_at_mut(n);
        // ReLU's derivative needs only the sign of the pre-activation, which its output
        // keeps (`z > 0` exactly where `relu(z) > 0`): the backward reads the output and
        // the pre-activations are not copied.
        let pre = (self.activation != Activation::Relu).then_some(pre);
        dense::forward(x, w1, Some(b1), self.activation, D, F, act, pre);
        if self.dropout > 0.0 {
            let hidden = &mut scratch[..n];
            hidden.copy_from_slice(act);
            drop_values(self.dropout, &mut rest[..n], hidden, training.then_some(rng));
            dense::forward(hidden, w2, Some(b2), Activation::Identity, F, D, y, None);
        } else {
            dense::forward(act, w2, Some(b2), Activation::Identity, F, D, y, None);
        }
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, scratch, .. } = cx;
        let (w1, _, w2, _) = Self::split(params);
        let n = x.len() / D * F;
        let (pre, rest) = cache.split_at(n);
        let (act, mask) = rest.split_at(n);
        let (hidden, rest) = scratch.split_at_mut(n);
        let d_hidden = &mut rest[..n];
        let (g1, g2) = grads.split_at_mut(F * D + F);
        let (gw1, gb1) = g1.split_at_mut(F * D);
        let (gw2, gb2) = g2.split_at_mut(D * F);
        let used: &[f32] = if self.dropout > 0.0 {
            mask_into(hidden, act, mask);
            hidden
        } else {
            act
        };
        dense::backward(used, w2, &[], &[], Activation::Identity, F, D, dy, gw2, Some(&mut gb2[..D]), Some(d_hidden));
        let d_hidden = &mut rest[..n];
        if self.dropout > 0.0 {
            d_hidden.iter_mut().zip(&mask[..n]).for_each(|(d, &m)| *d *= m);
        }
        let pre = if self.activation == Activation::Relu { act } else { pre };
        dense::backward(x, w1, pre, act, self.activation, D, F, d_hidden, gw1, Some(gb1), dx);
    }
}

/// One Transformer encoder layer over `[T, D]` with `H` heads and a feed-forward width
/// `F`, post-norm or pre-norm (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct TransformerEncoderLayer<const T: usize, const D: usize, const H: usize, const F: usize> {
    /// Pre-norm (`true`) or post-norm (`false`, PyTorch's default).
    pub norm_first: bool,
    /// The activation of the feed-forward block (PyTorch's default: ReLU).
    pub activation: Activation,
    /// The dropout probability of every dropout in the layer (training only).
    pub dropout: f32,
    /// The epsilon of both layer norms.
    pub eps: f32,
    /// Whether position `i` attends only to positions `j <= i`.
    pub causal: bool,
}

/// Offsets of the parts of an encoder layer's parameters.
const fn offsets(d: usize, f: usize) -> [usize; 4] {
    let attn = attention_params(d);
    let ff = 2 * f * d + f + d;
    [0, attn, attn + ff, attn + ff + 2 * d]
}

impl<const T: usize, const D: usize, const H: usize, const F: usize> TransformerEncoderLayer<T, D, H, F> {
    /// A layer with PyTorch's layer-norm epsilon (1e-5) and no causal mask.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `H` does not divide `D` or `dropout` is not
    /// in `[0, 1)`.
    pub const fn new(norm_first: bool, activation: Activation, dropout: f32) -> Self {
        let _ = MultiHeadAttention::<T, D, H>::new(false, dropout);
        TransformerEncoderLayer { norm_first, activation, dropout, eps: 1e-5, causal: false }
    }

    /// The same layer with a causal mask (`true`) or without.
    pub const fn with_causal(self, causal: bool) -> Self {
        TransformerEncoderLayer { causal, ..self }
    }

    /// The same layer with this layer-norm epsilon.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `eps` is not positive.
    pub const fn with_eps(self, eps: f32) -> Self {
        assert!(eps > 0.0 && eps.is_finite(), "TransformerEncoderLayer: eps must be positive");
        TransformerEncoderLayer { eps, ..self }
    }

    /// The self-attention block.
    pub const fn attention(&self) -> MultiHeadAttention<T, D, H> {
        MultiHeadAttention::new(self.causal, self.dropout)
    }

    fn kernel(&self) -> Attention {
        self.attention().config()
    }

    /// The feed-forward block.
    pub const fn feed_forward(&self) -> FeedForward<T, D, F> {
        FeedForward::new(self.activation, self.dropout)
    }

    const TD: usize = T * D;
    const NORM_CACHE: usize = T * D + T;
    const OFFSETS: [usize; 4] = offsets(D, F);
    const PART_SCRATCH: usize = {
        let a = <MultiHeadAttention<T, D, H> as Layer>::SCRATCH;
        let f = <FeedForward<T, D, F> as Layer>::SCRATCH;
        if a > f {
            a
        } else {
            f
        }
    };

    /// The lengths of the parameters of self-attention, feed-forward, norm1 and norm2.
    const PARAM_PARTS: [usize; 4] = {
        let [_, ff, n1, n2] = Self::OFFSETS;
        [ff, n1 - ff, n2 - n1, 2 * D]
    };

    /// The lengths of the cache parts of `batch` samples: attention, feed-forward, norm1,
    /// norm2, the block input kept (`h` post-norm, `norm1(x)` pre-norm), `norm2(h)`
    /// (pre-norm) and the two dropout masks.
    fn cache_parts(batch: usize) -> [usize; 8] {
        let attention = batch * <MultiHeadAttention<T, D, H> as Layer>::CACHE;
        let feed_forward = batch * <FeedForward<T, D, F> as Layer>::CACHE;
        let (norm, sequence) = (batch * Self::NORM_CACHE, batch * Self::TD);
        [attention, feed_forward, norm, norm, sequence, sequence, sequence, sequence]
    }

    /// Inference with a key padding mask: sample `b` has `lengths[b]` valid positions.
    pub fn forward_padded(&self, params: &[f32], x: &[f32], lengths: &[usize], y: &mut [f32], scratch: &mut [f32]) {
        self.run(params, x, Some(lengths), y, scratch);
    }

    /// Training forward with a key padding mask; `backward` is the usual one.
    pub fn forward_train_padded(&self, x: &[f32], lengths: &[usize], y: &mut [f32], cx: TrainCtx<'_>) {
        self.run_train(x, Some(lengths), y, cx);
    }

    /// Runs inference on one sample `x [T, D]` and writes the `[H, T, T]` weights of its
    /// self-attention into `weights`. `scratch` holds `SCRATCH` floats.
    pub fn attention_weights_into(&self, params: &[f32], x: &[f32], weights: &mut [f32], scratch: &mut [f32]) {
        let [pa, _, pn1, _] = split_parts(params, Self::PARAM_PARTS);
        let (normed, rest) = scratch.split_at_mut(Self::TD);
        let input = if self.norm_first {
            layer_norm::forward(pn1, self.eps, D, &x[..Self::TD], normed, None);
            &*normed
        } else {
            &x[..Self::TD]
        };
        self.attention().attention_weights_into(pa, input, weights, rest);
    }

    /// The `[H, T, T]` self-attention weights of one sample `x [T, D]`.
    #[cfg(feature = "alloc")]
    pub fn attention_weights(&self, params: &[f32], x: &[f32]) -> alloc::vec::Vec<f32> {
        let mut weights = alloc::vec![0.0; H * T * T];
        let mut scratch = alloc::vec![0.0; <Self as Layer>::SCRATCH];
        self.attention_weights_into(params, x, &mut weights, &mut scratch);
        weights
    }

    fn run(&self, params: &[f32], x: &[f32], lengths: Option<&[usize]>, y: &mut [f32], scratch: &mut [f32]) {
        let [pa, pf, pn1, pn2] = split_parts(params, Self::PARAM_PARTS);
        let n = x.len();
        let y = &mut y[..n];
        let (s1, rest) = scratch.split_at_mut(n);
        let (s2, rest) = rest.split_at_mut(n);
        let ff = self.feed_forward();
        if self.norm_first {
            layer_norm::forward(pn1, self.eps, D, x, s2, None);
            self.kernel().forward(pa, s2, None, lengths, s1, rest);
            y.copy_from_slice(x);
            add_into(y, s1);
            layer_norm::forward(pn2, self.eps, D, y, s2, None);
            ff.forward(Weights::new(pf, &[]), s2, s1, rest);
            add_into(y, s1);
        } else {
            self.kernel().forward(pa, x, None, lengths, s1, rest);
            add_into(s1, x);
            layer_norm::forward(pn1, self.eps, D, s1, s2, None);
            ff.forward(Weights::new(pf, &[]), s2, s1, rest);
            add_into(s1, s2);
            layer_norm::forward(pn2, self.eps, D, s1, y, None);
        }
    }

    fn run_train(&self, x: &[f32], lengths: Option<&[usize]>, y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, scratch, rng, training, .. } = cx;
        let [pa, pf, pn1, pn2] = split_parts(params, Self::PARAM_PARTS);
        let n = x.len();
        let batch = n / Self::TD;
        let y = &mut y[..n];
        let [ca, cf, c1, c2, mid1, mid2, m1, m2] = split_parts_mut(cache, Self::cache_parts(batch));
        let (s1, rest) = scratch.split_at_mut(n);
        let ff = self.feed_forward();
        if self.norm_first {
            layer_norm::forward(pn1, self.eps, D, x, mid1, Some(c1));
            self.kernel().forward_train(pa, mid1, None, lengths, s1, ca, rest, training.then_some(&mut *rng));
            drop_values(self.dropout, m1, s1, training.then_some(&mut *rng));
            y.copy_from_slice(x);
            add_into(y, s1);
            layer_norm::forward(pn2, self.eps, D, y, mid2, Some(c2));
            ff.forward_train(
                mid2,
                s1,
                TrainCtx { params: pf, buffers: &mut [], cache: cf, scratch: rest, rng: &mut *rng, training },
            );
            drop_values(self.dropout, m2, s1, training.then_some(&mut *rng));
            add_into(y, s1);
        } else {
            self.kernel().forward_train(pa, x, None, lengths, s1, ca, rest, training.then_some(&mut *rng));
            drop_values(self.dropout, m1, s1, training.then_some(&mut *rng));
            add_into(s1, x);
            layer_norm::forward(pn1, self.eps, D, s1, mid1, Some(c1));
            ff.forward_train(
                mid1,
                s1,
                TrainCtx { params: pf, buffers: &mut [], cache: cf, scratch: rest, rng: &mut *rng, training },
            );
            drop_values(self.dropout, m2, s1, training.then_some(&mut *rng));
            add_into(s1, mid1);
            layer_norm::forward(pn2, self.eps, D, s1, y, Some(c2));
        }
    }
}

impl<const T: usize, const D: usize, const H: usize, const F: usize> Layer for TransformerEncoderLayer<T, D, H, F> {
    type Input = Shape2<T, D>;
    type Output = Shape2<T, D>;
    const PARAMS: usize = offsets(D, F)[3] + 2 * D;
    /// The caches of attention, feed-forward and both norms, two block inputs and two
    /// dropout masks.
    const CACHE: usize = <MultiHeadAttention<T, D, H> as Layer>::CACHE
        + <FeedForward<T, D, F> as Layer>::CACHE
        + 2 * (T * D + T)
        + 4 * T * D;
    const SCRATCH: usize = 2 * T * D + Self::PART_SCRATCH;
    const KIND: &'static str = "TransformerEncoderLayer";
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Pair {
        first: &crate::weights::TensorTree::Scope {
            name: "self_attn",
            inner: <MultiHeadAttention<T, D, H> as Layer>::TENSORS,
        },
        rest: &crate::weights::TensorTree::Pair {
            first: <FeedForward<T, D, F> as Layer>::TENSORS,
            rest: &crate::weights::TensorTree::Pair {
                first: &crate::weights::TensorTree::Scope {
                    name: "norm1",
                    inner: <layer_norm::LayerNorm<Shape2<T, D>> as Layer>::TENSORS,
                },
                rest: &crate::weights::TensorTree::Scope {
                    name: "norm2",
                    inner: <layer_norm::LayerNorm<Shape2<T, D>> as Layer>::TENSORS,
                },
            },
        },
    };

    fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
        let [pa, pf, pn1, pn2] = split_parts_mut(params, Self::PARAM_PARTS);
        init_attention(pa, D, rng);
        self.feed_forward().init(pf, &mut [], rng);
        layer_norm::init(pn1, D);
        layer_norm::init(pn2, D);
    }

    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let params = w.params;
        self.run(params, x, None, y, scratch);
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        self.run_train(x, None, y, cx);
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, scratch, .. } = cx;
        let [pa, pf, pn1, pn2] = split_parts(params, Self::PARAM_PARTS);
        let [ga, gf, gn1, gn2] = split_parts_mut(grads, Self::PARAM_PARTS);
        let n = x.len();
        let batch = n / Self::TD;
        let dy = &mut dy[..n];
        let [ca, cf, c1, c2, mid1, mid2, m1, m2] = split_parts(cache, Self::cache_parts(batch));
        let (s1, rest) = scratch.split_at_mut(n);
        let (s2, rest) = rest.split_at_mut(n);
        let ff = self.feed_forward();
        let dropout = self.dropout > 0.0;
        let masked = |dst: &mut [f32], src: &[f32], mask: &[f32]| {
            if dropout {
                mask_into(dst, src, mask);
            } else {
                dst.copy_from_slice(src);
            }
        };
        if self.norm_first {
            // y = h + drop2(ff(norm2(h))), h = x + drop1(sa(norm1(x)))
            masked(s1, dy, m2);
            ff.backward(
                mid2,
                &[],
                s1,
                Some(s2),
                BackwardCtx { params: pf, cache: cf, grads: gf, frozen: Frozen::NONE, scratch: rest },
            );
            layer_norm::backward_in_place(pn2, D, c2, s2, gn2);
            add_into(dy, s2); // dL/dh
            masked(s1, dy, m1);
            self.kernel().backward(pa, mid1, None, ca, s1, Some(s2), None, ga, rest);
            layer_norm::backward_in_place(pn1, D, c1, s2, gn1);
            if let Some(dx) = dx {
                let dx = &mut dx[..n];
                dx.copy_from_slice(dy);
                add_into(dx, s2);
            }
        } else {
            // y = norm2(h + drop2(ff(h))), h = norm1(x + drop1(sa(x)))
            layer_norm::backward_in_place(pn2, D, c2, dy, gn2);
            masked(s1, dy, m2);
            ff.backward(
                mid1,
                &[],
                s1,
                Some(s2),
                BackwardCtx { params: pf, cache: cf, grads: gf, frozen: Frozen::NONE, scratch: rest },
            );
            add_into(dy, s2); // dL/dh
            layer_norm::backward_in_place(pn1, D, c1, dy, gn1);
            masked(s1, dy, m1);
            match dx {
                Some(dx) => {
                    let dx = &mut dx[..n];
                    self.kernel().backward(pa, x, None, ca, s1, Some(&mut *dx), None, ga, rest);
                    add_into(dx, dy);
                }
                None => self.kernel().backward(pa, x, None, ca, s1, None, None, ga, rest),
            }
        }
    }
}

/// A stack of `N` identical-shaped encoder layers (each with its own parameters), as
/// `nn.TransformerEncoder(layer, N)` without a final norm: parameters
/// `layers.0.…` to `layers.{N-1}.…`.
#[derive(Clone, Copy, Debug)]
pub struct TransformerEncoder<const T: usize, const D: usize, const H: usize, const F: usize, const N: usize> {
    /// The configuration shared by every layer.
    pub layer: TransformerEncoderLayer<T, D, H, F>,
}

impl<const T: usize, const D: usize, const H: usize, const F: usize, const N: usize> TransformerEncoder<T, D, H, F, N> {
    /// `N` layers configured as `layer`.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `N` is 0.
    pub const fn new(layer: TransformerEncoderLayer<T, D, H, F>) -> Self {
        assert!(N > 0, "TransformerEncoder: at least one layer");
        TransformerEncoder { layer }
    }

    const TD: usize = T * D;
    const LAYER_PARAMS: usize = <TransformerEncoderLayer<T, D, H, F> as Layer>::PARAMS;
    const LAYER_CACHE: usize = <TransformerEncoderLayer<T, D, H, F> as Layer>::CACHE;

    /// Inference with a key padding mask: sample `b` has `lengths[b]` valid positions.
    pub fn forward_padded(&self, params: &[f32], x: &[f32], lengths: &[usize], y: &mut [f32], scratch: &mut [f32]) {
        self.run(params, x, Some(lengths), y, scratch, N);
    }

    /// Training forward with a key padding mask; `backward` is the usual one.
    pub fn forward_train_padded(&self, x: &[f32], lengths: &[usize], y: &mut [f32], cx: TrainCtx<'_>) {
        self.run_train(x, Some(lengths), y, cx);
    }

    /// The `[H, T, T]` self-attention weights of layer `layer` (from 0) for one sample
    /// `x [T, D]`. `scratch` holds `SCRATCH` floats.
    ///
    /// # Panics
    /// If `layer >= N`.
    pub fn attention_weights_into(
        &self,
        params: &[f32],
        x: &[f32],
        layer: usize,
        weights: &mut [f32],
        scratch: &mut [f32],
    ) {
        assert!(layer < N, "TransformerEncoder: layer {layer} of {N}");
        let (input, rest) = scratch.split_at_mut(Self::TD);
        self.run(params, &x[..Self::TD], None, input, rest, layer);
        let p = &params[nth_part(layer, Self::LAYER_PARAMS)];
        let source: &[f32] = if layer == 0 { &x[..Self::TD] } else { input };
        self.layer.attention_weights_into(p, source, weights, rest);
    }

    /// The `[H, T, T]` self-attention weights of layer `layer` for one sample.
    #[cfg(feature = "alloc")]
    pub fn attention_weights(&self, params: &[f32], x: &[f32], layer: usize) -> alloc::vec::Vec<f32> {
        let mut weights = alloc::vec![0.0; H * T * T];
        let mut scratch = alloc::vec![0.0; <Self as Layer>::SCRATCH];
        self.attention_weights_into(params, x, layer, &mut weights, &mut scratch);
        weights
    }

    /// Inference through the first `layers` layers (`layers` of 0 leaves `y` alone).
    fn run(
        &self,
        params: &[f32],
        x: &[f32],
        lengths: Option<&[usize]>,
        y: &mut [f32],
        scratch: &mut [f32],
        layers: usize,
    ) {
        let n = x.len();
        let (a, rest) = scratch.split_at_mut(n);
        let (b, rest) = rest.split_at_mut(n);
        let (mut src, mut dst) = (a, b);
        for i in 0..layers {
            let p = &params[nth_part(i, Self::LAYER_PARAMS)];
            let input: &[f32] = if i == 0 { x } else { src };
            let out: &mut [f32] = if i + 1 == layers { &mut y[..n] } else { dst };
            match lengths {
                Some(l) => self.layer.forward_padded(p, input, l, out, rest),
                None => self.layer.forward(Weights::new(p, &[]), input, out, rest),
            }
            (src, dst) = (dst, src);
        }
    }

    fn run_train(&self, x: &[f32], lengths: Option<&[usize]>, y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, scratch, rng, training, .. } = cx;
        let n = x.len();
        let batch = n / Self::TD;
        let (caches, mids) = cache.split_at_mut(N * batch * Self::LAYER_CACHE);
        for i in 0..N {
            let p = &params[nth_part(i, Self::LAYER_PARAMS)];
            let c = &mut caches[nth_part(i, batch * Self::LAYER_CACHE)];
            // Layer i reads mids[i - 1] and writes mids[i] (or y).
            let (before, after) = mids.split_at_mut(i * n);
            let input: &[f32] = if i == 0 { x } else { &before[(i - 1) * n..] };
            let out: &mut [f32] = if i + 1 == N { &mut y[..n] } else { &mut after[..n] };
            let cx =
                TrainCtx { params: p, buffers: &mut [], cache: c, scratch: &mut *scratch, rng: &mut *rng, training };
            match lengths {
                Some(l) => self.layer.forward_train_padded(input, l, out, cx),
                None => self.layer.forward_train(input, out, cx),
            }
        }
    }
}

impl<const T: usize, const D: usize, const H: usize, const F: usize, const N: usize> Layer
    for TransformerEncoder<T, D, H, F, N>
{
    type Input = Shape2<T, D>;
    type Output = Shape2<T, D>;
    const PARAMS: usize = N * Self::LAYER_PARAMS;
    /// Every layer's cache, then the outputs of all layers but the last.
    const CACHE: usize = N * Self::LAYER_CACHE + (N - 1) * T * D;
    /// Two sequences (between layers, forward and backward) and one more (the input of
    /// the inspected layer in `attention_weights_into`), then a layer's scratch.
    const SCRATCH: usize = 3 * T * D + <TransformerEncoderLayer<T, D, H, F> as Layer>::SCRATCH;
    const KIND: &'static str = "TransformerEncoder";
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Repeat {
        name: "layers",
        count: N,
        inner: <TransformerEncoderLayer<T, D, H, F> as Layer>::TENSORS,
    };

    fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
        for p in params[..Self::PARAMS].chunks_exact_mut(Self::LAYER_PARAMS) {
            self.layer.init(p, &mut [], rng);
        }
    }

    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let params = w.params;
        self.run(params, x, None, y, scratch, N);
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        self.run_train(x, None, y, cx);
    }

    fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], mut dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, scratch, .. } = cx;
        let n = x.len();
        let batch = n / Self::TD;
        let (caches, mids) = cache.split_at(N * batch * Self::LAYER_CACHE);
        let (a, rest) = scratch.split_at_mut(n);
        let (b, rest) = rest.split_at_mut(n);
        a.copy_from_slice(&dy[..n]);
        let (mut grad, mut next) = (a, b);
        for i in (0..N).rev() {
            let p = &params[nth_part(i, Self::LAYER_PARAMS)];
            let g = &mut grads[nth_part(i, Self::LAYER_PARAMS)];
            let c = &caches[nth_part(i, batch * Self::LAYER_CACHE)];
            let input: &[f32] = if i == 0 { x } else { &mids[nth_part(i - 1, n)] };
            let output: &[f32] = if i + 1 == N { y } else { &mids[nth_part(i, n)] };
            let d_input = if i == 0 { dx.as_deref_mut() } else { Some(&mut *next) };
            let cx = BackwardCtx { params: p, cache: c, grads: g, frozen: Frozen::NONE, scratch: &mut *rest };
            self.layer.backward(input, output, grad, d_input, cx);
            (grad, next) = (next, grad);
        }
    }
}
