//! AArch64 NEON (Advanced SIMD) kernels, chosen by [`super::isa`] on every AArch64 CPU
//! (NEON is part of the base architecture) unless `NN_ISA=portable` asks otherwise.
//!
//! * [`gemm`]: `C = alpha A B + beta C` by the blocked loops of [`super::gemm`] around a
//!   register tile of [`MR`] rows by [`NR`] columns (24 accumulators of 4 floats);
//! * [`gemm_gathered`]: the same sums with the rows of `B` read from wherever they lie
//!   (a convolution's columns, from its padded input);
//! * [`gemv_rows`], [`gemv_batch`], [`dot`]: `y += alpha A x` for a row-major `A`
//!   (dense layers at batch 1 and over a batch, recurrent projections);
//! * [`gemv_columns`]: `y += alpha A x` for a column-major `A`;
//! * [`gemm_gathered_t`], [`gemm_gathered_taps`] (with [`transpose_rows`]): a
//!   convolution's weight and input gradients without their column matrices, the
//!   loops of `conv_grad` on eight lanes in two registers (`Q8`), as AVX2's;
//! * [`cell_step`]: the gate arithmetic of a recurrent step, four units at a time
//!   (`exp`, `sigmoid` and `tanh` of `maths.rs` on four lanes).
//!
//! NEON vectors hold 4 floats where the x86-64 kernels' hold 8 (AVX2) or 16 (AVX-512).
//! Where the order of a sum depends on the lanes, the dot products, each row is summed
//! in eight lanes as there: an 8-lane accumulator is a pair of registers (lanes 0 to 3
//! and 4 to 7), reduced by pairwise additions (`faddp`) in the order of `avx2::sum4`,
//! `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`, then the remaining products
//! added in order. Everywhere else every output element is one chain of fused
//! multiply-adds (`fmla`) over each [`KC`]-deep slice, independent of the lanes, added
//! to `C` as `portable::combine` adds it, and every unit of a recurrent cell gets the
//! operations of the one-unit functions, lane by lane. So every kernel gives the bits of
//! `portable.rs`, `avx2.rs` and `avx512.rs` (the tests below compare them with the
//! portable kernels bit for bit; CI runs them under `qemu-aarch64`).
//!
//! The kernels are tested for correctness only, under `qemu-aarch64`: their speed has
//! not been measured on AArch64 hardware.
//!
//! Every function takes slices whose bounds its entry checks (with checked arithmetic);
//! the raw pointer arithmetic inside stays within them.
use core::arch::aarch64::*;

use super::gemm::{blocked, blocks_fit, gathered_fits, rows_fit, MatRef, Tile};
#[cfg(feature = "std")]
use super::gemm::{with_blocks, MC};
use super::portable::combine;
use super::recurrent::{gru_unit, lstm_unit, rnn_unit, CellKind};

/// Rows of the register tile: `MR x NR / 4` accumulators are 24 of the 32 vector
/// registers, with three for a row of `B` and one for an element of `A`.
pub const MR: usize = 8;
/// Columns of the register tile: three vector registers.
pub const NR: usize = 12;
/// Depth of a packed panel of `B` (`KC x NR` floats, 12 KiB): the depth at which every
/// kernel adds its sums to `C` (`portable::SLICE`).
pub const KC: usize = super::portable::SLICE;

/// Vector registers per row of the tile.
const Q: usize = NR / 4;

/// The NEON register tile.
pub struct Neon;

impl Tile for Neon {
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = KC;

    #[inline(always)]
    unsafe fn tile(
        mr: usize,
        kc: usize,
        a: *const f32,
        (ars, acs): (usize, usize),
        b: *const f32,
        brs: usize,
        alpha: f32,
        beta: f32,
        c: *mut f32,
        ldc: usize,
        nr: usize,
    ) {
        let scale = (alpha, beta);
        // SAFETY: forwarded from the caller's contract; `gemm` (the only caller,
        // through `blocked`) runs only where `isa().neon()`.
        unsafe {
            match mr {
                8 => tile::<8>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                7 => tile::<7>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                6 => tile::<6>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                5 => tile::<5>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                4 => tile::<4>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                3 => tile::<3>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                2 => tile::<2>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                _ => tile::<1>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
            }
        }
    }
}

/// `C[m x n] = alpha A[m x k] B[k x n] + beta C` (`C` row-major, row stride `ldc`;
/// with `beta == 0`, `C` is not read).
///
/// # Safety
/// The CPU must have NEON ([`super::isa::Isa::Neon`]); the views must lie within their
/// slices; `C`'s `m` rows of `n` columns (stride `ldc`) must be writable at `c` and not
/// otherwise borrowed.
#[target_feature(enable = "neon")]
pub unsafe fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: *mut f32, ldc: usize) {
    // Uninitialised: `blocked` writes each panel row before the tile reads it.
    let mut panel = core::mem::MaybeUninit::<[f32; KC * NR]>::uninit();
    #[cfg(feature = "std")]
    if a.rows > MC {
        // SAFETY: `blocked` does not re-enter `with_blocks`; the caller's contract; the
        // panel and blocks have their sizes.
        return unsafe {
            with_blocks(|blocks| blocked::<Neon>(alpha, a, b, beta, c, ldc, panel.as_mut_ptr().cast(), Some(blocks)))
        };
    }
    // SAFETY: the caller's contract; the panel holds `KC x NR` floats.
    unsafe { blocked::<Neon>(alpha, a, b, beta, c, ldc, panel.as_mut_ptr().cast(), None) }
}

