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
//! projections' gradients are those of dense layers, but for the key bias, whose
//! gradient is 0 exactly (a softmax does not see a constant added to a row of scores)
//! and is not accumulated.
//!
//! Every product is a [`gemm`] on strided views of the projection buffer: a head is a
//! column block, `K^T` is a stride swap, and nothing is copied per head.
//!
//! **Layouts** (whole batch, sample-major). The projections are stored as
//! `[B, T, 3D]` (`Q | K | V` per row) for self-attention and as `Q [B, TQ, D]` then
//! `K | V [B, TK, 2D]` for cross-attention; both take `B (TQ D + 2 TK D)` floats. The
//! cache is `projections, P [B, H, TQ, TK], O [B, TQ, D], M [B, H, TQ, TK]`.
use core::ops::Range;

use super::dense;
use super::gemm::{gemm, MatRef};
use super::maths::exp_lanes;
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

/// Attention over a batch whose heads' products take at least this many
/// multiply-adds is shared between threads, sample by sample (the `threading` feature,
/// x86-64): below it, waking a worker costs more than it saves.
#[cfg(any(feature = "threading", feature = "internals"))]
pub const PARALLEL_MIN_MACS: usize = 1 << 18;

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

    /// How many parts (threads) the heads of `batch` samples are shared between: 1 for
    /// one thread or one sample, below [`PARALLEL_MIN_MACS`] multiply-adds, and at most
    /// as many as `tmp_len` floats hold `per_part` floats for.
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    fn parts(&self, batch: usize, tmp_len: usize, per_part: usize) -> usize {
        let threads = super::gemm::threads();
        let macs = batch.saturating_mul(self.weights()).saturating_mul(2 * self.head_width());
        if threads < 2 || batch < 2 || macs < PARALLEL_MIN_MACS {
            return 1;
        }
        let parts = threads.min(batch);
        tmp_len.checked_div(per_part).map_or(parts, |fit| parts.min(fit))
    }

    /// The masked softmax of every row of one head's scores `p [TQ, TK]`, for a sample
    /// of `n_valid` valid keys: compiled for the widest vectors the CPU has, so that the
    /// exponentials (`maths::exp`, 1.03 ulp) are computed sixteen or eight at a time.
    /// The same operations on every element, so the same bits on every instruction set.
    pub(crate) fn softmax_rows(&self, p: &mut [f32], n_valid: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let isa = super::isa::isa();
            if isa.avx512() {
                // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
                return unsafe { softmax_rows_avx512(self, p, n_valid) };
            }
            if isa.avx2() {
                // SAFETY: the CPU has AVX2 and FMA.
                return unsafe { softmax_rows_avx2(self, p, n_valid) };
            }
        }
        softmax_rows(self, p, n_valid);
    }

    /// Every head of the samples `samples` of the batch: the scores, the masked softmax
    /// and the weighted values. `probs` and `out` hold those samples' weights
    /// `[H, TQ, TK]` and heads' outputs `[TQ, D]`, from sample `samples.start` on; `keep`
    /// their dropout masks, already drawn (`None`: no dropout); `tmp` one grid `TQ x TK`
    /// when `keep` is given.
    #[allow(clippy::too_many_arguments)]
    fn heads_forward(
        &self,
        lay: &Heads,
        proj: &[f32],
        valid: Option<&[usize]>,
        samples: Range<usize>,
        probs: &mut [f32],
        out: &mut [f32],
        keep: Option<&[f32]>,
        tmp: &mut [f32],
    ) {
        let (tq, tk, d, dh) = (self.queries, self.keys, self.width, self.head_width());
        let scale = 1.0 / libm::sqrtf(dh as f32);
        let grid = tq * tk;
        for (s, b) in samples.enumerate() {
            let n_valid = valid.map_or(tk, |v| v[b].min(tk));
            for h in 0..self.heads {
                let q = MatRef { data: &proj[b * lay.q_len + h * dh..], rows: tq, cols: dh, rs: lay.q_rs, cs: 1 };
                let kv = &proj[lay.kv_at + b * lay.kv_len..];
                let k = MatRef { data: &kv[lay.k_col + h * dh..], rows: tk, cols: dh, rs: lay.kv_rs, cs: 1 };
                let v = MatRef { data: &kv[lay.v_col + h * dh..], rows: tk, cols: dh, rs: lay.kv_rs, cs: 1 };
                let at = (s * self.heads + h) * grid;
                let p = &mut probs[at..at + grid];
                gemm(scale, q, k.t(), 0.0, p, tk);
                self.softmax_rows(p, n_valid);
                let o = &mut out[s * tq * d + h * dh..];
                match keep {
                    Some(keep) => {
                        let dropped = &mut tmp[..grid];
                        for ((t, &w), &m) in dropped.iter_mut().zip(p.iter()).zip(&keep[at..at + grid]) {
                            *t = w * m;
                        }
                        gemm(1.0, MatRef::new(dropped, tq, tk), v, 0.0, o, d);
                    }
                    None => gemm(1.0, MatRef::new(p, tq, tk), v, 0.0, o, d),
                }
            }
        }
    }

    /// The backward of [`Attention::heads_forward`] for the samples `samples`: from the
    /// heads' output gradients `d_heads` (the whole batch's), writes the gradients of
    /// the projections. `d_q` holds those samples' blocks of `Q` from sample
    /// `samples.start` on (for self-attention, their whole `Q | K | V` rows); `d_kv`
    /// their blocks of `K | V` for cross-attention (`None` for self-attention). `dp`
    /// and `dropped` hold one grid `TQ x TK` each.
    #[allow(clippy::too_many_arguments)]
    fn heads_backward(
        &self,
        lay: &Heads,
        (proj, probs, keep): (&[f32], &[f32], &[f32]),
        d_heads: &[f32],
        samples: Range<usize>,
        d_q: &mut [f32],
        mut d_kv: Option<&mut [f32]>,
        dp: &mut [f32],
        dropped: &mut [f32],
    ) {
        let (tq, tk, d, dh) = (self.queries, self.keys, self.width, self.head_width());
        let scale = 1.0 / libm::sqrtf(dh as f32);
        let grid = tq * tk;
        let dropout = self.dropout > 0.0;
        let (dp, dropped) = (&mut dp[..grid], &mut dropped[..grid]);
        // Where sample `s` of the block starts in the buffer of `K | V` gradients: their
        // own buffer for cross-attention, `Q`'s rows for self-attention (`kv_len = q_len`).
        let kv_base = if d_kv.is_some() { 0 } else { lay.kv_at };
        for (s, b) in samples.enumerate() {
            for h in 0..self.heads {
                let q = MatRef { data: &proj[b * lay.q_len + h * dh..], rows: tq, cols: dh, rs: lay.q_rs, cs: 1 };
                let kv = &proj[lay.kv_at + b * lay.kv_len..];
                let k = MatRef { data: &kv[lay.k_col + h * dh..], rows: tk, cols: dh, rs: lay.kv_rs, cs: 1 };
                let v = MatRef { data: &kv[lay.v_col + h * dh..], rows: tk, cols: dh, rs: lay.kv_rs, cs: 1 };
                let d_out = MatRef { data: &d_heads[b * tq * d + h * dh..], rows: tq, cols: dh, rs: d, cs: 1 };
                let at = (b * self.heads + h) * grid;
                let p = &probs[at..at + grid];

                // dV = P~^T dO
                let kv_grad_at = kv_base + s * lay.kv_len;
                let used = if dropout {
                    for ((t, &w), &m) in dropped.iter_mut().zip(p).zip(&keep[at..at + grid]) {
                        *t = w * m;
                    }
                    &dropped[..]
                } else {
                    p
                };
                let d_kv_rows = match d_kv.as_deref_mut() {
                    Some(d_kv) => d_kv,
                    None => &mut *d_q,
                };
                let d_v = &mut d_kv_rows[kv_grad_at + lay.v_col + h * dh..];
                gemm(1.0, MatRef::new(used, tq, tk).t(), d_out, 0.0, d_v, lay.kv_rs);

                // dP = dO V^T (times the dropout mask), then the softmax backward.
                gemm(1.0, d_out, v.t(), 0.0, dp, tk);
                if dropout {
                    dp.iter_mut().zip(&keep[at..at + grid]).for_each(|(g, &m)| *g *= m);
                }
                softmax_backward_rows(dp, p, tk, scale);
                let ds = MatRef::new(dp, tq, tk);
                // dQ = dS K, dK = dS^T Q
                gemm(1.0, ds, k, 0.0, &mut d_q[s * lay.q_len + h * dh..], lay.q_rs);
                let d_kv_rows = match d_kv.as_deref_mut() {
                    Some(d_kv) => d_kv,
                    None => &mut *d_q,
                };
                gemm(1.0, ds.t(), q, 0.0, &mut d_kv_rows[kv_grad_at + lay.k_col + h * dh..], lay.kv_rs);
            }
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
        dropout: Option<(&mut [f32], &mut Rng)>,
        tmp: &mut [f32],
    ) {
        let (tq, tk, d) = (self.queries, self.keys, self.width);
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
        // The dropout masks first, all of them in order (sample, head, query, key), so
        // that they do not depend on how the samples are shared between threads.
        let keep: Option<&[f32]> = match dropout {
            Some((keep, rng)) => {
                self.draw_keep(keep, rng);
                Some(keep)
            }
            None => None,
        };
        let grid = tq * tk;
        // Room for one grid per part when the weights are dropped.
        let per_part = if keep.is_some() { grid } else { 0 };
        #[cfg(all(feature = "threading", target_arch = "x86_64"))]
        {
            let parts = self.parts(batch, tmp.len(), per_part);
            if parts > 1 {
                use super::parallel::Output;
                use core::sync::atomic::{AtomicUsize, Ordering};
                let w = self.weights();
                let (probs_at, out_at, tmp_at) =
                    (Output(probs.as_mut_ptr()), Output(heads_out.as_mut_ptr()), Output(tmp.as_mut_ptr()));
                let next = AtomicUsize::new(0);
                let run = |part: usize| loop {
                    // One sample at a time, so that a thread slowed by another process
                    // leaves the rest to the others.
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batch {
                        break;
                    }
                    // SAFETY: sample `b` is taken by this part only, so its weights
                    // (`w` floats at `b w`) and heads' outputs (`tq d` at `b tq d`) are
                    // written by no other part; the part's own floats of `tmp` are at
                    // `part per_part` (`parts per_part <= tmp.len()`, `Attention::parts`).
                    let (p, out, t) = unsafe {
                        (
                            core::slice::from_raw_parts_mut(probs_at.at(b * w), w),
                            core::slice::from_raw_parts_mut(out_at.at(b * tq * d), tq * d),
                            core::slice::from_raw_parts_mut(tmp_at.at(part * per_part), per_part),
                        )
                    };
                    let keep = keep.map(|k| &k[b * w..(b + 1) * w]);
                    self.heads_forward(&lay, proj, valid, b..b + 1, p, out, keep, t);
                };
                super::parallel::for_each_part(parts, &run);
                dense::forward(heads_out, w_out, Some(b_out), Activation::Identity, d, d, y, None);
                return;
            }
        }
        self.heads_forward(&lay, proj, valid, 0..batch, probs, heads_out, keep, &mut tmp[..per_part]);
        dense::forward(heads_out, w_out, Some(b_out), Activation::Identity, d, d, y, None);
    }

    /// Draws the dropout mask of the attention weights: `1 / (1 - p)` or 0 for each, in
    /// order.
    pub(crate) fn draw_keep(&self, keep: &mut [f32], rng: &mut Rng) {
        let keep_scale = 1.0 / (1.0 - self.dropout);
        for m in keep.iter_mut() {
            *m = if rng.uniform() < 1.0 - self.dropout { keep_scale } else { 0.0 };
        }
    }

    /// Self-attention's training forward of one block of samples on this thread, for a
    /// caller that shares a batch's samples between threads: `x`, `valid`, `y` and the
    /// cache parts hold the block's samples only (`proj` their projections, `probs`
    /// their weights, `heads_out` their heads' outputs, `keep` their dropout masks, drawn
    /// before: `None` for no dropout); `tmp` holds a grid `TQ x TK` when `keep` is
    /// given. Every sample gets the bits [`Attention::forward_train`] gives it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn self_forward_block(
        &self,
        params: &[f32],
        x: &[f32],
        valid: Option<&[usize]>,
        y: &mut [f32],
        (proj, probs, heads_out): (&mut [f32], &mut [f32], &mut [f32]),
        keep: Option<&[f32]>,
        tmp: &mut [f32],
    ) {
        let (tq, d) = (self.queries, self.width);
        let batch = x.len() / (tq * d);
        let (w_in, rest) = params.split_at(3 * d * d);
        let (b_in, rest) = rest.split_at(3 * d);
        let (w_out, b_out) = rest.split_at(d * d);
        forward_rows(x, w_in, Some(b_in), Activation::Identity, d, 3 * d, proj, None);
        let lay = self.heads(batch, false);
        let per_part = if keep.is_some() { tq * self.keys } else { 0 };
        self.heads_forward(&lay, proj, valid, 0..batch, probs, heads_out, keep, &mut tmp[..per_part]);
        forward_rows(heads_out, w_out, Some(b_out), Activation::Identity, d, d, y, None);
    }

    /// Self-attention's backward of one block of samples without the parameter
    /// gradients (see [`Attention::self_forward_block`]): from `dy` (the block's output
    /// gradient, kept) writes the projections' gradients `d_proj` (kept for
    /// [`Attention::self_param_gradients`]) and, when given, `dx`. `cached` are the
    /// block's projections, weights and dropout masks (empty without dropout);
    /// `d_heads` holds `TQ D` floats per sample, `dp` and `dropped` a grid each.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn self_backward_block(
        &self,
        params: &[f32],
        cached: (&[f32], &[f32], &[f32]),
        dy: &[f32],
        d_heads: &mut [f32],
        d_proj: &mut [f32],
        dx: Option<&mut [f32]>,
        (dp, dropped): (&mut [f32], &mut [f32]),
    ) {
        let (tq, d) = (self.queries, self.width);
        let batch = dy.len() / (tq * d);
        let w_in = &params[..3 * d * d];
        let w_out = &params[3 * d * d + 3 * d..][..d * d];
        let d_heads = &mut d_heads[..batch * tq * d];
        dense::input_gradient(w_out, d, d, dy, d_heads);
        let lay = self.heads(batch, false);
        self.heads_backward(&lay, cached, d_heads, 0..batch, d_proj, None, dp, dropped);
        if let Some(dx) = dx {
            dense::input_gradient(w_in, d, 3 * d, d_proj, dx);
        }
    }

    /// Self-attention's parameter gradients over the whole batch for the output rows
    /// `rows` of both projections (`rows` of `D` for the output projection, `in_rows`
    /// of `3D` for the input projection), from its input `x`, the heads' outputs, the
    /// output gradient `dy` and the projections' gradients `d_proj` of
    /// [`Attention::self_backward_block`]. `g_in`/`gb_in` and `g_out`/`gb_out` hold
    /// those rows' weight and bias gradients; the bits are those of
    /// [`Attention::backward`] (the key bias's gradient stays as it was).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn self_param_gradients(
        &self,
        (x, heads_out, dy, d_proj): (&[f32], &[f32], &[f32], &[f32]),
        in_rows: Range<usize>,
        (g_in, gb_in): (&mut [f32], &mut [f32]),
        rows: Range<usize>,
        (g_out, gb_out): (&mut [f32], &mut [f32]),
    ) {
        let d = self.width;
        dense::param_gradients(heads_out, d, d, dy, rows, g_out, Some(gb_out));
        dense::param_gradients(x, d, 3 * d, d_proj, in_rows.clone(), g_in, None);
        // The query and value biases: the columns of `in_rows` outside `d..2d`.
        for cols in [in_rows.start.min(d)..in_rows.end.min(d), in_rows.start.max(2 * d)..in_rows.end.max(2 * d)] {
            if !cols.is_empty() {
                let at = cols.start - in_rows.start..cols.end - in_rows.start;
                add_bias_gradient(d_proj, 3 * d, cols, &mut gb_in[at]);
            }
        }
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
        let (tq, tk, d) = (self.queries, self.keys, self.width);
        let batch = query.len() / (tq * d);
        let (w_in, rest) = params.split_at(3 * d * d);
        let w_out = &rest[3 * d..3 * d + d * d];
        let (gw_in, rest) = grads.split_at_mut(3 * d * d);
        let (gb_in, rest) = rest.split_at_mut(3 * d);
        let (gw_out, gb_out) = rest.split_at_mut(d * d);
        let (proj, rest) = cache.split_at(batch * self.projections());
        let (probs, rest) = rest.split_at(batch * self.weights());
        let (heads_out, keep) = rest.split_at(batch * tq * d);

        let (d_proj, rest) = scratch.split_at_mut(batch * self.projections());
        let (d_heads, rest) = rest.split_at_mut(batch * tq * d);
        let grid = tq * tk;

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
        {
            let cached = (proj, probs, keep);
            let d_heads: &[f32] = d_heads;
            #[cfg(all(feature = "threading", target_arch = "x86_64"))]
            let parts = self.parts(batch, rest.len(), 2 * grid);
            #[cfg(not(all(feature = "threading", target_arch = "x86_64")))]
            let parts = 1;
            if parts > 1 {
                #[cfg(all(feature = "threading", target_arch = "x86_64"))]
                {
                    use super::parallel::Output;
                    use core::sync::atomic::{AtomicUsize, Ordering};
                    let cross = context.is_some();
                    let (d_proj_at, rest_at) = (Output(d_proj.as_mut_ptr()), Output(rest.as_mut_ptr()));
                    let next = AtomicUsize::new(0);
                    let run = |part: usize| loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= batch {
                            break;
                        }
                        // SAFETY: sample `b` is taken by this part only, and its blocks
                        // of the projections' gradients (`q_len` floats at `b q_len`, and
                        // for cross-attention `kv_len` at `kv_at + b kv_len`) are disjoint
                        // from every other sample's; the part's own `2 grid` floats of
                        // `rest` are at `2 part grid` (`Attention::parts`).
                        let (d_q, d_kv, dp, dropped) = unsafe {
                            let slice =
                                |at: Output, from: usize, len: usize| core::slice::from_raw_parts_mut(at.at(from), len);
                            let d_kv = cross.then(|| slice(d_proj_at, lay.kv_at + b * lay.kv_len, lay.kv_len));
                            let (dp, dropped) = slice(rest_at, 2 * part * grid, 2 * grid).split_at_mut(grid);
                            (slice(d_proj_at, b * lay.q_len, lay.q_len), d_kv, dp, dropped)
                        };
                        self.heads_backward(&lay, cached, d_heads, b..b + 1, d_q, d_kv, dp, dropped);
                    };
                    super::parallel::for_each_part(parts, &run);
                }
            } else {
                let (dp, rest) = rest.split_at_mut(grid);
                let dropped = &mut rest[..grid];
                match context {
                    None => self.heads_backward(&lay, cached, d_heads, 0..batch, d_proj, None, dp, dropped),
                    Some(_) => {
                        let (d_q, d_kv) = d_proj.split_at_mut(lay.kv_at);
                        self.heads_backward(&lay, cached, d_heads, 0..batch, d_q, Some(d_kv), dp, dropped);
                    }
                }
            }
        }

        // Input projections, as dense layers, but for the key bias (see `add_bias_gradient`).
        match context {
            None => {
                dense::backward(query, w_in, &[], &[], Activation::Identity, d, 3 * d, d_proj, gw_in, None, d_query);
                add_bias_gradient(d_proj, 3 * d, 0..d, &mut gb_in[..d]);
                add_bias_gradient(d_proj, 3 * d, 2 * d..3 * d, &mut gb_in[2 * d..3 * d]);
            }
            Some(context) => {
                let (dq, dkv) = d_proj.split_at_mut(batch * tq * d);
                let (gw_q, gw_kv) = gw_in.split_at_mut(d * d);
                let (gb_q, gb_kv) = gb_in.split_at_mut(d);
                let (w_q, w_kv) = w_in.split_at(d * d);
                dense::backward(query, w_q, &[], &[], Activation::Identity, d, d, dq, gw_q, Some(gb_q), d_query);
                dense::backward(context, w_kv, &[], &[], Activation::Identity, d, 2 * d, dkv, gw_kv, None, d_context);
                add_bias_gradient(dkv, 2 * d, d..2 * d, &mut gb_kv[d..2 * d]);
            }
        }
    }
}

