//! Convolution kernels: im2col + GEMM, PyTorch layouts, one sample after another.
//!
//! A 2-D convolution of one sample `x[C, H, W]` with `weight[F, C, KH, KW]` is one
//! matrix product over the *column matrix* of `x`:
//!
//! ```text
//! cols[(c, i, j), (oy, ox)] = x[c, oy * sh + i * dh - ph, ox * sw + j * dw - pw]   (0 outside)
//! y[F, OH * OW]             = weight[F, C * KH * KW] cols[C * KH * KW, OH * OW] + bias
//! ```
//!
//! and its backward is two more products and the scatter back (col2im):
//!
//! ```text
//! d_weight[F, P] += dy[F, N] cols^T[N, P]          (P = C * KH * KW, N = OH * OW)
//! d_cols[P, N]    = weight^T[P, F] dy[F, N],        dx = col2im(d_cols)
//! d_bias[F]      += sum over positions of dy
//! ```
//!
//! A transposed convolution is the same pair read the other way round: its forward is
//! the convolution's input gradient, its input gradient the convolution's forward. A
//! 1-D convolution is the 2-D one with height 1.
//!
//! The column matrix is built for at most [`POSITIONS_PER_TILE`] output positions at a
//! time, so the scratch space is `P * min(N, POSITIONS_PER_TILE)` floats per layer
//! whatever the image size, and a 1x1 convolution with stride 1 and no padding uses the
//! input itself as its column matrix. With AVX2, a forward with stride 1 whose output
//! rows are whole vectors of 8 does not build the column matrix: it reads each of its
//! rows straight from a zero-padded copy of the input (at most [`DIRECT_MAX_FLOATS`]),
//! with the same sums in the same order; with AVX-512, a forward with stride 1 and at
//! most [`POSITIONS_PER_TILE`] output positions (any width) reads them from shifted
//! copies of the input planes instead, one per kernel column, in which each row of the
//! column matrix is contiguous. With AVX2, AVX-512 or NEON and stride 1 the backward
//! does not build them either, where the layer's scratch space holds the padded copies:
//! the weight gradient (at least two filters, room for the padded input, a 32-filter
//! wide transposed tile of the output gradient and a row of bias sums, added up down
//! that tile as it is transposed) reads the columns' elements from the
//! padded input, and the input gradient (input rows of whole vectors of 8, at most
//! [`POSITIONS_PER_TILE`] output positions and `SLICE` filters, padding at most the
//! kernel's reach, room for the weight arranged by taps once per batch) sums each tap's
//! product from the zero-padded output gradient in the order `col2im` adds them, so the
//! same bits. Both are one loop (`conv_grad`) compiled for 16 lanes (AVX-512) and for
//! 8 (AVX2, and NEON in pairs of registers); the portable kernels take the column
//! matrices, with the same sums in the same order. On several threads the
//! backward gives the weight gradient and the input gradient to different threads (on
//! two, one each), the weight gradient split by column-matrix rows where it is direct
//! (by filters otherwise) when it has more than one, the input gradient by samples;
//! on two, a thread that finishes the input gradient first takes the weight
//! gradient's last samples into buffers of the scratch space, added in sample order
//! (the same bits). The forward's samples go to whichever thread is free.
//! Nothing here allocates.
use super::gemm::{gemm, MatRef};
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
use super::parallel::Output;

/// The number of output positions (columns of the column matrix) built and multiplied
/// at a time: it bounds the scratch space of a layer to `patch * 256` floats while
/// keeping every GEMM at least 256 columns wide on large images.
pub const POSITIONS_PER_TILE: usize = 256;

/// The scratch floats a convolution of this patch length (`C * KH * KW`) and number of
/// output positions (`OH * OW`) needs: one tile of its column matrix.
pub const fn scratch_len(patch: usize, positions: usize) -> usize {
    patch * if positions < POSITIONS_PER_TILE { positions } else { POSITIONS_PER_TILE }
}

/// The fewest output positions a tile of the column matrix has in [`forward`] where
/// its scratch is [`forward_scratch_len`] (unless the image has fewer).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", feature = "internals", test))]
pub const FORWARD_MIN_TILE: usize = 16;

/// The scratch floats [`forward`] needs per sample for a convolution
/// `[channels, H, W] -> [filters, out[0], out[1]]` with a `kernel[0] x kernel[1]`
/// kernel, of any stride, padding and dilation (a layer's constant, which knows the
/// shapes only): at most [`scratch_len`]. On x86-64 and AArch64, where the padded
/// size `out + kernel - 1` is at least the input's (as with stride 1 and dilation 1),
/// the output rows are whole vectors of 8 and there are several filters, the
/// products read the input from a padded copy or shifted planes (AVX2 and NEON,
/// AVX-512) rather than the column matrix: room for those with dilation 1 (and for
/// aligning the planes), and for a tile of [`FORWARD_MIN_TILE`] positions of the
/// column matrix, which the portable kernels and the geometries whose copies do not
/// fit (a dilated kernel) multiply tile by tile. Less scratch is less stack to zero
/// for each `predict_one` (the digits CNN: 31 KiB rather than 52). [`forward`] takes
/// tiles of `forward_scratch_len / patch` positions, whatever the scratch it is given,
/// so the same sums in the same order with a larger one.
pub const fn forward_scratch_len(
    channels: usize,
    in_size: [usize; 2],
    kernel: [usize; 2],
    out: [usize; 2],
    filters: usize,
) -> usize {
    let (patch, positions) = (channels * kernel[0] * kernel[1], out[0] * out[1]);
    let columns = scratch_len(patch, positions);
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let (ph, pw) = ((out[0] + kernel[0]).saturating_sub(1), (out[1] + kernel[1]).saturating_sub(1));
        let padded = channels * ph * pw;
        let copies = filters > 1
            && positions > 0
            && out[1].is_multiple_of(8)
            && ph >= in_size[0]
            && pw >= in_size[1]
            && !(kernel[0] == 1 && kernel[1] == 1)
            && padded <= DIRECT_MAX_FLOATS;
        if !copies {
            return columns;
        }
        let mut need = patch * if positions < FORWARD_MIN_TILE { positions } else { FORWARD_MIN_TILE };
        if padded > need {
            need = padded;
        }
        #[cfg(target_arch = "x86_64")]
        if positions <= POSITIONS_PER_TILE {
            // The planes, the floats past their end that whole vectors read, and room
            // to start them on a cache line.
            let slack = match super::avx512::rows_reach(0, positions) {
                Some(reach) => reach - positions,
                None => return columns,
            };
            let planes = channels * kernel[1] * ph * out[1] + slack + PLANES_ALIGN;
            if planes > need {
                need = planes;
            }
        }
        if need < columns {
            need
        } else {
            columns
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (in_size, filters);
        columns
    }
}

/// The geometry of a 2-D convolution of one sample: `[channels, height, width]` in,
/// `[_, out_height, out_width]` out (the number of filters is given to each kernel).
///
/// Output position `(oy, ox)` with kernel offset `(i, j)` reads input row
/// `oy * stride[0] + i * dilation[0] - padding[0]` and column
/// `ox * stride[1] + j * dilation[1] - padding[1]`; reads outside the input are zero.
/// Only the padding before the first row and column is stored: the padding after the
/// last is whatever the output size implies, so asymmetric (`Same` with an even
/// kernel) padding costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input channels.
    pub channels: usize,
    /// Input height (1 for a 1-D convolution).
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal stride (at least 1).
    pub stride: [usize; 2],
    /// Zero padding before the first row and before the first column.
    pub padding: [usize; 2],
    /// Vertical and horizontal dilation (at least 1).
    pub dilation: [usize; 2],
    /// Output height.
    pub out_height: usize,
    /// Output width.
    pub out_width: usize,
}

/// The sizes of a [`ConvGeometry`] that [`ConvGeometry::check`] accepted, each a
/// product that fits in a `usize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSizes {
    /// Floats in one input sample: `channels * height * width`.
    pub input: usize,
    /// Rows of the column matrix: `channels * kernel[0] * kernel[1]`.
    pub patch: usize,
    /// Output positions: `out_height * out_width`.
    pub positions: usize,
}

impl ConvGeometry {
    /// Checks that the geometry is a convolution the kernels can run and returns its
    /// sizes. Every size, kernel, stride and dilation is at least 1, and along each axis
    /// the output size agrees with the input size and the padding before: the last
    /// window, `(out - 1) * stride + dilation * (kernel - 1) + 1` padded positions from
    /// the start, ends at most `padding + 1` positions after the input (the padding
    /// after is the padding before, or one more for `Same` with an even kernel), and
    /// fewer than `max(stride, dilation)` input positions follow it (a transposed
    /// convolution's output padding). Every product fits in a `usize`, and the padded
    /// size and the last window's reach in an `isize`.
    ///
    /// # Panics
    /// Naming the first rule the geometry breaks: a geometry is built by a layer's
    /// `const fn new` from compile-time shapes, so a wrong one is a bug.
    pub fn check(&self) -> ConvSizes {
        assert!(
            self.channels > 0 && self.height > 0 && self.width > 0 && self.out_height > 0 && self.out_width > 0,
            "convolution {self:?}: a size is 0"
        );
        let axes = [(self.height, self.out_height, "height"), (self.width, self.out_width, "width")];
        for (axis, (input, output, name)) in axes.into_iter().enumerate() {
            let (kernel, stride, dilation, padding) =
                (self.kernel[axis], self.stride[axis], self.dilation[axis], self.padding[axis]);
            assert!(
                kernel > 0 && stride > 0 && dilation > 0,
                "convolution {self:?}: a kernel, stride or dilation is 0"
            );
            // Padded positions from the start of the padding to the end of the last window.
            let reach = (output - 1)
                .checked_mul(stride)
                .and_then(|r| r.checked_add((kernel - 1).checked_mul(dilation)?))
                .and_then(|r| r.checked_add(1));
            let end = input.checked_add(padding);
            // Within an `isize`, the kernels' signed offsets (`i * dilation - padding`)
            // cannot wrap.
            let fits = |v: usize| v <= isize::MAX as usize;
            let (Some(reach), Some(end)) =
                (reach.filter(|&r| fits(r)), end.filter(|&e| fits(e.saturating_add(padding))))
            else {
                panic!("convolution {self:?}: the {name} overflows an isize");
            };
            assert!(
                reach <= end.saturating_add(padding).saturating_add(1),
                "convolution {self:?}: the output {name} {output} reads past the padding ({padding} after the input)"
            );
            assert!(
                end - end.min(reach) < stride.max(dilation),
                "convolution {self:?}: the output {name} {output} leaves input positions unread (it is too small \
                 for the input {name}, kernel, stride, padding and dilation)"
            );
        }
        let product = |a: usize, b: usize, c: usize| a.checked_mul(b).and_then(|ab| ab.checked_mul(c));
        match (
            product(self.channels, self.height, self.width),
            product(self.channels, self.kernel[0], self.kernel[1]),
            product(self.out_height, self.out_width, 1),
        ) {
            (Some(input), Some(patch), Some(positions)) => ConvSizes { input, patch, positions },
            _ => panic!("convolution {self:?}: a sample has more floats than a usize counts"),
        }
    }

