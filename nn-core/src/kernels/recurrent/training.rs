//! Training: the forward pass that keeps gates and states, with its projections as
//! matrix products over the batch, and backpropagation through time.
use super::cells::{blocks, blocks_mut, gru_unit, lstm_unit, rnn_unit};
use super::inference::write_output;
use super::layout::{batch_of, CellKind, Config, Layout, Merge, States, StatesMut, Weights};
use crate::kernels::gemm::{gemm, MatRef};
#[cfg(target_arch = "x86_64")]
use crate::kernels::isa::{isa, Isa};
use crate::kernels::maths::tanh;
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
use crate::kernels::parallel::Output;
#[cfg(target_arch = "x86_64")]
use crate::kernels::{
    avx2::Avx2,
    avx512::Avx512,
    gemm::{sweep, Tile, MC},
};

/// Backward of [`merge_into`]: from `dy` (the merged width), writes the gradients of
/// both directions into `d [2 H]`.
#[inline]
fn merge_backward(merge: Merge, dy: &[f32], hf: &[f32], hb: &[f32], d: &mut [f32]) {
    let n = hf.len();
    let (df, db) = d[..2 * n].split_at_mut(n);
    match merge {
        Merge::Concat => {
            df.copy_from_slice(&dy[..n]);
            db.copy_from_slice(&dy[n..2 * n]);
        }
        Merge::Sum => {
            df.copy_from_slice(&dy[..n]);
            db.copy_from_slice(&dy[..n]);
        }
        Merge::Mean => {
            df.iter_mut().zip(&dy[..n]).for_each(|(d, &g)| *d = 0.5 * g);
            db.iter_mut().zip(&dy[..n]).for_each(|(d, &g)| *d = 0.5 * g);
        }
        Merge::Multiply => {
            for j in 0..n {
                df[j] = dy[j] * hb[j];
                db[j] = dy[j] * hf[j];
            }
        }
    }
}

/// Adds `bias` to every row of `m` (rows of `bias.len()`).
#[inline]
fn add_bias_rows(m: &mut [f32], bias: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    match isa() {
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
        Isa::Avx512 => return unsafe { add_bias_rows_avx512(m, bias) },
        // SAFETY: the CPU has AVX2 and FMA (every `Isa` above `Portable` has them).
        Isa::Avx2Fma => return unsafe { add_bias_rows_avx2(m, bias) },
        Isa::Portable | Isa::Neon => {}
    }
    add_bias_rows_portable(m, bias)
}

/// [`add_bias_rows`] compiled for sixteen lanes (each sum rounded once: the same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn add_bias_rows_avx512(m: &mut [f32], bias: &[f32]) {
    add_bias_rows_portable(m, bias)
}

/// [`add_bias_rows`] compiled for eight lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_bias_rows_avx2(m: &mut [f32], bias: &[f32]) {
    add_bias_rows_portable(m, bias)
}

/// [`add_bias_rows`] for the baseline instruction set.
#[inline(always)]
fn add_bias_rows_portable(m: &mut [f32], bias: &[f32]) {
    for row in m.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

/// Adds the column sums of `m` (rows of `acc.len()`, row stride `stride`, `rows` rows)
/// into `acc`, row by row.
#[inline]
fn add_column_sums(acc: &mut [f32], m: &[f32], rows: usize, stride: usize) {
    #[cfg(target_arch = "x86_64")]
    match isa() {
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
        Isa::Avx512 => return unsafe { add_column_sums_avx512(acc, m, rows, stride) },
        // SAFETY: the CPU has AVX2 and FMA (every `Isa` above `Portable` has them).
        Isa::Avx2Fma => return unsafe { add_column_sums_avx2(acc, m, rows, stride) },
        Isa::Portable | Isa::Neon => {}
    }
    add_column_sums_portable(acc, m, rows, stride)
}

/// [`add_column_sums`] compiled for sixteen lanes (each column summed in row order:
/// the same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn add_column_sums_avx512(acc: &mut [f32], m: &[f32], rows: usize, stride: usize) {
    add_column_sums_portable(acc, m, rows, stride)
}

/// [`add_column_sums`] compiled for eight lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_column_sums_avx2(acc: &mut [f32], m: &[f32], rows: usize, stride: usize) {
    add_column_sums_portable(acc, m, rows, stride)
}

/// [`add_column_sums`] for the baseline instruction set.
#[inline(always)]
fn add_column_sums_portable(acc: &mut [f32], m: &[f32], rows: usize, stride: usize) {
    let n = acc.len();
    for r in 0..rows {
        acc.iter_mut().zip(&m[r * stride..r * stride + n]).for_each(|(a, v)| *a += v);
    }
}

/// The recurrent weights of a time loop's products (`B` of every step's product),
/// packed once into the panels of the register tile: `gemm`'s path for products of
/// few rows packs them again at every step.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Panels<'a> {
    /// The panels of every `KC`-deep slice, slice by slice, each `n.div_ceil(NR)`
    /// panels of `kc x NR` floats.
    data: &'a [f32],
    /// Rows of `B`.
    k: usize,
    /// Columns of `B`.
    n: usize,
}

/// The floats [`pack_panels`] writes for a `B` of `k` rows and `n` columns under this
/// instruction set, or `None` without a register tile (or if the count overflows).
fn panels_len(k: usize, n: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if isa().avx2() {
        let nr = if isa().avx512() { <Avx512 as Tile>::NR } else { <Avx2 as Tile>::NR };
        return n.div_ceil(nr).checked_mul(nr)?.checked_mul(k);
    }
    let _ = (k, n);
    None
}

/// Packs `b` into the front of `room` for [`step_product`], or returns `None` when
/// there is no register tile or `room` is too small.
fn pack_panels<'a>(b: MatRef<'_>, room: &'a mut [f32]) -> Option<Panels<'a>> {
    let len = panels_len(b.rows, b.cols)?;
    assert!(b.in_bounds(), "pack_panels: view out of bounds");
    let data = room.get_mut(..len)?;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has the tile's instruction set (`panels_len` returned a length);
    // `data` holds every panel (`panels_len`), the view lies inside its slice.
    unsafe {
        if isa().avx512() {
            pack_panels_avx512(b, data);
        } else {
            pack_panels_avx2(b, data);
        }
    }
    Some(Panels { data, k: b.rows, n: b.cols })
}

/// [`pack_panels`] for the AVX-512 tile.
///
/// # Safety
/// The CPU has AVX-512 F, AVX2 and FMA; as [`pack_with`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pack_panels_avx512(b: MatRef<'_>, data: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { pack_with::<Avx512>(b, data) }
}

/// [`pack_panels`] for the AVX2 tile.
///
/// # Safety
/// The CPU has AVX2 and FMA; as [`pack_with`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_panels_avx2(b: MatRef<'_>, data: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { pack_with::<Avx2>(b, data) }
}

