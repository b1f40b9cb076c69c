//! The kernels of every target without the AVX2 or NEON ones (microcontrollers, other
//! architectures, x86-64 CPUs without AVX2 and FMA, `NN_ISA=portable`), rounding
//! exactly as `avx2.rs` and `neon.rs` do: the same products, fused or not as there, summed in the same order, so that a
//! network gives the same bits on a Cortex-M0, a Cortex-M4F, a RISC-V core and an
//! x86-64 machine.
//!
//! * [`fma`]: `a b + c` rounded once, as the AVX2 kernels' `vfmadd` (in integer
//!   arithmetic on cores without an FPU, [`soft_fma`]);
//! * [`dot`]: eight lanes of fused multiply-adds over the 8-float blocks, reduced as
//!   `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`, then the remaining products
//!   (not fused) added in order;
//! * [`gemv_rows`], [`gemv_columns`]: matrix-vector products rounded as their AVX2
//!   namesakes, element by element;
//! * [`gemm`]: every element of `C` one chain of fused multiply-adds over each
//!   [`SLICE`]-deep slice of the inner dimension, added to `C` as the AVX2 tile adds it.
//!
//! The matrix products read their operands in place through their strides: a
//! microcontroller has no cache for packing to help, and no stack to spare for a
//! packed panel.

/// `a b + c` with one rounding (IEEE 754 fusedMultiplyAdd), as the AVX2 kernels' FMA
/// instructions compute it: `vfma.f32` on Cortex-M FPUs that have it, the platform's
/// `fmaf` with `std`, [`soft_fma`] otherwise.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(arm_vfma)]
    {
        super::arm_vfma::fma(a, b, c)
    }
    #[cfg(all(not(arm_vfma), feature = "std"))]
    {
        a.mul_add(b, c)
    }
    #[cfg(all(not(arm_vfma), not(feature = "std")))]
    {
        soft_fma(a, b, c)
    }
}

/// `a b + c` with one rounding (to nearest, ties to even), in integer arithmetic: the
/// exact 48-bit product and the addend aligned in 62 bits, the bits shifted out of the
/// smaller kept as one sticky bit, the sum rounded once. Operands that are not normal
/// (zero, subnormal, infinite, NaN) and results that are not normal go to `libm`'s
/// `fmaf`. On cores without an FPU this is several times cheaper than `libm::fmaf`,
/// which works in `f64`.
#[cfg(any(all(not(arm_vfma), not(feature = "std")), feature = "internals", test))]
pub fn soft_fma(a: f32, b: f32, c: f32) -> f32 {
    const HIDDEN: u32 = 1 << 23;
    let (ab, bb, cb) = (a.to_bits(), b.to_bits(), c.to_bits());
    let exponent = |bits: u32| (bits >> 23) & 0xff;
    let normal = |bits: u32| (1..255).contains(&exponent(bits));
    let finite = |bits: u32| exponent(bits) != 255;
    if (ab << 1 == 0 || bb << 1 == 0) && finite(ab) && finite(bb) && finite(cb) {
        // The product is exactly a zero: `a b + c` is rounded once.
        return a * b + c;
    }
    if !(normal(ab) && normal(bb) && (normal(cb) || cb << 1 == 0)) {
        return libm::fmaf(a, b, c);
    }
    // Each value is `m 2^(t - 62)` with `m` < 2^62 holding its most significant bit at
    // bit 61.
    let product = u64::from((ab & 0x7f_ffff) | HIDDEN) * u64::from((bb & 0x7f_ffff) | HIDDEN);
    // The product is in [2^46, 2^48): `a b = product 2^(ea + eb - 300)`.
    let p_len = 64 - product.leading_zeros() as i32;
    let p_top = exponent(ab) as i32 + exponent(bb) as i32 - 300 + p_len;
    let p_m = product << (62 - p_len);
    let p_negative = (ab ^ bb) >> 31 != 0;
    let (top, m, negative) = if cb << 1 == 0 {
        (p_top, p_m, p_negative)
    } else {
        let c_top = exponent(cb) as i32 - 150 + 24;
        let c_m = u64::from((cb & 0x7f_ffff) | HIDDEN) << 38;
        let c_negative = cb >> 31 != 0;
        // The operand of the larger magnitude first.
        let ((hi_top, hi, hi_negative), (lo_top, lo)) = if (p_top, p_m) >= (c_top, c_m) {
            ((p_top, p_m, p_negative), (c_top, c_m))
        } else {
            ((c_top, c_m, c_negative), (p_top, p_m))
        };
        let shift = (hi_top - lo_top) as u32;
        let lo = if shift >= 63 { u64::from(lo != 0) } else { (lo >> shift) | u64::from(lo & ((1 << shift) - 1) != 0) };
        let sum = if p_negative == c_negative { hi + lo } else { hi - lo };
        if sum == 0 {
            return 0.0;
        }
        (hi_top, sum, hi_negative)
    };
    // Normalise to 24 bits and round the rest to nearest, ties to even.
    let len = 64 - m.leading_zeros() as i32;
    let top = top - 62 + len;
    let mut mantissa;
    if len <= 24 {
        // Cancellation left at most 24 bits: exact.
        mantissa = (m << (24 - len)) as u32;
    } else {
        let rest = len - 24;
        mantissa = (m >> rest) as u32;
        let dropped = m & ((1u64 << rest) - 1);
        let half = 1u64 << (rest - 1);
        if dropped > half || (dropped == half && mantissa & 1 == 1) {
            mantissa += 1;
        }
    }
    // `mantissa 2^(top - 24)`, `mantissa` in [2^23, 2^24] after rounding.
    let mut biased = top - 24 + 150;
    if mantissa == 1 << 24 {
        mantissa >>= 1;
        biased += 1;
    }
    if !(1..255).contains(&biased) {
        return libm::fmaf(a, b, c);
    }
    f32::from_bits(((negative as u32) << 31) | ((biased as u32) << 23) | (mantissa & 0x7f_ffff))
}