/// `C[R x nr] = alpha A[R x kc] B[kc x NR] + beta C`: `A` at `a` with strides `ars`,
/// `acs`; `B` at `b` with row stride `brs` and [`NR`] readable columns per row; `C` at
/// `c` with row stride `ldc`, of which the first `nr <= NR` columns are written (and
/// read only when `beta != 0`). Each element is one chain of fused multiply-adds from
/// zero, then `combine`d into `C` (a vector form of it for whole rows).
///
/// # Safety
/// The CPU has NEON; every element named lies inside its allocation.
#[inline]
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize>(
    kc: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    brs: usize,
    (alpha, beta): (f32, f32),
    c: *mut f32,
    ldc: usize,
    nr: usize,
) {
    let mut acc = [[vdupq_n_f32(0.0); Q]; R];
    for p in 0..kc {
        // SAFETY: row `p < kc` of the B panel has `NR` readable floats, and `A[r, p]`
        // (r < R, p < kc) is inside A's slice (the caller's contract).
        unsafe {
            let bp = b.add(p * brs);
            let bv = [vld1q_f32(bp), vld1q_f32(bp.add(4)), vld1q_f32(bp.add(8))];
            let ap = a.add(p * acs);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = vld1q_dup_f32(ap.add(r * ars));
                for (acc, &bq) in acc.iter_mut().zip(&bv) {
                    *acc = vfmaq_f32(*acc, av, bq);
                }
            }
        }
    }
    let (va, vb) = (vdupq_n_f32(alpha), vdupq_n_f32(beta));
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row `r < R` of C has `nr` writable floats at `c + r ldc`.
        unsafe {
            let cr = c.add(r * ldc);
            if nr == NR {
                for (q, &sum) in acc.iter().enumerate() {
                    let at = cr.add(4 * q);
                    // `combine(alpha, sum, beta, c)` lane by lane.
                    let v = if beta == 0.0 {
                        vmulq_f32(va, sum)
                    } else if beta == 1.0 {
                        vfmaq_f32(vld1q_f32(at), va, sum)
                    } else {
                        vfmaq_f32(vmulq_f32(vb, vld1q_f32(at)), va, sum)
                    };
                    vst1q_f32(at, v);
                }
            } else {
                let mut t = [0.0f32; NR];
                for (q, &sum) in acc.iter().enumerate() {
                    vst1q_f32(t.as_mut_ptr().add(4 * q), sum);
                }
                for (j, &v) in t.iter().enumerate().take(nr) {
                    *cr.add(j) = combine(alpha, v, beta, *cr.add(j));
                }
            }
        }
    }
}

/// Rows of [`gemm_gathered`]'s tile: six rows of 16 columns (four vector registers
/// each) are 24 accumulators.
const GATHERED_MR: usize = 6;
/// Columns of [`gemm_gathered`]'s tile: two blocks of 8, as the AVX2 tile's two vectors.
const GATHERED_NR: usize = 16;

/// `C[m, n] += A[m, k] B[k, n]` for a `B` that is not stored: element `(p, j)` is
/// `src[offsets[p] + (j / width) stride + j % width]` (the columns of a convolution,
/// read from its padded input: `width` output columns per output row, `stride` floats
/// between padded rows). `A` has row stride `ars`, `C` row stride `ldc`; `n` and
/// `width` are multiples of 8. With `start` given, `C`'s values are not read: the sums
/// are added to `start[i]` (a bias), or to zero when `start` is `Some(None)`. Every
/// element is the chain of fused multiply-adds of [`gemm`] with `alpha = beta = 1`,
/// `B` stored and `C` holding `start`, for `k <= KC`: the same bits, as
/// `avx2::gemm_gathered`'s.
///
/// # Safety
/// The CPU must have NEON.
///
/// # Panics
/// If an operand is out of bounds or `k > KC` (`gemm::gathered_fits`).
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_gathered(
    a: &[f32],
    ars: usize,
    m: usize,
    k: usize,
    src: &[f32],
    offsets: &[usize],
    (width, stride): (usize, usize),
    start: Option<Option<&[f32]>>,
    c: &mut [f32],
    ldc: usize,
    n: usize,
) {
    assert!(
        k <= KC && gathered_fits(a, ars, m, k, src, offsets, (width, stride), start, c, ldc, n),
        "gemm_gathered: shapes"
    );
    let base = |j: usize| (j / width) * stride + j % width;
    let (ap, sp, op, cp) = (a.as_ptr(), src.as_ptr(), offsets.as_ptr(), c.as_mut_ptr());
    let mut i = 0;
    while i < m {
        let mr = GATHERED_MR.min(m - i);
        let mut j0 = 0;
        while j0 < n {
            let nr = GATHERED_NR.min(n - j0);
            let bases = (base(j0), if nr == GATHERED_NR { base(j0 + 8) } else { base(j0) });
            let from = match start {
                None => Start::Load,
                Some(None) => Start::Zero,
                Some(Some(bias)) => Start::Bias(bias[i..].as_ptr()),
            };
            // SAFETY: rows `i..i + mr` of A (`k` columns each), the offsets and the
            // tile of C are in bounds (asserted); every read of `src` is inside it
            // (asserted: the reach of the last block of 8 columns).
            unsafe {
                let (at, ct) = (ap.add(i * ars), cp.add(i * ldc + j0));
                match mr {
                    6 => gathered_tile::<6>(k, at, ars, sp, op, bases, from, ct, ldc, nr),
                    5 => gathered_tile::<5>(k, at, ars, sp, op, bases, from, ct, ldc, nr),
                    4 => gathered_tile::<4>(k, at, ars, sp, op, bases, from, ct, ldc, nr),
                    3 => gathered_tile::<3>(k, at, ars, sp, op, bases, from, ct, ldc, nr),
                    2 => gathered_tile::<2>(k, at, ars, sp, op, bases, from, ct, ldc, nr),
                    _ => gathered_tile::<1>(k, at, ars, sp, op, bases, from, ct, ldc, nr),
                }
            }
            j0 += nr;
        }
        i += mr;
    }
}

/// Where the sums of a tile of [`gemm_gathered`] are added: to `C`, to zero, or to one
/// value per row (`R` of them from the pointer).
#[derive(Clone, Copy)]
enum Start {
    Load,
    Zero,
    Bias(*const f32),
}

/// The tile of [`gemm_gathered`]: `R` rows by 16 columns (or 8: `nr`), the rows of `B`
/// read at `src + offsets[p] + base0` (columns 0 to 7) and `+ base1` (8 to 15), the
/// sums added (one rounding, as `fma(1, sum, c)`) to what `start` says.
///
/// # Safety
/// As [`gemm_gathered`] asserts.
#[inline]
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn gathered_tile<const R: usize>(
    kc: usize,
    a: *const f32,
    ars: usize,
    src: *const f32,
    offsets: *const usize,
    (base0, base1): (usize, usize),
    start: Start,
    c: *mut f32,
    ldc: usize,
    nr: usize,
) {
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    for p in 0..kc {
        // SAFETY: the caller's contract.
        unsafe {
            let row = src.add(*offsets.add(p));
            let (b0, b1) = (row.add(base0), row.add(base1));
            let bv = [vld1q_f32(b0), vld1q_f32(b0.add(4)), vld1q_f32(b1), vld1q_f32(b1.add(4))];
            let ap = a.add(p);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = vld1q_dup_f32(ap.add(r * ars));
                for (acc, &bq) in acc.iter_mut().zip(&bv) {
                    *acc = vfmaq_f32(*acc, av, bq);
                }
            }
        }
    }
    let vectors = nr / 4;
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row `r < R` of C has `nr` writable floats at `c + r ldc`, and the
        // bias (if any) `R` floats.
        unsafe {
            let cr = c.add(r * ldc);
            for (q, &sum) in acc.iter().enumerate().take(vectors) {
                let at = cr.add(4 * q);
                let onto = match start {
                    Start::Load => vld1q_f32(at),
                    Start::Zero => vdupq_n_f32(0.0),
                    Start::Bias(b) => vld1q_dup_f32(b.add(r)),
                };
                vst1q_f32(at, vaddq_f32(sum, onto));
            }
        }
    }
}

