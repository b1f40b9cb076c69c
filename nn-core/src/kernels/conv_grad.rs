//! The loops of a convolution's backward without its column matrix, written once over
//! the vector of an instruction set ([`Vector`]): `gemm_gathered_t` (the weight
//! gradient) and `gemm_gathered_taps` (the input gradient) of `avx512.rs`, `avx2.rs`
//! and `neon.rs` are these loops compiled for 16 lanes, for 8, and for 8 in two NEON
//! registers. The instruction set changes the width of a register and how many rows a
//! tile holds, never the order of the sums: each element is the same chain of fused
//! multiply-adds on every instruction set, so the same bits (and the bits of `im2col`
//! or `col2im` around `gemm`, which the portable kernels run).
//!
//! Every function is inlined into its caller, a `#[target_feature]` entry point of the
//! instruction set's file, where the vector operations are compiled for that set.
use super::gemm::rows_fit;

/// The vector operations the loops need, on `LANES` floats (16 or 8).
///
/// # Safety
/// Every method is called only from a function compiled with the instruction set the
/// implementation uses, on pointers whose `LANES` floats (or the stated number) are
/// readable or writable.
pub(crate) trait Vector: Copy {
    /// Floats in a register: a multiple of 8.
    const LANES: usize;
    /// Rows of the weight gradient's tile ([`weight_grad`]): `2 WEIGHT_MR` accumulators.
    const WEIGHT_MR: usize;
    /// Rows of the input gradient's tile ([`input_grad`]): `2 TAPS_MR` accumulators.
    const TAPS_MR: usize;
    /// Whether [`weight_grad`] takes at most `LANES` filters in a tile of one register
    /// per row (else in the tile of two, half of it on zero filters).
    const ONE_REGISTER_TILE: bool = false;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// The float at `p` in every lane.
    unsafe fn splat(p: *const f32) -> Self;
    /// `LANES` floats from `p`.
    unsafe fn load(p: *const f32) -> Self;
    /// `LANES / 8` blocks of eight floats, block `b` from `row + bases[b]`; with
    /// `CONTIGUOUS`, the blocks are adjacent (one load from `row + bases[0]`).
    unsafe fn load_blocks<const CONTIGUOUS: bool>(row: *const f32, bases: &[usize]) -> Self;
    /// `a b + c`, rounded once.
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
    /// `a + b`.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// The first `count <= LANES` lanes (a multiple of 8) loaded from `p`, the others
    /// zero (or anything, where `count` is 0: not read).
    unsafe fn load_first(p: *const f32, count: usize) -> Self;
    /// The first `count <= LANES` lanes (a multiple of 8) stored at `p`.
    unsafe fn store_first(p: *mut f32, v: Self, count: usize);
    /// `dw[f ldw + r] += t[r][f]` for `f < nr`, `r < 8`: the tile of eight rows added
    /// through its transpose.
    unsafe fn add_transposed8(t: &[[f32; 32]; 8], nr: usize, dw: *mut f32, ldw: usize) {
        for f in 0..nr {
            for (r, row) in t.iter().enumerate() {
                // SAFETY: the caller's contract (row `f < nr` of `dw` holds 8 floats).
                unsafe { *dw.add(f * ldw + r) += row[f] };
            }
        }
    }
    /// `dw[f ldw + r] += t[r][f]` for `f < nr`, `r < rows < 8`: [`Self::add_transposed8`]
    /// for a tile of fewer rows (the others of `t` hold earlier tiles' sums, not added).
    unsafe fn add_transposed_rows(t: &[[f32; 32]; 8], rows: usize, nr: usize, dw: *mut f32, ldw: usize) {
        for f in 0..nr {
            for (r, row) in t[..rows].iter().enumerate() {
                // SAFETY: the caller's contract (row `f < nr` of `dw` holds `rows` floats).
                unsafe { *dw.add(f * ldw + r) += row[f] };
            }
        }
    }
}

