//! AVX2 + FMA kernels for x86-64, chosen by [`super::isa`] (at run time with `std`, at
//! compile time without, when the target enables both features).
//!
//! * [`gemm`]: `C = alpha A B + beta C` by the blocked loops of [`super::gemm`] around a
//!   register tile of [`MR`] rows by [`NR`] columns (12 accumulators of 8 floats);
//! * [`gemv_rows`]: `y += alpha A x` for a row-major `A`, eight rows at a time;
//! * [`gemv_columns`]: `y += alpha A x` for a column-major `A`, 64 rows at a time;
//! * [`dot`]: a dot product in 8 lanes, rounded as `gemv_rows` rounds each row;
//! * [`gemm_gathered_t`], [`gemm_gathered_taps`]: a convolution's weight and input
//!   gradients without the column matrix, the loops of [`super::conv_grad`] in 8 lanes.
//!
//! Every function takes slices whose bounds the safe caller has checked; the raw
//! pointer arithmetic inside stays within them.
use core::arch::x86_64::*;

#[cfg(feature = "std")]
use super::gemm::MC;
use super::gemm::{blocked, pack, pack_a_rows, MatRef, Tile};
use super::portable::combine;

#[cfg(feature = "threading")]
pub(crate) use super::gemm::reserve_blocks;
#[cfg(feature = "std")]
pub(crate) use super::gemm::with_blocks;
pub(crate) use super::gemm::{blocks_fit, gathered_fits, rows_fit};

/// Rows of the register tile: `MR x NR` accumulators are 12 of the 16 YMM registers,
/// enough independent FMA chains to cover its latency on both FMA ports.
pub const MR: usize = 6;
/// Columns of the register tile: two YMM registers.
pub const NR: usize = 16;
/// Depth of a packed panel of `B` (`KC x NR` floats, 16 KiB, stays in L1).
pub const KC: usize = 256;

/// Whether the AVX2 and FMA kernels may run: [`super::isa::isa`] (the CPU has them
/// and `NN_ISA` does not ask for the portable kernels).
#[inline(always)]
pub fn available() -> bool {
    super::isa::isa().avx2()
}

/// The AVX2 register tile.
pub struct Avx2;

impl Tile for Avx2 {
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = KC;
    /// 72 rows, not `gemm::MC` (192): the rows of `C` that a pass over a block of `B`
    /// updates (72 x 1024 floats, 288 KiB) then stay in L2 beside that block (1 MiB),
    /// where 192 rows (768 KiB) overflow it: 5 % faster on 1024^3 on a Xeon with 2 MiB
    /// of L2 (the bits do not depend on the blocking).
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
            if b.rs == 1 && nr == NR {
                pack_columns(panel, NR, b.data.as_ptr().add(j0 * b.cs + k0), b.cs, kc);
            } else if b.cs == 1 && nr == NR {
                pack_rows(panel, b.data.as_ptr().add(k0 * b.rs + j0), b.rs, kc);
            } else {
                pack(panel, NR, b, k0, kc, j0, nr);
            }
        }
    }

    #[inline(always)]
    unsafe fn pack_a_rows(tile: *mut f32, src: *const f32, (rs, cs): (usize, usize), mr: usize, kc: usize) {
        // SAFETY: the caller's contract.
        unsafe {
            if mr == 6 && cs == 1 {
                pack_a_six(tile, src, rs, kc);
            } else {
                pack_a_rows(tile, src, (rs, cs), mr, 0, kc);
            }
        }
    }
}

/// Packs six rows of `A` with contiguous columns (row `r` at `src + r rs`) into `tile`,
/// element `(r, p)` at `6 p + r`: each group of eight columns is loaded as eight
/// vectors (the sixth row twice more), transposed, and stored as eight overlapping
/// vectors, each writing its column's six floats and two that the next store
/// overwrites. The last columns (at least one, so that no store reaches past the
/// tile) are copied one by one.
///
/// # Safety
/// The CPU has AVX2; the six rows of `kc` floats are readable; `tile` has room for
/// `6 kc` floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a_six(tile: *mut f32, src: *const f32, rs: usize, kc: usize) {
    let mut p = 0;
    while p + 8 < kc {
        // SAFETY: rows `r < 6` hold floats `p..p + 8 < kc`; the store of column
        // `p + q` ends at `6 (p + q) + 8 <= 6 (p + 8) + 2 < 6 kc`.
        unsafe {
            let row = |r: usize| _mm256_loadu_ps(src.add(r.min(5) * rs + p));
            let columns = transpose8([row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)]);
            for (q, column) in columns.iter().enumerate() {
                _mm256_storeu_ps(tile.add(6 * (p + q)), *column);
            }
        }
        p += 8;
    }
    // SAFETY: as above, for the remaining columns.
    unsafe { pack_a_rows(tile, src, (rs, 1), 6, p, kc) }
}

/// Packs 16 contiguous columns of `B` (column `j` at `b + j cs`, `kc` floats each)
/// into the first 16 floats of `kc` panel rows of `width` floats: 8x8 blocks
/// transposed in registers, then the last `kc % 8` rows one by one.
///
/// # Safety
/// The CPU has AVX; the 16 columns of `kc` floats are readable; the panel has room
/// for `width kc` floats, `width >= 16`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pack_columns(panel: *mut f32, width: usize, b: *const f32, cs: usize, kc: usize) {
    let mut p = 0;
    while p + 8 <= kc {
        for half in 0..2 {
            // SAFETY: columns `8 half + j < 16` hold floats `p..p + 8 <= kc`; panel
            // rows `p + q < kc` have `width >= 16` floats.
            unsafe {
                let col = |j: usize| _mm256_loadu_ps(b.add((8 * half + j) * cs + p));
                let rows = transpose8([col(0), col(1), col(2), col(3), col(4), col(5), col(6), col(7)]);
                for (q, row) in rows.iter().enumerate() {
                    _mm256_storeu_ps(panel.add((p + q) * width + 8 * half), *row);
                }
            }
        }
        p += 8;
    }
    while p < kc {
        for j in 0..NR {
            // SAFETY: column `j < 16` holds float `p < kc`; panel row `p` has `width >= 16` floats.
            unsafe { *panel.add(p * width + j) = *b.add(j * cs + p) };
        }
        p += 1;
    }
}

/// Packs 16 contiguous floats of each of `kc` rows of `B` (row `p` at `b + p rs`)
/// into `kc` panel rows of 16, by two vector copies per row (a short `memcpy` call per
/// row costs more than the copy).
///
/// # Safety
/// The CPU has AVX; the `kc` rows of 16 floats are readable; the panel has room for
/// `16 kc` floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_rows(panel: *mut f32, b: *const f32, rs: usize, kc: usize) {
    for p in 0..kc {
        // SAFETY: row `p < kc` has 16 readable floats, panel row `p` room for 16.
        unsafe {
            let src = b.add(p * rs);
            _mm256_storeu_ps(panel.add(p * NR), _mm256_loadu_ps(src));
            _mm256_storeu_ps(panel.add(p * NR + 8), _mm256_loadu_ps(src.add(8)));
        }
    }
}

/// The transpose of an 8x8 block held as eight rows.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// `C[m x n] = alpha A[m x k] B[k x n] + beta C` (`C` row-major, row stride `ldc`;
/// with `beta == 0`, `C` is not read).
///
/// # Safety
/// The CPU must have AVX2 and FMA ([`available`]); the views must lie within their
/// slices; `C`'s `m` rows of `n` columns (stride `ldc`) must be writable at `c` and
/// not otherwise borrowed.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: *mut f32, ldc: usize) {
    // Uninitialised: `blocked` writes each panel row before the tile reads it.
    let mut panel = core::mem::MaybeUninit::<[f32; KC * NR]>::uninit();
    #[cfg(feature = "std")]
    if a.rows > MC {
        // SAFETY: `blocked` does not re-enter `with_blocks`; the caller's contract; the
        // panel and blocks have their sizes.
        return unsafe {
            with_blocks(|blocks| blocked::<Avx2>(alpha, a, b, beta, c, ldc, panel.as_mut_ptr().cast(), Some(blocks)))
        };
    }
    // SAFETY: the caller's contract; the panel holds `KC x NR` floats.
    unsafe { blocked::<Avx2>(alpha, a, b, beta, c, ldc, panel.as_mut_ptr().cast(), None) }
}

/// `C[R x nr] = alpha A[R x kc] B[kc x NR] + beta C`: `A` at `a` with strides `ars`,
/// `acs`; `B` at `b` with row stride `brs` and 16 readable columns per row; `C` at `c`
/// with row stride `ldc`, of which the first `nr <= 16` columns are written (and read
/// only when `beta != 0`).
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const PACKED: bool>(
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
    // With `PACKED`, `A` is a packed tile: constant strides.
    let (ars, acs) = if PACKED { (1, R) } else { (ars, acs) };
    // The tile's rows of C are far apart in large products (no hardware prefetch
    // follows them): fetch them now, to be in L1 when the sums are added to them.
    if beta != 0.0 {
        for r in 0..R {
            // SAFETY: a prefetch does not fault; `C[r, 0]` and `C[r, nr - 1]` are in C.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc + nr - 1) as *const i8);
            }
        }
    }
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    for p in 0..kc {
        // SAFETY: row `p < kc` of the B panel has 16 readable floats, and `A[r, p]`
        // (r < R, p < kc) is inside A's slice (caller's contract).
        unsafe {
            let bp = b.add(p * brs);
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            let ap = a.add(p * acs);
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*ap.add(r * ars));
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
            }
        }
    }
    let va = _mm256_set1_ps(alpha);
    let vb = _mm256_set1_ps(beta);
    for r in 0..R {
        // SAFETY: row `r < R` of C has `nr` writable floats at `c + r ldc`.
        unsafe {
            let cr = c.add(r * ldc);
            if nr == NR {
                let (c0, c1) = if beta == 0.0 {
                    (_mm256_mul_ps(va, lo[r]), _mm256_mul_ps(va, hi[r]))
                } else if beta == 1.0 {
                    (
                        _mm256_fmadd_ps(va, lo[r], _mm256_loadu_ps(cr)),
                        _mm256_fmadd_ps(va, hi[r], _mm256_loadu_ps(cr.add(8))),
                    )
                } else {
                    (
                        _mm256_fmadd_ps(va, lo[r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr))),
                        _mm256_fmadd_ps(va, hi[r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr.add(8)))),
                    )
                };
                _mm256_storeu_ps(cr, c0);
                _mm256_storeu_ps(cr.add(8), c1);
            } else {
                let mut t = [0.0f32; NR];
                _mm256_storeu_ps(t.as_mut_ptr(), lo[r]);
                _mm256_storeu_ps(t.as_mut_ptr().add(8), hi[r]);
                for (j, &v) in t.iter().enumerate().take(nr) {
                    *cr.add(j) = combine(alpha, v, beta, *cr.add(j));
                }
            }
        }
    }
}