/// Two registers holding the eight lanes of an AVX2 accumulator: lanes 0 to 3, 4 to 7.
type Lanes8 = [float32x4_t; 2];

/// The sum of the eight lanes of each of four accumulators,
/// `[sum v0, sum v1, sum v2, sum v3]`, each `((l0 + l1) + (l2 + l3)) + ((l4 + l5) +
/// (l6 + l7))`: the order of `avx2::sum4`.
#[inline]
#[target_feature(enable = "neon")]
fn sum4(v: &[Lanes8; 4]) -> float32x4_t {
    let lo = vpaddq_f32(vpaddq_f32(v[0][0], v[1][0]), vpaddq_f32(v[2][0], v[3][0]));
    let hi = vpaddq_f32(vpaddq_f32(v[0][1], v[1][1]), vpaddq_f32(v[2][1], v[3][1]));
    vaddq_f32(lo, hi)
}

/// The sum of the eight lanes of `v` in the order of [`sum4`].
#[inline]
#[target_feature(enable = "neon")]
fn sum8(v: Lanes8) -> f32 {
    // [l0 + l1, l2 + l3, l4 + l5, l6 + l7], then [(l0 + l1) + (l2 + l3), (l4 + l5) + (l6 + l7), ..].
    let pairs = vpaddq_f32(v[0], v[1]);
    let quads = vpaddq_f32(pairs, pairs);
    vgetq_lane_f32::<0>(quads) + vgetq_lane_f32::<1>(quads)
}

/// `sum_{q = p..n} a[q] x[q]` in order, each product rounded before it is added.
///
/// # Safety
/// `a` and `x` hold at least `n` floats.
#[inline]
unsafe fn tail(a: *const f32, x: *const f32, p: usize, n: usize) -> f32 {
    let mut sum = 0.0;
    for q in p..n {
        // SAFETY: `q < n`.
        sum += unsafe { *a.add(q) * *x.add(q) };
    }
    sum
}

/// `dot(a[..n], x[..n])`: eight lanes of fused multiply-adds over the 8-float blocks in
/// order, reduced by [`sum8`], plus (when `n` is not a multiple of 8) the remaining
/// products summed in order: `portable::dot`'s and `avx2::dot`'s rounding.
///
/// # Safety
/// The CPU must have NEON; `a` and `x` must hold at least `n` floats.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_raw(a: *const f32, x: *const f32, n: usize) -> f32 {
    let mut acc = [vdupq_n_f32(0.0); 2];
    let mut p = 0;
    // SAFETY: every load reads floats `p..p + 8` with `p + 8 <= n`, or `p < n`.
    unsafe {
        while p + 8 <= n {
            acc[0] = vfmaq_f32(acc[0], vld1q_f32(a.add(p)), vld1q_f32(x.add(p)));
            acc[1] = vfmaq_f32(acc[1], vld1q_f32(a.add(p + 4)), vld1q_f32(x.add(p + 4)));
            p += 8;
        }
        let sum = sum8(acc);
        if p == n {
            return sum;
        }
        sum + tail(a, x, p, n)
    }
}

/// `sum_i a[i] b[i]` over the shorter length, rounded as `portable::dot`.
///
/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
#[cfg(any(feature = "internals", test))]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: both slices hold at least `n` floats; the caller guarantees the feature.
    unsafe { dot_raw(a.as_ptr(), b.as_ptr(), n) }
}

/// `y[i] += alpha * dot(rows[i], x)` for `R` rows (a multiple of 4), sharing every load
/// of `x`: each row in an 8-lane accumulator (two registers), reduced four rows at a
/// time by [`sum4`], every row rounded as [`dot`].
///
/// # Safety
/// The CPU has NEON; every row and `x` hold `n` floats; `y` has `R` writable floats.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn rows_block<const R: usize>(rows: &[*const f32; R], x: *const f32, n: usize, alpha: f32, y: *mut f32) {
    let blocks = n - n % 8;
    let mut acc = [[vdupq_n_f32(0.0); 2]; R];
    let mut p = 0;
    // SAFETY: loads of floats `p..p + 8 <= blocks <= n` of `x` and of every row, scalar
    // reads below `n`, and writes to the `R` floats of `y` (the caller's contract).
    unsafe {
        while p < blocks {
            let (x0, x1) = (vld1q_f32(x.add(p)), vld1q_f32(x.add(p + 4)));
            for (acc, &row) in acc.iter_mut().zip(rows) {
                acc[0] = vfmaq_f32(acc[0], vld1q_f32(row.add(p)), x0);
                acc[1] = vfmaq_f32(acc[1], vld1q_f32(row.add(p + 4)), x1);
            }
            p += 8;
        }
        let va = vdupq_n_f32(alpha);
        for g in 0..R / 4 {
            let four = [acc[4 * g], acc[4 * g + 1], acc[4 * g + 2], acc[4 * g + 3]];
            let sums = sum4(&four);
            let yg = y.add(4 * g);
            if blocks == n {
                vst1q_f32(yg, vaddq_f32(vld1q_f32(yg), vmulq_f32(va, sums)));
            } else {
                let mut out = [0.0f32; 4];
                vst1q_f32(out.as_mut_ptr(), sums);
                for (r, &sum) in out.iter().enumerate() {
                    *yg.add(r) += alpha * (sum + tail(rows[4 * g + r], x, blocks, n));
                }
            }
        }
    }
}