/// Packs `b` into `data` as `gemm`'s blocked loops pack it, one panel per `KC`-deep slice
/// and `NR` columns.
///
/// # Safety
/// The CPU supports the tile; `b` lies inside its slice; `data` holds
/// `b.cols.div_ceil(NR) NR b.rows` floats.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn pack_with<T: Tile>(b: MatRef<'_>, data: &mut [f32]) {
    let (k, n) = (b.rows, b.cols);
    let width = n.div_ceil(T::NR) * T::NR;
    assert!(data.len() >= width * k, "pack_with: room for the panels");
    let mut k0 = 0;
    while k0 < k {
        let kc = T::KC.min(k - k0);
        let mut j0 = 0;
        while j0 < n {
            let nr = T::NR.min(n - j0);
            // SAFETY: the panel (`kc NR` floats at `k0 width + j0 kc`, at most
            // `width k`) is inside `data`; the block of `b` lies inside it.
            unsafe { T::pack(data.as_mut_ptr().add(k0 * width + j0 * kc), b, k0, kc, j0, nr) };
            j0 += nr;
        }
        k0 += kc;
    }
}

/// `C = A B + beta C` for `B` packed by [`pack_panels`]: the bits of
/// `gemm(1.0, a, B, beta, c, ldc)`, whose blocked loops it runs without packing. `A` has
/// from 2 to `MC` rows (one row is a matrix-vector product, more are blocked
/// differently; neither is taken here).
#[cfg(target_arch = "x86_64")]
fn panels_product(a: MatRef<'_>, b: Panels<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.rows, b.k, b.n);
    assert!(a.cols == k && a.in_bounds() && (2..=MC).contains(&m), "panels_product: A");
    let c_extent = (m - 1).checked_mul(ldc).and_then(|rows| rows.checked_add(n));
    assert!(c_extent.is_some_and(|end| end <= c.len()) && n <= ldc, "panels_product: C");
    assert!(panels_len(k, n).is_some_and(|len| len <= b.data.len()), "panels_product: panels");
    // SAFETY: `panels_len` returned a length: the CPU has the tile's instruction set,
    // and the checks above bound every view.
    unsafe {
        if isa().avx512() {
            panels_product_avx512(a, b, beta, c, ldc)
        } else {
            panels_product_avx2(a, b, beta, c, ldc)
        }
    }
}

/// [`panels_product`] with the AVX-512 tile.
///
/// # Safety
/// The CPU has AVX-512 F, AVX2 and FMA; as [`sweep_panels`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn panels_product_avx512(a: MatRef<'_>, b: Panels<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    // SAFETY: the caller's contract.
    unsafe { sweep_panels::<Avx512>(a, b, beta, c, ldc) }
}

/// [`panels_product`] with the AVX2 tile.
///
/// # Safety
/// The CPU has AVX2 and FMA; as [`sweep_panels`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn panels_product_avx2(a: MatRef<'_>, b: Panels<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    // SAFETY: the caller's contract.
    unsafe { sweep_panels::<Avx2>(a, b, beta, c, ldc) }
}

/// The loops of `gemm::blocked` for at most `MC` rows, over panels packed beforehand.
///
/// # Safety
/// The CPU supports the tile; `a` lies inside its slice, with `b.k` columns; the panels
/// were packed for `T`; `C`'s `a.rows` rows of `b.n` columns (stride `ldc`) lie inside `c`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sweep_panels<T: Tile>(a: MatRef<'_>, b: Panels<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.rows, b.k, b.n);
    let width = n.div_ceil(T::NR) * T::NR;
    let mut k0 = 0;
    while k0 < k {
        let kc = T::KC.min(k - k0);
        let beta = if k0 == 0 { beta } else { 1.0 };
        let mut j0 = 0;
        while j0 < n {
            let nr = T::NR.min(n - j0);
            // SAFETY: the panel lies inside `b.data`, columns `k0..k0 + kc` of A's rows
            // inside A, and the tiles' rows of columns `j0..j0 + nr` inside C (the
            // caller's contract).
            unsafe {
                let panel = b.data.as_ptr().add(k0 * width + j0 * kc);
                let a_at = a.data.as_ptr().add(k0 * a.cs);
                sweep::<T>((1.0, beta), a_at, (a.rs, a.cs, false), m, kc, panel, c.as_mut_ptr().add(j0), ldc, nr);
            }
            j0 += nr;
        }
        k0 += kc;
    }
}

/// `C = A B + beta C` by [`panels_product`] when `B` is packed and the product takes
/// `gemm`'s path for few rows on one thread (the same bits), else by `gemm`.
fn step_product(a: MatRef<'_>, b: MatRef<'_>, panels: Option<Panels<'_>>, beta: f32, c: &mut [f32], ldc: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = panels {
        assert!(p.k == b.rows && p.n == b.cols, "step_product: panels of another shape");
        #[cfg(feature = "threading")]
        let one_thread = a.rows.saturating_mul(p.k).saturating_mul(p.n) < crate::kernels::gemm::PARALLEL_MIN_FLOPS;
        #[cfg(not(feature = "threading"))]
        let one_thread = true;
        if (2..=MC).contains(&a.rows) && one_thread {
            return panels_product(a, p, beta, c, ldc);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = panels;
    gemm(1.0, a, b, beta, c, ldc)
}

/// `g += dz^T x` (`g` is `[G, C]` for `dz [N, G]`, `x [N, C]`): a weight gradient
/// summed over every sample and step. With a register tile and room for `G C` floats,
/// as the product
/// `g^T += x^T dz` into a transposed copy of `g`: its `C` rows (a hidden width, an
/// input width) take `gemm`'s path for few rows, which reads `x^T` in place, where `dz^T`
/// (`G` rows, over `MC` for a gated cell of 64 units) is packed from its columns. Each
/// element is the same chain of fused multiply-adds over the same `N` (each product's
/// operands swapped, its rounding the same): the same bits.
fn add_gradient_product(g: &mut [f32], dz: MatRef<'_>, x: MatRef<'_>, room: &mut [f32]) {
    let (gw, cols) = (dz.cols, x.cols);
    // With a register tile only: without one, large products go to `matrixmultiply`,
    // whose rounding may depend on the orientation.
    #[cfg(target_arch = "x86_64")]
    let few_rows = cols <= MC && isa().avx2();
    #[cfg(not(target_arch = "x86_64"))]
    let few_rows = false;
    let len = gw.checked_mul(cols).filter(|&len| len <= g.len());
    match len.and_then(|len| room.get_mut(..len)) {
        // One row or one column would be a matrix-vector product, rounded differently.
        Some(gt) if few_rows && cols >= 2 && gw >= 2 => {
            transpose(&g[..gw * cols], gw, cols, gt);
            gemm(1.0, x.t(), dz, 1.0, gt, gw);
            transpose(gt, cols, gw, &mut g[..gw * cols]);
        }
        _ => gemm(1.0, dz.t(), x, 1.0, g, cols),
    }
}

/// Writes the transpose of `src` (`[rows, cols]`) into `dst` (`[cols, rows]`).
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    for (i, row) in src.chunks_exact(cols).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            dst[j * rows + i] = v;
        }
    }
}

