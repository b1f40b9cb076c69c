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

use crate::kernels::maths::{fold_lanes, sqrt, sum_lanes, SUM_LANES};
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

/// Calls one of the row kernels below in its copy for the widest vectors the CPU has
/// (see [`compiled_for`]), so that the loops over [`SUM_LANES`] are one or two vector
/// operations. The forward has no AVX-512 copy: it writes two rows per row read (`y`
/// and `x^`), and with 64-byte vectors every store of a buffer that is not 64-byte
/// aligned splits a cache line, which made it slower than the AVX2 copy (same bits).
macro_rules! on_widest {
    (ymm $kernel:ident($($arg:expr),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if crate::kernels::isa::isa().avx2() {
                // SAFETY: the CPU has AVX2.
                unsafe { avx2::$kernel($($arg),*) }
            } else {
                $kernel($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $kernel($($arg),*)
        }
    }};
    ($kernel:ident($($arg:expr),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            let isa = crate::kernels::isa::isa();
            if isa.avx512() {
                // SAFETY: the CPU has AVX-512 F and AVX2.
                unsafe { avx512::$kernel($($arg),*) }
            } else if isa.avx2() {
                // SAFETY: the CPU has AVX2.
                unsafe { avx2::$kernel($($arg),*) }
            } else {
                $kernel($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $kernel($($arg),*)
        }
    }};
}

/// A module of copies of the row kernels compiled with these target features (each
/// inlines its `#[inline(always)]` kernel).
macro_rules! compiled_for {
    ($module:ident, $features:literal, $(fn $kernel:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {
        #[cfg(target_arch = "x86_64")]
        mod $module {
            $(
                /// The kernel of the same name, compiled for these features.
                ///
                /// # Safety
                /// The CPU has the features.
                #[target_feature(enable = $features)]
                #[allow(clippy::too_many_arguments)]
                pub(super) unsafe fn $kernel($($arg: $ty),*) {
                    super::$kernel($($arg),*)
                }
            )*
        }
    };
}

compiled_for! {
    avx512,
    "avx512f,avx2",
    fn input_grad_rows(weight: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32]);
    fn param_grad_rows(
        width: usize,
        columns: core::ops::Range<usize>,
        normed: &[f32],
        dy: &[f32],
        g_weight: &mut [f32],
        g_bias: &mut [f32],
    );
    fn backward_rows(params: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32], grads: &mut [f32]);
}

compiled_for! {
    avx2,
    "avx2",
    fn forward_rows(
        params: &[f32],
        eps: f32,
        width: usize,
        x: &[f32],
        y: &mut [f32],
        normed: Option<&mut [f32]>,
        rstd: Option<&mut [f32]>,
    );
    fn param_grad_rows(
        width: usize,
        columns: core::ops::Range<usize>,
        normed: &[f32],
        dy: &[f32],
        g_weight: &mut [f32],
        g_bias: &mut [f32],
    );
    fn backward_rows(params: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32], grads: &mut [f32]);
}

/// Normalises each row of `width` values of `x` into `y` with `params = weight | bias`.
/// When `cache` is given, it receives `x^` (`x.len()` floats) then `r` per row.
///
/// Each row's mean and variance are sums in the fixed order of [`SUM_LANES`], compiled for
/// the widest vectors the CPU has; with the `threading` feature, the rows of a large
/// batch are shared between threads. A row's bits depend on neither.
pub(crate) fn forward(params: &[f32], eps: f32, width: usize, x: &[f32], y: &mut [f32], cache: Option<&mut [f32]>) {
    let rows = x.len() / width;
    let (x, y) = (&x[..rows * width], &mut y[..rows * width]);
    let (normed, rstd) = match cache {
        Some(c) => {
            let (n, r) = c.split_at_mut(rows * width);
            (Some(n), Some(&mut r[..rows]))
        }
        None => (None, None),
    };
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    if shared(x.len()) {
        return forward_shared(params, eps, width, x, y, normed, rstd);
    }
    on_widest!(ymm forward_rows(params, eps, width, x, y, normed, rstd));
}

/// Backward of [`forward`] in place: `d` holds `dL/dy` and receives `dL/dx`; the
/// parameter gradients are added into `grads = dweight | dbias`. `cache` is the one
/// `forward` filled for `d.len() / width` rows.
///
/// Each column's parameter gradient adds its rows' terms in row order, and each row's
/// sums are taken in the order of [`SUM_LANES`]; with the `threading` feature a large
/// batch is shared between threads (columns for the parameter gradients, then rows),
/// with the same bits.
pub(crate) fn backward_in_place(params: &[f32], width: usize, cache: &[f32], d: &mut [f32], grads: &mut [f32]) {
    let rows = d.len() / width;
    let d = &mut d[..rows * width];
    let (normed, rstd) = cache.split_at(rows * width);
    let rstd = &rstd[..rows];
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    if shared(d.len()) {
        return backward_shared(params, width, normed, rstd, d, grads);
    }
    on_widest!(backward_rows(params, width, normed, rstd, d, grads));
}

/// [`forward`] on this thread alone, for a caller that shares the rows itself; the
/// cache, when given, is `(x^, r)` of these rows.
pub(crate) fn forward_here(
    params: &[f32],
    eps: f32,
    width: usize,
    x: &[f32],
    y: &mut [f32],
    cache: Option<(&mut [f32], &mut [f32])>,
) {
    let (normed, rstd) = cache.unzip();
    on_widest!(ymm forward_rows(params, eps, width, x, y, normed, rstd));
}

/// The input gradient of [`backward_in_place`] alone, on this thread: `d` (rows of
/// `width`) holds `dL/dy` and receives `dL/dx`; `normed` and `rstd` are those rows'
/// cache.
pub(crate) fn input_gradient(params: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32]) {
    input_grad_widest(&params[..width], width, normed, rstd, d);
}