/// `y[i] += alpha * dot(A[i, :], x)` for `A` row-major with row stride `rs`, `m` rows of
/// `n` columns: eight rows at a time, then four (each row an 8-lane accumulator in two
/// registers, all sharing every load of `x`), then single rows. Each row's sum is
/// rounded exactly as [`dot`] rounds it (and as `avx2::gemv_rows`).
///
/// # Safety
/// The CPU must have NEON.
///
/// # Panics
/// If `a` holds fewer than `(m - 1) rs + n` floats (when `m > 0`), `x` fewer than `n`
/// or `y` fewer than `m` (checked without overflow).
#[target_feature(enable = "neon")]
pub unsafe fn gemv_rows(alpha: f32, a: &[f32], rs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32]) {
    assert!(x.len() >= n && y.len() >= m && rows_fit(m, rs, n, a.len()), "gemv_rows: shapes");
    let (ap, xp, yp) = (a.as_ptr(), x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    // SAFETY (all three loops): rows `i..i + R <= m` of `n` floats are inside `a`, `x`
    // holds `n` floats and `y` `m` (asserted).
    while i + 8 <= m {
        let mut rows = [ap; 8];
        for (r, row) in rows.iter_mut().enumerate() {
            // SAFETY: see above.
            *row = unsafe { ap.add((i + r) * rs) };
        }
        // SAFETY: see above.
        unsafe { rows_block::<8>(&rows, xp, n, alpha, yp.add(i)) };
        i += 8;
    }
    if i + 4 <= m {
        let mut rows = [ap; 4];
        for (r, row) in rows.iter_mut().enumerate() {
            // SAFETY: see above.
            *row = unsafe { ap.add((i + r) * rs) };
        }
        // SAFETY: see above.
        unsafe { rows_block::<4>(&rows, xp, n, alpha, yp.add(i)) };
        i += 4;
    }
    while i < m {
        // SAFETY: see above.
        unsafe { *yp.add(i) += alpha * dot_raw(ap.add(i * rs), xp, n) };
        i += 1;
    }
}

/// Bytes of rows of `A` swept per block by [`gemv_batch`]: they stay in the cache
/// while every vector passes over them.
const BATCH_BLOCK_BYTES: usize = 128 * 1024;

/// `y_s[i] += alpha * dot(A[i, :], x_s)` for `A` row-major (row stride `rs`, `m` rows
/// of `n` columns) and `batch` vectors `x_s` (`x[s n..]`), `y_s` (`y[s m..]`): every
/// vector by [`gemv_rows`] over blocks of rows of `A` that stay in the cache, so each
/// element is rounded as [`dot`] rounds it and a vector's result does not depend on
/// the batch.
///
/// # Safety
/// The CPU must have NEON.
///
/// # Panics
/// If `a` holds fewer than `(m - 1) rs + n` floats (when `m > 0`), `x` fewer than
/// `batch n` or `y` fewer than `batch m` (checked without overflow).
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemv_batch(alpha: f32, a: &[f32], rs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32], batch: usize) {
    assert!(
        blocks_fit(batch, n, x.len()) && blocks_fit(batch, m, y.len()) && rows_fit(m, rs, n, a.len()),
        "gemv_batch: shapes"
    );
    let block = (BATCH_BLOCK_BYTES / (4 * n.max(1))).max(8) / 8 * 8;
    let mut i1 = 0;
    while i1 < m {
        let rows = block.min(m - i1);
        for s in 0..batch {
            let (xs, ys) = (&x[s * n..][..n], &mut y[s * m..][..m]);
            // SAFETY: the CPU has NEON; rows `i1..i1 + rows` of `A` are inside `a`
            // (asserted above; `gemv_rows` checks again).
            unsafe { gemv_rows(alpha, &a[i1 * rs..], rs, rows, n, xs, &mut ys[i1..i1 + rows]) };
        }
        i1 += rows;
    }
}

/// `y[i] += alpha * sum_j A[i, j] x[j]` for `A` column-major with column stride `cs`,
/// `m` rows of `n` columns, rounded as `portable::gemv_columns` and the x86-64 kernels:
/// the rows of whole blocks of 8 (all but the last `m % 8`) as a chain of fused
/// multiply-adds over the columns, added to `y` by one more (32 rows at a time in
/// eight registers, then 4); the last `m % 8` rows as plain products and sums.
///
/// # Safety
/// The CPU must have NEON.
///
/// # Panics
/// If `a` holds fewer than `(n - 1) cs + m` floats (when `n > 0`), `x` fewer than `n`
/// or `y` fewer than `m` (checked without overflow).
#[target_feature(enable = "neon")]
pub unsafe fn gemv_columns(alpha: f32, a: &[f32], cs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32]) {
    assert!(x.len() >= n && y.len() >= m && rows_fit(n, cs, m, a.len()), "gemv_columns: shapes");
    let va = vdupq_n_f32(alpha);
    let (ap, yp) = (a.as_ptr(), y.as_mut_ptr());
    let blocked = m - m % 8;
    let mut i = 0;
    while i + 32 <= blocked {
        // SAFETY: rows `i..i + 32 <= m` of every column `j < n` are inside `a`, and `y`
        // holds `m` floats (asserted).
        unsafe {
            let mut acc = [vdupq_n_f32(0.0); 8];
            for (j, &xj) in x[..n].iter().enumerate() {
                let (xv, col) = (vdupq_n_f32(xj), ap.add(j * cs + i));
                for (q, acc) in acc.iter_mut().enumerate() {
                    *acc = vfmaq_f32(*acc, xv, vld1q_f32(col.add(4 * q)));
                }
            }
            for (q, &acc) in acc.iter().enumerate() {
                let yq = yp.add(i + 4 * q);
                vst1q_f32(yq, vfmaq_f32(vld1q_f32(yq), va, acc));
            }
        }
        i += 32;
    }
    while i + 4 <= blocked {
        // SAFETY: as above, for rows `i..i + 4 <= m`.
        unsafe {
            let mut acc = vdupq_n_f32(0.0);
            for (j, &xj) in x[..n].iter().enumerate() {
                acc = vfmaq_f32(acc, vdupq_n_f32(xj), vld1q_f32(ap.add(j * cs + i)));
            }
            let yq = yp.add(i);
            vst1q_f32(yq, vfmaq_f32(vld1q_f32(yq), va, acc));
        }
        i += 4;
    }
    while i < m {
        let mut acc = 0.0;
        for (j, &xj) in x[..n].iter().enumerate() {
            acc += a[j * cs + i] * xj;
        }
        y[i] += alpha * acc;
        i += 1;
    }
}

/// [`maths::exp`](super::maths::exp) of four lanes: the same operations in the same
/// order (every multiply-add fused), so each lane has the one-lane function's bits.
#[inline]
#[target_feature(enable = "neon")]
fn exp4(x: float32x4_t) -> float32x4_t {
    use super::maths::exp_constants::{C, LN2_HI, LN2_LO, LOG2E, ROUND};
    let splat = vdupq_n_f32;
    // `clamp` to [-104, 89]: NaN stays NaN (`fmax`, `fmin` propagate it).
    let x = vminq_f32(vmaxq_f32(x, splat(-104.0)), splat(89.0));
    let rounded = vfmaq_f32(splat(ROUND), x, splat(LOG2E));
    let n = vsubq_f32(rounded, splat(ROUND));
    let r = vfmaq_f32(vfmaq_f32(x, n, splat(-LN2_HI)), n, splat(-LN2_LO));
    let r2 = vmulq_f32(r, r);
    let a = vfmaq_f32(splat(C[0]), splat(C[1]), r);
    let b = vfmaq_f32(splat(C[2]), splat(C[3]), r);
    let c = vfmaq_f32(splat(C[4]), splat(C[5]), r);
    let p = vfmaq_f32(a, vfmaq_f32(b, c, r2), r2);
    let e = vaddq_f32(vfmaq_f32(r, p, r2), splat(1.0));
    // 2^n as 2^(n/2) 2^(n - n/2), n from the low mantissa bits of `rounded`.
    let n = vsubq_s32(vreinterpretq_s32_f32(rounded), vdupq_n_s32(ROUND.to_bits() as i32));
    let half = vshrq_n_s32::<1>(n);
    let bias = vdupq_n_s32(127);
    let scale_a = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(half, bias)));
    let scale_b = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(vsubq_s32(n, half), bias)));
    vmulq_f32(vmulq_f32(e, scale_a), scale_b)
}

