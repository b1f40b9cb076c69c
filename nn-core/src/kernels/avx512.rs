//! AVX-512 kernels for x86-64, chosen by [`super::isa`] where the CPU has AVX-512 F.
//!
//! * [`gemm`]: `C = alpha A B + beta C` by the blocked loops of [`super::gemm`] around a
//!   register tile of [`MR`] rows by [`NR`] columns (24 accumulators of 16 floats);
//! * [`gemm_gathered`]: the same tile reading the rows of `B` from wherever they lie
//!   (a convolution's columns, from its padded input);
//! * [`gemm_rows`]: a tile of up to 64 columns reading each row of `B` as whole vectors
//!   from wherever it lies, contiguous (a convolution's columns, from its shifted input
//!   planes);
//! * [`gemm_gathered_t`], [`gemm_gathered_taps`]: a convolution's weight and input
//!   gradients without the column matrix, the loops of [`super::conv_grad`] in 16 lanes;
//! * [`gemv_columns`]: `y += alpha A x` for a column-major `A`, 128 rows at a time;
//! * [`gemv_batch_strided`]: a dense layer's forward over a batch, four vectors at a
//!   time, each rounded as a matrix-vector product of its own.
//!
//! Each element of `C` is one chain of fused multiply-adds over each [`KC`]-deep slice
//! of the inner dimension, added to `C` as `portable::combine` adds it: the order of the
//! AVX2 and portable kernels, so the three give the same bits. Only the width of the
//! tile differs (16 lanes, so twice the columns per instruction).
//!
//! The matrix-vector products over a row-major `A` at batch 1 (`gemv_rows`,
//! `gemv_fixed`, `dot`) stay on the AVX2 kernels: their order is eight lanes per row,
//! so a 16-lane register would hold two rows, whose loads cost as many instructions as
//! the eight-lane form; over a batch, one row's eight floats serve two vectors in one
//! register ([`gemv_batch_strided`]). One exception: rows of exactly 8 ([`gemv8`], a
//! dense layer of 8 inputs at batch 1), where two rows fill one register with one load
//! and the reduction of each row's lanes, not the loads, is the cost.
//!
//! Every function takes slices whose bounds the safe caller has checked; the raw
//! pointer arithmetic inside stays within them.
use core::arch::x86_64::*;

use super::avx2::{gathered_fits, pack_columns, rows_fit, transpose8};
#[cfg(feature = "std")]
use super::gemm::MC;
use super::gemm::{blocked, pack, pack_a_rows, MatRef, Tile};

/// Rows of the register tile: `MR x NR / 16` accumulators are 24 of the 32 ZMM
/// registers, enough independent FMA chains to cover the latency on both FMA ports.
pub const MR: usize = 12;
/// Columns of the register tile: two ZMM registers.
pub const NR: usize = 32;
/// Depth of a packed panel of `B` (`KC x NR` floats, 32 KiB, stays in L1): the depth
/// at which every kernel adds its sums to `C` (`portable::SLICE`).
pub const KC: usize = super::portable::SLICE;

/// The AVX-512 register tile.
pub struct Avx512;

impl Tile for Avx512 {
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = KC;
    /// 72 rows, not `gemm::MC` (192): the rows of `C` that a pass over a block of `B`
    /// updates (72 x 1024 floats, 288 KiB) then stay in L2 beside that block (1 MiB),
    /// where 192 rows (768 KiB) overflow it: 5 to 8 % faster on 1024^3 on a Xeon with
    /// 2 MiB of L2, the same from 256^3 to 512^3 (the bits do not depend on the
    /// blocking).
    const BLOCK_ROWS: usize = 72;

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
        // A packed tile of `A` (element `(r, p)` at `p mr + r`) gets a kernel whose
        // offsets into it are constants.
        macro_rules! rows {
            ($packed:literal) => {
                match mr {
                    12 => tile::<12, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    11 => tile::<11, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    10 => tile::<10, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    9 => tile::<9, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    8 => tile::<8, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    7 => tile::<7, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    6 => tile::<6, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    5 => tile::<5, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    4 => tile::<4, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    3 => tile::<3, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    2 => tile::<2, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                    _ => tile::<1, $packed>(kc, a, ars, acs, b, brs, scale, c, ldc, nr),
                }
            };
        }
        // SAFETY: forwarded from the caller's contract; `gemm` (the only caller,
        // through `blocked`) runs only where the CPU has the tile's instructions.
        unsafe {
            if ars == 1 && acs == mr {
                rows!(true)
            } else {
                rows!(false)
            }
        }
    }

    #[inline(always)]
    unsafe fn pack(panel: *mut f32, b: MatRef<'_>, k0: usize, kc: usize, j0: usize, nr: usize) {
        // SAFETY: the caller's contract.
        unsafe {
            if b.cs == 1 && nr == NR {
                pack_rows(panel, b.data.as_ptr().add(k0 * b.rs + j0), b.rs, kc);
            } else if b.rs == 1 && nr == NR {
                let columns = b.data.as_ptr().add(j0 * b.cs + k0);
                pack_columns(panel, NR, columns, b.cs, kc);
                pack_columns(panel.add(16), NR, columns.add(16 * b.cs), b.cs, kc);
            } else {
                pack(panel, NR, b, k0, kc, j0, nr);
            }
        }
    }

    #[inline(always)]
    unsafe fn pack_a_rows(tile: *mut f32, src: *const f32, (rs, cs): (usize, usize), mr: usize, kc: usize) {
        // SAFETY: the caller's contract.
        unsafe {
            if mr == MR && cs == 1 {
                pack_a_twelve(tile, src, rs, kc);
            } else {
                pack_a_rows(tile, src, (rs, cs), mr, 0, kc);
            }
        }
    }
}

/// Packs twelve rows of `A` with contiguous columns (row `r` at `src + r rs`) into
/// `tile`, element `(r, p)` at `12 p + r`: each group of eight columns is loaded as
/// rows 0 to 7 and rows 8 to 11 (the last repeated), both transposed, and each column
/// stored as eight floats and four. The last `kc % 8` columns are copied one by one.
///
/// # Safety
/// The CPU has AVX2; the twelve rows of `kc` floats are readable; `tile` has room for
/// `12 kc` floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a_twelve(tile: *mut f32, src: *const f32, rs: usize, kc: usize) {
    let mut p = 0;
    while p + 8 <= kc {
        // SAFETY: rows `r < 12` hold floats `p..p + 8 <= kc`; column `p + q` is stored
        // at `12 (p + q)..12 (p + q) + 12 <= 12 kc`.
        unsafe {
            let row = |r: usize| _mm256_loadu_ps(src.add(r.min(11) * rs + p));
            let top = transpose8([row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)]);
            let bottom = transpose8([row(8), row(9), row(10), row(11), row(11), row(11), row(11), row(11)]);
            for q in 0..8 {
                let column = tile.add(12 * (p + q));
                _mm256_storeu_ps(column, top[q]);
                _mm_storeu_ps(column.add(8), _mm256_castps256_ps128(bottom[q]));
            }
        }
        p += 8;
    }
    // SAFETY: as above, for the remaining columns.
    unsafe { pack_a_rows(tile, src, (rs, 1), 12, p, kc) }
}

/// Packs 32 contiguous floats of each of `kc` rows of `B` (row `p` at `b + p rs`) into
/// `kc` panel rows of 32, by two vector copies per row.
///
/// # Safety
/// The CPU has AVX-512 F; the `kc` rows of 32 floats are readable; the panel has room
/// for `32 kc` floats.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn pack_rows(panel: *mut f32, b: *const f32, rs: usize, kc: usize) {
    for p in 0..kc {
        // SAFETY: row `p < kc` has 32 readable floats, panel row `p` room for 32.
        unsafe {
            let src = b.add(p * rs);
            _mm512_storeu_ps(panel.add(p * NR), _mm512_loadu_ps(src));
            _mm512_storeu_ps(panel.add(p * NR + 16), _mm512_loadu_ps(src.add(16)));
        }
    }
}

