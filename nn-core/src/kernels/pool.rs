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
    pub(crate) fn window(&self, oy: usize, ox: usize) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
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

    /// Windows of 2x2 with stride 2 that tile the input exactly (even height and
    /// width) and output rows of a multiple of 4: the form of [`halving`].
    #[cfg(target_arch = "x86_64")]
    fn is_halving_2x2(&self) -> bool {
        self.is_tiled_2x2()
            && self.height == 2 * self.out_height
            && self.width == 2 * self.out_width
            && self.out_width.is_multiple_of(4)
    }

    fn planes(&self, x: &[f32]) -> usize {
        x.len() / self.lens().0
    }

    /// Floats of an input plane and of an output plane.
    ///
    /// # Panics
    /// If a size is 0 or a plane has more floats than a `usize` counts.
    fn lens(&self) -> (usize, usize) {
        match (self.height.checked_mul(self.width), self.out_height.checked_mul(self.out_width)) {
            (Some(input), Some(output)) if input > 0 && output > 0 => (input, output),
            _ => panic!("pooling {self:?}: a plane is empty or has more floats than a usize counts"),
        }
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
    #[cfg(target_arch = "x86_64")]
    if halving_forward::<false>(g, x, y) {
        return;
    }
    let (in_len, out_len) = g.lens();
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

/// ReLU as a ReLU layer computes it (`v > 0 ? v : 0`: zero for negative zero and NaN).
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

/// The largest ReLU of window `(oy, ox)`'s inputs (none NaN, none a negative zero, so
/// the value [`argmax`] finds over them, whichever of equal ones it takes).
#[inline(always)]
fn max_relu(g: &PoolGeometry, plane: &[f32], oy: usize, ox: usize) -> f32 {
    let (rows, cols) = g.window(oy, ox);
    let mut max = relu(plane[rows.start * g.width + cols.start]);
    for iy in rows {
        for ix in cols.clone() {
            let v = relu(plane[iy * g.width + ix]);
            if v > max {
                max = v;
            }
        }
    }
    max
}

/// Max pooling of the inputs through a ReLU: `y[p, oy, ox] = max over the window of
/// relu(x[p])`, the values of a ReLU layer followed by [`max_forward`] (`relu(v)` is
/// `v > 0 ? v : 0`), in one pass that writes no activated copy of `x`.
pub fn max_relu_forward(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if halving_forward::<true>(g, x, y) {
        return;
    }
    let (in_len, out_len) = g.lens();
    for (xp, yp) in x.chunks_exact(in_len).zip(y[..g.planes(x) * out_len].chunks_exact_mut(out_len)) {
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                yp[oy * g.out_width + ox] = max_relu(g, xp, oy, ox);
            }
        }
    }
}

/// [`max_forward`] (`RELU`: [`max_relu_forward`]) by its AVX-512 form, or its AVX2 one
/// on a CPU without AVX-512, where the windows halve the planes and the CPU has AVX2:
/// whether it ran.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn halving_forward<const RELU: bool>(g: &PoolGeometry, x: &[f32], y: &mut [f32]) -> bool {
    let isa = super::isa::isa();
    if !(g.is_halving_2x2() && isa.avx2()) {
        return false;
    }
    let (in_len, out_len) = g.lens();
    let planes = g.planes(x);
    let (x, y) = (&x[..planes * in_len], &mut y[..planes * out_len]);
    // SAFETY: the CPU has AVX2, and AVX-512 F where `avx512()`; the slices hold
    // `planes` input and output planes.
    unsafe {
        if isa.avx512() {
            halving::max_forward_avx512::<RELU>(g.out_width, x, y)
        } else {
            halving::max_forward::<RELU>(g.out_width, x, y)
        }
    }
    true
}