/// `C[m, n] += A[m, k] B[k, n]` for a `B` that is not stored: element `(p, j)` is
/// `src[offsets[p] + (j / width) stride + j % width]`, so that the rows of `B` are read
/// as vectors of eight from wherever they lie (the columns of a convolution, read from
/// its padded input: `width` output columns per output row, `stride` floats between
/// padded rows). `A` has row stride `ars`, `C` row stride `ldc`; `n` and `width` are
/// multiples of 8. With `start` given, `C`'s values are not read: the sums are added to
/// `start[i]` (a bias), or to zero when `start` is `Some(None)`. The same tiles, in the
/// same order of summation, as [`gemm`] with `alpha = 1`, `beta = 1`, `B` stored and `C`
/// holding `start`, for `k <= KC`: the same bits.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
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
    // Where the block of eight columns after the one at `base` (whose column within
    // its output row is `col`) starts: `base(j) = (j / width) stride + j % width`
    // walked by additions (no division per tile).
    let next = |(base, col): (usize, usize)| {
        if col + 8 == width {
            (base + stride - col, 0)
        } else {
            (base + 8, col + 8)
        }
    };
    let (ap, sp, op, cp) = (a.as_ptr(), src.as_ptr(), offsets.as_ptr(), c.as_mut_ptr());
    let mut i = 0;
    while i < m {
        // The rows left in tiles of at most `MR` as even as they go (32 filters: 6, 6,
        // 5, 5, 5, 5, not 6, 6, 6, 6, 4, 4): every tile keeps at least ten chains of
        // multiply-adds in flight where the rows allow it.
        let mr = (m - i).div_ceil((m - i).div_ceil(MR));
        let (mut j0, mut block) = (0, (0, 0));
        while j0 < n {
            let nr = NR.min(n - j0);
            let second = if nr == NR { next(block) } else { block };
            let bases = (block.0, second.0);
            block = next(second);
            let from = match start {
                None => Start::Load,
                Some(None) => Start::Zero,
                Some(Some(bias)) => Start::Bias(bias[i..].as_ptr()),
            };
            // SAFETY: rows `i..i + mr` of A (`k` columns each), the offsets and the
            // tile of C are in bounds (asserted); every read of `src` is below `reach`.
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

/// The tile of [`gemm_gathered`]: [`tile`] with `alpha = beta = 1` and the rows of `B`
/// read at `src + offsets[p] + base` (`nr` is 8 or 16; with 8 only the first vector's
/// sums are added), added to what `start` says.
///
/// # Safety
/// As [`gemm_gathered`] asserts.
#[inline]
#[target_feature(enable = "avx2,fma")]
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
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    for p in 0..kc {
        // SAFETY: the caller's contract.
        unsafe {
            let row = src.add(*offsets.add(p));
            let b0 = _mm256_loadu_ps(row.add(base0));
            let b1 = _mm256_loadu_ps(row.add(base1));
            let ap = a.add(p);
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*ap.add(r * ars));
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
            }
        }
    }
    let zero = _mm256_setzero_ps();
    for r in 0..R {
        // SAFETY: row `r < R` of C has `nr` writable floats at `c + r ldc`.
        unsafe {
            let cr = c.add(r * ldc);
            let (c0, c1) = match start {
                Start::Load => (_mm256_loadu_ps(cr), if nr == NR { _mm256_loadu_ps(cr.add(8)) } else { zero }),
                Start::Zero => (_mm256_setzero_ps(), _mm256_setzero_ps()),
                Start::Bias(b) => (_mm256_set1_ps(*b.add(r)), _mm256_set1_ps(*b.add(r))),
            };
            // `lo + c0` is `1 lo + c0` rounded once (the bits of `tile`'s multiply-add
            // by alpha = 1), on the adders rather than the multiply-add units.
            _mm256_storeu_ps(cr, _mm256_add_ps(lo[r], c0));
            if nr == NR {
                _mm256_storeu_ps(cr.add(8), _mm256_add_ps(hi[r], c1));
            }
        }
    }
}

/// `dst[q ldt + f] = src[f lds + q]` for `f < rows`, `q < len`, and zero for
/// `rows <= f < ldt`: a tile of a convolution's output gradient transposed for
/// [`gemm_gathered_t`] (and `avx512::gemm_gathered_t`), by blocks of 8x8. With `sums`
/// (at least `rows` floats), each row `q` of `dst` is also added to it in order of `q`,
/// `sums[f] += dst[q ldt + f]` for `f < rows` (the bias gradient's sums, added here
/// rather than in the product's tile, whose registers they would spill).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
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
    let (rows8, len8) = (rows - rows % 8, len - len % 8);
    // Whole blocks: the sums of each block of eight filters are one chain of additions
    // down the positions, the chains of the blocks side by side.
    let fused = rows8 == rows && len8 == len;
    let (add, sums) = match sums {
        Some(s) if fused => (s.as_mut_ptr(), None),
        sums => (core::ptr::null_mut(), sums),
    };
    for q0 in (0..len8).step_by(8) {
        for f0 in (0..rows8).step_by(8) {
            // SAFETY: rows `f0..f0 + 8 <= rows` of `src` hold floats `q0..q0 + 8 <= len`,
            // rows `q0..q0 + 8` of `dst` floats `f0..f0 + 8 <= ldt`, `sums` (where not
            // null) floats `f0..f0 + 8 <= rows` (asserted).
            unsafe {
                let block = transpose8(core::array::from_fn(|r| _mm256_loadu_ps(sp.add((f0 + r) * lds + q0))));
                for (r, v) in block.into_iter().enumerate() {
                    _mm256_storeu_ps(dp.add((q0 + r) * ldt + f0), v);
                }
                if !add.is_null() {
                    let s = block.into_iter().fold(_mm256_loadu_ps(add.add(f0)), |s, v| _mm256_add_ps(s, v));
                    _mm256_storeu_ps(add.add(f0), s);
                }
            }
        }
    }
    // The filters past the whole blocks, then the zero columns up to `ldt` by whole
    // vectors (one float at a time, zeroing 16 columns of a 16-filter convolution was
    // a sixth of its training step).
    let zero_from = rows.next_multiple_of(8).min(ldt);
    for q in 0..len {
        let row = &mut dst[q * ldt..][..ldt];
        let from = if q < len8 { rows8 } else { 0 };
        for (f, v) in row[..zero_from].iter_mut().enumerate().skip(from) {
            *v = if f < rows { src[f * lds + q] } else { 0.0 };
        }
        for block in row[zero_from..].chunks_exact_mut(8) {
            // SAFETY: `block` holds 8 floats.
            unsafe { _mm256_storeu_ps(block.as_mut_ptr(), _mm256_setzero_ps()) };
        }
        let tail = row[zero_from..].chunks_exact_mut(8).into_remainder();
        tail.fill(0.0);
    }
    if let Some(sums) = sums {
        for row in dst.chunks_exact(ldt).take(len) {
            sums[..rows].iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
    }
}

/// `dw[f ldw + r] += t[r][f]` for `f < nr <= 32`, `r < 8`, by blocks of 8x8 transposed.
///
/// # Safety
/// The CPU must have AVX2 and FMA; rows `f < nr` of `dw` (row stride `ldw`) hold 8
/// writable floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn add_transposed8(t: &[[f32; 32]; 8], nr: usize, dw: *mut f32, ldw: usize) {
    for block in 0..nr.min(32).div_ceil(8) {
        // SAFETY: `t`'s rows hold floats `8 block..8 block + 8 <= 32`; the caller's
        // contract for `dw`.
        unsafe {
            let columns = transpose8(core::array::from_fn(|r| _mm256_loadu_ps(t[r].as_ptr().add(8 * block))));
            for (q, v) in columns.into_iter().enumerate().take(nr - 8 * block) {
                let d = dw.add((8 * block + q) * ldw);
                _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), v));
            }
        }
    }
}

/// `dw[f ldw + r] += t[r][f]` for `f < nr <= 32`, `r < rows <= 8`, by blocks of 8x8
/// transposed and stored through a mask of the first `rows` lanes (the rows of `t` from
/// `rows` on are read but not stored).
///
/// # Safety
/// The CPU must have AVX2 and FMA; rows `f < nr` of `dw` (row stride `ldw`) hold `rows`
/// writable floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn add_transposed_rows(t: &[[f32; 32]; 8], rows: usize, nr: usize, dw: *mut f32, ldw: usize) {
    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows.min(8) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for block in 0..nr.min(32).div_ceil(8) {
        // SAFETY: `t`'s rows hold floats `8 block..8 block + 8 <= 32`; the caller's
        // contract for `dw`, whose lanes from `rows` on are neither read nor written.
        unsafe {
            let columns = transpose8(core::array::from_fn(|r| _mm256_loadu_ps(t[r].as_ptr().add(8 * block))));
            for (q, v) in columns.into_iter().enumerate().take(nr - 8 * block) {
                let d = dw.add((8 * block + q) * ldw);
                _mm256_maskstore_ps(d, mask, _mm256_add_ps(_mm256_maskload_ps(d, mask), v));
            }
        }
    }
}

/// Column-matrix rows of the tile of [`gemm_gathered_t`]: 12 accumulators, two
/// registers of the output gradient and a broadcast (15 of the 16 YMM registers).
pub const GATHERED_T_MR: usize = 6;

/// Input channels of the tile of [`gemm_gathered_taps`]: the sums of the current tap in
/// 12 of the 16 YMM registers, the running sums in memory.
pub const TAPS_MR: usize = 6;

/// One YMM register of 8 floats for the loops of [`super::conv_grad`].
#[derive(Clone, Copy)]
pub(crate) struct Ymm(__m256);

impl super::conv_grad::Vector for Ymm {
    const LANES: usize = 8;
    const WEIGHT_MR: usize = GATHERED_T_MR;
    const TAPS_MR: usize = TAPS_MR;
    const ONE_REGISTER_TILE: bool = true;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the trait's contract (AVX2).
        Ymm(unsafe { _mm256_setzero_ps() })
    }

    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self {
        // SAFETY: the trait's contract.
        Ymm(unsafe { _mm256_broadcast_ss(&*p) })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the trait's contract.
        Ymm(unsafe { _mm256_loadu_ps(p) })
    }

    #[inline(always)]
    unsafe fn load_blocks<const CONTIGUOUS: bool>(row: *const f32, bases: &[usize]) -> Self {
        // SAFETY: the trait's contract.
        Ymm(unsafe { _mm256_loadu_ps(row.add(bases[0])) })
    }

    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: the trait's contract (FMA).
        Ymm(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: the trait's contract.
        Ymm(unsafe { _mm256_add_ps(a.0, b.0) })
    }

    #[inline(always)]
    unsafe fn load_first(p: *const f32, count: usize) -> Self {
        // `count` is a multiple of 8: the whole register, or nothing.
        if count == 0 {
            // SAFETY: the trait's contract (AVX2).
            return Ymm(unsafe { _mm256_setzero_ps() });
        }
        // SAFETY: the trait's contract.
        Ymm(unsafe { _mm256_loadu_ps(p) })
    }

    #[inline(always)]
    unsafe fn store_first(p: *mut f32, v: Self, count: usize) {
        // `count` is a multiple of 8: the whole register.
        debug_assert_eq!(count, 8);
        // SAFETY: the trait's contract.
        unsafe { _mm256_storeu_ps(p, v.0) }
    }

    #[inline(always)]
    unsafe fn add_transposed8(t: &[[f32; 32]; 8], nr: usize, dw: *mut f32, ldw: usize) {
        // SAFETY: the trait's contract.
        unsafe { add_transposed8(t, nr, dw, ldw) }
    }

    #[inline(always)]
    unsafe fn add_transposed_rows(t: &[[f32; 32]; 8], rows: usize, nr: usize, dw: *mut f32, ldw: usize) {
        // SAFETY: the trait's contract.
        unsafe { add_transposed_rows(t, rows, nr, dw, ldw) }
    }
}

/// A convolution's weight gradient without its column matrix, 16 filters at a time:
/// [`super::conv_grad::weight_grad`] in 8 lanes, the bits of `avx512::gemm_gathered_t`.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `dw`'s `n` rows of `m` floats (row stride `ldw`) are
/// writable and no other thread reads or writes them.
#[target_feature(enable = "avx2,fma")]
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
    unsafe { super::conv_grad::weight_grad::<Ymm>(src, offsets, bases, m, k, dyt, ldt, n, dw, ldw) }
}

/// A convolution's input gradient without its column matrix, 16 input positions at a
/// time: [`super::conv_grad::input_grad`] in 8 lanes, the bits of
/// `avx512::gemm_gathered_taps`.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
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
    unsafe { super::conv_grad::input_grad::<Ymm>(a, lda, m, k, taps, src, plane, tap_offsets, rows, c, ldc, n) }
}

/// The sum of the eight lanes of each of four vectors: `[sum v0, sum v1, sum v2, sum v3]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn sum4(v0: __m256, v1: __m256, v2: __m256, v3: __m256) -> __m128 {
    let t0 = _mm256_hadd_ps(v0, v1);
    let t1 = _mm256_hadd_ps(v2, v3);
    let t2 = _mm256_hadd_ps(t0, t1);
    _mm_add_ps(_mm256_castps256_ps128(t2), _mm256_extractf128_ps(t2, 1))
}