/// `C[m x n] = alpha A[m x k] B[k x n] + beta C` (`C` row-major, row stride `ldc`;
/// with `beta == 0`, `C` is not read), with the bits of `avx2::gemm` and
/// `portable::gemm`.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA (`isa().avx512()`); the views must lie
/// within their slices; `C`'s `m` rows of `n` columns (stride `ldc`) must be writable
/// at `c` and not otherwise borrowed.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: *mut f32, ldc: usize) {
    #[cfg(feature = "std")]
    if a.rows > MC {
        // SAFETY: `blocked` does not re-enter `with_blocks`; the caller's contract; the
        // blocks have their sizes (`MC x KC` and `KC x NC`), and with them the panel
        // is not used.
        return unsafe {
            super::avx2::with_blocks(|blocks| {
                blocked::<Avx512>(alpha, a, b, beta, c, ldc, core::ptr::null_mut(), Some(blocks))
            })
        };
    }
    #[cfg(feature = "std")]
    {
        // The panel (32 KiB) is this thread's static array, neither on its stack (batch-1
        // inference's stack bound, `layer::STACK_MARGIN_BYTES`, counts the AVX2 panel)
        // nor allocated.
        PANEL.with(|panel| {
            // SAFETY: this thread's panel, not borrowed elsewhere (`gemm` does not
            // re-enter itself); the caller's contract; the panel holds `KC x NR` floats.
            unsafe { blocked::<Avx512>(alpha, a, b, beta, c, ldc, panel.get().cast(), None) }
        })
    }
    #[cfg(not(feature = "std"))]
    {
        // Uninitialised: `blocked` writes each panel row before the tile reads it.
        let mut panel = core::mem::MaybeUninit::<[f32; KC * NR]>::uninit();
        // SAFETY: the caller's contract; the panel holds `KC x NR` floats.
        unsafe { blocked::<Avx512>(alpha, a, b, beta, c, ldc, panel.as_mut_ptr().cast(), None) }
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// The packed panel of `B` of [`gemm`]'s products of at most `MC` rows: a
    /// zero-initialised thread-local array (no allocation, no initialiser to run).
    static PANEL: core::cell::UnsafeCell<[f32; KC * NR]> = const { core::cell::UnsafeCell::new([0.0; KC * NR]) };
}

/// The mask of the first `n` of 16 lanes (all for `n >= 16`).
#[inline(always)]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// `alpha acc + beta c` for the lanes of `mask` at `at`, as `portable::combine` rounds
/// each: `alpha acc` for `beta == 0` (`C` not read), else one fused multiply-add onto
/// `c` or `beta c`.
///
/// # Safety
/// The CPU has AVX-512 F; the lanes of `mask` at `at` are writable.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn write(at: *mut f32, mask: __mmask16, acc: __m512, (alpha, beta): (f32, f32)) {
    let va = _mm512_set1_ps(alpha);
    // SAFETY: masked loads and stores touch only the lanes of `mask` (the contract).
    unsafe {
        let v = if beta == 0.0 {
            _mm512_mul_ps(va, acc)
        } else {
            let c = _mm512_maskz_loadu_ps(mask, at);
            let c = if beta == 1.0 { c } else { _mm512_mul_ps(_mm512_set1_ps(beta), c) };
            _mm512_fmadd_ps(va, acc, c)
        };
        _mm512_mask_storeu_ps(at, mask, v);
    }
}

/// `C[R x nr] = alpha A[R x kc] B[kc x NR] + beta C`: `A` at `a` with strides `ars`,
/// `acs`; `B` at `b` with row stride `brs` and 32 readable columns per row; `C` at `c`
/// with row stride `ldc`, of which the first `nr <= 32` columns are written (and read
/// only when `beta != 0`).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const PACKED: bool>(
    kc: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    brs: usize,
    scale: (f32, f32),
    c: *mut f32,
    ldc: usize,
    nr: usize,
) {
    // With `PACKED`, `A` is a packed tile: constant strides.
    let (ars, acs) = if PACKED { (1, R) } else { (ars, acs) };
    // The tile's rows of C are far apart in large products (no hardware prefetch
    // follows them): fetch them now, to be in L1 when the sums are added to them.
    if scale.1 != 0.0 {
        for r in 0..R {
            // SAFETY: a prefetch does not fault; `C[r, 0]` and `C[r, nr - 1]` are in C.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc + nr - 1) as *const i8);
            }
        }
    }
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    for p in 0..kc {
        // SAFETY: row `p < kc` of the B panel has 32 readable floats, and `A[r, p]`
        // (r < R, p < kc) is inside A's slice (caller's contract).
        unsafe {
            let bp = b.add(p * brs);
            let b0 = _mm512_loadu_ps(bp);
            let b1 = _mm512_loadu_ps(bp.add(16));
            let ap = a.add(p * acs);
            for r in 0..R {
                let av = _mm512_set1_ps(*ap.add(r * ars));
                lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
            }
        }
    }
    let (mask_lo, mask_hi) = (lanes(nr), lanes(nr.saturating_sub(16)));
    for r in 0..R {
        // SAFETY: row `r < R` of C has `nr` writable floats at `c + r ldc`; the masks
        // cover columns `< nr`.
        unsafe {
            let cr = c.add(r * ldc);
            write(cr, mask_lo, lo[r], scale);
            if nr > 16 {
                write(cr.add(16), mask_hi, hi[r], scale);
            }
        }
    }
}

/// `C[m, n] += A[m, k] B[k, n]` for a `B` that is not stored, as `avx2::gemm_gathered`
/// (whose documentation gives the arguments), with the AVX-512 tile: element `(p, j)`
/// of `B` is `src[offsets[p] + (j / width) stride + j % width]`; `n` and `width` are
/// multiples of 8. The same bits as `avx2::gemm_gathered`.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
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
        let mr = if m - i > MR && m - i < MR + 4 { (m - i).div_ceil(2) } else { MR.min(m - i) };
        let mut j0 = 0;
        while j0 < n {
            let nr = NR.min(n - j0);
            // The four blocks of eight columns (repeating the last one present).
            let bases = core::array::from_fn(|q| base(j0 + 8 * q.min(nr / 8 - 1)));
            let from = match start {
                None => Start::Load,
                Some(None) => Start::Zero,
                Some(Some(bias)) => Start::Bias(bias[i..].as_ptr()),
            };
            // SAFETY: rows `i..i + mr` of A (`k` columns each), the offsets and the
            // tile of C are in bounds (asserted); every read of `src` is below `reach`.
            unsafe {
                let (at, ct) = (ap.add(i * ars), cp.add(i * ldc + j0));
                let g = Gathered { src: sp, offsets: op, bases };
                match mr {
                    12 => gathered_tile::<12>(k, at, ars, g, from, ct, ldc, nr),
                    11 => gathered_tile::<11>(k, at, ars, g, from, ct, ldc, nr),
                    10 => gathered_tile::<10>(k, at, ars, g, from, ct, ldc, nr),
                    9 => gathered_tile::<9>(k, at, ars, g, from, ct, ldc, nr),
                    8 => gathered_tile::<8>(k, at, ars, g, from, ct, ldc, nr),
                    7 => gathered_tile::<7>(k, at, ars, g, from, ct, ldc, nr),
                    6 => gathered_tile::<6>(k, at, ars, g, from, ct, ldc, nr),
                    5 => gathered_tile::<5>(k, at, ars, g, from, ct, ldc, nr),
                    4 => gathered_tile::<4>(k, at, ars, g, from, ct, ldc, nr),
                    3 => gathered_tile::<3>(k, at, ars, g, from, ct, ldc, nr),
                    2 => gathered_tile::<2>(k, at, ars, g, from, ct, ldc, nr),
                    _ => gathered_tile::<1>(k, at, ars, g, from, ct, ldc, nr),
                }
            }
            j0 += nr;
        }
        i += mr;
    }
}

/// Where [`gathered_tile`] reads the rows of `B`: row `p`'s block `q` of eight columns at
/// `src + offsets[p] + bases[q]`.
#[derive(Clone, Copy)]
struct Gathered {
    src: *const f32,
    offsets: *const usize,
    bases: [usize; 4],
}

/// Where the sums of a tile of [`gemm_gathered`] are added: to `C`, to zero, or to one
/// value per row (`R` of them from the pointer).
#[derive(Clone, Copy)]
enum Start {
    Load,
    Zero,
    Bias(*const f32),
}

/// The tile of [`gemm_gathered`]: [`tile`] with `alpha = beta = 1` and each 16-lane
/// row of `B` assembled from two blocks of eight ([`Gathered`]); `nr` is a multiple of
/// 8 up to 32, and only its columns are written.
///
/// # Safety
/// As [`gemm_gathered`] asserts.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gathered_tile<const R: usize>(
    kc: usize,
    a: *const f32,
    ars: usize,
    g: Gathered,
    start: Start,
    c: *mut f32,
    ldc: usize,
    nr: usize,
) {
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    let [q0, q1, q2, q3] = g.bases;
    for p in 0..kc {
        // SAFETY: the caller's contract.
        unsafe {
            let row = g.src.add(*g.offsets.add(p));
            // Two blocks of eight in one register (AVX-512 F has no `insertf32x8`).
            let pair = |first: usize, second: usize| {
                let low = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(row.add(first))));
                _mm512_castpd_ps(_mm512_insertf64x4::<1>(low, _mm256_castps_pd(_mm256_loadu_ps(row.add(second)))))
            };
            let (b0, b1) = (pair(q0, q1), pair(q2, q3));
            let ap = a.add(p);
            for r in 0..R {
                let av = _mm512_set1_ps(*ap.add(r * ars));
                lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
            }
        }
    }
    let one = _mm512_set1_ps(1.0);
    let (mask_lo, mask_hi) = (lanes(nr), lanes(nr.saturating_sub(16)));
    for r in 0..R {
        // SAFETY: row `r < R` of C has `nr` writable floats at `c + r ldc`; the masks
        // cover columns `< nr`.
        unsafe {
            let cr = c.add(r * ldc);
            let (c0, c1) = match start {
                Start::Load => (_mm512_maskz_loadu_ps(mask_lo, cr), _mm512_maskz_loadu_ps(mask_hi, cr.add(16))),
                Start::Zero => (_mm512_setzero_ps(), _mm512_setzero_ps()),
                Start::Bias(b) => (_mm512_set1_ps(*b.add(r)), _mm512_set1_ps(*b.add(r))),
            };
            _mm512_mask_storeu_ps(cr, mask_lo, _mm512_fmadd_ps(one, lo[r], c0));
            if nr > 16 {
                _mm512_mask_storeu_ps(cr.add(16), mask_hi, _mm512_fmadd_ps(one, hi[r], c1));
            }
        }
    }
}

