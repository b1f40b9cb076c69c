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
use crate::kernels::attention::{self, attention_params, Attention};
use crate::kernels::dense;
use crate::layer::{BackwardCtx, Frozen, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::Shape2;
use core::ops::Range;

/// Draws an inverted-dropout mask (`0` or `1 / (1 - rate)`) into `mask`; whether the
/// values are to be multiplied by it (a positive rate in training mode). A `rate` of
/// 0 leaves the mask alone and draws nothing: the backward passes read the mask only
/// when the rate is positive. Without `rng` (evaluation mode) the mask is all ones
/// and the values stay as they are.
fn draw_mask(rate: f32, mask: &mut [f32], rng: Option<&mut Rng>) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let Some(rng) = rng else {
        mask.fill(1.0);
        return false;
    };
    let keep = 1.0 - rate;
    let scale = 1.0 / keep;
    for m in mask.iter_mut() {
        *m = if rng.uniform() < keep { scale } else { 0.0 };
    }
    true
}

/// Elementwise loops, each compiled for AVX2 where the CPU has it (the compiler then
/// uses vectors of eight; the same operations on every element: the same bits).
macro_rules! elementwise {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block)*) => {
        $(
            $(#[$doc])*
            fn $name($($arg: $ty),*) {
                #[inline(always)]
                fn each($($arg: $ty),*) $body
                #[cfg(target_arch = "x86_64")]
                {
                    /// `each` compiled for AVX2.
                    ///
                    /// # Safety
                    /// The CPU has AVX2.
                    #[target_feature(enable = "avx2")]
                    unsafe fn wide($($arg: $ty),*) {
                        each($($arg),*)
                    }
                    if crate::kernels::isa::isa().avx2() {
                        // SAFETY: the CPU has AVX2.
                        return unsafe { wide($($arg),*) };
                    }
                }
                each($($arg),*)
            }
        )*
    };
}

elementwise! {
    /// `values *= mask`, elementwise.
    fn scale_by(values: &mut [f32], mask: &[f32]) {
        values.iter_mut().zip(mask).for_each(|(v, &m)| *v *= m);
    }

    /// `a += b`.
    fn add_into(a: &mut [f32], b: &[f32]) {
        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    }

    /// `dst = src * mask`, elementwise.
    fn mask_into(dst: &mut [f32], src: &[f32], mask: &[f32]) {
        dst.iter_mut().zip(src).zip(mask).for_each(|((d, &s), &m)| *d = s * m);
    }

    /// ReLU's backward, `dz *= f'(z)`, from its outputs `y` (`y > 0` exactly where
    /// `z > 0`): [`dense::activation_backward`]'s select.
    fn relu_backward(dz: &mut [f32], y: &[f32]) {
        for (d, &y) in dz.iter_mut().zip(y) {
            *d *= if y > 0.0 { 1.0 } else { 0.0 };
        }
    }

    /// `dst = a + b`, elementwise.
    fn sum_into(dst: &mut [f32], a: &[f32], b: &[f32]) {
        dst.iter_mut().zip(a).zip(b).for_each(|((d, &a), &b)| *d = a + b);
    }

    /// `a += b`, and a copy of the sums into `copy`.
    fn add_into_copy(a: &mut [f32], b: &[f32], copy: &mut [f32]) {
        for ((a, &b), c) in a.iter_mut().zip(b).zip(copy.iter_mut()) {
            *a += b;
            *c = *a;
        }
    }
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

/// The most parts a batch is cut into: groups of samples (or of parameter rows) that
/// the threads take one at a time ([`crate::kernels::gemm::threads`] is at most 4).
const MAX_PARTS: usize = 32;

/// Samples a group of the encoder layer's training forward and backward takes, at
/// least (see `TransformerEncoderLayer::parts`).
const GROUP_SAMPLES: usize = 4;

/// How a batch's work is cut (see `TransformerEncoderLayer::parts`).
#[derive(Clone, Copy)]
struct Parts {
    /// Groups of samples.
    samples: usize,
    /// Groups of parameter rows.
    rows: usize,
    /// Whether threads share the groups.
    threads: bool,
}

/// One thread's share of a batch: its index, its samples and its pieces of `N`
/// buffers.
struct Part<'a, const N: usize> {
    index: usize,
    samples: Range<usize>,
    buffers: [&'a mut [f32]; N],
}

impl<'a, const N: usize> Part<'a, N> {
    /// Part `index`, of `samples`: cuts `lengths[i]` floats from the front of each
    /// `regions[i]` (the parts of a batch are cut in order).
    fn cut(index: usize, samples: Range<usize>, regions: &mut [&'a mut [f32]; N], lengths: [usize; N]) -> Self {
        let buffers = core::array::from_fn(|i| {
            let (head, tail) = core::mem::take(&mut regions[i]).split_at_mut(lengths[i]);
            regions[i] = tail;
            head
        });
        Part { index, samples, buffers }
    }
}

/// The samples of part `p` of `parts` of a batch (none for `p >= parts`).
fn samples_of(batch: usize, parts: usize, p: usize) -> Range<usize> {
    if p >= parts {
        return batch..batch;
    }
    p * batch / parts..(p + 1) * batch / parts
}

/// The floats of `samples` in `values` (`per_sample` floats a sample).
fn of_samples<'a>(values: &'a [f32], samples: &Range<usize>, per_sample: usize) -> &'a [f32] {
    &values[samples.start * per_sample..samples.end * per_sample]
}