/// [`dense::forward`] of one thread's rows for the training forward of the attention
/// and feed-forward blocks, with the same bits: with AVX2 (and not AVX-512), no
/// activation or ReLU, the batch GEMV ([`avx2::gemv_batch_strided`](super::avx2::gemv_batch_strided),
/// the kernel `dense::forward` runs) is called on blocks of [`L1_WEIGHT_BYTES`] of the
/// weight's rows, so that a block stays in L1 while every row of `x` passes (one call
/// over the whole weight reads it from L2 for every two rows of `x`). Every output is
/// its row's dot product, rounded as `dense::forward` rounds it, whatever rows a call
/// takes. Otherwise `dense::forward` itself.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_rows(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    inputs: usize,
    outputs: usize,
    y: &mut [f32],
    pre: Option<&mut [f32]>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let isa = super::isa::isa();
        let relu = activation == Activation::Relu;
        if isa.avx2() && !isa.avx512() && (relu || activation == Activation::Identity) && inputs > 0 && outputs > 0 {
            let batch = x.len() / inputs;
            let len = batch.checked_mul(outputs).expect("forward_rows: batch * outputs overflows usize");
            let (x, y, weight) = (&x[..batch * inputs], &mut y[..len], &weight[..outputs * inputs]);
            // The bias first, as `dense::forward`: the sums are added onto it.
            match bias {
                Some(b) => y.chunks_exact_mut(outputs).for_each(|row| row.copy_from_slice(&b[..outputs])),
                None => y.fill(0.0),
            }
            let block = (L1_WEIGHT_BYTES / (4 * inputs) / 4 * 4).max(4);
            let mut o = 0;
            while o < outputs {
                let rows = block.min(outputs - o);
                // SAFETY: the CPU has AVX2 and FMA; the weight's rows `o..o + rows` are
                // `rows * inputs` floats at `o * inputs` (inside `weight`), `x` holds
                // `batch` rows of `inputs`, and `y + s outputs + o + i` for `s < batch`,
                // `i < rows` is inside `y` (`o + rows <= outputs`), a unique borrow.
                unsafe {
                    super::avx2::gemv_batch_strided(
                        1.0,
                        &weight[o * inputs..],
                        inputs,
                        rows,
                        inputs,
                        x,
                        y.as_mut_ptr().add(o),
                        outputs,
                        batch,
                    );
                }
                o += rows;
            }
            if relu {
                relu_rows(y, pre);
            } else if let Some(pre) = pre {
                pre[..y.len()].copy_from_slice(y);
            }
            return;
        }
    }
    dense::forward(x, weight, bias, activation, inputs, outputs, y, pre);
}