/// Depth of the slices of the inner dimension after which [`gemm`] adds its sums to
/// `C`: the AVX2 tile's packed depth (`avx2::KC`), so that both round at the same points.
pub const SLICE: usize = 256;

/// Rows and columns of the register tile of [`gemm`]: 16 accumulators, which a
/// Cortex-M4F's 32 single-precision registers hold with the operands.
const TILE: usize = 4;

/// The lanes of a dot product: the floats of an AVX2 vector.
const LANES: usize = 8;

/// The sum of eight lanes in the order of the AVX2 kernels' horizontal additions.
#[inline(always)]
fn reduce(v: [f32; LANES]) -> f32 {
    ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
}

/// `sum_{q = p..n} a[q] x[q]` in order, each product rounded before it is added.
#[inline(always)]
fn tail(a: &[f32], x: &[f32]) -> f32 {
    let mut sum = 0.0;
    for (&a, &x) in a.iter().zip(x) {
        sum += a * x;
    }
    sum
}

/// The dot product of `a` and `b` (of one length) from its eight lane sums over the
/// blocks of 8: the lanes reduced, then the remaining products added.
#[inline(always)]
fn finish(lanes: &[f32; LANES], a: &[f32], b: &[f32]) -> f32 {
    let (n, blocks) = (a.len(), a.len() - a.len() % LANES);
    let sum = reduce(*lanes);
    if blocks == n {
        return sum;
    }
    sum + tail(&a[blocks..n], &b[blocks..n])
}

/// `sum_i a[i] b[i]` over the shorter length, rounded as the AVX2 `dot`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(arm_vfma)]
    {
        if n < LANES {
            // The lanes' sum is +0.
            return 0.0 + tail(a, b);
        }
        let [lanes, _] = dot_lanes([a, a], b);
        finish(&lanes, a, b)
    }
    #[cfg(not(arm_vfma))]
    {
        let blocks = n - n % LANES;
        let mut acc = [0.0f32; LANES];
        for (pa, pb) in a[..blocks].chunks_exact(LANES).zip(b[..blocks].chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] = fma(pa[l], pb[l], acc[l]);
            }
        }
        finish(&acc, a, b)
    }
}