/// A `[rows, cols]` view of `data` with row stride `rs`.
#[inline]
fn strided(data: &[f32], rows: usize, cols: usize, rs: usize) -> MatRef<'_> {
    MatRef { data, rows, cols, rs, cs: 1 }
}

/// The time loop of one layer and direction of [`forward_train`], for `batch`
/// samples: `out`, `gates`, `extra`, `init` and `q` start at the first of them.
#[allow(clippy::too_many_arguments)]
fn forward_steps(
    cfg: &Config,
    w: &Weights<'_>,
    d: usize,
    batch: usize,
    out: &mut [f32],
    gates: &mut [f32],
    extra: &mut [f32],
    init: &[f32],
    q: &mut [f32],
    hp: &mut [f32],
    cp: &mut [f32],
    panels: Option<Panels<'_>>,
) {
    let (t, hd, gh) = (cfg.steps, cfg.hidden, cfg.gate_width());
    let dh = cfg.directions * hd;
    let one = Layout::of(cfg);
    let lstm = cfg.cell == CellKind::Lstm;
    for s in 0..t {
        let ti = cfg.time(d, s);
        let tp = if s == 0 { 0 } else { cfg.time(d, s - 1) };
        // Q = H_prev W_hh^T + b_hh: [B, G H].
        let h_prev = if s == 0 {
            strided(init, batch, hd, one.init)
        } else {
            strided(&out[tp * dh + d * hd..], batch, hd, t * dh)
        };
        step_product(h_prev, MatRef::new(w.hh, gh, hd).t(), panels, 0.0, q, gh);
        add_bias_rows(q, w.b_hh);
        for b in 0..batch {
            if s == 0 {
                hp.copy_from_slice(&init[b * one.init..][..hd]);
                cp.copy_from_slice(&init[b * one.init + hd..][..hd]);
            } else {
                hp.copy_from_slice(&out[b * one.out + tp * dh + d * hd..][..hd]);
                if lstm {
                    cp.copy_from_slice(&extra[(b * t + tp) * hd..][..hd]);
                }
            }
            let g = &mut gates[(b * t + ti) * gh..][..gh];
            let qb = &q[b * gh..(b + 1) * gh];
            let h = &mut out[b * one.out + ti * dh + d * hd..][..hd];
            let e: &mut [f32] =
                if lstm || cfg.cell == CellKind::Gru { &mut extra[(b * t + ti) * hd..][..hd] } else { &mut [] };
            train_cell(cfg.cell, g, qb, hp, cp, h, e);
        }
    }
}

/// The parts (threads) the time loops of a batch are split into: every part takes at
/// least two samples (a one-row product would be a matrix-vector product, rounded
/// differently), the work (`per_sample` multiply-adds of the recurrent products) must
/// be worth it, and the scratch space must hold `room` pairs of state buffers.
fn step_parts(batch: usize, per_sample: usize, room: usize) -> usize {
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    {
        #[cfg(test)]
        if tests::ONE_THREAD.load(core::sync::atomic::Ordering::Relaxed) {
            return 1;
        }
        let mut parts = crate::kernels::gemm::threads().min(room);
        if parts < 2 || batch * per_sample < PARALLEL_MIN_MACS || !isa().avx2() {
            return 1;
        }
        while parts > 1 && (batch < 2 * parts || batch.saturating_sub((parts - 1) * batch.div_ceil(parts)) < 2) {
            parts -= 1;
        }
        parts
    }
    #[cfg(not(all(feature = "threading", target_arch = "x86_64")))]
    {
        let _ = (batch, per_sample, room);
        1
    }
}

/// Batches whose recurrent products have at least this many multiply-adds run their
/// time loops on several threads (the `threading` feature), by blocks of samples;
/// every value is computed by the same operations as on one thread.
#[cfg(any(feature = "threading", feature = "internals"))]
pub const PARALLEL_MIN_MACS: usize = 1 << 21;

