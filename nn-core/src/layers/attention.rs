//! Attention: `MultiHeadAttention` (self-attention, `[T, D] -> [T, D]`) and
//! `CrossAttention` (queries `[TQ, D]` over a context `[TK, D]`, `-> [TQ, D]`).
//!
//! Both are PyTorch's `nn.MultiheadAttention(D, H, batch_first=True)`: the parameters
//! `in_proj_weight [3D, D]`, `in_proj_bias [3D]`, `out_proj.weight [D, D]` and
//! `out_proj.bias [D]` load from its `state_dict` by copy, and `forward` returns its
//! first output. The equations, masks and layouts are in [`crate::kernels::attention`].
//!
//! * **Heads.** `H` must divide `D`; `network!` reports a violation at `heads`, and a
//!   direct use of the types fails to compile when a value is built (`new`).
//! * **Causal mask** (`causal: true`): position `i` attends to positions `j <= i` only.
//! * **Padding mask**: per-sample *valid lengths*. `forward_padded` and
//!   `forward_train_padded` take one length `n` per sample, and the keys `n..T` of that
//!   sample are padding (PyTorch's `key_padding_mask[b, j] = j >= n[b]`). A length says
//!   the same as a boolean mask for the usual right-padded batches and needs no per-step
//!   storage; the padded positions' own outputs are computed as PyTorch does (they
//!   attend to the valid keys). `backward` needs no lengths: masked weights are zero.
//!   With `network!`'s single input the plain methods (no padding) are used.
//! * **Inspection**: [`MultiHeadAttention::attention_weights`] returns the `[H, T, T]`
//!   weights of one sample (per head, not averaged as PyTorch's default).
//! * **Dropout** on the attention weights in training (not in evaluation mode,
//!   [`TrainCtx::training`] false), PyTorch's `dropout`; 0 by default.
//!
//! ```
//! use nn_core::layers::MultiHeadAttention;
//! use nn_core::{Layer, Rng};
//!
//! type Attn = MultiHeadAttention<3, 4, 2>; // T = 3, D = 4, 2 heads of width 2
//! let attn = Attn::new(true, 0.0); // causal
//! let mut params = vec![0.0; Attn::PARAMS];
//! attn.init(&mut params, &mut [], &mut Rng::new(1));
//! let x = [0.5, -1.0, 2.0, 0.0, 1.0, 1.0, -0.5, 0.25, 0.0, 3.0, 1.0, -2.0];
//! let weights = attn.attention_weights(&params, &x);
//! assert_eq!(weights.len(), 2 * 3 * 3);
//! assert_eq!(weights[0], 1.0); // the first position sees only itself
//! assert_eq!(&weights[1..3], &[0.0, 0.0]);
//! ```
use super::dense::Dense;
use crate::activation::Activation;
use crate::kernels::attention::{attention_params, Attention};
use crate::layer::{BackwardCtx, Layer, TensorInfo, TensorPath, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::Shape2;
#[cfg(feature = "alloc")]
use crate::shape::{flatten, Tensor};

/// Multi-head self-attention over a sequence of `T` steps of width `D` with `H` heads.
#[derive(Clone, Copy, Debug)]
pub struct MultiHeadAttention<const T: usize, const D: usize, const H: usize> {
    /// Whether position `i` attends only to positions `j <= i`.
    pub causal: bool,
    /// The dropout probability on the attention weights, in `[0, 1)` (training only).
    pub dropout: f32,
}

/// Checks `H | D` once per instantiation: `const _: () = Heads::<D, H>::CHECK`.
struct Heads<const D: usize, const H: usize>;

impl<const D: usize, const H: usize> Heads<D, H> {
    const CHECK: () =
        assert!(H > 0 && D.is_multiple_of(H), "attention: the number of heads `H` must divide the model width `D`");
}

/// The `in_proj_weight`, `in_proj_bias`, `out_proj.weight` and `out_proj.bias` tensors
/// of an attention layer of width `D` at `params_at`; `out_proj` is a [`Dense`]
/// (`nn.Linear`'s layout).
pub(crate) fn visit_attention<const D: usize>(
    path: Option<&TensorPath<'_>>,
    params_at: usize,
    f: &mut dyn FnMut(&TensorInfo<'_>),
) {
    let w_in = TensorPath::new(path, "in_proj_weight");
    f(&TensorInfo { path: &w_in, shape: &[3 * D, D], offset: params_at, len: 3 * D * D, trainable: true });
    let b_in = TensorPath::new(path, "in_proj_bias");
    f(&TensorInfo { path: &b_in, shape: &[3 * D], offset: params_at + 3 * D * D, len: 3 * D, trainable: true });
    let out = TensorPath::new(path, "out_proj");
    Dense::<D, D>::new(Activation::Identity).visit_tensors(Some(&out), params_at + 3 * D * D + 3 * D, 0, f);
}

/// PyTorch's initialisation: Xavier uniform over the whole `[3D, D]` input
/// projection, `U(-1/sqrt(D), 1/sqrt(D))` for the output projection (its `nn.Linear`
/// default), zero biases.
pub(crate) fn init_attention(params: &mut [f32], d: usize, rng: &mut Rng) {
    let (w_in, rest) = params.split_at_mut(3 * d * d);
    let (b_in, rest) = rest.split_at_mut(3 * d);
    let (w_out, b_out) = rest.split_at_mut(d * d);
    let limit = libm::sqrtf(6.0 / (4 * d) as f32);
    w_in.iter_mut().for_each(|v| *v = rng.uniform_in(-limit, limit));
    let limit = 1.0 / libm::sqrtf(d as f32);
    w_out.iter_mut().for_each(|v| *v = rng.uniform_in(-limit, limit));
    b_in.fill(0.0);
    b_out[..d].fill(0.0);
}

impl<const T: usize, const D: usize, const H: usize> MultiHeadAttention<T, D, H> {
    /// Self-attention, causal or not, with this dropout on the attention weights.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `dropout` is not in `[0, 1)`.
    pub const fn new(causal: bool, dropout: f32) -> Self {
        let () = Heads::<D, H>::CHECK;
        assert!(dropout >= 0.0 && dropout < 1.0, "MultiHeadAttention: dropout must be in [0, 1)");
        MultiHeadAttention { causal, dropout }
    }

    /// The sizes the kernels work with.
    pub const fn config(&self) -> Attention {
        let () = Heads::<D, H>::CHECK;
        Attention { queries: T, keys: T, width: D, heads: H, causal: self.causal, dropout: self.dropout }
    }

    /// Inference with a key padding mask: sample `b` has `lengths[b]` valid positions
    /// (`lengths.len()` is the batch size); the rest are not attended to.
    pub fn forward_padded(&self, params: &[f32], x: &[f32], lengths: &[usize], y: &mut [f32], scratch: &mut [f32]) {
        debug_assert_eq!(lengths.len() * T * D, x.len(), "one length per sample");
        self.config().forward(params, x, None, Some(lengths), y, scratch);
    }

    /// Training forward with a key padding mask (see
    /// [`MultiHeadAttention::forward_padded`]); `backward` is the usual one.
    pub fn forward_train_padded(&self, x: &[f32], lengths: &[usize], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, scratch, rng, training, .. } = cx;
        debug_assert_eq!(lengths.len() * T * D, x.len(), "one length per sample");
        self.config().forward_train(params, x, None, Some(lengths), y, cache, scratch, training.then_some(rng));
    }

    /// The attention weights `[B, H, T, T]` kept by the last `forward_train` of `batch`
    /// samples in `cache` (after dropout was drawn, before it was applied).
    pub fn weights_in<'a>(&self, cache: &'a [f32], batch: usize) -> &'a [f32] {
        self.config().weights_in(cache, batch)
    }

    /// Runs inference on one sample `x [T, D]` and writes its attention weights
    /// `[H, T, T]` (head, query, key) into `weights`. `scratch` holds `SCRATCH` floats.
    pub fn attention_weights_into(&self, params: &[f32], x: &[f32], weights: &mut [f32], scratch: &mut [f32]) {
        let cfg = self.config();
        // The kernel also writes the output: it goes after the kernel's own scratch.
        let (kernel, out) = scratch.split_at_mut(cfg.scratch());
        cfg.forward(params, &x[..T * D], None, None, &mut out[..T * D], kernel);
        weights[..cfg.weights()].copy_from_slice(cfg.weights_in(kernel, 1));
    }

    /// The attention weights `[H, T, T]` (head, query, key) of one sample `x [T, D]`.
    #[cfg(feature = "alloc")]
    pub fn attention_weights(&self, params: &[f32], x: &[f32]) -> alloc::vec::Vec<f32> {
        let mut weights = alloc::vec![0.0; H * T * T];
        let mut scratch = alloc::vec![0.0; <Self as Layer>::SCRATCH];
        self.attention_weights_into(params, x, &mut weights, &mut scratch);
        weights
    }
}