/// The rows of a parameter gradient of `rows` rows that part `p` of `parts` computes:
/// blocks of a multiple of 16 rows (none for `p >= parts`).
fn rows_of(rows: usize, parts: usize, p: usize) -> Range<usize> {
    let step = rows.div_ceil(parts).next_multiple_of(16);
    (p * step).min(rows)..((p + 1) * step).min(rows)
}

/// Calls `run` on every part, in order or (`threads`, with the `threading` feature)
/// shared between threads.
fn on_parts<T: Send>(parts: &mut [T], threads: bool, run: &(dyn Fn(&mut T) + Sync)) {
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    if threads && parts.len() > 1 {
        return crate::kernels::parallel::for_each_item(parts, run);
    }
    let _ = threads;
    parts.iter_mut().for_each(run);
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

    /// The training forward of the rows `x` into `y`, keeping the hidden
    /// pre-activations in `pre` (not written for ReLU) and the activations in `act`;
    /// with `dropped` (the mask and room for the dropped activations) the activations
    /// are multiplied by the mask before the second layer. `one_thread`: the rows are
    /// one thread's share (the products run on this thread, by
    /// [`attention::forward_rows`]); otherwise `dense::forward` may share them between
    /// threads. The same bits either way.
    fn forward_kept(
        &self,
        params: &[f32],
        x: &[f32],
        y: &mut [f32],
        (pre, act): (&mut [f32], &mut [f32]),
        dropped: Option<(&[f32], &mut [f32])>,
        one_thread: bool,
    ) {
        let (w1, b1, w2, b2) = Self::split(params);
        let forward = if one_thread { attention::forward_rows } else { dense::forward };
        // ReLU's derivative needs only the sign of the pre-activation, which its output
        // keeps (`z > 0` exactly where `relu(z) > 0`): the backward reads the output and
        // the pre-activations are not copied.
        let pre = (self.activation != Activation::Relu).then_some(pre);
        forward(x, w1, Some(b1), self.activation, D, F, act, pre);
        let hidden: &[f32] = match dropped {
            Some((mask, hidden)) => {
                mask_into(hidden, act, mask);
                hidden
            }
            None => act,
        };
        forward(hidden, w2, Some(b2), Activation::Identity, F, D, y, None);
    }

    /// The backward of the rows of [`FeedForward::forward_kept`] but for the parameter
    /// gradients: from `dy` writes the hidden pre-activations' gradient `dz` (kept for
    /// [`FeedForward::param_gradients`]) and, when given, `dx`. `mask` is the dropout
    /// mask (`None`: no dropout).
    #[allow(clippy::too_many_arguments)]
    fn backward_inputs(
        &self,
        params: &[f32],
        (pre, act): (&[f32], &[f32]),
        mask: Option<&[f32]>,
        dy: &[f32],
        dz: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        let (w1, _, w2, _) = Self::split(params);
        dense::input_gradient(w2, F, D, dy, dz);
        if let Some(mask) = mask {
            scale_by(dz, mask);
        }
        if self.activation == Activation::Relu {
            relu_backward(dz, act);
        } else {
            dense::activation_backward(self.activation, pre, act, dz, F);
        }
        if let Some(dx) = dx {
            dense::input_gradient(w1, D, F, dz, dx);
        }
    }

    /// The parameter gradients over every row for the rows `f_rows` of the first
    /// layer (of `F`) and `d_rows` of the second (of `D`): from the block's input `x`,
    /// the (dropped) activations `hidden`, the output gradient `dy` and `dz` of
    /// [`FeedForward::backward_inputs`]. `grads` hold those rows' gradients of
    /// `linear1.weight`, `linear1.bias`, `linear2.weight` and `linear2.bias`.
    fn param_gradients(
        (x, hidden, dy, dz): (&[f32], &[f32], &[f32], &[f32]),
        f_rows: Range<usize>,
        d_rows: Range<usize>,
        [g1, gb1, g2, gb2]: [&mut [f32]; 4],
    ) {
        dense::param_gradients(hidden, F, D, dy, d_rows, g2, Some(gb2));
        dense::param_gradients(x, D, F, dz, f_rows, g1, Some(gb1));
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
        let n = x.len() / D * F;
        let [pre, act, mask] = split_parts_mut(cache, [n; 3]);
        let dropped = draw_mask(self.dropout, mask, training.then_some(rng)).then_some((&*mask, &mut scratch[..n]));
        self.forward_kept(params, x, y, (pre, act), dropped, false);
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, scratch, .. } = cx;
        let n = x.len() / D * F;
        let [pre, act, mask] = split_parts(cache, [n; 3]);
        let [hidden, dz] = split_parts_mut(scratch, [n; 2]);
        let mask = (self.dropout > 0.0).then_some(mask);
        let used: &[f32] = match mask {
            Some(mask) => {
                mask_into(hidden, act, mask);
                hidden
            }
            None => act,
        };
        let dy = &dy[..x.len()];
        self.backward_inputs(params, (pre, act), mask, dy, dz, dx);
        let grads = split_parts_mut(grads, [F * D, F, D * F, D]);
        Self::param_gradients((x, used, dy, dz), 0..F, 0..D, grads);
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
    const TF: usize = T * F;
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

    /// The training forward, the batch's samples shared between threads (see
    /// [`Self::parts`]); every sample's bits are those of one thread.
    fn run_train(&self, x: &[f32], lengths: Option<&[usize]>, y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, scratch, rng, training, .. } = cx;
        let [pa, pf, pn1, pn2] = split_parts(params, Self::PARAM_PARTS);
        let batch = x.len() / Self::TD;
        let (x, y) = (&x[..batch * Self::TD], &mut y[..batch * Self::TD]);
        let att = self.kernel();
        let [ca, cf, c1, c2, mid1, mid2, m1, m2] = split_parts_mut(cache, Self::cache_parts(batch));
        let (w, td, tf) = (att.weights(), Self::TD, Self::TF);
        let [proj, probs, heads_out, keep] =
            split_parts_mut(ca, [batch * att.projections(), batch * w, batch * td, batch * w]);
        let [pre, act, ff_mask] = split_parts_mut(cf, [batch * tf; 3]);
        let [normed1, rstd1] = split_parts_mut(c1, [batch * td, batch * T]);
        let [normed2, rstd2] = split_parts_mut(c2, [batch * td, batch * T]);
        // Every dropout mask first, in the order of the blocks (attention weights, its
        // output, the hidden activations, the feed-forward output), so that they do not
        // depend on how the samples are shared.
        let rate = self.dropout;
        let drop_weights = training && rate > 0.0;
        if drop_weights {
            att.draw_keep(keep, rng);
        } else if !training {
            keep.fill(1.0);
        }
        let drop1 = draw_mask(rate, m1, training.then_some(&mut *rng));
        let drop_hidden = draw_mask(rate, ff_mask, training.then_some(&mut *rng));
        let drop2 = draw_mask(rate, m2, training.then_some(&mut *rng));
        let (keep, m1, ff_mask, m2) = (&*keep, &*m1, &*ff_mask, &*m2);

        let parts = Self::parts(batch);
        let [s1, hidden, tmp] = split_parts_mut(scratch, [batch * td, batch * tf, batch * T * T]);
        let mut regions =
            [proj, probs, heads_out, pre, act, normed1, rstd1, normed2, rstd2, mid1, mid2, y, s1, hidden, tmp];
        let lengths_per_sample = [att.projections(), w, td, tf, tf, td, T, td, T, td, td, td, td, tf, T * T];
        let mut items: [Part<'_, 15>; MAX_PARTS] = core::array::from_fn(|p| {
            let samples = samples_of(batch, parts.samples, p);
            let n = samples.len();
            Part::cut(p, samples, &mut regions, lengths_per_sample.map(|len| n * len))
        });
        let ff = self.feed_forward();
        let run = |part: &mut Part<'_, 15>| {
            let b = part.samples.clone();
            let [proj, probs, heads_out, pre, act, normed1, rstd1, normed2, rstd2, mid1, mid2, y, s1, hidden, tmp] =
                &mut part.buffers;
            let x = &x[b.start * td..b.end * td];
            let valid = lengths.map(|l| &l[b.clone()]);
            let keep = drop_weights.then(|| &keep[b.start * w..b.end * w]);
            let mask = |m, width| of_samples(m, &b, width);
            let ff_dropped = drop_hidden.then(|| (mask(ff_mask, tf), &mut **hidden));
            let attention = (&mut **proj, &mut **probs, &mut **heads_out);
            let norm1 = Some((&mut **normed1, &mut **rstd1));
            let norm2 = Some((&mut **normed2, &mut **rstd2));
            if self.norm_first {
                layer_norm::forward_here(pn1, self.eps, D, x, mid1, norm1);
                att.self_forward_block(pa, mid1, valid, s1, attention, keep, tmp);
                if drop1 {
                    scale_by(s1, mask(m1, td));
                }
                sum_into(y, x, s1);
                layer_norm::forward_here(pn2, self.eps, D, y, mid2, norm2);
                ff.forward_kept(pf, mid2, s1, (pre, act), ff_dropped, true);
                if drop2 {
                    scale_by(s1, mask(m2, td));
                }
                add_into(y, s1);
            } else {
                att.self_forward_block(pa, x, valid, s1, attention, keep, tmp);
                if drop1 {
                    scale_by(s1, mask(m1, td));
                }
                add_into(s1, x);
                layer_norm::forward_here(pn1, self.eps, D, s1, mid1, norm1);
                ff.forward_kept(pf, mid1, s1, (pre, act), ff_dropped, true);
                if drop2 {
                    scale_by(s1, mask(m2, td));
                }
                add_into(s1, mid1);
                layer_norm::forward_here(pn2, self.eps, D, s1, y, norm2);
            }
        };
        on_parts(&mut items[..parts.samples], parts.threads, &run);
    }

    /// How the work of a batch is cut: the groups of samples of the forward and of the
    /// backward's first step, the groups of parameter rows of its second step, and
    /// whether threads share them. Groups of [`GROUP_SAMPLES`] samples keep a group's
    /// intermediate values in the caches on one thread too; with several threads,
    /// at least four groups a thread, shared when the projections and the feed-forward
    /// block take at least [`PARALLEL_MIN_FLOPS`](crate::kernels::gemm::PARALLEL_MIN_FLOPS)
    /// multiply-adds.
    fn parts(batch: usize) -> Parts {
        let groups = batch.div_ceil(GROUP_SAMPLES).clamp(1, MAX_PARTS);
        #[cfg(all(feature = "threading", target_arch = "x86_64"))]
        {
            use crate::kernels::gemm::{threads, PARALLEL_MIN_FLOPS};
            let macs = batch.saturating_mul(T * D * (4 * D + 2 * F));
            if batch > 1 && threads() > 1 && macs >= PARALLEL_MIN_FLOPS && crate::kernels::isa::isa().avx2() {
                let shared = (4 * threads()).min(MAX_PARTS);
                return Parts { samples: groups.max(shared.min(batch)), rows: shared, threads: true };
            }
        }
        Parts { samples: groups, rows: 1, threads: false }
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
    /// Inference: two sequences and a block's scratch; the backward: the gradients it
    /// keeps between its two steps (eight sequences, the projections' and two hidden
    /// ones) and two grids of attention weights.
    const SCRATCH: usize = {
        let inference = 2 * T * D + Self::PART_SCRATCH;
        let backward = 11 * T * D + 2 * T * F + 2 * T * T;
        if inference > backward {
            inference
        } else {
            backward
        }
    };
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

    /// The backward in two steps, each with the batch shared between threads in groups
    /// of samples: first the gradients of the inputs of every block, sample by
    /// sample, keeping the gradients the parameters need; then the parameter
    /// gradients, each thread taking rows of every one of them over the whole batch.
    /// The bits are those of one thread.
    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, scratch, .. } = cx;
        let [pa, pf, pn1, pn2] = split_parts(params, Self::PARAM_PARTS);
        let batch = x.len() / Self::TD;
        let (td, tf, tt) = (Self::TD, Self::TF, T * T);
        let (x, dy) = (&x[..batch * td], &dy[..batch * td]);
        let att = self.kernel();
        let w = att.weights();
        let [ca, cf, c1, c2, mid1, mid2, m1, m2] = split_parts(cache, Self::cache_parts(batch));
        let [proj, probs, heads_out, keep] =
            split_parts(ca, [batch * att.projections(), batch * w, batch * td, batch * w]);
        let [pre, act, ff_mask] = split_parts(cf, [batch * tf; 3]);
        let [normed1, rstd1] = split_parts(c1, [batch * td, batch * T]);
        let [normed2, rstd2] = split_parts(c2, [batch * td, batch * T]);
        let dropout = self.dropout > 0.0;
        let ff = self.feed_forward();
        let parts = Self::parts(batch);

        // 1. The inputs' gradients. `g2`, `g1`: the norms' input gradients; `t`: the
        // gradient of the sequence between the blocks; `u2`, `u1` (pre-norm): the
        // norms' output gradients; `dz2`, `a`, `used`: the dropped copies.
        let [g2, dz2, t, g1, a, u1, u2, d_heads, d_proj, used, dz1, grids] = split_parts_mut(
            scratch,
            [td, td, td, td, td, td, td, td, att.projections(), tf, tf, 2 * tt].map(|len| batch * len),
        );
        let has_dx = dx.is_some();
        let dx: &mut [f32] = match dx {
            Some(dx) => &mut dx[..batch * td],
            None => &mut [],
        };
        let mut regions = [
            &mut *g2,
            &mut *dz2,
            &mut *t,
            &mut *g1,
            &mut *a,
            &mut *u1,
            &mut *u2,
            d_heads,
            &mut *d_proj,
            &mut *used,
            &mut *dz1,
            grids,
            dx,
        ];
        let per_sample =
            [td, td, td, td, td, td, td, td, att.projections(), tf, tf, 2 * tt, if has_dx { td } else { 0 }];
        let mut items: [Part<'_, 13>; MAX_PARTS] = core::array::from_fn(|p| {
            let samples = samples_of(batch, parts.samples, p);
            let n = samples.len();
            Part::cut(p, samples, &mut regions, per_sample.map(|len| n * len))
        });
        let inputs = |part: &mut Part<'_, 13>| {
            let b = &part.samples;
            let [g2, dz2_buf, t, g1, a_buf, u1, u2, d_heads, d_proj, used, dz1, grids, dx] = &mut part.buffers;
            let dx = has_dx.then_some(&mut **dx);
            let dy = of_samples(dy, b, td);
            let (act, pre) = (of_samples(act, b, tf), of_samples(pre, b, tf));
            let hidden_mask = dropout.then(|| of_samples(ff_mask, b, tf));
            if let Some(mask) = hidden_mask {
                mask_into(used, act, mask);
            }
            let keep = if dropout { of_samples(keep, b, w) } else { &[] };
            let cached = (of_samples(proj, b, att.projections()), of_samples(probs, b, w), keep);
            let (dp, dropped) = grids.split_at_mut(tt);
            let norm1 = (of_samples(normed1, b, td), of_samples(rstd1, b, T));
            let norm2 = (of_samples(normed2, b, td), of_samples(rstd2, b, T));
            let masked = |dst: &'_ mut [f32], src: &'_ [f32], mask: &[f32]| {
                mask_into(dst, src, &mask[b.start * td..b.end * td]);
            };
            if self.norm_first {
                // y = h + drop2(ff(norm2(h))), h = x + drop1(sa(norm1(x)))
                let dz2: &[f32] = if dropout {
                    masked(dz2_buf, dy, m2);
                    dz2_buf
                } else {
                    dy
                };
                ff.backward_inputs(pf, (pre, act), hidden_mask, dz2, dz1, Some(u2));
                g2.copy_from_slice(u2);
                layer_norm::input_gradient(pn2, D, norm2.0, norm2.1, g2);
                sum_into(t, dy, g2); // dL/dh
                let a: &[f32] = if dropout {
                    masked(a_buf, t, m1);
                    a_buf
                } else {
                    t
                };
                att.self_backward_block(pa, cached, a, d_heads, d_proj, Some(u1), (dp, dropped));
                g1.copy_from_slice(u1);
                layer_norm::input_gradient(pn1, D, norm1.0, norm1.1, g1);
                if let Some(dx) = dx {
                    sum_into(dx, t, g1);
                }
            } else {
                // y = norm2(h + drop2(ff(h))), h = norm1(x + drop1(sa(x)))
                g2.copy_from_slice(dy);
                layer_norm::input_gradient(pn2, D, norm2.0, norm2.1, g2);
                let dz2: &[f32] = if dropout {
                    masked(dz2_buf, g2, m2);
                    dz2_buf
                } else {
                    g2
                };
                ff.backward_inputs(pf, (pre, act), hidden_mask, dz2, dz1, Some(t));
                add_into_copy(t, g2, g1); // dL/dh
                layer_norm::input_gradient(pn1, D, norm1.0, norm1.1, g1);
                let a: &[f32] = if dropout {
                    masked(a_buf, g1, m1);
                    a_buf
                } else {
                    g1
                };
                match dx {
                    Some(dx) => {
                        att.self_backward_block(pa, cached, a, d_heads, d_proj, Some(&mut *dx), (dp, dropped));
                        add_into(dx, g1);
                    }
                    None => att.self_backward_block(pa, cached, a, d_heads, d_proj, None, (dp, dropped)),
                }
            }
        };
        on_parts(&mut items[..parts.samples], parts.threads, &inputs);
        let (g2, dz2, t, g1, a, u1, u2, d_proj, used, dz1) =
            (&*g2, &*dz2, &*t, &*g1, &*a, &*u1, &*u2, &*d_proj, &*used, &*dz1);

        // 2. The parameter gradients.
        let [ga, gf, gn1, gn2] = split_parts_mut(grads, Self::PARAM_PARTS);
        let [g_in, gb_in, g_out, gb_out] = split_parts_mut(ga, [3 * D * D, 3 * D, D * D, D]);
        let [g_1, gb_1, g_2, gb_2] = split_parts_mut(gf, [F * D, F, D * F, D]);
        let [gn1_w, gn1_b] = split_parts_mut(gn1, [D, D]);
        let [gn2_w, gn2_b] = split_parts_mut(gn2, [D, D]);
        let mut regions = [g_in, gb_in, g_out, gb_out, g_1, gb_1, g_2, gb_2, gn1_w, gn1_b, gn2_w, gn2_b];
        let mut items: [Part<'_, 12>; MAX_PARTS] = core::array::from_fn(|p| {
            let rows = |n| rows_of(n, parts.rows, p).len();
            let (i, d, f) = (rows(3 * D), rows(D), rows(F));
            Part::cut(p, 0..0, &mut regions, [i * D, i, d * D, d, f * D, f, d * F, d, d, d, d, d])
        });
        let used: &[f32] = if dropout { used } else { act };
        let (dz2, a): (&[f32], &[f32]) = match (dropout, self.norm_first) {
            (true, _) => (dz2, a),
            (false, true) => (dy, t),
            (false, false) => (g2, g1),
        };
        // The inputs of the feed-forward block and the attention, and the output
        // gradients of the norms.
        let (ff_in, att_in, d_norm2, d_norm1): (&[f32], &[f32], &[f32], &[f32]) =
            if self.norm_first { (mid2, mid1, u2, u1) } else { (mid1, x, dy, t) };
        let params = |part: &mut Part<'_, 12>| {
            let p = part.index;
            let rows = |n| rows_of(n, parts.rows, p);
            let (in_rows, d_rows, f_rows) = (rows(3 * D), rows(D), rows(F));
            let [g_in, gb_in, g_out, gb_out, g_1, gb_1, g_2, gb_2, gn1_w, gn1_b, gn2_w, gn2_b] = &mut part.buffers;
            layer_norm::param_gradients(D, d_rows.clone(), normed2, d_norm2, (gn2_w, gn2_b));
            let ff_grads = [&mut **g_1, &mut **gb_1, &mut **g_2, &mut **gb_2];
            FeedForward::<T, D, F>::param_gradients((ff_in, used, dz2, dz1), f_rows, d_rows.clone(), ff_grads);
            layer_norm::param_gradients(D, d_rows.clone(), normed1, d_norm1, (gn1_w, gn1_b));
            let cached = (att_in, heads_out, a, &*d_proj);
            att.self_param_gradients(cached, in_rows, (g_in, gb_in), d_rows, (g_out, gb_out));
        };
        on_parts(&mut items[..parts.rows], parts.threads, &params);
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
