//! The backward's products without the column matrices (x86-64 and AArch64): the weight
//! gradient from the padded input (`weight_grad_direct`) and the input gradient from the
//! padded output gradient (`input_grad_direct`).
use super::*;

/// Whether [`weight_grad_direct`] computes the weight gradient of `rows` filters: with
/// AVX2 and FMA (or AVX-512, or NEON), stride 1, not pointwise, at least two filters
/// (one would be a matrix-vector product, rounded differently) and room in `scratch`
/// for the padded input, a transposed tile of the output gradient and a row of bias
/// sums.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) fn weight_grad_direct_fits(g: &ConvGeometry, rows: usize, scratch: usize) -> bool {
    let (ph, pw) = padded_size(g);
    let needed = g.channels.checked_mul(ph).and_then(|c| c.checked_mul(pw)).and_then(|padded| {
        let tile = g.positions().min(POSITIONS_PER_TILE).checked_add(1)?;
        padded.checked_add(rows.checked_next_multiple_of(32)?.checked_mul(tile)?)
    });
    GradKernels::get().is_some()
        && g.stride == [1, 1]
        && !g.is_pointwise()
        && rows >= 2
        && needed.is_some_and(|needed| needed <= scratch)
}

/// The weight gradient's product without the column matrix (`gemm_gathered_t`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
type WeightProduct = unsafe fn(&[f32], &[usize], &[usize], usize, usize, &[f32], usize, usize, *mut f32, usize);

/// The input gradient's product without the column matrix (`gemm_gathered_taps`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
type TapsProduct =
    unsafe fn(&[f32], usize, usize, usize, usize, &[f32], usize, &[usize], (usize, usize), &mut [f32], usize, usize);

/// The output gradient's transpose for the weight gradient (`transpose_rows`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
type Transpose = unsafe fn(&[f32], usize, usize, usize, &mut [f32], usize, Option<&mut [f32]>);