/// A convolution's weight gradient without its column matrix:
/// `dw[f ldw + p] += sum_{q < k} src[offsets[p] + bases[q]] dyt[q ldt + f]` for the
/// `m` column-matrix rows `p` whose input offsets are given and the filters `f < n`,
/// in tiles of at most `V::WEIGHT_MR` rows (the shapes are checked once for all of them).
/// `src` is the zero-padded input, `bases[q]` where output position `q` reads it, `dyt`
/// the output gradient transposed (a row of `ldt` floats per position, `ldt` a multiple
/// of `2 V::LANES` and at least `n`). Each sum is one chain of fused multiply-adds over
/// `q` in order from zero, added to `dw` by one addition: element by element what
/// `gemm` computes for `dy[n x k] cols^T[k x m]` with `alpha = beta = 1` and `k <= KC`,
/// so the same bits, whatever the tiles. `dw` is a pointer because the threads of a
/// batch write disjoint columns of the same rows.
///
/// # Panics
/// If a shape does not fit its slice.
///
/// # Safety
/// The CPU has `V`'s instruction set; `dw`'s `n` rows of `m` floats (row stride `ldw`)
/// are writable and no other thread reads or writes them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn weight_grad<V: Vector>(
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
    let reach = offsets[..m.min(offsets.len())]
        .iter()
        .max()
        .copied()
        .unwrap_or(0)
        .checked_add(bases[..k.min(bases.len())].iter().max().copied().unwrap_or(0));
    let nr = 2 * V::LANES;
    assert!(
        m <= offsets.len()
            && k <= bases.len()
            && ldt.is_multiple_of(nr)
            && n <= ldt
            && rows_fit(k, ldt, ldt, dyt.len())
            && (m == 0 || k == 0 || reach.is_some_and(|r| r < src.len())),
        "gemm_gathered_t: shapes"
    );
    // The tiles' sums on their way to `dw`, zeroed once: the rows a tile does not
    // write are not added.
    let mut sums = [[0.0f32; 32]; 8];
    let mut j0 = 0;
    while j0 < n {
        let cols = nr.min(n - j0);
        // The fewest tiles of at most `V::WEIGHT_MR` rows, their rows balanced.
        let (row_tiles, mut tile_index, mut i) = (m.div_ceil(V::WEIGHT_MR), 0, 0);
        while i < m {
            let rows = m / row_tiles + usize::from(tile_index < m % row_tiles);
            tile_index += 1;
            // SAFETY: the reads of `src` are below `reach`, those of `dyt` in its `k`
            // rows of `ldt >= j0 + nr` floats (asserted), the writes in `dw`'s `n` rows
            // of `m` (the caller's contract).
            unsafe {
                let (s, o, b, t) = (src.as_ptr(), offsets.as_ptr().add(i), bases.as_ptr(), dyt.as_ptr().add(j0));
                let d = dw.add(j0 * ldw + i);
                let g = Gathered { k, src: s, offsets: o, bases: b, dyt: t, ldt, dw: d, ldw, nr: cols };
                // At most one register of filters (16 filters with AVX-512): a tile of
                // one register per row, rather than half its multiply-adds on zeros.
                if V::ONE_REGISTER_TILE && cols <= V::LANES {
                    match rows {
                        8 if V::WEIGHT_MR >= 8 => weight_tile_one::<V, 8>(g, &mut sums),
                        7 if V::WEIGHT_MR >= 7 => weight_tile_one::<V, 7>(g, &mut sums),
                        6 => weight_tile_one::<V, 6>(g, &mut sums),
                        5 => weight_tile_one::<V, 5>(g, &mut sums),
                        4 => weight_tile_one::<V, 4>(g, &mut sums),
                        3 => weight_tile_one::<V, 3>(g, &mut sums),
                        2 => weight_tile_one::<V, 2>(g, &mut sums),
                        _ => weight_tile_one::<V, 1>(g, &mut sums),
                    }
                    i += rows;
                    continue;
                }
                match rows {
                    8 if V::WEIGHT_MR >= 8 => weight_tile::<V, 8>(g, &mut sums),
                    7 if V::WEIGHT_MR >= 7 => weight_tile::<V, 7>(g, &mut sums),
                    6 => weight_tile::<V, 6>(g, &mut sums),
                    5 => weight_tile::<V, 5>(g, &mut sums),
                    4 => weight_tile::<V, 4>(g, &mut sums),
                    3 => weight_tile::<V, 3>(g, &mut sums),
                    2 => weight_tile::<V, 2>(g, &mut sums),
                    _ => weight_tile::<V, 1>(g, &mut sums),
                }
            }
            i += rows;
        }
        j0 += cols;
    }
}