/// The sum of the eight lanes of `v`, `((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7))`:
/// the order [`sum4`] gives each of its vectors, so that a row's dot product does not
/// depend on whether it was computed alone or in a block of four.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sum8(v: __m256) -> f32 {
    let h = _mm256_hadd_ps(v, v);
    let h = _mm256_hadd_ps(h, h);
    _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)))
}

/// `dot(a[..n], x[..n])`: one 8-lane FMA accumulator over the 8-float blocks in order,
/// reduced by [`sum8`], plus (when `n` is not a multiple of 8) the remaining products
/// summed in order. [`gemv_rows`] rounds every row the same way.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a` and `x` must hold at least `n` floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_raw(a: *const f32, x: *const f32, n: usize) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut p = 0;
    // SAFETY: every load reads floats `p..p + 8` with `p + 8 <= n`, or `p < n`.
    unsafe {
        while p + 8 <= n {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(p)), _mm256_loadu_ps(x.add(p)), acc);
            p += 8;
        }
        let sum = sum8(acc);
        if p == n {
            return sum;
        }
        sum + tail(a, x, p, n)
    }
}

/// `sum_{q = p..n} a[q] x[q]`, in order.
///
/// # Safety
/// `a` and `x` hold at least `n` floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tail(a: *const f32, x: *const f32, p: usize, n: usize) -> f32 {
    let mut sum = 0.0;
    for q in p..n {
        // SAFETY: `q < n`.
        sum += unsafe { *a.add(q) * *x.add(q) };
    }
    sum
}

/// `sum_i a[i] b[i]` over the shorter length (see [`dot_raw`] for the order).
///
/// # Safety
/// The CPU must have AVX2 and FMA ([`available`]).
#[target_feature(enable = "avx2,fma")]
#[cfg(any(feature = "internals", test))]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: both slices hold at least `n` floats; the caller guarantees the features.
    unsafe { dot_raw(a.as_ptr(), b.as_ptr(), n) }
}

/// `y[i] += alpha * dot(A[i, :], x)` for `A` row-major with row stride `rs`, `m` rows of
/// `n` columns: eight rows at a time, one accumulator each (eight independent FMA
/// chains sharing every load of `x`), then four, then single rows. Each row's sum is
/// rounded exactly as [`dot`] rounds it.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a` must hold `(m - 1) rs + n` floats (when
/// `m > 0`), `x` at least `n`, `y` at least `m`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemv_rows(alpha: f32, a: &[f32], rs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32]) {
    assert!(x.len() >= n && y.len() >= m && rows_fit(m, rs, n, a.len()), "gemv_rows: shapes");
    let (a, x, yp) = (a.as_ptr(), x.as_ptr(), y.as_mut_ptr());
    let blocks = n - n % 8;
    let mut i = 0;
    while i + 8 <= m {
        // SAFETY: rows `i..i + 8 <= m` and columns `< n` are inside `a`, `x` holds `n`
        // floats, `y` holds `m` (asserted).
        unsafe {
            let rows: [*const f32; 8] = core::array::from_fn(|r| a.add((i + r) * rs));
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut p = 0;
            while p < blocks {
                let xv = _mm256_loadu_ps(x.add(p));
                for r in 0..8 {
                    acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[r].add(p)), xv, acc[r]);
                }
                p += 8;
            }
            let lo = sum4(acc[0], acc[1], acc[2], acc[3]);
            let hi = sum4(acc[4], acc[5], acc[6], acc[7]);
            if blocks == n {
                let sums = _mm256_set_m128(hi, lo);
                let yv = _mm256_loadu_ps(yp.add(i));
                _mm256_storeu_ps(yp.add(i), _mm256_add_ps(yv, _mm256_mul_ps(_mm256_set1_ps(alpha), sums)));
            } else {
                let mut sums = [0.0f32; 8];
                _mm_storeu_ps(sums.as_mut_ptr(), lo);
                _mm_storeu_ps(sums.as_mut_ptr().add(4), hi);
                for r in 0..8 {
                    *yp.add(i + r) += alpha * (sums[r] + tail(rows[r], x, blocks, n));
                }
            }
        }
        i += 8;
    }
    if i + 4 <= m {
        // SAFETY: as above, for rows `i..i + 4 <= m`.
        unsafe {
            let rows: [*const f32; 4] = core::array::from_fn(|r| a.add((i + r) * rs));
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut p = 0;
            while p < blocks {
                let xv = _mm256_loadu_ps(x.add(p));
                for r in 0..4 {
                    acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[r].add(p)), xv, acc[r]);
                }
                p += 8;
            }
            let sums = sum4(acc[0], acc[1], acc[2], acc[3]);
            if blocks == n {
                let yv = _mm_loadu_ps(yp.add(i));
                _mm_storeu_ps(yp.add(i), _mm_add_ps(yv, _mm_mul_ps(_mm_set1_ps(alpha), sums)));
            } else {
                let mut out = [0.0f32; 4];
                _mm_storeu_ps(out.as_mut_ptr(), sums);
                for r in 0..4 {
                    *yp.add(i + r) += alpha * (out[r] + tail(rows[r], x, blocks, n));
                }
            }
        }
        i += 4;
    }
    while i < m {
        // SAFETY: as above, for row `i < m`.
        unsafe { *yp.add(i) += alpha * dot_raw(a.add(i * rs), x, n) };
        i += 1;
    }
}

/// `y = relu?(b + A x)` for a row-major `A` of `m` rows of `N` columns (a multiple of
/// 8, known at compile time): a dense layer at batch 1, with its bias and ReLU fused.
/// Blocks of eight rows as [`gemv_rows`], but with the column loop unrolled and every
/// row addressed at a constant offset from one pointer, first to last or, with
/// `reverse`, last to first (a product repeated with alternating order finds the rows
/// it read last still in L1); the last `m % 8` rows in line after them
/// ([`dense_b1_tail`]). Every output has the bits of [`gemv_rows`] onto the bias (or
/// onto zero) followed by `max(v, 0)` (`v > 0 ? v : 0`, NaN to 0).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_fixed<const N: usize>(
    a: &[f32],
    m: usize,
    x: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    reverse: bool,
    y: &mut [f32],
) {
    assert!(
        N.is_multiple_of(8)
            && blocks_fit(m, N, a.len())
            && x.len() >= N
            && y.len() >= m
            && bias.is_none_or(|b| b.len() >= m),
        "gemv_fixed: shapes"
    );
    let (ap, xp, yp) = (a.as_ptr(), x.as_ptr(), y.as_mut_ptr());
    let zero = _mm256_setzero_ps();
    let blocks = m / 8;
    for block in 0..blocks {
        let i = 8 * if reverse { blocks - 1 - block } else { block };
        // SAFETY: rows `i..i + 8 <= m` of `N` floats are inside `a`, `y` and `bias`
        // hold `m` floats (asserted).
        unsafe {
            let rows = ap.add(i * N);
            let mut acc = [zero; 8];
            for p in (0..N).step_by(8) {
                let xv = _mm256_loadu_ps(xp.add(p));
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(_mm256_loadu_ps(rows.add(r * N + p)), xv, *acc);
                }
            }
            let sums = _mm256_set_m128(sum4(acc[4], acc[5], acc[6], acc[7]), sum4(acc[0], acc[1], acc[2], acc[3]));
            let start = match bias {
                Some(b) => _mm256_loadu_ps(b.as_ptr().add(i)),
                None => zero,
            };
            let mut v = _mm256_add_ps(start, sums);
            if relu {
                // `max` returns its second operand when either is NaN (or both zeros).
                v = _mm256_max_ps(v, zero);
            }
            _mm256_storeu_ps(yp.add(i), v);
        }
    }
    let mut i = 8 * blocks;
    // Bias `i` on, or null.
    let bp = |i: usize| bias.map_or(core::ptr::null(), |b| b[i..].as_ptr());
    // SAFETY: each call takes rows `i..i + R` with `i + R <= m`: `N` floats each inside
    // `a`; `y` and `bias` (when given) hold `m` floats (asserted).
    unsafe {
        if m - i >= 4 {
            dense_b1_tail::<N, 4>(ap.add(i * N), xp, bp(i), relu, yp.add(i));
            i += 4;
        }
        match m - i {
            3 => dense_b1_tail::<N, 3>(ap.add(i * N), xp, bp(i), relu, yp.add(i)),
            2 => dense_b1_tail::<N, 2>(ap.add(i * N), xp, bp(i), relu, yp.add(i)),
            1 => dense_b1_tail::<N, 1>(ap.add(i * N), xp, bp(i), relu, yp.add(i)),
            _ => {}
        }
    }
}

/// The last `R <= 4` rows of [`gemv_fixed`] (after its blocks of eight): `y[r] =
/// relu?(b[r] + dot(A[r, :], x))` for `r < R`, one accumulator per row reduced by
/// [`sum4`] (the lanes of a missing row repeat row 0's, whose sum is not stored), in
/// line: the bits of [`gemv_rows`] onto the bias (or onto zero), without its call, its
/// copy of the bias and its pass for ReLU.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a` holds `R` rows of `N` floats, `x` `N` floats,
/// `y` `R` writable floats, and `b` is null or holds `R` floats.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dense_b1_tail<const N: usize, const R: usize>(
    a: *const f32,
    x: *const f32,
    b: *const f32,
    relu: bool,
    y: *mut f32,
) {
    let zero = _mm256_setzero_ps();
    let mut acc = [zero; R];
    // SAFETY: rows `r < R` of `N` floats at `a`, `N` floats at `x` (the caller's contract).
    unsafe {
        for p in (0..N).step_by(8) {
            let xv = _mm256_loadu_ps(x.add(p));
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(r * N + p)), xv, *acc);
            }
        }
    }
    let row = |r: usize| if r < R { acc[r] } else { acc[0] };
    let sums = sum4(row(0), row(1), row(2), row(3));
    let start = if b.is_null() {
        _mm_setzero_ps()
    } else {
        // SAFETY: `b` holds `R` floats (the caller's contract); lanes from `R` on are
        // not stored.
        unsafe {
            let at = |r: usize| if r < R { *b.add(r) } else { 0.0 };
            _mm_set_ps(at(3), at(2), at(1), at(0))
        }
    };
    let mut v = _mm_add_ps(start, sums);
    if relu {
        // `max` returns its second operand when either is NaN (or both zeros).
        v = _mm_max_ps(v, _mm_setzero_ps());
    }
    let mut out = [0.0f32; 4];
    // SAFETY: `out` holds 4 floats, `y` `R <= 4` (the caller's contract).
    unsafe {
        _mm_storeu_ps(out.as_mut_ptr(), v);
        core::ptr::copy_nonoverlapping(out.as_ptr(), y, R);
    }
}

/// Columns up to which [`gemv_held`] keeps the whole input vector in registers.
pub const HELD_COLUMNS: usize = 64;

/// `y = bias + A x` for a row-major `A` of `m` rows (a multiple of 4) of `N` columns (a
/// multiple of 8, at most [`HELD_COLUMNS`]): the projection of a recurrent step. The
/// `N / 8` blocks of `x` are loaded into registers once, then every row is read by
/// fused multiply-adds from memory, four rows at a time, first to last or, with
/// `reverse`, last to first: one load per multiply-add, where [`gemv_fixed`] loads the
/// block of `x` again for every eight rows. Every output has the bits of
/// [`gemv_fixed`] onto the bias (eight lanes, input `k` into lane `k % 8` in order,
/// [`sum4`], then the bias).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If `N` is not a multiple of 8 up to [`HELD_COLUMNS`], `m` not a multiple of 4, `a`
/// holds fewer than `m N` floats, `x` fewer than `N`, `bias` or `y` fewer than `m`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_held<const N: usize>(a: &[f32], m: usize, x: &[f32], bias: &[f32], reverse: bool, y: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { gemv_held_with::<N>(a, m, x, bias, reverse, y, |_| {}) }
}