/// The lane sums of two rows against `x` over its whole blocks of 8 (`x` at least 8
/// long, the rows at least as long as `x`), by `vfma.f32`.
#[cfg(arm_vfma)]
#[inline(always)]
fn dot_lanes(rows: [&[f32]; 2], x: &[f32]) -> [[f32; LANES]; 2] {
    let blocks = x.len() / LANES;
    assert!(blocks > 0 && rows[0].len() >= x.len() && rows[1].len() >= x.len());
    let mut lanes = core::mem::MaybeUninit::<[[f32; LANES]; 2]>::uninit();
    // SAFETY: both rows and `x` hold `8 blocks` floats, `blocks > 0` (asserted); the
    // kernel writes all 16 floats of `lanes`.
    unsafe {
        super::arm_vfma::dot2(rows.map(<[f32]>::as_ptr), x.as_ptr(), blocks, lanes.as_mut_ptr().cast());
        lanes.assume_init()
    }
}

/// `y[i] += alpha * dot(A[i, :], x)` for a row-major `A` (row stride `rs`, `m` rows of
/// `n` columns); with `vfma.f32`, two rows at a time sharing every load of `x`.
///
/// # Panics
/// If `a` holds fewer than `(m - 1) rs + n` floats, `x` fewer than `n` or `y` fewer
/// than `m`.
#[inline]
pub fn gemv_rows(alpha: f32, a: &[f32], rs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32]) {
    let (x, y) = (&x[..n], &mut y[..m]);
    #[allow(unused_mut)]
    let mut i = 0;
    #[cfg(arm_vfma)]
    while i + 2 <= m && n >= LANES {
        let rows = [&a[i * rs..i * rs + n], &a[(i + 1) * rs..(i + 1) * rs + n]];
        let lanes = dot_lanes(rows, x);
        y[i] += alpha * finish(&lanes[0], rows[0], x);
        y[i + 1] += alpha * finish(&lanes[1], rows[1], x);
        i += 2;
    }
    for (i, yi) in y.iter_mut().enumerate().skip(i) {
        *yi += alpha * dot(&a[i * rs..i * rs + n], x);
    }
}

/// `y[i] += alpha * sum_j A[i, j] x[j]` for a column-major `A` (column stride `cs`),
/// rounded as the AVX2 kernel: the rows of its vector blocks (all but the last
/// `m % 8`) as a chain of fused multiply-adds added by one more, the rest as plain
/// products and sums.
///
/// # Panics
/// If `a` holds fewer than `(n - 1) cs + m` floats, `x` fewer than `n` or `y` fewer
/// than `m`.
#[inline]
pub fn gemv_columns(alpha: f32, a: &[f32], cs: usize, m: usize, n: usize, x: &[f32], y: &mut [f32]) {
    let blocked = m - m % LANES;
    let x = &x[..n];
    for (i, yi) in y[..m].iter_mut().enumerate() {
        let column = |j: usize| a[j * cs + i];
        if i < blocked {
            let mut acc = 0.0;
            for (j, &xj) in x.iter().enumerate() {
                acc = fma(xj, column(j), acc);
            }
            *yi = fma(alpha, acc, *yi);
        } else {
            let mut acc = 0.0;
            for (j, &xj) in x.iter().enumerate() {
                acc += column(j) * xj;
            }
            *yi += alpha * acc;
        }
    }
}

/// `alpha acc + beta c` as the AVX2 tile writes a sum `acc` into `C`: `alpha acc` when
/// `beta` is 0 (`c` not read), else one fused multiply-add onto `c` or `beta c` (for
/// `alpha = 1` an addition: `1 acc` is exact, so the fused and the plain sums agree).
#[inline(always)]
pub fn combine(alpha: f32, acc: f32, beta: f32, c: f32) -> f32 {
    if beta == 0.0 {
        alpha * acc
    } else if alpha == 1.0 {
        acc + if beta == 1.0 { c } else { beta * c }
    } else if beta == 1.0 {
        fma(alpha, acc, c)
    } else {
        fma(alpha, acc, beta * c)
    }
}