/// Bytes of a weight's rows that [`forward_rows`] passes to one batch GEMV.
#[cfg(target_arch = "x86_64")]
const L1_WEIGHT_BYTES: usize = 16 * 1024;

/// ReLU in place as `dense::forward` applies it (`v` where `v > 0`, else `+0`: zero
/// for negative zero and NaN), the pre-activations copied into `pre` when given.
#[cfg(target_arch = "x86_64")]
fn relu_rows(y: &mut [f32], pre: Option<&mut [f32]>) {
    if let Some(pre) = pre {
        pre[..y.len()].copy_from_slice(y);
    }
    // SAFETY: called by `forward_rows` only where the CPU has AVX2.
    unsafe { relu_avx2(y) }
}

/// ReLU over `y` eight at a time: `v AND (v > 0)` (an ordered comparison: false for
/// NaN), every vector stored whole (the compiler's form of the scalar select stores
/// through a mask, which is slow).
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn relu_avx2(y: &mut [f32]) {
    use core::arch::x86_64::*;
    let (chunks, tail) = y.as_chunks_mut::<8>();
    let zero = _mm256_setzero_ps();
    for c in chunks {
        // SAFETY: the chunk holds eight floats.
        unsafe {
            let v = _mm256_loadu_ps(c.as_ptr());
            _mm256_storeu_ps(c.as_mut_ptr(), _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_GT_OQ>(v, zero)));
        }
    }
    for v in tail {
        *v = if *v > 0.0 { *v } else { 0.0 };
    }
}

