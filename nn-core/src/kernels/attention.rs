//! Multi-head scaled dot-product attention, batched over samples, with PyTorch's
//! `nn.MultiheadAttention` equations and parameter layout.
//!
//! Sizes are arguments ([`Attention`]), so every attention layer of every network
//! shares this one copy. A query sequence `x_q [TQ, D]` attends over a key/value
//! sequence `x_kv [TK, D]` (the same sequence for self-attention) with `H` heads of
//! width `d = D / H`:
//!
//! * projections: `Q = x_q W_q^T + b_q`, `K = x_kv W_k^T + b_k`, `V = x_kv W_v^T + b_v`,
//!   where `W_q, W_k, W_v` are the three `[D, D]` row blocks of `in_proj_weight [3D, D]`
//!   and `b_q, b_k, b_v` those of `in_proj_bias [3D]`;
//! * per head `h` (columns `h d .. (h + 1) d` of `Q`, `K`, `V`):
//!   `S = Q_h K_h^T / sqrt(d)` (`[TQ, TK]`), `P = softmax(S)` over each row with masked
//!   entries excluded, `O_h = P V_h` (`[TQ, d]`);
//! * output: the heads side by side, `O [TQ, D]`, projected: `y = O W_o^T + b_o` with
//!   `out_proj.weight [D, D]` and `out_proj.bias [D]`.
//!
//! Parameters, in `state_dict` order: `in_proj_weight`, `in_proj_bias`,
//! `out_proj.weight`, `out_proj.bias`.
//!
//! **Masks.** Query `i` of a sample sees the keys `j < visible(i)`: with a causal mask
//! `j <= i` (PyTorch's `triu(ones, diagonal=1)` mask, aligned at the top left), and with
//! a per-sample valid length `n` (a key padding mask: keys `n..TK` are padding) `j < n`.
//! Both masks keep a prefix of the keys, so a masked softmax is a softmax over that
//! prefix and zeros after it. A row that sees no key at all (valid length 0) gets zero
//! weights and `O_h = 0`, where PyTorch produces NaN.
//!
//! **Dropout** (training only) multiplies `P` by a mask of `0` and `1 / (1 - p)`, as
//! PyTorch's attention dropout: `O_h = (P * M) V_h`.
//!
//! **Backward.** With `P~ = P * M`: `dV_h = P~^T dO_h`, `dP = (dO_h V_h^T) * M`,
//! `dS = P * (dP - rowsum(P * dP)) / sqrt(d)`, `dQ_h = dS K_h`, `dK_h = dS^T Q_h`; the
//! projections' gradients are those of dense layers.
//!
//! Every product is a [`gemm`] on strided views of the projection buffer: a head is a
//! column block, `K^T` is a stride swap, and nothing is copied per head.
//!
//! **Layouts** (whole batch, sample-major). The projections are stored as
//! `[B, T, 3D]` (`Q | K | V` per row) for self-attention and as `Q [B, TQ, D]` then
//! `K | V [B, TK, 2D]` for cross-attention; both take `B (TQ D + 2 TK D)` floats. The
//! cache is `projections, P [B, H, TQ, TK], O [B, TQ, D], M [B, H, TQ, TK]`.
use super::dense;
use super::gemm::{gemm, MatRef};
use super::maths::exp_rounded;
use crate::activation::Activation;
use crate::rng::Rng;

/// The sizes and options of one attention layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attention {
    /// Query positions `TQ`.
    pub queries: usize,
    /// Key/value positions `TK` (`TQ` for self-attention).
    pub keys: usize,
    /// The model width `D`.
    pub width: usize,
    /// The number of heads `H`; it divides `D`.
    pub heads: usize,
    /// Whether query `i` sees only keys `j <= i`.
    pub causal: bool,
    /// The dropout probability on the attention weights (training only).
    pub dropout: f32,
}

/// The trainable parameters of an attention layer: `4 D^2 + 4 D`.
pub const fn attention_params(width: usize) -> usize {
    4 * width * width + 4 * width
}

/// Where one head of one sample lives in a projection buffer.
#[derive(Clone, Copy)]
struct Heads {
    /// Row stride of `Q` and offset of sample 0's `K | V` block.
    q_rs: usize,
    kv_at: usize,
    kv_rs: usize,
    /// Column offsets of `K` and `V` inside a `K | V` row.
    k_col: usize,
    v_col: usize,
    /// Floats per sample in the `Q` and `K | V` blocks.
    q_len: usize,
    kv_len: usize,
}