    /// Floats in one input sample: `channels * height * width`.
    pub const fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Rows of the column matrix: `channels * kernel[0] * kernel[1]`.
    pub const fn patch_len(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Output positions: `out_height * out_width`.
    pub const fn positions(&self) -> usize {
        self.out_height * self.out_width
    }

    /// Whether positions `start..start + len` are whole output rows of a convolution
    /// with stride 1 and dilation 1 whose output rows are as wide as its input rows:
    /// then each row of the column matrix is an input plane shifted by the kernel
    /// offset, built by one contiguous copy instead of one per output row.
    pub const fn is_shifted_plane(&self, start: usize, len: usize) -> bool {
        self.stride[0] == 1
            && self.stride[1] == 1
            && self.dilation[0] == 1
            && self.dilation[1] == 1
            && self.out_width == self.width
            && self.width > 0
            && start.is_multiple_of(self.width)
            && len.is_multiple_of(self.width)
    }

    /// Whether the column matrix is the input itself (1x1 kernel, stride 1, no
    /// padding), so that no copy is needed.
    pub const fn is_pointwise(&self) -> bool {
        self.kernel[0] == 1
            && self.kernel[1] == 1
            && self.stride[0] == 1
            && self.stride[1] == 1
            && self.padding[0] == 0
            && self.padding[1] == 0
            && self.out_height == self.height
            && self.out_width == self.width
    }

    /// The output indices `o` in `0..outputs` whose input index `o * stride + offset`
    /// lies in `0..size`, as a range `lo..hi`.
    #[inline]
    fn valid(outputs: usize, size: usize, stride: usize, offset: isize) -> (usize, usize) {
        let lo = if offset >= 0 { 0 } else { (offset.unsigned_abs()).div_ceil(stride) };
        let hi = if (size as isize) > offset {
            ((size as isize - offset - 1) as usize / stride + 1).min(outputs)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

/// A run of consecutive output positions on one output row, for one row `(c, i, j)` of
/// the column matrix: its elements `column..column + len` of that row. Elements
/// `inside.start..inside.end` of the run read the input at `first`, `first + stride`,
/// ...; the others, and all of them when `inside` is empty, read the zero padding.
struct Run {
    /// The row of the column matrix, `(c * KH + i) * KW + j`.
    row: usize,
    /// The column (position within the tile) of its first element.
    column: usize,
    /// Its length.
    len: usize,
    /// The part of the run inside the input (relative to the run).
    inside: core::ops::Range<usize>,
    /// The input index read by element `inside.start`.
    first: usize,
}

/// Calls `f` for every [`Run`] of the column matrix restricted to the positions
/// `start..start + len`.
#[inline(always)]
fn for_each_run(g: &ConvGeometry, start: usize, len: usize, mut f: impl FnMut(Run)) {
    let (h, w, ow) = (g.height, g.width, g.out_width);
    let mut row = 0;
    for c in 0..g.channels {
        for i in 0..g.kernel[0] {
            let y_offset = (i * g.dilation[0]) as isize - g.padding[0] as isize;
            for j in 0..g.kernel[1] {
                let x_offset = (j * g.dilation[1]) as isize - g.padding[1] as isize;
                let (lo, hi) = ConvGeometry::valid(ow, w, g.stride[1], x_offset);
                let (mut p, mut k) = (start, 0);
                while k < len {
                    let (oy, ox0) = (p / ow, p % ow);
                    let run = (ow - ox0).min(len - k);
                    let iy = (oy * g.stride[0]) as isize + y_offset;
                    let (mut a, mut b, mut first) = (0, 0, 0);
                    if iy >= 0 && (iy as usize) < h {
                        (a, b) = (lo.clamp(ox0, ox0 + run), hi.clamp(ox0, ox0 + run));
                        if a < b {
                            // Output column `ox` reads input column `ox * sw + x_offset`.
                            let ix = ((a * g.stride[1]) as isize + x_offset) as usize;
                            first = (c * h + iy as usize) * w + ix;
                        }
                        (a, b) = (a - ox0, b - ox0);
                    }
                    f(Run { row, column: k, len: run, inside: a..b.max(a), first });
                    p += run;
                    k += run;
                }
                row += 1;
            }
        }
    }
}

/// One row `(c, i, j)` of the column matrix in the shifted-plane form
/// ([`ConvGeometry::is_shifted_plane`]): the input plane `c` shifted by
/// `(i - ph, j - pw)`.
struct ShiftedRow {
    /// The row of the column matrix, `(c * KH + i) * KW + j`.
    row: usize,
    /// The output row of the tile's first position.
    first_row: usize,
    /// The output rows (absolute) that read an input row; empty when none does.
    rows: core::ops::Range<usize>,
    /// Output (and input) width.
    width: usize,
    /// Output columns at the left and right of every row that read the padding.
    left: usize,
    right: usize,
    /// The input index read by output position `(rows.start, left)`.
    source: usize,
}

/// Calls `f` for every [`ShiftedRow`] of the column matrix restricted to the positions
/// `start..start + len` (whole output rows).
#[inline(always)]
fn for_each_shifted_row(g: &ConvGeometry, start: usize, len: usize, mut f: impl FnMut(ShiftedRow)) {
    let (h, w) = (g.height as isize, g.width);
    let (first_row, end_row) = (start / w, (start + len) / w);
    let mut row = 0;
    for c in 0..g.channels {
        for i in 0..g.kernel[0] {
            let dy = i as isize - g.padding[0] as isize;
            let lo = (first_row as isize).max(-dy).min(end_row as isize);
            let hi = (end_row as isize).min(h - dy).max(lo);
            for j in 0..g.kernel[1] {
                let dx = j as isize - g.padding[1] as isize;
                let (left, right) = ((-dx).max(0) as usize, dx.max(0) as usize);
                let mut rows = lo as usize..hi as usize;
                if left + right >= w {
                    rows = rows.start..rows.start;
                }
                let source = if rows.is_empty() { 0 } else { c * g.height * w + (lo + dy) as usize * w + right };
                f(ShiftedRow { row, first_row, rows, width: w, left, right, source });
                row += 1;
            }
        }
    }
}

/// `cols[P, len] = ` the columns `start..start + len` of the column matrix of one
/// sample `x[C, H, W]` (row stride of `cols`: `len`).
///
/// # Panics
/// If the geometry is not one ([`ConvGeometry::check`]) or a slice is too short.
pub fn im2col(g: &ConvGeometry, x: &[f32], start: usize, len: usize, cols: &mut [f32]) {
    let sizes = g.check();
    let x = &x[..sizes.input];
    let cols = &mut cols[..product("column matrix", sizes.patch, len)];
    if g.is_shifted_plane(start, len) {
        #[cfg(target_arch = "x86_64")]
        if g.width.is_multiple_of(8) && super::isa::isa().avx2() {
            // SAFETY: the CPU has AVX2; the bounds are checked inside.
            return unsafe { im2col_vectors_avx2(g, x, start, len, cols) };
        }
        return for_each_shifted_row(g, start, len, |r| {
            let dst = &mut cols[r.row * len..][..len];
            if r.rows.is_empty() {
                return dst.fill(0.0);
            }
            let (p0, p1) =
                ((r.rows.start - r.first_row) * r.width + r.left, (r.rows.end - r.first_row) * r.width - r.right);
            zero_short(&mut dst[..p0]);
            zero_short(&mut dst[p1..]);
            copy_short(&mut dst[p0..p1], &x[r.source..r.source + (p1 - p0)]);
            // Positions whose column falls off the input read the neighbouring row
            // in the copy: they are padding.
            let (w, first) = (r.width, r.first_row);
            for row in dst[(r.rows.start - first) * w..(r.rows.end - first) * w].chunks_exact_mut(w) {
                zero_edges(row, r.left, r.right);
            }
        });
    }
    im2col_runs(g, x, start, len, cols)
}

/// [`im2col`] in the shifted-plane form for rows of whole vectors (`width` a multiple
/// of 8), vector by vector: each is one masked load of the input row its lanes read
/// (the lanes that fall off the row read nothing and are zero), or zero above and below
/// the input. The general form's bookkeeping per row costs more than the copy when rows
/// are short (8x8 images, 16 channels, 3x3: 2.1 µs against 2.9 µs).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn im2col_vectors_avx2(g: &ConvGeometry, x: &[f32], start: usize, len: usize, cols: &mut [f32]) {
    use core::arch::x86_64::*;
    let (h, w) = (g.height, g.width);
    let (first_row, end_row) = (start / w, (start + len) / w);
    assert!(g.is_shifted_plane(start, len) && w.is_multiple_of(8) && end_row <= g.out_height);
    let (x, cols) = (&x[..g.input_len()], &mut cols[..g.patch_len() * len]);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut row = 0;
    for c in 0..g.channels {
        for i in 0..g.kernel[0] {
            let dy = i as isize - g.padding[0] as isize;
            for j in 0..g.kernel[1] {
                let dx = j as isize - g.padding[1] as isize;
                let dst_row = &mut cols[row * len..(row + 1) * len];
                for k in (0..w).step_by(8) {
                    // Lane `l` reads column `k + l + dx`: inside the row for `0 <= .. < w`.
                    let column = _mm256_add_epi32(lanes, _mm256_set1_epi32((k as isize + dx) as i32));
                    let inside = _mm256_andnot_si256(
                        _mm256_cmpgt_epi32(_mm256_setzero_si256(), column),
                        _mm256_cmpgt_epi32(_mm256_set1_epi32(w as i32), column),
                    );
                    for oy in first_row..end_row {
                        let iy = oy as isize + dy;
                        let v = if 0 <= iy && iy < h as isize {
                            let src = x[(c * h + iy as usize) * w..][..w].as_ptr();
                            // SAFETY: the lanes in `inside` read columns `0..w` of the row
                            // `src` starts; the others read nothing.
                            unsafe { _mm256_maskload_ps(src.wrapping_offset(k as isize + dx), inside) }
                        } else {
                            _mm256_setzero_ps()
                        };
                        let dst = &mut dst_row[(oy - first_row) * w + k..][..8];
                        // SAFETY: `dst` holds 8 floats.
                        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) };
                    }
                }
                row += 1;
            }
        }
    }
}

/// `dst = src` for the short rows of small images, inline: a `memcpy` call costs
/// more than copying a few dozen floats. Whole blocks of 8, then the last 8 again.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let src = &src[..n];
    if n < 8 {
        return dst.copy_from_slice(src);
    }
    let mut i = 0;
    while i + 8 <= n {
        dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
        i += 8;
    }
    if i < n {
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    }
}

/// `dst = 0` for the few padding positions of a row, inline. The zero comes through
/// `black_box` so that the loop is not turned into a `memset` call (which costs more
/// than the one or two stores it usually makes).
#[inline(always)]
fn zero_short(dst: &mut [f32]) {
    let zero = core::hint::black_box(0.0f32);
    for v in dst {
        *v = zero;
    }
}

/// Zeroes the first `left` and the last `right` floats of `row`: one or none of each
/// for the usual kernels, stored directly.
#[inline(always)]
fn zero_edges(row: &mut [f32], left: usize, right: usize) {
    let w = row.len();
    match left {
        0 => {}
        1 => row[0] = 0.0,
        _ => zero_short(&mut row[..left]),
    }
    match right {
        0 => {}
        1 => row[w - 1] = 0.0,
        _ => zero_short(&mut row[w - right..]),
    }
}

/// [`im2col`] run by run (any geometry).
fn im2col_runs(g: &ConvGeometry, x: &[f32], start: usize, len: usize, cols: &mut [f32]) {
    let sw = g.stride[1];
    for_each_run(g, start, len, |r| {
        let dst = &mut cols[r.row * len + r.column..][..r.len];
        let Run { inside, first, .. } = r;
        dst[..inside.start].fill(0.0);
        dst[inside.end..].fill(0.0);
        let dst = &mut dst[inside];
        if sw == 1 {
            dst.copy_from_slice(&x[first..first + dst.len()]);
        } else {
            for (t, d) in dst.iter_mut().enumerate() {
                *d = x[first + t * sw];
            }
        }
    });
}

/// `dx += col2im(cols)`: adds the columns `start..start + len` of a column-matrix
/// gradient `cols[P, len]` back onto the input positions they were read from.
///
/// # Panics
/// If the geometry is not one ([`ConvGeometry::check`]) or a slice is too short.
pub fn col2im(g: &ConvGeometry, cols: &[f32], start: usize, len: usize, dx: &mut [f32]) {
    let sizes = g.check();
    let _ = product("column matrix", sizes.patch, len);
    #[cfg(target_arch = "x86_64")]
    if super::isa::isa().avx2() {
        // SAFETY: the CPU has AVX2.
        return unsafe { col2im_avx2(g, cols, start, len, dx) };
    }
    col2im_portable(g, cols, start, len, dx)
}

/// [`col2im`] compiled for eight lanes (the same sums in the same order).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn col2im_avx2(g: &ConvGeometry, cols: &[f32], start: usize, len: usize, dx: &mut [f32]) {
    col2im_portable(g, cols, start, len, dx)
}

/// [`col2im`] for the baseline instruction set.
#[inline(always)]
fn col2im_portable(g: &ConvGeometry, cols: &[f32], start: usize, len: usize, dx: &mut [f32]) {
    let dx = &mut dx[..g.input_len()];
    let cols = &cols[..g.patch_len() * len];
    if g.is_shifted_plane(start, len) && g.width < 32 {
        // Rows too short for one add per output row: add each shifted row in one pass,
        // the padding columns replaced by zeros.
        return for_each_shifted_row(g, start, len, |r| {
            if r.rows.is_empty() {
                return;
            }
            let w = r.width;
            let src = &cols[r.row * len..][..len];
            let (p0, p1) = ((r.rows.start - r.first_row) * w + r.left, (r.rows.end - r.first_row) * w - r.right);
            let d = &mut dx[r.source..r.source + (p1 - p0)];
            // From `p0`, every `w` positions are `keep` inside the input, then `left +
            // right` of padding (which would land on the neighbouring input row).
            let keep = w - r.left - r.right;
            for (d, s) in d.chunks_mut(w).zip(src[p0..p1].chunks(w)) {
                for (t, (d, &s)) in d.iter_mut().zip(s).enumerate() {
                    *d += if t < keep { s } else { 0.0 };
                }
            }
        });
    }
    if g.is_shifted_plane(start, len) {
        return for_each_shifted_row(g, start, len, |r| {
            let src = &cols[r.row * len..][..len];
            let (w, keep) = (r.width, r.width.saturating_sub(r.left + r.right));
            for (k, oy) in r.rows.clone().enumerate() {
                let s = &src[(oy - r.first_row) * w + r.left..][..keep];
                let d = &mut dx[r.source + k * w..][..keep];
                d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
            }
        });
    }
    col2im_runs(g, cols, start, len, dx)
}