/// [`gemv_held`], calling `after(k)` after the `k`-th block of four rows it sums (`k`
/// from 0 in the order the blocks are read, whatever `reverse`), inlined into the
/// loop: independent arithmetic of the caller runs beside the rows' multiply-adds
/// (while those wait on rows from L2). The same bits as [`gemv_held`].
///
/// # Safety
/// As [`gemv_held`].
///
/// # Panics
/// As [`gemv_held`].
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn gemv_held_with<const N: usize>(
    a: &[f32],
    m: usize,
    x: &[f32],
    bias: &[f32],
    reverse: bool,
    y: &mut [f32],
    mut after: impl FnMut(usize),
) {
    assert!(
        N.is_multiple_of(8)
            && N <= HELD_COLUMNS
            && m.is_multiple_of(4)
            && blocks_fit(m, N, a.len())
            && x.len() >= N
            && bias.len() >= m
            && y.len() >= m,
        "gemv_held: shapes"
    );
    let (ap, bp, yp) = (a.as_ptr(), bias.as_ptr(), y.as_mut_ptr());
    let mut xv = [_mm256_setzero_ps(); HELD_COLUMNS / 8];
    for (k, v) in xv.iter_mut().enumerate().take(N / 8) {
        // SAFETY: floats `8 k..8 k + 8 <= N` of `x` (asserted).
        *v = unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * k)) };
    }
    let blocks = m / 4;
    for block in 0..blocks {
        let i = 4 * if reverse { blocks - 1 - block } else { block };
        // SAFETY: rows `i..i + 4 <= m` of `N` floats are inside `a`, `bias` and `y`
        // hold `m` floats (asserted).
        unsafe {
            let rows = ap.add(i * N);
            let mut acc = [_mm256_setzero_ps(); 4];
            for (p, xv) in xv.iter().enumerate().take(N / 8) {
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(_mm256_loadu_ps(rows.add(r * N + 8 * p)), *xv, *acc);
                }
            }
            let sums = sum4(acc[0], acc[1], acc[2], acc[3]);
            _mm_storeu_ps(yp.add(i), _mm_add_ps(_mm_loadu_ps(bp.add(i)), sums));
        }
        after(block);
    }
}

/// Dense 8 -> 8 at batch 1 on AVX2: [`gemv_fixed`] with every size in the types, so
/// that nothing is checked at run time and the call passes four pointers (no bias is a
/// bias of zeros, the same bits); the same bits as [`gemv_fixed`], ReLU fused when
/// `RELU`. The AVX2 counterpart of `avx512::dense8x8`. The first two levels of each
/// row's tree are [`pair_sums`] (`vshufps` and `vaddps`) where [`sum4`] has `vhaddps`:
/// on AMD Zen 3 a call took 5.2 to 5.5 ns instead of 6.2 ns.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn dense8x8<const RELU: bool>(w: &[f32; 64], x: &[f32; 8], bias: &[f32; 8], y: &mut [f32; 8]) {
    let zero = _mm256_setzero_ps();
    // SAFETY: `x` holds 8 floats, `w` 8 rows of 8.
    let p: [__m256; 8] = unsafe {
        let xv = _mm256_loadu_ps(x.as_ptr());
        core::array::from_fn(|r| _mm256_fmadd_ps(_mm256_loadu_ps(w.as_ptr().add(8 * r)), xv, zero))
    };
    let q0 = pair_sums(pair_sums(p[0], p[1]), pair_sums(p[2], p[3]));
    let q1 = pair_sums(pair_sums(p[4], p[5]), pair_sums(p[6], p[7]));
    let sums = _mm256_add_ps(
        _mm256_insertf128_ps::<1>(q0, _mm256_castps256_ps128(q1)),
        _mm256_permute2f128_ps::<0x31>(q0, q1),
    );
    // SAFETY: `bias` holds 8 floats.
    let mut v = _mm256_add_ps(unsafe { _mm256_loadu_ps(bias.as_ptr()) }, sums);
    if RELU {
        // `max` returns its second operand when either is NaN (or both zeros).
        v = _mm256_max_ps(v, zero);
    }
    // SAFETY: `y` holds 8 floats.
    unsafe { _mm256_storeu_ps(y.as_mut_ptr(), v) };
}

/// [`dense8x8`] returning its outputs by value: called from code compiled without AVX2
/// (out of line), the kernel writes them straight into the caller's return slot, so a
/// caller that returns them in turn (batch-1 inference of a network ending in this
/// layer) neither zeroes an output buffer first nor copies the kernel's store after
/// it. The same bits as [`dense8x8`].
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn dense8x8_value<const RELU: bool>(w: &[f32; 64], x: &[f32; 8], bias: &[f32; 8]) -> [f32; 8] {
    let mut y = [0.0; 8];
    // SAFETY: the caller's contract.
    unsafe { dense8x8::<RELU>(w, x, bias, &mut y) };
    y
}

/// `_mm256_hadd_ps(u, v)`, the sums of adjacent lanes `[u0 + u1, u2 + u3, v0 + v1, v2 + v3]`
/// in each 128-bit half, the same bits, as two `vshufps` (even and odd lanes) and one
/// `vaddps`. The shuffles are written in `asm!` so that the compiler does not fold them
/// back into `vhaddps`, which takes longer on AMD Zen 3.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pair_sums(u: __m256, v: __m256) -> __m256 {
    let (even, odd): (__m256, __m256);
    // SAFETY: two register shuffles, no memory, no flags, no stack.
    unsafe {
        core::arch::asm!(
            "vshufps {even}, {u}, {v}, 0x88",
            "vshufps {odd}, {u}, {v}, 0xdd",
            u = in(ymm_reg) u,
            v = in(ymm_reg) v,
            even = out(ymm_reg) even,
            odd = out(ymm_reg) odd,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    _mm256_add_ps(even, odd)
}

/// The sum of eight lane vectors in the order [`sum8`] gives the lanes of one vector,
/// `((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))`, as vertical additions.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn tree8(a: [__m256; 8]) -> __m256 {
    let low = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    let high = _mm256_add_ps(_mm256_add_ps(a[4], a[5]), _mm256_add_ps(a[6], a[7]));
    _mm256_add_ps(low, high)
}

/// The dot products of eight rows of a step-ordered matrix (see [`gemv_panels`]) with
/// `x` (`N` floats), before the bias: input `i` of the eight rows at `w + i S`
/// (`S`: the width of their panel, 8 or 16). Lane `k` of accumulator `i % 8` takes
/// input `i`, in order, and the accumulators are added by [`tree8`]: each row rounded
/// as [`gemv_fixed`] rounds it.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `w + i S .. w + i S + 8` and `x + i` are readable
/// for every `i < N`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn panel8<const N: usize, const S: usize>(w: *const f32, x: *const f32) -> __m256 {
    let mut acc = [_mm256_setzero_ps(); 8];
    // Blocks of eight inputs, one per accumulator (indices known at compile time, so
    // that the accumulators stay in registers).
    for i in (0..N).step_by(8) {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `i + k < N` (`N` a multiple of 8; the caller's bounds).
            unsafe { *acc = _mm256_fmadd_ps(_mm256_loadu_ps(w.add((i + k) * S)), _mm256_set1_ps(*x.add(i + k)), *acc) };
        }
    }
    tree8(acc)
}

/// The dot products of the sixteen rows of a full panel of a step-ordered matrix (see
/// [`gemv_panels`]) with `x` (`N` floats), before the bias: [`panel8`] of both halves
/// of the panel at once (`[rows 0..8, rows 8..16]`), each broadcast of `x` shared by
/// the two halves, the same bits. The accumulators of inputs `i % 8 < 4` run first,
/// then those of `i % 8 >= 4`, each group folded into its half of the tree before the
/// next starts: eight chains of fused multiply-adds side by side (the latency of one
/// covered), eleven registers live, where all sixteen accumulators at once would spill.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `w .. w + 16 N` and `x .. x + N` are readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn panel16<const N: usize>(w: *const f32, x: *const f32) -> [__m256; 2] {
    // Group `g`: inputs `k, k + 8, k + 16, ...` into accumulator `k` of each half, for
    // `k` in `4 g..4 g + 4`, then `(a0 + a1) + (a2 + a3)` of the group per half.
    let mut halves = [[_mm256_setzero_ps(); 2]; 2];
    for (g, half) in halves.iter_mut().enumerate() {
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        for i in (0..N).step_by(8) {
            for (j, a) in acc.iter_mut().enumerate() {
                let k = 4 * g + j;
                // SAFETY: `i + k < N` (`N` a multiple of 8; the caller's bounds).
                unsafe {
                    let xv = _mm256_set1_ps(*x.add(i + k));
                    let col = w.add((i + k) * PANEL_ROWS);
                    a[0] = _mm256_fmadd_ps(_mm256_loadu_ps(col), xv, a[0]);
                    a[1] = _mm256_fmadd_ps(_mm256_loadu_ps(col.add(8)), xv, a[1]);
                }
            }
        }
        for (h, v) in half.iter_mut().enumerate() {
            *v = _mm256_add_ps(_mm256_add_ps(acc[0][h], acc[1][h]), _mm256_add_ps(acc[2][h], acc[3][h]));
        }
    }
    [_mm256_add_ps(halves[0][0], halves[1][0]), _mm256_add_ps(halves[0][1], halves[1][1])]
}

/// Rows of a panel of the step order of [`gemv_panels`].
pub const PANEL_ROWS: usize = 16;

/// `y = bias + A x` for `A` of `m` rows of `N` columns (`m` and `N` multiples of 8),
/// stored in step order: the rows in panels of [`PANEL_ROWS`] (the last one of 8 when
/// `m` is an odd multiple of 8), each panel column after column (element `(r, i)` of
/// a panel of width `S` at `i S + r`). Each row is rounded exactly as [`gemv_fixed`]
/// rounds it (eight lanes of fused multiply-adds,
/// `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`, then the bias), but eight rows
/// at a time lie across the lanes of a register, so the tree is seven additions of
/// whole vectors, without shuffles: a full panel by [`panel16`] (from 16 inputs; below,
/// by [`panel8`] on each half), a last panel of 8 rows by [`panel8`]. With `reverse`,
/// last rows first (the order changes no result).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If `m` or `N` is not a multiple of 8, `panels` holds fewer than `m N` floats, `x`
/// fewer than `N`, `bias` or `y` fewer than `m`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_panels<const N: usize>(
    panels: &[f32],
    m: usize,
    x: &[f32],
    bias: &[f32],
    reverse: bool,
    y: &mut [f32],
) {
    assert!(
        N.is_multiple_of(8)
            && m.is_multiple_of(8)
            && blocks_fit(m, N, panels.len())
            && x.len() >= N
            && bias.len() >= m
            && y.len() >= m,
        "gemv_panels: shapes"
    );
    let (wp, xp, bp, yp) = (panels.as_ptr(), x.as_ptr(), bias.as_ptr(), y.as_mut_ptr());
    let full = m / PANEL_ROWS;
    let units = m.div_ceil(PANEL_ROWS);
    for u in 0..units {
        let u = if reverse { units - 1 - u } else { u };
        let r = u * PANEL_ROWS;
        // SAFETY: panel `u` (rows `r..r + 16`, or `r..r + 8` for a last panel of 8, at
        // most `m`) lies inside the `m N` floats of `panels` (asserted); `x` holds `N`
        // floats, `bias` and `y` `m`.
        unsafe {
            let base = wp.add(r * N);
            if u < full {
                // With 8 inputs the two halves by `panel8` keep every broadcast in a
                // register across the panels (a GRU 8->8 step 2 ns faster).
                let [s0, s1] = if N >= 16 {
                    panel16::<N>(base, xp)
                } else {
                    [panel8::<N, PANEL_ROWS>(base, xp), panel8::<N, PANEL_ROWS>(base.add(8), xp)]
                };
                _mm256_storeu_ps(yp.add(r), _mm256_add_ps(_mm256_loadu_ps(bp.add(r)), s0));
                _mm256_storeu_ps(yp.add(r + 8), _mm256_add_ps(_mm256_loadu_ps(bp.add(r + 8)), s1));
            } else {
                let s = panel8::<N, 8>(base, xp);
                _mm256_storeu_ps(yp.add(r), _mm256_add_ps(_mm256_loadu_ps(bp.add(r)), s));
            }
        }
    }
}