/// Adds to `bias` (the gradients of the columns `cols`) the sums over the rows of `rows` (`width` columns each) of its
/// columns `cols`, row after row, as a dense layer's backward sums its bias gradient.
///
/// The input projections' bias gradients are those of the query and value biases
/// only: the key bias's gradient is 0 exactly, for every input, mask and dropout.
/// `b_k` adds `q_i . b_k / sqrt(d)` to every score of query `i`'s row, which a softmax
/// over that row does not see, so no output depends on it (`sum_j dS_ij = 0` in exact
/// arithmetic). Its computed value, the column sums of `dK`, is rounding noise of order
/// `f32::EPSILON * sum |dS_ij| |Q_i|` (up to `1e-6` on the PyTorch fixtures, where
/// PyTorch's float64 gives `1e-15`); it is left out, and the key bias's gradient
/// stays as it was.
fn add_bias_gradient(rows: &[f32], width: usize, cols: Range<usize>, bias: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::isa::isa().avx2() {
        // SAFETY: the CPU has AVX2.
        return unsafe { add_bias_gradient_avx2(rows, width, cols, bias) };
    }
    add_bias_gradient_rows(rows, width, cols, bias);
}

/// The loop of [`add_bias_gradient`], to be inlined into its copies.
#[inline(always)]
fn add_bias_gradient_rows(rows: &[f32], width: usize, cols: Range<usize>, bias: &mut [f32]) {
    for row in rows.chunks_exact(width) {
        bias.iter_mut().zip(&row[cols.clone()]).for_each(|(g, d)| *g += d);
    }
}

