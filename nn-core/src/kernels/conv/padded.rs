//! The zero-padded copies of input samples that the direct forward and backward read.
use super::*;

/// Floats of the zero-padded copy of one input sample that [`forward_direct`] reads,
/// or `None` where it does not apply: stride 1, output rows of whole vectors of 8,
/// not pointwise (whose columns are the input itself), and the copy at most
/// [`DIRECT_MAX_FLOATS`].
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) fn padded_len(g: &ConvGeometry) -> Option<usize> {
    let (ph, pw) = padded_size(g);
    let len = g.channels.checked_mul(ph)?.checked_mul(pw)?;
    let applies = g.stride == [1, 1]
        && g.out_width.is_multiple_of(8)
        && g.positions() > 0
        && !g.is_pointwise()
        && len <= DIRECT_MAX_FLOATS;
    applies.then_some(len)
}

/// The padded copy's height and width for stride 1: every row and column an output
/// position reads, `out + (kernel - 1) dilation`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) const fn padded_size(g: &ConvGeometry) -> (usize, usize) {
    (g.out_height + (g.kernel[0] - 1) * g.dilation[0], g.out_width + (g.kernel[1] - 1) * g.dilation[1])
}

/// Copies one input sample `x[C, H, W]` into `padded` with its zero padding, as
/// [`forward_direct`] reads it (`padded_size`): input row `r` is padded row
/// `r + padding[0]`; rows and columns no output reads are left out (NEON; x86-64 has
/// [`pad_input_avx2`] and [`pad_planes_avx2`]).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(super) fn pad_input(g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
    let (ph, pw) = padded_size(g);
    let (h, w) = (g.height, g.width);
    let inside = (h.min(ph.saturating_sub(g.padding[0])), w.min(pw.saturating_sub(g.padding[1])));
    pad_planes(
        &x[..g.channels * h * w],
        [h * w, w],
        g.channels,
        inside,
        padded,
        (ph, pw),
        (g.padding[0], g.padding[1]),
    );
}

/// [`pad_input`] with AVX2 stores, for [`forward_direct`]: [`pad_planes_avx2`] over the
/// input's channels (the digits CNN's 16 channels of 8x8: 0.37 µs through [`pad_planes`]
/// on Zen 3, its row copies' index arithmetic most of it).
///
/// # Safety
/// The CPU must have AVX2.
///
/// # Panics
/// If `x` holds fewer than `g.input_len()` floats or `padded` fewer than the padded
/// planes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn pad_input_avx2(g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
    let (ph, pw) = padded_size(g);
    let (h, w) = (g.height, g.width);
    let (top, left) = (g.padding[0], g.padding[1]);
    let inside = (h.min(ph.saturating_sub(top)), w.min(pw.saturating_sub(left)));
    // SAFETY: the caller's CPU has AVX2.
    unsafe { pad_planes_avx2(&x[..g.channels * h * w], [h * w, w], g.channels, inside, padded, (ph, pw), (top, left)) }
}

/// [`pad_planes`] with AVX2 stores, for the direct forward ([`pad_input_avx2`]) and
/// backward: the planes zeroed by whole vectors (the last one again where they end
/// inside a vector), then every row copied over them by whole vectors (likewise),
/// without a call or a bounds check per row (16 to 32 channels of 16x16 on an AMD Zen 4:
/// [`pad_planes`]' `memset` and row copies were 4 % of the backward).
///
/// # Safety
/// The CPU must have AVX2.
///
/// # Panics
/// If `top + rows > ph`, `left + cols > pw`, or `src` or `dst` is too short.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn pad_planes_avx2(
    src: &[f32],
    steps: [usize; 2],
    planes: usize,
    (rows, cols): (usize, usize),
    dst: &mut [f32],
    (ph, pw): (usize, usize),
    (top, left): (usize, usize),
) {
    use core::arch::x86_64::{_mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps};
    let plane = ph.checked_mul(pw).expect("pad_planes: shapes");
    assert!(top + rows <= ph && left + cols <= pw, "pad_planes: shapes");
    let dst = &mut dst[..planes.checked_mul(plane).expect("pad_planes: shapes")];
    // The last float read: row `rows - 1` of plane `planes - 1`.
    let reach = (planes > 0 && rows > 0 && cols > 0).then(|| {
        (planes - 1)
            .checked_mul(steps[0])
            .and_then(|a| (rows - 1).checked_mul(steps[1]).and_then(|b| a.checked_add(b)))
            .and_then(|a| a.checked_add(cols))
            .expect("pad_planes: shapes")
    });
    assert!(reach.is_none_or(|reach| reach <= src.len()), "pad_planes: shapes");
    let (dp, sp, len) = (dst.as_mut_ptr(), src.as_ptr(), dst.len());
    // SAFETY: every store is at `i..i + 8 <= len` or `len - 8..len` of `dst`.
    unsafe {
        let zero = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= len {
            _mm256_storeu_ps(dp.add(i), zero);
            i += 8;
        }
        if i < len {
            if len >= 8 {
                _mm256_storeu_ps(dp.add(len - 8), zero);
            } else {
                dst.fill(0.0);
            }
        }
    }
    if reach.is_none() {
        return;
    }
    for p in 0..planes {
        for r in 0..rows {
            let (to, from) = (p * plane + (top + r) * pw + left, p * steps[0] + r * steps[1]);
            // SAFETY: `to..to + cols` is inside plane `p` of `dst` (`top + rows <= ph`,
            // `left + cols <= pw`), `from..from + cols` inside `src` (below `reach`);
            // the vectors read and written are inside those runs.
            unsafe {
                let (d, s) = (dp.add(to), sp.add(from));
                if cols < 8 {
                    core::ptr::copy_nonoverlapping(s, d, cols);
                    continue;
                }
                let mut j = 0;
                while j + 8 <= cols {
                    _mm256_storeu_ps(d.add(j), _mm256_loadu_ps(s.add(j)));
                    j += 8;
                }
                if j < cols {
                    _mm256_storeu_ps(d.add(cols - 8), _mm256_loadu_ps(s.add(cols - 8)));
                }
            }
        }
    }
}

/// Copies `planes` planes of `rows x cols` floats from `src` (row `r` of plane `p` at
/// `p steps[0] + r steps[1]`) into the planes of `ph x pw` floats of `dst`, from row
/// `top` and column `left` on, and zeroes the rest of those planes: the padded copies
/// of the direct forward (AVX2, NEON) and backward. The planes are zeroed at once, then
/// the rows copied over them: fewer branches than zeroing the gaps between the rows
/// one by one (the AVX2 forward of 16 channels of 8x8, profiled on a loaded AMD EPYC:
/// the copy and its offsets 8 % of the convolution's time before, 5.5 % after).
/// `top + rows <= ph` and `left + cols <= pw`. NEON; x86-64 has [`pad_planes_avx2`].
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(super) fn pad_planes(
    src: &[f32],
    steps: [usize; 2],
    planes: usize,
    (rows, cols): (usize, usize),
    dst: &mut [f32],
    (ph, pw): (usize, usize),
    (top, left): (usize, usize),
) {
    debug_assert!(top + rows <= ph && left + cols <= pw);
    let plane = ph * pw;
    let dst = &mut dst[..planes * plane];
    dst.fill(0.0);
    for (p, d) in dst.chunks_exact_mut(plane).enumerate() {
        let s = &src[p * steps[0]..];
        for (r, row) in d[top * pw..].chunks_exact_mut(pw).take(rows).enumerate() {
            copy_short(&mut row[left..left + cols], &s[r * steps[1]..][..cols]);
        }
    }
}