/// [`maths::sigmoid`](super::maths::sigmoid) of four lanes, each with its bits.
#[inline]
#[target_feature(enable = "neon")]
fn sigmoid4(x: float32x4_t) -> float32x4_t {
    let one = vdupq_n_f32(1.0);
    vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(x))))
}

/// [`maths::tanh`](super::maths::tanh) of four lanes, each with its bits.
#[inline]
#[target_feature(enable = "neon")]
fn tanh4(x: float32x4_t) -> float32x4_t {
    const D: [f32; 5] = [-3.333_328e-1, 1.333_144_2e-1, -5.373_971_6e-2, 2.063_909e-2, -5.704_988_7e-3];
    let splat = vdupq_n_f32;
    let z = vmulq_f32(x, x);
    let mut q = splat(D[4]);
    for d in [D[3], D[2], D[1], D[0]] {
        q = vfmaq_f32(splat(d), q, z);
    }
    let magnitude = vabsq_f32(x);
    let e = exp4(vmulq_f32(splat(2.0), magnitude));
    let small = vfmaq_f32(x, vmulq_f32(q, z), x);
    let large = vsubq_f32(splat(1.0), vdivq_f32(splat(2.0), vaddq_f32(e, splat(1.0))));
    // `copysign(large, x)`: the sign bit of `x`, the other bits of `large`.
    let large = vbslq_f32(vdupq_n_u32(0x8000_0000), x, large);
    vbslq_f32(vcltq_f32(magnitude, splat(0.625)), small, large)
}

/// One step of one cell over all its units, in place, with the operations of
/// `recurrent::cell_step` (see there for the operands): four units at a time in NEON
/// vectors ([`exp4`], [`sigmoid4`], [`tanh4`]), the last `H % 4` by the one-unit
/// functions, every unit with the portable step's bits.
///
/// # Safety
/// The CPU must have NEON.
///
/// # Panics
/// If `p` or `q` holds fewer than `G H` floats (`G` gates, `H = h.len()` units), or
/// for an LSTM `c` fewer than `H`.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn cell_step(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    let hd = h.len();
    let gh = cell.gates().checked_mul(hd);
    let fits = |len: usize| gh.is_some_and(|gh| len >= gh);
    assert!(fits(p.len()) && fits(q.len()) && (cell != CellKind::Lstm || c.len() >= hd), "cell_step: shapes");
    let (pp, qp, hp, cp) = (p.as_ptr(), q.as_ptr(), h.as_mut_ptr(), c.as_mut_ptr());
    let vectors = hd - hd % 4;
    // Gate `g`'s units `j..j + 4` of `v` (`p` or `q`).
    // SAFETY: every use below has `g < G` and `j + 4 <= H`, so `g H + j + 4 <= G H`,
    // inside `p` and `q` (asserted).
    let gate = |v: *const f32, g: usize, j: usize| unsafe { vld1q_f32(v.add(g * hd + j)) };
    let mut j = 0;
    while j < vectors {
        // SAFETY: units `j..j + 4 <= H` of `h` (and of `c` for an LSTM, asserted) are
        // inside them; the gates as above.
        unsafe {
            let sum = |g: usize| vaddq_f32(gate(pp, g, j), gate(qp, g, j));
            match cell {
                CellKind::RnnTanh => vst1q_f32(hp.add(j), tanh4(sum(0))),
                CellKind::RnnRelu => {
                    let a = sum(0);
                    let zero = vdupq_n_f32(0.0);
                    vst1q_f32(hp.add(j), vbslq_f32(vcgtq_f32(a, zero), a, zero));
                }
                CellKind::Lstm => {
                    let (i, f) = (sigmoid4(sum(0)), sigmoid4(sum(1)));
                    let (g, o) = (tanh4(sum(2)), sigmoid4(sum(3)));
                    let c_new = vfmaq_f32(vmulq_f32(i, g), f, vld1q_f32(cp.add(j)));
                    vst1q_f32(cp.add(j), c_new);
                    vst1q_f32(hp.add(j), vmulq_f32(o, tanh4(c_new)));
                }
                CellKind::Gru => {
                    let (r, z) = (sigmoid4(sum(0)), sigmoid4(sum(1)));
                    let n = tanh4(vfmaq_f32(gate(pp, 2, j), r, gate(qp, 2, j)));
                    let h_prev = vld1q_f32(hp.add(j));
                    vst1q_f32(hp.add(j), vfmaq_f32(n, z, vsubq_f32(h_prev, n)));
                }
            }
        }
        j += 4;
    }
    for j in vectors..hd {
        let at = |v: &[f32], g: usize| v[g * hd + j];
        match cell {
            CellKind::RnnTanh | CellKind::RnnRelu => h[j] = rnn_unit(cell == CellKind::RnnRelu, p[j], q[j]),
            CellKind::Lstm => {
                let u = lstm_unit(core::array::from_fn(|g| at(p, g)), core::array::from_fn(|g| at(q, g)), c[j]);
                (c[j], h[j]) = (u[4], u[5]);
            }
            CellKind::Gru => {
                h[j] = gru_unit(core::array::from_fn(|g| at(p, g)), core::array::from_fn(|g| at(q, g)), h[j])[3];
            }
        }
    }
}

/// Column-matrix rows of the tile of [`gemm_gathered_t`]: 24 accumulators (two 8-lane
/// vectors, four registers, per row), four registers of the output gradient and a
/// broadcast, 29 of the 32.
pub const GATHERED_T_MR: usize = 6;

/// Input channels of the tile of [`gemm_gathered_taps`]: the sums of the current tap in
/// 24 of the 32 registers, the running sums in memory.
pub const TAPS_MR: usize = 6;

/// Eight floats in two NEON registers (lanes 0 to 3, 4 to 7) for the loops of
/// [`super::conv_grad`]: the vector of an AVX2 register, so that the tiles and their
/// chains of fused multiply-adds (`fmla`, one rounding as `vfmadd`) are the x86-64
/// kernels'.
#[derive(Clone, Copy)]
pub(crate) struct Q8(Lanes8);