/// Rows `r..r + 8` of [`gemv_panels`]'s `y = bias + A x` (the other rows of `y`
/// untouched), `r` a multiple of 8: one half of a full panel or a last panel of 8 by
/// [`panel8`], the bits of [`gemv_panels`].
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If `m` or `N` is not a multiple of 8, `r` is not a multiple of 8 below `m`, or the
/// slices are shorter than [`gemv_panels`] asks.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_panel_rows<const N: usize>(
    panels: &[f32],
    m: usize,
    x: &[f32],
    bias: &[f32],
    r: usize,
    y: &mut [f32],
) {
    assert!(
        N.is_multiple_of(8)
            && m.is_multiple_of(8)
            && r.is_multiple_of(8)
            && r < m
            && blocks_fit(m, N, panels.len())
            && x.len() >= N
            && bias.len() >= m
            && y.len() >= m,
        "gemv_panel_rows: shapes"
    );
    let (wp, xp, bp, yp) = (panels.as_ptr(), x.as_ptr(), bias.as_ptr(), y.as_mut_ptr());
    let full = m / PANEL_ROWS * PANEL_ROWS;
    // SAFETY: rows `r..r + 8 <= m` lie in a full panel (from `r - r % 16`, width 16)
    // or in the last panel of 8 (from `r`), inside the `m N` floats of `panels`; `x`
    // holds `N` floats, `bias` and `y` `m` (asserted).
    unsafe {
        let s = if r < full {
            panel8::<N, PANEL_ROWS>(wp.add((r - r % PANEL_ROWS) * N + r % PANEL_ROWS), xp)
        } else {
            panel8::<N, 8>(wp.add(r * N), xp)
        };
        _mm256_storeu_ps(yp.add(r), _mm256_add_ps(_mm256_loadu_ps(bp.add(r)), s));
    }
}

/// Bytes of rows of `A` swept per block by [`gemv_batch`]: they stay in L2 while the
/// vectors pass through L1.
pub(crate) const BATCH_BLOCK_BYTES: usize = 192 * 1024;

/// `y_s[i] += alpha * dot(A[i, :], x_s)` for `A` row-major (row stride `rs`, `m` rows of
/// `n` columns) and `batch` vectors `x_s` (`x[s n..]`), `y_s` (`y[s m..]`), every
/// element rounded exactly as [`dot`] and [`gemv_rows`] round it: a vector's result
/// does not depend on the batch. Tiles of 2 vectors by 4 rows of `A` (eight FMA chains,
/// six loads per eight FMAs), over blocks of rows of `A` that stay in L2.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a` must hold `(m - 1) rs + n` floats (when
/// `m > 0`), `x` at least `batch n`, `y` at least `batch m`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemv_batch(alpha: f32, a: &[f32], rs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32], batch: usize) {
    assert!(
        blocks_fit(batch, n, x.len()) && blocks_fit(batch, m, y.len()) && rows_fit(m, rs, n, a.len()),
        "gemv_batch: shapes"
    );
    // SAFETY: asserted above (`y` holds `batch` vectors of `m`, so `y + s m + i` is
    // inside it for `s < batch`, `i < m`); `y` is a unique borrow.
    unsafe { gemv_batch_strided(alpha, a, rs, m, n, x, y.as_mut_ptr(), m, batch) }
}

/// [`gemv_batch`] writing `y_s` at `y + s ldy` (so that threads can share the rows of
/// `A` and write disjoint columns of `y`).
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a` must hold `(m - 1) rs + n` floats (when
/// `m > 0`), `x` at least `batch n`; `y + s ldy + i` must be writable and not otherwise
/// borrowed for `s < batch`, `i < m`.
#[target_feature(enable = "avx2,fma")]
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
    assert!(blocks_fit(batch, n, x.len()) && rows_fit(m, rs, n, a.len()), "gemv_batch_strided: shapes");
    let block = (BATCH_BLOCK_BYTES / (4 * n.max(1)) / 4 * 4).max(4);
    let (ap, xp) = (a.as_ptr(), x.as_ptr());
    let mut i1 = 0;
    while i1 < m {
        let i_end = (i1 + block).min(m);
        let mut s = 0;
        while s < batch {
            let vectors = (batch - s).min(2);
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
                    if vectors == 2 {
                        let xs = [xp.add(s * n), xp.add((s + 1) * n)];
                        dot_tile::<2>(n, xs, a_rows, alpha, out, ldy, rows);
                    } else {
                        dot_tile::<1>(n, [xp.add(s * n)], a_rows, alpha, out, ldy, rows);
                    }
                }
                i += rows;
            }
            s += vectors;
        }
        i1 = i_end;
    }
}

/// `y[v, q] += alpha dot(vectors[v], rows[q])` for `v < V`, `q < width`, `y` with stride
/// `ldy`, each dot product rounded as [`dot_raw`] rounds it.
///
/// # Safety
/// The CPU has AVX2 and FMA; every vector and row holds `n` floats; `y`'s `V` rows of
/// `width` floats (stride `ldy`) are writable.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_tile<const V: usize>(
    n: usize,
    vectors: [*const f32; V],
    rows: [*const f32; 4],
    alpha: f32,
    y: *mut f32,
    ldy: usize,
    width: usize,
) {
    let blocks = n - n % 8;
    let mut acc = [[_mm256_setzero_ps(); 4]; V];
    let mut p = 0;
    // SAFETY: loads of floats `p..p + 8 <= blocks`, scalar reads below `n`, and writes
    // to the first `width` floats of `V` rows of `y` (the caller's contract).
    unsafe {
        while p < blocks {
            let r: [__m256; 4] = core::array::from_fn(|q| _mm256_loadu_ps(rows[q].add(p)));
            for v in 0..V {
                let xv = _mm256_loadu_ps(vectors[v].add(p));
                for q in 0..4 {
                    acc[v][q] = _mm256_fmadd_ps(r[q], xv, acc[v][q]);
                }
            }
            p += 8;
        }
        for v in 0..V {
            let sums = sum4(acc[v][0], acc[v][1], acc[v][2], acc[v][3]);
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

/// `y[i] += alpha * sum_j A[i, j] x[j]` for `A` column-major with column stride `cs`,
/// `m` rows of `n` columns: blocks of 64 rows accumulate in eight registers over all
/// columns, then blocks of 8, then single rows.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a` must hold `(n - 1) cs + m` floats (when
/// `n > 0`), `x` at least `n`, `y` at least `m`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemv_columns(alpha: f32, a: &[f32], cs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32]) {
    assert!(x.len() >= n && y.len() >= m && rows_fit(n, cs, m, a.len()), "gemv_columns: shapes");
    let scale = _mm256_set1_ps(alpha);
    let (ap, yp) = (a.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i + 64 <= m {
        // SAFETY: rows `i..i + 64 <= m` of every column `j < n` are inside `a`, and `y`
        // holds `m` floats (asserted).
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (j, &xj) in x[..n].iter().enumerate() {
                let xv = _mm256_set1_ps(xj);
                let col = ap.add(j * cs + i);
                for (q, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(xv, _mm256_loadu_ps(col.add(8 * q)), *acc);
                }
            }
            for (q, acc) in acc.iter().enumerate() {
                let yq = yp.add(i + 8 * q);
                _mm256_storeu_ps(yq, _mm256_fmadd_ps(scale, *acc, _mm256_loadu_ps(yq)));
            }
        }
        i += 64;
    }
    while i + 8 <= m {
        // SAFETY: as above, for rows `i..i + 8 <= m`.
        unsafe {
            let mut acc = _mm256_setzero_ps();
            for (j, &xj) in x[..n].iter().enumerate() {
                acc = _mm256_fmadd_ps(_mm256_set1_ps(xj), _mm256_loadu_ps(ap.add(j * cs + i)), acc);
            }
            let yq = yp.add(i);
            _mm256_storeu_ps(yq, _mm256_fmadd_ps(scale, acc, _mm256_loadu_ps(yq)));
        }
        i += 8;
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

/// [`super::optim::adam`] eight parameters at a time, with the scalar loop's operations
/// in the scalar loop's order (no FMA). Returns how many leading parameters it updated
/// (a multiple of 8); the caller does the rest.
///
/// # Safety
/// The CPU must have AVX2 and FMA; the four slices must have the same length.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn adam(
    step: &super::optim::AdamStep,
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) -> usize {
    let n = params.len();
    let done = n - n % 8;
    let beta1 = _mm256_set1_ps(step.beta1);
    let beta2 = _mm256_set1_ps(step.beta2);
    let one_minus_beta1 = _mm256_set1_ps(1.0 - step.beta1);
    let one_minus_beta2 = _mm256_set1_ps(1.0 - step.beta2);
    let step_size = _mm256_set1_ps(step.step_size);
    let bc2_sqrt = _mm256_set1_ps(step.bc2_sqrt);
    let eps = _mm256_set1_ps(step.eps);
    let (pp, gp, mp, vp) = (params.as_mut_ptr(), grads.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr());
    let mut i = 0;
    while i < done {
        // SAFETY: `i + 8 <= n` and every slice holds `n` floats.
        unsafe {
            let g = _mm256_loadu_ps(gp.add(i));
            let mi = _mm256_add_ps(_mm256_mul_ps(beta1, _mm256_loadu_ps(mp.add(i))), _mm256_mul_ps(one_minus_beta1, g));
            let vi = _mm256_add_ps(
                _mm256_mul_ps(beta2, _mm256_loadu_ps(vp.add(i))),
                _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, g), g),
            );
            let denominator = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2_sqrt), eps);
            let update = _mm256_div_ps(_mm256_mul_ps(step_size, mi), denominator);
            _mm256_storeu_ps(mp.add(i), mi);
            _mm256_storeu_ps(vp.add(i), vi);
            _mm256_storeu_ps(pp.add(i), _mm256_sub_ps(_mm256_loadu_ps(pp.add(i)), update));
        }
        i += 8;
    }
    done
}

#[cfg(all(test, feature = "std"))]
mod tests {
    //! The bounds the kernels assert hold when a length is so large that its product
    //! wraps: the old unchecked forms passed these calls and read or wrote far outside
    //! the slices.
    use super::*;