/// [`add_bias_gradient`] compiled for AVX2 (vectors of eight, the same sums).
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_bias_gradient_avx2(rows: &[f32], width: usize, cols: Range<usize>, bias: &mut [f32]) {
    add_bias_gradient_rows(rows, width, cols, bias);
}

/// [`Attention::softmax_rows`]: each row `i` becomes the softmax of its first
/// `visible(i)` scores shifted by their maximum, zeros after them (all zeros when
/// none is visible). The sums of [`SUM_ROWS`] rows are taken together, each row's in
/// its order over the keys (so that the rows' chains of additions overlap): a masked
/// key adds `+0` to a sum of at least 1 (the maximum's exponential), which leaves it
/// as it is.
#[inline(always)]
fn softmax_rows(cfg: &Attention, p: &mut [f32], n_valid: usize) {
    let tk = cfg.keys;
    for (i, row) in p.chunks_exact_mut(tk).enumerate() {
        exp_shifted(row, cfg.visible(i, n_valid));
    }
    for (block, rows) in p.chunks_mut(SUM_ROWS * tk).zip((0..).step_by(SUM_ROWS)) {
        let mut sums = [0.0f32; SUM_ROWS];
        let n = block.len() / tk;
        if n == SUM_ROWS {
            // A whole block: the rows' sums held in registers (a constant count of
            // them), each still added key by key.
            let rows: [&[f32]; SUM_ROWS] = core::array::from_fn(|r| &block[r * tk..(r + 1) * tk]);
            for j in 0..tk {
                for (sum, row) in sums.iter_mut().zip(&rows) {
                    *sum += row[j];
                }
            }
        } else {
            for j in 0..tk {
                for (r, sum) in sums[..n].iter_mut().enumerate() {
                    *sum += block[r * tk + j];
                }
            }
        }
        for (r, (row, &sum)) in block.chunks_exact_mut(tk).zip(&sums).enumerate() {
            let visible = cfg.visible(rows + r, n_valid).min(tk);
            if visible > 0 {
                let inv = 1.0 / sum;
                row[..visible].iter_mut().for_each(|v| *v *= inv);
            }
        }
    }
}