/// Where [`weight_tile`] reads and writes: `k` output positions, the padded input
/// `src` read for column row `r` at `src + offsets[r] + bases[q]`, the transposed output
/// gradient `dyt` (row stride `ldt`), the gradient `dw` (row stride `ldw`) of which `nr`
/// filters are written.
#[derive(Clone, Copy)]
struct Gathered {
    k: usize,
    src: *const f32,
    offsets: *const usize,
    bases: *const usize,
    dyt: *const f32,
    ldt: usize,
    dw: *mut f32,
    ldw: usize,
    nr: usize,
}

/// The tile of [`weight_grad`]: `R` column-matrix rows by `2 V::LANES` filters (`nr` of
/// them written), the sums added to `dw` (row `f` at `f ldw`) through their transpose
/// from `t` (on the caller's stack; its rows from `R` on are not added).
///
/// # Safety
/// As [`weight_grad`] asserts and requires.
#[inline(always)]
unsafe fn weight_tile<V: Vector, const R: usize>(g: Gathered, t: &mut [[f32; 32]; 8]) {
    let Gathered { k, src, offsets, bases, dyt, ldt, dw, ldw, nr } = g;
    // SAFETY: the caller's contract covers every read and write of the tile.
    unsafe {
        let mut lo = [V::zero(); R];
        let mut hi = [V::zero(); R];
        let rows: [*const f32; R] = core::array::from_fn(|r| src.add(*offsets.add(r)));
        for q in 0..k {
            let bq = dyt.add(q * ldt);
            let (b0, b1) = (V::load(bq), V::load(bq.add(V::LANES)));
            let base = *bases.add(q);
            for r in 0..R {
                let av = V::splat(rows[r].add(base));
                lo[r] = V::fmadd(av, b0, lo[r]);
                hi[r] = V::fmadd(av, b1, hi[r]);
            }
        }
        for r in 0..R {
            V::store_first(t[r].as_mut_ptr(), lo[r], V::LANES);
            V::store_first(t[r].as_mut_ptr().add(V::LANES), hi[r], V::LANES);
        }
        // `fma(1, acc, d)` of the tile's `write` is one addition to `d`.
        if R == 8 {
            return V::add_transposed8(t, nr, dw, ldw);
        }
        V::add_transposed_rows(t, R, nr, dw, ldw)
    }
}

/// [`weight_tile`] for at most `V::LANES` filters: `R` column-matrix rows by one
/// register of filters (`nr` of them written), the same chains.
///
/// # Safety
/// As [`weight_grad`] asserts and requires.
#[inline(always)]
unsafe fn weight_tile_one<V: Vector, const R: usize>(g: Gathered, t: &mut [[f32; 32]; 8]) {
    let Gathered { k, src, offsets, bases, dyt, ldt, dw, ldw, nr } = g;
    // SAFETY: the caller's contract covers every read and write of the tile.
    unsafe {
        let mut acc = [V::zero(); R];
        let rows: [*const f32; R] = core::array::from_fn(|r| src.add(*offsets.add(r)));
        for q in 0..k {
            let b = V::load(dyt.add(q * ldt));
            let base = *bases.add(q);
            for r in 0..R {
                acc[r] = V::fmadd(V::splat(rows[r].add(base)), b, acc[r]);
            }
        }
        for r in 0..R {
            V::store_first(t[r].as_mut_ptr(), acc[r], V::LANES);
        }
        if R == 8 {
            return V::add_transposed8(t, nr, dw, ldw);
        }
        V::add_transposed_rows(t, R, nr, dw, ldw)
    }
}