/// [`input_grad_rows`] in its copy for the widest vectors the CPU has: with AVX2 alone,
/// [`input_grad_rows_avx2`] (the same operations in the same order, written with
/// intrinsics: the compiler does not keep the generic form's lanes in vectors).
fn input_grad_widest(weight: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        let isa = crate::kernels::isa::isa();
        if isa.avx512() {
            // SAFETY: the CPU has AVX-512 F and AVX2.
            return unsafe { avx512::input_grad_rows(weight, width, normed, rstd, d) };
        }
        if isa.avx2() {
            // SAFETY: the CPU has AVX2.
            return unsafe { input_grad_rows_avx2(weight, width, normed, rstd, d) };
        }
    }
    input_grad_rows(weight, width, normed, rstd, d);
}

/// [`input_grad_rows`] with AVX2 intrinsics for rows of a multiple of [`SUM_LANES`]
/// values (the generic loops otherwise): each of `sum g` and `sum g x^` in two vectors
/// of eight lanes (lanes `0..8` and `8..16` of [`SUM_LANES`]), folded as [`fold_lanes`]
/// folds them, and `dx = r ((dy w - mean(g)) - x^ mean(g x^))` eight at a time; every
/// product and sum rounded on its own, as in the generic form: the same bits.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn input_grad_rows_avx2(weight: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32]) {
    use core::arch::x86_64::*;
    if width == 0 || !width.is_multiple_of(SUM_LANES) {
        return input_grad_rows(weight, width, normed, rstd, d);
    }
    let weight = &weight[..width];
    let inv_width = 1.0 / width as f32;
    /// `fold_lanes` of the lanes `lo | hi`: `j + 8` into `j`, then `+ 4`, `+ 2`, `+ 1`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn fold(lo: __m256, hi: __m256) -> f32 {
        let s8 = _mm256_add_ps(lo, hi);
        let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
        _mm_cvtss_f32(s1)
    }
    for ((d, n), &r) in d.chunks_exact_mut(width).zip(normed.chunks_exact(width)).zip(rstd) {
        let (d16, n16, w16) =
            (d.as_chunks::<SUM_LANES>().0, n.as_chunks::<SUM_LANES>().0, weight.as_chunks::<SUM_LANES>().0);
        let zero = _mm256_setzero_ps();
        let (mut g_lo, mut g_hi, mut gn_lo, mut gn_hi) = (zero, zero, zero, zero);
        for ((dy, n), w) in d16.iter().zip(n16).zip(w16) {
            let (dy_lo, dy_hi) = dy.split_at(8);
            let (n_lo, n_hi) = n.split_at(8);
            let (w_lo, w_hi) = w.split_at(8);
            // SAFETY: each half holds eight floats.
            let (g0, g1, n0, n1) = unsafe {
                (
                    _mm256_mul_ps(_mm256_loadu_ps(dy_lo.as_ptr()), _mm256_loadu_ps(w_lo.as_ptr())),
                    _mm256_mul_ps(_mm256_loadu_ps(dy_hi.as_ptr()), _mm256_loadu_ps(w_hi.as_ptr())),
                    _mm256_loadu_ps(n_lo.as_ptr()),
                    _mm256_loadu_ps(n_hi.as_ptr()),
                )
            };
            g_lo = _mm256_add_ps(g_lo, g0);
            g_hi = _mm256_add_ps(g_hi, g1);
            gn_lo = _mm256_add_ps(gn_lo, _mm256_mul_ps(g0, n0));
            gn_hi = _mm256_add_ps(gn_hi, _mm256_mul_ps(g1, n1));
        }
        let (mean_g, mean_gn) = (fold(g_lo, g_hi) * inv_width, fold(gn_lo, gn_hi) * inv_width);
        let (vm_g, vm_gn, vr) = (_mm256_set1_ps(mean_g), _mm256_set1_ps(mean_gn), _mm256_set1_ps(r));
        let (d8, n8, w8) = (d.as_chunks_mut::<8>().0, n.as_chunks::<8>().0, weight.as_chunks::<8>().0);
        for ((d, n), w) in d8.iter_mut().zip(n8).zip(w8) {
            // SAFETY: each chunk holds eight floats.
            unsafe {
                let g = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(d.as_ptr()), _mm256_loadu_ps(w.as_ptr())), vm_g);
                let v = _mm256_mul_ps(vr, _mm256_sub_ps(g, _mm256_mul_ps(_mm256_loadu_ps(n.as_ptr()), vm_gn)));
                _mm256_storeu_ps(d.as_mut_ptr(), v);
            }
        }
    }
}