/// Rows whose sums [`softmax_rows`] takes together.
const SUM_ROWS: usize = 8;

/// `row[..visible]` minus its maximum, exponentiated; zeros after it.
#[inline(always)]
fn exp_shifted(row: &mut [f32], visible: usize) {
    let (seen, masked) = row.split_at_mut(visible.min(row.len()));
    masked.fill(0.0);
    let max = max_of(seen);
    let mut chunks = seen.chunks_exact_mut(EXP_LANES);
    for c in &mut chunks {
        let e = exp_lanes::<EXP_LANES>(core::array::from_fn(|i| c[i] - max));
        c.copy_from_slice(&e);
    }
    chunks.into_remainder().iter_mut().for_each(|v| *v = exp_lanes([*v - max])[0]);
}

/// Scores [`exp_shifted`] exponentiates at once: one AVX-512 vector, two AVX2 ones.
const EXP_LANES: usize = 16;

/// The largest value, NaN ignored (`-inf` for none): as a fold of `f32::max`, in 16
/// lanes. A maximum is exact in any order; the only freedom, `+0` or `-0` for a
/// maximum of zero, does not change `v - max` for any `v` but zero, whose exponential
/// is 1 either way.
#[inline(always)]
fn max_of(values: &[f32]) -> f32 {
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = larger(*m, v);
        }
    }
    for (m, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *m = larger(*m, v);
    }
    lanes.into_iter().fold(f32::NEG_INFINITY, larger)
}