/// The kernels of the direct backward ([`weight_grad_direct`], [`input_grad_direct`])
/// on this CPU: the loops of `conv_grad` in 16 lanes (AVX-512), 8 (AVX2 and FMA) or 8
/// in pairs of NEON registers, with the same bits.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[derive(Clone, Copy)]
pub(super) struct GradKernels {
    /// The weight gradient's product.
    weight: WeightProduct,
    /// Column-matrix rows of one call of `weight`.
    pub(super) weight_rows: usize,
    /// The output gradient's transpose for `weight` (`transpose_rows`), which adds the
    /// bias gradient's sums.
    transpose: Transpose,
    /// The input gradient's product.
    taps: TapsProduct,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl GradKernels {
    /// The kernels of the instruction set `isa::isa()` chose, or `None` where it has
    /// none (the portable kernels).
    pub(super) fn get() -> Option<GradKernels> {
        let isa = super::super::isa::isa();
        #[cfg(target_arch = "x86_64")]
        {
            use super::super::{avx2, avx512};
            if isa.avx512() {
                let (weight, weight_rows, taps) =
                    (avx512::gemm_gathered_t, avx512::GATHERED_T_MR, avx512::gemm_gathered_taps);
                return Some(GradKernels { weight, weight_rows, transpose: avx2::transpose_rows, taps });
            }
            if isa.avx2() {
                let (weight, weight_rows, taps) =
                    (avx2::gemm_gathered_t, avx2::GATHERED_T_MR, avx2::gemm_gathered_taps);
                return Some(GradKernels { weight, weight_rows, transpose: avx2::transpose_rows, taps });
            }
        }
        #[cfg(target_arch = "aarch64")]
        if isa.neon() {
            use super::super::neon;
            let (weight, weight_rows, taps) = (neon::gemm_gathered_t, neon::GATHERED_T_MR, neon::gemm_gathered_taps);
            return Some(GradKernels { weight, weight_rows, transpose: neon::transpose_rows, taps });
        }
        None
    }
}

/// `d_weight[rows, cols] += dy[rows, N] cols^T[N, cols]` for one sample without the
/// column matrix, for the column-matrix rows `cols` (all of them on one thread, a block
/// per thread on several): the input channels they read are copied once with their
/// padding, each tile of output positions of `dy` transposed, and `gemm_gathered_t`
/// (AVX-512 or AVX2, the same loops) reads the columns' elements straight from the
/// padded input. The same sums in the same order as [`im2col`] and [`gemm`] tile by
/// tile, so the same bits (16 to 32 channels on 16x16 images: the column matrix and its
/// transposing pack took a sixth of the backward). With `d_bias` (`rows` floats), the
/// bias gradient is added too, each filter's sum over the positions summed in order
/// from `-0.0` (as [`add_row_sums`]) down the rows of the transposed tiles.
///
/// # Safety
/// [`weight_grad_direct_fits`] holds for `rows` and `scratch.len()` (so that, on
/// x86-64, the CPU has AVX2 and FMA); `cols` is within `0..patch`; `d_weight` points to
/// `rows` rows of `patch` floats whose columns `cols` no other thread reads or writes.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn weight_grad_direct(
    g: &ConvGeometry,
    rows: usize,
    cols: core::ops::Range<usize>,
    x: &[f32],
    dy: &[f32],
    d_weight: *mut f32,
    d_bias: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    let (ph, pw) = padded_size(g);
    let (patch, n, taps, plane) = (g.patch_len(), g.positions(), g.kernel[0] * g.kernel[1], ph * pw);
    if cols.is_empty() {
        return;
    }
    // Only the channels `c0..c1` that the rows `cols` read are padded.
    let (c0, c1) = (cols.start / taps, cols.end.div_ceil(taps));
    let (padded, rest) = scratch.split_at_mut(g.channels * plane);
    let in_plane = g.height * g.width;
    let x = &x[c0 * in_plane..c1 * in_plane];
    // SAFETY: the CPU has AVX2 (the caller's contract).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let (h, w) = (g.height, g.width);
        let inside = (h.min(ph.saturating_sub(g.padding[0])), w.min(pw.saturating_sub(g.padding[1])));
        pad_planes_avx2(x, [h * w, w], c1 - c0, inside, padded, (ph, pw), (g.padding[0], g.padding[1]))
    };
    #[cfg(target_arch = "aarch64")]
    pad_input(&ConvGeometry { channels: c1 - c0, ..*g }, x, padded);
    let padded = &padded[..(c1 - c0) * plane];
    let ldt = rows.next_multiple_of(32);
    let (sums, rest) = rest.split_at_mut(ldt);
    let mut bias = d_bias.map(|db| {
        sums.fill(-0.0);
        (&mut db[..rows], sums)
    });
    let dy = &dy[..rows * n];
    // Column row `p` is `(c, i, j)`: it reads channel `c` from `(i, j)` on.
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let first = (cols.start / taps, (cols.start % taps) / kw, cols.start % kw);
    let Some(kernels) = GradKernels::get() else { return };
    let mr = kernels.weight_rows;
    let mut bases = [0usize; POSITIONS_PER_TILE];
    for (start, len) in tiles(n) {
        // Output position `q` of the tile reads the padded input from `bases[q]` on.
        let (mut oy, mut ox) = (start / g.out_width, start % g.out_width);
        for b in &mut bases[..len] {
            *b = oy * pw + ox;
            ox += 1;
            if ox == g.out_width {
                (oy, ox) = (oy + 1, 0);
            }
        }
        let dyt = &mut rest[..len * ldt];
        // The bias sums are added down the transposed tile as it is written.
        let sums = bias.as_mut().map(|(_, sums)| &mut **sums);
        // SAFETY: `GradKernels::get` chose the instruction set's kernels; the bounds are
        // asserted inside.
        unsafe { (kernels.transpose)(&dy[start..], n, rows, len, dyt, ldt, sums) };
        let (mut p0, (mut c, mut i, mut j)) = (cols.start, first);
        while p0 < cols.end {
            // A call takes whole tiles of `mr` rows (but the last).
            let m = (WEIGHT_ROWS_PER_CALL - WEIGHT_ROWS_PER_CALL % mr).min(cols.end - p0);
            let mut offsets = [0usize; WEIGHT_ROWS_PER_CALL];
            for o in &mut offsets[..m] {
                *o = (c - c0) * plane + i * g.dilation[0] * pw + j * g.dilation[1];
                j += 1;
                if j == kw {
                    (i, j) = (i + 1, 0);
                    if i == kh {
                        (c, i) = (c + 1, 0);
                    }
                }
            }
            // SAFETY: `GradKernels::get` chose the instruction set's kernels; columns
            // `p0..p0 + m` of `d_weight`'s `rows` rows are this call's alone (the
            // caller's contract). The other bounds are asserted inside.
            unsafe {
                let (dw, bases) = (d_weight.add(p0), &bases[..len]);
                (kernels.weight)(padded, &offsets[..m], bases, m, len, dyt, ldt, rows, dw, patch)
            };
            p0 += m;
        }
    }
    if let Some((db, sums)) = bias {
        db.iter_mut().zip(sums.iter()).for_each(|(d, s)| *d += s);
    }
}

/// The most column-matrix rows of one call of the weight gradient's product in
/// [`weight_grad_direct`] (its shapes are checked once per call).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const WEIGHT_ROWS_PER_CALL: usize = 192;