/// [`col2im`] run by run (any geometry).
fn col2im_runs(g: &ConvGeometry, cols: &[f32], start: usize, len: usize, dx: &mut [f32]) {
    let sw = g.stride[1];
    for_each_run(g, start, len, |r| {
        let src = &cols[r.row * len + r.column..][..r.len][r.inside];
        if sw == 1 {
            dx[r.first..r.first + src.len()].iter_mut().zip(src).for_each(|(d, s)| *d += s);
        } else {
            for (t, s) in src.iter().enumerate() {
                dx[r.first + t * sw] += s;
            }
        }
    });
}

/// The number of samples of `per_sample` floats in `len` floats, panicking with a
/// message naming `what` when `len` is not whole samples.
fn whole_samples(what: &str, len: usize, per_sample: usize) -> usize {
    assert!(per_sample > 0, "convolution: an empty {what} sample");
    assert!(
        len.is_multiple_of(per_sample),
        "convolution: the {what} holds {len} floats, not a whole number of samples of {per_sample}"
    );
    len / per_sample
}

/// `a * b`, panicking with a message naming `what` when it overflows.
fn product(what: &str, a: usize, b: usize) -> usize {
    a.checked_mul(b).unwrap_or_else(|| panic!("convolution: the {what} ({a} x {b} floats) overflows a usize"))
}

/// The tiles of output positions: `(start, len)` pairs covering `0..positions`.
fn tiles(positions: usize) -> impl Iterator<Item = (usize, usize)> {
    tiles_of(positions, POSITIONS_PER_TILE)
}

/// The tiles of at most `per` (at least 1) output positions covering `0..positions`.
fn tiles_of(positions: usize, per: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..positions).step_by(per).map(move |s| (s, (positions - s).min(per)))
}

/// The scratch floats [`forward`] needs per sample of `g` with `filters` filters
/// ([`forward_scratch_len`]).
fn forward_scratch(g: &ConvGeometry, filters: usize) -> usize {
    forward_scratch_len(g.channels, [g.height, g.width], g.kernel, [g.out_height, g.out_width], filters)
}

/// Convolution forward of a batch: `y[b] = weight * x[b] + bias` with
/// `weight[filters, C, KH, KW]`, `bias[filters]`; `x` holds `batch * C * H * W` floats
/// and `y` receives `batch * filters * OH * OW`. `scratch` holds at least
/// [`forward_scratch_len`] floats (at most [`scratch_len`]); more lets several threads
/// take a tile each.
///
/// # Panics
/// If the geometry is not one ([`ConvGeometry::check`]), `x` is not whole samples,
/// or a slice is too short.
pub fn forward(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let ConvSizes { input: in_len, patch, positions: n } = g.check();
    assert!(filters > 0, "convolution: no filters");
    let out_len = product("output", filters, n);
    let batch = whole_samples("input", x.len(), in_len);
    let _ = product("weight", filters, patch);
    assert!(bias.is_none_or(|b| b.len() >= filters), "convolution: fewer biases than the {filters} filters");
    let y = &mut y[..product("output", batch, out_len)];
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    if batch == 1 && forward_one_by_filters(g, filters, x, weight, bias, y, scratch) {
        return;
    }
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    {
        let tile = forward_scratch(g, filters);
        let parts = parallel_parts(g, batch, product("output", filters * patch, n), scratch.len(), tile);
        if parts > 1 {
            // Samples are independent: each part takes the next sample not yet taken
            // (a thread that starts late or is slowed leaves more of them to the
            // others) and computes it with its own tile of the scratch space.
            let claims = super::parallel::Claims::new(batch);
            let (y_at, scratch_at) = (Output(y.as_mut_ptr()), Output(scratch.as_mut_ptr()));
            let run = |part: usize| {
                // SAFETY: the parts use disjoint tiles of `scratch` (`parts * tile <=
                // scratch.len()`).
                let scratch = unsafe { core::slice::from_raw_parts_mut(scratch_at.at(part * tile), tile) };
                claims.run(|b| {
                    // SAFETY: every sample `b < batch` is claimed once, so the parts
                    // write disjoint samples of `y`.
                    let yb = unsafe { core::slice::from_raw_parts_mut(y_at.at(b * out_len), out_len) };
                    forward_samples(g, filters, &x[b * in_len..][..in_len], weight, bias, yb, scratch);
                });
            };
            return super::parallel::for_each_part(parts, &run);
        }
    }
    forward_samples(g, filters, x, weight, bias, y, scratch)
}

/// One sample's convolution of at least [`FILTERS_PARALLEL_MIN_MACS`] multiply-adds
/// split between [`super::gemm::threads`] threads by filters, where the products read
/// the input from its padded copy or shifted planes ([`forward_direct`],
/// [`forward_planes`]); whether it was (else nothing is written). Each part copies the
/// input into its own scratch (the caller's, or [`super::parallel::with_scratch`]'s)
/// and computes its block of at least two filters with the one-thread kernel, so every
/// output keeps the operations and the order it has on one thread.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
fn forward_one_by_filters(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    let (patch, n) = (g.patch_len(), g.positions());
    let isa = super::isa::isa();
    let threads = super::gemm::threads();
    let parts = threads.min(filters / 2);
    // The scratch a part needs (of the most filters a part has; `forward_scratch`
    // depends on the filters only through whether there are several).
    let tile = forward_scratch(g, filters.div_ceil(2));
    let fits = |len: Option<usize>| len.is_some_and(|len| len <= tile && len <= scratch.len());
    if parts < 2
        || !isa.avx2()
        || filters.saturating_mul(patch).saturating_mul(n) < FILTERS_PARALLEL_MIN_MACS
        || !(isa.avx512() && fits(planes_len(g)) || fits(padded_len(g)))
        || tile > super::parallel::PART_SCRATCH
        || scratch.len() < tile
    {
        return false;
    }
    let (y_at, shared) = (Output(y.as_mut_ptr()), scratch.len() / tile >= parts);
    let scratch_at = Output(scratch.as_mut_ptr());
    let run = |part: usize| {
        // Filters `f0..f1`: at least two each (`filters >= 2 parts`).
        let (f0, f1) = (part * filters / parts, (part + 1) * filters / parts);
        let (weight, bias) = (&weight[f0 * patch..f1 * patch], bias.map(|b| &b[f0..f1]));
        // SAFETY: the parts write disjoint blocks of filters of `y` (`f1 * n <= filters
        // * n <= y.len()`, checked by `forward`).
        let y = unsafe { core::slice::from_raw_parts_mut(y_at.at(f0 * n), (f1 - f0) * n) };
        if part == 0 || shared {
            // SAFETY: part `p` takes floats `p tile..(p + 1) tile` of `scratch` (all of
            // them for part 0 when not shared), within it and no other part's.
            let scratch = unsafe {
                let len = if shared { tile } else { scratch.len() };
                core::slice::from_raw_parts_mut(scratch_at.at(part * tile), len)
            };
            forward_samples(g, f1 - f0, x, weight, bias, y, scratch);
        } else {
            super::parallel::with_scratch(|scratch| forward_samples(g, f1 - f0, x, weight, bias, y, scratch));
        }
    };
    super::parallel::for_each_quick_part(parts, &run);
    true
}

/// A convolution of one sample with at least this many multiply-adds is split between
/// [`super::gemm::threads`] threads by filters where its products read the padded
/// input or shifted planes ([`forward`]): below it, handing a part to another thread
/// costs more than it saves.
#[cfg(any(feature = "threading", feature = "internals"))]
pub const FILTERS_PARALLEL_MIN_MACS: usize = 1 << 17;

/// How many parts (threads) a convolution of `batch` samples of `macs` multiply-adds
/// each is split into: 1 below [`PARALLEL_MIN_MACS`], on one thread, for pointwise
/// convolutions, or when the scratch space does not hold a tile per part.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
fn parallel_parts(g: &ConvGeometry, batch: usize, macs: usize, scratch: usize, tile: usize) -> usize {
    let threads = super::gemm::threads();
    if threads < 2
        || batch < 2
        || batch.saturating_mul(macs) < PARALLEL_MIN_MACS
        || g.is_pointwise()
        || !super::isa::isa().avx2()
    {
        return 1;
    }
    let parts = threads.min(batch);
    if parts.checked_mul(tile).is_none_or(|needed| scratch < needed) {
        return 1;
    }
    parts
}

/// Convolutions of a batch with at least this many multiply-adds are split between
/// [`super::gemm::threads`] threads (the `threading` feature): by samples for the
/// forward and the input gradient, by column-matrix rows (without the column matrix) or
/// by filters for the weight gradient, which the backward computes on other threads
/// than the input gradient, so that every value is computed by the same operations as
/// on one thread.
#[cfg(any(feature = "threading", feature = "internals"))]
pub const PARALLEL_MIN_MACS: usize = 1 << 21;

/// [`forward`] on the calling thread.
fn forward_samples(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    forward_samples_by(g, filters, x, weight, bias, y, scratch, true)
}

/// [`forward_samples`], reading the columns from the padded input where
/// [`padded_len`] allows it and `direct` is set, else through [`im2col`].
#[allow(clippy::too_many_arguments)]
fn forward_samples_by(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
    direct: bool,
) {
    let (in_len, patch, n) = (g.input_len(), g.patch_len(), g.positions());
    let out_len = filters * n;
    let batch = x.len() / in_len;
    let w = MatRef::new(&weight[..filters * patch], filters, patch);
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let direct = direct
        && filters > 1
        && padded_len(g).is_some_and(|len| len <= scratch.len())
        && (super::isa::isa().avx2() || super::isa::isa().neon());
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = direct;
    #[cfg(target_arch = "x86_64")]
    let planes =
        direct && filters > 1 && super::isa::isa().avx512() && planes_len(g).is_some_and(|len| len <= scratch.len());
    for (xb, yb) in x.chunks_exact(in_len).zip(y[..batch * out_len].chunks_exact_mut(out_len)) {
        #[cfg(target_arch = "x86_64")]
        if planes {
            // SAFETY: the CPU has AVX-512 F, AVX2 and FMA (checked above).
            unsafe { forward_planes(g, filters, xb, &weight[..filters * patch], bias, yb, scratch) };
            continue;
        }
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        if direct {
            // SAFETY: the CPU has AVX2 and FMA, or NEON (checked above).
            unsafe { forward_direct(g, filters, xb, &weight[..filters * patch], bias, yb, scratch) };
            continue;
        }
        // The bias is the GEMM's initial value (beta = 1): no second pass.
        match bias {
            Some(bias) => yb.chunks_exact_mut(n).zip(bias).for_each(|(row, &b)| row.fill(b)),
            None => yb.fill(0.0),
        }
        // Tiles of the positions that the least scratch holds, whatever `scratch` is.
        let per = (forward_scratch(g, filters) / patch).clamp(1, POSITIONS_PER_TILE);
        for (start, len) in tiles_of(n, per) {
            let cols = if g.is_pointwise() {
                MatRef { data: &xb[start..], rows: patch, cols: len, rs: n, cs: 1 }
            } else {
                im2col(g, xb, start, len, scratch);
                MatRef::new(&scratch[..patch * len], patch, len)
            };
            gemm(1.0, w, cols, 1.0, &mut yb[start..], n);
        }
    }
}