/// Rows of the register tile of [`gemm_rows`] for `v` vectors of 16 columns: `R x v`
/// accumulators, the `v` vectors of the row of `B` and a broadcast of `A` within the 32
/// ZMM registers.
const fn rows_mr(v: usize) -> usize {
    if v >= 4 {
        6
    } else {
        12
    }
}

/// Vectors of 16 of the tile of [`gemm_rows`] for `nr <= 64` columns: 1, 2 or 4.
const fn rows_vectors(nr: usize) -> usize {
    match nr.div_ceil(16) {
        3 => 4,
        v => v,
    }
}

/// The floats of `src` that [`gemm_rows`] reads from a row of `B` at `offset` when `B`
/// has `n` columns: its tiles of up to 64 columns read whole vectors of 16, so up to 31
/// floats past the row's end (`None` if that overflows).
pub const fn rows_reach(offset: usize, n: usize) -> Option<usize> {
    let last = n.saturating_sub(1) / 64 * 64;
    match offset.checked_add(last) {
        Some(at) => at.checked_add(16 * rows_vectors(n - last)),
        None => None,
    }
}

/// `C[m, n] += A[m, k] B[k, n]` for a `B` whose rows lie anywhere in `src`, each
/// contiguous: element `(p, j)` is `src[offsets[p] + j]` (a convolution's column row
/// `p`, read from its shifted input planes), any `n`. `A` has row stride `ars`, `C` row
/// stride `ldc`. With `start` given, `C`'s values are not read: the sums are added to
/// `start[i]` (a bias), or to zero when `start` is `Some(None)`. The register tile is up
/// to 64 columns (four vectors) by [`rows_mr`] rows, and every row of `B` is read as
/// whole vectors of 16 (a masked load costs a second micro-operation, a quarter of the
/// product's time): the lanes past column `n` read the floats that follow, which
/// [`rows_reach`] counts, and their sums are not stored. Each element is one chain of
/// fused multiply-adds over `p = 0..k` in order, then added to its start: the order of
/// [`gemm`] and [`gemm_gathered`] for `k <= KC`, so the same bits.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
///
/// # Panics
/// If `k > KC`, an offset is missing, `src` holds fewer than [`rows_reach`] floats, or
/// `a`, `c` or `start` is too short.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_rows(
    a: &[f32],
    ars: usize,
    m: usize,
    k: usize,
    src: &[f32],
    offsets: &[usize],
    start: Option<Option<&[f32]>>,
    c: &mut [f32],
    ldc: usize,
    n: usize,
) {
    // The largest offset, by a loop of this function's (compiled for AVX-512, whose
    // unsigned maximum of eight lanes it becomes; a closure's would be one at a time).
    let reach = match offsets.get(..k) {
        Some(o) => {
            let mut last = 0;
            for &at in o {
                last = last.max(at);
            }
            rows_reach(last, n)
        }
        None => None,
    };
    assert!(
        k <= KC
            && k <= offsets.len()
            && (k == 0 || n == 0 || reach.is_some_and(|reach| reach <= src.len()))
            && rows_fit(m, ars, k, a.len())
            && rows_fit(m, ldc, n, c.len())
            && start.flatten().is_none_or(|b| b.len() >= m),
        "gemm_rows: shapes"
    );
    let (ap, sp, op, cp) = (a.as_ptr(), src.as_ptr(), offsets.as_ptr(), c.as_mut_ptr());
    let mut j0 = 0;
    while j0 < n {
        let nr = (n - j0).min(64);
        let v = rows_vectors(nr);
        let max = rows_mr(v);
        let mut i = 0;
        while i < m {
            // A remainder of more than half a tile is shared by two tiles.
            let mr = if m - i > max && m - i < 2 * max { (m - i).div_ceil(2) } else { max.min(m - i) };
            let from = match start {
                None => Start::Load,
                Some(None) => Start::Zero,
                Some(Some(bias)) => Start::Bias(bias[i..].as_ptr()),
            };
            // SAFETY: rows `i..i + mr` of A (`k` columns each), the offsets, the rows of
            // B from column `j0` on (`nr` floats) and the tile of C are in bounds
            // (asserted).
            unsafe {
                let (at, bt, ct) = (ap.add(i * ars), sp.add(j0), cp.add(i * ldc + j0));
                macro_rules! dispatch {
                    ($v:literal: $($r:literal)+) => {
                        match mr {
                            $($r => rows_tile::<$r, $v>(k, at, ars, bt, op, from, ct, ldc, nr),)+
                            _ => unreachable!(),
                        }
                    };
                }
                match v {
                    4 => dispatch!(4: 1 2 3 4 5 6),
                    2 => dispatch!(2: 1 2 3 4 5 6 7 8 9 10 11 12),
                    _ => dispatch!(1: 1 2 3 4 5 6 7 8 9 10 11 12),
                }
            }
            i += mr;
        }
        j0 += nr;
    }
}

/// The tile of [`gemm_rows`]: `R` rows of `A` by `V` vectors of 16 columns, all read,
/// of which the first `nr` are written.
///
/// # Safety
/// As [`gemm_rows`] asserts, for rows of `A` from `a`, of `B` from `src + offsets[p]`
/// and of `C` from `c`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_tile<const R: usize, const V: usize>(
    kc: usize,
    a: *const f32,
    ars: usize,
    src: *const f32,
    offsets: *const usize,
    start: Start,
    c: *mut f32,
    ldc: usize,
    nr: usize,
) {
    let masks: [__mmask16; V] = core::array::from_fn(|q| lanes(nr.saturating_sub(16 * q)));
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for p in 0..kc {
        // SAFETY: the caller's contract (`rows_reach`).
        unsafe {
            let row = src.add(*offsets.add(p));
            let b: [__m512; V] = core::array::from_fn(|q| _mm512_loadu_ps(row.add(16 * q)));
            let ap = a.add(p);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r * ars));
                for (acc, b) in acc.iter_mut().zip(b) {
                    *acc = _mm512_fmadd_ps(av, b, *acc);
                }
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (q, (&acc, &mask)) in acc.iter().zip(&masks).enumerate() {
            // SAFETY: row `r < R` of C has `nr` writable floats at `c + r ldc`; the mask
            // covers columns `< nr`.
            unsafe {
                let at = c.add(r * ldc + 16 * q);
                let from = match start {
                    Start::Load => _mm512_maskz_loadu_ps(mask, at),
                    Start::Zero => _mm512_setzero_ps(),
                    Start::Bias(b) => _mm512_set1_ps(*b.add(r)),
                };
                _mm512_mask_storeu_ps(at, mask, _mm512_add_ps(acc, from));
            }
        }
    }
}

/// Column-matrix rows of the tile of [`gemm_gathered_t`]: 16 accumulators, and a row
/// pointer per row in the general registers (twelve rows spill both).
pub const GATHERED_T_MR: usize = 8;

/// One ZMM register of 16 floats for the loops of [`super::conv_grad`].
#[derive(Clone, Copy)]
pub(crate) struct Zmm(__m512);