impl<const T: usize, const D: usize, const H: usize> Layer for MultiHeadAttention<T, D, H> {
    type Input = Shape2<T, D>;
    type Output = Shape2<T, D>;
    const PARAMS: usize = attention_params(D);
    /// Projections, weights, heads' outputs and the dropout mask.
    const CACHE: usize = Self::CFG.cache();
    /// The kernel's scratch, then room for one output (`attention_weights_into`).
    const SCRATCH: usize = Self::CFG.scratch() + T * D;
    const KIND: &'static str = "MultiHeadAttention";
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Pair {
        first: &crate::weights::TensorTree::Leaf { name: "in_proj_weight", shape: &[3 * D, D], trainable: true },
        rest: &crate::weights::TensorTree::Pair {
            first: &crate::weights::TensorTree::Leaf { name: "in_proj_bias", shape: &[3 * D], trainable: true },
            rest: &crate::weights::TensorTree::Scope { name: "out_proj", inner: <Dense<D, D> as Layer>::TENSORS },
        },
    };

    fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
        init_attention(params, D, rng);
    }

    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let params = w.params;
        self.config().forward(params, x, None, None, y, scratch);
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, scratch, rng, training, .. } = cx;
        self.config().forward_train(params, x, None, None, y, cache, scratch, training.then_some(rng));
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, scratch, .. } = cx;
        self.config().backward(params, x, None, cache, dy, dx, None, grads, scratch);
    }
}