/// A strided operand: element `(i, j)` at `i rs + j cs` from its pointer.
#[derive(Clone, Copy)]
struct Strided {
    at: *const f32,
    rs: usize,
    cs: usize,
}

/// `C[m x n] = alpha A[m x k] B[k x n] + beta C` (`C` row-major, row stride `ldc`;
/// with `beta == 0`, `C` is not read): tiles of 4 x 4 accumulators and
/// single elements at the edges, every element summed over each [`SLICE`] of `k` by
/// fused multiply-adds in order.
///
/// # Safety
/// The views lie within their slices; `C`'s `m` rows of `n` columns (stride `ldc`) are
/// writable at `c` and not otherwise borrowed.
pub unsafe fn gemm(alpha: f32, a: super::MatRef<'_>, b: super::MatRef<'_>, beta: f32, c: *mut f32, ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut k0 = 0;
    while k0 < k {
        let kc = SLICE.min(k - k0);
        let beta = if k0 == 0 { beta } else { 1.0 };
        // SAFETY: `A[i, k0..k0 + kc]` and `B[k0..k0 + kc, j]` lie inside their views
        // for `i < m`, `j < n`; `C[i, j]` is writable (the caller's contract).
        unsafe {
            let a_at = Strided { at: a.data.as_ptr().add(k0 * a.cs), rs: a.rs, cs: a.cs };
            let b_at = Strided { at: b.data.as_ptr().add(k0 * b.rs), rs: b.rs, cs: b.cs };
            let (full_m, full_n) = (m - m % TILE, n - n % TILE);
            for i in (0..full_m).step_by(TILE) {
                for j in (0..full_n).step_by(TILE) {
                    tile(kc, a_at, b_at, i, j, (alpha, beta), c, ldc);
                }
            }
            for i in 0..m {
                let columns = if i < full_m { full_n..n } else { 0..n };
                for j in columns {
                    let mut acc = 0.0;
                    for p in 0..kc {
                        acc =
                            fma(*a_at.at.add(i * a_at.rs + p * a_at.cs), *b_at.at.add(p * b_at.rs + j * b_at.cs), acc);
                    }
                    let cij = c.add(i * ldc + j);
                    *cij = combine(alpha, acc, beta, *cij);
                }
            }
        }
        k0 += kc;
    }
}

/// The `TILE x TILE` block of [`gemm`] at `(i, j)` for one slice of `kc`.
///
/// # Safety
/// As [`gemm`], for the rows `i..i + TILE` and columns `j..j + TILE`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    kc: usize,
    a: Strided,
    b: Strided,
    i: usize,
    j: usize,
    (alpha, beta): (f32, f32),
    c: *mut f32,
    ldc: usize,
) {
    #[cfg(arm_vfma)]
    if a.cs == 1 && b.cs == 1 && kc > 0 && alpha == 1.0 && beta == 1.0 {
        // `combine(1, s, 1, c)` is `s + c`: the kernel adds its sums to C itself.
        // SAFETY: rows `i..i + 4` of A hold `kc` contiguous floats, rows `p < kc` of B
        // four contiguous floats from column `j`, and `C[i..i + 4, j..j + 4]` is
        // writable (the caller's contract).
        return unsafe {
            let rows = core::array::from_fn(|r| a.at.add((i + r) * a.rs));
            super::arm_vfma::tile4_add(rows, b.at.add(j), b.rs, kc, c.add(i * ldc + j), ldc)
        };
    }
    #[cfg(arm_vfma)]
    if a.cs == 1 && b.cs == 1 && kc > 0 {
        let mut sums = core::mem::MaybeUninit::<[[f32; TILE]; TILE]>::uninit();
        // SAFETY: rows `i..i + 4` of A hold `kc` contiguous floats, rows `p < kc` of B
        // four contiguous floats from column `j` (the caller's contract); the kernel
        // writes all 16 sums.
        let sums = unsafe {
            let rows = core::array::from_fn(|r| a.at.add((i + r) * a.rs));
            super::arm_vfma::tile4(rows, b.at.add(j), b.rs, kc, sums.as_mut_ptr().cast());
            sums.assume_init()
        };
        // SAFETY: as below.
        return unsafe { write_tile(&sums, i, j, (alpha, beta), c, ldc) };
    }
    let mut acc = [[0.0f32; TILE]; TILE];
    for p in 0..kc {
        // SAFETY: rows `i..i + TILE` of A and columns `j..j + TILE` of B at depth `p < kc`
        // are inside the views (the caller's contract).
        unsafe {
            let av: [f32; TILE] = core::array::from_fn(|r| *a.at.add((i + r) * a.rs + p * a.cs));
            let bv: [f32; TILE] = core::array::from_fn(|q| *b.at.add(p * b.rs + (j + q) * b.cs));
            for (acc, &ar) in acc.iter_mut().zip(&av) {
                for (s, &bq) in acc.iter_mut().zip(&bv) {
                    *s = fma(ar, bq, *s);
                }
            }
        }
    }
    // SAFETY: as below.
    unsafe { write_tile(&acc, i, j, (alpha, beta), c, ldc) }
}