impl super::conv_grad::Vector for Q8 {
    const LANES: usize = 8;
    const WEIGHT_MR: usize = GATHERED_T_MR;
    const TAPS_MR: usize = TAPS_MR;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the trait's contract (NEON).
        Q8(unsafe { [vdupq_n_f32(0.0); 2] })
    }

    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self {
        // SAFETY: the trait's contract.
        unsafe {
            let v = vld1q_dup_f32(p);
            Q8([v, v])
        }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the trait's contract.
        Q8(unsafe { [vld1q_f32(p), vld1q_f32(p.add(4))] })
    }

    #[inline(always)]
    unsafe fn load_blocks<const CONTIGUOUS: bool>(row: *const f32, bases: &[usize]) -> Self {
        // SAFETY: the trait's contract (one block of eight).
        unsafe { Self::load(row.add(bases[0])) }
    }

    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: the trait's contract.
        Q8(unsafe { [vfmaq_f32(c.0[0], a.0[0], b.0[0]), vfmaq_f32(c.0[1], a.0[1], b.0[1])] })
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: the trait's contract.
        Q8(unsafe { [vaddq_f32(a.0[0], b.0[0]), vaddq_f32(a.0[1], b.0[1])] })
    }

    #[inline(always)]
    unsafe fn load_first(p: *const f32, count: usize) -> Self {
        // `count` is a multiple of 8: the whole vector, or nothing.
        // SAFETY: the trait's contract.
        unsafe {
            if count == 0 {
                return Self::zero();
            }
            Self::load(p)
        }
    }

    #[inline(always)]
    unsafe fn store_first(p: *mut f32, v: Self, count: usize) {
        // `count` is a multiple of 8: the whole vector.
        debug_assert_eq!(count, 8);
        // SAFETY: the trait's contract.
        unsafe {
            vst1q_f32(p, v.0[0]);
            vst1q_f32(p.add(4), v.0[1]);
        }
    }
}

/// A convolution's weight gradient without its column matrix, 16 filters at a time:
/// [`super::conv_grad::weight_grad`] in 8 lanes, the bits of `avx2::gemm_gathered_t`
/// and `avx512::gemm_gathered_t`.
///
/// # Safety
/// The CPU must have NEON; `dw`'s `n` rows of `m` floats (row stride `ldw`) are
/// writable and no other thread reads or writes them.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_gathered_t(
    src: &[f32],
    offsets: &[usize],
    bases: &[usize],
    m: usize,
    k: usize,
    dyt: &[f32],
    ldt: usize,
    n: usize,
    dw: *mut f32,
    ldw: usize,
) {
    // SAFETY: the caller's contract.
    unsafe { super::conv_grad::weight_grad::<Q8>(src, offsets, bases, m, k, dyt, ldt, n, dw, ldw) }
}

/// A convolution's input gradient without its column matrix, 16 input positions at a
/// time: [`super::conv_grad::input_grad`] in 8 lanes, the bits of
/// `avx2::gemm_gathered_taps` and `avx512::gemm_gathered_taps`.
///
/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_gathered_taps(
    a: &[f32],
    lda: usize,
    m: usize,
    k: usize,
    taps: usize,
    src: &[f32],
    plane: usize,
    tap_offsets: &[usize],
    rows: (usize, usize),
    c: &mut [f32],
    ldc: usize,
    n: usize,
) {
    // SAFETY: the caller's contract.
    unsafe { super::conv_grad::input_grad::<Q8>(a, lda, m, k, taps, src, plane, tap_offsets, rows, c, ldc, n) }
}