impl<const T: usize, const D: usize, const H: usize> MultiHeadAttention<T, D, H> {
    /// The configuration with dropout 0, for the `const` cache and scratch sizes
    /// (which do not depend on the options).
    const CFG: Attention = Attention { queries: T, keys: T, width: D, heads: H, causal: false, dropout: 0.0 };
}

/// Attention of a query sequence `[TQ, D]` over a second sequence, the context
/// `[TK, D]` (keys and values), with `H` heads: `-> [TQ, D]`.
///
/// The parameters are those of [`MultiHeadAttention`] (`Q` from the queries with the
/// first block of `in_proj_weight`, `K` and `V` from the context with the other two),
/// so `nn.MultiheadAttention(D, H, batch_first=True)(query, context, context)` is the
/// reference. The sequential `network!` has one input, so this is a Rust-level layer:
/// call its methods with both inputs. Query and context share `D` by construction;
/// the typed [`CrossAttention::attend`] also checks their lengths at compile time.
///
/// ```
/// use nn_core::layers::CrossAttention;
/// use nn_core::{Rng, Tensor};
///
/// type Cross = CrossAttention<2, 3, 4, 2>; // 2 queries over 3 context steps, D = 4
/// let cross = Cross::new(false, 0.0);
/// let mut params = vec![0.0; Cross::PARAMS];
/// cross.init(&mut params, &mut Rng::new(3));
/// let query = [Tensor::from([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])];
/// let context = [Tensor::from([[0.5; 4], [1.0; 4], [-1.0; 4]])];
/// let y = cross.attend(&params, &query, &context);
/// assert_eq!(y.len(), 1);
/// assert!(y[0].iter().all(|v| v.is_finite()));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CrossAttention<const TQ: usize, const TK: usize, const D: usize, const H: usize> {
    /// Whether query `i` attends only to context positions `j <= i`.
    pub causal: bool,
    /// The dropout probability on the attention weights, in `[0, 1)` (training only).
    pub dropout: f32,
}

impl<const TQ: usize, const TK: usize, const D: usize, const H: usize> CrossAttention<TQ, TK, D, H> {
    /// The trainable parameters: `4 D^2 + 4 D`.
    pub const PARAMS: usize = attention_params(D);
    /// Floats per sample that `forward_train` keeps for `backward`.
    pub const CACHE: usize = Self::CFG.cache();
    /// Floats per sample of scratch space.
    pub const SCRATCH: usize = Self::CFG.scratch();
    const CFG: Attention = Attention { queries: TQ, keys: TK, width: D, heads: H, causal: false, dropout: 0.0 };