/// Floats of the zero-padded copy of one input sample that [`forward_direct`] reads,
/// or `None` where it does not apply: stride 1, output rows of whole vectors of 8,
/// not pointwise (whose columns are the input itself), and the copy at most
/// [`DIRECT_MAX_FLOATS`].
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn padded_len(g: &ConvGeometry) -> Option<usize> {
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
const fn padded_size(g: &ConvGeometry) -> (usize, usize) {
    (g.out_height + (g.kernel[0] - 1) * g.dilation[0], g.out_width + (g.kernel[1] - 1) * g.dilation[1])
}

/// The largest padded input (64 KiB) that [`forward`] reads in place of the column
/// matrix, with AVX2 or NEON, stride 1 and output rows of whole vectors of 8: it stays in L1/L2
/// while every filter reads it; larger images are faster through the packed columns.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", feature = "internals", test))]
pub const DIRECT_MAX_FLOATS: usize = 16 * 1024;

/// One sample's convolution without the column matrix: the input is copied once with
/// its zero padding into `scratch`, and the product reads each column row as vectors of
/// eight straight from it (`gemm_gathered` of the AVX2, AVX-512 or NEON kernels): row `(c, i, j)` of the
/// columns of output row `oy` is the padded row `oy + i dilation` of channel `c` from
/// column `j dilation` on. The same sums in the same order as [`im2col`] and
/// [`gemm`], so the same bits, without writing the columns and packing them again
/// (8x8 digits, 16 to 32 channels: 3.2 µs of 13). The bias (or zero) is where the
/// first slice of sums starts.
///
/// # Safety
/// The CPU must have AVX2 and FMA (x86-64) or NEON (AArch64).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn forward_direct(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let (ph, pw) = padded_size(g);
    let plane = ph * pw;
    let padded = &mut scratch[..g.channels * plane];
    // SAFETY: the CPU has AVX2 (the caller's contract).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        pad_input_avx2(g, x, padded)
    };
    #[cfg(target_arch = "aarch64")]
    pad_input(g, x, padded);
    let (patch, n) = (g.patch_len(), g.positions());
    // The depth of every kernel's slices (`avx2::KC`, `neon::KC`).
    let mut offsets = [0usize; super::portable::SLICE];
    let mut k0 = 0;
    while k0 < patch {
        let kc = super::portable::SLICE.min(patch - k0);
        column_rows(g, k0, &mut offsets[..kc], [plane, g.dilation[0] * pw, g.dilation[1]]);
        // The slice `k0..k0 + kc` of the sums, added to `y` as `gemm` adds each slice
        // of `KC`.
        let start = (k0 == 0).then_some(bias);
        let (weight, offsets, rows) = (&weight[k0..], &offsets[..kc], (g.out_width, pw));
        // SAFETY: the CPU has AVX2 and FMA (checked by the caller), and AVX-512 F where
        // `isa().avx512()`; the bounds are asserted inside.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            if super::isa::isa().avx512() {
                super::avx512::gemm_gathered(weight, patch, filters, kc, padded, offsets, rows, start, y, n, n)
            } else {
                super::avx2::gemm_gathered(weight, patch, filters, kc, padded, offsets, rows, start, y, n, n)
            }
        };
        // SAFETY: the CPU has NEON (checked by the caller); the bounds are asserted
        // inside.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            super::neon::gemm_gathered(weight, patch, filters, kc, padded, offsets, rows, start, y, n, n)
        };
        k0 += kc;
    }
}

/// Fills `offsets` with where column rows `k0..k0 + offsets.len()` of `g` are read:
/// row `(c, i, j)` (channel, kernel row, kernel column; `j` fastest) at
/// `c steps[0] + i steps[1] + j steps[2]`, by additions (the wrapping steps back to the
/// start of a kernel row or channel cancel out): the first channel's worth of rows
/// (`taps = kernel[0] kernel[1]`) tap by tap, then each further channel's worth as
/// those plus one, two, ... channels (no branches; vector additions).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
fn column_rows(g: &ConvGeometry, k0: usize, offsets: &mut [usize], steps: [usize; 3]) {
    let [kh, kw] = g.kernel;
    let taps = kh * kw;
    let (mut i, mut j) = ((k0 % taps) / kw, k0 % kw);
    let mut at = (k0 / taps) * steps[0] + i * steps[1] + j * steps[2];
    let next_row = steps[1].wrapping_sub(kw * steps[2]);
    let next_channel = steps[0].wrapping_sub(kh * steps[1]);
    let head = taps.min(offsets.len());
    for o in &mut offsets[..head] {
        *o = at;
        (j, at) = (j + 1, at.wrapping_add(steps[2]));
        if j == kw {
            (i, j, at) = (i + 1, 0, at.wrapping_add(next_row));
            if i == kh {
                (i, at) = (0, at.wrapping_add(next_channel));
            }
        }
    }
    let (head, rest) = offsets.split_at_mut(head);
    let mut step = 0usize;
    for channel in rest.chunks_mut(taps) {
        step = step.wrapping_add(steps[0]);
        for (o, &h) in channel.iter_mut().zip(&*head) {
            *o = h.wrapping_add(step);
        }
    }
}

/// Floats of the shifted input planes of one sample that [`forward_planes`] reads
/// (`channels x kernel[1]` planes of `padded height x out_width`, then the floats past
/// the last row that `avx512::gemm_rows` reads as parts of whole vectors), or `None`
/// where it does not apply: stride 1, not pointwise, at most [`POSITIONS_PER_TILE`]
/// output positions (then they fit in [`scratch_len`] but for a few floats of slack).
#[cfg(target_arch = "x86_64")]
fn planes_len(g: &ConvGeometry) -> Option<usize> {
    let (ph, _) = padded_size(g);
    let n = g.positions();
    let applies = g.stride == [1, 1] && !g.is_pointwise() && (1..=POSITIONS_PER_TILE).contains(&n);
    let len = g.channels.checked_mul(g.kernel[1])?.checked_mul(ph)?.checked_mul(g.out_width)?;
    // The last row of the last plane ends the planes.
    let slack = super::avx512::rows_reach(0, n)? - n;
    applies.then(|| len.checked_add(slack)).flatten()
}

/// One sample's convolution with AVX-512 from its shifted input planes: plane `(c, j)`
/// holds, for every padded row of channel `c`, the `out_width` columns that kernel
/// column `j` reads, so that column row `(c, i, j)` of all the output positions is one
/// contiguous run of the plane, from its row `i dilation` on (`avx512::gemm_rows` reads
/// it as whole vectors of 16, without assembling a lane from two loads as the padded
/// copy of [`forward_direct`] needs for rows of 8). The same sums in the same order as
/// [`im2col`] and [`gemm`], so the same bits; the planes are `kernel[1]` times the
/// padded copy, and small images are what this path is for (8x8 digits, 16 to 32
/// channels, on a loaded AVX-512 Xeon: 4.1 µs through the padded copy, 3.5 µs from the
/// planes, `tools/conv-peak`).
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn forward_planes(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let (ph, _) = padded_size(g);
    let (ow, kw) = (g.out_width, g.kernel[1]);
    let plane = ph * ow;
    let len = planes_len(g).unwrap_or(usize::MAX);
    // The planes start on a cache line where the scratch has room for it (rows of
    // whole vectors are then read from one line or two, not always two).
    let skip = scratch.as_ptr().align_offset(PLANES_ALIGN_BYTES);
    let skip = if skip.checked_add(len).is_some_and(|end| end <= scratch.len()) { skip } else { 0 };
    let planes = &mut scratch[skip..][..len];
    // SAFETY: the CPU has AVX-512 F (the caller's contract).
    unsafe { shift_planes(g, x, planes) };
    let (patch, n) = (g.patch_len(), g.positions());
    let mut offsets = [0usize; super::portable::SLICE];
    let mut k0 = 0;
    while k0 < patch {
        let kc = super::portable::SLICE.min(patch - k0);
        column_rows(g, k0, &mut offsets[..kc], [kw * plane, g.dilation[0] * ow, plane]);
        // The slice `k0..k0 + kc` of the sums, added to `y` as `gemm` adds each slice
        // of `KC`.
        let start = (k0 == 0).then_some(bias);
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; the bounds are asserted inside.
        unsafe { super::avx512::gemm_rows(&weight[k0..], patch, filters, kc, planes, &offsets[..kc], start, y, n, n) };
        k0 += kc;
    }
}

/// Writes the shifted planes of one sample `x[C, H, W]` that [`forward_planes`] reads
/// into `planes` (every float of them, zeros included): element `(r, ox)` of plane
/// `(c, j)` is `x[c, r - padding[0], ox + j dilation[1] - padding[1]]`, zero outside
/// the input. Where the output rows are as wide as the input's (`Same` padding), a
/// plane is at most [`FLAT_MAX`] floats and the kernel at most [`FLAT_MAX_COLUMNS`]
/// wide, a plane is the input channel read at one offset through a mask of the
/// elements inside the input (the same for every channel): one masked load and one
/// store per 16 floats of a plane. Otherwise row by row,
/// per 16 floats of a row. The planes are written in the order the product reads
/// them, channel after channel, so that its first reads do not wait for the last
/// stores.
///
/// # Safety
/// The CPU must have AVX-512 F.
///
/// # Panics
/// If `x` holds fewer than `input_len` floats or `planes` fewer than the planes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn shift_planes(g: &ConvGeometry, x: &[f32], planes: &mut [f32]) {
    use core::arch::x86_64::*;
    let (ph, _) = padded_size(g);
    let (h, w, ow, kw) = (g.height, g.width, g.out_width, g.kernel[1]);
    let plane = ph * ow;
    let x = &x[..g.input_len()];
    let planes = &mut planes[..g.channels * kw * plane];
    let (xp, pp) = (x.as_ptr(), planes.as_mut_ptr());
    // Output column `ox` of plane `(c, j)` reads input column `ox + shift(j)`, and the
    // input columns read are those of `ox` in `columns(j)`.
    let shift = |j: usize| (j * g.dilation[1]) as isize - g.padding[1] as isize;
    let columns = |j: usize| {
        let lo = (-shift(j)).clamp(0, ow as isize) as usize;
        lo..(w as isize - shift(j)).clamp(lo as isize, ow as isize) as usize
    };
    let lanes = |len: usize| if len >= 16 { u16::MAX } else { (1u16 << len) - 1 };
    if ow == w && plane <= FLAT_MAX && kw <= FLAT_MAX_COLUMNS {
        // Bit `t % 16` of `inside[j][t / 16]`: element `t` of plane `(c, j)` reads the
        // input, at `t + shift(j) - padding[0] w` from channel `c`'s first float.
        let mut inside = [[0u16; FLAT_MAX / 16]; FLAT_MAX_COLUMNS];
        for (j, masks) in inside[..kw].iter_mut().enumerate() {
            let columns = columns(j);
            for r in g.padding[0]..(g.padding[0] + h).min(ph) {
                // The run of row `r`, a mask at a time.
                let (mut t, end) = (r * ow + columns.start, r * ow + columns.end);
                while t < end {
                    let len = (end - t).min(16 - t % 16);
                    masks[t / 16] |= lanes(len) << (t % 16);
                    t += len;
                }
            }
        }
        let (whole, rest) = (plane / 16, plane % 16);
        for c in 0..g.channels {
            for (j, masks) in inside[..kw].iter().enumerate() {
                let from = xp.wrapping_add(c * h * w).wrapping_offset(shift(j) - (g.padding[0] * w) as isize);
                // SAFETY: the plane `(c, j)` is inside `planes`. The loads' lanes are
                // the elements inside the input, whose floats (`x[c, r - padding[0],
                // ox + shift(j)]` with the row and the column inside the input) are in
                // `x`; the lanes masked off are not read, and the pointer is formed by
                // wrapping arithmetic and not dereferenced.
                unsafe {
                    let to = pp.add((c * kw + j) * plane);
                    for (u, &load) in masks[..whole].iter().enumerate() {
                        _mm512_storeu_ps(to.add(16 * u), _mm512_maskz_loadu_ps(load, from.wrapping_add(16 * u)));
                    }
                    if rest > 0 {
                        let v = _mm512_maskz_loadu_ps(masks[whole], from.wrapping_add(16 * whole));
                        _mm512_mask_storeu_ps(to.add(16 * whole), lanes(rest), v);
                    }
                }
            }
        }
        return;
    }
    for c in 0..g.channels {
        for j in 0..kw {
            let columns = columns(j);
            for q0 in (0..ow).step_by(16) {
                // The lanes of the row's columns `q0..q0 + 16`, and those inside the input.
                let store = lanes(ow - q0);
                let load = lanes(columns.end.saturating_sub(q0)) & !lanes(columns.start.saturating_sub(q0));
                for r in 0..ph {
                    let row = r.wrapping_sub(g.padding[0]);
                    // SAFETY: the store's lanes are columns `< ow` of row `r < ph` of
                    // plane `(c, j)`, inside `planes`; the load's lanes are input
                    // columns `ox + shift(j)` in `0..w` of input row `row < h` of channel
                    // `c`, inside `x` (the others are masked off and not read; the
                    // pointer is formed by wrapping arithmetic and not dereferenced).
                    unsafe {
                        let v = if row < h {
                            let from = xp.wrapping_add((c * h + row) * w).wrapping_offset(q0 as isize + shift(j));
                            _mm512_maskz_loadu_ps(load, from)
                        } else {
                            _mm512_setzero_ps()
                        };
                        _mm512_mask_storeu_ps(pp.add(((c * kw + j) * ph + r) * ow + q0), store, v);
                    }
                }
            }
        }
    }
}

/// The alignment in bytes of the shifted planes in the scratch (a cache line).
#[cfg(target_arch = "x86_64")]
const PLANES_ALIGN_BYTES: usize = 64;

/// The floats that [`forward_scratch_len`] adds to the planes to align them.
#[cfg(target_arch = "x86_64")]
const PLANES_ALIGN: usize = PLANES_ALIGN_BYTES / 4 - 1;

/// The largest plane that [`shift_planes`] writes as one masked copy of the input
/// channel (its masks of elements inside the input are kept on the stack).
#[cfg(target_arch = "x86_64")]
const FLAT_MAX: usize = 1024;