impl Attention {
    /// The width of one head.
    pub const fn head_width(&self) -> usize {
        self.width / self.heads
    }

    /// Floats per sample of the projections `Q, K, V`.
    pub const fn projections(&self) -> usize {
        self.queries * self.width + 2 * self.keys * self.width
    }

    /// Floats per sample of the attention weights `[H, TQ, TK]`.
    pub const fn weights(&self) -> usize {
        self.heads * self.queries * self.keys
    }

    /// Floats per sample that training keeps for [`Attention::backward`].
    pub const fn cache(&self) -> usize {
        self.projections() + 2 * self.weights() + self.queries * self.width
    }

    /// Floats per sample of scratch space for [`Attention::forward`],
    /// [`Attention::forward_train`] and [`Attention::backward`].
    pub const fn scratch(&self) -> usize {
        let grid = self.queries * self.keys;
        let per_head = if self.heads > 2 { self.heads } else { 2 };
        self.projections() + self.queries * self.width + per_head * grid
    }

    /// The layout of the projection buffer of `batch` samples.
    fn heads(&self, batch: usize, cross: bool) -> Heads {
        let d = self.width;
        if cross {
            Heads {
                q_rs: d,
                kv_at: batch * self.queries * d,
                kv_rs: 2 * d,
                k_col: 0,
                v_col: d,
                q_len: self.queries * d,
                kv_len: self.keys * 2 * d,
            }
        } else {
            Heads {
                q_rs: 3 * d,
                kv_at: d,
                kv_rs: 3 * d,
                k_col: 0,
                v_col: d,
                q_len: 3 * d * self.queries,
                kv_len: 3 * d * self.keys,
            }
        }
    }

    /// The number of keys query `i` of a sample with `valid` valid keys sees.
    #[inline]
    fn visible(&self, i: usize, valid: usize) -> usize {
        if self.causal {
            valid.min(i + 1)
        } else {
            valid
        }
    }

    /// Inference: `y [B, TQ, D]` from `query [B, TQ, D]` and `context [B, TK, D]`
    /// (`None` for self-attention). `valid` gives each sample's number of valid keys
    /// (`None`: all). `scratch` holds `batch * self.scratch()` floats; afterwards its
    /// first `batch * self.weights()` floats after the projections are the attention
    /// weights (see [`Attention::weights_in`]).
    pub fn forward(
        &self,
        params: &[f32],
        query: &[f32],
        context: Option<&[f32]>,
        valid: Option<&[usize]>,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let batch = query.len() / (self.queries * self.width);
        let (store, tmp) =
            scratch.split_at_mut(batch * (self.projections() + self.weights() + self.queries * self.width));
        self.run(params, query, context, valid, y, store, None, tmp);
    }