/// The parameter gradients of [`backward_in_place`] for the columns `columns` alone:
/// `g_weight` and `g_bias` hold those columns' gradients; `normed` and `dy` are every
/// row's `x^` and `dL/dy`. Each column adds its rows' terms in row order, as
/// [`backward_in_place`] does.
pub(crate) fn param_gradients(
    width: usize,
    columns: core::ops::Range<usize>,
    normed: &[f32],
    dy: &[f32],
    (g_weight, g_bias): (&mut [f32], &mut [f32]),
) {
    on_widest!(param_grad_rows(width, columns, normed, dy, g_weight, g_bias));
}

/// Whether a norm over `len` floats is shared between threads.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
fn shared(len: usize) -> bool {
    len >= PARALLEL_MIN_FLOATS && crate::kernels::gemm::threads() > 1
}

/// [`forward`] on every thread: blocks of [`BLOCK`] rows handed out one at a time.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
fn forward_shared(
    params: &[f32],
    eps: f32,
    width: usize,
    x: &[f32],
    y: &mut [f32],
    normed: Option<&mut [f32]>,
    rstd: Option<&mut [f32]>,
) {
    use crate::kernels::parallel::{for_each_part, Claims, Output};
    let rows = x.len() / width;
    let y_at = Output(y.as_mut_ptr());
    let normed_at = normed.map(|n| Output(n.as_mut_ptr()));
    let rstd_at = rstd.map(|r| Output(r.as_mut_ptr()));
    let blocks = Claims::new(rows.div_ceil(BLOCK));
    let run = |_part: usize| {
        blocks.run(|block| {
            let (start, end) = (block * BLOCK, ((block + 1) * BLOCK).min(rows));
            let len = (end - start) * width;
            // SAFETY: the block is taken by this part only: its rows of `y` and of
            // `x^` (`len` floats at `start width`, within the `rows width` of each) and
            // its `end - start` values of `r` (within `rows`) are written by no other.
            let (y, normed, rstd) = unsafe {
                (
                    core::slice::from_raw_parts_mut(y_at.at(start * width), len),
                    normed_at.map(|n| core::slice::from_raw_parts_mut(n.at(start * width), len)),
                    rstd_at.map(|r| core::slice::from_raw_parts_mut(r.at(start), end - start)),
                )
            };
            on_widest!(ymm forward_rows(params, eps, width, &x[start * width..end * width], y, normed, rstd));
        })
    };
    for_each_part(crate::kernels::gemm::threads(), &run);
}