impl super::conv_grad::Vector for Zmm {
    const LANES: usize = 16;
    const WEIGHT_MR: usize = GATHERED_T_MR;
    const TAPS_MR: usize = TAPS_MR;
    const ONE_REGISTER_TILE: bool = true;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the trait's contract (AVX-512 F).
        Zmm(unsafe { _mm512_setzero_ps() })
    }

    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self {
        // SAFETY: the trait's contract.
        Zmm(unsafe { _mm512_set1_ps(*p) })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the trait's contract.
        Zmm(unsafe { _mm512_loadu_ps(p) })
    }

    #[inline(always)]
    unsafe fn load_blocks<const CONTIGUOUS: bool>(row: *const f32, bases: &[usize]) -> Self {
        // SAFETY: the trait's contract.
        unsafe {
            if CONTIGUOUS {
                return Zmm(_mm512_loadu_ps(row.add(bases[0])));
            }
            let low = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(row.add(bases[0]))));
            Zmm(_mm512_castpd_ps(_mm512_insertf64x4::<1>(low, _mm256_castps_pd(_mm256_loadu_ps(row.add(bases[1]))))))
        }
    }

    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: the trait's contract.
        Zmm(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: the trait's contract.
        Zmm(unsafe { _mm512_add_ps(a.0, b.0) })
    }

    #[inline(always)]
    unsafe fn load_first(p: *const f32, count: usize) -> Self {
        // SAFETY: the trait's contract.
        Zmm(unsafe { _mm512_maskz_loadu_ps(lanes(count), p) })
    }

    #[inline(always)]
    unsafe fn store_first(p: *mut f32, v: Self, count: usize) {
        // SAFETY: the trait's contract.
        unsafe { _mm512_mask_storeu_ps(p, lanes(count), v.0) }
    }

    #[inline(always)]
    unsafe fn add_transposed8(t: &[[f32; 32]; 8], nr: usize, dw: *mut f32, ldw: usize) {
        // SAFETY: the trait's contract.
        unsafe { super::avx2::add_transposed8(t, nr, dw, ldw) }
    }

    #[inline(always)]
    unsafe fn add_transposed_rows(t: &[[f32; 32]; 8], rows: usize, nr: usize, dw: *mut f32, ldw: usize) {
        // SAFETY: the trait's contract.
        unsafe { super::avx2::add_transposed_rows(t, rows, nr, dw, ldw) }
    }
}

/// A convolution's weight gradient without its column matrix, 32 filters at a time:
/// [`super::conv_grad::weight_grad`] in 16 lanes.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA; `dw`'s `n` rows of `m` floats (row stride
/// `ldw`) are writable and no other thread reads or writes them.
#[target_feature(enable = "avx512f,avx2,fma")]
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
    unsafe { super::conv_grad::weight_grad::<Zmm>(src, offsets, bases, m, k, dyt, ldt, n, dw, ldw) }
}

/// Rows of the tile of [`gemm_gathered_taps`]: the sums of the current tap in 16 of the
/// 32 ZMM registers (16 chains of fused multiply-adds, two per FMA port and cycle of
/// latency), the running sums in memory.
pub const TAPS_MR: usize = 8;

/// A convolution's input gradient without its column matrix, 32 input positions at a
/// time: [`super::conv_grad::input_grad`] in 16 lanes.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
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
    unsafe { super::conv_grad::input_grad::<Zmm>(a, lda, m, k, taps, src, plane, tap_offsets, rows, c, ldc, n) }
}

/// `y[i] += alpha * sum_j A[i, j] x[j]` for `A` column-major with column stride `cs`,
/// `m` rows of `n` columns, rounded as `avx2::gemv_columns`: the rows of its blocks of
/// eight as one chain of fused multiply-adds each, added by one more (blocks of 128
/// rows in eight registers, then 16, then 8 on the AVX2 form), the last `m % 8` rows
/// as plain products and sums.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA; `a` must hold `(n - 1) cs + m` floats
/// (when `n > 0`), `x` at least `n`, `y` at least `m`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gemv_columns(alpha: f32, a: &[f32], cs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32]) {
    assert!(x.len() >= n && y.len() >= m && rows_fit(n, cs, m, a.len()), "gemv_columns: shapes");
    let scale = _mm512_set1_ps(alpha);
    let (ap, yp) = (a.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i + 128 <= m {
        // SAFETY: rows `i..i + 128 <= m` of every column `j < n` are inside `a`, and `y`
        // holds `m` floats (asserted).
        unsafe {
            let mut acc = [_mm512_setzero_ps(); 8];
            for (j, &xj) in x[..n].iter().enumerate() {
                let xv = _mm512_set1_ps(xj);
                let col = ap.add(j * cs + i);
                for (q, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_ps(xv, _mm512_loadu_ps(col.add(16 * q)), *acc);
                }
            }
            for (q, acc) in acc.iter().enumerate() {
                let yq = yp.add(i + 16 * q);
                _mm512_storeu_ps(yq, _mm512_fmadd_ps(scale, *acc, _mm512_loadu_ps(yq)));
            }
        }
        i += 128;
    }
    while i + 16 <= m {
        // SAFETY: as above, for rows `i..i + 16 <= m`.
        unsafe {
            let mut acc = _mm512_setzero_ps();
            for (j, &xj) in x[..n].iter().enumerate() {
                acc = _mm512_fmadd_ps(_mm512_set1_ps(xj), _mm512_loadu_ps(ap.add(j * cs + i)), acc);
            }
            let yq = yp.add(i);
            _mm512_storeu_ps(yq, _mm512_fmadd_ps(scale, acc, _mm512_loadu_ps(yq)));
        }
        i += 16;
    }
    if i < m {
        // SAFETY: the CPU has AVX2 and FMA; rows `i..m` of every column are inside `a`.
        unsafe { super::avx2::gemv_columns(alpha, &a[i..], cs, m - i, n, x, &mut y[i..]) };
    }
}

/// Columns from which [`gemv_batch_strided`] is faster than the AVX2 form (measured on
/// a Xeon with AVX-512: 1.5 times as fast at 512 columns, 0.9 times at 64, where the
/// reductions weigh more).
pub const BATCH_MIN_COLUMNS: usize = 128;

/// `avx2::gemv_batch_strided` with four vectors at a time: `y_s[i] += alpha dot(A[i, :],
/// x_s)` for `A` row-major (row stride `rs`, `m` rows of `n` columns) and `batch`
/// vectors `x_s` (`x[s n..]`), `y_s` at `y + s ldy`, every element rounded exactly as
/// `dot` rounds it (eight lanes per sum, the AVX2 reduction), so that a vector's result
/// depends neither on its batch nor on the instruction set. Each register holds the
/// eight lanes of one row against two vectors, so that a tile of four rows by four
/// vectors makes sixteen sums from eight loads (the AVX2 tile, eight from six).
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA; `a` must hold `(m - 1) rs + n` floats
/// (when `m > 0`), `x` at least `batch n`; `y + s ldy + i` must be writable and not
/// otherwise borrowed for `s < batch`, `i < m`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemv_batch_strided(
    alpha: f32,
    a: &[f32],
    rs: usize,
    m: usize,
    n: usize,
    x: &[f32],
    y: *mut f32,
    ldy: usize,
    batch: usize,
) {
    use super::avx2::{blocks_fit, dot_tile, BATCH_BLOCK_BYTES};
    assert!(blocks_fit(batch, n, x.len()) && rows_fit(m, rs, n, a.len()), "gemv_batch_strided: shapes");
    let block = (BATCH_BLOCK_BYTES / (4 * n.max(1)) / 4 * 4).max(4);
    let (ap, xp) = (a.as_ptr(), x.as_ptr());
    let mut i1 = 0;
    while i1 < m {
        let i_end = (i1 + block).min(m);
        let mut s = 0;
        while s < batch {
            let vectors = (batch - s).min(4);
            let mut i = i1;
            while i < i_end {
                let rows = (i_end - i).min(4);
                // Missing rows of a partial tile repeat the last one (computed, not
                // stored), so the tile always reads four valid rows.
                // SAFETY: rows `i..i + rows` of A and vectors `s..s + vectors` of x are
                // inside their slices (asserted); `y`'s elements by the contract.
                unsafe {
                    let a_rows: [*const f32; 4] = core::array::from_fn(|q| ap.add((i + q.min(rows - 1)) * rs));
                    let out = y.add(s * ldy + i);
                    let x_at = |v: usize| xp.add((s + v) * n);
                    match vectors {
                        4 => pair_tile::<4>(n, [x_at(0), x_at(1), x_at(2), x_at(3)], a_rows, alpha, out, ldy, rows),
                        3 => {
                            pair_tile::<2>(n, [x_at(0), x_at(1)], a_rows, alpha, out, ldy, rows);
                            dot_tile::<1>(n, [x_at(2)], a_rows, alpha, out.add(2 * ldy), ldy, rows);
                        }
                        2 => pair_tile::<2>(n, [x_at(0), x_at(1)], a_rows, alpha, out, ldy, rows),
                        _ => dot_tile::<1>(n, [x_at(0)], a_rows, alpha, out, ldy, rows),
                    }
                }
                i += rows;
            }
            s += vectors;
        }
        i1 = i_end;
    }
}

