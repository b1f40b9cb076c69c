//! Pooling and resampling kernels over planes: a batch of `[C, H, W]` samples is
//! `batch * C` independent `H x W` planes, and every kernel here works plane by plane
//! (a 1-D signal `[C, L]` is the case `H = 1`).
//!
//! Window `(oy, ox)` covers input rows `oy * stride[0] - padding[0] ..` (`size[0]` of
//! them) and columns likewise, clipped to the input: max pooling ignores the padding
//! (it is `-inf`), average pooling counts it as zeros and always divides by
//! `size[0] * size[1]` (PyTorch's `count_include_pad=True`). Nothing here allocates.

/// The geometry of a pooling of one plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Input height (1 for a 1-D pooling).
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Window height and width.
    pub size: [usize; 2],
    /// Vertical and horizontal stride (at least 1).
    pub stride: [usize; 2],
    /// Implicit padding on both sides of each axis.
    pub padding: [usize; 2],
    /// Output height.
    pub out_height: usize,
    /// Output width.
    pub out_width: usize,
}

impl PoolGeometry {
    /// The input rows and columns of window `(oy, ox)`, clipped to the input.
    #[inline(always)]
    fn window(&self, oy: usize, ox: usize) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
        let clip = |o: usize, axis: usize, size: usize| {
            let start = (o * self.stride[axis]) as isize - self.padding[axis] as isize;
            let end = (start + self.size[axis] as isize).min(size as isize);
            (start.max(0) as usize)..(end.max(0) as usize)
        };
        (clip(oy, 0, self.height), clip(ox, 1, self.width))
    }

    /// Windows of 2x2 with stride 2 and no padding: every window lies inside the input.
    fn is_tiled_2x2(&self) -> bool {
        self.size == [2, 2]
            && self.stride == [2, 2]
            && self.padding == [0, 0]
            && 2 * self.out_height <= self.height
            && 2 * self.out_width <= self.width
    }

    fn planes(&self, x: &[f32]) -> usize {
        x.len() / (self.height * self.width)
    }
}

/// The index (in the plane) of the first maximum of window `(oy, ox)`; a NaN counts as
/// a maximum (the last one wins), as in PyTorch.
#[inline(always)]
fn argmax(g: &PoolGeometry, plane: &[f32], oy: usize, ox: usize) -> usize {
    let (rows, cols) = g.window(oy, ox);
    let mut best = rows.start * g.width + cols.start;
    let mut max = f32::NEG_INFINITY;
    for iy in rows {
        for ix in cols.clone() {
            let at = iy * g.width + ix;
            let v = plane[at];
            if v > max || v.is_nan() {
                (best, max) = (at, v);
            }
        }
    }
    best
}

/// [`argmax`] of a 2x2 window whose top-left input is `at`, fully inside the plane
/// (the same comparisons in the same order).
#[inline(always)]
fn argmax_2x2(plane: &[f32], at: usize, width: usize) -> usize {
    let (mut best, mut max) = (at, plane[at]);
    for at in [at + 1, at + width, at + width + 1] {
        let v = plane[at];
        // Without branches: which element wins depends on the data.
        let take = (v > max) | v.is_nan();
        best = if take { at } else { best };
        max = if take { v } else { max };
    }
    best
}

/// Max pooling: `y[p, oy, ox] = max over the window of x[p]`.
pub fn max_forward(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
    let (in_len, out_len) = (g.height * g.width, g.out_height * g.out_width);
    if g.is_tiled_2x2() {
        for (xp, yp) in x.chunks_exact(in_len).zip(y[..g.planes(x) * out_len].chunks_exact_mut(out_len)) {
            for oy in 0..g.out_height {
                for ox in 0..g.out_width {
                    yp[oy * g.out_width + ox] = xp[argmax_2x2(xp, 2 * oy * g.width + 2 * ox, g.width)];
                }
            }
        }
        return;
    }
    for (xp, yp) in x.chunks_exact(in_len).zip(y[..g.planes(x) * out_len].chunks_exact_mut(out_len)) {
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                yp[oy * g.out_width + ox] = xp[argmax(g, xp, oy, ox)];
            }
        }
    }
}

/// Backward of [`max_forward`]: `dx` is overwritten; each output's gradient goes to the
/// first maximum of its window (found again from `x`, so no indices are kept).
pub fn max_backward(g: &PoolGeometry, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (in_len, out_len) = (g.height * g.width, g.out_height * g.out_width);
    let planes = g.planes(x);
    let dx = &mut dx[..planes * in_len];
    dx.fill(0.0);
    let tiled = g.is_tiled_2x2();
    for ((xp, dyp), dxp) in x.chunks_exact(in_len).zip(dy.chunks_exact(out_len)).zip(dx.chunks_exact_mut(in_len)) {
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                let at = if tiled { argmax_2x2(xp, 2 * oy * g.width + 2 * ox, g.width) } else { argmax(g, xp, oy, ox) };
                dxp[at] += dyp[oy * g.out_width + ox];
            }
        }
    }
}