    /// The attention weights `[B, H, TQ, TK]` in the scratch of a [`Attention::forward`]
    /// or the cache of a [`Attention::forward_train`] of `batch` samples.
    pub fn weights_in<'a>(&self, store: &'a [f32], batch: usize) -> &'a [f32] {
        let at = batch * self.projections();
        &store[at..at + batch * self.weights()]
    }

    /// Training forward: as [`Attention::forward`], keeping what
    /// [`Attention::backward`] needs in `cache` (`batch * self.cache()` floats) and
    /// drawing the dropout mask from `rng`; without `rng` (evaluation mode) no dropout
    /// is applied and the mask kept is all ones.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        &self,
        params: &[f32],
        query: &[f32],
        context: Option<&[f32]>,
        valid: Option<&[usize]>,
        y: &mut [f32],
        cache: &mut [f32],
        scratch: &mut [f32],
        rng: Option<&mut Rng>,
    ) {
        let batch = query.len() / (self.queries * self.width);
        let (store, keep) =
            cache.split_at_mut(batch * (self.projections() + self.weights() + self.queries * self.width));
        let keep = &mut keep[..batch * self.weights()];
        let dropout = match rng {
            Some(rng) if self.dropout > 0.0 => Some((keep, rng)),
            Some(_) => None,
            None => {
                keep.fill(1.0);
                None
            }
        };
        self.run(params, query, context, valid, y, store, dropout, scratch);
    }

    /// The shared forward. `store` receives the projections, the weights and the heads'
    /// outputs; `tmp` holds at least `TQ * TK` floats.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        params: &[f32],
        query: &[f32],
        context: Option<&[f32]>,
        valid: Option<&[usize]>,
        y: &mut [f32],
        store: &mut [f32],
        mut dropout: Option<(&mut [f32], &mut Rng)>,
        tmp: &mut [f32],
    ) {
        let (tq, tk, d, dh) = (self.queries, self.keys, self.width, self.head_width());
        let batch = query.len() / (tq * d);
        let (w_in, rest) = params.split_at(3 * d * d);
        let (b_in, rest) = rest.split_at(3 * d);
        let (w_out, b_out) = rest.split_at(d * d);
        let (proj, rest) = store.split_at_mut(batch * self.projections());
        let (probs, rest) = rest.split_at_mut(batch * self.weights());
        let heads_out = &mut rest[..batch * tq * d];

        match context {
            None => dense::forward(query, w_in, Some(b_in), Activation::Identity, d, 3 * d, proj, None),
            Some(context) => {
                let (q, kv) = proj.split_at_mut(batch * tq * d);
                dense::forward(query, &w_in[..d * d], Some(&b_in[..d]), Activation::Identity, d, d, q, None);
                dense::forward(context, &w_in[d * d..], Some(&b_in[d..]), Activation::Identity, d, 2 * d, kv, None);
            }
        }

        let lay = self.heads(batch, context.is_some());
        let proj: &[f32] = proj;
        let scale = 1.0 / libm::sqrtf(dh as f32);
        let keep_scale = 1.0 / (1.0 - self.dropout);
        let grid = tq * tk;
        for b in 0..batch {
            let n_valid = valid.map_or(tk, |v| v[b].min(tk));
            for h in 0..self.heads {
                let q = MatRef { data: &proj[b * lay.q_len + h * dh..], rows: tq, cols: dh, rs: lay.q_rs, cs: 1 };
                let kv = &proj[lay.kv_at + b * lay.kv_len..];
                let k = MatRef { data: &kv[lay.k_col + h * dh..], rows: tk, cols: dh, rs: lay.kv_rs, cs: 1 };
                let v = MatRef { data: &kv[lay.v_col + h * dh..], rows: tk, cols: dh, rs: lay.kv_rs, cs: 1 };
                let at = (b * self.heads + h) * grid;
                let p = &mut probs[at..at + grid];
                gemm(scale, q, k.t(), 0.0, p, tk);
                for (i, row) in p.chunks_exact_mut(tk).enumerate() {
                    masked_softmax(row, self.visible(i, n_valid));
                }
                let out = &mut heads_out[b * tq * d + h * dh..];
                match dropout.as_mut() {
                    Some((keep, rng)) => {
                        let keep = &mut keep[at..at + grid];
                        let dropped = &mut tmp[..grid];
                        for ((m, t), &w) in keep.iter_mut().zip(dropped.iter_mut()).zip(p.iter()) {
                            *m = if rng.uniform() < 1.0 - self.dropout { keep_scale } else { 0.0 };
                            *t = w * *m;
                        }
                        gemm(1.0, MatRef::new(dropped, tq, tk), v, 0.0, out, d);
                    }
                    None => gemm(1.0, MatRef::new(p, tq, tk), v, 0.0, out, d),
                }
            }
        }
        dense::forward(heads_out, w_out, Some(b_out), Activation::Identity, d, d, y, None);
    }

    /// Backward of [`Attention::forward_train`] (same inputs): adds the parameter
    /// gradients into `grads` and writes `dL/dquery` and `dL/dcontext` where given.
    /// For self-attention (`context` is `None`) `d_query` is the whole input gradient
    /// and `d_context` is ignored. `dy` is overwritten.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        query: &[f32],
        context: Option<&[f32]>,
        cache: &[f32],
        dy: &mut [f32],
        d_query: Option<&mut [f32]>,
        d_context: Option<&mut [f32]>,
        grads: &mut [f32],
        scratch: &mut [f32],
    ) {
        let (tq, tk, d, dh) = (self.queries, self.keys, self.width, self.head_width());
        let batch = query.len() / (tq * d);
        let (w_in, rest) = params.split_at(3 * d * d);
        let w_out = &rest[3 * d..3 * d + d * d];
        let (gw_in, rest) = grads.split_at_mut(3 * d * d);
        let (gb_in, rest) = rest.split_at_mut(3 * d);
        let (gw_out, gb_out) = rest.split_at_mut(d * d);
        let (proj, rest) = cache.split_at(batch * self.projections());
        let (probs, rest) = rest.split_at(batch * self.weights());
        let (heads_out, keep) = rest.split_at(batch * tq * d);
        let dropout = self.dropout > 0.0;

        let (d_proj, rest) = scratch.split_at_mut(batch * self.projections());
        let (d_heads, rest) = rest.split_at_mut(batch * tq * d);
        let grid = tq * tk;
        let (dp, rest) = rest.split_at_mut(grid);
        let dropped = &mut rest[..grid];

        // Output projection: dW_o += dy^T O, db_o += sum dy, dO = dy W_o.
        dense::backward(
            heads_out,
            w_out,
            &[],
            &[],
            Activation::Identity,
            d,
            d,
            dy,
            gw_out,
            Some(&mut gb_out[..d]),
            Some(&mut *d_heads),
        );

        let lay = self.heads(batch, context.is_some());
        let scale = 1.0 / libm::sqrtf(dh as f32);
        for b in 0..batch {
            for h in 0..self.heads {
                let q = MatRef { data: &proj[b * lay.q_len + h * dh..], rows: tq, cols: dh, rs: lay.q_rs, cs: 1 };
                let kv = &proj[lay.kv_at + b * lay.kv_len..];
                let k = MatRef { data: &kv[lay.k_col + h * dh..], rows: tk, cols: dh, rs: lay.kv_rs, cs: 1 };
                let v = MatRef { data: &kv[lay.v_col + h * dh..], rows: tk, cols: dh, rs: lay.kv_rs, cs: 1 };
                let d_out = MatRef { data: &d_heads[b * tq * d + h * dh..], rows: tq, cols: dh, rs: d, cs: 1 };
                let at = (b * self.heads + h) * grid;
                let p = &probs[at..at + grid];

                // dV = P~^T dO
                let kv_grad_at = lay.kv_at + b * lay.kv_len;
                let used = if dropout {
                    for ((t, &w), &m) in dropped.iter_mut().zip(p).zip(&keep[at..at + grid]) {
                        *t = w * m;
                    }
                    &dropped[..]
                } else {
                    p
                };
                gemm(
                    1.0,
                    MatRef::new(used, tq, tk).t(),
                    d_out,
                    0.0,
                    &mut d_proj[kv_grad_at + lay.v_col + h * dh..],
                    lay.kv_rs,
                );

                // dP = dO V^T (times the dropout mask), then the softmax backward.
                gemm(1.0, d_out, v.t(), 0.0, dp, tk);
                if dropout {
                    dp.iter_mut().zip(&keep[at..at + grid]).for_each(|(g, &m)| *g *= m);
                }
                for (g, w) in dp.chunks_exact_mut(tk).zip(p.chunks_exact(tk)) {
                    let dot: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
                    g.iter_mut().zip(w).for_each(|(g, &w)| *g = scale * w * (*g - dot));
                }
                let ds = MatRef::new(dp, tq, tk);
                // dQ = dS K, dK = dS^T Q
                gemm(1.0, ds, k, 0.0, &mut d_proj[b * lay.q_len + h * dh..], lay.q_rs);
                gemm(1.0, ds.t(), q, 0.0, &mut d_proj[kv_grad_at + lay.k_col + h * dh..], lay.kv_rs);
            }
        }

        // Input projections, as dense layers.
        match context {
            None => dense::backward(
                query,
                w_in,
                &[],
                &[],
                Activation::Identity,
                d,
                3 * d,
                d_proj,
                gw_in,
                Some(gb_in),
                d_query,
            ),
            Some(context) => {
                let (dq, dkv) = d_proj.split_at_mut(batch * tq * d);
                let (gw_q, gw_kv) = gw_in.split_at_mut(d * d);
                let (gb_q, gb_kv) = gb_in.split_at_mut(d);
                let (w_q, w_kv) = w_in.split_at(d * d);
                dense::backward(query, w_q, &[], &[], Activation::Identity, d, d, dq, gw_q, Some(gb_q), d_query);
                dense::backward(
                    context,
                    w_kv,
                    &[],
                    &[],
                    Activation::Identity,
                    d,
                    2 * d,
                    dkv,
                    gw_kv,
                    Some(gb_kv),
                    d_context,
                );
            }
        }
    }
}

/// Softmax over `row[..visible]`, zeros after it (all zeros when `visible` is 0),
/// shifted by the maximum.
#[inline]
pub fn masked_softmax(row: &mut [f32], visible: usize) {
    let (seen, masked) = row.split_at_mut(visible.min(row.len()));
    masked.fill(0.0);
    if seen.is_empty() {
        return;
    }
    let max = seen.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    seen.iter_mut().for_each(|v| *v = exp_rounded(*v - max));
    let inv = 1.0 / seen.iter().sum::<f32>();
    seen.iter_mut().for_each(|v| *v *= inv);
}