/// [`backward_in_place`] on every thread: first the parameter gradients, [`BLOCK`]
/// columns at a time over every row, then (once all of them have read `dL/dy`) the
/// input gradients, [`BLOCK`] rows at a time.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
fn backward_shared(params: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32], grads: &mut [f32]) {
    use crate::kernels::parallel::{for_each_part, AbortOnPanic, Claims, Output};
    use core::sync::atomic::AtomicBool;
    let weight = &params[..width];
    let (g_weight, g_bias) = grads[..2 * width].split_at_mut(width);
    let rows = rstd.len();
    let (units, blocks) = (Claims::new(width.div_ceil(BLOCK)), Claims::new(rows.div_ceil(BLOCK)));
    let (d_at, gw_at, gb_at) = (Output(d.as_mut_ptr()), Output(g_weight.as_mut_ptr()), Output(g_bias.as_mut_ptr()));
    let abort = AtomicBool::new(false);
    let run = |_part: usize| {
        let _guard = AbortOnPanic(&abort);
        units.run(|unit| {
            let columns = unit * BLOCK..((unit + 1) * BLOCK).min(width);
            let len = columns.len();
            // SAFETY: the unit's columns of the gradients (within `width`) are
            // written by this part only; `d` (`rows width` floats) is only read
            // until every unit is done (`units.wait_all`), and this view ends first.
            let (dy, gw, gb) = unsafe {
                (
                    core::slice::from_raw_parts(d_at.at(0), rows * width),
                    core::slice::from_raw_parts_mut(gw_at.at(columns.start), len),
                    core::slice::from_raw_parts_mut(gb_at.at(columns.start), len),
                )
            };
            on_widest!(param_grad_rows(width, columns, normed, dy, gw, gb));
        });
        if !units.wait_all(&abort) {
            return;
        }
        blocks.run(|block| {
            let (start, end) = (block * BLOCK, ((block + 1) * BLOCK).min(rows));
            let at = start * width..end * width;
            // SAFETY: every unit has finished reading `d` (`wait_all` saw their writes
            // and their last reads); the block's rows (within `rows width`) are taken by
            // this part only.
            let d = unsafe { core::slice::from_raw_parts_mut(d_at.at(at.start), at.len()) };
            input_grad_widest(weight, width, &normed[at], &rstd[start..end], d);
        });
    };
    for_each_part(crate::kernels::gemm::threads(), &run);
}

/// Rows (or, in the backward's parameter gradients, columns) a thread takes at a time
/// when the rows are shared between threads.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
const BLOCK: usize = 16;

/// A norm over at least this many floats is shared between threads (the `threading`
/// feature, x86-64): below it, handing out the work costs more than it saves.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
const PARALLEL_MIN_FLOATS: usize = 1 << 14;

/// `sum g` and `sum g n` over a row, `g = dy * weight`, in the order of [`SUM_LANES`].
#[inline(always)]
fn sums_g(dy: &[f32], normed: &[f32], weight: &[f32]) -> (f32, f32) {
    let (mut sum_g, mut sum_gn) = ([0.0f32; SUM_LANES], [0.0f32; SUM_LANES]);
    let full = dy.len() / SUM_LANES * SUM_LANES;
    // Whole chunks as arrays, so that the lanes stay in vector registers.
    let (dy_chunks, n_chunks, w_chunks) =
        (dy.as_chunks::<SUM_LANES>().0, normed.as_chunks::<SUM_LANES>().0, weight.as_chunks::<SUM_LANES>().0);
    for ((dy, n), w) in dy_chunks.iter().zip(n_chunks).zip(w_chunks) {
        for l in 0..SUM_LANES {
            let g = dy[l] * w[l];
            sum_g[l] += g;
            sum_gn[l] += g * n[l];
        }
    }
    for (l, ((&dy, &n), &w)) in dy[full..].iter().zip(&normed[full..]).zip(&weight[full..]).enumerate() {
        let g = dy * w;
        sum_g[l] += g;
        sum_gn[l] += g * n;
    }
    (fold_lanes(sum_g), fold_lanes(sum_gn))
}