/// Average pooling: `y[p, oy, ox] = sum over the window of x[p] / (size[0] * size[1])`.
pub fn avg_forward(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
    let (in_len, out_len) = (g.height * g.width, g.out_height * g.out_width);
    let scale = 1.0 / (g.size[0] * g.size[1]) as f32;
    for (xp, yp) in x.chunks_exact(in_len).zip(y[..g.planes(x) * out_len].chunks_exact_mut(out_len)) {
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                let (rows, cols) = g.window(oy, ox);
                let mut sum = 0.0;
                for iy in rows {
                    sum += xp[iy * g.width..][cols.clone()].iter().sum::<f32>();
                }
                yp[oy * g.out_width + ox] = sum * scale;
            }
        }
    }
}

/// Backward of [`avg_forward`]: `dx` (of `planes * H * W` floats) is overwritten.
pub fn avg_backward(g: &PoolGeometry, dy: &[f32], dx: &mut [f32]) {
    let (in_len, out_len) = (g.height * g.width, g.out_height * g.out_width);
    let planes = dy.len() / out_len;
    let scale = 1.0 / (g.size[0] * g.size[1]) as f32;
    let dx = &mut dx[..planes * in_len];
    dx.fill(0.0);
    for (dyp, dxp) in dy.chunks_exact(out_len).zip(dx.chunks_exact_mut(in_len)) {
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                let (rows, cols) = g.window(oy, ox);
                let d = dyp[oy * g.out_width + ox] * scale;
                for iy in rows {
                    dxp[iy * g.width..][cols.clone()].iter_mut().for_each(|v| *v += d);
                }
            }
        }
    }
}

/// Global average pooling: `y[p] = mean(x[p])` over planes of `plane` floats.
pub fn global_avg_forward(plane: usize, x: &[f32], y: &mut [f32]) {
    let scale = 1.0 / plane as f32;
    for (xp, y) in x.chunks_exact(plane).zip(y.iter_mut()) {
        *y = xp.iter().sum::<f32>() * scale;
    }
}

/// Backward of [`global_avg_forward`]: `dx[p, i] = dy[p] / plane` (overwritten).
pub fn global_avg_backward(plane: usize, dy: &[f32], dx: &mut [f32]) {
    let scale = 1.0 / plane as f32;
    for (dxp, &d) in dx.chunks_exact_mut(plane).zip(dy) {
        dxp.fill(d * scale);
    }
}

/// The index of the first maximum of a plane (a NaN counts as a maximum, as in
/// [`argmax`]).
fn plane_argmax(plane: &[f32]) -> usize {
    let (mut best, mut max) = (0, f32::NEG_INFINITY);
    for (i, &v) in plane.iter().enumerate() {
        if v > max || v.is_nan() {
            (best, max) = (i, v);
        }
    }
    best
}

/// Global max pooling: `y[p] = max(x[p])` over planes of `plane` floats.
pub fn global_max_forward(plane: usize, x: &[f32], y: &mut [f32]) {
    for (xp, y) in x.chunks_exact(plane).zip(y.iter_mut()) {
        *y = xp[plane_argmax(xp)];
    }
}

/// Backward of [`global_max_forward`]: the gradient goes to the first maximum of each
/// plane; `dx` is overwritten.
pub fn global_max_backward(plane: usize, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((xp, dxp), &d) in x.chunks_exact(plane).zip(dx.chunks_exact_mut(plane)).zip(dy) {
        dxp.fill(0.0);
        dxp[plane_argmax(xp)] = d;
    }
}

/// Nearest-neighbour upsampling by integer factors:
/// `y[p, oy, ox] = x[p, oy / scale[0], ox / scale[1]]` for planes of `height x width`.
pub fn upsample_nearest_forward(height: usize, width: usize, scale: [usize; 2], x: &[f32], y: &mut [f32]) {
    let (ow, in_len) = (width * scale[1], height * width);
    let out_len = in_len * scale[0] * scale[1];
    for (xp, yp) in x.chunks_exact(in_len).zip(y.chunks_exact_mut(out_len)) {
        for (x_row, rows) in xp.chunks_exact(width).zip(yp.chunks_exact_mut(scale[0] * ow)) {
            let (first, rest) = rows.split_at_mut(ow);
            for (ox, v) in first.iter_mut().enumerate() {
                *v = x_row[ox / scale[1]];
            }
            // The other `scale[0] - 1` output rows of this input row are copies.
            for row in rest.chunks_exact_mut(ow) {
                row.copy_from_slice(first);
            }
        }
    }
}

/// Backward of [`upsample_nearest_forward`]: each input gradient is the sum of the
/// `scale[0] * scale[1]` output gradients it was copied to; `dx` is overwritten.
pub fn upsample_nearest_backward(height: usize, width: usize, scale: [usize; 2], dy: &[f32], dx: &mut [f32]) {
    let (ow, in_len) = (width * scale[1], height * width);
    let out_len = in_len * scale[0] * scale[1];
    for (dyp, dxp) in dy.chunks_exact(out_len).zip(dx.chunks_exact_mut(in_len)) {
        dxp.fill(0.0);
        for (oy, dy_row) in dyp.chunks_exact(ow).enumerate() {
            let dx_row = &mut dxp[(oy / scale[0]) * width..][..width];
            for (ox, &d) in dy_row.iter().enumerate() {
                dx_row[ox / scale[1]] += d;
            }
        }
    }
}