/// Backward of [`max_forward`]: `dx` is overwritten; each output's gradient goes to the
/// first maximum of its window (found again from `x`, so no indices are kept).
pub fn max_backward(g: &PoolGeometry, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (in_len, out_len) = g.lens();
    let planes = g.planes(x);
    let dx = &mut dx[..planes * in_len];
    #[cfg(target_arch = "x86_64")]
    if g.is_halving_2x2() && super::isa::isa().avx2() {
        // SAFETY: the CPU has AVX2; the slices hold `planes` input and output planes.
        return unsafe { halving::max_backward(g.out_width, &x[..planes * in_len], &dy[..planes * out_len], dx) };
    }
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

/// 2x2 max pooling with stride 2 over planes it tiles exactly, eight outputs at a
/// time with AVX2: the same comparisons, in the same order, as [`argmax_2x2`], so the
/// same results bit for bit.
///
/// With `H = 2 OH` and `W = 2 OW`, the planes of a batch are one tall plane whose
/// output row `r` reads input rows `2r` and `2r + 1`: output `q` (of all planes) has
/// its window's top-left input at `2 W (q / OW) + 2 (q % OW)`. With `OW` a multiple of
/// 4, every group of 4 outputs lies in one output row and reads 8 consecutive floats
/// of each of its two input rows.
#[cfg(target_arch = "x86_64")]
mod halving {
    use core::arch::x86_64::*;

    /// The top-left input of output `q`'s window.
    #[inline(always)]
    fn top(q: usize, ow: usize) -> usize {
        4 * ow * (q / ow) + 2 * (q % ow)
    }

    /// The even and the odd elements of `u` then `v` (8 floats each), in order.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn split(u: __m256, v: __m256) -> (__m256, __m256) {
        let even = _mm256_shuffle_ps::<0x88>(u, v);
        let odd = _mm256_shuffle_ps::<0xDD>(u, v);
        let order = |s: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(s)));
        (order(even), order(odd))
    }

    /// The inverse of [`split`].
    #[inline]
    #[target_feature(enable = "avx2")]
    fn merge(even: __m256, odd: __m256) -> (__m256, __m256) {
        let order = |s: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(s)));
        let (even, odd) = (order(even), order(odd));
        (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd))
    }

    /// The maximum of the windows of outputs `q..q + 8` and which of the four inputs
    /// holds it (0 top left, 1 top right, 2 bottom left, 3 bottom right, as floats).
    ///
    /// # Safety
    /// AVX2; the windows lie inside `x`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn windows(x: &[f32], q: usize, ow: usize) -> (__m256, __m256) {
        // SAFETY: the caller's contract.
        unsafe { windows_at(x, top(q, ow), top(q + 4, ow), 2 * ow) }
    }

    /// [`windows`] for the two groups of 4 outputs whose windows start at `t0` and at
    /// `t1` in input rows of `w` floats.
    ///
    /// # Safety
    /// AVX2; the windows lie inside `x`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn windows_at(x: &[f32], t0: usize, t1: usize, w: usize) -> (__m256, __m256) {
        debug_assert!(t1 + w + 8 <= x.len());
        // SAFETY: both windows' rows (8 floats from `t` and from `t + w`) are in `x`.
        let load = |at: usize| unsafe { _mm256_loadu_ps(x.as_ptr().add(at)) };
        let (a, b) = split(load(t0), load(t1));
        let (c, d) = split(load(t0 + w), load(t1 + w));
        let (mut max, mut which) = (a, _mm256_setzero_ps());
        for (v, k) in [(b, 1.0), (c, 2.0), (d, 3.0)] {
            let take = _mm256_or_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, max), _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            max = _mm256_blendv_ps(max, v, take);
            which = _mm256_blendv_ps(which, _mm256_set1_ps(k), take);
        }
        (max, which)
    }

    /// The top-left input of each group of 4 outputs in turn, from output 0
    /// (`top(q, ow)`, `q` a multiple of 4, without a division).
    fn group_tops(ow: usize) -> impl FnMut() -> usize {
        let (mut at, mut column) = (0, 0);
        move || {
            let here = at;
            (at, column) = if column + 4 == ow { (at + 2 * ow + 8, 0) } else { (at + 8, column + 4) };
            here
        }
    }

    /// The four inputs of the windows of sixteen outputs, four groups of 4 whose windows
    /// start at `tops` in input rows of `w` floats: the top-left, top-right, bottom-left
    /// and bottom-right input of every window, in the order of [`super::argmax_2x2`]
    /// (two loads of eight per row of four groups, their even and odd elements by one
    /// permutation each).
    ///
    /// # Safety
    /// AVX-512 F and AVX2; the windows lie inside `x`.
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn windows16_at(x: &[f32], tops: [usize; 4], w: usize) -> [__m512; 4] {
        debug_assert!(tops[3] + w + 8 <= x.len());
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        // SAFETY: both rows of every window (8 floats from `t` and from `t + w`) are in
        // `x` (the caller's contract).
        let pair = |first: usize, second: usize| unsafe {
            let low = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(x.as_ptr().add(first))));
            let high = _mm256_castps_pd(_mm256_loadu_ps(x.as_ptr().add(second)));
            _mm512_castpd_ps(_mm512_insertf64x4::<1>(low, high))
        };
        let (t0, t1) = (pair(tops[0], tops[1]), pair(tops[2], tops[3]));
        let (b0, b1) = (pair(tops[0] + w, tops[1] + w), pair(tops[2] + w, tops[3] + w));
        [
            _mm512_permutex2var_ps(t0, even, t1),
            _mm512_permutex2var_ps(t0, odd, t1),
            _mm512_permutex2var_ps(b0, even, b1),
            _mm512_permutex2var_ps(b0, odd, b1),
        ]
    }

    /// The index of the input holding the maximum of output `q`'s window.
    #[inline(always)]
    fn argmax(x: &[f32], q: usize, ow: usize) -> usize {
        super::argmax_2x2(x, top(q, ow), 2 * ow)
    }

    /// The output of window `q` alone: its maximum, as [`super::argmax_2x2`] finds it;
    /// with `RELU`, the largest ReLU of its four inputs (from zero, in their order).
    #[inline(always)]
    fn one<const RELU: bool>(x: &[f32], q: usize, ow: usize) -> f32 {
        if RELU {
            let (t, w) = (top(q, ow), 2 * ow);
            let window = [x[t], x[t + 1], x[t + w], x[t + w + 1]];
            window.into_iter().map(super::relu).fold(0.0, |max, v| if v > max { v } else { max })
        } else {
            x[argmax(x, q, ow)]
        }
    }

    /// The outputs of the two groups of 4 windows that start at `t0` and at `t1` in
    /// input rows of `w` floats: their maxima (as [`windows_at`]); with `RELU`, each
    /// window's four inputs by `vmaxps` onto zero, which takes an input above the
    /// maximum so far and passes over a NaN (whose ReLU is zero) and a negative zero.
    ///
    /// # Safety
    /// AVX2; the windows lie inside `x`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn outputs8<const RELU: bool>(x: &[f32], t0: usize, t1: usize, w: usize) -> __m256 {
        if !RELU {
            // SAFETY: the caller's contract.
            return unsafe { windows_at(x, t0, t1, w).0 };
        }
        debug_assert!(t1 + w + 8 <= x.len());
        // SAFETY: both windows' rows (8 floats from `t` and from `t + w`) are in `x`.
        let load = |at: usize| unsafe { _mm256_loadu_ps(x.as_ptr().add(at)) };
        let (a, b) = split(load(t0), load(t1));
        let (c, d) = split(load(t0 + w), load(t1 + w));
        _mm256_max_ps(d, _mm256_max_ps(c, _mm256_max_ps(b, _mm256_max_ps(a, _mm256_setzero_ps()))))
    }

    /// The outputs of sixteen windows from their four inputs in the order of
    /// [`super::argmax_2x2`] ([`windows16_at`]): their maxima; with `RELU`, the inputs
    /// by `vmaxps` onto zero, as in [`outputs8`].
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    fn outputs16<const RELU: bool>([a, b, c, d]: [__m512; 4]) -> __m512 {
        if RELU {
            return _mm512_max_ps(d, _mm512_max_ps(c, _mm512_max_ps(b, _mm512_max_ps(a, _mm512_setzero_ps()))));
        }
        // `argmax_2x2`'s steps without a mask each: `vmaxps` takes its first operand
        // where it is above the second, else the second (as a step, which keeps a NaN
        // maximum and the first of equal values), but a step takes a NaN `v`: where
        // `b`, `c` or `d` is NaN, the window's maximum is a NaN, their sum.
        let max = _mm512_max_ps(d, _mm512_max_ps(c, _mm512_max_ps(b, a)));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(b, c) | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(d, d);
        let some_nan = _mm512_add_ps(_mm512_add_ps(b, c), d);
        _mm512_mask_mov_ps(max, nan, some_nan)
    }

    /// Max pooling forward (see the module), with `RELU` of the inputs through a ReLU
    /// ([`super::max_relu_forward`]), eight outputs at a time ([`outputs8`]); the last
    /// outputs one at a time.
    ///
    /// # Safety
    /// AVX2.
    ///
    /// # Panics
    /// Unless `x` holds `4 y.len()` floats and `y` whole rows of `ow`, a multiple of 4.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max_forward<const RELU: bool>(ow: usize, x: &[f32], y: &mut [f32]) {
        assert!(x.len() / 4 == y.len() && x.len().is_multiple_of(4) && ow.is_multiple_of(4) && ow > 0);
        assert!(y.len().is_multiple_of(ow), "pooling: a partial output row");
        let w = 2 * ow;
        let mut next = group_tops(ow);
        let mut q = 0;
        while q + 8 <= y.len() {
            let (t0, t1) = (next(), next());
            debug_assert!(t0 == top(q, ow) && t1 == top(q + 4, ow));
            // SAFETY: outputs `q..q + 8` exist; `y` is whole rows of `ow`, so the rows
            // of output `q + 7` end at `4 ow (row + 1) <= x.len()`: their windows exist.
            unsafe { _mm256_storeu_ps(y.as_mut_ptr().add(q), outputs8::<RELU>(x, t0, t1, w)) };
            q += 8;
        }
        for (q, y) in y.iter_mut().enumerate().skip(q) {
            *y = one::<RELU>(x, q, ow);
        }
    }

    /// [`max_forward`] with AVX-512, sixteen outputs at a time: the top rows of four
    /// groups of 4 outputs in two registers (two loads of eight each), their even and
    /// odd elements by one permutation each, likewise the bottom rows
    /// ([`windows16_at`]), then [`outputs16`]; the last outputs (fewer than sixteen,
    /// from the start of their output row) as [`max_forward`].
    ///
    /// # Safety
    /// AVX-512 F and AVX2.
    ///
    /// # Panics
    /// As [`max_forward`].
    #[target_feature(enable = "avx512f,avx2")]
    pub(super) unsafe fn max_forward_avx512<const RELU: bool>(ow: usize, x: &[f32], y: &mut [f32]) {
        assert!(x.len() / 4 == y.len() && x.len().is_multiple_of(4) && ow.is_multiple_of(4) && ow > 0);
        assert!(y.len().is_multiple_of(ow), "pooling: a partial output row");
        let w = 2 * ow;
        let mut next = group_tops(ow);
        let mut q = 0;
        while q + 16 <= y.len() {
            let tops: [usize; 4] = core::array::from_fn(|_| next());
            debug_assert!(tops[0] == top(q, ow) && tops[3] == top(q + 12, ow));
            // SAFETY: outputs `q..q + 16` exist; `y` is whole rows of `ow`, so the
            // windows of each group of 4 (8 floats of a row from `top`, and of the next
            // row) lie in `x`, as in `max_forward`.
            unsafe { _mm512_storeu_ps(y.as_mut_ptr().add(q), outputs16::<RELU>(windows16_at(x, tops, w))) };
            q += 16;
        }
        // The rest from the start of its output row (the outputs before `q` again, to
        // the same values).
        let q = q / ow * ow;
        // SAFETY: AVX2 (the caller's contract); the remaining outputs are whole rows.
        unsafe { max_forward::<RELU>(ow, &x[4 * q..], &mut y[q..]) }
    }

    /// Max pooling backward (see the module): every input gets `0 + dy` of its window
    /// when it holds the maximum, else 0 (`dx` is overwritten).
    ///
    /// # Safety
    /// AVX2.
    ///
    /// # Panics
    /// Unless `x` and `dx` hold `4 dy.len()` floats and `dy` whole rows of `ow`, a
    /// multiple of 4.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max_backward(ow: usize, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        assert!(x.len() / 4 == dy.len() && x.len().is_multiple_of(4) && dx.len() == x.len() && ow.is_multiple_of(4));
        assert!(ow > 0 && dy.len().is_multiple_of(ow), "pooling: a partial output row");
        let (w, zero) = (2 * ow, _mm256_setzero_ps());
        let mut q = 0;
        while q + 8 <= dy.len() {
            // SAFETY: outputs `q..q + 8` exist; `dy` is whole rows of `ow`, so their
            // windows lie in `x` and `dx` (as in `max_forward`).
            unsafe {
                let (_, which) = windows(x, q, ow);
                let d = _mm256_add_ps(zero, _mm256_loadu_ps(dy.as_ptr().add(q)));
                let part = |k: f32| _mm256_and_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(which, _mm256_set1_ps(k)), d);
                let (top0, top1) = merge(part(0.0), part(1.0));
                let (bottom0, bottom1) = merge(part(2.0), part(3.0));
                let (t0, t1) = (top(q, ow), top(q + 4, ow));
                let p = dx.as_mut_ptr();
                _mm256_storeu_ps(p.add(t0), top0);
                _mm256_storeu_ps(p.add(t1), top1);
                _mm256_storeu_ps(p.add(t0 + w), bottom0);
                _mm256_storeu_ps(p.add(t1 + w), bottom1);
            }
            q += 8;
        }
        for q in q..dy.len() {
            let t = top(q, ow);
            for at in [t, t + 1, t + w, t + w + 1] {
                dx[at] = 0.0;
            }
            dx[argmax(x, q, ow)] += dy[q];
        }
    }
}