/// A convolution's input gradient without its column matrix, for stride 1 and one tile
/// of output positions: `c[r ldc + j] = sum_t (sum_{f < k} a[(t k + f) lda + r]
/// src[f plane + tap_offsets[t] + (j / width) stride + j % width])` for rows `r < m`
/// (input channels) and columns `j < n` (input positions), where `a` is the weight
/// arranged by taps, `[taps, k, m]` (row stride `lda`: [`weights_by_taps`] writes it
/// from the weight `[k, m, taps]`), and `src` the output gradient zero-padded so that
/// tap `t` of input position `j` reads it there. Each tap's sum is one chain of fused
/// multiply-adds over `f` in order from zero, and the taps are added in order to zero:
/// element by element what `col2im(weight^T dy)` computes (the product by `gemm` with
/// `beta = 0` and `k <= KC`, then each tap added to the zeroed input gradient in the
/// order of the column-matrix rows), so the same bits. `n` and `width` are multiples
/// of 8.
///
/// # Panics
/// If a shape does not fit its slice.
///
/// # Safety
/// The CPU has `V`'s instruction set.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn input_grad<V: Vector>(
    a: &[f32],
    lda: usize,
    m: usize,
    k: usize,
    taps: usize,
    src: &[f32],
    plane: usize,
    tap_offsets: &[usize],
    (width, stride): (usize, usize),
    c: &mut [f32],
    ldc: usize,
    n: usize,
) {
    let last = n.saturating_sub(8);
    let reach = (last / width.max(1))
        .checked_mul(stride)
        .and_then(|r| r.checked_add(tap_offsets[..taps.min(tap_offsets.len())].iter().max().copied()?))
        .and_then(|r| r.checked_add(last % width.max(1) + 8))
        .and_then(|r| r.checked_add(k.checked_sub(1)?.checked_mul(plane)?));
    let weights = taps.checked_mul(k).is_some_and(|rows| m == 0 || (m <= lda && rows_fit(rows, lda, m, a.len())));
    assert!(
        k <= super::portable::SLICE
            && taps > 0
            && taps <= tap_offsets.len()
            && n.is_multiple_of(8)
            && width.is_multiple_of(8)
            && width > 0
            && width <= stride
            && weights
            && rows_fit(m, ldc, n, c.len())
            && (k == 0 || n == 0 || reach.is_some_and(|reach| reach <= src.len())),
        "gemm_gathered_taps: shapes"
    );
    let base = |j: usize| (j / width) * stride + j % width;
    // Each register's blocks of eight adjacent: rows of whole registers.
    let contiguous = V::LANES > 8 && width.is_multiple_of(V::LANES);
    let (tile, blocks) = (2 * V::LANES, 2 * V::LANES / 8);
    // Every tile of rows for one tile of columns, whose part of `src` stays in the
    // cache for them.
    let mut j0 = 0;
    while j0 < n {
        let nr = tile.min(n - j0);
        let bases: [usize; 4] = core::array::from_fn(|q| base(j0 + 8 * q.min(blocks - 1).min(nr / 8 - 1)));
        // The fewest tiles of at most `V::TAPS_MR` rows, their rows balanced (16 rows
        // of 6 at most: 6, 5, 5, whose chains fill the FMA units better than 6, 6, 4).
        let (row_tiles, mut tile_index, mut i) = (m.div_ceil(V::TAPS_MR), 0, 0);
        while i < m {
            let mr = m / row_tiles + usize::from(tile_index < m % row_tiles);
            tile_index += 1;
            // SAFETY: rows `i..i + mr` of the weight, the tile of `c` and every read of
            // `src` are in bounds (asserted).
            unsafe {
                let (at, ct) = (a.as_ptr().add(i), c.as_mut_ptr().add(i * ldc + j0));
                let g = Taps { src: src.as_ptr(), plane, offsets: tap_offsets.as_ptr(), taps, bases };
                match (mr, contiguous) {
                    (8, true) if V::TAPS_MR >= 8 => taps_tile::<V, 8, true>(k, at, lda, g, ct, ldc, nr),
                    (8, false) if V::TAPS_MR >= 8 => taps_tile::<V, 8, false>(k, at, lda, g, ct, ldc, nr),
                    (7, _) if V::TAPS_MR >= 7 => taps_tile::<V, 7, false>(k, at, lda, g, ct, ldc, nr),
                    (6, true) => taps_tile::<V, 6, true>(k, at, lda, g, ct, ldc, nr),
                    (6, false) => taps_tile::<V, 6, false>(k, at, lda, g, ct, ldc, nr),
                    (5, _) => taps_tile::<V, 5, false>(k, at, lda, g, ct, ldc, nr),
                    (4, _) => taps_tile::<V, 4, false>(k, at, lda, g, ct, ldc, nr),
                    (3, _) => taps_tile::<V, 3, false>(k, at, lda, g, ct, ldc, nr),
                    (2, _) => taps_tile::<V, 2, false>(k, at, lda, g, ct, ldc, nr),
                    _ => taps_tile::<V, 1, false>(k, at, lda, g, ct, ldc, nr),
                }
            }
            i += mr;
        }
        j0 += nr;
    }
}