/// `y[v, q] += alpha dot(vectors[v], rows[q])` for `v < V` (2 or 4), `q < width`, `y`
/// with stride `ldy`: register `(p, q)` holds row `q` against vector `2 p` in its low
/// eight lanes and `2 p + 1` in its high eight, each half the accumulator
/// `avx2::dot_tile` keeps, reduced by the same `sum4`, the tail added as there.
///
/// # Safety
/// The CPU has AVX-512 F, AVX2 and FMA; every vector and row holds `n` floats; `y`'s
/// `V` rows of `width` floats (stride `ldy`) are writable.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn pair_tile<const V: usize>(
    n: usize,
    vectors: [*const f32; V],
    rows: [*const f32; 4],
    alpha: f32,
    y: *mut f32,
    ldy: usize,
    width: usize,
) {
    use super::avx2::{sum4, tail};
    debug_assert!(V == 2 || V == 4);
    let blocks = n - n % 8;
    let mut acc = [[_mm512_setzero_ps(); 4]; 2];
    let mut p = 0;
    // SAFETY: loads of floats `p..p + 8 <= blocks`, scalar reads below `n`, and writes
    // to the first `width` floats of `V` rows of `y` (the caller's contract).
    unsafe {
        while p < blocks {
            // Each row's eight floats in both halves.
            let r: [__m512; 4] = core::array::from_fn(|q| {
                _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(rows[q].add(p)))))
            });
            for pair in 0..V / 2 {
                let low = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(vectors[2 * pair].add(p))));
                let high = _mm256_castps_pd(_mm256_loadu_ps(vectors[2 * pair + 1].add(p)));
                let xv = _mm512_castpd_ps(_mm512_insertf64x4::<1>(low, high));
                for q in 0..4 {
                    acc[pair][q] = _mm512_fmadd_ps(r[q], xv, acc[pair][q]);
                }
            }
            p += 8;
        }
        for v in 0..V {
            let half = |z: __m512| {
                if v % 2 == 0 {
                    _mm512_castps512_ps256(z)
                } else {
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(z)))
                }
            };
            let lanes = acc[v / 2];
            let sums = sum4(half(lanes[0]), half(lanes[1]), half(lanes[2]), half(lanes[3]));
            let yv = y.add(v * ldy);
            if blocks == n && width == 4 {
                _mm_storeu_ps(yv, _mm_add_ps(_mm_loadu_ps(yv), _mm_mul_ps(_mm_set1_ps(alpha), sums)));
            } else {
                let mut out = [0.0f32; 4];
                _mm_storeu_ps(out.as_mut_ptr(), sums);
                for (q, &sum) in out.iter().enumerate().take(width) {
                    let sum = if blocks == n { sum } else { sum + tail(rows[q], vectors[v], blocks, n) };
                    *yv.add(q) += alpha * sum;
                }
            }
        }
    }
}

/// [`super::avx2::gemv_fixed`] for rows of 8 (`N = 8`), the same bits with half the
/// shuffles: two rows per register, each eight-lane product reduced in the order of
/// `avx2::sum4` (`((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`) by in-lane
/// shuffles of 16 lanes, eight shuffles per eight rows where `vhaddps` takes fourteen.
/// The last `m % 8` rows by the AVX2 kernel.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
///
/// # Panics
/// If `a` holds fewer than `8 m` floats, `x` fewer than 8, `y` or `bias` fewer than `m`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub unsafe fn gemv8(a: &[f32], m: usize, x: &[f32], bias: Option<&[f32]>, relu: bool, y: &mut [f32]) {
    assert!(
        super::avx2::blocks_fit(m, 8, a.len()) && x.len() >= 8 && y.len() >= m && bias.is_none_or(|b| b.len() >= m),
        "gemv8: shapes"
    );
    let (ap, yp) = (a.as_ptr(), y.as_mut_ptr());
    let zero = _mm512_setzero_ps();
    // SAFETY: `x` holds 8 floats (asserted).
    let xx = unsafe { _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(x.as_ptr())))) };
    let blocks = m / 8;
    for block in 0..blocks {
        let i = 8 * block;
        // SAFETY: rows `i..i + 8 <= m` of 8 floats are inside `a`; `y` and `bias` hold
        // `m` floats (asserted).
        unsafe {
            let rows = ap.add(i * 8);
            // Rows (0, 1), (2, 3), (4, 5), (6, 7), each lane `w x + 0` as in the AVX2 kernel.
            let p: [__m512; 4] = core::array::from_fn(|k| _mm512_fmadd_ps(_mm512_loadu_ps(rows.add(16 * k)), xx, zero));
            // Per 128-bit lane (four lanes of one row): pairs, then the two pairs.
            let pairs = |u: __m512, v: __m512| {
                _mm512_add_ps(_mm512_shuffle_ps::<0b10_00_10_00>(u, v), _mm512_shuffle_ps::<0b11_01_11_01>(u, v))
            };
            // The second level's result, `[r0 r2 r4 r6 | r0' r2' r4' r6' | r1 r3 r5 r7 |
            // r1' r3' r5' r7']` (a primed row: its lanes 4 to 7), as `[r0..r7]` and
            // `[r0'..r7']` by shuffles of immediates (no index vector to load), then added.
            let quads = pairs(pairs(p[0], p[1]), pairs(p[2], p[3]));
            let (even, odd) =
                (_mm512_castps512_ps256(quads), _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(quads))));
            let (low, high) = (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd));
            let sums =
                _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(low, high), _mm256_permute2f128_ps::<0x31>(low, high));
            let start = match bias {
                Some(b) => _mm256_loadu_ps(b.as_ptr().add(i)),
                None => _mm256_setzero_ps(),
            };
            let mut v = _mm256_add_ps(start, sums);
            if relu {
                // `max` returns its second operand when either is NaN (or both zeros).
                v = _mm256_max_ps(v, _mm256_setzero_ps());
            }
            _mm256_storeu_ps(yp.add(i), v);
        }
    }
    let i = 8 * blocks;
    if i < m {
        let bias = bias.map(|b| &b[i..m]);
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { super::avx2::gemv_fixed::<8>(&a[i * 8..], m - i, x, bias, relu, false, &mut y[i..m]) };
    }
}

/// Dense 8 -> 8 at batch 1: [`gemv8`] with every size in the types, so that nothing is
/// checked at run time and the call passes four pointers (`bias` may be null); the
/// same bits as [`gemv8`], ReLU fused when `RELU`.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub unsafe fn dense8x8<const RELU: bool>(w: &[f32; 64], x: &[f32; 8], bias: Option<&[f32; 8]>, y: &mut [f32; 8]) {
    // SAFETY: the CPU has what `gemv8` needs (the caller's contract); 8 rows of 8.
    unsafe { gemv8(w, 8, x, bias.map(|b| b.as_slice()), RELU, y) }
}

/// [`dense8x8`] returning its outputs by value, with a bias always (zeros for none, the
/// same bits): called from code compiled without AVX-512 (out of line), the kernel
/// writes them straight into the caller's return slot (see
/// [`super::avx2::dense8x8_value`]). The same bits as [`gemv8`].
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub unsafe fn dense8x8_value<const RELU: bool>(w: &[f32; 64], x: &[f32; 8], bias: &[f32; 8]) -> [f32; 8] {
    let mut y = [0.0; 8];
    // SAFETY: the CPU has what `gemv8` needs (the caller's contract); 8 rows of 8.
    unsafe { gemv8(w, 8, x, Some(bias), RELU, &mut y) };
    y
}

/// [`super::avx2::gemv_panels`] on sixteen lanes: the same step-ordered matrix and the
/// same bits, two panels of 16 rows at a time (sixteen accumulators sharing each input
/// of `x`, spread across the lanes by an in-lane shuffle, [`panels16_at`]), then a lone
/// panel of 16, then the last 8 rows by the AVX2 form.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
///
/// # Panics
/// As the AVX2 form.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub unsafe fn gemv_panels<const N: usize>(
    panels: &[f32],
    m: usize,
    x: &[f32],
    bias: &[f32],
    reverse: bool,
    y: &mut [f32],
) {
    // SAFETY: the caller's contract.
    unsafe { gemv_panels_with::<N>(panels, m, x, bias, reverse, y, |_| {}) }
}