/// Average pooling: `y[p, oy, ox] = sum over the window of x[p] / (size[0] * size[1])`.
pub fn avg_forward(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
    let (in_len, out_len) = g.lens();
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
    let (in_len, out_len) = g.lens();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2x2 path of the CPU (AVX-512 or AVX2; the backward is AVX2's) gives the
    /// portable loops' results bit for bit, ties, signed zeros and infinities included;
    /// a NaN where they give a NaN (its sign and payload not compared).
    #[test]
    fn halving_2x2_equals_portable() {
        let values = [0.0, -0.0, 1.0, -1.0, 1.0, 2.5, f32::NAN, -3.0, 2.5, 0.5, f32::INFINITY, f32::NEG_INFINITY, -0.0];
        for (h, w) in [(8usize, 8usize), (4, 8), (2, 16), (6, 24), (2, 8), (4, 40), (10, 8)] {
            let g = PoolGeometry {
                height: h,
                width: w,
                size: [2, 2],
                stride: [2, 2],
                padding: [0, 0],
                out_height: h / 2,
                out_width: w / 2,
            };
            for planes in [1, 3, 5] {
                let x: Vec<f32> = (0..planes * h * w).map(|i| values[(i * 7 + i / 5) % values.len()]).collect();
                let dy: Vec<f32> = (0..planes * h * w / 4).map(|i| values[(i * 3 + 1) % values.len()] - 0.25).collect();
                let (mut y, mut y_ref) = (vec![9.0; dy.len()], vec![7.0; dy.len()]);
                let (mut dx, mut dx_ref) = (vec![9.0; x.len()], vec![7.0; x.len()]);
                max_forward(&g, &x, &mut y);
                max_backward(&g, &x, &dy, &mut dx);
                // The portable loops: a geometry the fast path does not take.
                let tall = PoolGeometry { height: h + 1, ..g };
                let padded = |v: &[f32], fill: f32| -> Vec<f32> {
                    v.chunks(h * w).flat_map(|p| p.iter().copied().chain(core::iter::repeat_n(fill, w))).collect()
                };
                let mut dx_tall = vec![7.0; planes * (h + 1) * w];
                max_forward(&tall, &padded(&x, -1e9), &mut y_ref);
                max_backward(&tall, &padded(&x, -1e9), &dy, &mut dx_tall);
                dx_tall
                    .chunks(h * w + w)
                    .zip(dx_ref.chunks_mut(h * w))
                    .for_each(|(s, d)| d.copy_from_slice(&s[..h * w]));
                let bits =
                    |v: &[f32]| v.iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect::<Vec<_>>();
                assert_eq!(bits(&y), bits(&y_ref), "forward {h}x{w} x{planes}");
                // Through a ReLU: the same values as a ReLU pass and then the pooling,
                // by the CPU's path and by the portable loops.
                let relu: Vec<f32> = x.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
                let (mut y_relu, mut y_relu_tall) = (vec![9.0; dy.len()], vec![7.0; dy.len()]);
                max_forward(&tall, &padded(&relu, -1e9), &mut y_ref);
                max_relu_forward(&g, &x, &mut y_relu);
                max_relu_forward(&tall, &padded(&x, -1e9), &mut y_relu_tall);
                assert_eq!(bits(&y_relu), bits(&y_ref), "forward through a ReLU {h}x{w} x{planes}");
                assert_eq!(bits(&y_relu_tall), bits(&y_ref), "portable forward through a ReLU {h}x{w} x{planes}");
                assert!(y_relu.iter().all(|v| !v.is_nan()));
                assert_eq!(bits(&dx), bits(&dx_ref), "backward {h}x{w} x{planes}");
            }
        }
    }
}