/// Training forward over a batch `x [B, T, F]`: writes `y` and keeps in `cache`
/// (`B * cache_len` floats) what [`backward`] needs. `initial` and `final_state` as in
/// [`forward`](super::forward); `scratch` holds `B * scratch_len` floats.
#[allow(clippy::too_many_arguments)]
pub fn forward_train(
    cfg: &Config,
    params: &[f32],
    x: &[f32],
    initial: Option<States<'_>>,
    y: &mut [f32],
    cache: &mut [f32],
    scratch: &mut [f32],
    final_state: Option<StatesMut<'_>>,
) {
    let batch = batch_of(cfg, x, y);
    let (t, hd, gh) = (cfg.steps, cfg.hidden, cfg.gate_width());
    let (nl, nd) = (cfg.layers, cfg.directions);
    let dh = nd * hd;
    let one = Layout::of(cfg);
    let lay = one.times(batch);
    let lstm = cfg.cell == CellKind::Lstm;
    let (q, states) = scratch.split_at_mut(batch * gh);
    // The packed recurrent weights at the end of the scratch space when it has room for
    // them beside one pair of state buffers.
    let room_len = panels_len(hd, gh).filter(|&len| len.saturating_add(2 * hd) <= states.len()).unwrap_or(0);
    let (states, room) = states.split_at_mut(states.len() - room_len);
    let parts = step_parts(batch, t * gh * hd, states.len() / (2 * hd));

    for l in 0..nl {
        let (below, here) = cache.split_at_mut(l * lay.layer);
        let input: &[f32] = if l == 0 { x } else { &below[(l - 1) * lay.layer..][..lay.out] };
        let iw = cfg.input_width(l);
        let (out, dirs) = here[..lay.layer].split_at_mut(lay.out);
        for d in 0..nd {
            let w = cfg.weights(params, l, d);
            let (gates, rest) = dirs[d * lay.dir..(d + 1) * lay.dir].split_at_mut(lay.gates);
            let (extra, init) = rest.split_at_mut(lay.extra);
            for b in 0..batch {
                let si = (b * nl * nd + l * nd + d) * hd;
                let (h0, c0) = init[b * one.init..(b + 1) * one.init].split_at_mut(hd);
                match initial {
                    Some(s) => {
                        h0.copy_from_slice(&s.h[si..si + hd]);
                        if lstm {
                            c0.copy_from_slice(&s.c[si..si + hd]);
                        } else {
                            c0.fill(0.0);
                        }
                    }
                    None => {
                        h0.fill(0.0);
                        c0.fill(0.0);
                    }
                }
            }
            // P = X W_ih^T + b_ih for every sample and step at once: [B T, G H].
            gemm(1.0, MatRef::new(input, batch * t, iw), MatRef::new(w.ih, gh, iw).t(), 0.0, gates, gh);
            add_bias_rows(gates, w.b_ih);
            let init: &[f32] = init;
            let panels = pack_panels(MatRef::new(w.hh, gh, hd).t(), &mut *room);
            if parts < 2 {
                let (hp, cp) = states[..2 * hd].split_at_mut(hd);
                forward_steps(cfg, &w, d, batch, out, gates, extra, init, q, hp, cp, panels);
                continue;
            }
            #[cfg(all(feature = "threading", target_arch = "x86_64"))]
            {
                // Samples are independent through time: each part runs every step for a
                // block of them (its rows of every product, its own `h`, `c` buffers).
                let step = batch.div_ceil(parts);
                let ptr = |v: &mut [f32]| Output(v.as_mut_ptr());
                let (out_at, gates_at, extra_at) = (ptr(out), ptr(gates), ptr(extra));
                let (q_at, states_at) = (ptr(q), ptr(states));
                let (gate_rows, extra_rows) = (t * gh, if extra.is_empty() { 0 } else { t * hd });
                let run = |part: usize| {
                    let (b0, b1) = (part * step, ((part + 1) * step).min(batch));
                    let n = b1 - b0;
                    // SAFETY: the parts write the disjoint blocks of samples `b0..b1` of
                    // `out`, `gates`, `extra` and `q`, and their own `2 H` floats of
                    // `states` (`parts * 2 H <= states.len()`). Every block lies in its
                    // slice: each holds `batch` samples (sliced to `Layout::times(batch)`,
                    // whose products are checked) and `b1 <= batch`.
                    unsafe {
                        let slice =
                            |at: Output, from: usize, len: usize| core::slice::from_raw_parts_mut(at.at(from), len);
                        let (hp, cp) = slice(states_at, part * 2 * hd, 2 * hd).split_at_mut(hd);
                        forward_steps(
                            cfg,
                            &w,
                            d,
                            n,
                            slice(out_at, b0 * one.out, n * one.out),
                            slice(gates_at, b0 * gate_rows, n * gate_rows),
                            slice(extra_at, b0 * extra_rows, n * extra_rows),
                            &init[b0 * one.init..b1 * one.init],
                            slice(q_at, b0 * gh, n * gh),
                            hp,
                            cp,
                            panels,
                        );
                    }
                };
                crate::kernels::parallel::for_each_part(parts, &run);
            }
        }
    }

    let last = &cache[(nl - 1) * lay.layer..][..lay.out];
    let ol = cfg.output_len();
    for b in 0..batch {
        write_output(cfg, &last[b * one.out..(b + 1) * one.out], &mut y[b * ol..(b + 1) * ol]);
    }
    if let Some(fs) = final_state {
        for l in 0..nl {
            let layer = &cache[l * lay.layer..(l + 1) * lay.layer];
            for d in 0..nd {
                let tl = cfg.time(d, t - 1);
                let extra = &layer[lay.out + d * lay.dir + lay.gates..][..lay.extra];
                for b in 0..batch {
                    let si = (b * nl * nd + l * nd + d) * hd;
                    fs.h[si..si + hd].copy_from_slice(&layer[b * one.out + tl * dh + d * hd..][..hd]);
                    if lstm {
                        fs.c[si..si + hd].copy_from_slice(&extra[(b * t + tl) * hd..][..hd]);
                    }
                }
            }
        }
    }
}

/// One training step of one sample: `g` holds the input projections `p` on entry and
/// the gate activations on exit; writes the new `h`, and into `e` the new cell state
/// (LSTM) or `q_n` (GRU).
#[inline]
fn train_cell(cell: CellKind, g: &mut [f32], q: &[f32], hp: &[f32], cp: &[f32], h: &mut [f32], e: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match isa() {
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
        Isa::Avx512 if h.len() >= AVX512_MIN_UNITS => return unsafe { train_cell_avx512(cell, g, q, hp, cp, h, e) },
        // SAFETY: the CPU has AVX2 and FMA (every `Isa` above `Portable` has them).
        Isa::Avx2Fma | Isa::Avx512 => return unsafe { train_cell_avx2(cell, g, q, hp, cp, h, e) },
        Isa::Portable | Isa::Neon => {}
    }
    train_cell_lanes::<LANES>(cell, g, q, hp, cp, h, e)
}

/// Units from which the AVX-512 training cells are used: one 16-lane vector per gate.
#[cfg(target_arch = "x86_64")]
const AVX512_MIN_UNITS: usize = 16;

/// [`train_cell`] compiled for sixteen lanes with `vfmadd`, [`WIDE_LANES`] units per
/// block. The same operations on every unit: the same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn train_cell_avx512(
    cell: CellKind,
    g: &mut [f32],
    q: &[f32],
    hp: &[f32],
    cp: &[f32],
    h: &mut [f32],
    e: &mut [f32],
) {
    train_cell_lanes::<WIDE_LANES>(cell, g, q, hp, cp, h, e)
}

/// [`train_cell`] compiled for eight lanes with `vfmadd` (the same operations: the same
/// results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn train_cell_avx2(
    cell: CellKind,
    g: &mut [f32],
    q: &[f32],
    hp: &[f32],
    cp: &[f32],
    h: &mut [f32],
    e: &mut [f32],
) {
    train_cell_lanes::<LANES>(cell, g, q, hp, cp, h, e)
}

/// Units per block of the LSTM training cell: one AVX2 vector.
const LANES: usize = 8;

/// Units per block of the AVX-512 LSTM training cells: one 16-lane vector (blocks of
/// two vectors, two independent chains per value, are slower on AMD Zen 4).
#[cfg(target_arch = "x86_64")]
const WIDE_LANES: usize = 16;