/// The widest kernel whose planes [`shift_planes`] writes as masked copies.
#[cfg(target_arch = "x86_64")]
const FLAT_MAX_COLUMNS: usize = 8;

/// Whether [`weight_grad_direct`] computes the weight gradient of `rows` filters: with
/// AVX2 and FMA (or AVX-512, or NEON), stride 1, not pointwise, at least two filters
/// (one would be a matrix-vector product, rounded differently) and room in `scratch`
/// for the padded input, a transposed tile of the output gradient and a row of bias
/// sums.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn weight_grad_direct_fits(g: &ConvGeometry, rows: usize, scratch: usize) -> bool {
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
struct GradKernels {
    /// The weight gradient's product.
    weight: WeightProduct,
    /// Column-matrix rows of one call of `weight`.
    weight_rows: usize,
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
    fn get() -> Option<GradKernels> {
        let isa = super::isa::isa();
        #[cfg(target_arch = "x86_64")]
        {
            use super::{avx2, avx512};
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
            use super::neon;
            let (weight, weight_rows, taps) = (neon::gemm_gathered_t, neon::GATHERED_T_MR, neon::gemm_gathered_taps);
            return Some(GradKernels { weight, weight_rows, transpose: neon::transpose_rows, taps });
        }
        None
    }
}