/// Where [`taps_tile`] reads the output gradient: filter `f`'s tap `t` for block `q` of
/// eight columns at `src + f plane + offsets[t] + bases[q]`.
#[derive(Clone, Copy)]
struct Taps {
    src: *const f32,
    plane: usize,
    offsets: *const usize,
    taps: usize,
    bases: [usize; 4],
}

/// The tile of [`input_grad`]: `R` input channels by `2 V::LANES` input positions
/// (`nr` written, a multiple of 8). With `CONTIGUOUS` each register's blocks of eight
/// are adjacent and loaded at once. The registers hold the current tap's sums (`2 R`
/// chains); the running sums over the taps are kept in `c`, which the first tap's sums
/// (added to zero) overwrite.
///
/// # Safety
/// As [`input_grad`] asserts.
#[inline(always)]
unsafe fn taps_tile<V: Vector, const R: usize, const CONTIGUOUS: bool>(
    k: usize,
    a: *const f32,
    lda: usize,
    g: Taps,
    c: *mut f32,
    ldc: usize,
    nr: usize,
) {
    let half = V::LANES / 8;
    let (count_lo, count_hi) = (nr.min(V::LANES), nr.saturating_sub(V::LANES));
    // SAFETY: the caller's contract covers every read and write of the tile.
    unsafe {
        // The tap's weights: `R` adjacent floats per filter, `lda` apart.
        let mut ap = a;
        for t in 0..g.taps {
            let mut lo = [V::zero(); R];
            let mut hi = [V::zero(); R];
            let mut row = g.src.add(*g.offsets.add(t));
            for _ in 0..k {
                let b0 = V::load_blocks::<CONTIGUOUS>(row, &g.bases[..half]);
                let b1 = V::load_blocks::<CONTIGUOUS>(row, &g.bases[half..2 * half]);
                for r in 0..R {
                    let av = V::splat(ap.add(r));
                    lo[r] = V::fmadd(av, b0, lo[r]);
                    hi[r] = V::fmadd(av, b1, hi[r]);
                }
                (row, ap) = (row.add(g.plane), ap.add(lda));
            }
            for r in 0..R {
                let cr = c.add(r * ldc);
                let (sum_lo, sum_hi) = if t == 0 {
                    (V::zero(), V::zero())
                } else {
                    (V::load_first(cr, count_lo), V::load_first(cr.add(V::LANES), count_hi))
                };
                V::store_first(cr, V::add(sum_lo, lo[r]), count_lo);
                if count_hi > 0 {
                    V::store_first(cr.add(V::LANES), V::add(sum_hi, hi[r]), count_hi);
                }
            }
        }
    }
}

/// `a[(t k + f) lda + r] = weight[f ars + r taps + t]`: the weight `[k, m, taps]` of a
/// convolution (row stride `ars`) arranged by taps for [`input_grad`], `lda = m`, so that
/// a tile's rows of one filter and tap are adjacent.
///
/// # Panics
/// If a shape does not fit its slice.
pub(crate) fn weights_by_taps(weight: &[f32], ars: usize, m: usize, k: usize, taps: usize, a: &mut [f32]) {
    let (mt, len) = (m.checked_mul(taps), taps.checked_mul(k).and_then(|rows| rows.checked_mul(m)));
    assert!(
        mt.is_some_and(|mt| mt == 0 || rows_fit(k, ars, mt, weight.len())) && len.is_some_and(|len| len <= a.len()),
        "weights_by_taps: shapes"
    );
    if m * taps * k == 0 {
        return;
    }
    // In the order of `a`, reading the weight `taps` apart.
    for (t, by_tap) in a[..taps * k * m].chunks_exact_mut(k * m).enumerate() {
        for (f, row) in by_tap.chunks_exact_mut(m).enumerate() {
            let from = &weight[f * ars + t..][..(m - 1) * taps + 1];
            row.iter_mut().zip(from.iter().step_by(taps)).for_each(|(a, &w)| *a = w);
        }
    }
}