/// [`train_cell`] by blocks of `L` units (then one unit at a time): the same operations
/// on every unit whatever `L`.
#[inline(always)]
fn train_cell_lanes<const L: usize>(
    cell: CellKind,
    g: &mut [f32],
    q: &[f32],
    hp: &[f32],
    cp: &[f32],
    h: &mut [f32],
    e: &mut [f32],
) {
    let hd = h.len();
    match cell {
        CellKind::RnnTanh | CellKind::RnnRelu => {
            let relu = cell == CellKind::RnnRelu;
            let (g, q) = (&mut g[..hd], &q[..hd]);
            for j in 0..hd {
                let v = rnn_unit(relu, g[j], q[j]);
                g[j] = v;
                h[j] = v;
            }
        }
        CellKind::Lstm => {
            let [gi, gf, gg, go] = blocks_mut::<4>(g, hd);
            let [qi, qf, qg, qo] = blocks::<4>(q, hd);
            let (cp, e) = (&cp[..hd], &mut e[..hd]);
            // Blocks of `L` units computed into local arrays, then stored: a loop of a
            // known length over values that alias nothing, which the compiler turns
            // into whole vectors.
            let mut j0 = 0;
            while j0 + L <= hd {
                let r = j0..j0 + L;
                let mut out = [[0.0f32; L]; 6];
                {
                    let (gi, gf, gg, go) = (&gi[r.clone()], &gf[r.clone()], &gg[r.clone()], &go[r.clone()]);
                    let (qi, qf, qg, qo) = (&qi[r.clone()], &qf[r.clone()], &qg[r.clone()], &qo[r.clone()]);
                    let cp = &cp[r.clone()];
                    for k in 0..L {
                        let u = lstm_unit([gi[k], gf[k], gg[k], go[k]], [qi[k], qf[k], qg[k], qo[k]], cp[k]);
                        for (o, u) in out.iter_mut().zip(u) {
                            o[k] = u;
                        }
                    }
                }
                gi[r.clone()].copy_from_slice(&out[0]);
                gf[r.clone()].copy_from_slice(&out[1]);
                gg[r.clone()].copy_from_slice(&out[2]);
                go[r.clone()].copy_from_slice(&out[3]);
                e[r.clone()].copy_from_slice(&out[4]);
                h[r].copy_from_slice(&out[5]);
                j0 += L;
            }
            for j in j0..hd {
                let u = lstm_unit([gi[j], gf[j], gg[j], go[j]], [qi[j], qf[j], qg[j], qo[j]], cp[j]);
                (gi[j], gf[j], gg[j], go[j]) = (u[0], u[1], u[2], u[3]);
                e[j] = u[4];
                h[j] = u[5];
            }
        }
        CellKind::Gru => {
            let [gr, gz, gn] = blocks_mut::<3>(g, hd);
            let [qr, qz, qn] = blocks::<3>(q, hd);
            let (hp, e) = (&hp[..hd], &mut e[..hd]);
            for j in 0..hd {
                let u = gru_unit([gr[j], gz[j], gn[j]], [qr[j], qz[j], qn[j]], hp[j]);
                (gr[j], gz[j], gn[j]) = (u[0], u[1], u[2]);
                e[j] = qn[j];
                h[j] = u[3];
            }
        }
    }
}

/// The backward of one LSTM step of one sample: from the gate activations `g` (`[4 H]`),
/// the cell states `c` and `c_prev`, the gradient `dout + dh` of `h` and `dc` of `c`,
/// writes the gradients of the gate pre-activations into `dg` and the gradient of
/// `c_prev` into `dc`.
#[inline]
fn lstm_cell_backward(g: &[f32], c: &[f32], c_prev: &[f32], dout: &[f32], dh: &[f32], dc: &mut [f32], dg: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match isa() {
        Isa::Avx512 if dc.len() >= AVX512_MIN_UNITS => {
            // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
            return unsafe { lstm_cell_backward_avx512(g, c, c_prev, dout, dh, dc, dg) };
        }
        // SAFETY: the CPU has AVX2 and FMA (every `Isa` above `Portable` has them).
        Isa::Avx2Fma | Isa::Avx512 => return unsafe { lstm_cell_backward_avx2(g, c, c_prev, dout, dh, dc, dg) },
        Isa::Portable | Isa::Neon => {}
    }
    lstm_cell_backward_portable(g, c, c_prev, dout, dh, dc, dg)
}

/// [`lstm_cell_backward`] compiled for sixteen lanes with `vfmadd` (the same operations:
/// the same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn lstm_cell_backward_avx512(
    g: &[f32],
    c: &[f32],
    c_prev: &[f32],
    dout: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dg: &mut [f32],
) {
    lstm_cell_backward_lanes::<WIDE_LANES>(g, c, c_prev, dout, dh, dc, dg)
}

/// [`lstm_cell_backward`] compiled for eight lanes with `vfmadd` (the same operations: the same
/// results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lstm_cell_backward_avx2(
    g: &[f32],
    c: &[f32],
    c_prev: &[f32],
    dout: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dg: &mut [f32],
) {
    lstm_cell_backward_portable(g, c, c_prev, dout, dh, dc, dg)
}

/// [`lstm_cell_backward`] for the baseline instruction set.
#[inline(always)]
fn lstm_cell_backward_portable(
    g: &[f32],
    c: &[f32],
    c_prev: &[f32],
    dout: &[f32],
    dhb: &[f32],
    dcb: &mut [f32],
    dg: &mut [f32],
) {
    lstm_cell_backward_lanes::<LANES>(g, c, c_prev, dout, dhb, dcb, dg)
}

/// The backward of one LSTM unit: from the gate activations `i, f, g, o`, the cell
/// states `c`, `c_prev`, the gradients `dout + dh` of `h` and `dc` of `c`, returns the
/// gradients of the four gate pre-activations and of `c_prev`.
#[inline(always)]
fn lstm_unit_backward([i, f, g, o]: [f32; 4], c: f32, c_prev: f32, dout: f32, dh: f32, dc: f32) -> [f32; 5] {
    let dh = dout + dh;
    let tc = tanh(c);
    let dcell = dc + dh * o * (1.0 - tc * tc);
    [
        dcell * g * i * (1.0 - i),
        dcell * c_prev * f * (1.0 - f),
        dcell * i * (1.0 - g * g),
        dh * tc * o * (1.0 - o),
        dcell * f,
    ]
}

/// [`lstm_cell_backward`] by blocks of `L` units (then one unit at a time): the same
/// operations on every unit whatever `L`.
#[inline(always)]
fn lstm_cell_backward_lanes<const L: usize>(
    g: &[f32],
    c: &[f32],
    c_prev: &[f32],
    dout: &[f32],
    dhb: &[f32],
    dcb: &mut [f32],
    dg: &mut [f32],
) {
    let hd = dcb.len();
    let (c, c_prev, dout, dhb) = (&c[..hd], &c_prev[..hd], &dout[..hd], &dhb[..hd]);
    let [gi, gf, gg, go] = blocks::<4>(g, hd);
    let [di, df, dgg, d_o] = blocks_mut::<4>(dg, hd);
    // Blocks of `L` units computed into local arrays, then stored (as in
    // `train_cell_lanes`): whole vectors, no unit left to a scalar remainder loop.
    let mut j0 = 0;
    while j0 + L <= hd {
        let r = j0..j0 + L;
        let mut out = [[0.0f32; L]; 5];
        {
            let (gi, gf, gg, go) = (&gi[r.clone()], &gf[r.clone()], &gg[r.clone()], &go[r.clone()]);
            let (c, c_prev, dout, dhb, dcb) =
                (&c[r.clone()], &c_prev[r.clone()], &dout[r.clone()], &dhb[r.clone()], &dcb[r.clone()]);
            for k in 0..L {
                let u = lstm_unit_backward([gi[k], gf[k], gg[k], go[k]], c[k], c_prev[k], dout[k], dhb[k], dcb[k]);
                for (o, u) in out.iter_mut().zip(u) {
                    o[k] = u;
                }
            }
        }
        di[r.clone()].copy_from_slice(&out[0]);
        df[r.clone()].copy_from_slice(&out[1]);
        dgg[r.clone()].copy_from_slice(&out[2]);
        d_o[r.clone()].copy_from_slice(&out[3]);
        dcb[r].copy_from_slice(&out[4]);
        j0 += L;
    }
    for j in j0..hd {
        let u = lstm_unit_backward([gi[j], gf[j], gg[j], go[j]], c[j], c_prev[j], dout[j], dhb[j], dcb[j]);
        (di[j], df[j], dgg[j], d_o[j], dcb[j]) = (u[0], u[1], u[2], u[3], u[4]);
    }
}