/// Copies one input sample `x[C, H, W]` into `padded` with its zero padding, as
/// [`forward_direct`] reads it (`padded_size`): input row `r` is padded row
/// `r + padding[0]`; rows and columns no output reads are left out (NEON; x86-64 has
/// [`pad_input_avx2`] and [`pad_planes_avx2`]).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn pad_input(g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
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
unsafe fn pad_input_avx2(g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
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
unsafe fn pad_planes_avx2(
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
fn pad_planes(
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
unsafe fn weight_grad_direct(
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
fn input_grad_direct_size(g: &ConvGeometry, filters: usize, scratch: usize) -> Option<(usize, usize)> {
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
        && (2..=super::portable::SLICE).contains(&filters)
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
fn input_grad_weights<'a>(
    g: &ConvGeometry,
    filters: usize,
    weight: &[f32],
    scratch: &'a mut [f32],
) -> (&'a [f32], &'a mut [f32]) {
    let (patch, taps) = (g.patch_len(), g.kernel[0] * g.kernel[1]);
    let (by_taps, rest) = scratch.split_at_mut(filters * patch);
    super::conv_grad::weights_by_taps(weight, patch, g.channels, filters, taps, by_taps);
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
unsafe fn input_grad_direct(
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

/// Convolution backward of a batch (see [`forward`]): adds `dL/dweight` into
/// `d_weight` and `dL/dbias` into `d_bias`, and overwrites `dx` with `dL/dx` when given.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(all(feature = "threading", target_arch = "x86_64")), allow(unused_mut))]
pub fn backward(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    mut d_weight: Option<&mut [f32]>,
    d_bias: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    let ConvSizes { input: in_len, patch, positions: n } = g.check();
    assert!(filters > 0, "convolution: no filters");
    let batch = whole_samples("input", x.len(), in_len);
    let out_len = product("output", filters, n);
    let _ = (product("output gradient", batch, out_len), product("weight", filters, patch));
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    {
        // Without a weight gradient (frozen weights) only the input gradient is
        // left: computed on this thread.
        let Some(d_weight) = d_weight.as_deref_mut().map(|d| &mut d[..filters * patch]) else {
            return backward_samples(g, filters, x, weight, dy, None, d_bias, dx, scratch);
        };
        let tile = product("scratch", patch, n.min(POSITIONS_PER_TILE));
        let macs = product("weight gradient", filters * patch, n).saturating_mul(2);
        let parts = parallel_parts(g, batch, macs, scratch.len(), tile);
        if parts > 1 {
            let split = BackwardSplit::new(g, filters, batch, parts, tile, dx.is_some());
            if split.items() > 1 {
                let parts = parts.min(split.items());
                let dx = dx.map(|dx| &mut dx[..batch * in_len]);
                // The weight gradient in one piece beside the input gradient: a thread
                // that finishes the input gradient first takes samples of it from the
                // end, where each sample's sum is added once (one tile of positions).
                let share =
                    split.weight_items == 1 && split.by_columns && split.input_items > 0 && n <= POSITIONS_PER_TILE;
                let samples = share
                    .then(|| WeightSamples::new(batch, filters, patch, parts * tile, scratch.len() - parts * tile))
                    .flatten();
                let shared = BackwardShared {
                    g,
                    filters,
                    x,
                    weight,
                    dy,
                    split,
                    tile,
                    d_weight: Output(d_weight.as_mut_ptr()),
                    d_bias: d_bias.map(|db| Output(db[..filters].as_mut_ptr())),
                    dx: dx.map(|dx| Output(dx.as_mut_ptr())),
                    scratch: Output(scratch.as_mut_ptr()),
                    samples,
                };
                let claims = super::parallel::Claims::new(split.items());
                let run = |part: usize| {
                    // The thread's scratch and, once it takes a piece of the input
                    // gradient, the weight arranged by taps kept at its start.
                    let mut by_taps = false;
                    // SAFETY: every index is claimed once; the pieces write disjoint
                    // parts of the gradients, and each part its own tile of `scratch`
                    // (`parts * tile <= scratch.len()`).
                    claims.run(|item| unsafe { shared.run(part, item, &mut by_taps) });
                    if let Some(samples) = &shared.samples {
                        // SAFETY: the thread has no piece left, so its tile is free; as
                        // above.
                        unsafe { shared.weight_back(part, samples) };
                    }
                };
                return super::parallel::for_each_part(parts, &run);
            }
        }
    }
    backward_samples(g, filters, x, weight, dy, d_weight, d_bias, dx, scratch)
}

/// How [`backward`] splits a batch between threads: the weight gradient (with the bias
/// gradient) in `weight_items` pieces, by column-matrix rows where it is direct (whole
/// tiles of them, every piece keeping the widest tile of filters) or else by filters
/// (at least two each: a one-row product would be a matrix-vector product, rounded
/// differently), each over every sample in order as on one thread; and the input
/// gradient, if wanted, in `input_items` pieces of samples. With the input gradient, the
/// threads are shared between the two (on two threads one computes the weight
/// gradient, the other the input gradient: the same multiply-adds, so about the same
/// time, and neither repeats the other's copies as splitting both would), and the
/// input gradient is cut finer than its threads so that a thread that finishes first
/// takes what is left (the pieces are claimed in order, the weight gradient's first);
/// a weight gradient in one piece shares its samples with the thread that finishes
/// the input gradient ([`WeightSamples`]).
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
#[derive(Clone, Copy)]
struct BackwardSplit {
    /// Pieces of the weight gradient (at least 1).
    weight_items: usize,
    /// Whether they are blocks of column-matrix rows (else blocks of filters).
    by_columns: bool,
    /// Column-matrix rows (or filters) per piece.
    weight_step: usize,
    /// Pieces of the input gradient (0 without it).
    input_items: usize,
    /// Samples per piece of the input gradient.
    sample_step: usize,
}

/// Pieces of the input gradient per thread that takes it, when there are enough
/// samples: a thread that finishes early takes the other's last pieces.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
const INPUT_ITEMS_PER_PART: usize = 4;

#[cfg(all(feature = "threading", target_arch = "x86_64"))]
impl BackwardSplit {
    fn new(g: &ConvGeometry, filters: usize, batch: usize, parts: usize, tile: usize, input: bool) -> Self {
        let patch = g.patch_len();
        let input_parts = if input { parts / 2 } else { 0 };
        let wanted = parts - input_parts;
        let by_columns = weight_grad_direct_fits(g, filters, tile);
        let (weight_items, weight_step) = if by_columns {
            let mr = GradKernels::get().map_or(1, |kernels| kernels.weight_rows);
            let step = patch.div_ceil(mr).div_ceil(wanted) * mr;
            (patch.div_ceil(step), step)
        } else {
            let step = filters.div_ceil(wanted);
            let last = filters.saturating_sub((wanted - 1) * step);
            if wanted > 1 && filters >= 2 * wanted && last >= 2 {
                (filters.div_ceil(step), step)
            } else {
                (1, filters)
            }
        };
        let input_items = (input_parts * INPUT_ITEMS_PER_PART).min(batch);
        let sample_step = batch.div_ceil(input_items.max(1));
        let input_items = if input_items == 0 { 0 } else { batch.div_ceil(sample_step) };
        BackwardSplit { weight_items, by_columns, weight_step, input_items, sample_step }
    }

    /// Every piece: the weight gradient's, then the input gradient's.
    fn items(&self) -> usize {
        self.weight_items + self.input_items
    }
}

/// What the threads of [`backward`] share: its arguments, the split, and the outputs
/// and scratch space as pointers (each piece writes its own part).
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
struct BackwardShared<'a> {
    g: &'a ConvGeometry,
    filters: usize,
    x: &'a [f32],
    weight: &'a [f32],
    dy: &'a [f32],
    split: BackwardSplit,
    /// Scratch floats per thread.
    tile: usize,
    d_weight: Output,
    d_bias: Option<Output>,
    dx: Option<Output>,
    scratch: Output,
    /// The weight gradient's samples, where the threads share them ([`WeightSamples`]).
    samples: Option<WeightSamples>,
}

/// The samples of a weight gradient computed in one piece (every column-matrix row, one
/// tile of output positions per sample) on several threads: the thread of the piece
/// takes them from the first on and adds each to the gradient as it goes, as on one
/// thread; a thread left without other work takes them from the last one back, each
/// into a buffer of its own (the weight gradient's floats, then the bias gradient's)
/// that starts at `-0.0`, so that the buffer holds the sample's sum as it would be
/// added. When the two meet, the thread of the piece adds the buffers to the gradient
/// in the order of their samples: each element is the same additions of the same sums
/// in the same order as on one thread, so the same bits.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
struct WeightSamples {
    /// The next sample from the front (low 32 bits) and one past the last sample not
    /// taken from the end (high 32 bits).
    ends: core::sync::atomic::AtomicU64,
    /// Samples taken from the end and finished.
    done: core::sync::atomic::AtomicUsize,
    /// Set by a thread that panicked while computing a sample from the end.
    abort: core::sync::atomic::AtomicBool,
    /// The samples.
    batch: usize,
    /// The least sample that may be taken from the end (the buffers hold the samples
    /// from it on).
    least: usize,
    /// Where the buffers start in the scratch space (after every thread's tile), and the
    /// floats of each (sample `b` in buffer `batch - 1 - b`).
    at: usize,
    stride: usize,
}

#[cfg(all(feature = "threading", target_arch = "x86_64"))]
impl WeightSamples {
    /// The sharing of `batch` samples of a weight gradient of `filters x patch` floats
    /// (and `filters` bias sums) with buffers in `free` floats of scratch space from
    /// `at` on, or `None` where there is no room for one or the batch is too large.
    fn new(batch: usize, filters: usize, patch: usize, at: usize, free: usize) -> Option<Self> {
        let stride = filters.checked_mul(patch)?.checked_add(filters)?;
        let buffers = (free / stride).min(batch.saturating_sub(1));
        let hi = u32::try_from(batch).ok()?;
        (buffers > 0).then(|| WeightSamples {
            ends: core::sync::atomic::AtomicU64::new(u64::from(hi) << 32),
            done: core::sync::atomic::AtomicUsize::new(0),
            abort: core::sync::atomic::AtomicBool::new(false),
            batch,
            least: batch - buffers,
            at,
            stride,
        })
    }

    /// Takes the next sample from the front, if any is left.
    fn front(&self) -> Option<usize> {
        use core::sync::atomic::Ordering::Relaxed;
        let mut ends = self.ends.load(Relaxed);
        loop {
            let (lo, hi) = (ends & u64::from(u32::MAX), ends >> 32);
            if lo >= hi {
                return None;
            }
            match self.ends.compare_exchange_weak(ends, ends + 1, Relaxed, Relaxed) {
                Ok(_) => return Some(lo as usize),
                Err(now) => ends = now,
            }
        }
    }

    /// Takes the next sample from the end, if any is left that has a buffer.
    fn back(&self) -> Option<usize> {
        use core::sync::atomic::Ordering::Relaxed;
        let mut ends = self.ends.load(Relaxed);
        loop {
            let (lo, hi) = (ends & u64::from(u32::MAX), ends >> 32);
            if lo >= hi || (hi as usize) <= self.least {
                return None;
            }
            match self.ends.compare_exchange_weak(ends, ends - (1 << 32), Relaxed, Relaxed) {
                Ok(_) => return Some(hi as usize - 1),
                Err(now) => ends = now,
            }
        }
    }

    /// The first sample taken from the end, once none is left to take.
    fn taken_from_end(&self) -> usize {
        (self.ends.load(core::sync::atomic::Ordering::Relaxed) >> 32) as usize
    }
}

#[cfg(all(feature = "threading", target_arch = "x86_64"))]
impl BackwardShared<'_> {
    /// Piece `item` of the backward on thread `part`; `by_taps` says whether the weight
    /// arranged by taps is already at the start of the thread's scratch (a thread takes
    /// the pieces of the weight gradient before those of the input gradient, so it is
    /// written once, for the first of the latter).
    ///
    /// # Safety
    /// `part < parts` with `parts * tile` floats of scratch; every `item < items()` is
    /// run once, and no two threads share a `part`.
    unsafe fn run(&self, part: usize, item: usize, by_taps: &mut bool) {
        let BackwardShared { g, filters, x, weight, dy, split, tile, .. } = *self;
        let (in_len, patch, n) = (g.input_len(), g.patch_len(), g.positions());
        let (out_len, batch) = (filters * n, x.len() / in_len);
        // SAFETY: the thread's own tile of the scratch (the caller's contract).
        let scratch = unsafe { core::slice::from_raw_parts_mut(self.scratch.at(part * tile), tile) };
        if item < split.weight_items {
            let (p0, p1) = (item * split.weight_step, (item + 1) * split.weight_step);
            if split.by_columns {
                // Columns `c0..c1` of the weight gradient, over every sample in order,
                // as on one thread, and the bias gradient with the first of them.
                let (c0, c1) = (p0.min(patch), p1.min(patch));
                // SAFETY: only the first piece writes the bias gradient.
                let mut db = self
                    .d_bias
                    .filter(|_| item == 0)
                    .map(|db| unsafe { core::slice::from_raw_parts_mut(db.at(0), filters) });
                if let Some(samples) = &self.samples {
                    // SAFETY: as below; the piece is the whole weight gradient.
                    return unsafe { self.weight_front(samples, db, scratch) };
                }
                for b in 0..batch {
                    let (xb, dyb) = (&x[b * in_len..][..in_len], &dy[b * out_len..][..out_len]);
                    // SAFETY: `weight_grad_direct_fits` holds for `filters` and `tile`;
                    // the pieces write disjoint columns of `d_weight`.
                    unsafe {
                        weight_grad_direct(g, filters, c0..c1, xb, dyb, self.d_weight.at(0), db.as_deref_mut(), scratch)
                    };
                }
                return;
            }
            // Filters `f0..f1` and their bias gradients, over every sample in order, as
            // on one thread.
            let (f0, f1) = (p0.min(filters), p1.min(filters));
            let rows = f1 - f0;
            // SAFETY: the pieces write disjoint rows `f0..f1` of `d_weight` and `d_bias`.
            let (dw, mut db) = unsafe {
                (
                    core::slice::from_raw_parts_mut(self.d_weight.at(f0 * patch), rows * patch),
                    self.d_bias.map(|db| core::slice::from_raw_parts_mut(db.at(f0), rows)),
                )
            };
            let direct = weight_grad_direct_fits(g, rows, scratch.len());
            for b in 0..batch {
                let xb = &x[b * in_len..][..in_len];
                let dyb = &dy[b * out_len + f0 * n..][..rows * n];
                if direct {
                    // SAFETY: `weight_grad_direct_fits` holds; `dw` is this piece's alone.
                    unsafe {
                        weight_grad_direct(g, rows, 0..patch, xb, dyb, dw.as_mut_ptr(), db.as_deref_mut(), scratch)
                    };
                    continue;
                }
                if let Some(db) = db.as_deref_mut() {
                    add_row_sums(db, dyb, n);
                }
                for (start, len) in tiles(n) {
                    let dy_tile = MatRef { data: &dyb[start..], rows, cols: len, rs: n, cs: 1 };
                    im2col(g, xb, start, len, scratch);
                    gemm(1.0, dy_tile, MatRef::new(&scratch[..patch * len], patch, len).t(), 1.0, dw, patch);
                }
            }
            return;
        }
        // The input gradient of samples `s0..s1`.
        let piece = item - split.weight_items;
        let (s0, s1) = (piece * split.sample_step, ((piece + 1) * split.sample_step).min(batch));
        let Some(dx_at) = self.dx.filter(|_| s0 < s1) else { return };
        // SAFETY: the pieces write disjoint samples of `dx`.
        let dx = unsafe { core::slice::from_raw_parts_mut(dx_at.at(s0 * in_len), (s1 - s0) * in_len) };
        let direct_input = input_grad_direct_size(g, filters, scratch.len());
        let (by_taps_floats, scratch) = match direct_input {
            Some(_) if *by_taps => {
                let (by_taps, rest) = scratch.split_at_mut(filters * patch);
                (&*by_taps, rest)
            }
            Some(_) => {
                *by_taps = true;
                input_grad_weights(g, filters, weight, scratch)
            }
            None => (&[][..], scratch),
        };
        let w = MatRef::new(&weight[..filters * patch], filters, patch);
        for (k, dxb) in dx.chunks_exact_mut(in_len).enumerate() {
            let dyb = &dy[(s0 + k) * out_len..][..out_len];
            if let Some(size) = direct_input {
                // SAFETY: `input_grad_direct_size` gave `size` for the scratch space
                // `by_taps_floats` came from.
                unsafe { input_grad_direct(g, filters, size, by_taps_floats, dyb, dxb, scratch) };
                continue;
            }
            dxb.fill(0.0);
            for (start, len) in tiles(n) {
                let dy_tile = MatRef { data: &dyb[start..], rows: filters, cols: len, rs: n, cs: 1 };
                gemm(1.0, w.t(), dy_tile, 0.0, scratch, len);
                col2im(g, scratch, start, len, dxb);
            }
        }
    }
}

#[cfg(all(feature = "threading", target_arch = "x86_64"))]
impl BackwardShared<'_> {
    /// The piece of the weight gradient that shares its samples: the samples from the
    /// front added to the gradient in order, then, once the other threads have finished
    /// theirs from the end, their buffers in order.
    ///
    /// # Safety
    /// As [`BackwardShared::run`] for the weight gradient's one piece (every column,
    /// by column-matrix rows), `db` the bias gradient if any.
    unsafe fn weight_front(&self, samples: &WeightSamples, mut db: Option<&mut [f32]>, scratch: &mut [f32]) {
        use core::sync::atomic::Ordering::Acquire;
        let BackwardShared { g, filters, x, dy, .. } = *self;
        let (in_len, patch) = (g.input_len(), g.patch_len());
        let out_len = filters * g.positions();
        while let Some(b) = samples.front() {
            let (xb, dyb) = (&x[b * in_len..][..in_len], &dy[b * out_len..][..out_len]);
            // SAFETY: `weight_grad_direct_fits` holds for `filters` and the thread's
            // tile; this piece alone writes `d_weight` and `d_bias`.
            unsafe {
                weight_grad_direct(g, filters, 0..patch, xb, dyb, self.d_weight.at(0), db.as_deref_mut(), scratch)
            };
        }
        let first = samples.taken_from_end();
        let taken = samples.batch - first;
        while samples.done.load(Acquire) < taken {
            if samples.abort.load(Acquire) {
                return;
            }
            core::hint::spin_loop();
        }
        // SAFETY: this piece alone writes the weight gradient (`filters x patch` floats).
        let dw = unsafe { core::slice::from_raw_parts_mut(self.d_weight.at(0), filters * patch) };
        for b in first..samples.batch {
            // SAFETY: buffer `batch - 1 - b` lies in the scratch space after every
            // thread's tile (`WeightSamples::new`); its writer has finished (`done`,
            // read with `Acquire`) and nothing writes it now.
            let buffer = unsafe {
                core::slice::from_raw_parts(
                    self.scratch.at(samples.at + (samples.batch - 1 - b) * samples.stride),
                    samples.stride,
                )
            };
            let (bw, bb) = buffer.split_at(filters * patch);
            dw.iter_mut().zip(bw).for_each(|(d, s)| *d += s);
            if let Some(db) = db.as_deref_mut() {
                db.iter_mut().zip(bb).for_each(|(d, s)| *d += s);
            }
        }
    }

    /// Samples of the weight gradient taken from the end, on thread `part` once it has
    /// no other piece left: each into its buffer.
    ///
    /// # Safety
    /// As [`BackwardShared::run`]; the thread has finished its pieces (its tile of the
    /// scratch is free).
    unsafe fn weight_back(&self, part: usize, samples: &WeightSamples) {
        use core::sync::atomic::Ordering::Release;
        let BackwardShared { g, filters, x, dy, tile, .. } = *self;
        let (in_len, patch) = (g.input_len(), g.patch_len());
        let out_len = filters * g.positions();
        let _abort = super::parallel::AbortOnPanic(&samples.abort);
        // SAFETY: the thread's own tile of the scratch (the caller's contract).
        let scratch = unsafe { core::slice::from_raw_parts_mut(self.scratch.at(part * tile), tile) };
        while let Some(b) = samples.back() {
            // SAFETY: buffer `batch - 1 - b` lies after every thread's tile
            // (`WeightSamples::new`), and sample `b` is taken once.
            let buffer = unsafe {
                core::slice::from_raw_parts_mut(
                    self.scratch.at(samples.at + (samples.batch - 1 - b) * samples.stride),
                    samples.stride,
                )
            };
            buffer.fill(-0.0);
            let (bw, bb) = buffer.split_at_mut(filters * patch);
            let (xb, dyb) = (&x[b * in_len..][..in_len], &dy[b * out_len..][..out_len]);
            let db = self.d_bias.is_some().then_some(bb);
            // SAFETY: `weight_grad_direct_fits` holds for `filters` and `tile`; the
            // buffer is this sample's alone.
            unsafe { weight_grad_direct(g, filters, 0..patch, xb, dyb, bw.as_mut_ptr(), db, scratch) };
            samples.done.fetch_add(1, Release);
        }
    }
}

/// `db[f] += sum_j dy[f n + j]` for every row `f` of `db`, each row's sum rounded as
/// `Iterator::sum` rounds it (from `-0.0`, in order), eight rows at a time so that their
/// chains of additions overlap instead of waiting on one another.
fn add_row_sums(db: &mut [f32], dy: &[f32], n: usize) {
    let (dy, total) = (&dy[..db.len() * n], db.len());
    let mut blocks = db.chunks_exact_mut(8);
    for (f, block) in blocks.by_ref().enumerate() {
        let rows: [&[f32]; 8] = core::array::from_fn(|r| &dy[(8 * f + r) * n..][..n]);
        let mut sums = [-0.0f32; 8];
        for j in 0..n {
            for (sum, row) in sums.iter_mut().zip(rows) {
                *sum += row[j];
            }
        }
        block.iter_mut().zip(sums).for_each(|(d, sum)| *d += sum);
    }
    let rest = blocks.into_remainder();
    let done = total - rest.len();
    for (d, row) in rest.iter_mut().zip(dy[done * n..].chunks_exact(n)) {
        *d += row.iter().sum::<f32>();
    }
}

/// [`backward`] on the calling thread.
#[allow(clippy::too_many_arguments)]
fn backward_samples(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    d_weight: Option<&mut [f32]>,
    d_bias: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    backward_samples_by(g, filters, x, weight, dy, d_weight, d_bias, dx, scratch, true)
}

/// [`backward_samples`], reading the padded input and output gradient where
/// [`weight_grad_direct_fits`] and [`input_grad_direct_size`] allow it and `direct` is
/// set, else through the column matrices.
#[allow(clippy::too_many_arguments)]
fn backward_samples_by(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    d_weight: Option<&mut [f32]>,
    mut d_bias: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
    scratch: &mut [f32],
    direct: bool,
) {
    let (in_len, patch, n) = (g.input_len(), g.patch_len(), g.positions());
    let out_len = filters * n;
    let batch = x.len() / in_len;
    let w = MatRef::new(&weight[..filters * patch], filters, patch);
    let mut d_weight = d_weight.map(|d| &mut d[..filters * patch]);
    // The weight arranged by taps stays at the start of `scratch` for the whole batch,
    // where the weight gradient (if any) is direct in the rest of it too.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let direct_input = input_grad_direct_size(g, filters, scratch.len()).filter(|_| {
        let rest = scratch.len() - filters * patch;
        direct && dx.is_some() && (d_weight.is_none() || weight_grad_direct_fits(g, filters, rest))
    });
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let (by_taps, scratch) = match direct_input {
        Some(_) => input_grad_weights(g, filters, weight, scratch),
        None => (&[][..], scratch),
    };
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let direct_weight = direct && weight_grad_direct_fits(g, filters, scratch.len());
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = direct;
    for b in 0..batch {
        let xb = &x[b * in_len..][..in_len];
        let dyb = &dy[b * out_len..][..out_len];
        #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_mut))]
        let mut db = d_bias.as_deref_mut();
        let mut dwb = d_weight.as_deref_mut();
        let mut dxb = dx.as_deref_mut().map(|dx| &mut dx[b * in_len..][..in_len]);
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            if let Some(dw) = dwb.take_if(|_| direct_weight) {
                // SAFETY: `weight_grad_direct_fits` holds.
                unsafe { weight_grad_direct(g, filters, 0..patch, xb, dyb, dw.as_mut_ptr(), db.take(), scratch) };
            }
            if let (Some(size), Some(dxb)) = (direct_input, dxb.take_if(|_| direct_input.is_some())) {
                // SAFETY: `input_grad_direct_size` gave `size` for the scratch space
                // `by_taps` came from.
                unsafe { input_grad_direct(g, filters, size, by_taps, dyb, dxb, scratch) };
            }
        }
        if let Some(db) = db {
            add_row_sums(db, dyb, n);
        }
        if let Some(dxb) = dxb.as_deref_mut() {
            dxb.fill(0.0);
        }
        for (start, len) in tiles(n) {
            let dy_tile = MatRef { data: &dyb[start..], rows: filters, cols: len, rs: n, cs: 1 };
            if g.is_pointwise() {
                if let Some(d_weight) = dwb.as_deref_mut() {
                    let cols = MatRef { data: &xb[start..], rows: patch, cols: len, rs: n, cs: 1 };
                    gemm(1.0, dy_tile, cols.t(), 1.0, d_weight, patch);
                }
                if let Some(dxb) = dxb.as_deref_mut() {
                    gemm(1.0, w.t(), dy_tile, 0.0, &mut dxb[start..], n);
                }
                continue;
            }
            if let Some(d_weight) = dwb.as_deref_mut() {
                im2col(g, xb, start, len, scratch);
                gemm(1.0, dy_tile, MatRef::new(&scratch[..patch * len], patch, len).t(), 1.0, d_weight, patch);
            }
            if let Some(dxb) = dxb.as_deref_mut() {
                gemm(1.0, w.t(), dy_tile, 0.0, scratch, len);
                col2im(g, scratch, start, len, dxb);
            }
        }
    }
}