    /// Runs `call` (an unsafe kernel on a CPU with AVX2 and FMA) and expects a panic.
    fn rejects(call: impl FnOnce()) {
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).is_err(), "the call returned");
    }

    const WRAPS: usize = usize::MAX / 2 + 1;

    #[test]
    fn lengths_that_wrap_do_not_fit() {
        assert!(rows_fit(0, usize::MAX, usize::MAX, 0));
        assert!(rows_fit(3, 4, 2, 10));
        assert!(!rows_fit(3, 4, 2, 9));
        assert!(!rows_fit(3, WRAPS, 2, 10), "(3 - 1) * 2^63 + 2 wraps to 2");
        assert!(!rows_fit(2, usize::MAX, 2, 10));
        assert!(blocks_fit(3, 4, 12) && !blocks_fit(3, 4, 11));
        assert!(!blocks_fit(4, 1 << 62, 8), "4 * 2^62 wraps to 0");
    }

    #[test]
    fn matrix_vector_kernels_reject_extents_that_wrap() {
        if !available() {
            return;
        }
        let (a, x) = ([1.0f32; 16], [1.0f32; 16]);
        let mut y = [0.0f32; 16];
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemv_rows(1.0, &a, WRAPS, 3, 2, &x, &mut y) });
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemv_columns(1.0, &a, WRAPS, 2, 3, &x, &mut y) });
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemv_batch(1.0, &a, WRAPS, 3, 2, &x, &mut y, 1) });
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemv_batch(1.0, &a, 2, 2, 2, &x, &mut y, 1 << 63) });
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemv_batch_strided(1.0, &a, 2, 2, 2, &x, y.as_mut_ptr(), 2, 1 << 63) });
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemv_fixed::<8>(&a, 1 << 61, &x, None, false, false, &mut y) });
        // The same calls with lengths that fit run.
        // SAFETY: as above.
        unsafe { gemv_rows(1.0, &a, 2, 3, 2, &x, &mut y) };
        assert_eq!(y[..3], [2.0; 3]);
    }

    /// Whether [`sigmoid8_one_scale`] and [`tanh8_one_scale`] give the bits of
    /// `maths::sigmoid` and `maths::tanh` on the eight bit patterns from `first`, `step`
    /// apart (NaN equal to NaN, whatever its bits).
    fn one_scale_agrees(first: u32, step: u32) -> bool {
        let x: [f32; 8] = core::array::from_fn(|k| f32::from_bits(first.wrapping_add(step.wrapping_mul(k as u32))));
        let (mut sig, mut tanh) = ([0.0f32; 8], [0.0f32; 8]);
        // SAFETY: the CPU has AVX2 and FMA (the caller checked); the arrays hold eight
        // floats.
        unsafe {
            let v = _mm256_loadu_ps(x.as_ptr());
            _mm256_storeu_ps(sig.as_mut_ptr(), sigmoid8_one_scale(v));
            _mm256_storeu_ps(tanh.as_mut_ptr(), tanh8_one_scale(v));
        }
        let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        x.iter()
            .enumerate()
            .all(|(k, &v)| same(sig[k], super::super::maths::sigmoid(v)) && same(tanh[k], super::super::maths::tanh(v)))
    }

    /// The eight-lane sigmoid and `tanh` of the LSTM steps give the portable functions'
    /// bits: around the special values (zeros, infinities, NaN, `tanh`'s threshold, the
    /// clamps of the exponential and where its `n` passes -124, 127 and 128) and on one
    /// bit pattern in 4099 of all of them.
    #[test]
    fn one_scale_activations_give_the_portable_bits() {
        if !available() {
            return;
        }
        let special = [
            0.0f32,
            0.625,
            1.0,
            44.0,
            44.19,
            44.36,
            44.5,
            45.0,
            85.9,
            86.0,
            86.1,
            88.0,
            88.38,
            88.5,
            88.73,
            89.0,
            103.9,
            104.0,
            1e-45,
            f32::MAX,
            f32::INFINITY,
            f32::NAN,
            1e30,
        ];
        // 43.9 to 44.4 (`2|x|` where `n` reaches 127 and 128) and 85.8 to 89.1 (`-x`
        // where the sigmoid's `n` passes -124, 127 and 128), every value.
        super::super::maths::tests::sweep_bit_patterns(&special, &[(43.9, 44.4), (85.8, 89.1)], one_scale_agrees);
    }

    /// The same over every `f32` (run with `--release --ignored`).
    #[test]
    #[ignore]
    fn one_scale_activations_give_the_portable_bits_everywhere() {
        if !available() {
            return;
        }
        for block in 0..(1u64 << 32) / 8 {
            let first = (8 * block) as u32;
            assert!(one_scale_agrees(first, 1), "from {first:#x}");
        }
    }

    /// `dense8x8` (pair sums by `vshufps`) gives the bits of `gemv_fixed::<8>` (by
    /// `vhaddps`) with and without bias and ReLU, a bias of zeros the bits of no bias,
    /// for weights and inputs with zeros of both signs, infinities, NaN, products that
    /// round to zero or overflow, and sums that cancel. A NaN output must be NaN in both,
    /// but its sign and payload are not compared: the compiler may swap the operands of
    /// an addition (it treats it as commutative), and which NaN an addition of two NaNs
    /// returns depends on their order (debug and release builds differ there).
    #[test]
    fn dense8x8_equals_the_row_kernel_bit_for_bit() {
        if !available() {
            return;
        }
        let mut rng = crate::rng::Rng::new(29);
        let specials = [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-30, -1e-30, 3e38, -3e38, 1.0];
        let bits = |v: &[f32]| {
            v.iter().map(|v| if v.is_nan() { f32::NAN.to_bits() } else { v.to_bits() }).collect::<std::vec::Vec<_>>()
        };
        for round in 0..200 {
            let mut w: [f32; 64] = core::array::from_fn(|_| rng.uniform_in(-1.0, 1.0));
            let mut x: [f32; 8] = core::array::from_fn(|_| rng.uniform_in(-1.0, 1.0));
            let mut b: [f32; 8] = core::array::from_fn(|_| rng.uniform_in(-1.0, 1.0));
            if round % 2 == 1 {
                for v in w.iter_mut().chain(x.iter_mut()).chain(b.iter_mut()) {
                    if rng.uniform_in(0.0, 1.0) < 0.3 {
                        *v = specials[(rng.uniform_in(0.0, specials.len() as f32) as usize).min(specials.len() - 1)];
                    }
                }
            }
            if round % 5 == 0 {
                // Rows whose products cancel to zero (of either sign).
                for r in 0..8 {
                    for k in 0..4 {
                        w[8 * r + 4 + k] = -w[8 * r + k];
                    }
                }
                x = [x[0], x[1], x[2], x[3], x[0], x[1], x[2], x[3]];
            }
            for relu in [false, true] {
                for bias in [Some(&b), None] {
                    let (mut y, mut reference) = ([7.0f32; 8], [7.0f32; 8]);
                    // SAFETY: the CPU has AVX2 and FMA.
                    unsafe {
                        let b8 = bias.unwrap_or(&[0.0; 8]);
                        match relu {
                            true => dense8x8::<true>(&w, &x, b8, &mut y),
                            false => dense8x8::<false>(&w, &x, b8, &mut y),
                        }
                        gemv_fixed::<8>(&w, 8, &x, bias.map(|b| &b[..]), relu, false, &mut reference);
                    }
                    assert_eq!(bits(&y), bits(&reference), "round {round}, relu {relu}, bias {}", bias.is_some());
                }
            }
        }
    }

    #[test]
    fn gathered_product_rejects_extents_that_wrap() {
        if !available() {
            return;
        }
        let (a, src) = ([1.0f32; 64], [1.0f32; 64]);
        let mut c = [0.0f32; 64];
        let offsets = [0usize; 4];
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemm_gathered(&a, WRAPS, 3, 2, &src, &offsets, (8, 8), None, &mut c, 8, 8) });
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemm_gathered(&a, 2, 3, 2, &src, &offsets, (8, 8), None, &mut c, WRAPS, 8) });
        // The reach of the last column block wraps: 2^61 blocks of 8, 2^61 apart.
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemm_gathered(&a, 2, 1, 2, &src, &offsets, (8, 1 << 61), None, &mut c, 16, 16) });
        let far = [usize::MAX - 4, 0];
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts the bounds (and panics).
        rejects(|| unsafe { gemm_gathered(&a, 2, 1, 2, &src, &far, (8, 8), None, &mut c, 8, 8) });
    }
}

/// [`maths::sigmoid`](super::maths::sigmoid) of eight lanes: the lane function itself,
/// inlined into this AVX2 and FMA copy, so each lane has the bits of the portable
/// function (always inlined: it takes its caller's instruction set, and its operand
/// stays in a register).
#[inline(always)]
fn sigmoid8(x: __m256) -> __m256 {
    // SAFETY: `__m256` and `[f32; 8]` have the same size and every bit pattern is valid
    // for both.
    unsafe {
        core::mem::transmute::<[f32; 8], __m256>(super::maths::sigmoid_lanes::<8>(core::mem::transmute::<
            __m256,
            [f32; 8],
        >(x)))
    }
}

/// `m = e^r` (in `[0.7, 1.5)`) of [`maths::exp`](super::maths::exp)'s reduction
/// `x = n ln 2 + r` of eight lanes: its polynomial, the lane function's operations in
/// its order.
///
/// # Safety
/// The CPU must have AVX2 and FMA (always inlined into callers compiled for them).
#[inline(always)]
unsafe fn exp8_poly(r: __m256) -> __m256 {
    use super::maths::exp_constants::C;
    // SAFETY: the CPU has AVX2 and FMA (the caller's contract).
    unsafe {
        let s = _mm256_set1_ps;
        let r2 = _mm256_mul_ps(r, r);
        let pa = _mm256_fmadd_ps(s(C[1]), r, s(C[0]));
        let pb = _mm256_fmadd_ps(s(C[3]), r, s(C[2]));
        let pc = _mm256_fmadd_ps(s(C[5]), r, s(C[4]));
        let p = _mm256_fmadd_ps(_mm256_fmadd_ps(pc, r2, pb), r2, pa);
        _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), s(1.0))
    }
}

/// `2^(n + BIAS)` from `rounded = n + ROUND` of `maths::exp`'s reduction, `n + BIAS +
/// 127` in `[1, 254]`: the exponent bits `(n + BIAS + 127) << 23`.
///
/// # Safety
/// The CPU must have AVX2 (always inlined into callers compiled for it).
#[inline(always)]
unsafe fn exp8_scale<const BIAS: i32>(rounded: __m256) -> __m256 {
    use super::maths::exp_constants::ROUND;
    let offset = (127 + BIAS).wrapping_sub(ROUND.to_bits() as i32);
    // SAFETY: the CPU has AVX2 (the caller's contract).
    unsafe {
        let bits = _mm256_add_epi32(_mm256_castps_si256(rounded), _mm256_set1_epi32(offset));
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(bits))
    }
}

/// [`maths::sigmoid`](super::maths::sigmoid) of eight lanes, `1 / (1 + e^-x)`, each lane
/// with the bits of the portable function by its operations but for the last steps of
/// the exponential, without effect on the result. The lower clamp of `-x` is -86
/// instead of -104: below, `e^-x` (at most `e^-86`, 4.4e-38, either way) is far below
/// half an ulp of 1 and `1 / (1 + e^-x)` is 1 both ways. Then `n` is in `[-124, 128]`,
/// and `1 + e^-x`, `1 + m 2^n` (`m` in `[0.7, 1.5)`) after the lane function's exact
/// (normal) or overflowing `m 2^n`, is one fused multiply-add `2 m 2^(n - 1) + 1`
/// (`2 m` and `2^(n - 1)` exact): the same single rounding of the exact sum, `+inf`
/// where `m 2^n` passes `f32::MAX`. Four operations (two integer ones, an addition, a
/// multiply-add) where the lane function takes ten, and `-x` folded into the
/// reduction's multiply-adds.
///
/// # Safety
/// The CPU must have AVX2 and FMA (always inlined into callers compiled for them).
#[inline(always)]
unsafe fn sigmoid8_one_scale(x: __m256) -> __m256 {
    use super::maths::exp_constants::{LN2_HI, LN2_LO, LOG2E, ROUND};
    // SAFETY: the CPU has AVX2 and FMA (the caller's contract).
    unsafe {
        let s = _mm256_set1_ps;
        // `a = -x` clamped to `[-86, 89]`, as `b = -a`, `x` clamped to `[-89, 86]`
        // (`max` and `min` return their second operand, `x`, for NaN, as the lane
        // function's `clamp` keeps it), and the lane function's reduction of `a` by
        // negated multiply-adds of `b`, the same roundings:
        // `rounded = a log2(e) + ROUND`, `r = n (-ln2_lo) + (n (-ln2_hi) + a)`.
        let b = _mm256_max_ps(s(-89.0), _mm256_min_ps(s(86.0), x));
        let rounded = _mm256_fnmadd_ps(b, s(LOG2E), s(ROUND));
        let n = _mm256_sub_ps(rounded, s(ROUND));
        let r = _mm256_fmadd_ps(n, s(-LN2_LO), _mm256_fnmsub_ps(n, s(LN2_HI), b));
        let m = exp8_poly(r);
        let one = s(1.0);
        let sum = _mm256_fmadd_ps(_mm256_add_ps(m, m), exp8_scale::<-1>(rounded), one);
        _mm256_div_ps(one, sum)
    }
}