    /// Cross-attention, causal or not, with this dropout on the attention weights.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `dropout` is not in `[0, 1)`.
    pub const fn new(causal: bool, dropout: f32) -> Self {
        let () = Heads::<D, H>::CHECK;
        assert!(dropout >= 0.0 && dropout < 1.0, "CrossAttention: dropout must be in [0, 1)");
        CrossAttention { causal, dropout }
    }

    /// The sizes the kernels work with.
    pub const fn config(&self) -> Attention {
        let () = Heads::<D, H>::CHECK;
        Attention { queries: TQ, keys: TK, width: D, heads: H, causal: self.causal, dropout: self.dropout }
    }

    /// Initialises the parameters as [`MultiHeadAttention`].
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        init_attention(params, D, rng);
    }

    /// Inference: `y [B, TQ, D]` from `query [B, TQ, D]` and `context [B, TK, D]`.
    /// `lengths`, when given, is each sample's number of valid context positions (a key
    /// padding mask). `scratch` holds `B * SCRATCH` floats.
    pub fn forward(
        &self,
        params: &[f32],
        query: &[f32],
        context: &[f32],
        lengths: Option<&[usize]>,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        debug_assert_eq!(query.len() / (TQ * D), context.len() / (TK * D), "query and context batches differ");
        self.config().forward(params, query, Some(context), lengths, y, scratch);
    }

    /// Training forward, keeping `B * CACHE` floats in `cx.cache` for `backward`
    /// (`cx.buffers` is unused: the layer has none).
    pub fn forward_train(
        &self,
        query: &[f32],
        context: &[f32],
        lengths: Option<&[usize]>,
        y: &mut [f32],
        cx: TrainCtx<'_>,
    ) {
        let TrainCtx { params, cache, scratch, rng, training, .. } = cx;
        debug_assert_eq!(query.len() / (TQ * D), context.len() / (TK * D), "query and context batches differ");
        self.config().forward_train(params, query, Some(context), lengths, y, cache, scratch, training.then_some(rng));
    }

    /// Backward of `forward_train`: adds the parameter gradients into `cx.grads` and
    /// writes `dL/dquery` and `dL/dcontext` where given. `dy` is overwritten.
    /// `cx.frozen` is not consulted: every gradient is computed.
    pub fn backward(
        &self,
        query: &[f32],
        context: &[f32],
        dy: &mut [f32],
        d_query: Option<&mut [f32]>,
        d_context: Option<&mut [f32]>,
        cx: BackwardCtx<'_>,
    ) {
        let BackwardCtx { params, cache, grads, scratch, .. } = cx;
        self.config().backward(params, query, Some(context), cache, dy, d_query, d_context, grads, scratch);
    }

    /// The attention weights `[B, H, TQ, TK]` kept by the last `forward_train` of `batch`
    /// samples in `cache`.
    pub fn weights_in<'a>(&self, cache: &'a [f32], batch: usize) -> &'a [f32] {
        self.config().weights_in(cache, batch)
    }

    /// Typed inference over whole samples: the compiler checks that every query is
    /// `[TQ, D]` and every context `[TK, D]`.
    #[cfg(feature = "alloc")]
    pub fn attend(
        &self,
        params: &[f32],
        query: &[Tensor<Shape2<TQ, D>>],
        context: &[Tensor<Shape2<TK, D>>],
    ) -> alloc::vec::Vec<Tensor<Shape2<TQ, D>>> {
        assert_eq!(query.len(), context.len(), "CrossAttention::attend: one context per query");
        let mut y = alloc::vec![Tensor::<Shape2<TQ, D>>::zeros(); query.len()];
        let mut scratch = alloc::vec![0.0; query.len() * Self::SCRATCH];
        self.forward(params, flatten(query), flatten(context), None, crate::shape::flatten_mut(&mut y), &mut scratch);
        y
    }

    /// Names the parameters as `nn.MultiheadAttention`'s `state_dict`.
    pub fn visit_tensors(&self, path: Option<&TensorPath<'_>>, params_at: usize, f: &mut dyn FnMut(&TensorInfo<'_>)) {
        visit_attention::<D>(path, params_at, f);
    }
}