/// Transposed-convolution forward of a batch, PyTorch's `ConvTranspose2d`:
/// `weight[C_in, filters, KH, KW]`, `bias[filters]`, `x[b]` of shape `[C_in, H, W]`,
/// `y[b]` of shape `[filters, OH, OW]`.
///
/// `g` is the geometry of the *convolution* that maps `y`'s shape to `x`'s
/// (`g.channels = filters`, `g.height = OH`, ..., `g.out_height = H`): this forward is
/// that convolution's input gradient, `y = col2im(weight^T x) + bias`.
///
/// # Panics
/// If the geometry is not one ([`ConvGeometry::check`]), `x` is not whole samples,
/// or a slice is too short.
pub fn transpose_forward(
    g: &ConvGeometry,
    in_channels: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let ConvSizes { input: out_len, patch, positions: n } = g.check();
    let filters = g.channels;
    let in_len = product("input", in_channels, n);
    let batch = whole_samples("input", x.len(), in_len);
    assert!(bias.is_none_or(|b| b.len() >= filters), "transposed convolution: fewer biases than the {filters} filters");
    let w = MatRef::new(&weight[..product("weight", in_channels, patch)], in_channels, patch);
    for (xb, yb) in x.chunks_exact(in_len).zip(y[..product("output", batch, out_len)].chunks_exact_mut(out_len)) {
        let plane = out_len / filters;
        match bias {
            Some(bias) => yb.chunks_exact_mut(plane).zip(bias).for_each(|(p, &b)| p.fill(b)),
            None => yb.fill(0.0),
        }
        for (start, len) in tiles(n) {
            let x_tile = MatRef { data: &xb[start..], rows: in_channels, cols: len, rs: n, cs: 1 };
            if g.is_pointwise() {
                gemm(1.0, w.t(), x_tile, 1.0, &mut yb[start..], n);
            } else {
                gemm(1.0, w.t(), x_tile, 0.0, scratch, len);
                col2im(g, scratch, start, len, yb);
            }
        }
    }
}