/// The forward of the rows `x` (`x.len() / width` of them) into `y`, and when given
/// `x^` into `normed` and `r` into `rstd` (one per row). The means and variances of
/// [`SUM_LANES`] rows are taken first, then their `r` together (one vector square root
/// and division rather than one per row, each waited for), then the rows are
/// normalised.
#[inline(always)]
fn forward_rows(
    params: &[f32],
    eps: f32,
    width: usize,
    x: &[f32],
    y: &mut [f32],
    mut normed: Option<&mut [f32]>,
    mut rstd: Option<&mut [f32]>,
) {
    let (weight, bias) = params[..2 * width].split_at(width);
    let inv_width = 1.0 / width as f32;
    let group = SUM_LANES * width;
    for (g, (x, y)) in x.chunks(group).zip(y.chunks_mut(group)).enumerate() {
        let (mut mean, mut r) = ([0.0f32; SUM_LANES], [0.0f32; SUM_LANES]);
        for ((x, mean), var) in x.chunks_exact(width).zip(&mut mean).zip(&mut r) {
            *mean = sum_lanes(x, |v| v) * inv_width;
            let m = *mean;
            *var = sum_lanes(x, |v| (v - m) * (v - m)) * inv_width;
        }
        for r in &mut r {
            *r = 1.0 / sqrt(*r + eps);
        }
        for (row, (x, y)) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)).enumerate() {
            let (mean, r) = (mean[row], r[row]);
            let at = (g * SUM_LANES + row) * width;
            match normed.as_deref_mut() {
                Some(normed) => {
                    let normed = &mut normed[at..at + width];
                    for ((((y, n), &x), &w), &b) in y.iter_mut().zip(normed).zip(x).zip(weight).zip(bias) {
                        *n = (x - mean) * r;
                        *y = *n * w + b;
                    }
                }
                None => {
                    for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(weight).zip(bias) {
                        *y = (x - mean) * r * w + b;
                    }
                }
            }
        }
        if let Some(rstd) = rstd.as_deref_mut() {
            let rows = x.len() / width;
            rstd[g * SUM_LANES..g * SUM_LANES + rows].copy_from_slice(&r[..rows]);
        }
    }
}

/// The input gradient of the rows `d` (`dL/dy` in, `dL/dx` out) with their `x^` and `r`.
#[inline(always)]
fn input_grad_rows(weight: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32]) {
    let inv_width = 1.0 / width as f32;
    for ((d, n), &r) in d.chunks_exact_mut(width).zip(normed.chunks_exact(width)).zip(rstd) {
        let (sum_g, sum_gn) = sums_g(d, n, weight);
        let (mean_g, mean_gn) = (sum_g * inv_width, sum_gn * inv_width);
        for ((d, &n), &w) in d.iter_mut().zip(n).zip(weight) {
            *d = r * (*d * w - mean_g - n * mean_gn);
        }
    }
}

/// `dweight += sum dy x^` and `dbias += sum dy` over the rows `dy`, each column's
/// terms added in row order; `columns` of each row (`g_weight` and `g_bias` hold those
/// columns' gradients).
#[inline(always)]
fn param_grad_rows(
    width: usize,
    columns: core::ops::Range<usize>,
    normed: &[f32],
    dy: &[f32],
    g_weight: &mut [f32],
    g_bias: &mut [f32],
) {
    for (dy, n) in dy.chunks_exact(width).zip(normed.chunks_exact(width)) {
        let (dy, n) = (&dy[columns.clone()], &n[columns.clone()]);
        for (((gw, gb), &dy), &n) in g_weight.iter_mut().zip(g_bias.iter_mut()).zip(dy).zip(n) {
            *gw += dy * n;
            *gb += dy;
        }
    }
}

/// The whole backward on one thread: the parameter gradients and both sums of a row
/// in one pass over it, then its input gradient.
#[inline(always)]
fn backward_rows(params: &[f32], width: usize, normed: &[f32], rstd: &[f32], d: &mut [f32], grads: &mut [f32]) {
    let weight = &params[..width];
    let (g_weight, g_bias) = grads[..2 * width].split_at_mut(width);
    let rows = rstd.len();
    for row in 0..rows {
        let at = row * width..(row + 1) * width;
        param_grad_rows(width, 0..width, &normed[at.clone()], &d[at.clone()], g_weight, g_bias);
        input_grad_rows(weight, width, &normed[at.clone()], &rstd[row..row + 1], &mut d[at]);
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