/// [`maths::tanh`](super::maths::tanh) of eight lanes, each lane with the bits of the
/// portable function: its odd polynomial and `1 - 2 / (e^(2|x|) + 1)` with the sign of
/// `x`, chosen by a compare and a blend, by the operations of
/// `maths::tanh_lanes_one_scale` but for the last steps of the exponential. `2|x|` is
/// clamped to 88 (instead of 89): from there `2 / (e + 1)` is at most 1.3e-38 either
/// way and `1 - 2 / (e + 1)` is 1. Then `n` is in `[0, 127]`, `e^(2|x|) = m 2^n` exact
/// and normal, and `e + 1` is one fused multiply-add `m 2^n + 1`, the same single
/// rounding. The sign: `1 - 2 / (e + 1)` is not negative (`e` is at least 1), so
/// `copysign` is an `or` of the sign bit of `x` (NaN's sign is not kept).
///
/// # Safety
/// The CPU must have AVX2 and FMA (always inlined into callers compiled for them).
#[inline(always)]
unsafe fn tanh8_one_scale(x: __m256) -> __m256 {
    use super::maths::exp_constants::{LN2_HI, LN2_LO, LOG2E, ROUND};
    const D: [f32; 5] = super::maths::TANH_D;
    // SAFETY: the CPU has AVX2 and FMA (the caller's contract).
    unsafe {
        let s = _mm256_set1_ps;
        let sign = s(-0.0);
        let abs = _mm256_andnot_ps(sign, x);
        let z = _mm256_mul_ps(x, x);
        let mut q = s(D[4]);
        for d in [D[3], D[2], D[1], D[0]] {
            q = _mm256_fmadd_ps(q, z, s(d));
        }
        // `2|x|`, at most 88: `min` returns its second operand for NaN.
        let a = _mm256_min_ps(s(88.0), _mm256_mul_ps(s(2.0), abs));
        let rounded = _mm256_fmadd_ps(a, s(LOG2E), s(ROUND));
        let n = _mm256_sub_ps(rounded, s(ROUND));
        let m = exp8_poly(_mm256_fmadd_ps(n, s(-LN2_LO), _mm256_fmadd_ps(n, s(-LN2_HI), a)));
        let one = s(1.0);
        let e1 = _mm256_fmadd_ps(m, exp8_scale::<0>(rounded), one);
        let small = _mm256_fmadd_ps(_mm256_mul_ps(q, z), x, x);
        let large = _mm256_sub_ps(one, _mm256_div_ps(s(2.0), e1));
        let large = _mm256_or_ps(_mm256_and_ps(sign, x), large);
        // `|x| < TANH_SMALL`, false for NaN (an ordered compare), as the lane function.
        let polynomial = _mm256_cmp_ps::<_CMP_LT_OQ>(abs, s(super::maths::TANH_SMALL));
        _mm256_blendv_ps(large, small, polynomial)
    }
}

/// `p[..8] = sigmoid(p[..8] + q[..8])` by [`sigmoid8_one_scale`]: a gate of eight units
/// of an LSTM from its two projections, the bits of the cells' own step.
///
/// # Safety
/// The CPU must have AVX2 and FMA (always inlined into callers compiled for them); `p`
/// and `q` are valid for eight floats (reads of both, writes of `p`).
#[inline(always)]
pub(crate) unsafe fn sigmoid_sum8_one_scale(p: *mut f32, q: *const f32) {
    // SAFETY: the caller's contract.
    unsafe { _mm256_storeu_ps(p, sigmoid8_one_scale(_mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(q)))) }
}

/// `p[..8] = tanh(p[..8] + q[..8])` by [`tanh8_one_scale`]: the candidate gate `g` of eight units
/// of an LSTM from its two projections, the bits of the cells' own step.
///
/// # Safety
/// The CPU must have AVX2 and FMA (always inlined into callers compiled for them); `p`
/// and `q` are valid for eight floats (reads of both, writes of `p`).
#[inline(always)]
pub(crate) unsafe fn tanh_sum8(p: *mut f32, q: *const f32) {
    // SAFETY: the caller's contract.
    unsafe { _mm256_storeu_ps(p, tanh8_one_scale(_mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(q)))) }
}

/// The new cell state of eight LSTM units from their activated gates `i`, `f` and `g`:
/// `c[..8] = f c + i g` (one fused multiply-add onto the rounded product), then
/// `g[..8] = tanh(c)` by [`tanh8_one_scale`], the bits of the cells' own step.
///
/// # Safety
/// The CPU must have AVX2 and FMA (always inlined into callers compiled for them); `i`,
/// `f`, `g` and `c` are valid for eight floats (reads of all, writes of `g` and `c`).
#[inline(always)]
pub(crate) unsafe fn lstm_state8(i: *const f32, f: *const f32, g: *mut f32, c: *mut f32) {
    // SAFETY: the caller's contract.
    unsafe {
        let ig = _mm256_mul_ps(_mm256_loadu_ps(i), _mm256_loadu_ps(g));
        let c_new = _mm256_fmadd_ps(_mm256_loadu_ps(f), _mm256_loadu_ps(c), ig);
        _mm256_storeu_ps(c, c_new);
        _mm256_storeu_ps(g, tanh8_one_scale(c_new));
    }
}

/// The new hidden state of eight LSTM units from their activated gate `o` and the
/// `tanh` of their new cell state `t`: `h[..8] = o t`, the bits of the cells' own step.
///
/// # Safety
/// The CPU must have AVX (always inlined into callers compiled for it); `o`, `t` and
/// `h` are valid for eight floats (reads of `o` and `t`, writes of `h`).
#[inline(always)]
pub(crate) unsafe fn lstm_hidden8(o: *const f32, t: *const f32, h: *mut f32) {
    // SAFETY: the caller's contract.
    unsafe { _mm256_storeu_ps(h, _mm256_mul_ps(_mm256_loadu_ps(o), _mm256_loadu_ps(t))) }
}

/// [`maths::tanh`](super::maths::tanh) of eight lanes: both of its results as
/// eight-lane functions (`maths::tanh_branches`), chosen by a compare and a blend, each
/// lane with the bits of the portable function. The lane function's own choice left
/// the compiler to branch on every lane and evaluate the polynomial lane by lane in
/// scalar code.
///
/// # Safety
/// The CPU must have AVX2 and FMA (always inlined into callers compiled for them).
#[inline(always)]
unsafe fn tanh8(x: __m256) -> __m256 {
    // SAFETY: `__m256` and `[f32; 8]` have the same size and every bit pattern is valid
    // for both; the CPU has AVX2 and FMA (the caller's contract).
    unsafe {
        let [small, large] = super::maths::tanh_branches::<8>(core::mem::transmute::<__m256, [f32; 8]>(x))
            .map(|v| core::mem::transmute::<[f32; 8], __m256>(v));
        // `|x| < TANH_SMALL`, false for NaN (an ordered compare), as the lane function.
        let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
        let polynomial = _mm256_cmp_ps::<_CMP_LT_OQ>(abs, _mm256_set1_ps(super::maths::TANH_SMALL));
        _mm256_blendv_ps(large, small, polynomial)
    }
}

/// One GRU cell step of `H` units (a multiple of 8, at most 16: two vectors side by
/// side) over gate projections `p`, `q` (`[3 H]`) and `h` (`[H]`, the previous state
/// in, the new one out): `kernels::recurrent::gru_unit` per lane, written out, the same
/// bits.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If `H` is not 8 or 16, or a slice is shorter than stated.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gru_cell<const H: usize>(p: &[f32], q: &[f32], h: &mut [f32]) {
    assert!((H == 8 || H == 16) && p.len() >= 3 * H && q.len() >= 3 * H && h.len() >= H, "gru_cell: shapes");
    let (pp, qp, hp) = (p.as_ptr(), q.as_ptr(), h.as_mut_ptr());
    // SAFETY: every offset below is inside the slices (asserted).
    let load = |ptr: *const f32, at: usize| unsafe { _mm256_loadu_ps(ptr.add(at)) };
    let mut out = [_mm256_setzero_ps(); 2];
    for (k, out) in out.iter_mut().enumerate().take(H / 8) {
        let j = 8 * k;
        let r = sigmoid8(_mm256_add_ps(load(pp, j), load(qp, j)));
        let z = sigmoid8(_mm256_add_ps(load(pp, H + j), load(qp, H + j)));
        // SAFETY: the CPU has AVX2 and FMA.
        let n = unsafe { tanh8(_mm256_fmadd_ps(r, load(qp, 2 * H + j), load(pp, 2 * H + j))) };
        *out = _mm256_fmadd_ps(z, _mm256_sub_ps(load(hp, j), n), n);
    }
    for (k, v) in out.iter().enumerate().take(H / 8) {
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(hp.add(8 * k), *v) };
    }
}

/// One streaming step of a one-layer GRU of `F` inputs and `H` units (each 8 or 16)
/// over its weights in step order (`ih`: `weight_ih`, `hh`: `weight_hh`, as
/// [`gemv_panels`] reads them): the rows of both projections eight at a time by
/// [`panel8`] onto their biases, kept in registers for the cell arithmetic of
/// [`gru_cell`] (where the whole-layer path stores the projections and loads them
/// back, one store forwarding on the chain from one step's state to the next's). `p`
/// and `q` receive the projections, as the whole-layer path leaves them; `h` holds the
/// previous state in, the new one out. The same operations on every element as
/// [`gemv_panels`] and [`gru_cell`], but for the gates' activations, by
/// [`sigmoid8_one_scale`] and [`tanh8_one_scale`]: the same bits (a GRU 8->8 step's
/// best times 53.5 to 54.5 ns over [`sigmoid8`] and the candidate's `tanh` with one
/// scaling chosen by a blend of its two results, 51.1 to 51.9 ns with these, four
/// alternated runs each natively and under `NN_ISA=avx2` on a 2-core AMD EPYC Zen 4).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If `F` or `H` is not 8 or 16, or a slice is shorter than stated (`ih`: `3 H F`,
/// `hh`: `3 H H`, `b_ih`, `b_hh`, `p`, `q`: `3 H`, `x`: `F`, `h`: `H`).
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gru_step_panels<const F: usize, const H: usize>(
    ih: &[f32],
    hh: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    x: &[f32],
    h: &mut [f32],
    p: &mut [f32],
    q: &mut [f32],
) {
    let m = 3 * H;
    assert!(
        (F == 8 || F == 16)
            && (H == 8 || H == 16)
            && ih.len() >= m * F
            && hh.len() >= m * H
            && b_ih.len() >= m
            && b_hh.len() >= m
            && p.len() >= m
            && q.len() >= m
            && x.len() >= F
            && h.len() >= H,
        "gru_step_panels: shapes"
    );
    let full = m / PANEL_ROWS * PANEL_ROWS;
    // Rows `r..r + 8` (`r` a multiple of 8 below `m`) of `bias + A v` for `A` in step
    // order with `N` columns, as `gemv_panel_rows` computes them.
    // SAFETY: rows `r..r + 8 <= m` lie in a full panel (from `r - r % 16`, width 16) or
    // in the last panel of 8 (from `r`), inside the `m N` floats of `a`; `v` holds `N`
    // floats, `bias` `m` (asserted); the CPU has AVX2 and FMA.
    let rows = |a: &[f32], v: *const f32, bias: &[f32], r: usize, n: usize| unsafe {
        let s = match (r < full, n) {
            (true, 8) => panel8::<8, PANEL_ROWS>(a.as_ptr().add((r - r % PANEL_ROWS) * 8 + r % PANEL_ROWS), v),
            (true, _) => panel8::<16, PANEL_ROWS>(a.as_ptr().add((r - r % PANEL_ROWS) * 16 + r % PANEL_ROWS), v),
            (false, 8) => panel8::<8, 8>(a.as_ptr().add(r * 8), v),
            (false, _) => panel8::<16, 8>(a.as_ptr().add(r * 16), v),
        };
        _mm256_add_ps(_mm256_loadu_ps(bias.as_ptr().add(r)), s)
    };
    let (xp, hp) = (x.as_ptr(), h.as_mut_ptr());
    let zero = _mm256_setzero_ps();
    let (mut pv, mut qv) = ([[zero; 2]; 3], [[zero; 2]; 3]);
    for g in 0..3 {
        for k in 0..H / 8 {
            let r = g * H + 8 * k;
            pv[g][k] = rows(ih, xp, b_ih, r, F);
            qv[g][k] = rows(hh, hp, b_hh, r, H);
            // SAFETY: `r + 8 <= m` floats of `p` and `q` (asserted).
            unsafe {
                _mm256_storeu_ps(p.as_mut_ptr().add(r), pv[g][k]);
                _mm256_storeu_ps(q.as_mut_ptr().add(r), qv[g][k]);
            }
        }
    }
    for k in 0..H / 8 {
        // SAFETY: the CPU has AVX2 and FMA; `8 k + 8 <= H` floats of `h` (asserted).
        unsafe {
            let r = sigmoid8_one_scale(_mm256_add_ps(pv[0][k], qv[0][k]));
            let z = sigmoid8_one_scale(_mm256_add_ps(pv[1][k], qv[1][k]));
            let n = tanh8_one_scale(_mm256_fmadd_ps(r, qv[2][k], pv[2][k]));
            let out = _mm256_fmadd_ps(z, _mm256_sub_ps(_mm256_loadu_ps(hp.add(8 * k)), n), n);
            _mm256_storeu_ps(hp.add(8 * k), out);
        }
    }
}