/// [`gemv_panels`], calling `after(k)` after the `k`-th unit of rows it sums (a pair
/// of panels of 16 rows, a lone panel or the last 8 rows; `k` from 0 in the order the
/// units are read, whatever `reverse`), inlined into the loop: independent arithmetic
/// of the caller runs beside the rows' multiply-adds (while those wait on rows from
/// L2). The same bits as [`gemv_panels`].
///
/// # Safety
/// As [`gemv_panels`].
///
/// # Panics
/// As [`gemv_panels`].
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub(crate) unsafe fn gemv_panels_with<const N: usize>(
    panels: &[f32],
    m: usize,
    x: &[f32],
    bias: &[f32],
    reverse: bool,
    y: &mut [f32],
    mut after: impl FnMut(usize),
) {
    use super::avx2::PANEL_ROWS;
    assert!(
        N.is_multiple_of(8)
            && m.is_multiple_of(8)
            && super::avx2::blocks_fit(m, N, panels.len())
            && x.len() >= N
            && bias.len() >= m
            && y.len() >= m,
        "gemv_panels: shapes"
    );
    let (wp, xp, bp, yp) = (panels.as_ptr(), x.as_ptr(), bias.as_ptr(), y.as_mut_ptr());
    let full = m / PANEL_ROWS;
    let (pairs, lone, tail) = (full / 2, full % 2, usize::from(!m.is_multiple_of(PANEL_ROWS)));
    let units = pairs + lone + tail;
    for k in 0..units {
        let u = if reverse { units - 1 - k } else { k };
        // SAFETY: unit `u` covers panels inside the `m N` floats of `panels` (asserted),
        // rows below `m`; `x` holds `N` floats, `bias` and `y` `m`.
        unsafe {
            if u < pairs {
                panel_pair_plus_bias::<N>(wp, xp, bp, yp, 2 * u * PANEL_ROWS);
            } else if u < pairs + lone {
                let r = 2 * pairs * PANEL_ROWS;
                let [s] = panel16::<N, 1>(wp.add(r * N), xp);
                _mm512_storeu_ps(yp.add(r), _mm512_add_ps(_mm512_loadu_ps(bp.add(r)), s));
            } else {
                let r = full * PANEL_ROWS;
                let s = super::avx2::panel8::<N, 8>(wp.add(r * N), xp);
                _mm256_storeu_ps(yp.add(r), _mm256_add_ps(_mm256_loadu_ps(bp.add(r)), s));
            }
        }
        after(k);
    }
}

/// [`gemv_panels_with`] for `m` rows, a multiple of 32: pairs of panels only (the
/// streaming steps of 32 and 64 units, whose every projection is pairs of panels). The
/// same bits as [`gemv_panels`].
///
/// # Safety
/// As [`gemv_panels`].
///
/// # Panics
/// If `N` is not a multiple of 8 or `m` of 32, `panels` holds fewer than `m N` floats,
/// `x` fewer than `N`, `bias` or `y` fewer than `m`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub(crate) unsafe fn gemv_panel_pairs_with<const N: usize>(
    panels: &[f32],
    m: usize,
    x: &[f32],
    bias: &[f32],
    reverse: bool,
    y: &mut [f32],
    mut after: impl FnMut(usize),
) {
    use super::avx2::PANEL_ROWS;
    assert!(
        N.is_multiple_of(8)
            && m.is_multiple_of(2 * PANEL_ROWS)
            && m.checked_mul(N).is_some_and(|len| panels.len() >= len)
            && x.len() >= N
            && bias.len() >= m
            && y.len() >= m,
        "gemv_panel_pairs_with: shapes"
    );
    let (wp, xp, bp, yp) = (panels.as_ptr(), x.as_ptr(), bias.as_ptr(), y.as_mut_ptr());
    let pairs = m / (2 * PANEL_ROWS);
    for k in 0..pairs {
        let u = if reverse { pairs - 1 - k } else { k };
        // SAFETY: rows `2 u 16 .. 2 u 16 + 32 <= m`: both panels inside the `m N` floats
        // of `panels` (asserted); `x` holds `N` floats, `bias` and `y` `m`.
        unsafe { panel_pair_plus_bias::<N>(wp, xp, bp, yp, 2 * u * PANEL_ROWS) };
        after(k);
    }
}

/// `y[r..r + 32] = bias[r..r + 32] + A[r..r + 32] x` for the pair of panels of 16 rows
/// from row `r` of [`gemv_panels`]' step-ordered matrix at `wp` ([`panels16_at`]).
///
/// # Safety
/// The CPU must have AVX-512 F; rows `r..r + 32` of the `N`-column panels at `wp` are
/// readable, as are `N` floats at `xp` and `bp[r..r + 32]`; `yp[r..r + 32]` is writable.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn panel_pair_plus_bias<const N: usize>(wp: *const f32, xp: *const f32, bp: *const f32, yp: *mut f32, r: usize) {
    use super::avx2::PANEL_ROWS;
    // SAFETY: the caller's bounds.
    unsafe {
        let w = wp.add(r * N);
        let [s0, s1] = panels16_at::<N, 2>([w, w.add(PANEL_ROWS * N)], xp);
        _mm512_storeu_ps(yp.add(r), _mm512_add_ps(_mm512_loadu_ps(bp.add(r)), s0));
        let r = r + PANEL_ROWS;
        _mm512_storeu_ps(yp.add(r), _mm512_add_ps(_mm512_loadu_ps(bp.add(r)), s1));
    }
}

/// Rows `r..r + 16` for each `r` of `rows` of [`gemv_panels`]'s `y = bias + A x` (the
/// other rows of `y` untouched), each `r` the first row of a full panel of 16: the
/// `P` panels share each input of `x` ([`panels16_at`]), and every row has the bits of
/// [`gemv_panels`].
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
///
/// # Panics
/// If `m` or `N` is not a multiple of 8, a row of `rows` is not a multiple of 16 or
/// its panel not a full one of the `m` rows, or the slices are shorter than
/// [`gemv_panels`] asks.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub unsafe fn gemv_panel_rows<const N: usize, const P: usize>(
    panels: &[f32],
    m: usize,
    x: &[f32],
    bias: &[f32],
    rows: [usize; P],
    y: &mut [f32],
) {
    use super::avx2::PANEL_ROWS;
    let full = m / PANEL_ROWS * PANEL_ROWS;
    assert!(
        N.is_multiple_of(8)
            && m.is_multiple_of(8)
            && super::avx2::blocks_fit(m, N, panels.len())
            && x.len() >= N
            && bias.len() >= m
            && y.len() >= m
            && rows.iter().all(|&r| r.is_multiple_of(PANEL_ROWS) && r < full),
        "gemv_panel_rows: shapes"
    );
    let (wp, xp, bp, yp) = (panels.as_ptr(), x.as_ptr(), bias.as_ptr(), y.as_mut_ptr());
    // SAFETY: each panel (rows `r..r + 16 <= m`, a full panel) lies inside the `m N`
    // floats of `panels`; `x` holds `N` floats, `bias` and `y` `m` (asserted).
    unsafe {
        let sums = panels16_at::<N, P>(rows.map(|r| wp.add(r * N)), xp);
        for (r, s) in rows.into_iter().zip(sums) {
            _mm512_storeu_ps(yp.add(r), _mm512_add_ps(_mm512_loadu_ps(bp.add(r)), s));
        }
    }
}

/// The sums of `P` consecutive panels of 16 rows (`16 N` floats each, from `w`) with
/// `x`, before the bias, rounded as `avx2::panel8` rounds each row: lane `r` of
/// accumulator `i % 8` of a panel takes input `i` of row `r`, in order, and the eight
/// accumulators are added as `((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))`.
///
/// # Safety
/// The CPU must have AVX-512 F; `w .. w + 16 P N` and `x .. x + N` are readable.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn panel16<const N: usize, const P: usize>(w: *const f32, x: *const f32) -> [__m512; P] {
    // SAFETY: panel `p` at `w + 16 p N` (the caller's bounds).
    unsafe { panels16_at::<N, P>(core::array::from_fn(|p| w.add(p * 16 * N)), x) }
}

