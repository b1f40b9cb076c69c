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
//!
//! The files: `columns` (the column matrix, `im2col` and `col2im`), `forward_pass`
//! (the forward through the column matrix, the padded copy or the shifted planes, and
//! its split between threads), `padded` (the zero-padded copies the direct forms read),
//! `grad_direct` (the backward's products without the column matrices),
//! `backward_pass` (the backward and its split between threads) and `transpose` (the
//! transposed convolution).
use super::gemm::{gemm, MatRef};
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
use super::parallel::Output;

mod backward_pass;
mod columns;
mod forward_pass;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod grad_direct;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod padded;
mod transpose;

pub use backward_pass::*;
pub use columns::*;
pub use forward_pass::*;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use grad_direct::*;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use padded::*;
pub use transpose::*;

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

/// The largest padded input (64 KiB) that [`forward`] reads in place of the column
/// matrix, with AVX2 or NEON, stride 1 and output rows of whole vectors of 8: it stays in L1/L2
/// while every filter reads it; larger images are faster through the packed columns.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", feature = "internals", test))]
pub const DIRECT_MAX_FLOATS: usize = 16 * 1024;

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

/// Convolutions of a batch with at least this many multiply-adds are split between
/// [`super::gemm::threads`] threads (the `threading` feature): by samples for the
/// forward and the input gradient, by column-matrix rows (without the column matrix) or
/// by filters for the weight gradient, which the backward computes on other threads
/// than the input gradient, so that every value is computed by the same operations as
/// on one thread.
#[cfg(any(feature = "threading", feature = "internals"))]
pub const PARALLEL_MIN_MACS: usize = 1 << 21;