/// The time loop of one layer and direction of [`backward`], for `batch` samples:
/// every slice starts at the first of them. `dc` holds the gradient of the final cell
/// state on entry (LSTM) and that of the initial one on exit.
#[allow(clippy::too_many_arguments)]
fn backward_steps(
    cfg: &Config,
    w: &Weights<'_>,
    d: usize,
    batch: usize,
    gates: &[f32],
    extra: &[f32],
    init: &[f32],
    out: &[f32],
    cur: &[f32],
    dp: &mut [f32],
    dq: &mut [f32],
    carry: &mut [f32],
    dc: &mut [f32],
    panels: Option<Panels<'_>>,
) {
    let (t, hd, gh) = (cfg.steps, cfg.hidden, cfg.gate_width());
    let dh = cfg.directions * hd;
    let one = Layout::of(cfg);
    let gru = cfg.cell == CellKind::Gru;
    // `dc` enters holding the gradient of the final cell state (zeros without one).
    carry.fill(0.0);
    for s in (0..t).rev() {
        let ti = cfg.time(d, s);
        let tp = if s == 0 { 0 } else { cfg.time(d, s - 1) };
        for b in 0..batch {
            let g = &gates[(b * t + ti) * gh..][..gh];
            let dg = &mut dp[(b * t + ti) * gh..][..gh];
            let dhb = &mut carry[b * hd..][..hd];
            let dcb = &mut dc[b * hd..][..hd];
            let dout = &cur[b * one.out + ti * dh + d * hd..][..hd];
            match cfg.cell {
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    let relu = cfg.cell == CellKind::RnnRelu;
                    for j in 0..hd {
                        let dh = dout[j] + dhb[j];
                        let v = g[j];
                        dg[j] = if relu {
                            if v > 0.0 {
                                dh
                            } else {
                                0.0
                            }
                        } else {
                            dh * (1.0 - v * v)
                        };
                    }
                }
                CellKind::Lstm => {
                    let c = &extra[(b * t + ti) * hd..][..hd];
                    let c_prev =
                        if s == 0 { &init[b * one.init + hd..][..hd] } else { &extra[(b * t + tp) * hd..][..hd] };
                    lstm_cell_backward(g, c, c_prev, dout, dhb, dcb, dg);
                }
                CellKind::Gru => {
                    let qn = &extra[(b * t + ti) * hd..][..hd];
                    let h_prev =
                        if s == 0 { &init[b * one.init..][..hd] } else { &out[b * one.out + tp * dh + d * hd..][..hd] };
                    let dqb = &mut dq[(b * t + ti) * gh..][..gh];
                    let [gr, gz, gn] = blocks::<3>(g, hd);
                    let [dgr, dgz, dgn] = blocks_mut::<3>(dg, hd);
                    let [dqr, dqz, dqn] = blocks_mut::<3>(dqb, hd);
                    for j in 0..hd {
                        let (r, z, n) = (gr[j], gz[j], gn[j]);
                        let dh = dout[j] + dhb[j];
                        let dan = dh * (1.0 - z) * (1.0 - n * n);
                        let dar = dan * qn[j] * r * (1.0 - r);
                        let daz = dh * (h_prev[j] - n) * z * (1.0 - z);
                        (dgr[j], dgz[j], dgn[j]) = (dar, daz, dan);
                        (dqr[j], dqz[j], dqn[j]) = (dar, daz, dan * r);
                        // The direct path h_prev -> h; the matmul path is added below.
                        dhb[j] = dh * z;
                    }
                }
            }
        }
        // The gradient of the recurrent projection at this step, [B, G H]
        // (for LSTM and RNN the same as that of the input projection).
        let dq_step = strided(if gru { &dq[ti * gh..] } else { &dp[ti * gh..] }, batch, gh, t * gh);
        let cut = cfg.truncate > 0 && s > 0 && s % cfg.truncate == 0;
        if cut {
            carry.fill(0.0);
            dc.fill(0.0);
        } else {
            // dh_prev = dQ W_hh (+ the GRU's direct path already in `carry`).
            let beta = if gru { 1.0 } else { 0.0 };
            step_product(dq_step, MatRef::new(w.hh, gh, hd), panels, beta, carry, hd);
        }
    }
}