/// [`panel16`] of `P` panels of 16 rows anywhere (panel `p` at `w[p]`, `16 N` floats),
/// the same bits. Each input reaches the sixteen lanes by an in-lane shuffle (`vshufps`)
/// of four inputs loaded into the four 128-bit lanes of a register (`vbroadcastf32x4`,
/// one load per four inputs), not by a broadcast load per input, so that the load units
/// carry the rows: the same values, the same multiply-adds in the same order. On a
/// 2-core AMD EPYC Zen 4, alternated: a GRU 8->64 step 508 to 518 ns with a broadcast
/// load per input, 480 to 492 ns with the shuffles; an LSTM 8->64 step 720 to 732 ns,
/// 700 to 701 ns; an LSTM 16->16 step ([`lstm16_step_panels`]) 88.9 to 91.4 ns, 82.0 to
/// 84.4 ns.
///
/// # Safety
/// The CPU must have AVX-512 F; `w[p] .. w[p] + 16 N` and `x .. x + N` are readable,
/// `N` a multiple of 8.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn panels16_at<const N: usize, const P: usize>(w: [*const f32; P], x: *const f32) -> [__m512; P] {
    let mut acc = [[_mm512_setzero_ps(); 8]; P];
    // Blocks of eight inputs, one per accumulator (indices known at compile time, so
    // that the accumulators stay in registers: a loop over fours indexing them by
    // `i % 8` spilled them, a GRU 8->64 step 460 -> 745 ns).
    for i in (0..N).step_by(8) {
        // SAFETY: `i + 8 <= N` floats of `x` (`N` a multiple of 8; the caller's bounds).
        let fours = unsafe { [i, i + 4].map(|j| _mm512_broadcast_f32x4(_mm_loadu_ps(x.add(j)))) };
        for k in 0..8 {
            let mut four = fours[k / 4];
            // SAFETY: an empty instruction on a register: it only hides from the compiler
            // that `four` came from memory (which would fold the shuffle back into one
            // broadcast load per input).
            unsafe {
                core::arch::asm!("/* {0} */", inout(zmm_reg) four, options(pure, nomem, nostack, preserves_flags))
            };
            let xv = match k % 4 {
                0 => _mm512_shuffle_ps::<0x00>(four, four),
                1 => _mm512_shuffle_ps::<0x55>(four, four),
                2 => _mm512_shuffle_ps::<0xAA>(four, four),
                _ => _mm512_shuffle_ps::<0xFF>(four, four),
            };
            for (p, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `i + k < N` and `p < P` (the caller's bounds).
                acc[k] = _mm512_fmadd_ps(unsafe { _mm512_loadu_ps(w[p].add((i + k) * 16)) }, xv, acc[k]);
            }
        }
    }
    acc.map(|a| {
        let low = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3]));
        let high = _mm512_add_ps(_mm512_add_ps(a[4], a[5]), _mm512_add_ps(a[6], a[7]));
        _mm512_add_ps(low, high)
    })
}

/// `p[..16] = sigmoid(p[..16] + q[..16])` by [`sigmoid16_scalef`] (whose scaling by
/// `2^n` is one `vscalefps`): a gate of sixteen units of a GRU or an LSTM from its two
/// projections, the bits of the cells' own step.
///
/// # Safety
/// The CPU must have AVX-512 F and FMA (always inlined into callers compiled for them);
/// `p` and `q` are valid for sixteen floats (reads of both, writes of `p`).
#[inline(always)]
pub(crate) unsafe fn sigmoid_sum16(p: *mut f32, q: *const f32) {
    // SAFETY: the caller's contract.
    unsafe { _mm512_storeu_ps(p, sigmoid16_scalef(_mm512_add_ps(_mm512_loadu_ps(p), _mm512_loadu_ps(q)))) }
}

/// `p[..16] = tanh(p[..16] + q[..16])` by [`tanh16_scalef`]: the candidate gate `g` of sixteen
/// units of an LSTM from its two projections, the bits of the cells' own step.
///
/// # Safety
/// The CPU must have AVX-512 F and FMA (always inlined into callers compiled for them);
/// `p` and `q` are valid for sixteen floats (reads of both, writes of `p`).
#[inline(always)]
pub(crate) unsafe fn tanh_sum16(p: *mut f32, q: *const f32) {
    // SAFETY: the caller's contract.
    unsafe { _mm512_storeu_ps(p, tanh16_scalef(_mm512_add_ps(_mm512_loadu_ps(p), _mm512_loadu_ps(q)))) }
}

/// The new cell state of sixteen LSTM units from their activated gates `i`, `f` and
/// `g`: `c[..16] = f c + i g` (one fused multiply-add onto the rounded product), then
/// `g[..16] = tanh(c)`, the bits of the cells' own step.
///
/// # Safety
/// The CPU must have AVX-512 F and FMA (always inlined into callers compiled for them);
/// `i`, `f`, `g` and `c` are valid for sixteen floats (reads of all, writes of `g` and
/// `c`).
#[inline(always)]
pub(crate) unsafe fn lstm_state16(i: *const f32, f: *const f32, g: *mut f32, c: *mut f32) {
    // SAFETY: the caller's contract.
    unsafe {
        let ig = _mm512_mul_ps(_mm512_loadu_ps(i), _mm512_loadu_ps(g));
        let c_new = _mm512_fmadd_ps(_mm512_loadu_ps(f), _mm512_loadu_ps(c), ig);
        _mm512_storeu_ps(c, c_new);
        _mm512_storeu_ps(g, tanh16_scalef(c_new));
    }
}

/// [`maths::exp`](super::maths::exp) of sixteen lanes with its last step, the scaling
/// by `2^n`, one `vscalefps`: the lane function scales `e` (in `[0.7, 1.5)`) by
/// `2^(n/2)` (exact) and then by `2^(n - n/2)` (one rounding), that is `e 2^n` rounded
/// once, which `vscalefps` computes (a subnormal, a normal or `+inf`, rounded to
/// nearest), from `n` as a float (`rounded - ROUND`, exact, as the lane function's
/// reduction uses it). The other operations are the lane function's, in its order: each
/// lane the bits of the portable function (NaN for NaN). One operation where the lane
/// function takes nine (two multiplies and seven integer operations), two cycles shorter
/// on the chain.
///
/// # Safety
/// The CPU must have AVX-512 F and FMA (always inlined into callers compiled for them).
#[inline(always)]
unsafe fn exp16_scalef(x: __m512) -> __m512 {
    use super::maths::exp_constants::{C, LN2_HI, LN2_LO, LOG2E, ROUND};
    // SAFETY: the CPU has AVX-512 F and FMA (the caller's contract).
    unsafe {
        let s = _mm512_set1_ps;
        // `clamp(-104, 89)`: `max` and `min` return their second operand, `x`, for NaN.
        let x = _mm512_min_ps(s(89.0), _mm512_max_ps(s(-104.0), x));
        let rounded = _mm512_fmadd_ps(x, s(LOG2E), s(ROUND));
        let n = _mm512_sub_ps(rounded, s(ROUND));
        let r = _mm512_fmadd_ps(n, s(-LN2_LO), _mm512_fmadd_ps(n, s(-LN2_HI), x));
        let r2 = _mm512_mul_ps(r, r);
        let a = _mm512_fmadd_ps(s(C[1]), r, s(C[0]));
        let b = _mm512_fmadd_ps(s(C[3]), r, s(C[2]));
        let c = _mm512_fmadd_ps(s(C[5]), r, s(C[4]));
        let p = _mm512_fmadd_ps(_mm512_fmadd_ps(c, r2, b), r2, a);
        let e = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), s(1.0));
        _mm512_scalef_ps(e, n)
    }
}

/// [`maths::sigmoid`](super::maths::sigmoid) of sixteen lanes, `1 / (1 + e^-x)` over
/// [`exp16_scalef`]: each lane the bits of the portable function.
///
/// # Safety
/// The CPU must have AVX-512 F and FMA (always inlined into callers compiled for them).
#[inline(always)]
unsafe fn sigmoid16_scalef(x: __m512) -> __m512 {
    // SAFETY: the CPU has AVX-512 F and FMA (the caller's contract).
    unsafe {
        let one = _mm512_set1_ps(1.0);
        // `-x`: the sign bit flipped.
        let e =
            exp16_scalef(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN))));
        _mm512_div_ps(one, _mm512_add_ps(one, e))
    }
}

/// [`maths::tanh`](super::maths::tanh) of sixteen lanes over [`exp16_scalef`]: both of
/// its results (the odd polynomial and `1 - 2 / (e^(2|x|) + 1)` with the sign of `x`,
/// the operations of `maths::tanh_branches`), chosen by a compare into a mask, each
/// lane the bits of the portable function.
///
/// # Safety
/// The CPU must have AVX-512 F and FMA (always inlined into callers compiled for them).
#[inline(always)]
unsafe fn tanh16_scalef(x: __m512) -> __m512 {
    const D: [f32; 5] = super::maths::TANH_D;
    // SAFETY: the CPU has AVX-512 F and FMA (the caller's contract).
    unsafe {
        let s = _mm512_set1_ps;
        let abs = _mm512_abs_ps(x);
        let z = _mm512_mul_ps(x, x);
        let mut q = s(D[4]);
        for d in [D[3], D[2], D[1], D[0]] {
            q = _mm512_fmadd_ps(q, z, s(d));
        }
        let e = exp16_scalef(_mm512_mul_ps(s(2.0), abs));
        let small = _mm512_fmadd_ps(_mm512_mul_ps(q, z), x, x);
        let large = _mm512_sub_ps(s(1.0), _mm512_div_ps(s(2.0), _mm512_add_ps(e, s(1.0))));
        // `copysign`: the sign bit of `x` (`0xCA`: the bits of the second operand where
        // the first has ones, of the third elsewhere), the other bits of `large`.
        let sign = _mm512_set1_epi32(i32::MIN);
        let large = _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0xCA>(
            sign,
            _mm512_castps_si512(x),
            _mm512_castps_si512(large),
        ));
        // `|x| < TANH_SMALL`, false for NaN (an ordered compare), as the lane function.
        let polynomial = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(abs, s(super::maths::TANH_SMALL));
        _mm512_mask_blend_ps(polynomial, large, small)
    }
}