/// The padded output gradient's height and width that [`input_grad_direct`] reads, or
/// `None` where it does not apply: AVX2 and FMA (or AVX-512, or NEON), stride 1, not pointwise,
/// input rows of whole vectors of 8, one tile of output positions, at most `SLICE`
/// filters, padding at most the kernel's reach, and room in `scratch` for the weight
/// arranged by taps (`filters * patch` floats, first) and the padded gradient.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) fn input_grad_direct_size(g: &ConvGeometry, filters: usize, scratch: usize) -> Option<(usize, usize)> {
    let reach = |axis: usize| (g.kernel[axis] - 1).checked_mul(g.dilation[axis]);
    let (ry, rx) = (reach(0)?, reach(1)?);
    let (ty, tx) = (ry.checked_sub(g.padding[0])?, rx.checked_sub(g.padding[1])?);
    let (ph, pw) = (g.height.checked_add(ry)?, g.width.checked_add(rx)?);
    let len = filters.checked_mul(ph)?.checked_mul(pw)?.checked_add(filters.checked_mul(g.patch_len())?)?;
    let applies = GradKernels::get().is_some()
        && g.stride == [1, 1]
        && !g.is_pointwise()
        && g.width.is_multiple_of(8)
        && g.positions() <= POSITIONS_PER_TILE
        && (2..=super::super::portable::SLICE).contains(&filters)
        && g.patch_len() >= 2
        && g.kernel[0] * g.kernel[1] <= MAX_TAPS
        && g.out_height + ty <= ph
        && g.out_width + tx <= pw
        && len <= scratch;
    applies.then_some((ph, pw))
}

/// Splits `scratch` into the weight arranged by taps for [`input_grad_direct`]
/// (`filters * patch` floats, written here) and the rest.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) fn input_grad_weights<'a>(
    g: &ConvGeometry,
    filters: usize,
    weight: &[f32],
    scratch: &'a mut [f32],
) -> (&'a [f32], &'a mut [f32]) {
    let (patch, taps) = (g.patch_len(), g.kernel[0] * g.kernel[1]);
    let (by_taps, rest) = scratch.split_at_mut(filters * patch);
    super::super::conv_grad::weights_by_taps(weight, patch, g.channels, filters, taps, by_taps);
    (by_taps, rest)
}

/// `dx = col2im(weight^T dy)` for one sample without the column matrix: `dy` is copied
/// once with a zero border of the kernel's reach, and `gemm_gathered_taps` (AVX-512 or
/// AVX2, the same loops) sums each input position's taps in the order of the
/// column-matrix rows, each tap's product over the filters read straight from the
/// padded gradient and the weight arranged by taps (`by_taps`, from
/// [`input_grad_weights`], once per batch). The same sums in the same order as
/// [`gemm`] and [`col2im`], so the same bits, without writing the column-matrix
/// gradient and scattering it back.
///
/// # Safety
/// [`input_grad_direct_size`] gave `(ph, pw)` for `filters` and `scratch.len() +
/// by_taps.len()` (so that, on x86-64, the CPU has AVX2 and FMA).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn input_grad_direct(
    g: &ConvGeometry,
    filters: usize,
    (ph, pw): (usize, usize),
    by_taps: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    scratch: &mut [f32],
) {
    let (n, taps, plane) = (g.positions(), g.kernel[0] * g.kernel[1], ph * pw);
    let (ry, rx) = ((g.kernel[0] - 1) * g.dilation[0], (g.kernel[1] - 1) * g.dilation[1]);
    // Output position `(oy, ox)` is padded `(oy + ty, ox + tx)`: tap `(i, j)` of input
    // position `(y, x)` reads padded `(y + ry - i dh, x + rx - j dw)`.
    let (ty, tx) = (ry - g.padding[0], rx - g.padding[1]);
    let (padded, (oh, ow)) = (&mut scratch[..filters * plane], (g.out_height, g.out_width));
    let dy = &dy[..filters * n];
    // SAFETY: the CPU has AVX2 (the caller's contract).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        pad_planes_avx2(dy, [n, ow], filters, (oh, ow), padded, (ph, pw), (ty, tx))
    };
    #[cfg(target_arch = "aarch64")]
    pad_planes(dy, [n, ow], filters, (oh, ow), padded, (ph, pw), (ty, tx));
    let mut offsets = [0usize; MAX_TAPS];
    let taps = taps.min(MAX_TAPS);
    for (t, o) in offsets[..taps].iter_mut().enumerate() {
        let (i, j) = (t / g.kernel[1], t % g.kernel[1]);
        *o = (ry - i * g.dilation[0]) * pw + (rx - j * g.dilation[1]);
    }
    let (offsets, dx, hw) = (&offsets[..taps], &mut dx[..g.input_len()], g.height * g.width);
    let Some(kernels) = GradKernels::get() else { return };
    // SAFETY: `GradKernels::get` chose the instruction set's kernels; the bounds are
    // asserted inside.
    unsafe {
        (kernels.taps)(
            by_taps,
            g.channels,
            g.channels,
            filters,
            taps,
            padded,
            plane,
            offsets,
            (g.width, pw),
            dx,
            hw,
            hw,
        )
    };
}

/// The most kernel taps (`KH * KW`) [`input_grad_direct`] takes (a 7x7 kernel).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const MAX_TAPS: usize = 49;