/// Both projections of a recurrent step over weights in step order, in one pass:
/// `p = b_ih + A_ih x` and `q = b_hh + A_hh h` for `A_ih` of `m` rows of `F` columns
/// and `A_hh` of `m` rows of `H` columns (see [`gemv_panels`]), two panels at a time
/// ([`panel_pair_rows`]: each broadcast of an input serves 32 rows, where
/// [`gemv_panels`] broadcasts it once per 16), the rows of one beside the same rows of
/// the other, in one body inlined into its caller; a last lone panel as
/// [`gemv_panels`]. Each row is rounded exactly as [`gemv_panels`] rounds it. An LSTM
/// 16->16 step, on a 2-core AMD EPYC Zen 3: 164 ns over two calls of [`gemv_panels`],
/// 158 ns over one inlined pass panel by panel, 139 ns two panels at a time (the
/// loads, 256-bit weights and broadcasts alike, are what the projections wait on). On
/// a 2-core AMD EPYC Zen 4 under `NN_ISA=avx2`, 107 to 104 ns with each group of four
/// inputs one load and each input an in-lane shuffle of it (where a broadcast is a
/// load of its own).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If `m`, `F` or `H` is not a multiple of 8, or a slice is shorter than
/// [`gemv_panels`] asks of each projection.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemv_panels_pair<const F: usize, const H: usize>(
    ih: &[f32],
    hh: &[f32],
    m: usize,
    x: &[f32],
    h: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    p: &mut [f32],
    q: &mut [f32],
) {
    assert!(
        F.is_multiple_of(8)
            && H.is_multiple_of(8)
            && m.is_multiple_of(8)
            && blocks_fit(m, F, ih.len())
            && blocks_fit(m, H, hh.len())
            && x.len() >= F
            && h.len() >= H
            && b_ih.len() >= m
            && b_hh.len() >= m
            && p.len() >= m
            && q.len() >= m,
        "gemv_panels_pair: shapes"
    );
    let (full, pairs) = (m / PANEL_ROWS, m / (2 * PANEL_ROWS));
    for u in 0..pairs {
        let r = 2 * u * PANEL_ROWS;
        // SAFETY: panels `2 u` and `2 u + 1` of each matrix lie inside it, rows
        // `r..r + 32` inside the biases and outputs (asserted).
        unsafe {
            panel_pair_rows::<F, 1>(ih.as_ptr().add(r * F), x.as_ptr(), b_ih.as_ptr().add(r), p.as_mut_ptr().add(r));
            panel_pair_rows::<H, 1>(hh.as_ptr().add(r * H), h.as_ptr(), b_hh.as_ptr().add(r), q.as_mut_ptr().add(r));
        }
    }
    for u in 2 * pairs..m.div_ceil(PANEL_ROWS) {
        let r = u * PANEL_ROWS;
        // SAFETY: panel `u` of each matrix lies inside it, rows `r..r + 16` (or
        // `r..r + 8` for a last panel of 8) inside the biases and outputs (asserted).
        unsafe {
            panel_rows::<F>(ih.as_ptr().add(r * F), x.as_ptr(), b_ih.as_ptr().add(r), p.as_mut_ptr().add(r), u < full);
            panel_rows::<H>(hh.as_ptr().add(r * H), h.as_ptr(), b_hh.as_ptr().add(r), q.as_mut_ptr().add(r), u < full);
        }
    }
}

/// Both projections of a one-layer LSTM step of `F` (8 or 16) inputs and 16 units over
/// its weights in step order (one panel of 16 rows per gate, `i`, `f`, `g`, `o`):
/// [`gemv_panels_pair`]'s rows (each input spread once per 32 rows of a projection),
/// but the gates paired `i` with `g`, then `f` with `o`, where [`gemv_panels_pair`]
/// pairs consecutive panels (`i` with `f`, then `g` with `o`): the candidate gate `g`,
/// whose `tanh` is the cell's longest chain, is summed first, and the last pair holds
/// the forget gate, whose sigmoid feeds the cell state, and the output gate, whose
/// sigmoid waits for nothing after it. The same bits as [`gemv_panels_pair`].
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If `F` is not 8 or 16, or a slice is shorter than stated (`ih`: `64 F`, `hh`:
/// `64 16`, `x`: `F`, `h`: 16, `b_ih`, `b_hh`, `p`, `q`: 64).
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn lstm16_panels_pair<const F: usize>(
    ih: &[f32],
    hh: &[f32],
    x: &[f32],
    h: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    p: &mut [f32],
    q: &mut [f32],
) {
    const H: usize = 16;
    const M: usize = 4 * H;
    assert!(
        (F == 8 || F == 16)
            && ih.len() >= M * F
            && hh.len() >= M * H
            && x.len() >= F
            && h.len() >= H
            && b_ih.len() >= M
            && b_hh.len() >= M
            && p.len() >= M
            && q.len() >= M,
        "lstm16_panels_pair: shapes"
    );
    // Gate `first` (`i`, then `f`) with the gate two panels on (`g`, then `o`).
    for first in [0, 1] {
        let r = first * H;
        // SAFETY: panels `first` and `first + 2` of each matrix lie inside it, rows
        // `r..r + 16` and `r + 32..r + 48` inside the biases and outputs (asserted).
        unsafe {
            panel_pair_rows::<F, 2>(ih.as_ptr().add(r * F), x.as_ptr(), b_ih.as_ptr().add(r), p.as_mut_ptr().add(r));
            panel_pair_rows::<H, 2>(hh.as_ptr().add(r * H), h.as_ptr(), b_hh.as_ptr().add(r), q.as_mut_ptr().add(r));
        }
    }
}

/// Two full panels of [`gemv_panels`] (32 rows, four groups of eight), the second
/// `SECOND` panels after the first (1: consecutive): `y = bias + A x` for the rows of
/// both (the first panel's rows at `y`, the second's `16 SECOND` further, and so their
/// biases), each input of `x` spread to the eight lanes once for the four
/// groups. Lane `k` of each group takes inputs `k, k + 8, ...` in order, as in
/// [`panel16`], and the lanes are added by the same tree,
/// `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`, then the bias: the bits of
/// [`gemv_panels`], with each input spread once per 32 rows where [`panel16`]
/// broadcasts it once per 16, and by an in-lane shuffle of four inputs loaded into both
/// halves of a register (`vbroadcastf128`, one load per four inputs) rather than by a
/// broadcast from memory (one load per input): the projections wait on loads.
///
/// # Safety
/// The CPU must have AVX2 and FMA; the two panels (`16 N` floats from `w` and from
/// `w + 16 N SECOND`), `x` (`N`), and 16 floats of `bias` and `y` from each of their
/// first and `16 SECOND`-th must be valid.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn panel_pair_rows<const N: usize, const SECOND: usize>(
    w: *const f32,
    x: *const f32,
    bias: *const f32,
    y: *mut f32,
) {
    // Group `g` of rows starts at `(g / 2) 16 N SECOND + (g % 2) 8` floats from `w`,
    // input `i` of it `16 i` further; its rows are `y`'s from `(g / 2) 16 SECOND +
    // (g % 2) 8`.
    let row = |g: usize| (g / 2) * SECOND * PANEL_ROWS + (g % 2) * 8;
    // SAFETY: `g < 4`: inside the two panels (the caller's bounds).
    let group = |g: usize| unsafe { w.add((g / 2) * SECOND * PANEL_ROWS * N + (g % 2) * 8) };
    // Input `i` in all eight lanes: the four inputs from `i - i % 4` loaded into both
    // halves of a register (one load, which the compiler shares between the lanes that
    // read those inputs), then one in-lane shuffle, where a broadcast is one load per
    // input and group of 32 rows.
    let spread = |i: usize| {
        // SAFETY: `i - i % 4 + 4 <= N` floats of `x` (`i < N`, `N` a multiple of 8; the
        // caller's bounds).
        let four = unsafe { _mm_loadu_ps(x.add(i - i % 4)) };
        let mut q = _mm256_set_m128(four, four);
        // SAFETY: an empty instruction on a register: it only hides from the compiler
        // that `q` came from memory (which would fold the shuffles back into one load
        // per input).
        unsafe { core::arch::asm!("/* {0} */", inout(ymm_reg) q, options(pure, nomem, nostack, preserves_flags)) };
        match i % 4 {
            0 => _mm256_shuffle_ps::<0x00>(q, q),
            1 => _mm256_shuffle_ps::<0x55>(q, q),
            2 => _mm256_shuffle_ps::<0xAA>(q, q),
            _ => _mm256_shuffle_ps::<0xFF>(q, q),
        }
    };
    // Lane `k` of the four groups: the chain over inputs `k, k + 8, ...`.
    let lane = |k: usize| {
        let mut acc = [_mm256_setzero_ps(); 4];
        for i in (k..N).step_by(8) {
            let xv = spread(i);
            for (g, a) in acc.iter_mut().enumerate() {
                // SAFETY: input `i < N` of group `g < 4`: inside the two panels.
                *a = unsafe { _mm256_fmadd_ps(_mm256_loadu_ps(group(g).add(i * PANEL_ROWS)), xv, *a) };
            }
        }
        acc
    };
    let add = |a: [__m256; 4], b: [__m256; 4]| {
        let mut s = a;
        for (s, b) in s.iter_mut().zip(b) {
            *s = _mm256_add_ps(*s, b);
        }
        s
    };
    let low = add(add(lane(0), lane(1)), add(lane(2), lane(3)));
    let high = add(add(lane(4), lane(5)), add(lane(6), lane(7)));
    for (g, s) in add(low, high).into_iter().enumerate() {
        // SAFETY: rows `row(g)..row(g) + 8` of either panel (the caller's bounds).
        unsafe { _mm256_storeu_ps(y.add(row(g)), _mm256_add_ps(_mm256_loadu_ps(bias.add(row(g))), s)) };
    }
}

/// One panel of [`gemv_panels`]: `y = bias + A x` for the 16 rows of a full panel at
/// `w` (`full`) or the 8 of a last one, as [`gemv_panels`] computes them.
///
/// # Safety
/// The CPU must have AVX2 and FMA; the panel (`16 N` or `8 N` floats), `x` (`N`), and
/// 16 or 8 floats of `bias` and `y` must be valid.
#[inline(always)]
unsafe fn panel_rows<const N: usize>(w: *const f32, x: *const f32, bias: *const f32, y: *mut f32, full: bool) {
    // SAFETY: the caller's bounds.
    unsafe {
        if full {
            let [s0, s1] = if N >= 16 {
                panel16::<N>(w, x)
            } else {
                [panel8::<N, PANEL_ROWS>(w, x), panel8::<N, PANEL_ROWS>(w.add(8), x)]
            };
            _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(bias), s0));
            _mm256_storeu_ps(y.add(8), _mm256_add_ps(_mm256_loadu_ps(bias.add(8)), s1));
        } else {
            _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(bias), panel8::<N, 8>(w, x)));
        }
    }
}