/// Backpropagation through time for the last [`forward_train`] over `x`: from `dy`
/// (the gradient of the output) and, when given, `d_final` (the gradients of the
/// final states `h_n` and `c_n`, `[B, L D, H]` as [`forward_train`]'s `final_state`;
/// `c` is read for an LSTM only), adds the parameter gradients into `grads`, writes
/// `dL/dx` into `dx` when given and `dL/dh_0`, `dL/dc_0` into `d_initial` when given.
/// `scratch` holds `B * scratch_len` floats.
///
/// Truncation (`cfg.truncate = k > 0`): each direction's sequence is cut, in its
/// processing order, into chunks of `k` steps, and no gradient flows through the
/// recurrent state from one chunk into the previous one, exactly as if the state were
/// detached (`h.detach()` in PyTorch) every `k` steps. The weights still receive the
/// gradient of every step; the initial state receives gradient from the first chunk
/// only.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    cfg: &Config,
    params: &[f32],
    x: &[f32],
    cache: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    grads: &mut [f32],
    scratch: &mut [f32],
    mut d_initial: Option<StatesMut<'_>>,
    d_final: Option<States<'_>>,
) {
    let (t, f, hd, gh) = (cfg.steps, cfg.features, cfg.hidden, cfg.gate_width());
    let Some(per) = t.checked_mul(f).filter(|&per| per > 0) else {
        panic!("recurrent {cfg:?}: a sample is empty or has more floats than a usize counts");
    };
    let batch = x.len() / per;
    let (nl, nd) = (cfg.layers, cfg.directions);
    let dh = nd * hd;
    let one = Layout::of(cfg);
    let lay = one.times(batch);
    let lstm = cfg.cell == CellKind::Lstm;
    let gru = cfg.cell == CellKind::Gru;

    let (dp, rest) = scratch.split_at_mut(batch * t * gh);
    let (dq, rest) = rest.split_at_mut(batch * t * gh);
    // The gradients of the recurrent projections are those of the input projections
    // but for the GRU: their room holds the packed recurrent weights instead.
    let (dq, room): (&mut [f32], &mut [f32]) = if gru { (dq, &mut []) } else { (&mut [], dq) };
    let (seq_a, rest) = rest.split_at_mut(batch * t * dh);
    let (seq_b, rest) = rest.split_at_mut(batch * t * dh);
    let (h_prev_all, rest) = rest.split_at_mut(batch * t * hd);
    let (carry, rest) = rest.split_at_mut(batch * hd);
    let dc = &mut rest[..batch * hd];

    // The gradient of the last layer's output sequence, from dy.
    {
        let last = &cache[(nl - 1) * lay.layer..][..lay.out];
        let ow = cfg.output_width();
        if !cfg.return_sequences {
            seq_a.fill(0.0);
        }
        for b in 0..batch {
            let hs = &last[b * one.out..(b + 1) * one.out];
            let ds = &mut seq_a[b * one.out..(b + 1) * one.out];
            if cfg.return_sequences {
                let dyb = &dy[b * t * ow..(b + 1) * t * ow];
                for ti in 0..t {
                    let row = &hs[ti * dh..(ti + 1) * dh];
                    let g = &dyb[ti * ow..(ti + 1) * ow];
                    if nd == 1 {
                        ds[ti * dh..(ti + 1) * dh].copy_from_slice(g);
                    } else {
                        merge_backward(cfg.merge, g, &row[..hd], &row[hd..], &mut ds[ti * dh..(ti + 1) * dh]);
                    }
                }
            } else {
                let g = &dy[b * ow..(b + 1) * ow];
                if nd == 1 {
                    ds[(t - 1) * dh..][..hd].copy_from_slice(g);
                } else {
                    // Forward direction's final state is at t - 1, backward's at 0.
                    let (hf, hb) = (&hs[(t - 1) * dh..][..hd], &hs[hd..2 * hd]);
                    for j in 0..hd {
                        let (gf, gb) = match cfg.merge {
                            Merge::Concat => (g[j], g[hd + j]),
                            Merge::Sum => (g[j], g[j]),
                            Merge::Mean => (0.5 * g[j], 0.5 * g[j]),
                            Merge::Multiply => (g[j] * hb[j], g[j] * hf[j]),
                        };
                        ds[(t - 1) * dh + j] = gf;
                        ds[hd + j] = gb;
                    }
                }
            }
        }
    }

    let mut dx = dx;
    for l in (0..nl).rev() {
        let (cur, below): (&mut [f32], &mut [f32]) =
            if (nl - 1 - l) % 2 == 0 { (&mut *seq_a, &mut *seq_b) } else { (&mut *seq_b, &mut *seq_a) };
        let layer = &cache[l * lay.layer..(l + 1) * lay.layer];
        let input: &[f32] = if l == 0 { x } else { &cache[(l - 1) * lay.layer..][..lay.out] };
        let iw = cfg.input_width(l);
        let out = &layer[..lay.out];
        for d in 0..nd {
            let w = cfg.weights(params, l, d);
            let go = cfg.param_offset(l, d);
            let (gw_ih, rest) = grads[go..go + cfg.direction_params(l)].split_at_mut(gh * iw);
            let (gw_hh, rest) = rest.split_at_mut(gh * hd);
            let (gb_ih, gb_hh) = rest.split_at_mut(gh);
            let dir = &layer[lay.out + d * lay.dir..][..lay.dir];
            let (gates, rest) = dir.split_at(lay.gates);
            let (extra, init) = rest.split_at(lay.extra);
            // The gradient of the final state: `h_n` is this direction's output at its
            // last step (in processing order), `c_n` enters the time loop in `dc`.
            dc.fill(0.0);
            if let Some(fin) = d_final {
                let tl = cfg.time(d, t - 1);
                for b in 0..batch {
                    let si = (b * nl * nd + l * nd + d) * hd;
                    let at = &mut cur[b * one.out + tl * dh + d * hd..][..hd];
                    at.iter_mut().zip(&fin.h[si..si + hd]).for_each(|(g, v)| *g += v);
                    if lstm {
                        dc[b * hd..(b + 1) * hd].copy_from_slice(&fin.c[si..si + hd]);
                    }
                }
            }
            let parts = step_parts(batch, t * gh * hd, usize::MAX);
            let panels = pack_panels(MatRef::new(w.hh, gh, hd), &mut *room);
            if parts < 2 {
                backward_steps(cfg, &w, d, batch, gates, extra, init, out, cur, dp, dq, carry, dc, panels);
            }
            #[cfg(all(feature = "threading", target_arch = "x86_64"))]
            if parts > 1 {
                // Samples are independent through time: each part runs every step for a
                // block of them (its rows of every product).
                let step = batch.div_ceil(parts);
                let ptr = |v: &mut [f32]| Output(v.as_mut_ptr());
                let (dp_at, dq_at, carry_at, dc_at) = (ptr(dp), ptr(dq), ptr(carry), ptr(dc));
                let (gate_rows, extra_rows) = (t * gh, if extra.is_empty() { 0 } else { t * hd });
                let cur: &[f32] = cur;
                let run = |part: usize| {
                    let (b0, b1) = (part * step, ((part + 1) * step).min(batch));
                    let n = b1 - b0;
                    // SAFETY: the parts write the disjoint blocks of samples `b0..b1` of
                    // `dp`, `dq` (the GRU's; empty and not sliced for other cells), `carry`
                    // and `dc`, each sliced from `scratch` to hold `batch` samples (products
                    // bounded by `Layout::times(batch)`, checked), and `b1 <= batch`.
                    unsafe {
                        let slice =
                            |at: Output, from: usize, len: usize| core::slice::from_raw_parts_mut(at.at(from), len);
                        backward_steps(
                            cfg,
                            &w,
                            d,
                            n,
                            &gates[b0 * gate_rows..b1 * gate_rows],
                            &extra[b0 * extra_rows..b1 * extra_rows],
                            &init[b0 * one.init..b1 * one.init],
                            &out[b0 * one.out..b1 * one.out],
                            &cur[b0 * one.out..b1 * one.out],
                            slice(dp_at, b0 * gate_rows, n * gate_rows),
                            if gru { slice(dq_at, b0 * gate_rows, n * gate_rows) } else { &mut [] },
                            slice(carry_at, b0 * hd, n * hd),
                            slice(dc_at, b0 * hd, n * hd),
                            panels,
                        );
                    }
                };
                crate::kernels::parallel::for_each_part(parts, &run);
            }
            // The hidden state entering every step, [B T, H], for one product over all steps:
            // dW_hh += dQ^T H_prev; db_hh += sum dQ.
            for b in 0..batch {
                for s in 0..t {
                    let ti = cfg.time(d, s);
                    let src = if s == 0 {
                        &init[b * one.init..][..hd]
                    } else {
                        &out[b * one.out + cfg.time(d, s - 1) * dh + d * hd..][..hd]
                    };
                    h_prev_all[(b * t + ti) * hd..][..hd].copy_from_slice(src);
                }
            }
            let dq_all: &[f32] = if gru { dq } else { dp };
            let h_prev_m = MatRef::new(h_prev_all, batch * t, hd);
            add_gradient_product(gw_hh, MatRef::new(dq_all, batch * t, gh), h_prev_m, &mut *room);
            add_column_sums(gb_hh, dq_all, batch * t, gh);
            if let Some(di) = d_initial.as_mut() {
                for b in 0..batch {
                    let si = (b * nl * nd + l * nd + d) * hd;
                    di.h[si..si + hd].copy_from_slice(&carry[b * hd..(b + 1) * hd]);
                    if lstm {
                        di.c[si..si + hd].copy_from_slice(&dc[b * hd..(b + 1) * hd]);
                    }
                }
            }
            // dW_ih += dP^T X; db_ih += sum dP; dX (+)= dP W_ih.
            let dpm = MatRef::new(dp, batch * t, gh);
            add_gradient_product(gw_ih, dpm, MatRef::new(input, batch * t, iw), &mut *room);
            add_column_sums(gb_ih, dp, batch * t, gh);
            let beta = if d == 0 { 0.0 } else { 1.0 };
            if l > 0 {
                gemm(1.0, dpm, MatRef::new(w.ih, gh, iw), beta, below, iw);
            } else if let Some(dx) = dx.as_deref_mut() {
                gemm(1.0, dpm, MatRef::new(w.ih, gh, iw), beta, dx, iw);
            }
        }
    }
}