/// The new hidden state of sixteen LSTM units from their activated gate `o` and the
/// `tanh` of their new cell state `t`: `h[..16] = o t`, the bits of the cells' own step.
///
/// # Safety
/// The CPU must have AVX-512 F (always inlined into callers compiled for it); `o`, `t`
/// and `h` are valid for sixteen floats (reads of `o` and `t`, writes of `h`).
#[inline(always)]
pub(crate) unsafe fn lstm_hidden16(o: *const f32, t: *const f32, h: *mut f32) {
    // SAFETY: the caller's contract.
    unsafe { _mm512_storeu_ps(h, _mm512_mul_ps(_mm512_loadu_ps(o), _mm512_loadu_ps(t))) }
}

/// One streaming step of a one-layer LSTM of `F` inputs (8 or 16) and 16 units over its
/// weights in step order (`ih`: `weight_ih`, `hh`: `weight_hh`, as
/// [`super::avx2::gemv_panels`] reads them: each gate's 16 rows one panel), its
/// projections kept in registers for the cell: first the input projection of every
/// gate (two panels at a time sharing each input spread to the lanes), which does not
/// wait on the previous step's state, then the recurrent projection gate by gate, `g`
/// (whose `tanh`
/// is the longest chain), `i`, `f`, `o`, each gate's activation beside the rows of the
/// next; then `c = f c_prev + i g` and `h = o tanh(c)`. `p` and `q` receive the
/// projections, as the whole-layer path leaves them; `h` and `c` hold the previous state
/// in, the new one out. The same operations on every element as [`gemv_panels`] and the
/// cells' `lstm_unit`, the same bits (the sigmoids and `tanh` by [`sigmoid16_scalef`]
/// and [`tanh16_scalef`], whose scaling by `2^n` is one `vscalefps`). Each input of `x`
/// and `h` reaches the lanes by an in-lane shuffle of four inputs loaded together
/// ([`panels16_at`]: 8 loads where 32 broadcasts).
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
///
/// # Panics
/// If `F` is not 8 or 16, or a slice is shorter than stated (`ih`: `64 F`, `hh`: `64 16`,
/// `b_ih`, `b_hh`, `p`, `q`: 64, `x`: `F`, `h`, `c`: 16).
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn lstm16_step_panels<const F: usize>(
    ih: &[f32],
    hh: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    x: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    p: &mut [f32],
    q: &mut [f32],
) {
    const H: usize = 16;
    const M: usize = 4 * H;
    // One test per slice: the lengths lie in the caller's operands, each written by a
    // store of its own just before the call, and tests combined into one vector compare
    // loaded them by one wide load, which waited for those stores to reach the cache.
    assert!(F == 8 || F == 16, "lstm16_step_panels: {F} inputs");
    assert!(ih.len() >= M * F, "lstm16_step_panels: weight_ih");
    assert!(hh.len() >= M * H, "lstm16_step_panels: weight_hh");
    assert!(b_ih.len() >= M, "lstm16_step_panels: bias_ih");
    assert!(b_hh.len() >= M, "lstm16_step_panels: bias_hh");
    assert!(p.len() >= M, "lstm16_step_panels: p");
    assert!(q.len() >= M, "lstm16_step_panels: q");
    assert!(x.len() >= F, "lstm16_step_panels: x");
    assert!(h.len() >= H, "lstm16_step_panels: h");
    assert!(c.len() >= H, "lstm16_step_panels: c");
    let (ihp, hhp, xp, hp) = (ih.as_ptr(), hh.as_ptr(), x.as_ptr(), h.as_mut_ptr());
    // SAFETY: gate `g < 4`: its panel (`16 N` floats from `16 g N`) lies inside the
    // `64 N` floats of its matrix; rows `16 g..16 g + 16` inside the biases and the
    // outputs (asserted).
    let panel = |w: *const f32, g: usize, n: usize| unsafe { w.add(g * H * n) };
    // SAFETY: as above.
    let project = |sum: __m512, bias: &[f32], out: &mut [f32], g: usize| unsafe {
        let v = _mm512_add_ps(_mm512_loadu_ps(bias.as_ptr().add(g * H)), sum);
        _mm512_storeu_ps(out.as_mut_ptr().add(g * H), v);
        v
    };
    // SAFETY: the panels lie inside `ih` and `hh`, `x` holds `F` floats and `h` 16
    // (asserted); the CPU has AVX-512 F, AVX2 and FMA.
    unsafe {
        let [si, sf] = panels16_at::<F, 2>([panel(ihp, 0, F), panel(ihp, 1, F)], xp);
        let [sg, so] = panels16_at::<F, 2>([panel(ihp, 2, F), panel(ihp, 3, F)], xp);
        let pv = [project(si, b_ih, p, 0), project(sf, b_ih, p, 1), project(sg, b_ih, p, 2), project(so, b_ih, p, 3)];
        let mut gate = |g: usize| {
            let [s] = panels16_at::<H, 1>([panel(hhp, g, H)], hp.cast_const());
            _mm512_add_ps(pv[g], project(s, b_hh, q, g))
        };
        let g = tanh16_scalef(gate(2));
        let i = sigmoid16_scalef(gate(0));
        let f = sigmoid16_scalef(gate(1));
        let o = sigmoid16_scalef(gate(3));
        let cp = c.as_mut_ptr();
        let c_new = _mm512_fmadd_ps(f, _mm512_loadu_ps(cp), _mm512_mul_ps(i, g));
        _mm512_storeu_ps(cp, c_new);
        _mm512_storeu_ps(hp, _mm512_mul_ps(o, tanh16_scalef(c_new)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::maths::{exp_lanes, sigmoid_lanes, tanh_lanes};

    /// The bits of `exp`, `sigmoid` and `tanh` of the `vscalefps` forms and of the lane
    /// functions for the sixteen bit patterns from `first` (`step` apart, wrapping),
    /// whether every lane is equal (NaN equal to NaN, whatever its bits).
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn scalef_forms_agree(first: u32, step: u32) -> bool {
        let x: [f32; 16] = core::array::from_fn(|k| f32::from_bits(first.wrapping_add(step.wrapping_mul(k as u32))));
        // SAFETY: `__m512` and `[f32; 16]` have the same size and every bit pattern is
        // valid for both; the CPU has AVX-512 F, AVX2 and FMA (the caller's contract).
        let ours = unsafe {
            let v = core::mem::transmute::<[f32; 16], __m512>(x);
            [exp16_scalef(v), sigmoid16_scalef(v), tanh16_scalef(v)]
                .map(|r| core::mem::transmute::<__m512, [f32; 16]>(r))
        };
        let lanes = [exp_lanes(x), sigmoid_lanes(x), tanh_lanes(x)];
        ours.iter()
            .zip(&lanes)
            .all(|(a, b)| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())))
    }

    /// `exp16_scalef`, `sigmoid16_scalef` and `tanh16_scalef` give the lane functions'
    /// bits: the special values (zeros, infinities, NaN, the clamps' and `tanh`'s
    /// thresholds, the subnormal and overflowing ends of `exp`) and one bit pattern in
    /// 4099 of all of them.
    #[test]
    fn scalef_forms_give_the_lane_bits() {
        if !crate::kernels::isa::isa().avx512() {
            return;
        }
        let special = [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.625,
            -0.625,
            0.624_999_94,
            87.3,
            -87.3,
            88.3,
            88.5,
            88.72,
            88.8,
            89.0,
            -89.0,
            -103.9,
            -104.0,
            -104.1,
            -150.0,
            104.0,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        for (k, &v) in special.iter().enumerate() {
            for delta in [-2i32, -1, 0, 1, 2] {
                let first = v.to_bits().wrapping_add_signed(delta);
                // SAFETY: the CPU has AVX-512 F (checked above), hence AVX2 and FMA.
                assert!(unsafe { scalef_forms_agree(first, 1 + k as u32) }, "from {:e}", f32::from_bits(first));
            }
        }
        let mut first = 0u32;
        for _ in 0..(1u64 << 32) / (16 * 4099) {
            // SAFETY: as above.
            assert!(unsafe { scalef_forms_agree(first, 4099) }, "from {first:#x}");
            first = first.wrapping_add(16 * 4099);
        }
    }

    /// The same over every `f32` (minutes in a debug build; run with `--release
    /// --ignored`).
    #[test]
    #[ignore]
    fn scalef_forms_give_the_lane_bits_everywhere() {
        if !crate::kernels::isa::isa().avx512() {
            return;
        }
        for block in 0..(1u64 << 32) / 16 {
            let first = (block * 16) as u32;
            // SAFETY: the CPU has AVX-512 F (checked above), hence AVX2 and FMA.
            assert!(unsafe { scalef_forms_agree(first, 1) }, "from {first:#x}");
        }
    }
}