/// `dst[q ldt + f] = src[f lds + q]` for `f < rows`, `q < len`, and zero for
/// `rows <= f < ldt`: a tile of a convolution's output gradient transposed for
/// [`gemm_gathered_t`] (as `avx2::transpose_rows`), by blocks of 4x4. With `sums` (at
/// least `rows` floats), each row `q` of `dst` is also added to it in order of `q`,
/// `sums[f] += dst[q ldt + f]` for `f < rows`.
///
/// # Safety
/// The CPU must have NEON.
///
/// # Panics
/// If a shape does not fit its slice.
#[target_feature(enable = "neon")]
pub unsafe fn transpose_rows(
    src: &[f32],
    lds: usize,
    rows: usize,
    len: usize,
    dst: &mut [f32],
    ldt: usize,
    sums: Option<&mut [f32]>,
) {
    assert!(
        rows <= ldt
            && rows_fit(rows, lds, len, src.len())
            && rows_fit(len, ldt, ldt, dst.len())
            && sums.as_ref().is_none_or(|s| s.len() >= rows),
        "transpose_rows: shapes"
    );
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    let (rows4, len4) = (rows - rows % 4, len - len % 4);
    let pairs = |a: float32x4_t, b: float32x4_t| (vreinterpretq_f64_f32(a), vreinterpretq_f64_f32(b));
    for f0 in (0..rows4).step_by(4) {
        for q0 in (0..len4).step_by(4) {
            // SAFETY: rows `f0..f0 + 4 <= rows` of `src` hold floats `q0..q0 + 4 <= len`,
            // rows `q0..q0 + 4` of `dst` floats `f0..f0 + 4 <= ldt` (asserted).
            unsafe {
                let r: [float32x4_t; 4] = core::array::from_fn(|r| vld1q_f32(sp.add((f0 + r) * lds + q0)));
                // [r0[0], r1[0], r0[2], r1[2]], [r0[1], r1[1], r0[3], r1[3]], and rows 2, 3.
                let (t0, t1) = pairs(vtrn1q_f32(r[0], r[1]), vtrn2q_f32(r[0], r[1]));
                let (t2, t3) = pairs(vtrn1q_f32(r[2], r[3]), vtrn2q_f32(r[2], r[3]));
                let columns = [vtrn1q_f64(t0, t2), vtrn1q_f64(t1, t3), vtrn2q_f64(t0, t2), vtrn2q_f64(t1, t3)];
                for (c, v) in columns.into_iter().enumerate() {
                    vst1q_f32(dp.add((q0 + c) * ldt + f0), vreinterpretq_f32_f64(v));
                }
            }
        }
    }
    for q in 0..len {
        let row = &mut dst[q * ldt..][..ldt];
        let from = if q < len4 { rows4 } else { 0 };
        for (f, v) in row.iter_mut().enumerate().skip(from) {
            *v = if f < rows { src[f * lds + q] } else { 0.0 };
        }
    }
    if let Some(sums) = sums {
        for row in dst.chunks_exact(ldt).take(len) {
            sums[..rows].iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    //! Every NEON kernel against the portable one, bit for bit, over sizes at and
    //! around the tiles and vectors (1, 3, 4, 5, 7, 8, 9, 12, 13, ...), every layout and
    //! scaling, depths across a slice of 256; and the bounds the entries check.
    use super::*;
    use crate::kernels::portable;
    use crate::rng::Rng;
    use std::vec::Vec;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn values(rng: &mut Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
    }

    /// `rows x cols` row- or column-major with a padded leading dimension (NaN padding).
    fn stored(rng: &mut Rng, rows: usize, cols: usize, column_major: bool) -> (Vec<f32>, usize, usize) {
        let (outer, inner) = if column_major { (cols, rows) } else { (rows, cols) };
        let lead = inner + 3;
        let mut data = std::vec![f32::NAN; outer * lead];
        for o in 0..outer {
            for i in 0..inner {
                data[o * lead + i] = rng.uniform_in(-1.0, 1.0);
            }
        }
        let (rs, cs) = if column_major { (1, lead) } else { (lead, 1) };
        (data, rs, cs)
    }

    #[test]
    fn gemm_equals_portable_bit_for_bit() {
        let mut rng = Rng::new(31);
        let shapes = [
            (1, 1, 1),
            (1, 5, 3),
            (2, 3, 1),
            (3, 5, 7),
            (4, 4, 4),
            (5, 7, 11),
            (7, 9, 13),
            (8, 12, 12),
            (9, 13, 25),
            (11, 1, 14),
            (13, 257, 31),
            (5, 300, 20),
            (17, 513, 9),
            (200, 20, 40),
            (197, 33, 29),
        ];
        for (m, k, n) in shapes {
            for (a_cm, b_cm) in [(false, false), (false, true), (true, false), (true, true)] {
                let (ad, ars, acs) = stored(&mut rng, m, k, a_cm);
                let (bd, brs, bcs) = stored(&mut rng, k, n, b_cm);
                let a = MatRef { data: &ad, rows: m, cols: k, rs: ars, cs: acs };
                let b = MatRef { data: &bd, rows: k, cols: n, rs: brs, cs: bcs };
                for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (0.3, 0.0), (0.3, 1.0), (0.3, 0.7), (1.0, -3.0)] {
                    let ldc = n + 2;
                    let c0 = values(&mut rng, m * ldc);
                    let (mut neon, mut portable) = (c0.clone(), c0.clone());
                    // SAFETY: NEON is the base of AArch64; the views are inside their
                    // vectors, `C` holds `m` rows of `ldc >= n`.
                    unsafe {
                        gemm(alpha, a, b, beta, neon.as_mut_ptr(), ldc);
                        portable::gemm(alpha, a, b, beta, portable.as_mut_ptr(), ldc);
                    }
                    assert_eq!(bits(&neon), bits(&portable), "{m}x{k}x{n}, {a_cm} {b_cm}, {alpha} {beta}");
                }
            }
        }
    }

    #[test]
    fn matrix_vector_products_equal_portable_bit_for_bit() {
        let mut rng = Rng::new(32);
        for m in [1, 3, 4, 5, 7, 8, 9, 12, 13, 31, 33, 40, 65] {
            for n in [1, 3, 7, 8, 9, 12, 15, 16, 17, 31, 33, 100] {
                let (a, x, y0) = (values(&mut rng, m * n), values(&mut rng, n), values(&mut rng, m));
                for alpha in [1.0, 0.3] {
                    let (mut neon, mut portable) = (y0.clone(), y0.clone());
                    // SAFETY: NEON is the base of AArch64; the kernel checks its bounds.
                    unsafe { gemv_rows(alpha, &a, n, m, n, &x, &mut neon) };
                    portable::gemv_rows(alpha, &a, n, m, n, &x, &mut portable);
                    assert_eq!(bits(&neon), bits(&portable), "rows {m}x{n} {alpha}");
                    let (mut neon, mut portable) = (y0.clone(), y0.clone());
                    // SAFETY: as above.
                    unsafe { gemv_columns(alpha, &a, m, m, n, &x, &mut neon) };
                    portable::gemv_columns(alpha, &a, m, m, n, &x, &mut portable);
                    assert_eq!(bits(&neon), bits(&portable), "columns {m}x{n} {alpha}");
                }
                // SAFETY: NEON is the base of AArch64.
                let neon = unsafe { dot(&a[..n], &x) };
                assert_eq!(neon.to_bits(), portable::dot(&a[..n], &x).to_bits(), "dot of {n}");
                for batch in [1, 2, 3] {
                    let (xs, ys) = (values(&mut rng, batch * n), values(&mut rng, batch * m));
                    let mut neon = ys.clone();
                    // SAFETY: NEON is the base of AArch64; the kernel checks its bounds.
                    unsafe { gemv_batch(0.3, &a, n, m, n, &xs, &mut neon, batch) };
                    let mut portable = ys.clone();
                    for (xv, yv) in xs.chunks_exact(n).zip(portable.chunks_exact_mut(m)) {
                        portable::gemv_rows(0.3, &a, n, m, n, xv, yv);
                    }
                    assert_eq!(bits(&neon), bits(&portable), "batch {batch} of {m}x{n}");
                }
            }
        }
        // Rows blocked across more than one block of `BATCH_BLOCK_BYTES`.
        let (m, n, batch) = (300, 257, 3);
        let (a, xs, ys) = (values(&mut rng, m * n), values(&mut rng, batch * n), values(&mut rng, batch * m));
        let mut neon = ys.clone();
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds.
        unsafe { gemv_batch(1.0, &a, n, m, n, &xs, &mut neon, batch) };
        let mut portable = ys;
        for (xv, yv) in xs.chunks_exact(n).zip(portable.chunks_exact_mut(m)) {
            portable::gemv_rows(1.0, &a, n, m, n, xv, yv);
        }
        assert_eq!(bits(&neon), bits(&portable), "large batch");
    }

    /// The gathered product equals the portable product of the stored `B` onto `C`, a
    /// zero matrix or the bias broadcast along rows (alpha = beta = 1).
    #[test]
    fn gathered_product_equals_portable_bit_for_bit() {
        let mut rng = Rng::new(33);
        for (m, k, width, stride, rows_out) in
            [(1, 1, 8, 8, 1), (5, 9, 8, 11, 3), (13, 27, 16, 19, 2), (7, 256, 24, 24, 1), (6, 40, 8, 9, 5)]
        {
            let n = width * rows_out;
            let src = values(&mut rng, 4096);
            let limit = src.len() - ((rows_out - 1) * stride + width);
            let offsets: Vec<usize> = (0..k).map(|_| (rng.uniform_in(0.0, 1.0) * limit as f32) as usize).collect();
            let a = values(&mut rng, m * k);
            let bias = values(&mut rng, m);
            let mut b = std::vec![0.0f32; k * n];
            for p in 0..k {
                for j in 0..n {
                    b[p * n + j] = src[offsets[p] + (j / width) * stride + j % width];
                }
            }
            let c0 = values(&mut rng, m * n);
            for start in [None, Some(None), Some(Some(&bias[..]))] {
                let mut neon = c0.clone();
                // SAFETY: NEON is the base of AArch64; the kernel checks its bounds.
                unsafe { gemm_gathered(&a, k, m, k, &src, &offsets, (width, stride), start, &mut neon, n, n) };
                let mut portable = match start {
                    None => c0.clone(),
                    Some(None) => std::vec![0.0; m * n],
                    Some(Some(bias)) => (0..m * n).map(|e| bias[e / n]).collect(),
                };
                // SAFETY: the views are inside their vectors, `C` holds `m` rows of `n`.
                unsafe {
                    portable::gemm(1.0, MatRef::new(&a, m, k), MatRef::new(&b, k, n), 1.0, portable.as_mut_ptr(), n)
                };
                assert_eq!(bits(&neon), bits(&portable), "{m}x{k}, width {width}, stride {stride}: {start:?}");
            }
        }
    }

    /// The NEON cell step (four units at a time, then single units) gives the bits of
    /// the cells' one-unit functions, the portable step, for every cell and widths that use every chunk size, over inputs
    /// from the saturated ends through `tanh`'s polynomial range to zero.
    #[test]
    fn cell_step_equals_the_units_bit_for_bit() {
        let mut rng = Rng::new(34);
        let special = [0.0, -0.0, 0.624_999_9, -0.625, 0.625, 1e-30, -87.5, 88.8, 100.0, -100.0];
        let mut value = |k: usize| {
            if k.is_multiple_of(7) {
                special[k / 7 % special.len()]
            } else {
                rng.uniform_in(-12.0, 12.0)
            }
        };
        for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh, CellKind::RnnRelu] {
            for hidden in [1, 3, 4, 7, 8, 13, 16, 24, 40, 64, 77, 130] {
                let gh = cell.gates() * hidden;
                let p: Vec<f32> = (0..gh).map(&mut value).collect();
                let q: Vec<f32> = (0..gh).map(|k| value(k + 3)).collect();
                let h0: Vec<f32> = (0..hidden).map(|k| value(k + 5).clamp(-1.0, 1.0)).collect();
                let c0: Vec<f32> = (0..hidden).map(|k| value(k + 1)).collect();
                let (mut pv, mut h, mut c) = (p.clone(), h0.clone(), c0.clone());
                // SAFETY: NEON is the base of AArch64; the kernel checks its bounds.
                unsafe { cell_step(cell, &mut pv, &q, &mut h, &mut c) };
                let (mut h_units, mut c_units) = (h0.clone(), c0.clone());
                for j in 0..hidden {
                    match cell {
                        CellKind::Lstm => {
                            let u = lstm_unit(
                                core::array::from_fn(|g| p[g * hidden + j]),
                                core::array::from_fn(|g| q[g * hidden + j]),
                                c0[j],
                            );
                            (c_units[j], h_units[j]) = (u[4], u[5]);
                        }
                        CellKind::Gru => {
                            let u = gru_unit(
                                core::array::from_fn(|g| p[g * hidden + j]),
                                core::array::from_fn(|g| q[g * hidden + j]),
                                h0[j],
                            );
                            h_units[j] = u[3];
                        }
                        CellKind::RnnTanh | CellKind::RnnRelu => {
                            h_units[j] = rnn_unit(cell == CellKind::RnnRelu, p[j], q[j]);
                        }
                    }
                }
                assert_eq!(bits(&h), bits(&h_units), "{cell:?}, {hidden} units: h");
                assert_eq!(bits(&c), bits(&c_units), "{cell:?}, {hidden} units: c");
            }
        }
    }

    /// [`exp4`] gives [`maths::exp`](crate::kernels::maths::exp)'s bits: over the range
    /// where the result is finite and not 0, every ulp near 0, and past both ends.
    #[test]
    fn exp4_equals_exp_bit_for_bit() {
        let exp = crate::kernels::maths::exp;
        let mut x: Vec<f32> = (-110_000..=95_000).map(|k| k as f32 * 1e-3).collect();
        x.extend((0..4096).map(|k| f32::from_bits(0x3300_0000 + k * 997)));
        x.extend([0.0, -0.0, f32::MIN, f32::MAX, f32::INFINITY, f32::NEG_INFINITY, -103.972_08, 88.722_84]);
        for (k, v) in x.chunks(4).enumerate() {
            let v: [f32; 4] = core::array::from_fn(|i| v.get(i).copied().unwrap_or(1.0));
            let mut out = [0.0; 4];
            // SAFETY: NEON is the base of AArch64.
            unsafe { vst1q_f32(out.as_mut_ptr(), exp4(vld1q_f32(v.as_ptr()))) };
            assert_eq!(bits(&out), bits(&v.map(exp)), "chunk {k}: {v:?}");
        }
        // SAFETY: as above.
        let nan = unsafe { vgetq_lane_f32::<0>(exp4(vdupq_n_f32(f32::NAN))) };
        assert!(nan.is_nan());
    }

    /// Runs `call` (a kernel given bad extents) and expects a panic.
    fn rejects(call: impl FnOnce()) {
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).is_err(), "the call returned");
    }

    const WRAPS: usize = usize::MAX / 2 + 1;

    #[test]
    fn kernels_reject_extents_that_wrap() {
        let (a, x, src) = ([1.0f32; 64], [1.0f32; 64], [1.0f32; 64]);
        let mut y = [0.0f32; 64];
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds (and panics).
        rejects(|| unsafe { gemv_rows(1.0, &a, WRAPS, 3, 2, &x, &mut y) });
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds (and panics).
        rejects(|| unsafe { gemv_columns(1.0, &a, WRAPS, 2, 3, &x, &mut y) });
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds (and panics).
        rejects(|| unsafe { gemv_batch(1.0, &a, WRAPS, 3, 2, &x, &mut y, 1) });
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds (and panics).
        rejects(|| unsafe { gemv_batch(1.0, &a, 2, 2, 2, &x, &mut y, 1 << 63) });
        let offsets = [0usize; 4];
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds (and panics).
        rejects(|| unsafe { gemm_gathered(&a, WRAPS, 3, 2, &src, &offsets, (8, 8), None, &mut y, 8, 8) });
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds (and panics).
        rejects(|| unsafe { gemm_gathered(&a, 2, 3, 2, &src, &offsets, (8, 8), None, &mut y, WRAPS, 8) });
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds (and panics).
        rejects(|| unsafe { gemm_gathered(&a, 2, 1, 2, &src, &offsets, (8, 1 << 61), None, &mut y, 16, 16) });
        // SAFETY: NEON is the base of AArch64; the kernel checks its bounds (and panics).
        rejects(|| unsafe { gemm_gathered(&a, 2, 1, 2, &src, &[usize::MAX - 4, 0], (8, 8), None, &mut y, 8, 8) });
        // The same calls with extents that fit run.
        // SAFETY: as above.
        unsafe { gemv_rows(1.0, &a, 2, 3, 2, &x, &mut y) };
        assert_eq!(y[..3], [2.0; 3]);
    }
}