/// The softmax backward of one head's rows: `dP` (`[TQ, TK]`, rows of `keys`) becomes
/// `dS = scale P * (dP - rowsum(P * dP))`. Each row's sum is taken in the fixed order
/// of [`maths::SUM_LANES`](super::maths::SUM_LANES) (one dependent chain of additions
/// per row otherwise), compiled for the widest vectors the CPU has: the same bits on
/// every instruction set.
fn softmax_backward_rows(dp: &mut [f32], p: &[f32], keys: usize, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        let isa = super::isa::isa();
        if isa.avx512() {
            // SAFETY: the CPU has AVX-512 F and AVX2.
            return unsafe { softmax_backward_rows_avx512(dp, p, keys, scale) };
        }
        if isa.avx2() {
            // SAFETY: the CPU has AVX2.
            return unsafe { softmax_backward_rows_avx2(dp, p, keys, scale) };
        }
    }
    softmax_backward_rows_inline(dp, p, keys, scale);
}

/// [`softmax_backward_rows`], to be inlined into its copies.
#[inline(always)]
fn softmax_backward_rows_inline(dp: &mut [f32], p: &[f32], keys: usize, scale: f32) {
    for (g, w) in dp.chunks_exact_mut(keys).zip(p.chunks_exact(keys)) {
        let dot = super::maths::dot_lanes(g, w);
        g.iter_mut().zip(w).for_each(|(g, &w)| *g = scale * w * (*g - dot));
    }
}