/// Adds the sums of the tile at `(i, j)` into `C` ([`combine`]).
///
/// # Safety
/// `C[i + r, j + q]` is writable for `r, q < TILE`.
#[inline(always)]
unsafe fn write_tile(
    sums: &[[f32; TILE]; TILE],
    i: usize,
    j: usize,
    (alpha, beta): (f32, f32),
    c: *mut f32,
    ldc: usize,
) {
    for (r, row) in sums.iter().enumerate() {
        // SAFETY: `C[i + r, j..j + TILE]` is writable (the caller's contract).
        let out = unsafe { core::slice::from_raw_parts_mut(c.add((i + r) * ldc + j), TILE) };
        out.iter_mut().zip(row).for_each(|(c, &s)| *c = combine(alpha, s, beta, *c));
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::soft_fma;
    use crate::rng::Rng;

    /// `soft_fma` against the platform's `fmaf`, bit for bit (NaN as NaN).
    fn check(a: f32, b: f32, c: f32) {
        let (got, expected) = (soft_fma(a, b, c), a.mul_add(b, c));
        assert!(
            got.to_bits() == expected.to_bits() || (got.is_nan() && expected.is_nan()),
            "fma({a:e}, {b:e}, {c:e}) = {got:e} ({:08x}), expected {expected:e} ({:08x})",
            got.to_bits(),
            expected.to_bits()
        );
    }

    #[test]
    fn soft_fma_is_the_correctly_rounded_fused_multiply_add() {
        let mut rng = Rng::new(17);
        let mut bits = || (rng.uniform_in(0.0, 1.0) * 4_294_967_296.0) as u64 as u32;
        for _ in 0..200_000 {
            // Any bits: every class of float.
            check(f32::from_bits(bits()), f32::from_bits(bits()), f32::from_bits(bits()));
            // Nearby exponents, so that sums cancel and round at every position.
            let near = |b: u32| f32::from_bits((b & 0x807f_ffff) | (((b >> 23) % 12 + 121) << 23));
            let (a, b) = (near(bits()), near(bits()));
            check(a, b, near(bits()));
            // `c` close to `-a b`: massive cancellation.
            let c = -(a * b);
            check(a, b, c);
            check(a, b, f32::from_bits(c.to_bits() ^ (bits() & 0xff)));
        }
        for a in [0.0f32, -0.0, 1.0, -1.0, f32::MIN_POSITIVE, 1e-40, f32::MAX, f32::INFINITY, f32::NAN] {
            for b in [0.0f32, -0.0, 1.5, -3.0, 1e-40, f32::MAX, f32::NEG_INFINITY] {
                for c in [0.0f32, -0.0, 1.0, -1.0, 1e-40, -f32::MAX, f32::INFINITY, f32::NAN] {
                    check(a, b, c);
                }
            }
        }
        // Ties: 1 + 2^-24 exactly between two floats, rounded to even.
        check(1.0 + f32::EPSILON, 1.0, f32::EPSILON / 4.0);
        check(1.0, 1.0, f32::EPSILON / 2.0);
        check(1.0, 1.0 + f32::EPSILON, f32::EPSILON / 2.0);
    }
}