#[cfg(all(test, feature = "threading", target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Makes [`step_parts`] choose one thread (for the comparison below).
    pub(super) static ONE_THREAD: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

    /// The time loops split between threads give the one-thread results bit for bit,
    /// forward and backward.
    #[test]
    fn threads_give_the_same_bits() {
        if crate::kernels::gemm::threads() < 2 || !isa().avx2() {
            eprintln!("one thread (or no AVX2): nothing to compare");
            return;
        }
        for (cell, directions) in [(CellKind::Lstm, 1), (CellKind::Gru, 2), (CellKind::RnnTanh, 1)] {
            let cfg = Config {
                cell,
                steps: 64,
                features: 5,
                hidden: 64,
                layers: 2,
                directions,
                merge: Merge::Concat,
                return_sequences: true,
                truncate: 0,
            };
            let batch = 10;
            assert!(step_parts(batch, cfg.steps * cfg.gate_width() * cfg.hidden, usize::MAX) > 1);
            let value = |i: usize, s: usize| ((i * s + 3) % 29) as f32 * 0.04 - 0.55;
            let params: Vec<f32> = (0..cfg.params()).map(|i| value(i, 13) * 0.3).collect();
            let x: Vec<f32> = (0..batch * cfg.steps * cfg.features).map(|i| value(i, 7)).collect();
            let out = cfg.output_len();
            let run = |one_thread: bool| {
                ONE_THREAD.store(one_thread, core::sync::atomic::Ordering::Relaxed);
                let n = batch;
                let (mut y, mut cache) = (vec![0.0; n * out], vec![0.0; n * cfg.cache_len()]);
                let mut scratch = vec![0.0; n * cfg.scratch_len()];
                forward_train(&cfg, &params, &x, None, &mut y, &mut cache, &mut scratch, None);
                let dy: Vec<f32> = (0..y.len()).map(|i| value(i, 3)).collect();
                let (mut dx, mut grads) = (vec![0.0; x.len()], vec![0.0; params.len()]);
                backward(&cfg, &params, &x, &cache, &dy, Some(&mut dx), &mut grads, &mut scratch, None, None);
                ONE_THREAD.store(false, core::sync::atomic::Ordering::Relaxed);
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(&y), bits(&dx), bits(&grads))
            };
            let (split, one) = (run(false), run(true));
            assert_eq!(split.0, one.0, "{cell:?}: output");
            assert_eq!(split.1, one.1, "{cell:?}: input gradient");
            assert_eq!(split.2, one.2, "{cell:?}: parameter gradients");
        }
    }
}

#[cfg(all(test, feature = "std", target_arch = "x86_64"))]
mod panel_tests {
    use super::*;

    /// The weight gradient through the transposed product equals `g += dz^T x` by
    /// `gemm` bit for bit: samples across `KC` slices, widths around the tiles' and over
    /// `MC`, one column (`gemm` alone), room too small (`gemm` alone).
    #[test]
    fn gradient_product_equals_gemm() {
        let value = |i: usize, s: usize| ((i * s + 1) % 37) as f32 * 0.05 - 0.9;
        for (n, gw, cols) in [(1024, 256, 64), (300, 148, 37), (7, 256, 8), (513, 20, 1), (40, 3, 200), (64, 256, 64)] {
            let dz: Vec<f32> = (0..n * gw).map(|i| value(i, 7)).collect();
            let x: Vec<f32> = (0..n * cols).map(|i| value(i, 13)).collect();
            let g0: Vec<f32> = (0..gw * cols).map(|i| value(i, 3)).collect();
            let (dz, x) = (MatRef::new(&dz, n, gw), MatRef::new(&x, n, cols));
            let mut want = g0.clone();
            gemm(1.0, dz.t(), x, 1.0, &mut want, cols);
            for room in [gw * cols, gw * cols - 1] {
                let mut got = g0.clone();
                add_gradient_product(&mut got, dz, x, &mut vec![0.0; room]);
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{n} samples, {gw} x {cols}, room {room}");
            }
        }
    }

    /// Products over packed panels equal `gemm` bit for bit: rows from 2 to `MC`, depths
    /// across a `KC` slice, columns that end inside a panel, strided and transposed
    /// views, `beta` 0 and 1.
    #[test]
    fn panels_product_equals_gemm() {
        let value = |i: usize, s: usize| ((i * s + 5) % 31) as f32 * 0.07 - 1.0;
        for (m, k, n) in [(2, 1, 1), (3, 64, 256), (13, 37, 148), (32, 300, 64), (MC, 17, 33), (7, 513, 40)] {
            let Some(len) = panels_len(k, n) else {
                eprintln!("no register tile: nothing to compare");
                return;
            };
            let a_data: Vec<f32> = (0..m * (k + 3)).map(|i| value(i, 7)).collect();
            let a = strided(&a_data, m, k, k + 3);
            let w: Vec<f32> = (0..k * n).map(|i| value(i, 11)).collect();
            for b in [MatRef::new(&w, k, n), MatRef::new(&w, n, k).t()] {
                let mut room = vec![0.0; len];
                let panels = pack_panels(b, &mut room).expect("room for the panels");
                for beta in [0.0, 1.0] {
                    let c0: Vec<f32> = (0..m * (n + 2)).map(|i| value(i, 3)).collect();
                    let (mut want, mut got) = (c0.clone(), c0);
                    gemm(1.0, a, b, beta, &mut want, n + 2);
                    panels_product(a, panels, beta, &mut got, n + 2);
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{m} x {k} x {n}, beta {beta}");
                }
            }
        }
    }
}