/// [`softmax_backward_rows`] compiled for AVX-512.
///
/// # Safety
/// The CPU has AVX-512 F and AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn softmax_backward_rows_avx512(dp: &mut [f32], p: &[f32], keys: usize, scale: f32) {
    softmax_backward_rows_inline(dp, p, keys, scale);
}

/// [`softmax_backward_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn softmax_backward_rows_avx2(dp: &mut [f32], p: &[f32], keys: usize, scale: f32) {
    softmax_backward_rows_inline(dp, p, keys, scale);
}

/// [`softmax_rows`] compiled for AVX-512.
///
/// # Safety
/// The CPU has AVX-512 F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn softmax_rows_avx512(cfg: &Attention, p: &mut [f32], n_valid: usize) {
    softmax_rows(cfg, p, n_valid);
}

/// [`softmax_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_rows_avx2(cfg: &Attention, p: &mut [f32], n_valid: usize) {
    softmax_rows(cfg, p, n_valid);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::vec::Vec;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|v| v.to_bits()).collect()
    }

    /// The masked softmax (whole blocks of rows and the last partial one) gives the bits
    /// of the plain loops: each row's maximum, its exponentials, their sum key by key
    /// and the products by its inverse.
    #[test]
    fn softmax_rows_match_the_plain_loops() {
        let mut rng = Rng::new(5);
        for (queries, keys) in [(32, 32), (13, 70), (8, 5), (17, 16)] {
            for causal in [false, true] {
                for valid in [keys, keys / 2, 0] {
                    let cfg = Attention { queries, keys, width: 8, heads: 2, causal, dropout: 0.0 };
                    let scores: Vec<f32> = (0..queries * keys).map(|_| rng.uniform_in(-6.0, 6.0)).collect();
                    let mut p = scores.clone();
                    cfg.softmax_rows(&mut p, valid);
                    let mut expected = scores.clone();
                    for (i, row) in expected.chunks_exact_mut(keys).enumerate() {
                        let visible = cfg.visible(i, valid).min(keys);
                        row[visible..].fill(0.0);
                        let max = row[..visible].iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
                        row[..visible].iter_mut().for_each(|v| *v = crate::kernels::maths::exp(*v - max));
                        let mut sum = 0.0f32;
                        for &v in row.iter() {
                            sum += v;
                        }
                        if visible > 0 {
                            let inv = 1.0 / sum;
                            row[..visible].iter_mut().for_each(|v| *v *= inv);
                        }
                    }
                    assert_eq!(bits(&p), bits(&expected), "{queries} x {keys}, causal {causal}, {valid} valid");
                }
            }
        }
    }

    /// [`forward_rows`] (the batch GEMV on blocks of weight rows under AVX2) gives the
    /// bits of `dense::forward`, with and without bias, pre-activations and ReLU,
    /// negative zeros and NaN included.
    #[test]
    fn forward_rows_match_dense_forward() {
        let mut rng = Rng::new(6);
        for (rows, inputs, outputs) in
            [(1, 64, 256), (5, 64, 192), (128, 64, 256), (7, 256, 64), (9, 37, 100), (3, 8, 3)]
        {
            let mut x: Vec<f32> = (0..rows * inputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let weight: Vec<f32> = (0..outputs * inputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let mut bias: Vec<f32> = (0..outputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            x[0] = f32::NAN;
            bias[outputs - 1] = -0.0;
            for activation in [Activation::Relu, Activation::Identity] {
                for bias in [Some(&bias[..]), None] {
                    for keep in [false, true] {
                        let (mut y, mut reference) = (std::vec![7.0; rows * outputs], std::vec![7.0; rows * outputs]);
                        let (mut pre, mut pre_reference) =
                            (std::vec![3.0; rows * outputs], std::vec![3.0; rows * outputs]);
                        forward_rows(
                            &x,
                            &weight,
                            bias,
                            activation,
                            inputs,
                            outputs,
                            &mut y,
                            keep.then_some(&mut pre[..]),
                        );
                        dense::forward(
                            &x,
                            &weight,
                            bias,
                            activation,
                            inputs,
                            outputs,
                            &mut reference,
                            keep.then_some(&mut pre_reference[..]),
                        );
                        let case =
                            std::format!("{rows} x {inputs} -> {outputs}, {activation:?}, bias {}", bias.is_some());
                        assert_eq!(bits(&y), bits(&reference), "{case}");
                        assert_eq!(bits(&pre), bits(&pre_reference), "{case} (pre-activations)");
                    }
                }
            }
        }
    }
}