/// Transposed-convolution backward of a batch (see [`transpose_forward`]): adds
/// `dL/dweight` and `dL/dbias`, overwrites `dx` when given.
#[allow(clippy::too_many_arguments)]
pub fn transpose_backward(
    g: &ConvGeometry,
    in_channels: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    d_weight: &mut [f32],
    mut d_bias: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    let ConvSizes { input: out_len, patch, positions: n } = g.check();
    let filters = g.channels;
    let in_len = product("input", in_channels, n);
    let batch = whole_samples("input", x.len(), in_len);
    let _ = product("output gradient", batch, out_len);
    let w = MatRef::new(&weight[..product("weight", in_channels, patch)], in_channels, patch);
    let d_weight = &mut d_weight[..in_channels * patch];
    for b in 0..batch {
        let xb = &x[b * in_len..][..in_len];
        let dyb = &dy[b * out_len..][..out_len];
        if let Some(db) = d_bias.as_deref_mut() {
            let plane = out_len / filters;
            db.iter_mut().zip(dyb.chunks_exact(plane)).for_each(|(g, p)| *g += p.iter().sum::<f32>());
        }
        let mut dxb = dx.as_deref_mut().map(|dx| &mut dx[b * in_len..][..in_len]);
        for (start, len) in tiles(n) {
            // The column matrix of dy: the gradient with respect to weight^T x.
            let cols = if g.is_pointwise() {
                MatRef { data: &dyb[start..], rows: patch, cols: len, rs: n, cs: 1 }
            } else {
                im2col(g, dyb, start, len, scratch);
                MatRef::new(&scratch[..patch * len], patch, len)
            };
            let x_tile = MatRef { data: &xb[start..], rows: in_channels, cols: len, rs: n, cs: 1 };
            // d_weight[C_in, P] += x[C_in, N] cols^T[N, P]
            gemm(1.0, x_tile, cols.t(), 1.0, d_weight, patch);
            if let Some(dxb) = dxb.as_deref_mut() {
                // dx[C_in, N] = weight[C_in, P] cols[P, N]
                gemm(1.0, w, cols, 0.0, &mut dxb[start..], n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution read from the padded input equals the one through the column
    /// matrix bit for bit: paddings smaller and larger than the kernel, dilation, 1-D,
    /// remainders of filters and positions, and more than `KC` column rows. The direct
    /// form is x86-64's and AArch64's only.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn direct_columns_give_the_same_bits() {
        // (channels, height, width, kernel, padding, dilation, filters)
        let cases = [
            (16, 8, 8, [3, 3], [1, 1], [1, 1], 32),
            (1, 8, 8, [3, 3], [1, 1], [1, 1], 16),
            (3, 16, 16, [5, 5], [2, 2], [1, 1], 7),
            (2, 12, 10, [3, 3], [0, 0], [1, 1], 5),
            (4, 16, 16, [3, 3], [2, 2], [2, 2], 8),
            (2, 4, 4, [3, 3], [3, 3], [1, 1], 3),
            (3, 8, 8, [2, 2], [0, 0], [1, 1], 4),
            (5, 1, 24, [1, 5], [0, 2], [1, 1], 6),
            (32, 8, 8, [3, 3], [1, 1], [1, 1], 9),
            (4, 5, 8, [3, 3], [1, 1], [1, 1], 13),
            (4, 8, 8, [3, 3], [1, 1], [1, 1], 1),
            // Output rows not of whole vectors of 8 (the shifted planes of AVX-512 only),
            // tiles of 1 to 4 vectors of 16 and more than `KC` column rows.
            (3, 7, 7, [3, 3], [1, 1], [1, 1], 5),
            (2, 5, 13, [3, 5], [1, 2], [1, 1], 9),
            (20, 6, 6, [3, 3], [1, 1], [1, 1], 14),
            (40, 4, 4, [3, 3], [1, 1], [1, 1], 7),
            (1, 20, 12, [3, 3], [1, 1], [1, 1], 19),
            (2, 9, 11, [3, 3], [2, 2], [2, 2], 2),
            (2, 7, 9, [3, 3], [0, 0], [1, 1], 6),
        ];
        let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (channels, height, width, kernel, padding, dilation, filters) in cases {
            let out = |size: usize, i: usize| size + 2 * padding[i] - (kernel[i] - 1) * dilation[i];
            let g = ConvGeometry {
                channels,
                height,
                width,
                kernel,
                stride: [1, 1],
                padding,
                dilation,
                out_height: out(height, 0),
                out_width: if kernel == [2, 2] { width } else { out(width, 1) },
            };
            let g = if kernel == [2, 2] { ConvGeometry { out_height: height, ..g } } else { g };
            assert!(
                padded_len(&g).is_some() || !g.out_width.is_multiple_of(8),
                "{g:?}: the direct form does not apply"
            );
            #[cfg(target_arch = "x86_64")]
            assert!(planes_len(&g).is_some(), "{g:?}: the shifted planes do not apply");
            let (patch, n, batch) = (g.patch_len(), g.positions(), 2);
            let x: Vec<f32> = (0..batch * g.input_len()).map(|i| value(i, 7)).collect();
            let weight: Vec<f32> = (0..filters * patch).map(|i| value(i, 11)).collect();
            let bias: Vec<f32> = (0..filters).map(|i| value(i, 3)).collect();
            let mut scratch = vec![f32::NAN; scratch_len(patch, n).max(padded_len(&g).unwrap_or(0))];
            for bias in [Some(&bias[..]), None] {
                let (mut direct, mut columns) = (vec![f32::NAN; batch * filters * n], vec![0.0; batch * filters * n]);
                forward_samples_by(&g, filters, &x, &weight, bias, &mut direct, &mut scratch, true);
                forward_samples_by(&g, filters, &x, &weight, bias, &mut columns, &mut scratch, false);
                let differs = bits(&direct).iter().zip(bits(&columns)).position(|(a, b)| *a != b);
                assert_eq!(differs, None, "{g:?}, {filters} filters: first difference");
                assert!(direct.iter().all(|v| v.is_finite()));
            }
        }
    }

    /// The backward read from the padded input and output gradient equals the one
    /// through the column matrices bit for bit: the geometries of
    /// `direct_columns_give_the_same_bits`, more than one tile of positions (the weight
    /// gradient only), signed zeros and a frozen weight or no input gradient.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn direct_backward_gives_the_same_bits() {
        if GradKernels::get().is_none() {
            eprintln!("no AVX2 (or NEON): the direct backward does not run");
            return;
        }
        // (channels, height, width, kernel, padding, dilation, filters)
        let cases = [
            (16, 16, 16, [3, 3], [1, 1], [1, 1], 32),
            (16, 8, 8, [3, 3], [1, 1], [1, 1], 32),
            (1, 8, 8, [3, 3], [1, 1], [1, 1], 16),
            (3, 16, 16, [5, 5], [2, 2], [1, 1], 7),
            (2, 12, 8, [3, 3], [0, 0], [1, 1], 5),
            (4, 16, 16, [3, 3], [2, 2], [2, 2], 40),
            (2, 4, 4, [3, 3], [3, 3], [1, 1], 3),
            (3, 8, 8, [2, 2], [0, 0], [1, 1], 4),
            (5, 1, 24, [1, 5], [0, 2], [1, 1], 6),
            (13, 8, 8, [3, 3], [1, 1], [1, 1], 33),
            (4, 5, 8, [3, 3], [1, 1], [1, 1], 13),
            (2, 24, 24, [3, 3], [1, 1], [1, 1], 3),
            (2, 6, 10, [3, 3], [1, 1], [1, 1], 2),
        ];
        let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let (mut weights, mut inputs) = (0, 0);
        for (channels, height, width, kernel, padding, dilation, filters) in cases {
            let out = |size: usize, i: usize| size + 2 * padding[i] - (kernel[i] - 1) * dilation[i];
            let g = ConvGeometry {
                channels,
                height,
                width,
                kernel,
                stride: [1, 1],
                padding,
                dilation,
                out_height: if kernel == [2, 2] { height } else { out(height, 0) },
                out_width: if kernel == [2, 2] { width } else { out(width, 1) },
            };
            g.check();
            let (patch, n, batch) = (g.patch_len(), g.positions(), 3);
            let x: Vec<f32> = (0..batch * g.input_len()).map(|i| value(i, 7)).collect();
            // Some zeros of either sign in the weight and the output gradient.
            let weight: Vec<f32> = (0..filters * patch).map(|i| if i % 5 == 0 { -0.0 } else { value(i, 11) }).collect();
            let dy: Vec<f32> = (0..batch * filters * n).map(|i| if i % 7 == 0 { -0.0 } else { value(i, 5) }).collect();
            let room =
                (channels + filters) * (height + 8) * (width + 8) + 64 * n.min(POSITIONS_PER_TILE) + filters * patch;
            let mut scratch = vec![f32::NAN; scratch_len(patch, n).max(room)];
            weights += usize::from(weight_grad_direct_fits(&g, filters, scratch.len()));
            inputs += usize::from(input_grad_direct_size(&g, filters, scratch.len()).is_some());
            for (with_dw, with_dx) in [(true, true), (false, true), (true, false)] {
                let mut run = |direct: bool| {
                    let (mut dw, mut db, mut dx) =
                        (vec![0.25; filters * patch], vec![0.5; filters], vec![f32::NAN; x.len()]);
                    backward_samples_by(
                        &g,
                        filters,
                        &x,
                        &weight,
                        &dy,
                        with_dw.then_some(&mut dw[..]),
                        Some(&mut db),
                        with_dx.then_some(&mut dx[..]),
                        &mut scratch,
                        direct,
                    );
                    (bits(&dw), bits(&db), if with_dx { bits(&dx) } else { Vec::new() })
                };
                let (direct, columns) = (run(true), run(false));
                assert!(direct == columns, "{g:?}, {filters} filters, dw {with_dw}, dx {with_dx}");
            }
        }
        assert!(weights == cases.len() && inputs == 10, "direct forms taken: {weights} weight, {inputs} input");
    }

    /// The bias gradient's interleaved row sums are `Iterator::sum`'s, bit for bit:
    /// rows of negative zeros, remainders of fewer than eight rows.
    #[test]
    fn row_sums_are_sequential_sums() {
        for (rows, n) in [(32, 256), (13, 7), (3, 64), (8, 1)] {
            let dy: Vec<f32> = (0..rows * n)
                .map(|i| if i / n == 1 { -0.0 } else { ((i * 37 + 5) % 101) as f32 * 0.173 - 8.0 })
                .collect();
            let mut db: Vec<f32> = (0..rows).map(|f| if f == 1 { -0.0 } else { f as f32 * 0.3 }).collect();
            let expected: Vec<u32> =
                db.iter().zip(dy.chunks_exact(n)).map(|(d, row)| (d + row.iter().sum::<f32>()).to_bits()).collect();
            add_row_sums(&mut db, &dy, n);
            assert_eq!(db.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), expected, "{rows} x {n}");
        }
    }

    /// Forward and backward split between threads give the one-thread results bit for
    /// bit.
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    #[test]
    fn threads_give_the_same_bits() {
        if crate::kernels::gemm::threads() < 2 || !crate::kernels::isa::isa().avx2() {
            eprintln!("one thread (or no AVX2): nothing to compare");
            return;
        }
        // Stride 1: the weight gradient split by column-matrix rows (direct); stride 2:
        // by filters (through the column matrix).
        for (stride, out, batch) in [(1, 8, 9), (2, 4, 40)] {
            let g = ConvGeometry {
                channels: 16,
                height: 8,
                width: 8,
                kernel: [3, 3],
                stride: [stride, stride],
                padding: [1, 1],
                dilation: [1, 1],
                out_height: out,
                out_width: out,
            };
            let filters = 30;
            let (patch, n) = (g.patch_len(), g.positions());
            assert!(batch * filters * patch * n >= PARALLEL_MIN_MACS);
            let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
            let x: Vec<f32> = (0..batch * g.input_len()).map(|i| value(i, 7)).collect();
            let weight: Vec<f32> = (0..filters * patch).map(|i| value(i, 11)).collect();
            let bias: Vec<f32> = (0..filters).map(|i| value(i, 3)).collect();
            let dy: Vec<f32> = (0..batch * filters * n).map(|i| value(i, 5)).collect();
            let mut scratch = vec![0.0; batch * scratch_len(patch, n)];
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();

            let (mut y, mut y_one) = (vec![0.0; batch * filters * n], vec![0.0; batch * filters * n]);
            forward(&g, filters, &x, &weight, Some(&bias), &mut y, &mut scratch);
            forward_samples(&g, filters, &x, &weight, Some(&bias), &mut y_one, &mut scratch);
            assert_eq!(bits(&y), bits(&y_one));

            // With the input gradient the threads share the weight gradient and the
            // input gradient; without it they split the weight gradient alone.
            let run = |threaded: bool, with_dx: bool, scratch: &mut [f32]| {
                let (mut dw, mut db, mut dx) = (vec![0.25; filters * patch], vec![0.5; filters], vec![0.0; x.len()]);
                let f = if threaded { backward } else { backward_samples };
                let dx_out = if with_dx { Some(&mut dx[..]) } else { None };
                f(&g, filters, &x, &weight, &dy, Some(&mut dw), Some(&mut db), dx_out, scratch);
                (bits(&dw), bits(&db), bits(&dx))
            };
            for with_dx in [true, false] {
                let (threaded, one) = (run(true, with_dx, &mut scratch), run(false, with_dx, &mut scratch));
                assert_eq!(threaded, one, "stride {stride}, input gradient {with_dx}");
            }
        }
    }

    /// One sample's forward split between threads by filters gives the one-thread
    /// results bit for bit: the digits CNN's second convolution, an odd number of
    /// filters, more than 256 positions (the padded copy rather than the planes with
    /// AVX-512), a dilated kernel, and a scratch of one part's size or of every part's.
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    #[test]
    fn one_sample_split_by_filters_gives_the_same_bits() {
        if crate::kernels::gemm::threads() < 2 || !crate::kernels::isa::isa().avx2() {
            eprintln!("one thread (or no AVX2): nothing to compare");
            return;
        }
        let geometry = |channels, size: usize, padding, dilation, out| ConvGeometry {
            channels,
            height: size,
            width: size,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [padding, padding],
            dilation: [dilation, dilation],
            out_height: out,
            out_width: out,
        };
        let mut split = 0;
        for (g, filters) in [
            (geometry(16, 8, 1, 1, 8), 32),
            (geometry(16, 8, 1, 1, 8), 33),
            (geometry(8, 24, 1, 1, 24), 8),
            (geometry(12, 12, 2, 2, 12), 20),
            (geometry(16, 10, 0, 1, 8), 64),
        ] {
            let (patch, n) = (g.patch_len(), g.positions());
            assert!(filters * patch * n >= FILTERS_PARALLEL_MIN_MACS, "{g:?}");
            let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
            let x: Vec<f32> = (0..g.input_len()).map(|i| value(i, 7)).collect();
            let weight: Vec<f32> = (0..filters * patch).map(|i| value(i, 11)).collect();
            let bias: Vec<f32> = (0..filters).map(|i| value(i, 3)).collect();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let tile = forward_scratch(&g, filters);
            let mut one = vec![0.0; filters * n];
            forward_samples(&g, filters, &x, &weight, Some(&bias), &mut one, &mut vec![0.0; tile]);
            for scratch_len in [tile, 4 * tile] {
                let mut scratch = vec![0.0; scratch_len];
                let mut y = vec![f32::NAN; filters * n];
                if forward_one_by_filters(&g, filters, &x, &weight, Some(&bias), &mut y, &mut scratch) {
                    split += 1;
                    assert_eq!(bits(&y), bits(&one), "{g:?}, {filters} filters, scratch {scratch_len}");
                }
                let mut y = vec![f32::NAN; filters * n];
                forward(&g, filters, &x, &weight, Some(&bias), &mut y, &mut scratch);
                assert_eq!(bits(&y), bits(&one), "{g:?}, {filters} filters, scratch {scratch_len}, forward");
            }
        }
        assert!(split >= 8, "split {split} times");
    }

    /// The weight gradient's samples shared between threads ([`WeightSamples`]): those
    /// taken from the end into buffers, then those from the front with the buffers
    /// added in order, give the one-thread bits, however many are taken from the end,
    /// with and without the bias gradient (one thread takes both sides, in turn).
    #[test]
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    fn weight_samples_from_the_end_give_the_same_bits() {
        if GradKernels::get().is_none() {
            return;
        }
        let g = ConvGeometry {
            channels: 16,
            height: 8,
            width: 8,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            out_height: 8,
            out_width: 8,
        };
        let (filters, batch) = (30, 9);
        let (patch, n) = (g.patch_len(), g.positions());
        let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
        let x: Vec<f32> = (0..batch * g.input_len()).map(|i| value(i, 7)).collect();
        let weight: Vec<f32> = (0..filters * patch).map(|i| value(i, 11)).collect();
        // Zeros of both signs among the output gradient's values.
        let dy: Vec<f32> = (0..batch * filters * n).map(|i| if i % 97 == 0 { -0.0 } else { value(i, 5) }).collect();
        let tile = scratch_len(patch, n);
        let stride = filters * patch + filters;
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for with_bias in [true, false] {
            let (mut dw_one, mut db_one) = (vec![0.25; filters * patch], vec![0.5; filters]);
            let mut scratch = vec![0.0; batch * tile];
            let db = with_bias.then_some(&mut db_one[..]);
            backward_samples(&g, filters, &x, &weight, &dy, Some(&mut dw_one), db, None, &mut scratch);
            for taken in [1, 4, batch - 1] {
                let (mut dw, mut db) = (vec![0.25; filters * patch], vec![0.5; filters]);
                let split = BackwardSplit::new(&g, filters, batch, 2, tile, true);
                assert!(split.weight_items == 1 && split.by_columns);
                let samples = WeightSamples::new(batch, filters, patch, 2 * tile, taken * stride + stride - 1);
                let shared = BackwardShared {
                    g: &g,
                    filters,
                    x: &x,
                    weight: &weight,
                    dy: &dy,
                    split,
                    tile,
                    d_weight: Output(dw.as_mut_ptr()),
                    d_bias: with_bias.then_some(Output(db.as_mut_ptr())),
                    dx: None,
                    scratch: Output(scratch.as_mut_ptr()),
                    samples,
                };
                let samples = shared.samples.as_ref().expect("room for the buffers");
                // SAFETY: one thread, with `2 tile` floats of scratch for its two parts
                // and the buffers after them; the weight gradient's piece is run once.
                unsafe {
                    shared.weight_back(1, samples);
                    assert_eq!(samples.done.load(core::sync::atomic::Ordering::Relaxed), taken);
                    shared.run(0, 0, &mut false);
                }
                assert_eq!(bits(&dw), bits(&dw_one), "{taken} from the end, bias {with_bias}");
                if with_bias {
                    assert_eq!(bits(&db), bits(&db_one), "{taken} from the end");
                }
            }
        }
    }

    /// The shifted-plane form builds exactly the column matrix of the run-by-run form,
    /// and scatters it back with the same sums, for every stride-1 geometry it covers.
    #[test]
    fn shifted_plane_form_equals_runs() {
        let mut checked = 0;
        for (h, w) in [(1usize, 5usize), (3, 3), (4, 7), (8, 8), (3, 13), (2, 33), (3, 16), (5, 24)] {
            for kernel in [[1, 1], [1, 3], [3, 3], [2, 4], [5, 5], [3, 9]] {
                for padding in [[0, 0], [1, 1], [0, 2], [2, 1], [4, 4]] {
                    let (oh, ow) = ((h + 2 * padding[0]).checked_sub(kernel[0] - 1), w);
                    let Some(oh) = oh.filter(|&oh| oh > 0) else { continue };
                    // Output rows as wide as the input: the padding after is the padding
                    // before or one more (`ConvGeometry::check`).
                    let (before, total) = (padding[1], kernel[1] - 1);
                    if total != 2 * before && total != 2 * before + 1 {
                        continue;
                    }
                    let g = ConvGeometry {
                        channels: 2,
                        height: h,
                        width: w,
                        kernel,
                        stride: [1, 1],
                        padding,
                        dilation: [1, 1],
                        out_height: oh,
                        out_width: ow,
                    };
                    let x: Vec<f32> = (0..g.input_len()).map(|v| v as f32 * 0.37 - 1.5).collect();
                    for (start, len) in [(0, oh * ow), (ow, (oh - 1) * ow), (0, ow)] {
                        if len == 0 {
                            continue;
                        }
                        assert!(g.is_shifted_plane(start, len));
                        let patch = g.patch_len();
                        let (mut fast, mut runs) = (vec![9.0; patch * len], vec![7.0; patch * len]);
                        im2col(&g, &x, start, len, &mut fast);
                        im2col_runs(&g, &x, start, len, &mut runs);
                        assert_eq!(fast, runs, "im2col {g:?} {start} {len}");
                        let d: Vec<f32> = (0..patch * len).map(|v| (v % 13) as f32 * 0.1 + 0.01).collect();
                        let (mut fast, mut runs) = (vec![0.5; g.input_len()], vec![0.5; g.input_len()]);
                        col2im(&g, &d, start, len, &mut fast);
                        col2im_runs(&g, &d, start, len, &mut runs);
                        assert_eq!(fast, runs, "col2im {g:?} {start} {len}");
                        fast.fill(0.5);
                        col2im_portable(&g, &d, start, len, &mut fast);
                        assert_eq!(fast, runs, "col2im (portable) {g:?} {start} {len}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }
}
